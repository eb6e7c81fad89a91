"""Tables and figures of the book's reference pages (datasets, models, methods), built from the code.

Why this exists: the reference pages must say what the code does, so every table here is read from the
registries, the protocol modules' constants and keyword defaults, and the deviation records, never typed
by hand; the notebooks only call these builders. Each builder returns a DataFrame, a figure or a Markdown
string, and tolerates parts of the project that are not there yet (the mini-zoo manifest, the weights
fetcher) by returning ``None`` plus a note instead of failing.
"""
from __future__ import annotations

from ..errors import MedsslError

import importlib
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from ..data.registry import PAPER_ORDER, DatasetSpec, available as dataset_names, get_spec as dataset_spec


class PagesError(MedsslError):
    """Bad input to a page builder: names the argument and what was expected."""


# =====================================================================================================
# Datasets
# =====================================================================================================
def real_specs() -> list[DatasetSpec]:
    """The paper's datasets in the paper's order (then any other real dataset the registry holds)."""
    real = [n for n in dataset_names() if not dataset_spec(n).synthetic and not dataset_spec(n).root]  # not users'
    order = [n for n in PAPER_ORDER if n in real] + sorted(set(real) - set(PAPER_ORDER))
    return [dataset_spec(n) for n in order]


def medsynth_specs() -> list[DatasetSpec]:
    """MedSynth sets ordered like the real sets they stand for; sets standing for none come last."""
    syn = [dataset_spec(n) for n in dataset_names() if dataset_spec(n).synthetic]
    rank = {n: i for i, n in enumerate(PAPER_ORDER)}
    return sorted(syn, key=lambda s: (rank.get(s.stands_for, len(rank)), s.name))


def _join(xs: Iterable[Any]) -> str:
    return ", ".join(str(x) for x in xs) if xs else "none"


def _options_text(options: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in options.items()) or "none"


def real_dataset_table() -> pd.DataFrame:
    """One row per real dataset: the registry record beside the paper's Table 1 (images, classes as published)."""
    from ..reference import dataset_table

    t1 = dataset_table().set_index("dataset")
    rows = []
    for s in real_specs():
        paper = t1.loc[s.name] if s.name in t1.index else None
        rows.append({
            "Dataset": s.title, "Registry name": s.name, "Modality": s.modality, "Domain": s.domain,
            "Classes (after label conversion)": _join(s.classes), "Label policy": s.label_policy,
            "Few-shot ways": s.fewshot_ways, "Many-shot": _join(s.manyshot), "Metric": s.metric,
            "Split": s.split,
            "Images (paper Table 1)": int(paper.n_images) if paper is not None else s.n_images_paper,
            "Classes (paper Table 1)": int(paper.n_classes) if paper is not None else None,
            "URL": s.url, "Licence": s.licence,
        })
    return pd.DataFrame(rows)


def real_layouts_table() -> pd.DataFrame:
    """Where each real dataset is read from (under ``data_root``) and its switches with their defaults."""
    rows = []
    for s in real_specs():
        mod = inspect.getmodule(s.loader)
        rows.append({"Dataset": s.title, "Folder under data_root": f"{s.folder}/",
                     "Switches (default)": _options_text(s.options), "Multi-view pairs": s.multiview,
                     "Loader": f"{mod.__name__}.{s.loader.__name__}" if mod else s.loader.__name__})
    return pd.DataFrame(rows)


def real_layouts_markdown() -> str:
    """The real loaders' own documentation (module docstrings: native layout, label rules, switches)."""
    seen, parts = set(), []
    for s in real_specs():
        mod = inspect.getmodule(s.loader)
        if mod is None or mod.__name__ in seen or not mod.__doc__:
            continue
        seen.add(mod.__name__)
        titles = [x.title for x in real_specs() if inspect.getmodule(x.loader) is mod]
        folders = ", ".join(f"`data_root/{x.folder}/`" for x in real_specs() if inspect.getmodule(x.loader) is mod)
        parts.append(f"**{' and '.join(titles)}** ({folders}; `{mod.__name__}`)\n\n{inspect.cleandoc(mod.__doc__)}")
    return "\n\n---\n\n".join(parts)


def medsynth_sizes(spec: DatasetSpec, scale: float = 1.0) -> tuple[int, int]:
    """(images per class, total images) of a MedSynth set at ``scale``, as its generator will make them."""
    from ..data.medsynth.common import counts_from

    per = counts_from(spec.name, len(spec.classes), int(spec.options.get("n_per_class", 100)),
                      float(spec.options.get("scale", 1.0)) * float(scale))
    return per, per * len(spec.classes)


def medsynth_table(scale: float = 1.0, image_size: int | None = None) -> pd.DataFrame:
    """One row per MedSynth set: the real set it stands for, its classes and its size at ``scale``."""
    if not np.isfinite(scale) or scale <= 0:
        raise PagesError(f"scale must be a positive number, got {scale!r}")
    rows = []
    for s in medsynth_specs():
        per, total = medsynth_sizes(s, scale)
        real = dataset_spec(s.stands_for).title if s.stands_for else "none (in-domain pretraining source)"
        rows.append({"MedSynth set": s.name, "Stands for": real, "Modality": s.modality, "Domain": s.domain,
                     "Classes": _join(s.classes), "Images per class": per, "Images": total,
                     "Image side (px)": image_size, "Few-shot ways": s.fewshot_ways, "Many-shot": _join(s.manyshot),
                     "Metric": s.metric, "Split": s.split, "Multi-view pairs": s.multiview,
                     "What the label means": s.label_policy})
    df = pd.DataFrame(rows)
    return df if image_size is not None else df.drop(columns=["Image side (px)"])


def medsynth_grid(names: Iterable[str] | None = None, *, per_class: int = 3, image_size: int = 64, seed: int = 0):
    """Figure-1 counterpart: a few examples of every class of each MedSynth set (SYNTHETIC images)."""
    from ..data.medsynth import example_grid

    names = [s.name for s in medsynth_specs()] if names is None else list(names)
    return example_grid(names, per_class=per_class, image_size=image_size, seed=seed)


def uses_medsynth(cfg) -> bool:
    """Whether the run reads any MedSynth set (the MedSynth sections of the datasets page apply only then)."""
    return any(dataset_spec(d).synthetic for d in cfg.datasets)


def example_figure(cfg, *, per_class: int = 3):
    """Figure-1 counterpart for the run's own data: MedSynth's generator grid, or the loaders' real images."""
    if uses_medsynth(cfg):
        return medsynth_grid(per_class=per_class, image_size=cfg.image_size, seed=cfg.seed)
    import matplotlib.pyplot as plt
    from PIL import Image

    from ..pipeline import inputs

    panels = []
    for name in cfg.datasets:
        ds = inputs.dataset(cfg, name)
        labels = np.asarray(ds.labels)
        for c, cls in enumerate(ds.classes):
            for i in np.flatnonzero(labels == c)[:per_class]:
                panels.append((f"{dataset_spec(name).title}\n{cls}", ds.image(int(i))))
    cols = max(1, per_class * 2)
    rows = max(1, -(-len(panels) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.9 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (title, img) in zip(axes.ravel(), panels):
        img = img if isinstance(img, Image.Image) else Image.fromarray(np.asarray(img))
        ax.imshow(img.convert("RGB").resize((96, 96)))
        ax.set_title(title, fontsize=6)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------ learnability baseline
def downsample(images: np.ndarray, pixels: int) -> np.ndarray:
    """(N, H, W, 3) uint8 -> (N, pixels * pixels * 3) float features in [0, 1], by area averaging."""
    import torch
    import torch.nn.functional as F

    a = np.asarray(images)
    if a.ndim != 4 or a.shape[-1] != 3:
        raise PagesError(f"images must be an (N, H, W, 3) array, got shape {a.shape}")
    if pixels < 1 or pixels > min(a.shape[1:3]):
        raise PagesError(f"pixels={pixels}; expected 1 <= pixels <= image side {min(a.shape[1:3])}")
    x = torch.from_numpy(a).permute(0, 3, 1, 2).float() / 255.0
    return F.adaptive_avg_pool2d(x, pixels).reshape(len(a), -1).numpy()


def chance_level(y_test: np.ndarray, metric: str) -> float:
    """Score of the best constant guess: majority-class share (accuracy), 1/K (mean per-class accuracy)."""
    y = np.asarray(y_test)
    if y.size == 0:
        raise PagesError("y_test is empty")
    if metric == "mean_per_class_accuracy":
        return 1.0 / len(np.unique(y))
    if metric == "accuracy":
        return float(np.bincount(y).max() / y.size)
    raise PagesError(f"unknown metric {metric!r}; expected 'accuracy' or 'mean_per_class_accuracy'")


def pixel_baseline(X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray, *, C: float = 1.0) -> np.ndarray:
    """Test predictions of a standardised multinomial logistic regression on raw features (one fixed C)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    if len(np.unique(y_train)) < 2:
        raise PagesError("y_train has a single class; the baseline needs at least two")
    with threadpool_limits(limits=1, user_api="blas"):
        sc = StandardScaler().fit(X_train)
        clf = LogisticRegression(C=C, max_iter=500, tol=1e-3).fit(sc.transform(X_train), y_train)
        return clf.predict(sc.transform(X_test))


LEARNABILITY_PIXELS = 16   # 16 x 16 x 3 = 768 raw features: small enough for seconds, large enough to see lesions
LEARNABILITY_C = 1.0


def learnability_table(cfg, names: Iterable[str] | None = None, *, pixels: int = LEARNABILITY_PIXELS,
                       C: float = LEARNABILITY_C) -> pd.DataFrame:
    """Per MedSynth set: pixel-baseline score on the held-out test split of the run's manifest, beside chance.

    The data and split are exactly the ones the protocols use (``inputs.dataset``/``inputs.manifest`` with the
    run's seed and scale); the classifier is fit on train + val and scored once on test, in percent, with a
    percentile-bootstrap 95 % interval over the test images.
    """
    from ..pipeline import inputs
    from ..stats import bootstrap_ci

    names = [s.name for s in medsynth_specs()] if names is None else list(names)
    rows = []
    for name in names:
        spec = dataset_spec(name)
        if not spec.synthetic:
            raise PagesError(f"learnability_table: {name!r} is not a MedSynth set")
        ds = inputs.dataset(cfg, name)
        man, _ = inputs.manifest(cfg, name)
        pos = {i: k for k, i in enumerate(ds.ids)}
        tr = man[man.split != "test"]
        te = man[man.split == "test"]
        itr = np.array([pos[i] for i in tr.id])
        ite = np.array([pos[i] for i in te.id])
        X = downsample(ds.images, pixels)
        ytr, yte = ds.labels[itr], ds.labels[ite]
        pred = pixel_baseline(X[itr], ytr, X[ite], C=C)
        ci = bootstrap_ci(y_true=yte, y_pred=pred, metric=spec.metric, seed=cfg.seed)
        chance = chance_level(yte, spec.metric)
        rows.append({"MedSynth set": name, "Classes": len(spec.classes), "Train + val": len(itr),
                     "Test": len(ite), "Metric": spec.metric, "Pixel baseline (%)": round(100 * ci.estimate, 1),
                     "95% CI": f"{100 * ci.low:.1f} to {100 * ci.high:.1f}", "Chance (%)": round(100 * chance, 1),
                     "Above chance (points)": round(100 * (ci.estimate - chance), 1),
                     "CI above chance": bool(ci.low > chance)})
    return pd.DataFrame(rows)


# =====================================================================================================
# Models
# =====================================================================================================
def paper_models_table() -> pd.DataFrame:
    """The paper's checkpoints: method, architecture, data, sources, layout, preprocessing, dims, top-1."""
    from ..models.registry import available, get_spec

    rows = []
    for n in available("paper"):
        s = get_spec(n)
        rows.append({"Model": s.title, "Registry name": s.name, "Family": s.family, "Method": s.method,
                     "Architecture": s.arch, "Pretraining data": s.pretrain_data, "Feature dim": s.feature_dim,
                     "Preprocessing": s.preprocessing, "Input (px)": s.input_size,
                     "Original layout (converter)": s.layout, "Original file": s.filename,
                     "Source URL(s)": " ".join(s.urls),
                     "ImageNet top-1 (authors' file, %)": s.imagenet_top1})
    order = {"self-supervised": 0, "supervised": 1, "domain-specific": 2}
    df = pd.DataFrame(rows)
    return df.sort_values(["Family", "Registry name"], key=lambda c: c.map(order).fillna(9) if c.name == "Family"
                          else c, kind="stable").reset_index(drop=True)


FAMILY_MEANING = {"supervised": "supervised pretraining on the source images",
                  "self-supervised": "self-supervised pretraining on the source images",
                  "domain-specific": "self-supervised pretraining on chest X-rays",
                  "random": "no pretraining (random initialisation)"}
DOMAIN_MEANING = {"in": "in-domain: chest X-rays (the domain-specific models' domain)",
                  "out": "out-of-domain: not chest X-rays"}


def terminology_table(models: Iterable[str], datasets: Iterable[str]) -> pd.DataFrame:
    """Table 2's counterpart for a run: each model category and dataset domain, with the run's members, read
    from the registries (``ModelSpec.family``, ``DatasetSpec.domain``); categories no run member has are left out."""
    from ..models.registry import get_spec as model_spec

    rows = []
    models, datasets = list(dict.fromkeys(models)), list(dict.fromkeys(datasets))
    for family, meaning in FAMILY_MEANING.items():
        members = [model_spec(m).title for m in models if model_spec(m).family == family]
        if members:
            rows.append({"Kind": "Models", "Term": family, "Meaning": meaning, "In this run": ", ".join(members)})
    order = {d: k for k, d in enumerate(PAPER_ORDER)}
    for domain, meaning in DOMAIN_MEANING.items():
        members = sorted((d for d in datasets if dataset_spec(d).domain == domain), key=lambda d: order.get(
            dataset_spec(d).stands_for or d, len(order)))
        if members:
            rows.append({"Kind": "Datasets", "Term": domain, "Meaning": meaning,
                         "In this run": ", ".join(dataset_spec(d).title for d in members)})
    return pd.DataFrame(rows, columns=["Kind", "Term", "Meaning", "In this run"])


def paper_model_notes() -> pd.DataFrame:
    from ..models.registry import available, get_spec

    return pd.DataFrame([{"Model": get_spec(n).title, "Notes": get_spec(n).notes} for n in available("paper")
                         if get_spec(n).notes])


def weights_status(weights_dir: str | Path | None) -> tuple[pd.DataFrame | None, str]:
    """(table, note): which original and converted checkpoints are in ``weights_dir``; never downloads."""
    if weights_dir is None:
        return None, ("This profile sets no `weights_dir`, so no checkpoint of the paper was looked for; "
                      "the models it runs are the mini-zoo's, which ship inside the package. Run with "
                      "`-p weights_dir=FOLDER` to see which of the 13 checkpoints are present and converted.")
    try:
        from ..models import fetch
    except ImportError as exc:
        return None, f"The weights status is not available in this version of the code ({exc})."
    weights_dir = Path(weights_dir)
    if not weights_dir.is_dir():
        return None, f"`weights_dir` {weights_dir} is not a folder."
    df = fetch.status(weights_dir)
    return df, (f"Checkpoints in `{weights_dir}`: {int(df.converted.sum())} of {len(df)} converted, "
                f"{int(df.verified.sum())} verified against their manifest entry.")


# ------------------------------------------------------------------------------ mini-zoo
@dataclass
class MiniZoo:
    """The mini-zoo manifest read defensively: model records, random-init probes, and the recipes known."""

    models: dict[str, dict]
    random: dict[str, dict]
    recipes: dict[str, Any]
    path: Path
    note: str = ""

    @property
    def empty(self) -> bool:
        return not self.models


def read_minizoo(path: str | Path | None = None) -> MiniZoo:
    """The manifest at ``path`` (default: the package's); an empty zoo with a note when it is absent."""
    from ..models.minizoo import MANIFEST_PATH, read_manifest
    from ..models.minizoo.recipes import RECIPES

    path = Path(path) if path is not None else MANIFEST_PATH
    note = ""
    try:
        data = read_manifest(path)
    except ValueError as exc:
        data, note = {}, str(exc)
    if not path.is_file():
        note = (f"The mini-zoo manifest ({path.name}) does not exist yet: no mini-zoo model has been trained and "
                "published, so only the random-init models are registered. Build it with "
                "`python -m medssl_utils.models.minizoo.train --all`.")
    models = {k: v for k, v in (data.get("models") or {}).items() if isinstance(v, dict)}
    return MiniZoo(models=models, random=dict(data.get("random_baseline") or {}), recipes=RECIPES, path=path,
                   note=note)


def _source_task(recipe) -> str:
    return "cxr" if any(st.data == "cxr" for st in recipe.stages) else "fractal"


def _mean_sd(v: list[float]) -> tuple[float, float]:
    a = np.asarray(v, float)
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0


def _pm(v: list[float]) -> str:
    if not v:
        return ""
    m, s = _mean_sd(v)
    return f"{100 * m:.1f} ± {100 * s:.1f} (n={len(v)})"


def _probes(records: Iterable[dict], task: str) -> list[float]:
    return [float(r["probe"][task]) for r in records if isinstance(r.get("probe"), dict) and task in r["probe"]]


def minizoo_table(zoo: MiniZoo) -> pd.DataFrame:
    """One card (row) per recipe: method, corpus, steps, seeds built, source-task probe vs random init."""
    from ..models.minizoo.train import summarise

    ok = {k: r for k, r in zoo.models.items() if isinstance(r.get("probe"), dict) and r.get("recipe") in zoo.recipes}
    rand_ok = {k: r for k, r in zoo.random.items() if isinstance(r.get("probe"), dict)}
    verdicts = summarise({"models": ok, "random_baseline": rand_ok})   # the manifest's own rule
    rows = []
    for key, rec in zoo.recipes.items():
        built = sorted((r for r in zoo.models.values() if r.get("recipe") == key), key=lambda r: r.get("train_seed", 0))
        task = _source_task(rec)
        accs = _probes(built, task)
        rand = _probes(zoo.random.values(), task)
        v = verdicts.get(key, {}).get(task, {})
        margin = f"{100 * v['margin']:+.1f}" if "margin" in v else ""
        spread = f"{100 * v['spread']:.1f}" if "spread" in v else ""
        beats = "" if "margin" not in v else "too few seeds" if v["n"] < 2 else \
            "yes" if verdicts[key]["passes"] else "NO"
        rows.append({
            "Recipe": rec.title, "Key": key, "Family": rec.family, "Method": rec.method,
            "Corpus": rec.pretrain_data, "Init from": rec.init_from or "random",
            "Stages (method/data/steps/batch)": "; ".join(f"{st.method}/{st.data}/{st.steps}/{st.batch_size}"
                                                          for st in rec.stages),
            "Steps": sum(st.steps for st in rec.stages),
            "Seeds built": ", ".join(str(r.get("train_seed", "?")) for r in built) or "not built yet",
            "Probe task": task, "Probe acc. (%)": _pm(accs), "Random init (%)": _pm(rand),
            "Margin (points)": margin, "Seed spread (points)": spread, "Margin > spread": beats,
            "Wall time (s, per seed)": (f"{np.mean([r['wall_time_s'] for r in built if 'wall_time_s' in r]):.0f}"
                                        if any("wall_time_s" in r for r in built) else ""),
            "Notes": rec.notes,
        })
    return pd.DataFrame(rows)


def _curve(rec: dict) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """Concatenate the stages' down-sampled curves; returns steps, losses and the stage boundaries."""
    steps, losses, bounds, offset = [], [], [], 0
    for stage in rec.get("loss_curve") or []:
        if not stage:
            continue
        pts = np.asarray(stage, float)
        steps.append(pts[:, 0] + offset)
        losses.append(pts[:, 1])
        offset += pts[-1, 0]
        bounds.append(offset)
    if not steps:
        return np.array([]), np.array([]), []
    return np.concatenate(steps), np.concatenate(losses), bounds[:-1]


def loss_curve_figure(zoo: MiniZoo):
    """Pretraining loss against step, one panel per recipe, one line per seed (stage boundaries dotted)."""
    import matplotlib.pyplot as plt

    keys = [k for k in zoo.recipes if any(r.get("recipe") == k for r in zoo.models.values())]
    if not keys:
        return None
    ncol = min(4, len(keys))
    nrow = int(np.ceil(len(keys) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.1 * ncol, 2.4 * nrow), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        for r in sorted((r for r in zoo.models.values() if r.get("recipe") == key), key=lambda r: r.get("train_seed", 0)):
            x, y, bounds = _curve(r)
            if x.size:
                cut = np.searchsorted(x, bounds, side="right")      # one line per stage, same colour
                colour = None
                for k, (xs, ys) in enumerate(zip(np.split(x, cut), np.split(y, cut))):
                    (line,) = ax.plot(xs, ys, lw=1, color=colour,
                                      label=f"seed {r.get('train_seed', '?')}" if k == 0 else None)
                    colour = line.get_color()
            for b in bounds:
                ax.axvline(b, color="grey", ls=":", lw=0.8)
        ax.set_title(zoo.recipes[key].title, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.set_ylabel("training loss", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6, frameon=False)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def probe_figure(zoo: MiniZoo):
    """Linear-probe accuracy per recipe (dots: seeds, bar: mean ± SD) beside the random-init band, per task."""
    import matplotlib.pyplot as plt

    keys = [k for k in zoo.recipes if any(r.get("recipe") == k for r in zoo.models.values())]
    if not keys:
        return None
    tasks = sorted({t for r in zoo.models.values() for t in (r.get("probe") or {})})
    fig, axes = plt.subplots(1, len(tasks), figsize=(max(4.5, 0.8 * len(keys) + 1.5) * len(tasks), 3.4),
                             squeeze=False)
    for ax, task in zip(axes[0], tasks):
        rand = _probes(zoo.random.values(), task)
        if rand:
            m, s = _mean_sd(rand)
            ax.axhspan(100 * (m - s), 100 * (m + s), color="grey", alpha=0.25, lw=0)
            ax.axhline(100 * m, color="grey", lw=1, label=f"random init (n={len(rand)})")
        for i, key in enumerate(keys):
            accs = _probes([r for r in zoo.models.values() if r.get("recipe") == key], task)
            if not accs:
                continue
            m, s = _mean_sd(accs)
            colour = "C1" if _source_task(zoo.recipes[key]) == task else "C0"
            ax.errorbar([i], [100 * m], yerr=[100 * s], fmt="s", color=colour, capsize=3, ms=5)
            ax.scatter(np.full(len(accs), i) + np.linspace(-0.12, 0.12, len(accs)), 100 * np.asarray(accs),
                       s=10, color="k", zorder=3)
        ax.set_xticks(range(len(keys)), [zoo.recipes[k].title.replace("Mini ", "") for k in keys], rotation=30,
                      ha="right", fontsize=7)
        ax.set_ylabel("probe accuracy (%)", fontsize=8)
        ax.set_title(f"probe task: {task}", fontsize=9)
        ax.tick_params(labelsize=7)
        if rand:
            ax.legend(fontsize=7, frameon=False)
    fig.suptitle("squares: mean ± SD over seeds (orange on the recipe's own source task); dots: seeds; "
                 "grey band: random init mean ± SD", fontsize=8)
    fig.tight_layout()
    return fig


# =====================================================================================================
# Methods
# =====================================================================================================
@dataclass(frozen=True)
class Constant:
    protocol: str
    name: str
    paper: str            # what the paper states, with its section; "not stated" where silent
    section: str
    module: str
    attr: str             # module constant, or "function.parameter" for a keyword default
    profile_key: str = ""  # Config field that scales it in a profile (empty: not scaled)
    profile_fn: Any = None  # maps the profile value to this constant's value (e.g. image side -> patch)


def code_value(module: str, attr: str) -> Any:
    """A module constant (``N_SHOT``) or a keyword default (``finetune.max_steps``), read from the code."""
    mod = importlib.import_module(module)
    if "." in attr:
        fn, param = attr.split(".", 1)
        p = inspect.signature(getattr(mod, fn)).parameters
        if param not in p:
            raise PagesError(f"{module}.{fn} has no parameter {param!r}")
        return p[param].default
    if not hasattr(mod, attr):
        raise PagesError(f"{module} has no constant {attr!r}")
    return getattr(mod, attr)


def _scaled_patch(side: int) -> int:
    from ..analysis.saliency import scaled_patch

    return scaled_patch(side)


_FS, _L, _F = "medssl_utils.protocols.fewshot", "medssl_utils.protocols.linear", "medssl_utils.protocols.finetune"
_S, _R, _I = "medssl_utils.analysis.saliency", "medssl_utils.analysis.reconstruction", "medssl_utils.analysis.invariance"
_M = "medssl_utils.data.manifests"

CONSTANTS: tuple[Constant, ...] = (
    Constant("few-shot", "support images per class (shots)", "20", "4.3.1", _FS, "N_SHOT"),
    Constant("few-shot", "query images per class", "15", "4.3.1", _FS, "N_QUERY"),
    Constant("few-shot", "episodes", "600", "4.3.1", _FS, "N_EPISODES", "n_episodes"),
    Constant("few-shot", "episode seed", "not stated (authors: 0)", "4.3.1", _FS, "sample_episodes.seed", "seed"),
    Constant("few-shot", "image pool", "the dataset (authors: first 10,001 rows of the big sets)", "4.3.1", _FS,
             "sample_episodes.pool"),
    Constant("split", "default split (test fraction 20 %)", "not stated (authors: 80/20, seed 42)", "4.3.2", _M,
             "make_manifest.split"),
    Constant("split", "validation fraction of train", "not stated (authors: 20 %)", "4.3.2", _M,
             "make_manifest.val_fraction"),
    Constant("linear", "C grid size", "45", "4.3.2", _L, "N_GRID"),
    Constant("linear", "C grid range (log10)", "1e-6 to 1e5", "4.3.2", _L, "GRID_LOG10"),
    Constant("linear", "C grid convention", "C itself (authors: C = 1/wd)", "4.3.2", _L,
             "LinearSettings.c_grid_convention"),
    Constant("linear", "feature standardisation (train mean and SD)", "not stated (authors: no)", "4.3.2", _L,
             "LinearSettings.standardize"),
    Constant("linear", "solver", "not stated (authors: lbfgs)", "4.3.2", _L, "LinearSettings.solver"),
    Constant("linear", "solver tolerance", "not stated (authors: 1e-4)", "4.3.2", _L, "LinearSettings.tol"),
    Constant("linear", "solver max_iter", "not stated (authors: 100)", "4.3.2", _L, "LinearSettings.max_iter"),
    Constant("linear", "val-score tie tolerance", "not stated (authors: exact ties)", "4.3.2", _L,
             "LinearSettings.tie_tol"),
    Constant("linear", "warm start", "not stated (authors: yes)", "4.3.2", _L, "LinearSettings.warm_start"),
    Constant("finetune", "max steps", "5000", "4.3.2", _F, "finetune.max_steps", "finetune_max_steps"),
    Constant("finetune", "validation check every (steps)", "200", "4.3.2", _F, "finetune.eval_every",
             "finetune_eval_every"),
    Constant("finetune", "early-stopping patience (checks)", "3", "4.3.2", _F, "finetune.patience"),
    Constant("finetune", "learning rate", "1e-2", "4.3.2", _F, "finetune.lr"),
    Constant("finetune", "learning-rate schedule", "fixed (authors: cosine annealing over max steps)", "4.3.2", _F,
             "finetune.schedule"),
    Constant("finetune", "SGD momentum", "0.9", "4.3.2", _F, "finetune.momentum"),
    Constant("finetune", "Nesterov", "yes", "4.3.2", _F, "finetune.nesterov"),
    Constant("finetune", "weight decay", "1e-8", "4.3.2", _F, "finetune.weight_decay"),
    Constant("finetune", "batch size", "64 (16 for DenseNet-121)", "4.3.2", _F, "finetune.batch_size"),
    Constant("finetune", "augmentation", "random resized crop + horizontal flip", "4.3.2", _F, "finetune.augment"),
    Constant("finetune", "restore best weights at the stop", "early stopping (authors: no restore)", "4.3.2", _F,
             "finetune.restore_best"),
    Constant("saliency", "image side (px)", "242", "4.4.1", _S, "PAPER_IMAGE_SIZE", "saliency_image_size"),
    Constant("saliency", "occlusion patch (px)", "10", "4.4.1", _S, "PAPER_PATCH", "saliency_image_size",
             _scaled_patch),
    Constant("saliency", "map crop (px)", "224", "4.4.1", _S, "PAPER_CROP_SIZE", "saliency_image_size",
             lambda side: side - 2 * (_scaled_patch(side) - 1)),
    Constant("saliency", "stride (px)", "not stated (authors: 1)", "4.4.1", _S, "occlusion_saliency.stride"),
    Constant("saliency", "BatchNorm mode", "not stated (authors: train)", "4.4.1", _S, "occlusion_saliency.bn_mode"),
    Constant("reconstruction", "DIP updates", "not stated (authors: 3000, loop ran 3001)", "4.4.2", _R,
             "PAPER_STEPS", "dip_steps"),
    Constant("reconstruction", "Adam learning rate", "not stated (authors: 1e-3)", "4.4.2", _R, "PAPER_LR"),
    Constant("reconstruction", "generator channels per level", "not stated (authors' DIP skip net)", "4.4.2", _R,
             "DIP_CHANNELS"),
    Constant("reconstruction", "noise input channels", "not stated (authors: 32)", "4.4.2", _R, "DIP_NOISE_CHANNELS"),
    Constant("reconstruction", "normalised input", "not stated (authors: no)", "4.4.2", _R,
             "invert_features.normalise_input"),
    Constant("invariance", "images for mean and covariance", "1000 (all if fewer)", "4.4.3", _I,
             "PAPER_COVARIANCE_IMAGES"),
    Constant("invariance", "images for the similarity", "100", "4.4.3", _I, "PAPER_SIMILARITY_IMAGES",
             "invariance_images"),
    Constant("invariance", "eps added to the covariance", "not stated (authors: 1e-6)", "4.4.3", _I, "AUTHORS_EPS"),
    Constant("invariance", "covariance shrinkage", "not stated (authors: none)", "4.4.3", _I,
             "fit_whitening.shrinkage"),
    Constant("invariance", "rotation angles k", "not stated (authors: 20 or 256)", "4.4.3", _I, "rotations.k"),
    Constant("invariance", "hue factors k", "not stated (authors: 5)", "4.4.3", _I, "hue_shifts.k"),
    Constant("invariance", "identity in the mean", "mean over all parameters (Eq. 3)", "4.4.3", _I,
             "invariance.include_identity"),
)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, tuple):
        return "(" + ", ".join(_fmt(x) for x in v) + ")"
    return str(v)


def protocol_constants(cfg=None) -> pd.DataFrame:
    """The protocol constants as the code has them, beside the paper's value and section.

    With ``cfg``, the column "this profile" gives the value the run uses where the profile scales it.
    """
    rows = []
    for c in CONSTANTS:
        value = code_value(c.module, c.attr)
        prof = ""
        if cfg is not None and c.profile_key:
            raw = getattr(cfg, c.profile_key)
            prof = _fmt(c.profile_fn(raw) if c.profile_fn else raw)
        rows.append({"Protocol": c.protocol, "Constant": c.name, "Paper": c.paper, "Paper section": c.section,
                     "Our default": _fmt(value), "Defined in": f"{c.module.split('medssl_utils.')[-1]}.{c.attr}",
                     "This profile": prof})
    return pd.DataFrame(rows)


def fewshot_ways_table() -> pd.DataFrame:
    """n-way of the few-shot protocol per real dataset, from the registry (paper 4.3.1)."""
    return pd.DataFrame([{"Dataset": s.title, "Ways": s.fewshot_ways, "Many-shot": _join(s.manyshot),
                          "Many-shot metric": s.metric} for s in real_specs()])


def show(df: pd.DataFrame):
    """A table for the book: no index, no truncated cells (pandas' HTML cuts long text otherwise)."""
    return df.style.hide(axis="index").format(precision=2, na_rep="")


def schema_table() -> pd.DataFrame:
    from ..results import SCHEMA

    return pd.DataFrame([{"Column": k, "Meaning": v} for k, v in SCHEMA.items()])


def deviations_table() -> pd.DataFrame:
    """Every deviation record with the switch, its default as the code has it now, and how to get the code's."""
    from .deviations import DEVIATIONS, DeviationError

    rows = []
    for d in DEVIATIONS:
        sw = d.switch
        try:
            now = _fmt(sw.resolve()) if d.status == "exists" else "(planned)"
        except DeviationError as exc:
            now = f"MISSING: {exc}"
        rows.append({"Deviation": d.name, "Paper": f"{d.paper} ({d.paper_section})", "Authors' code": d.code,
                     "Our default": d.ours, "Switch": sw.where, "Default in code": now,
                     "Reproduce the code": ("already the default" if sw.code_value == sw.default and d.status == "exists"
                                            else sw.usage),
                     "Status": d.status, "AUTHORS_CODE.md": d.notes})
    return pd.DataFrame(rows)
