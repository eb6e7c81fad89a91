"""Q3 page: Tables A1-A7 and Figures 6-9, A1-A6 of this run beside the paper's published numbers.

Every function takes result rows (``grid.run(cfg, grid.ANALYSES)`` for the analyses, ``grid.run(cfg,
["fewshot"])`` for transfer) and returns a table or a figure. The paper's side always comes from the reference
rows (``reference.paper_rows()``: the printed tables; ``authors_rows()``: the authors' file, for ImageNet top-1).

Units: attentive diffusion in percent of map pixels in both columns (the paper prints fractions: 0.47 = 47 %);
cosine similarities and distances as they are. Perceptual distances other than LPIPS (``one_minus_ssim``,
``mse``, used when the LPIPS trunk weights are absent) are substitutes and are labelled so everywhere.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from .. import reference

from . import report
from ..analysis import correlation
from ..analysis._common import AnalysisError
from ..data.source_images import get_source, is_source
from ..models.registry import get_spec as model_spec

LPIPS_NETS = {"A4": "lpips_alex", "A5": "lpips_squeeze", "A6": "lpips_vgg"}
SUBSTITUTES = ("one_minus_ssim", "mse")
METRIC_LABEL = {"attentive_diffusion": "attentive diffusion (%)", "invariance_rotation": "rotation invariance",
                "invariance_hflip": "h-flip invariance", "invariance_hue": "hue invariance",
                "invariance_multiview": "multi-view invariance", "lpips_mean": "LPIPS (mean of 3 nets)",
                "lpips_alex": "LPIPS AlexNet", "lpips_vgg": "LPIPS VGG", "lpips_squeeze": "LPIPS SqueezeNet",
                "one_minus_ssim": "1 - SSIM (substitute, NOT LPIPS)", "mse": "MSE (substitute, NOT LPIPS)"}
# Table -> (protocol, metrics, better direction: "higher" | "lower" | None = no ranking)
TABLES = {
    "A1": ("invariance", ("invariance_rotation", "invariance_hue"), "higher"),
    "A2": ("invariance", ("invariance_hflip",), "higher"),
    "A3": ("invariance", ("invariance_multiview",), "higher"),
    "A4": ("reconstruction", ("lpips_alex",), "lower"),
    "A5": ("reconstruction", ("lpips_squeeze",), "lower"),
    "A6": ("reconstruction", ("lpips_vgg",), "lower"),
    "A7": ("saliency", ("attentive_diffusion",), None),
}
PAPER_PERCENT = {"attentive_diffusion"}     # printed as fractions, shown here in percent
FOCUS_DATASET = "chexpert"                  # the paper's Figures 6-8 use a CheXpert image
# The models the paper's Figures 6 and 8 show (captions), by registry / reference name; a run shows each one,
# else the run model standing for it (``stands_for``; a family row such as moco_cxr_best takes any member),
# else ``pick_models``' first model of the same family.
FIGURE_MODELS = {"figure6": ("pirl", "supervised_d121"), "figure8": ("moco_cxr_best", "byol", "supervised_r50")}


# ---------------------------------------------------------------- small helpers
def _metric_label(metric: str) -> str:
    return METRIC_LABEL.get(metric, metric)


def _paper_label(model: str) -> str:
    return reference.MODEL_DISPLAY_SHORT.get(model, model)


def _paper_ds_label(name: str) -> str:
    return reference.DATASET_DISPLAY_SHORT.get(name, name)


def _transform(metric: str) -> str:
    return metric.replace("invariance_", "")


def _short(name: str) -> str:
    """Column label of a run dataset or of the run's source image (the ImageNet counterpart)."""
    return get_source(name).title if is_source(name) else report.short_title(name)


def _column_label(name: str) -> str:
    """Table header: the paper's own short column name (with † for a synthetic stand-in), so both sides match."""
    if is_source(name):
        return get_source(name).title
    real = report.paper_dataset(name)
    if real not in reference.DATASET_DISPLAY_SHORT:
        return report.short_title(name)
    return reference.DATASET_DISPLAY_SHORT[real] + ("†" if report.short_title(name).endswith("†") else "")


def _real(name: str) -> str:
    """The paper's dataset a run dataset (or source image) stands for."""
    return get_source(name).stands_for if is_source(name) else report.paper_dataset(name)


def _domain(name: str) -> str:
    if is_source(name):
        return ""
    return report.domain_of(name) or report.domain_of(report.paper_dataset(name))


def distance_metric(rows: pd.DataFrame) -> str:
    """``lpips_mean`` when this run computed LPIPS with all three nets, else the substitute ``one_minus_ssim``."""
    if len(rows) and (rows.metric == "lpips_mean").any():
        return "lpips_mean"
    return "one_minus_ssim"


def is_substitute(metric: str) -> bool:
    return metric in SUBSTITUTES


def focus_dataset(datasets) -> str | None:
    """The dataset standing for CheXpert (Figures 6-8), else the first in-domain one, else the first."""
    datasets = [d for d in dict.fromkeys(datasets) if not is_source(d)]
    for d in datasets:
        if report.paper_dataset(d) == FOCUS_DATASET:
            return d
    for d in datasets:
        if report.domain_of(report.paper_dataset(d)) == "in" or report.domain_of(d) == "in":
            return d
    return datasets[0] if datasets else None


def pick_models(models, families=("domain-specific", "self-supervised", "supervised"), k: int = 3) -> list[str]:
    """Up to ``k`` models, the first of each family in ``families`` order, then others to fill (Figures 6, 8)."""
    models = list(dict.fromkeys(models))
    out = []
    for fam in families:
        out += [m for m in models if model_spec(m).family == fam][:1]
    out += [m for m in models if m not in out]
    return out[:k]


def figure_models(figure: str, models) -> list[tuple[str, str, str]]:
    """(paper model, run model, how) for each model of the paper's ``figure`` (``FIGURE_MODELS``) that the run
    can show: the model itself, the run model standing for it, or the first run model of its family."""
    models = list(dict.fromkeys(models))
    out: list[tuple[str, str, str]] = []
    for p in FIGURE_MODELS[figure]:
        members = {p, *reference.FAMILIES.get(p, ())}
        left = [m for m in models if m not in {o[1] for o in out}]
        hit = next((m for m in left if m in members), None)
        how = "the paper's model"
        if hit is None:
            hit = next((m for m in left if report.paper_model(m) in members), None)
            how = "stands for it"
        if hit is None:
            fam = report.reference_family(p)
            pool = pick_models(left, families=(fam,), k=1)
            hit = pool[0] if pool else None
            how = (f"no counterpart in this run: its first {report.FAMILY_LABEL.get(fam, fam)} model"
                   if hit is not None and model_spec(hit).family == fam else "no counterpart in this run")
        if hit is not None:
            out.append((p, hit, how))
    return out


def figure_models_caption(choice) -> str:
    """'PIRL: Mini SimCLR (no counterpart ...); ...' for a figure's caption."""
    return "; ".join(f"{_paper_label(p)}: {_short_model(m)}" + ("" if how == "the paper's model" else f" ({how})")
                     for p, m, how in choice)


def fewshot_points(fewshot_rows: pd.DataFrame) -> pd.DataFrame:
    """Per (model, dataset): few-shot accuracy and its CI half-width (this run's Q1 rows)."""
    if fewshot_rows is None or len(fewshot_rows) == 0:
        return pd.DataFrame(columns=["model", "dataset", "acc", "acc_half"])
    f = fewshot_rows[(fewshot_rows.protocol == "fewshot") & (fewshot_rows.metric == "accuracy")]
    f = f.assign(acc_half=(f.ci_high - f.ci_low) / 2)
    return f.groupby(["model", "dataset"], as_index=False).agg(acc=("value", "mean"), acc_half=("acc_half", "mean"))


def _paper(protocol: str, metric: str, dataset: str | None = None) -> pd.DataFrame:
    """Paper-table values (model, dataset, value, half) for one metric; lpips_mean = mean of the three nets."""
    ref = reference.paper_rows()
    if metric == "lpips_mean":
        parts = ref[(ref.protocol == "reconstruction") & ref.metric.isin(list(LPIPS_NETS.values()))]
        out = parts.groupby(["model", "dataset"], as_index=False).agg(value=("value", "mean"),
                                                                       n_nets=("value", "size"))
        out = out[out.n_nets == 3].drop(columns="n_nets")
    else:
        out = ref[(ref.protocol == protocol) & (ref.metric == metric)][["model", "dataset", "value", "ci_low",
                                                                         "ci_high"]]
    out = out.assign(half=(out.ci_high - out.ci_low) / 2 if "ci_low" in out else np.nan)
    if dataset is not None:
        out = out[out.dataset == dataset]
    return out.reset_index(drop=True)[["model", "dataset", "value", "half"]]


def _authors(protocol: str, metric: str, dataset: str | None = None) -> pd.DataFrame:
    ref = reference.authors_rows()
    out = ref[(ref.protocol == protocol) & (ref.metric == metric)]
    if protocol == "fewshot":      # the file has 2-way and 5-way columns for some sets: keep the paper's n-way
        ways = [json.loads(e).get("n_way") for e in out.extra]
        out = out[[w == reference.FEWSHOT_WAYS.get(d, 2) for w, d in zip(ways, out.dataset)]]
    out = out.assign(half=(out.ci_high - out.ci_low) / 2)
    if dataset is not None:
        out = out[out.dataset == dataset]
    return out.reset_index(drop=True)[["model", "dataset", "value", "half"]]


def _r_text(x, y) -> tuple[float, float, str]:
    """Pearson r, p and a label; NaN with the reason when it cannot be computed (few points, constant)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 3:
        return np.nan, np.nan, f"r undefined ({len(x)} point{'s' if len(x) != 1 else ''}; needs 3)"
    try:
        r, p = correlation.pearson(x, y)
    except AnalysisError as exc:
        return np.nan, np.nan, f"r undefined ({str(exc).split(': ', 1)[-1]})"
    return r, p, f"r = {r:.2f}, p = {p:.3g} (n = {len(x)})"


# ---------------------------------------------------------------- tables A1-A7
def _marks(table: pd.DataFrame, direction: str | None) -> pd.DataFrame:
    return report.rank_marks(table, direction)


def styled(table: pd.DataFrame, uuid: str, caption: str = "", direction: str | None = "higher"):
    """Bold = best, underline = second best per column; ``direction`` "lower" for distances, None: no marks."""
    marks = _marks(table, direction)
    css = {"best": "font-weight: bold", "second": "text-decoration: underline", "": ""}
    st = table.style.apply(lambda col: [css[m] for m in marks[col.name]], axis=0).set_uuid(uuid)
    return st.set_caption(caption) if caption else st


def _summarise(rows: pd.DataFrame) -> pd.DataFrame:
    """``report.summarise`` for registry datasets; the same aggregation for source-image rows (no registry record)."""
    src = np.array([is_source(d) for d in rows.dataset], dtype=bool)
    parts = [report.summarise(rows[~src])] if (~src).any() else []
    if src.any():
        r = rows[src]
        r = r.assign(group=[report.group_of(m) for m in r.model], group_title=[report.group_title(m) for m in r.model],
                     half=(r.ci_high - r.ci_low) / 2)
        parts.append(r.groupby(["group", "group_title", "protocol", "dataset", "metric"], sort=False, dropna=False).agg(
            value=("value", "mean"), ci_half=("half", "mean"),
            seed_sd=("value", lambda v: v.std(ddof=1) if len(v) > 1 else np.nan)).reset_index())
    return pd.concat(parts, ignore_index=True)


def paper_order(table: str) -> list[tuple[str, str]]:
    """(dataset, metric) of the paper's Table ``table`` columns, in its printed order (ImageNet last in A4-A7)."""
    ref = reference.paper_rows()
    ref = ref[ref.source == f"paper Table {table}"]
    return list(dict.fromkeys(zip(ref.dataset, ref.metric)))


def _column_rank(dataset: str, metric: str, order) -> tuple:
    """Sort key: the paper's column order; columns the paper does not print next (paper dataset order); the
    source image last, as the paper prints ImageNet."""
    real = _real(dataset)
    if is_source(dataset):
        return (2, 0, 0, dataset)
    if (real, metric) in order:
        return (0, order.index((real, metric)), 0, dataset)
    datasets = [d for d, _ in order]
    if real in datasets and len({m for _, m in order}) == 1:     # one-metric table, e.g. a substitute distance
        return (0, datasets.index(real), 0, dataset)
    pos = reference.PAPER_DATASETS.index(real) if real in reference.PAPER_DATASETS else len(reference.PAPER_DATASETS)
    return (1, pos, metric, dataset)


def run_table(rows: pd.DataFrame, metrics, digits: int = 3, order=()) -> pd.DataFrame:
    """This run: model groups x (dataset[, transform]); 'mean ± CI [sd over seeds]' per cell. Columns in
    ``order`` ((paper dataset, metric) pairs: ``paper_order``), the source image last."""
    if rows is None or len(rows) == 0:
        return pd.DataFrame()
    sub = rows[rows.metric.isin(list(metrics))]
    if sub.empty:
        return pd.DataFrame()
    s = _summarise(sub)
    order = list(order)
    s = s.assign(_rank=[_column_rank(d, m, order) for d, m in zip(s.dataset, s.metric)])
    s = s.iloc[sorted(range(len(s)), key=lambda k: s._rank.iloc[k])]
    multi = len(set(metrics)) > 1
    s = s.assign(column=[f"{_column_label(d)} ({_transform(m)})" if multi else _column_label(d)
                         for d, m in zip(s.dataset, s.metric)],
                 cell=[report.fmt_cell(v, h, sd, digits) for v, h, sd in zip(s.value, s.ci_half, s.seed_sd)])
    t = s.pivot(index="group_title", columns="column", values="cell")
    t = t.reindex(index=list(dict.fromkeys(_summarise(sub).group_title)),
                  columns=list(dict.fromkeys(s.column))).fillna("—")
    t.index.name, t.columns.name = "Model", None
    return t


def paper_table(table: str, digits: int | None = None) -> pd.DataFrame:
    """The paper's Table ``table`` (A1-A7) as printed (attentive diffusion in percent), all its columns."""
    if table not in TABLES:
        raise AnalysisError(f"table {table!r}; expected one of {sorted(TABLES)}")
    ref = reference.paper_rows()
    ref = ref[ref.source == f"paper Table {table}"]
    multi = table == "A1"
    scale = 100.0 if TABLES[table][1][0] in PAPER_PERCENT else 1.0
    decimals = [json.loads(e)["decimals"] for e in ref.extra]
    d = digits if digits is not None else max(0, max(decimals) - (2 if scale == 100 else 0))
    ref = ref.assign(Model=[_paper_label(m) for m in ref.model],
                     column=[f"{_paper_ds_label(ds)} ({_transform(m)})" if multi else _paper_ds_label(ds)
                             for ds, m in zip(ref.dataset, ref.metric)],
                     cell=[f"{v * scale:.{d}f}" for v in ref.value])
    t = ref.pivot_table(index="Model", columns="column", values="cell", aggfunc="first")
    t = t.reindex(index=list(dict.fromkeys(ref.Model)), columns=list(dict.fromkeys(ref.column))).fillna("—")
    t.columns.name = None
    return t


def table_pair(rows: pd.DataFrame, table: str, digits: int = 3, cfg=None):
    """(this run's table, the paper's table, direction, caption note) for Table ``table``.

    Columns in the paper's order. A4-A6: when this run has no LPIPS (no trunk weights), its table shows the
    substitute ``one_minus_ssim`` and the note says so; the paper's table is LPIPS as printed. A4-A7 end with
    the ImageNet counterpart (the run's source image); with ``cfg``, a run without that image shows the column
    with the reason ("not run: no ImageNet image under data_root/imagenet").
    """
    from ..pipeline import analyses

    protocol, metrics, direction = TABLES[table]
    notes = []
    if protocol == "reconstruction" and rows is not None and len(rows) and not (rows.metric == metrics[0]).any():
        metrics = ("one_minus_ssim",)
        notes.append("this run has no LPIPS (its torchvision trunk weights are not in weights_dir): the column shows "
                     "1 - SSIM, a substitute that is NOT LPIPS and not on LPIPS's scale")
    sub = rows[rows.protocol == protocol] if rows is not None and len(rows) else rows
    this = run_table(sub, metrics, digits=1 if protocol == "saliency" else digits, order=paper_order(table))
    if protocol in analyses.SOURCE_ANALYSES and len(this):
        ran = [d for d in dict.fromkeys(sub.dataset) if is_source(d)]
        spec, why = analyses.source_status(cfg) if cfg is not None else (None, None)
        if ran:
            spec = get_source(ran[0])
            notes.append(f"{spec.title} (the paper's ImageNet column): {spec.description}")
        elif cfg is not None:
            this[spec.title if spec is not None else "ImageNet"] = why or "not run (no rows for it in this run)"
    return this, paper_table(table), direction, ". ".join(notes)


# ---------------------------------------------------------------- figures: images and maps
def _images(cfg, analysis: str, model: str, dataset: str, name: str):
    from ..pipeline.grid import outcome

    try:
        return outcome(cfg, analysis, model, dataset, name)
    except Exception:          # unit not run (e.g. restricted by options): the panel says so
        return None


def _value(rows: pd.DataFrame, protocol: str, model: str, dataset: str, metric: str) -> float:
    v = rows[(rows.protocol == protocol) & (rows.model == model) & (rows.dataset == dataset) & (rows.metric == metric)]
    return float(v.value.iloc[0]) if len(v) else np.nan


def _short_model(model: str) -> str:
    return model_spec(model).title


def figure6(cfg, rows: pd.DataFrame, dataset: str | None = None, models=None):
    """Original image and the reconstructions of the paper's Figure 6 models (PIRL, Supervised DenseNet-121) or
    their counterparts (``figure_models``; the caption names them) on the CheXpert(-like) image."""
    import matplotlib.pyplot as plt

    rec = rows[rows.protocol == "reconstruction"] if len(rows) else rows
    dataset = dataset or focus_dataset(rec.dataset if len(rec) else cfg.datasets)
    choice = [(m, m, "the paper's model") for m in models] if models else \
        figure_models("figure6", rec[rec.dataset == dataset].model if len(rec) else [])
    models = [m for _, m, _ in choice]
    metric = distance_metric(rec)
    fig, axes = plt.subplots(1, 1 + len(models), figsize=(2.4 * (1 + len(models)), 2.8), squeeze=False)
    orig = _images(cfg, "reconstruction", models[0], dataset, "original") if models else None
    panels = [("original", orig)] + [(m, _images(cfg, "reconstruction", m, dataset, "reconstruction")) for m in models]
    for ax, (label, img) in zip(axes[0], panels):
        ax.set_axis_off()
        if img is None:
            ax.set_title(f"{label}: not run", fontsize=8)
            continue
        ax.imshow(img)
        if label == "original":
            ax.set_title(f"original\n{report.short_title(dataset)}", fontsize=8)
        else:
            ax.set_title(f"{_short_model(label)}\n{metric} {_value(rec, 'reconstruction', label, dataset, metric):.3f}",
                         fontsize=8)
    fig.suptitle("Figure 6: deep-image-prior reconstructions" + (" († synthetic)" if "†" in
                                                                 report.short_title(dataset) else ""), fontsize=9)
    _models_caption(fig, choice)
    return fig


def _models_caption(fig, choice) -> None:
    """The paper's models and what stands for them, under the panels."""
    import textwrap

    if not choice or all(how == "the paper's model" and p == m for p, m, how in choice):
        fig.tight_layout()
        return
    text = "\n".join(textwrap.wrap("Paper's models → this run: " + figure_models_caption(choice), 110))
    fig.tight_layout(rect=(0, 0.06 + 0.045 * text.count("\n"), 1, 1))
    fig.text(0.5, 0.01, text, ha="center", va="bottom", fontsize=7)


def figure8(cfg, rows: pd.DataFrame, dataset: str | None = None, models=None):
    """Saliency maps of the paper's Figure 8 models (MoCo-CXR, BYOL, Supervised ResNet-50) or their counterparts
    (``figure_models``; the caption names them) on the CheXpert(-like) image, AD in the titles."""
    import matplotlib.pyplot as plt

    sal = rows[rows.protocol == "saliency"] if len(rows) else rows
    dataset = dataset or focus_dataset(sal.dataset if len(sal) else cfg.datasets)
    choice = [(m, m, "the paper's model") for m in models] if models else \
        figure_models("figure8", sal[sal.dataset == dataset].model if len(sal) else [])
    models = [m for _, m, _ in choice]
    fig, axes = plt.subplots(1, max(1, len(models)), figsize=(2.8 * max(1, len(models)), 3.0), squeeze=False)
    for ax, m in zip(axes[0], models):
        _saliency_panel(ax, cfg, sal, m, dataset)
    fig.suptitle(f"Figure 8: occlusion saliency on the {report.short_title(dataset)} sample", fontsize=9)
    _models_caption(fig, choice)
    return fig


def _saliency_panel(ax, cfg, sal, model, dataset, fontsize=8, label=True):
    smap = _images(cfg, "saliency", model, dataset, "saliency_map")
    img = _images(cfg, "saliency", model, dataset, "image")
    ax.set_axis_off()
    if smap is None:
        ax.set_title("not run", fontsize=fontsize)
        return
    if img is not None:
        c = (img.shape[0] - smap.shape[0]) // 2
        ax.imshow(img[c:img.shape[0] - c, c:img.shape[1] - c].mean(axis=-1), cmap="gray")
        ax.imshow(smap, cmap="jet", alpha=0.5)
    else:
        ax.imshow(smap, cmap="jet")
    ad = _value(sal, "saliency", model, dataset, "attentive_diffusion")
    ax.set_title((f"{_short_model(model)}\n" if label else "") + f"AD {ad:.1f}%", fontsize=fontsize)


def _grid(cfg, rows, analysis, datasets, models, panel, title, with_original=False):
    import matplotlib.pyplot as plt

    nr = len(models) + (1 if with_original else 0)
    width = 1.6 * len(datasets) + 1.2
    fig, axes = plt.subplots(nr, len(datasets), figsize=(width, 1.6 * nr + 0.6), squeeze=False)
    datasets = sorted(datasets, key=lambda d: _column_rank(d, "", [(r, "") for r, _ in paper_order("A7")]))
    for j, d in enumerate(datasets):
        for i, m in enumerate(models):
            panel(axes[i + (1 if with_original else 0)][j], m, d)
        if not with_original:       # the dataset above the first row's own title (e.g. its AD)
            ax = axes[0][j]
            ax.set_title(f"{_short(d)}\n{ax.get_title()}".rstrip(), fontsize=7)
        if with_original:
            ax = axes[0][j]
            ax.set_axis_off()
            img = _images(cfg, analysis, models[0], d, "original") if models else None
            if img is not None:
                ax.imshow(img)
            ax.set_title(f"{_short(d)}\noriginal", fontsize=7)
    for i, m in enumerate(models):
        axes[i + (1 if with_original else 0)][0].text(-0.1, 0.5, _short_model(m), fontsize=6, rotation=90,
                                                       ha="right", va="center",
                                                       transform=axes[i + (1 if with_original else 0)][0].transAxes)
    import textwrap

    fig.suptitle("\n".join(textwrap.wrap(title, int(width * 14))), fontsize=9)    # narrow grids: wrap, not clip
    fig.tight_layout()
    return fig


def figureA5(cfg, rows: pd.DataFrame):
    """All reconstructions: the originals in the top row, one row per model, one column per dataset."""
    rec = rows[rows.protocol == "reconstruction"] if len(rows) else rows
    if rec is None or len(rec) == 0:
        return None
    datasets, models = list(dict.fromkeys(rec.dataset)), list(dict.fromkeys(rec.model))
    metric = distance_metric(rec)

    def panel(ax, m, d):
        ax.set_axis_off()
        img = _images(cfg, "reconstruction", m, d, "reconstruction")
        if img is not None:
            ax.imshow(img)
            ax.set_title(f"{_value(rec, 'reconstruction', m, d, metric):.2f}", fontsize=6)
    return _grid(cfg, rec, "reconstruction", datasets, models, panel,
                 f"Figure A5: reconstructions of every model on each dataset's sample (titles: {_metric_label(metric)})",
                 with_original=True)


def figureA6(cfg, rows: pd.DataFrame):
    """All saliency maps: one row per model, one column per dataset, AD in the titles."""
    sal = rows[rows.protocol == "saliency"] if len(rows) else rows
    if sal is None or len(sal) == 0:
        return None
    datasets, models = list(dict.fromkeys(sal.dataset)), list(dict.fromkeys(sal.model))
    return _grid(cfg, sal, "saliency", datasets, models,
                 lambda ax, m, d: _saliency_panel(ax, cfg, sal, m, d, fontsize=6, label=False),
                 "Figure A6: saliency maps of every model on each dataset's sample")


# ---------------------------------------------------------------- figures: scatter plots and boxes
def _family_colour(family: str) -> str:
    return {"self-supervised": "tab:blue", "supervised": "tab:orange", "domain-specific": "tab:green",
            "random": "tab:grey"}.get(family, "tab:purple")


def analysis_points(rows: pd.DataFrame, fewshot_rows: pd.DataFrame, metric: str) -> pd.DataFrame:
    """This run, per (model, dataset): ``metric`` beside few-shot accuracy (CI half-width) and the family."""
    if rows is None or len(rows) == 0:
        return pd.DataFrame(columns=["model", "dataset", "x", "acc", "acc_half", "family"])
    x = rows[rows.metric == metric].groupby(["model", "dataset"], as_index=False).value.mean()
    out = x.rename(columns={"value": "x"}).merge(fewshot_points(fewshot_rows), on=["model", "dataset"], how="inner")
    return out.assign(family=[model_spec(m).family for m in out.model])


def paper_points(protocol: str, metric: str, *, source: str = "paper") -> pd.DataFrame:
    """The paper's side: ``metric`` (paper tables; ImageNet top-1 from the authors' file) beside Table 3 few-shot."""
    x = _authors(protocol, metric) if source == "authors" or protocol == "imagenet" else _paper(protocol, metric)
    y = (_authors if source == "authors" else _paper)("fewshot", "accuracy")
    if protocol == "imagenet":
        x = x.drop(columns="dataset").merge(y[["model", "dataset"]].drop_duplicates(), on="model")
    if metric in PAPER_PERCENT and source != "authors":
        x = x.assign(value=x.value * 100)
    out = x.rename(columns={"value": "x"})[["model", "dataset", "x"]].merge(
        y.rename(columns={"value": "acc", "half": "acc_half"}), on=["model", "dataset"], how="inner")
    return out.assign(family=[report.reference_family(m) for m in out.model])


def _scatter(ax, pts: pd.DataFrame, xlabel: str, title: str, fit: bool = False):
    if pts is None or len(pts) == 0:
        ax.set_title(f"{title}\nno data", fontsize=8)
        ax.set_axis_off()
        return {}
    for fam, g in pts.groupby("family", sort=False):
        ax.errorbar(g.x, g.acc, yerr=g.acc_half.fillna(0), fmt="o", ms=4, capsize=2, color=_family_colour(fam),
                    label=report.FAMILY_LABEL.get(fam, fam))
    r, p, text = _r_text(pts.x, pts.acc)
    out = {"r": r, "p": p, "n": len(pts)}
    if fit and len(pts) >= 3 and np.ptp(pts.x.to_numpy(float)) > 0:
        half = pts.acc_half.to_numpy(float)
        yerr = half if np.isfinite(half).all() and (half > 0).all() else None
        lf = correlation.linear_fit(pts.x, pts.acc, yerr)
        xs = np.linspace(pts.x.min(), pts.x.max(), 20)
        ax.plot(xs, lf.slope * xs + lf.intercept, "k--", lw=0.8)
        text += f"\nreduced χ² = {lf.reduced_chi2:.2f}" + ("" if yerr is not None else " (unweighted)")
        out["reduced_chi2"] = lf.reduced_chi2
    ax.text(0.02, 0.98, text, transform=ax.transAxes, fontsize=7, va="top")
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel("few-shot accuracy (%)", fontsize=8)
    ax.set_title(title, fontsize=8)
    ax.tick_params(labelsize=7)
    return out


def figure7(rows: pd.DataFrame, fewshot_rows: pd.DataFrame, dataset: str | None = None):
    """Few-shot accuracy vs attentive diffusion on the CheXpert(-like) sample: this run | the paper's numbers."""
    import matplotlib.pyplot as plt

    pts = analysis_points(rows, fewshot_rows, "attentive_diffusion")
    dataset = dataset or focus_dataset(pts.dataset if len(pts) else [])
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    _scatter(axes[0], pts[pts.dataset == dataset] if dataset else pts.iloc[:0], "attentive diffusion (%)",
             f"this run: {report.short_title(dataset) if dataset else 'no data'}")
    pp = paper_points("saliency", "attentive_diffusion")
    _scatter(axes[1], pp[pp.dataset == FOCUS_DATASET], "attentive diffusion (%)",
             "paper: CheXpert (Tables A7 and 3)")
    for ax in axes:
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, frameon=False, loc="lower right")
    fig.suptitle("Figure 7: few-shot accuracy vs attentive diffusion", fontsize=9)
    fig.tight_layout()
    return fig


def _per_dataset_grid(panels, title, fit=False, ncols=4):
    """panels: list of (points, xlabel, panel title). One scatter per panel; returns (figure, stats frame)."""
    import matplotlib.pyplot as plt

    if not panels:
        return None, pd.DataFrame()
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, min(ncols, len(panels)), figsize=(3.2 * min(ncols, len(panels)), 2.9 * nrows),
                             squeeze=False)
    stats = []
    for ax, (pts, xl, t) in zip(axes.flat, panels):
        stats.append({"panel": t, **_scatter(ax, pts, xl, t, fit=fit)})
    for ax in list(axes.flat)[len(panels):]:
        ax.set_axis_off()
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig, pd.DataFrame(stats)


def _panel_title(dataset_label: str, metric: str) -> str:
    return f"{dataset_label}: {_transform(metric)}" if metric.startswith("invariance_") else dataset_label


def _run_panels(rows, fewshot_rows, metrics):
    panels = []
    for metric in metrics:
        pts = analysis_points(rows, fewshot_rows, metric)
        for d in dict.fromkeys(pts.dataset):
            panels.append((pts[pts.dataset == d], _metric_label(metric), _panel_title(report.short_title(d), metric)))
    return panels


def _paper_panels(protocol, metrics):
    panels = []
    for metric in metrics:
        pts = paper_points(protocol, metric)
        for d in reference.PAPER_DATASETS:
            if (pts.dataset == d).any():
                panels.append((pts[pts.dataset == d], _metric_label(metric), _panel_title(_paper_ds_label(d), metric)))
    return panels


INVARIANCE_METRICS = ("invariance_rotation", "invariance_hflip", "invariance_hue", "invariance_multiview")


def figureA1(rows, fewshot_rows):
    """Invariance vs few-shot accuracy per (dataset, transform), Pearson r/p: (this run, paper) figures + stats."""
    this = _per_dataset_grid(_run_panels(rows, fewshot_rows, INVARIANCE_METRICS),
                             "Figure A1 (this run): invariance vs few-shot accuracy")
    paper = _per_dataset_grid(_paper_panels("invariance", INVARIANCE_METRICS),
                              "Figure A1 (paper's numbers: Tables A1-A3 vs Table 3)")
    return this, paper


def figureA2(rows, fewshot_rows):
    """Attentive diffusion vs few-shot accuracy per dataset: (this run, paper)."""
    return (_per_dataset_grid(_run_panels(rows, fewshot_rows, ["attentive_diffusion"]),
                              "Figure A2 (this run): attentive diffusion vs few-shot accuracy"),
            _per_dataset_grid(_paper_panels("saliency", ["attentive_diffusion"]),
                              "Figure A2 (paper's numbers: Table A7 vs Table 3)"))


def figureA3(rows, fewshot_rows):
    """Perceptual distance vs few-shot accuracy per dataset with a weighted line and reduced chi^2."""
    metric = distance_metric(rows)
    sub = " — SUBSTITUTE distance, NOT LPIPS" if is_substitute(metric) else ""
    return (_per_dataset_grid(_run_panels(rows, fewshot_rows, [metric]),
                              f"Figure A3 (this run): {_metric_label(metric)} vs few-shot accuracy{sub}", fit=True),
            _per_dataset_grid(_paper_panels("reconstruction", ["lpips_mean"]),
                              "Figure A3 (paper's numbers: mean of Tables A4-A6 vs Table 3)", fit=True))


def source_task_accuracy(models) -> pd.DataFrame:
    """Per model: ImageNet top-1 (registry, the authors' values) or, for the mini-zoo, its source-task
    (FractalDB-mini) linear-probe accuracy from the zoo's manifest: the stand-in for top-1. Absent: no row."""
    from ..models.minizoo import read_manifest

    try:
        man = read_manifest()
    except ValueError:
        man = {}
    records = {**(man.get("random_baseline") or {}), **(man.get("models") or {})}
    out = []
    for m in dict.fromkeys(models):
        spec = model_spec(m)
        if spec.imagenet_top1 is not None:
            out.append({"model": m, "x": float(spec.imagenet_top1), "kind": "ImageNet top-1 (%)"})
            continue
        probe = (records.get(m) or {}).get("probe") or {}
        if "fractal" in probe:
            out.append({"model": m, "x": 100.0 * float(probe["fractal"]),
                        "kind": "source-task probe accuracy (%) — stand-in for ImageNet top-1"})
    return pd.DataFrame(out, columns=["model", "x", "kind"])


def figureA4(fewshot_rows=None, models=None):
    """ImageNet top-1 vs few-shot accuracy per dataset from the paper's data (authors' file top-1, Table 3);
    with ``fewshot_rows``, this run's counterpart (the mini-zoo's source-task probe stands in for top-1)."""
    panels = [(p, "ImageNet top-1 (%)", t) for p, _, t in _paper_panels("imagenet", ["accuracy"])]
    paper = _per_dataset_grid(panels, "Figure A4 (paper's numbers: top-1 from the authors' file vs Table 3)")
    this = (None, pd.DataFrame())
    if fewshot_rows is not None and len(fewshot_rows):
        acc = source_task_accuracy(models if models is not None else fewshot_rows.model.unique())
        if len(acc):
            pts = acc.merge(fewshot_points(fewshot_rows), on="model")
            pts = pts.assign(family=[model_spec(m).family for m in pts.model])
            kind = acc.kind.iloc[0] if acc.kind.nunique() == 1 else "top-1 / source-task accuracy (%)"
            this = _per_dataset_grid([(pts[pts.dataset == d], kind, report.short_title(d))
                                      for d in dict.fromkeys(pts.dataset)],
                                     f"Figure A4 (this run): {kind} vs few-shot accuracy")
    return this, paper


def figure9(rows: pd.DataFrame):
    """Attentive diffusion by model family, in- vs out-of-domain: this run | the paper's Table A7."""
    import matplotlib.pyplot as plt

    sal = rows[rows.metric == "attentive_diffusion"] if len(rows) else rows
    this = pd.DataFrame({"family": [model_spec(m).family for m in sal.model],
                         "domain": [_domain(d) for d in sal.dataset],
                         "value": sal.value}) if len(sal) else pd.DataFrame(columns=["family", "domain", "value"])
    pp = _paper("saliency", "attentive_diffusion")
    pp = pp[pp.dataset.isin(reference.PAPER_DATASETS)]
    paper = pd.DataFrame({"family": [report.reference_family(m) for m in pp.model],
                          "domain": [report.domain_of(d) for d in pp.dataset], "value": pp.value * 100})
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=False)
    for ax, df, label in ((axes[0], this, "this run"), (axes[1], paper, "paper (Table A7)")):
        groups = [(f, d) for f in report.FAMILY_ORDER for d in ("in", "out")
                  if ((df.family == f) & (df.domain == d)).any()]
        if not groups:
            ax.set_title(f"{label}: no data", fontsize=8)
            ax.set_axis_off()
            continue
        data = [df[(df.family == f) & (df.domain == d)].value.to_numpy() for f, d in groups]
        bp = ax.boxplot(data, patch_artist=True)
        for patch, (f, _) in zip(bp["boxes"], groups):
            patch.set_facecolor(_family_colour(f))
            patch.set_alpha(0.5)
        ax.set_xticks(range(1, len(groups) + 1), [f"{report.FAMILY_LABEL.get(f, f)}\n{d}-domain" for f, d in groups],
                      fontsize=7, rotation=20, ha="right")
        ax.set_ylabel("attentive diffusion (%)", fontsize=8)
        ax.set_title(label, fontsize=8)
    fig.suptitle("Figure 9: attentive diffusion by model type, in- vs out-of-domain", fontsize=9)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------- the stated correlations
def _this_run_xy(rows, fewshot_rows, x_protocol, x_metric, x_dataset, y_dataset, models=None):
    """This run's (x, y) points for a correlation stated on real datasets: via each dataset's stand-in."""
    fs = fewshot_points(fewshot_rows)
    fs = fs.assign(real=[report.paper_dataset(d) for d in fs.dataset])
    y = fs[fs.real == y_dataset]
    if x_protocol == "imagenet":
        x = source_task_accuracy(models if models is not None else y.model.unique())[["model", "x"]]
        metric_used = "source-task probe (stand-in for top-1)" if len(x) and \
            x.model.map(lambda m: model_spec(m).imagenet_top1 is None).any() else "ImageNet top-1"
        pts = x.merge(y, on="model")
        return pts, metric_used
    if rows is None or len(rows) == 0:
        return pd.DataFrame(columns=["x", "acc"]), x_metric
    metric = distance_metric(rows) if x_metric == "lpips_mean" else x_metric
    sub = rows[(rows.protocol == x_protocol) & (rows.metric == metric)]
    sub = sub.assign(real=[_real(d) for d in sub.dataset])
    x = sub[sub.real == x_dataset].groupby(["model", "dataset"], as_index=False).value.mean().rename(
        columns={"value": "x"})
    return x.merge(y, on=["model", "dataset"]), metric


def correlations_table(rows: pd.DataFrame | None = None, fewshot_rows: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every correlation the paper states or shows (``reference.published_correlations()``), recomputed from the
    paper's printed tables, from the authors' file, and from this run where it has the data; stated r/p beside.

    The paper side pairs the x table (A1-A7, or top-1 from the authors' file) with Table 3 over the models both
    print; "this run" pairs each analysis model's value on the dataset standing for the real one with its
    few-shot accuracy there (distance: LPIPS mean, or the substitute 1 - SSIM, named in ``this_metric``).
    """
    pub = reference.published_correlations()
    out = []
    for c in pub.itertuples():
        rec = {"where": c.where, "what": c.what, "stated_r": c.r, "stated_p": c.p, "claim": c.claim,
               "x_protocol": c.x_protocol, "x_metric": c.x_metric}
        for label, src in (("paper_tables", "paper"), ("authors_file", "authors")):
            try:
                pts = paper_points(c.x_protocol, c.x_metric, source=src)
            except KeyError:
                pts = pd.DataFrame(columns=["dataset", "x", "acc"])
            pts = pts[pts.dataset == c.y_dataset]
            r, p, _ = _r_text(pts.x, pts.acc)
            rec.update({f"r_{label}": r, f"p_{label}": p, f"n_{label}": len(pts)})
        pts, metric = _this_run_xy(rows, fewshot_rows, c.x_protocol, c.x_metric, c.x_dataset, c.y_dataset)
        r, p, _ = _r_text(pts.x, pts.acc) if len(pts) else (np.nan, np.nan, "")
        rec.update({"r_this_run": r, "p_this_run": p, "n_this_run": len(pts),
                    "this_metric": metric + (" (substitute, NOT LPIPS)" if is_substitute(metric) else ""),
                    "this_datasets": ", ".join(dict.fromkeys(pts.dataset)) if len(pts) else ""})
        out.append(rec)
    return pd.DataFrame(out)


# ---------------------------------------------------------------- numbers for the prose
def family_ad(rows: pd.DataFrame, domain: str) -> dict[str, float]:
    """Mean attentive diffusion (%) per family on the ``domain`` ("in"/"out") datasets of this run."""
    sal = rows[rows.metric == "attentive_diffusion"] if len(rows) else rows
    if sal is None or len(sal) == 0:
        return {}
    dom = [_domain(d) for d in sal.dataset]
    fam = [model_spec(m).family for m in sal.model]
    df = pd.DataFrame({"family": fam, "domain": dom, "value": sal.value.to_numpy()})
    return df[df.domain == domain].groupby("family").value.mean().to_dict()


def paper_family_ad(domain: str) -> dict[str, float]:
    """The same from the paper's Table A7 (in percent), over its eight medical datasets."""
    pp = _paper("saliency", "attentive_diffusion")
    pp = pp[pp.dataset.isin(reference.PAPER_DATASETS)]
    df = pd.DataFrame({"family": [report.reference_family(m) for m in pp.model],
                       "domain": [report.domain_of(d) for d in pp.dataset], "value": pp.value * 100})
    return df[df.domain == domain].groupby("family").value.mean().to_dict()
