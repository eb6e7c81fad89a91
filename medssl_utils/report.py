"""Tables and figures shared by the notebooks: this run beside the paper's published numbers.

Models are summarised by *group*: a mini-zoo recipe (its seeds pooled: mean over seeds, seed SD
beside the per-episode CI) or, in the paper profile, the checkpoint itself. Each group and dataset
maps to its counterpart in the paper (``ModelSpec.extra['stands_for']``, ``DatasetSpec.stands_for``)
so the published value can sit beside this run's.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from .data.registry import get_spec as dataset_spec
from .models.registry import get_spec as model_spec

FAMILY_ORDER = ("self-supervised", "supervised", "domain-specific", "random")
FAMILY_LABEL = {"self-supervised": "SSL (ImageNet)", "supervised": "Supervised", "domain-specific": "Domain-specific SSL",
                "random": "Random init"}


# ---------------------------------------------------------------- names and groups
def group_of(model: str) -> str:
    return model_spec(model).extra.get("recipe", model)


def group_title(model: str) -> str:
    spec = model_spec(model)
    return spec.extra.get("recipe_title", spec.title if "recipe" not in spec.extra else spec.title.split(" (seed")[0])


def paper_model(model: str) -> str | None:
    """The paper checkpoint (or family row) a model stands for; itself for the paper's models."""
    spec = model_spec(model)
    return spec.extra.get("stands_for", spec.name if spec.profile == "paper" else None)


def paper_dataset(name: str) -> str:
    spec = dataset_spec(name)
    return spec.stands_for or name


def dataset_title(name: str) -> str:
    return dataset_spec(name).title


def annotate(rows: pd.DataFrame) -> pd.DataFrame:
    """Add group, group title, family and the paper counterparts to result rows of this run."""
    if rows.empty:
        return rows
    models = rows.model.unique()
    info = {m: (group_of(m), group_title(m), model_spec(m).family, paper_model(m)) for m in models}
    return rows.assign(group=[info[m][0] for m in rows.model], group_title=[info[m][1] for m in rows.model],
                       family=[info[m][2] for m in rows.model], paper_model=[info[m][3] for m in rows.model],
                       paper_dataset=[paper_dataset(d) for d in rows.dataset],
                       dataset_title=[dataset_title(d) for d in rows.dataset])


def summarise(rows: pd.DataFrame) -> pd.DataFrame:
    """One line per (group, protocol, dataset, metric): mean over seeds, mean CI half-width, seed SD."""
    r = annotate(rows)
    r = r.assign(half=(r.ci_high - r.ci_low) / 2)
    keys = ["group", "group_title", "family", "paper_model", "protocol", "dataset", "dataset_title",
            "paper_dataset", "metric"]
    out = r.groupby(keys, sort=False, dropna=False).agg(value=("value", "mean"), ci_half=("half", "mean"),
                                                         seed_sd=("value", lambda v: v.std(ddof=1) if len(v) > 1 else np.nan),
                                                         n_seeds=("value", "size")).reset_index()
    return out


def fmt_cell(value: float, half: float = np.nan, sd: float = np.nan, digits: int = 2) -> str:
    if np.isnan(value):
        return "—"
    s = f"{value:.{digits}f}"
    if not np.isnan(half):
        s += f" ± {half:.{digits}f}"
    if not np.isnan(sd):
        s += f" [sd {sd:.{digits - 1}f}]"
    return s


def fmt_ci(value: float, low: float, high: float, digits: int = 2) -> str:
    return fmt_cell(value, (high - low) / 2 if not (np.isnan(low) or np.isnan(high)) else np.nan, digits=digits)


# ---------------------------------------------------------------- tables
def headline_metric(protocol: str, dataset: str) -> str:
    return "accuracy" if protocol == "fewshot" else dataset_spec(dataset).metric


def _headline(s: pd.DataFrame) -> pd.DataFrame:
    keep = [headline_metric(p, d) == m for p, d, m in zip(s.protocol, s.dataset, s.metric)]
    return s[keep]


def run_table(rows: pd.DataFrame, protocol: str, digits: int = 2) -> pd.DataFrame:
    """Groups x datasets, 'mean ± CI [sd over seeds]' of the headline metric (Tables 3 and 4 of this run)."""
    s = _headline(summarise(rows[rows.protocol == protocol]))
    if s.empty:
        return pd.DataFrame()
    s = s.assign(cell=[fmt_cell(v, h, sd, digits) for v, h, sd in zip(s.value, s.ci_half, s.seed_sd)])
    t = s.pivot(index="group_title", columns="dataset_title", values="cell")
    return t.reindex(index=list(dict.fromkeys(s.group_title)), columns=list(dict.fromkeys(s.dataset_title)))


def paper_table(protocol: str, datasets: list[str], digits: int = 2) -> pd.DataFrame:
    """The paper's published values for the real counterparts of ``datasets`` (Tables 3 / 4)."""
    from . import reference

    ref = reference.paper_rows()
    ref = ref[ref.protocol == protocol]
    real = [paper_dataset(d) for d in datasets]
    ref = ref[ref.dataset.isin(real)]
    if protocol != "fewshot":
        ref = ref[[m == _paper_metric(d) for m, d in zip(ref.metric, ref.dataset)]]
    if ref.empty:
        return pd.DataFrame()
    names = reference.MODEL_DISPLAY
    dnames = reference.DATASET_DISPLAY
    ref = ref.assign(Model=[names.get(m, m) for m in ref.model], Dataset=[dnames.get(d, d) for d in ref.dataset],
                     cell=[fmt_ci(v, lo, hi, digits) for v, lo, hi in zip(ref.value, ref.ci_low, ref.ci_high)])
    t = ref.pivot_table(index="Model", columns="Dataset", values="cell", aggfunc="first")
    return t.reindex(index=list(dict.fromkeys(ref.Model)),
                     columns=[dnames.get(d, d) for d in dict.fromkeys(real) if dnames.get(d, d) in t.columns])


def rank_marks(table: pd.DataFrame, direction: str | None = "higher") -> pd.DataFrame:
    """'best' / 'second' per column by the leading number of each cell; ``direction`` says which end is
    better ("higher", "lower", or None for no marks)."""
    marks = pd.DataFrame("", index=table.index, columns=table.columns)
    if direction is None:
        return marks

    def lead(x):
        try:
            return float(str(x).split()[0])
        except ValueError:
            return np.nan
    vals = table.map(lead)
    for c in table.columns:
        order = vals[c].dropna().sort_values(ascending=direction == "lower", kind="stable").index
        for mark, idx in zip(("best", "second"), order[:2]):
            marks.loc[idx, c] = mark
    return marks


def styled(table: pd.DataFrame, uuid: str, caption: str = ""):
    """Bold = best, underline = second best in each column (as the paper marks them)."""
    marks = rank_marks(table)
    css = {"best": "font-weight: bold", "second": "text-decoration: underline", "": ""}
    st = table.style.apply(lambda col: [css[m] for m in marks[col.name]], axis=0).set_uuid(uuid)
    if caption:
        st = st.set_caption(caption)
    return st


# ---------------------------------------------------------------- family comparisons (Figure 2, paired tests)
PROTOCOL_LABEL = {"fewshot": "few-shot", "linear": "linear", "finetune": "finetune"}


def task_label(dataset_name: str, protocol: str) -> str:
    return f"{dataset_name} ({PROTOCOL_LABEL.get(protocol, protocol)})"


def family_means(rows: pd.DataFrame, protocols=("fewshot", "linear", "finetune")) -> pd.DataFrame:
    """Mean headline value per (task, family), a task being (dataset, protocol): the bars of Figure 2."""
    s = _headline(summarise(rows[rows.protocol.isin(protocols)]))
    s = s.assign(task=[task_label(short_title(d), p) for d, p in zip(s.dataset, s.protocol)])
    out = s.groupby(["task", "protocol", "dataset", "paper_dataset", "family"], sort=False).value.mean().reset_index()
    return _task_order(out)


def short_title(name: str) -> str:
    """The real dataset's short name; a dagger marks a synthetic (MedSynth) counterpart."""
    from . import reference

    spec = dataset_spec(name)
    real = spec.stands_for or name
    label = reference.DATASET_DISPLAY.get(real, spec.title)
    return f"{label}†" if spec.synthetic else label


def _task_order(df: pd.DataFrame) -> pd.DataFrame:
    order = {p: k for k, p in enumerate(PROTOCOL_LABEL)}
    return df.assign(_o=[order.get(p, 9) for p in df.protocol]).sort_values("_o", kind="stable").drop(columns="_o")


def reference_family(model: str) -> str:
    """Family of a model named in the reference rows (best-of rows take their members' family)."""
    from . import reference
    from .models.registry import MODELS, available

    available()
    if model in MODELS:
        return MODELS[model].family
    members = reference.FAMILIES.get(model, ())
    return MODELS[members[0]].family if members and members[0] in MODELS else ""


def paper_family_means(datasets: list[str], protocols=("fewshot", "linear", "finetune")) -> pd.DataFrame:
    """The same bars from the paper's published Tables 3 and 4 (best-of rows count once)."""
    from . import reference

    ref = reference.paper_rows()
    real = {paper_dataset(d) for d in datasets}
    ref = ref[ref.protocol.isin(protocols) & ref.dataset.isin(real)]
    ref = ref[[p == "fewshot" or m == _paper_metric(d) for p, m, d in zip(ref.protocol, ref.metric, ref.dataset)]]
    ref = ref.assign(family=[reference_family(m) for m in ref.model],
                     task=[task_label(reference.DATASET_DISPLAY.get(d, d), p) for d, p in zip(ref.dataset, ref.protocol)])
    return _task_order(ref.groupby(["task", "protocol", "dataset", "family"], sort=False).value.mean().reset_index())


def _paper_metric(real_dataset: str) -> str:
    from .data.registry import DATASETS, available

    available()
    return DATASETS[real_dataset].metric if real_dataset in DATASETS else "accuracy"


def outcome_matrix(cfg, protocol: str, dataset: str, models: list[str], name: str) -> np.ndarray:
    """(seeds, units) outcomes of the models of one group (mini-zoo seeds), for paired tests."""
    from .runs import outcomes

    return np.stack([np.asarray(outcomes(cfg, protocol, m, dataset, name), dtype=np.float64) for m in models])


OUTCOME_NAME = {"fewshot": "episode_accuracy", "linear": "test_correct", "finetune": "test_correct"}
# to percentage points: episode accuracies are stored in %, per-item outcomes as 0/1 (so every test's
# difference and CI reads in points of accuracy; EyePACS's headline per-class mean is not what is tested)
OUTCOME_SCALE = {"fewshot": 1.0, "linear": 100.0, "finetune": 100.0}


def _pair_outcomes(cfg, sub: pd.DataFrame, protocol: str, dataset: str, name: str, by: str) -> np.ndarray | None:
    """(seeds, units) outcomes of one group (a recipe's seeds) or one family (its groups averaged seed by seed:
    seed k of every recipe), or None when ``sub`` has no model of it."""
    groups = [list(dict.fromkeys(sub[(sub[by] == name) & (sub.group == g)].model))
              for g in dict.fromkeys(sub[sub[by] == name].group)]
    if not groups:
        return None
    per_group = [outcome_matrix(cfg, protocol, dataset, ms, OUTCOME_NAME[protocol]) for ms in groups]
    n_seeds = min(m.shape[0] for m in per_group)
    return OUTCOME_SCALE[protocol] * np.mean([m[:n_seeds] for m in per_group], axis=0)


def group_tests(cfg, rows: pd.DataFrame, protocol: str, pairs: list[tuple[str, str]], by: str = "group",
                correction: str = "holm", alpha: float = 0.05) -> pd.DataFrame:
    """Per dataset and pair (a, b) of groups (``by="group"``: mini-zoo recipes) or families: paired tests on the
    same episodes / test items, resampling training seeds and units together (``stats.compare_models``);
    p-values corrected over every (pair, dataset) of the protocol. ``significant`` needs the bootstrap and,
    with >= 2 seeds a side, the seed-level t-test."""
    from . import stats

    r = annotate(rows[rows.protocol == protocol])
    titles = dict(zip(r.group, r.group_title)) if by == "group" else FAMILY_LABEL
    out = []
    for d in dict.fromkeys(r.dataset):
        sub = r[r.dataset == d]
        for a, b in pairs:
            mats = {k: _pair_outcomes(cfg, sub, protocol, d, k, by) for k in (a, b)}
            if any(m is None for m in mats.values()):
                continue
            res = stats.compare_models(mats, [(a, b)], correction="none", seed=cfg.seed)
            row = res.iloc[0].to_dict()
            row.update(dataset=d, dataset_title=dataset_title(d), protocol=protocol,
                       title_a=titles.get(a, a), title_b=titles.get(b, b))
            out.append(row)
    df = pd.DataFrame(out)
    if df.empty:
        return df
    adjust = stats.holm if correction == "holm" else stats.benjamini_hochberg
    for col in ("p_bootstrap", "p_wilcoxon", "p_seed_t"):
        if col in df:
            ok = df[col].notna().to_numpy()
            adj = np.full(len(df), np.nan)
            if ok.any():
                adj[ok] = adjust(df.loc[ok, col].to_numpy())
            df[col + "_adj"] = adj
    seed_ok = df["p_seed_t_adj"].isna() | (df["p_seed_t_adj"] < alpha) if "p_seed_t_adj" in df else True
    df["significant"] = (df["p_bootstrap_adj"] < alpha) & seed_ok
    df["correction"] = f"{correction} over {len(df)} comparisons"
    return df


def family_tests(cfg, rows: pd.DataFrame, protocol: str, a: str = "self-supervised", b: str = "supervised",
                 correction: str = "holm", alpha: float = 0.05) -> pd.DataFrame:
    """Per dataset: family ``a`` vs family ``b``, corrected over the datasets (see ``group_tests``)."""
    return group_tests(cfg, rows, protocol, [(a, b)], by="family", correction=correction, alpha=alpha)


def recipe_tests(cfg, rows: pd.DataFrame, protocol: str, reference: str | None = None, *,
                 correction: str = "holm", alpha: float = 0.05) -> pd.DataFrame:
    """Every group (recipe) but random init against the ``reference`` group (default: the run's first
    supervised group: the mini supervised recipe, or the first supervised checkpoint)."""
    r = annotate(rows[rows.protocol == protocol])
    if reference is None:
        sup = list(dict.fromkeys(r[r.family == "supervised"].group))
        reference = sup[0] if sup else None
    if reference is None or reference not in set(r.group):
        return pd.DataFrame()
    groups = [g for g in dict.fromkeys(r[r.family != "random"].group) if g != reference]
    return group_tests(cfg, rows, protocol, [(g, reference) for g in groups], by="group", correction=correction,
                       alpha=alpha)


def recipe_test_table(tests: pd.DataFrame, digits: int = 1) -> pd.DataFrame:
    """Recipes x tasks: 'difference to the reference [95% CI]' in points of accuracy, '*' where the corrected
    tests support it."""
    if tests.empty:
        return pd.DataFrame()
    t = tests.assign(task=[task_label(dataset_title(d), p) for d, p in zip(tests.dataset, tests.protocol)],
                     recipe=tests.title_a,
                     cell=[f"{x:+.{digits}f} [{lo:+.{digits}f}, {hi:+.{digits}f}]{' *' if s else ''}"
                           for x, lo, hi, s in zip(tests["diff"], tests.ci_low, tests.ci_high,
                                                   tests.significant)])
    out = t.pivot(index="recipe", columns="task", values="cell")
    return out.reindex(index=list(dict.fromkeys(t.recipe)), columns=list(dict.fromkeys(t.task)))


def n_significant(tests: pd.DataFrame, sign: int = 0) -> int:
    """How many comparisons the corrected tests support; ``sign`` +1 / -1 counts only those with a positive /
    negative difference (a minus b)."""
    if not len(tests) or "significant" not in tests:
        return 0
    sig = tests.significant.astype(bool)
    return int((sig & (np.sign(tests["diff"]) == sign)).sum() if sign else sig.sum())


# ---------------------------------------------------------------- figures
def family_figure(this: pd.DataFrame, paper: pd.DataFrame, *, families=("self-supervised", "supervised"),
                  title: str = ""):
    """Figure 2's counterpart: family means per dataset, this run (left) beside the paper (right)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    for ax, df, label in ((axes[0], this, "this run"), (axes[1], paper, "paper (published)")):
        if df.empty:
            ax.set_axis_off()
            continue
        key = "task"
        ds = list(dict.fromkeys(df[key]))
        x = np.arange(len(ds))
        w = 0.8 / len(families)
        for k, fam in enumerate(families):
            v = df[df.family == fam].set_index(key).value.reindex(ds)
            ax.bar(x + k * w - 0.4 + w / 2, v.to_numpy(), w, label=FAMILY_LABEL.get(fam, fam))
        ax.set_xticks(x, ds, rotation=25, ha="right", fontsize=8)
        ax.set_title(label)
        ax.set_ylabel("accuracy (%)")
        ax.legend(fontsize=7, frameon=False)
    fig.suptitle(title + ("  († synthetic counterpart)" if this.task.str.contains("†").any() else ""))
    fig.tight_layout()
    return fig


def extra_of(rows: pd.DataFrame, key: str) -> list:
    return [json.loads(e).get(key) if isinstance(e, str) and e else None for e in rows.extra]


def scaled_box_figure(rows: pd.DataFrame, paper: pd.DataFrame | None = None, *, protocol: str = "fewshot",
                      family: str = "self-supervised", title: str = ""):
    """Figure 3's counterpart: each group's values min-max scaled per dataset, as box plots."""
    import matplotlib.pyplot as plt

    s = _headline(summarise(rows[(rows.protocol == protocol)]))
    s = s[s.family == family]
    panels = [("this run", s.rename(columns={"group_title": "label"}))]
    if paper is not None and not paper.empty:
        panels.append(("paper (published)", paper))
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.4), squeeze=False)
    for ax, (label, df) in zip(axes[0], panels):
        if df.empty:
            ax.set_axis_off()
            continue
        df = df.assign(scaled=minmax(df, "value", "dataset"))
        order = list(df.groupby("label").scaled.median().sort_values(ascending=False).index)
        ax.boxplot([df[df.label == g].scaled.dropna().to_numpy() for g in order], showmeans=True)   # NaN: tie
        ax.set_xticks(range(1, len(order) + 1), order, rotation=25, ha="right", fontsize=8)
        ax.set_ylabel("scaled performance (0-1 per dataset)")
        ax.set_title(label)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def minmax(df: pd.DataFrame, value: str, by: str) -> np.ndarray:
    """``analysis.correlation.minmax_per_dataset`` (the one scaler; a constant group is NaN) on two columns."""
    from .analysis.correlation import minmax_per_dataset

    return minmax_per_dataset(df[value].to_numpy(), df[by].to_numpy())


def paper_scaled_rows(datasets: list[str], protocol: str = "fewshot", family: str = "self-supervised") -> pd.DataFrame:
    from . import reference

    ref = reference.paper_rows()
    ref = ref[(ref.protocol == protocol) & ref.dataset.isin({paper_dataset(d) for d in datasets})]
    ref = ref[[reference_family(m) == family for m in ref.model]]
    return ref.assign(label=[reference.MODEL_DISPLAY.get(m, m) for m in ref.model])


# ---------------------------------------------------------------- Q2: in-domain vs out-of-domain (Figures 4, 5)
def domain_of(name: str) -> str:
    """'in' (chest X-ray, the domain-specific models' domain) or 'out', for a registry or reference dataset."""
    from .data.registry import DATASETS, available

    available()
    spec = DATASETS.get(name)
    return spec.domain if spec else ""


def scaled_task_rows(rows: pd.DataFrame, protocols=("fewshot", "linear", "finetune")) -> pd.DataFrame:
    """Headline values per (group, task), min-max scaled within each task, with family and domain."""
    s = _headline(summarise(rows[rows.protocol.isin(protocols)]))
    s = s.assign(task=[task_label(short_title(d), p) for d, p in zip(s.dataset, s.protocol)],
                 domain=[domain_of(d) for d in s.dataset], label=s.group_title)
    return _task_order(s.assign(scaled=minmax(s, "value", "task")))


def paper_scaled_task_rows(datasets: list[str], protocols=("fewshot", "linear", "finetune")) -> pd.DataFrame:
    from . import reference

    ref = reference.paper_rows()
    ref = ref[ref.protocol.isin(protocols) & ref.dataset.isin({paper_dataset(d) for d in datasets})]
    ref = ref[[p == "fewshot" or m == _paper_metric(d) for p, m, d in zip(ref.protocol, ref.metric, ref.dataset)]]
    ref = ref.assign(task=[task_label(reference.DATASET_DISPLAY.get(d, d), p) for d, p in zip(ref.dataset, ref.protocol)],
                     family=[reference_family(m) for m in ref.model], domain=[domain_of(d) for d in ref.dataset],
                     label=[reference.MODEL_DISPLAY.get(m, m) for m in ref.model])
    return _task_order(ref.assign(scaled=minmax(ref, "value", "task")))


def domain_figure(this: pd.DataFrame, paper: pd.DataFrame, title: str = ""):
    """Figure 4's counterpart: mean scaled performance per family, in-domain vs out-of-domain, per protocol."""
    import matplotlib.pyplot as plt

    fams = [f for f in FAMILY_ORDER if f != "random"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4), sharey=True)
    for ax, df, label in ((axes[0], this, "this run"), (axes[1], paper, "paper (published)")):
        if df.empty:
            ax.set_axis_off()
            continue
        m = df.groupby(["protocol", "domain", "family"]).scaled.mean()
        cats = [(p, d) for p in PROTOCOL_LABEL for d in ("in", "out") if (p, d) in m.index.droplevel(2)]
        x = np.arange(len(cats))
        w = 0.8 / len(fams)
        for k, fam in enumerate(fams):
            v = [m.get((p, d, fam), np.nan) for p, d in cats]
            ax.bar(x + k * w - 0.4 + w / 2, v, w, label=FAMILY_LABEL[fam])
        ax.set_xticks(x, [f"{PROTOCOL_LABEL[p]}\n{d}-domain" for p, d in cats], fontsize=8)
        ax.set_title(label)
        ax.set_ylabel("mean scaled performance")
        ax.legend(fontsize=7, frameon=False)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def domain_specific_figure(this: pd.DataFrame, paper: pd.DataFrame, title: str = ""):
    """Figure 5's counterpart: scaled performance of each domain-specific model per task, in-domain first."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 1, figsize=(10, 6))
    for ax, df, label in ((axes[0], this, "this run"), (axes[1], paper, "paper (published)")):
        df = df[df.family == "domain-specific"]
        if df.empty:
            ax.set_axis_off()
            continue
        df = df.sort_values("domain", kind="stable")
        tasks = list(dict.fromkeys(df.task))
        labels = list(dict.fromkeys(df.label))
        x = np.arange(len(tasks))
        w = 0.8 / len(labels)
        for k, g in enumerate(labels):
            v = df[df.label == g].groupby("task").scaled.mean().reindex(tasks)
            ax.bar(x + k * w - 0.4 + w / 2, v.to_numpy(), w, label=g)
        n_in = sum(1 for t in tasks if df[df.task == t].domain.iloc[0] == "in")
        ax.axvline(n_in - 0.5, color="k", lw=0.8, ls="--")
        ax.set_xticks(x, tasks, rotation=20, ha="right", fontsize=8)
        ax.set_ylabel("scaled performance")
        ax.set_title(f"{label}: in-domain left of the dashed line")
        ax.legend(fontsize=7, frameon=False, ncol=3)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------- source accuracy vs transfer (Figure A4)
def transfer_scores(rows: pd.DataFrame, protocol: str = "fewshot") -> pd.DataFrame:
    """Mean over datasets of each group's min-max scaled headline value."""
    s = _headline(summarise(rows[rows.protocol == protocol]))
    s = s.assign(scaled=minmax(s, "value", "dataset"))
    return s.groupby(["group", "group_title", "family"], sort=False).scaled.mean().rename("transfer").reset_index()


SOURCE_TOP1 = "ImageNet top-1 (authors' values)"
SOURCE_PROBE = "linear probe on the mini-zoo's natural-image corpus (stand-in for ImageNet top-1)"


def source_scores(models) -> pd.DataFrame:
    """Accuracy on the pretraining source task per group: the mini-zoo's linear probe on its natural-image
    corpus (the stand-in for ImageNet top-1), or the authors' ImageNet top-1 for the paper's models; ``source``
    says which one each value is (so no page has to guess it from the profile)."""
    from .models.minizoo import read_manifest

    man = read_manifest().get("models", {})
    out = []
    for m in models:
        spec = model_spec(m)
        if spec.profile == "paper":
            acc, source = spec.imagenet_top1, SOURCE_TOP1
        else:
            acc, source = (man.get(m, {}).get("probe") or {}).get("fractal"), SOURCE_PROBE
            acc = None if acc is None else 100 * acc
        if acc is not None and spec.family in ("supervised", "self-supervised"):
            out.append({"group": group_of(m), "source_acc": acc, "source": source})
    df = pd.DataFrame(out, columns=["group", "source_acc", "source"])
    return df.groupby("group", sort=False).agg(source_acc=("source_acc", "mean"),
                                               source=("source", lambda s: "; ".join(dict.fromkeys(s)))).reset_index()


def paper_source_points(datasets: list[str]) -> pd.DataFrame:
    """The paper's ImageNet models: authors' top-1 vs mean scaled few-shot accuracy over the datasets."""
    from . import reference
    from .models.registry import MODELS, available

    available()
    ref = reference.paper_rows()
    ref = ref[(ref.protocol == "fewshot") & ref.dataset.isin({paper_dataset(d) for d in datasets})]
    ref = ref.assign(scaled=minmax(ref, "value", "dataset"))
    t = ref.groupby("model").scaled.mean()
    rows = [{"group": m, "group_title": reference.MODEL_DISPLAY.get(m, m), "source_acc": MODELS[m].imagenet_top1,
             "source": SOURCE_TOP1, "transfer": v} for m, v in t.items()
            if m in MODELS and MODELS[m].imagenet_top1 is not None]
    return pd.DataFrame(rows, columns=["group", "group_title", "source_acc", "source", "transfer"])


def source_points(rows: pd.DataFrame) -> pd.DataFrame:
    pts = transfer_scores(rows).merge(source_scores(rows.model.unique()), on="group")
    return pts[pts.family.isin(["supervised", "self-supervised"])]


def scatter_figure(panels, *, xlabel: str, ylabel: str, title: str = ""):
    """Side-by-side scatter plots with Pearson r and p overlaid; ``panels`` = [(label, x, y, names)]."""
    import matplotlib.pyplot as plt

    from .analysis.correlation import pearson

    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.4), squeeze=False)
    for ax, (label, x, y, names) in zip(axes[0], panels):
        x, y = np.asarray(x, float), np.asarray(y, float)
        ax.scatter(x, y)
        for xi, yi, n in zip(x, y, names):
            ax.annotate(str(n), (xi, yi), fontsize=6, xytext=(2, 2), textcoords="offset points")
        if len(x) >= 3 and np.ptp(x) > 0 and np.ptp(y) > 0:
            r, p = pearson(x, y)
            ax.text(0.02, 0.95, f"r = {r:.2f}, p = {p:.3f}", transform=ax.transAxes, va="top", fontsize=8)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(label)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
