"""Tables and figures shared by the notebooks: this run beside the paper's published numbers.

Models are summarised by *group*: a mini-zoo recipe (its seeds pooled: mean over seeds, seed SD
beside the per-episode CI) or, in the paper profile, the checkpoint itself. Each group and dataset
maps to its counterpart in the paper (``ModelSpec.extra['stands_for']``, ``DatasetSpec.stands_for``)
so the published value can sit beside this run's.

Every figure follows the paper's own definition (caption and text): what is scaled, over which models, what the
bars and error bars are; the one min-max scaler is ``analysis.correlation.minmax_per_dataset`` (a constant group
is NaN). Datasets appear in the paper's order (``data.registry.PAPER_ORDER``).
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from ..data.registry import get_spec as dataset_spec
from ..models.registry import get_spec as model_spec

FAMILY_ORDER = ("self-supervised", "supervised", "domain-specific", "random")
FAMILY_LABEL = {"self-supervised": "SSL (ImageNet)", "supervised": "Supervised", "domain-specific": "Domain-specific SSL",
                "random": "Random init"}


# ---------------------------------------------------------------- names and groups
def group_of(model: str) -> str:
    """A mini-zoo recipe at one pretraining budget (its seeds pool); any other model is its own group."""
    extra = model_spec(model).extra
    return extra.get("group", extra.get("recipe", model))


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


def paper_rank(name: str) -> int:
    """Position of a dataset (registry name, or a real name from the reference rows) in the paper's order; the
    order itself lives in one place (``data.registry.PAPER_ORDER``), unknown datasets go last."""
    from ..data.registry import DATASETS, available
    from ..data.registry import PAPER_ORDER

    available()
    spec = DATASETS.get(name)
    real = (spec.stands_for or name) if spec is not None else name
    return PAPER_ORDER.index(real) if real in PAPER_ORDER else len(PAPER_ORDER)


def in_paper_order(names) -> list:
    return sorted(dict.fromkeys(names), key=paper_rank)


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
    """One line per (group, protocol, dataset, metric): mean over seeds, mean CI half-width, seed SD; groups in
    the paper's family order (self-supervised, supervised, domain-specific), then in the run's order."""
    r = annotate(rows)
    r = r.assign(half=(r.ci_high - r.ci_low) / 2)
    keys = ["group", "group_title", "family", "paper_model", "protocol", "dataset", "dataset_title",
            "paper_dataset", "metric"]
    out = r.groupby(keys, sort=False, dropna=False).agg(value=("value", "mean"), ci_half=("half", "mean"),
                                                         seed_sd=("value", lambda v: v.std(ddof=1) if len(v) > 1 else np.nan),
                                                         n_seeds=("value", "size")).reset_index()
    rank = [FAMILY_ORDER.index(f) if f in FAMILY_ORDER else len(FAMILY_ORDER) for f in out.family]
    return out.iloc[np.argsort(rank, kind="stable")].reset_index(drop=True)


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
    t = t.reindex(index=list(dict.fromkeys(s.group_title)), columns=[dataset_title(d) for d in in_paper_order(s.dataset)])
    t.index.name, t.columns.name = "model", "dataset"
    return t


def paper_table(protocol: str, datasets: list[str], digits: int = 2) -> pd.DataFrame:
    """The paper's published values for the real counterparts of ``datasets`` (Tables 3 / 4)."""
    from .. import reference

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
    t = t.reindex(index=list(dict.fromkeys(ref.Model)),
                  columns=[dnames.get(d, d) for d in in_paper_order(real) if dnames.get(d, d) in t.columns])
    t.index.name, t.columns.name = "model", "dataset"
    return t


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


FIGURE2_FAMILIES = ("self-supervised", "supervised")   # Figure 2's caption: scaled "not including the domain-specific"


def _family_bars(per_model: pd.DataFrame) -> pd.DataFrame:
    """Figure 2's rule on one row per (task, model): scale each task 0-1 over the SSL and supervised models only,
    then average per family. ``value`` is the bar (mean scaled value), ``raw`` the mean of the unscaled values."""
    cols = ["task", "protocol", "dataset", "paper_dataset", "family", "value", "raw", "n_models"]
    s = per_model[per_model.family.isin(FIGURE2_FAMILIES)]
    if s.empty:
        return pd.DataFrame(columns=cols)
    s = s.assign(raw=s.value, value=minmax(s, "value", "task"))
    out = s.groupby(["task", "protocol", "dataset", "paper_dataset", "family"], sort=False).agg(
        value=("value", "mean"), raw=("raw", "mean"), n_models=("raw", "size")).reset_index()
    return _task_order(out)[cols]


def family_means(rows: pd.DataFrame, protocols=("fewshot", "linear", "finetune")) -> pd.DataFrame:
    """The bars of Figure 2 for this run's groups (recipes: seeds pooled first), per task (dataset, protocol)."""
    s = _headline(summarise(rows[rows.protocol.isin(protocols)]))
    s = s.assign(task=[task_label(short_title(d), p) for d, p in zip(s.dataset, s.protocol)])
    return _family_bars(s)


def short_title(name: str) -> str:
    """The real dataset's short name; a dagger marks a synthetic (MedSynth) counterpart."""
    from .. import reference

    spec = dataset_spec(name)
    real = spec.stands_for or name
    label = reference.DATASET_DISPLAY.get(real, spec.title)
    return f"{label}†" if spec.synthetic else label


def _task_order(df: pd.DataFrame) -> pd.DataFrame:
    """Protocols in the paper's order (few-shot, linear, finetune), datasets in the paper's order within each."""
    order = {p: k for k, p in enumerate(PROTOCOL_LABEL)}
    keys = [(order.get(p, 9), paper_rank(d)) for p, d in zip(df.protocol, df.dataset)]
    return df.iloc[sorted(range(len(df)), key=keys.__getitem__)]


def reference_family(model: str) -> str:
    """Family of a model named in the reference rows (best-of rows take their members' family)."""
    from .. import reference
    from ..models.registry import MODELS, available

    available()
    if model in MODELS:
        return MODELS[model].family
    members = reference.FAMILIES.get(model, ())
    return MODELS[members[0]].family if members and members[0] in MODELS else ""


def paper_family_means(datasets: list[str], protocols=("fewshot", "linear", "finetune")) -> pd.DataFrame:
    """The same bars from the paper's published Tables 3 and 4 (the 5 SSL and 3 supervised ImageNet models)."""
    from .. import reference

    ref = reference.paper_rows()
    real = {paper_dataset(d) for d in datasets}
    ref = ref[ref.protocol.isin(protocols) & ref.dataset.isin(real)]
    ref = ref[[p == "fewshot" or m == _paper_metric(d) for p, m, d in zip(ref.protocol, ref.metric, ref.dataset)]]
    ref = ref.assign(family=[reference_family(m) for m in ref.model], paper_dataset=ref.dataset,
                     task=[task_label(reference.DATASET_DISPLAY.get(d, d), p) for d, p in zip(ref.dataset, ref.protocol)])
    return _family_bars(ref)


def _paper_metric(real_dataset: str) -> str:
    from ..data.registry import DATASETS, available

    available()
    return DATASETS[real_dataset].metric if real_dataset in DATASETS else "accuracy"


def outcome_matrix(cfg, protocol: str, dataset: str, models: list[str], name: str) -> np.ndarray:
    """(seeds, units) outcomes of the models of one group (mini-zoo seeds), for paired tests."""
    from ..pipeline.grid import outcome

    return np.stack([np.asarray(outcome(cfg, protocol, m, dataset, name), dtype=np.float64) for m in models])


OUTCOME_NAME = {"fewshot": "episode_accuracy", "linear": "test_correct", "finetune": "test_correct"}
# to percentage points: episode accuracies are stored in %, per-item outcomes as 0/1 (so every test's
# difference and CI reads in points of accuracy; EyePACS's headline per-class mean is not what is tested)
OUTCOME_SCALE = {"fewshot": 1.0, "linear": 100.0, "finetune": 100.0}


def _pair_outcomes(cfg, sub: pd.DataFrame, protocol: str, dataset: str, name: str, by: str) -> np.ndarray | None:
    """(seeds, units) outcomes of one group (a recipe's seeds) or one family (its groups averaged seed by seed:
    seed k of every recipe), or None when ``sub`` has no model of it. Groups and models in name order, so the
    sums, hence the tests, do not depend on the order the rows come in."""
    groups = [sorted(set(sub[(sub[by] == name) & (sub.group == g)].model))
              for g in sorted(set(sub[sub[by] == name].group))]
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
    from .. import stats

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
    tests = _task_order(tests)
    t = tests.assign(task=[task_label(dataset_title(d), p) for d, p in zip(tests.dataset, tests.protocol)],
                     recipe=tests.title_a,
                     cell=[f"{x:+.{digits}f} [{lo:+.{digits}f}, {hi:+.{digits}f}]{' *' if s else ''}"
                           for x, lo, hi, s in zip(tests["diff"], tests.ci_low, tests.ci_high,
                                                   tests.significant)])
    out = t.pivot(index="recipe", columns="task", values="cell")
    out = out.reindex(index=list(dict.fromkeys(t.recipe)), columns=list(dict.fromkeys(t.task)))
    out.index.name, out.columns.name = "model", "task"
    return out


TEST_COLUMNS = {"protocol": "protocol", "dataset_title": "dataset", "domain": "domain", "mean_a": "{a} mean",
                "mean_b": "{b} mean", "diff": "difference", "ci_low": "95% CI low", "ci_high": "95% CI high",
                "p_bootstrap_adj": "p bootstrap (Holm)", "p_wilcoxon_adj": "p Wilcoxon (Holm)",
                "p_seed_t_adj": "p seed t-test (Holm)", "significant": "significant"}


def tests_table(tests: pd.DataFrame, a: str = "A", b: str = "B", digits: int = 4) -> pd.DataFrame:
    """Paired-test rows (``group_tests``) for a page: tasks in the paper's order, readable headers (``a`` and ``b``
    name the two sides, e.g. "SSL" and "supervised")."""
    if tests.empty:
        return pd.DataFrame(columns=[c.format(a=a, b=b) for c in TEST_COLUMNS.values()])
    t = _task_order(tests)
    keep = [c for c in TEST_COLUMNS if c in t]
    out = t[keep].rename(columns={c: TEST_COLUMNS[c].format(a=a, b=b) for c in keep}).reset_index(drop=True)
    return out.round(digits)


def n_significant(tests: pd.DataFrame, sign: int = 0) -> int:
    """How many comparisons the corrected tests support; ``sign`` +1 / -1 counts only those with a positive /
    negative difference (a minus b)."""
    if not len(tests) or "significant" not in tests:
        return 0
    sig = tests.significant.astype(bool)
    return int((sig & (np.sign(tests["diff"]) == sign)).sum() if sign else sig.sum())


# ---------------------------------------------------------------- figures
def _panel_note(ax, text: str):
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", fontsize=8, wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])


def family_figure(this: pd.DataFrame, paper: pd.DataFrame, *, families=FIGURE2_FAMILIES, title: str = ""):
    """Figure 2: per task, the family means of the values scaled 0-1 over the SSL and supervised models
    (``family_means``); this run (left) beside the paper (right), same axis, tasks in the paper's order."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 3.8), sharey=True)
    for ax, df, label in ((axes[0], this, "this run"), (axes[1], paper, "paper (published)")):
        if df.empty:
            _panel_note(ax, "no SSL or supervised results")
            continue
        ds = list(dict.fromkeys(df.task))
        x = np.arange(len(ds))
        w = 0.8 / len(families)
        for k, fam in enumerate(families):
            v = df[df.family == fam].set_index("task").value.reindex(ds)
            ax.bar(x + k * w - 0.4 + w / 2, v.to_numpy(dtype=float), w, label=FAMILY_LABEL.get(fam, fam))
        ax.set_xticks(x, ds, rotation=35, ha="right", fontsize=7)
        ax.set_ylim(0, 1.05)
        ax.set_title(label)
        ax.legend(fontsize=7, frameon=False)
    axes[0].set_ylabel("scaled performance\n(0-1 per task, SSL + supervised)")
    fig.suptitle(title + ("  († synthetic counterpart)" if len(this) and this.task.str.contains("†").any() else ""))
    fig.tight_layout()
    return fig


def extra_of(rows: pd.DataFrame, key: str) -> list:
    return [json.loads(e).get(key) if isinstance(e, str) and e else None for e in rows.extra]


def _model_rank(paper_model) -> int:
    """Boxes and bars in the paper's model order (reference.MODELS, then its family rows)."""
    from .. import reference

    order = list(reference.MODELS) + list(reference.FAMILIES)
    return order.index(paper_model) if paper_model in order else len(order)


def fewshot_scaled(rows: pd.DataFrame) -> pd.DataFrame:
    """Figure 3's values for this run: each group's few-shot accuracy scaled 0-1 per dataset across *all* groups
    (every family, as the caption says), with ``label`` and ``paper_model`` for the boxes."""
    s = _headline(summarise(rows[rows.protocol == "fewshot"]))
    if s.empty:
        return s.assign(label=[], scaled=[])
    return s.assign(label=s.group_title, scaled=minmax(s, "value", "dataset"))


def paper_scaled_rows(datasets: list[str], protocol: str = "fewshot", family: str | None = None) -> pd.DataFrame:
    """The paper's Table 3 rows with ``scaled`` (0-1 per dataset across all its models, Figure 3's rule), kept for
    ``family`` only if given (scaling comes first)."""
    from .. import reference

    ref = reference.paper_rows()
    ref = ref[(ref.protocol == protocol) & ref.dataset.isin({paper_dataset(d) for d in datasets})]
    ref = ref.assign(family=[reference_family(m) for m in ref.model], paper_model=ref.model,
                     label=[reference.MODEL_DISPLAY.get(m, m) for m in ref.model],
                     scaled=minmax(ref, "value", "dataset"))
    return ref if family is None else ref[ref.family == family]


def scaled_box_figure(rows: pd.DataFrame, paper: pd.DataFrame | None = None, *, family: str = "self-supervised",
                      title: str = ""):
    """Figure 3: few-shot values scaled per dataset across all models, box plots of the ``family`` models only,
    one dot per dataset and model; this run beside the paper, models in the paper's order, same axis."""
    import matplotlib.pyplot as plt

    this = fewshot_scaled(rows)
    panels = [("this run", this[this.family == family] if len(this) else this)]
    if paper is not None:
        panels.append(("paper (published)", paper[paper.family == family]))
    datasets = in_paper_order([paper_dataset(d) for d in this.dataset] + (list(paper.dataset) if paper is not None else []))
    colour = {d: plt.get_cmap("tab10")(k % 10) for k, d in enumerate(datasets)}
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 3.8), squeeze=False, sharey=True)
    for ax, (label, df) in zip(axes[0], panels):
        df = df.dropna(subset=["scaled"]) if len(df) else df          # NaN: every model ties on the dataset
        if df.empty:
            _panel_note(ax, "no scaled few-shot values")
            continue
        order = sorted(dict.fromkeys(df.label), key=lambda g: _model_rank(df[df.label == g].paper_model.iloc[0]))
        ax.boxplot([df[df.label == g].scaled.to_numpy() for g in order], showmeans=True, showfliers=False)
        df = df.assign(real=[paper_dataset(d) for d in df.dataset])
        n = len(datasets)
        for i, g in enumerate(order, start=1):
            sub = df[df.label == g]
            for d, v in zip(sub.real, sub.scaled):
                k = datasets.index(d) if d in datasets else 0
                ax.scatter(i + (k - (n - 1) / 2) * 0.05, v, s=10, color=colour.get(d, "k"), zorder=3)
        ax.set_xticks(range(1, len(order) + 1), order, rotation=25, ha="right", fontsize=8)
        ax.set_ylim(-0.05, 1.05)
        ax.set_title(label)
    from .. import reference

    handles = [plt.Line2D([], [], ls="", marker="o", color=colour[d], label=reference.DATASET_DISPLAY_SHORT.get(d, d))
               for d in datasets]
    if handles:
        axes[0][-1].legend(handles=handles, fontsize=6, frameon=False, loc="center left", bbox_to_anchor=(1, 0.5))
    axes[0][0].set_ylabel("scaled few-shot accuracy\n(0-1 per dataset, all models)")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def minmax(df: pd.DataFrame, value: str, by: str) -> np.ndarray:
    """``analysis.correlation.minmax_per_dataset`` (the one scaler; a constant group is NaN) on two columns."""
    from ..analysis.correlation import minmax_per_dataset

    return minmax_per_dataset(df[value].to_numpy(), df[by].to_numpy())


# ---------------------------------------------------------------- Q2: in-domain vs out-of-domain (Figures 4, 5)
def domain_of(name: str) -> str:
    """'in' (chest X-ray, the domain-specific models' domain) or 'out', for a registry or reference dataset."""
    from ..data.registry import DATASETS, available

    available()
    spec = DATASETS.get(name)
    return spec.domain if spec else ""


def scaled_task_rows(rows: pd.DataFrame, protocols=("fewshot", "linear", "finetune")) -> pd.DataFrame:
    """Headline values per (group, task), min-max scaled within each task across all groups, with family and
    domain (Figures 4 and 5)."""
    s = _headline(summarise(rows[rows.protocol.isin(protocols)]))
    s = s.assign(task=[task_label(short_title(d), p) for d, p in zip(s.dataset, s.protocol)],
                 domain=[domain_of(d) for d in s.dataset], label=s.group_title)
    return _task_order(s.assign(scaled=minmax(s, "value", "task")))


def paper_scaled_task_rows(datasets: list[str], protocols=("fewshot", "linear", "finetune")) -> pd.DataFrame:
    from .. import reference

    ref = reference.paper_rows()
    ref = ref[ref.protocol.isin(protocols) & ref.dataset.isin({paper_dataset(d) for d in datasets})]
    ref = ref[[p == "fewshot" or m == _paper_metric(d) for p, m, d in zip(ref.protocol, ref.metric, ref.dataset)]]
    ref = ref.assign(task=[task_label(reference.DATASET_DISPLAY.get(d, d), p) for d, p in zip(ref.dataset, ref.protocol)],
                     family=[reference_family(m) for m in ref.model], domain=[domain_of(d) for d in ref.dataset],
                     label=[reference.MODEL_DISPLAY.get(m, m) for m in ref.model], paper_model=ref.model)
    return _task_order(ref.assign(scaled=minmax(ref, "value", "task")))


def lineage(paper_model) -> str | None:
    """The reference family row (``reference.FAMILIES``) a paper model belongs to, or the model itself."""
    from .. import reference

    if not isinstance(paper_model, str):
        return None
    for fam, members in reference.FAMILIES.items():
        if paper_model == fam or paper_model in members:
            return fam
    return paper_model


# Figure 4's model types (caption; s5.2: "we only focus on MIMIC-CheXpert for the domain-specific" models):
# (label, family, paper lineage or None for the whole family). A model is MIMIC-CheXpert by what it stands for
# (``stands_for`` / the reference family row), so the mini-zoo's counterpart plays that part in the mini profile.
FIGURE4_MIMIC = "mimic_chexpert_best"
FIGURE4_TYPES = (("SSL (ImageNet)", "self-supervised", None), ("Supervised", "supervised", None),
                 ("MIMIC-CheXpert", "domain-specific", FIGURE4_MIMIC))
FIGURE4_SUMMARY_COLUMNS = ["protocol", "domain", "type", "value", "sd", "n_models"]


def figure4_type(family: str, paper_model) -> str | None:
    for label, fam, lin in FIGURE4_TYPES:
        if family == fam and (lin is None or lineage(paper_model) == lin):
            return label
    return None


def domain_type_summary(scaled: pd.DataFrame) -> pd.DataFrame:
    """Figure 4's bars from ``scaled_task_rows`` (scaled per task across all models): per (protocol, domain,
    model type) the mean over the type's models, then over the domain's datasets (``value``); ``sd`` is the 1 sigma
    (population SD, ddof=0) across the type's models of each model's mean over those datasets."""
    if scaled.empty or "scaled" not in scaled:
        return pd.DataFrame(columns=FIGURE4_SUMMARY_COLUMNS)
    s = scaled.assign(type=[figure4_type(f, m) for f, m in zip(scaled.family, scaled.paper_model)])
    s = s[s.type.notna() & s.scaled.notna()]
    if s.empty:
        return pd.DataFrame(columns=FIGURE4_SUMMARY_COLUMNS)
    keys = ["protocol", "domain", "type"]
    bar = s.groupby(keys + ["dataset"]).scaled.mean().groupby(keys).mean().rename("value")
    per_model = s.groupby(keys + ["label"]).scaled.mean()
    spread = per_model.groupby(keys).agg(sd=lambda v: float(np.std(v.to_numpy(), ddof=0)), n_models="size")
    out = pd.concat([bar, spread], axis=1).reset_index()
    order = {p: k for k, p in enumerate(PROTOCOL_LABEL)}
    types = [t[0] for t in FIGURE4_TYPES]
    out = out.assign(_o=[(order.get(p, 9), d != "in", types.index(t)) for p, d, t in zip(out.protocol, out.domain, out.type)])
    return out.sort_values("_o").drop(columns="_o").reset_index(drop=True)[FIGURE4_SUMMARY_COLUMNS]


def figure4_gap(summary: pd.DataFrame, domain: str, a: str = "MIMIC-CheXpert", b: str = "SSL (ImageNet)") -> float:
    """Mean over the protocols of Figure 4's bar ``a`` minus bar ``b`` in ``domain`` (NaN if either is missing)."""
    if summary.empty:
        return np.nan
    t = summary[summary.domain == domain].pivot_table(index="protocol", columns="type", values="value")
    if a not in t or b not in t:
        return np.nan
    d = (t[a] - t[b]).dropna()
    return float(d.mean()) if len(d) else np.nan


def domain_figure(this: pd.DataFrame, paper: pd.DataFrame, title: str = ""):
    """Figure 4: mean scaled performance of SSL (ImageNet), supervised and MIMIC-CheXpert models, in and out of
    domain, per protocol, with 1 sigma error bars across the models (``domain_type_summary``)."""
    import matplotlib.pyplot as plt

    types = [t[0] for t in FIGURE4_TYPES]
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.8), sharey=True)
    for ax, df, label in ((axes[0], this, "this run"), (axes[1], paper, "paper (published)")):
        m = domain_type_summary(df)
        if m.empty:
            _panel_note(ax, "no scaled results")
            continue
        cats = list(dict.fromkeys(zip(m.protocol, m.domain)))
        x = np.arange(len(cats))
        w = 0.8 / len(types)
        idx = m.set_index(["protocol", "domain", "type"])
        for k, t in enumerate(types):
            v = [idx.value.get((p, d, t), np.nan) for p, d in cats]
            e = [idx.sd.get((p, d, t), np.nan) for p, d in cats]
            ax.bar(x + k * w - 0.4 + w / 2, v, w, yerr=e, capsize=2, label=t)
        missing = [t for t in types if t not in set(m.type)]
        single = [t for t in types if t in set(m.type) and (m[m.type == t].n_models == 1).all()]
        notes = ([f"no {', '.join(missing)} counterpart in this panel"] if missing else []) + \
            ([f"{', '.join(single)}: one model, no spread"] if single else [])
        if notes:
            ax.set_xlabel("; ".join(notes), fontsize=7)
        ax.set_xticks(x, [f"{PROTOCOL_LABEL.get(p, p)}\n{d}-domain" for p, d in cats], fontsize=8)
        ax.set_ylim(0, 1.3)
        ax.set_title(label)
        ax.legend(fontsize=7, frameon=False, loc="upper right", ncol=3)
    axes[0].set_ylabel("scaled performance\n(0-1 per task, all models)")
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
    from ..models.minizoo import read_manifest

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
    from .. import reference
    from ..models.registry import MODELS, available

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


# Figure A4's many-shot panels: (protocol, real dataset), the authors' linear and finetune columns (Table 4)
A4_MANYSHOT = (("linear", "chexpert"), ("linear", "eyepacs"), ("finetune", "chexpert"), ("finetune", "eyepacs"))
A4_COLUMNS = ["panel", "protocol", "paper_dataset", "group", "group_title", "source_acc", "source", "value"]


def _a4_panel(protocol: str, real: str) -> str:
    from .. import reference

    return f"{PROTOCOL_LABEL.get(protocol, protocol)} {reference.DATASET_DISPLAY.get(real, real)}"


def manyshot_source_points(rows: pd.DataFrame) -> pd.DataFrame:
    """This run's SSL and supervised groups: source accuracy vs the headline linear / finetune value on the
    counterparts of CheXpert and EyePACS (one row per group and panel)."""
    s = _headline(summarise(rows[rows.protocol.isin(["linear", "finetune"])])) if len(rows) else pd.DataFrame()
    if s.empty:
        return pd.DataFrame(columns=A4_COLUMNS)
    keep = np.array([(p, d) in A4_MANYSHOT for p, d in zip(s.protocol, s.paper_dataset)], dtype=bool)
    s = s[keep & s.family.isin(FIGURE2_FAMILIES).to_numpy()]
    s = s.merge(source_scores(rows.model.unique()), on="group")
    s = s.assign(panel=[_a4_panel(p, d) for p, d in zip(s.protocol, s.paper_dataset)])
    return s[A4_COLUMNS].reset_index(drop=True)


def paper_manyshot_points() -> pd.DataFrame:
    """The paper's 8 ImageNet models: the authors' top-1 vs their Table 4 linear / finetune values."""
    from .. import reference
    from ..models.registry import MODELS, available

    available()
    ref = reference.paper_rows()
    ref = ref[[(p, d) in A4_MANYSHOT and m == _paper_metric(d) for p, d, m in zip(ref.protocol, ref.dataset, ref.metric)]]
    ref = ref[[m in MODELS and MODELS[m].imagenet_top1 is not None for m in ref.model]]
    return pd.DataFrame({"panel": [_a4_panel(p, d) for p, d in zip(ref.protocol, ref.dataset)],
                         "protocol": ref.protocol.to_numpy(), "paper_dataset": ref.dataset.to_numpy(),
                         "group": ref.model.to_numpy(),
                         "group_title": [reference.MODEL_DISPLAY.get(m, m) for m in ref.model],
                         "source_acc": [MODELS[m].imagenet_top1 for m in ref.model], "source": SOURCE_TOP1,
                         "value": ref.value.to_numpy()}, columns=A4_COLUMNS)


A4_FEWSHOT_PANEL = "few-shot (mean scaled)"


def _r_p(x, y) -> tuple[float, float]:
    from ..analysis.correlation import pearson

    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = ~(np.isnan(x) | np.isnan(y))
    x, y = x[ok], y[ok]
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return np.nan, np.nan
    return pearson(x, y)


def source_correlations(fewshot: pd.DataFrame, manyshot: pd.DataFrame) -> pd.DataFrame:
    """Figure A4's Pearson r and p per panel: ``fewshot`` = ``source_points`` / ``paper_source_points``,
    ``manyshot`` = ``manyshot_source_points`` / ``paper_manyshot_points``; a panel with < 3 points or a constant
    axis gets NaN."""
    out = [{"panel": A4_FEWSHOT_PANEL, "n": len(fewshot), **dict(zip(("r", "p"), _r_p(
        fewshot.get("source_acc", []), fewshot.get("transfer", []))))}]
    for p, d in A4_MANYSHOT:
        sub = manyshot[(manyshot.protocol == p) & (manyshot.paper_dataset == d)] if len(manyshot) else manyshot
        out.append({"panel": _a4_panel(p, d), "n": len(sub), **dict(zip(("r", "p"), _r_p(
            sub.get("source_acc", []), sub.get("value", []))))})
    return pd.DataFrame(out, columns=["panel", "n", "r", "p"])


def _source_label(*frames) -> str:
    src = [x for f in frames if len(f) and "source" in f for x in f.source.dropna()]
    return "; ".join(dict.fromkeys(src)) or "source accuracy"


def source_figure(this_few: pd.DataFrame, this_many: pd.DataFrame, paper_few: pd.DataFrame,
                  paper_many: pd.DataFrame, title: str = ""):
    """Figure A4: source accuracy against the few-shot panel (mean scaled) and the four linear / finetune panels,
    Pearson r and p overlaid; this run (top row, its own source accuracy) above the paper (bottom row). The x axis
    says what the source accuracy is (the data's ``source`` column)."""
    import textwrap

    import matplotlib.pyplot as plt

    panels = [A4_FEWSHOT_PANEL] + [_a4_panel(p, d) for p, d in A4_MANYSHOT]
    fig, axes = plt.subplots(2, len(panels), figsize=(3.3 * len(panels), 6.4), squeeze=False)
    for row, (label, few, many) in enumerate((("this run", this_few, this_many), ("paper", paper_few, paper_many))):
        corr = source_correlations(few, many).set_index("panel")
        xlabel = textwrap.fill(_source_label(few, many) + " (%)", 40)
        for ax, panel in zip(axes[row], panels):
            if panel == A4_FEWSHOT_PANEL:
                x, y, names = few.get("source_acc", []), few.get("transfer", []), few.get("group_title", [])
                ylabel = "mean scaled few-shot accuracy"
            else:
                sub = many[many.panel == panel] if len(many) else many
                x, y, names = sub.get("source_acc", []), sub.get("value", []), sub.get("group_title", [])
                ylabel = "accuracy (%)"
            ax.set_title(f"{label}: {panel}", fontsize=8)
            if len(x) == 0:
                _panel_note(ax, f"no {panel} values")
                continue
            ax.scatter(np.asarray(x, float), np.asarray(y, float), s=14)
            for xi, yi, n in zip(x, y, names):
                ax.annotate(str(n), (xi, yi), fontsize=5, xytext=(2, 2), textcoords="offset points")
            r, pv = corr.loc[panel, "r"], corr.loc[panel, "p"]
            txt = f"r = {r:.2f}, p = {pv:.3f}" if not np.isnan(r) else "r undefined (< 3 points or constant)"
            ax.set_title(f"{label}: {panel}\n{txt}", fontsize=8)
            ax.set_xlabel(xlabel, fontsize=7)
            ax.set_ylabel(ylabel, fontsize=7)
            ax.tick_params(labelsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def scatter_figure(panels, *, xlabel: str, ylabel: str, title: str = ""):
    """Side-by-side scatter plots with Pearson r and p overlaid; ``panels`` = [(label, x, y, names)]."""
    import matplotlib.pyplot as plt

    from ..analysis.correlation import pearson

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
