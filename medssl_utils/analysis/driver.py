"""The Q3 grid: saliency, feature inversion and invariances over (model, dataset), as result rows.

It works like ``runs.run_grid``: one unit per (analysis, model, dataset), named with ``runs.Unit``; each unit
writes its rows (and its maps / images as outcomes) through ``ResultsStore``, finished units are skipped and
``shard=(i, n)`` splits the grid. One addition: a unit also records the settings that shape its numbers
(``cfg.saliency_image_size``, ``cfg.dip_steps``, ``cfg.invariance_images`` and ``options["analysis"]``),
because the unit name does not contain them; a stored unit whose settings differ is computed again, so a
changed switch can never be hidden by an old file.

Facts from the paper (s4.4, s5.3) and the authors' code (AUTHORS_CODE.md §4.4-§4.6):
- one fixed sample image per dataset for saliency and reconstruction. Ours: the first test-split image of
  the dataset's last class (the pathology) in manifest order, so it is fixed by the seed and the manifest;
- saliency at 242 px with a 10 px patch, cropped to 224; smaller images scale the patch (``scaled_patch``),
  the backbone runs at the saliency size (it is fully convolutional);
- reconstruction at the model's own input size; LPIPS needs torchvision trunk weights, otherwise the
  clearly named substitutes ``one_minus_ssim`` and ``mse`` are the only distances (never called LPIPS);
- invariances on the datasets the authors ran them on (``DatasetSpec.invariances``; MedSynth sets take
  their real counterpart's); rotation k = 20 (the paper does not give k; the authors' runner used 20 for
  EyePACS and PM; elsewhere 256 (the default) or 20, unknown; AUTHORS_CODE.md §4.6), hue k = 5 (the runner's value).

``options["analysis"]`` (validated, every key named in the error): ``<analysis>_datasets`` /
``<analysis>_models`` restrict one analysis (e.g. ``reconstruction_datasets``), and a dict per analysis
passes switches to the tools (``{"saliency": {"bn_mode": "train"}, "invariance": {"include_identity":
True, "shrinkage": "none"}, "reconstruction": {"normalise_input": False}}``); defaults = the tools' defaults.

The pretraining-source column (the paper's ImageNet column of Tables A4-A7): saliency and reconstruction
also run on one image from the models' pretraining source, a record of ``data.source_images`` chosen by the
run's world (FractalDB-mini when every dataset is synthetic, ``data_root/imagenet/`` otherwise; skipped, and
shown as "not run", when that folder has no image). The ``<analysis>_datasets`` filters restrict the run's
datasets only; ``options["analysis"]["source_image"] = False`` switches the column off.
"""
from __future__ import annotations

import dataclasses
import json
import time
import warnings
from functools import lru_cache
from typing import Iterable

import numpy as np
import pandas as pd
import torch

from .. import features as feat
from .. import runs
from ..config import Config
from ..data.registry import get_spec as dataset_spec
from ..data.source_images import SourceImageSpec, get_source, is_source, source_for
from ..models.preprocessing import Preprocess
from ..results import ResultsStore
from ._common import AnalysisError
from .invariance import (features_of, fit_whitening, horizontal_flips, hue_shifts, invariance, multiview_pairs,
                         rotations, similarities)
from .reconstruction import DIP_CHANNELS, DIP_FILTERS, invert_features, perceptual_distance
from .saliency import PAPER_CROP_SIZE, PAPER_IMAGE_SIZE, attentive_diffusion, occlusion_saliency, scaled_patch

ANALYSES = ("saliency", "reconstruction", "invariance")
INVARIANCES = ("rotation", "hflip", "hue", "multiview")
ROTATION_K = 20     # not in the paper; the authors' runner for EyePACS / PM (AUTHORS_CODE.md §4.6)
HUE_K = 5           # the authors' runner (AUTHORS_CODE.md §4.6)
SOURCE_ANALYSES = ("saliency", "reconstruction")   # the paper's ImageNet column is in Tables A4-A7 only
SOURCE_MANIFEST = "source-image"                   # the one-image source sets have no manifest

# Switches passed through to the tools, per analysis (anything else in options["analysis"] is an error).
SWITCHES = {
    "saliency": ("bn_mode", "stride", "batch_size", "value"),
    "reconstruction": ("normalise_input", "lr"),
    "invariance": ("bn_mode", "include_identity", "shrinkage", "sampling", "eps", "max_images",
                   "transformed_normalisation", "rotation_k", "hue_k"),
}


# ---------------------------------------------------------------- settings
def invariances_for(name: str) -> tuple[str, ...]:
    """The invariances measured on dataset ``name``: its own list, else its real counterpart's (MedSynth)."""
    spec = dataset_spec(name)
    if spec.invariances:
        out = tuple(spec.invariances)
    elif spec.stands_for:
        out = tuple(dataset_spec(spec.stands_for).invariances)
    else:
        out = ()
    bad = [t for t in out if t not in INVARIANCES]
    if bad:
        raise AnalysisError(f"dataset {name!r}: invariances {bad} unknown; expected some of {INVARIANCES}")
    return out


def analysis_options(cfg: Config) -> dict:
    """``cfg.options["analysis"]`` checked: list filters and per-analysis switch dicts."""
    opts = cfg.options.get("analysis", {}) or {}
    if not isinstance(opts, dict):
        raise AnalysisError(f"options['analysis'] must be a mapping, got {type(opts).__name__}")
    lists = {f"{a}_{k}" for a in ANALYSES for k in ("datasets", "models")}
    for key, val in opts.items():
        if key == "source_image":
            if not isinstance(val, bool):
                raise AnalysisError(f"options['analysis']['source_image'] must be true or false, got {val!r}")
        elif key in lists:
            if not isinstance(val, (list, tuple)) or not all(isinstance(v, str) for v in val):
                raise AnalysisError(f"options['analysis'][{key!r}] must be a list of registry names, got {val!r}")
        elif key in SWITCHES:
            if not isinstance(val, dict):
                raise AnalysisError(f"options['analysis'][{key!r}] must be a mapping of switches, got {val!r}")
            unknown = set(val) - set(SWITCHES[key])
            if unknown:
                raise AnalysisError(f"options['analysis'][{key!r}]: unknown switch(es) {sorted(unknown)}; "
                                    f"expected some of {list(SWITCHES[key])}")
        else:
            raise AnalysisError(f"options['analysis']: unknown key {key!r}; expected one of "
                                f"{sorted(lists | set(SWITCHES) | {'source_image'})}")
    return opts


def switches(cfg: Config, analysis: str) -> dict:
    return dict(analysis_options(cfg).get(analysis, {}))


def settings(cfg: Config, analysis: str) -> dict:
    """Everything besides (model, dataset, profile, seed) that changes a unit's numbers."""
    base = {"saliency": {"image_size": cfg.saliency_image_size},
            "reconstruction": {"dip_steps": cfg.dip_steps},
            "invariance": {"images": cfg.invariance_images}}[analysis]
    return {**base, "switches": switches(cfg, analysis)}


def _current(store: ResultsStore, cfg: Config, unit: runs.Unit) -> bool:
    if not is_source(unit.dataset):
        return runs.is_current(store, cfg, unit, settings(cfg, unit.protocol))
    name = unit.name(cfg)       # as runs.is_current, with the source image's own input key
    if not store.has(name):
        return False
    try:
        stored = store.read_unit(name)
        same = json.loads(stored.extra.iloc[0]).get("settings") == json.loads(json.dumps(settings(cfg, unit.protocol)))
        return same and str(stored.cache_key.iloc[0]) == input_key(cfg, unit)
    except (ValueError, KeyError, IndexError, AttributeError, TypeError):
        return False


# ---------------------------------------------------------------- the pretraining-source image
def source_image(cfg: Config) -> SourceImageSpec | None:
    """This run's source-image record: its world's (all datasets synthetic or not); None when switched off."""
    if analysis_options(cfg).get("source_image", True) is False:
        return None
    return source_for(all(dataset_spec(d).synthetic for d in cfg.datasets))


def source_status(cfg: Config) -> tuple[SourceImageSpec | None, str | None]:
    """(record, why it does not run or None): the "not run" text of the column when there is no image."""
    spec = source_image(cfg)
    if spec is None:
        return None, "not run: switched off (options.analysis.source_image: false)"
    return spec, spec.missing(str(cfg.data_root) if cfg.data_root else None)


@lru_cache(maxsize=8)
def _source_dataset(name: str, data_root: str | None, cache_dir: str, seed: int):
    return get_source(name).load(data_root=data_root, cache_dir=cache_dir, seed=seed)


def sample_input(cfg: Config, name: str):
    """(dataset, index of its fixed sample image, manifest hash): a registry dataset or a source image."""
    if is_source(name):
        ds = _source_dataset(name, str(cfg.data_root) if cfg.data_root else None, str(cfg.cache_dir), cfg.seed)
        return ds, 0, SOURCE_MANIFEST
    _, mh = runs.manifest(cfg, name)
    return runs.dataset(cfg, name), sample_index(cfg, name), mh


def input_key(cfg: Config, unit: runs.Unit) -> str:
    """The content key of a unit's inputs; a source image's names its own record and pixels."""
    if not is_source(unit.dataset):
        return runs.input_key(cfg, unit)
    ds, _, mh = sample_input(cfg, unit.dataset)
    return feat.cache_key(runs.backbone(cfg, unit.model), ds, mh)


# ---------------------------------------------------------------- inputs
def sample_index(cfg: Config, name: str) -> int:
    """Position (in the dataset's id order) of the dataset's fixed sample image: the first test-split image
    of the last class present in the test split, in manifest order."""
    ds = runs.dataset(cfg, name)
    man, _ = runs.manifest(cfg, name)
    test = man[man.split == "test"]
    if test.empty:
        raise AnalysisError(f"dataset {name!r}: the manifest has no test split to take the sample image from")
    last = int(test.label.max())
    return ds.ids.index(str(test[test.label == last].id.iloc[0]))


def at_size(preprocess: Preprocess, size: int) -> Preprocess:
    """The model's preprocessing, but resized (bicubic, shorter side) and centre-cropped to ``size``."""
    return dataclasses.replace(preprocess, size=int(size), resize=None)


def dip_levels(image_size: int, max_levels: int = len(DIP_CHANNELS)) -> int:
    """Generator depth for an image side: 6 at 224 px (the authors'), 4 at 64 px, 3 at 32 px."""
    return int(min(max_levels, max(1, round(np.log2(max(image_size, 8) / 4)))))


def _uint8_hwc(x01) -> np.ndarray:
    a = np.asarray(x01, dtype=np.float32)
    return (np.clip(a.transpose(1, 2, 0), 0, 1) * 255 + 0.5).astype(np.uint8)


def _row(cfg: Config, unit: runs.Unit, key: str, metric: str, value: float, *, n: int, extra: dict,
         ci: tuple[float, float] | None = None) -> dict:
    row = runs._base_row(cfg, unit, key) | {"question": "Q3", "metric": metric, "value": float(value), "n": n}
    if ci is not None:
        row["ci_low"], row["ci_high"] = float(ci[0]), float(ci[1])
    row["extra"] = json.dumps({**extra, "settings": settings(cfg, unit.protocol)}, sort_keys=True)
    return row


# ---------------------------------------------------------------- the three units
def _source_extra(name: str) -> dict:
    return {"source_image": get_source(name).stands_for} if is_source(name) else {}


def run_saliency_unit(cfg: Config, unit: runs.Unit) -> tuple[list[dict], dict]:
    ds, i, mh = sample_input(cfg, unit.dataset)
    bb = runs.backbone(cfg, unit.model)
    size = cfg.saliency_image_size
    x01 = at_size(bb.preprocess, size).to_unit(ds.image(i))
    patch = scaled_patch(size)
    sw = switches(cfg, "saliency")
    smap = occlusion_saliency(bb.module, x01, bb.preprocess.normalise, patch=patch, progress=False, **sw)
    crop = (size - smap.shape[0]) // 2
    extra = {"sample_id": ds.ids[i], "image_size": size, "patch": patch, "crop": crop,
             "map_shape": list(smap.shape), "paper": f"{PAPER_IMAGE_SIZE} px, 10 px patch, crop to "
                                                    f"{PAPER_CROP_SIZE}", "units": "percent of map pixels",
             **_source_extra(unit.dataset)}
    row = _row(cfg, unit, feat.cache_key(bb, ds, mh), "attentive_diffusion", attentive_diffusion(smap), n=1,
               extra=extra)
    return [row], {"saliency_map": smap.astype(np.float32), "image": _uint8_hwc(x01)}


def run_reconstruction_unit(cfg: Config, unit: runs.Unit) -> tuple[list[dict], dict]:
    ds, i, mh = sample_input(cfg, unit.dataset)
    bb = runs.backbone(cfg, unit.model)
    x01 = bb.preprocess.to_unit(ds.image(i))
    sw = switches(cfg, "reconstruction")
    note = {}
    if "normalise_input" not in sw and bb.preprocess.kind == "histeq":
        # histogram equalisation passes no gradient, so the generator cannot be trained through it
        sw["normalise_input"] = False
        note["normalise_input_note"] = "histogram-equalised model: fed [0, 1] input (as the authors did)"
    levels = dip_levels(int(x01.shape[-1]))
    rec = invert_features(bb.module, x01, bb.preprocess.normalise, n_steps=cfg.dip_steps, seed=cfg.seed,
                          channels=DIP_CHANNELS[:levels], filters=DIP_FILTERS[:levels], progress=False, **sw)
    dist = perceptual_distance(x01.numpy(), rec.image, weights_dir=cfg.weights_dir)
    extra = {"sample_id": ds.ids[i], "image_size": int(x01.shape[-1]), "dip_levels": levels,
             "dip_steps": cfg.dip_steps, "final_feature_mse": float(rec.losses[-1]),
             "lpips": any(k.startswith("lpips") for k in dist), **note, **_source_extra(unit.dataset)}
    key = feat.cache_key(bb, ds, mh)
    rows = [_row(cfg, unit, key, m, v, n=1, extra=extra) for m, v in dist.items()]
    return rows, {"reconstruction": _uint8_hwc(rec.image), "original": _uint8_hwc(x01),
                  "losses": rec.losses.astype(np.float32)}


_TRANSFORMS = {"rotation": lambda x, sw: rotations(x, int(sw.get("rotation_k", ROTATION_K))),
               "hflip": lambda x, sw: horizontal_flips(x),
               "hue": lambda x, sw: hue_shifts(x, int(sw.get("hue_k", HUE_K)))}


def _mean_ci(per_image: np.ndarray) -> tuple[float, float] | None:
    v = per_image[np.isfinite(per_image)]
    if len(v) < 2:
        return None
    half = 1.96 * v.std(ddof=1) / np.sqrt(len(v))
    return float(v.mean() - half), float(v.mean() + half)


def run_invariance_unit(cfg: Config, unit: runs.Unit) -> tuple[list[dict], dict]:
    names = invariances_for(unit.dataset)
    if not names:
        raise AnalysisError(f"dataset {unit.dataset!r} has no invariances to measure (DatasetSpec.invariances)")
    ds = runs.dataset(cfg, unit.dataset)
    bb = runs.backbone(cfg, unit.model)
    fs = runs.features(cfg, unit.model, unit.dataset)
    cached = np.asarray(fs.features, dtype=np.float64)
    sw = switches(cfg, "invariance")
    fit_kw = {k: sw[k] for k in ("shrinkage", "sampling", "eps", "max_images") if k in sw}
    whitening = fit_whitening(cached, seed=cfg.seed, **fit_kw)
    feat_kw = {k: sw[k] for k in ("bn_mode",) if k in sw}
    include_identity = bool(sw.get("include_identity", False))
    rng = np.random.default_rng(cfg.seed)
    n_img = min(cfg.invariance_images, len(ds))
    chosen = np.sort(rng.choice(len(ds), size=n_img, replace=False))
    base = {"whitening": whitening.method, "whitening_images": whitening.n_images,
            "include_identity": include_identity}
    rows, outcomes = [], {}
    for name in names:
        if name == "multiview":
            pairs = np.asarray(ds.pairs, dtype=np.int64).reshape(-1, 2)
            if len(pairs) == 0:
                continue        # the loader found no view pairs (e.g. a frontal-only switch); no row
            sel = np.sort(np.random.default_rng(cfg.seed).choice(len(pairs), size=min(n_img, len(pairs)),
                                                                  replace=False))
            clean, moved = multiview_pairs(cached, pairs[sel])
            identity, n, params = None, len(sel), {"pairs_available": int(len(pairs))}
        else:
            clean_l, moved_l = [], []
            for j in chosen:
                x01 = bb.preprocess.to_unit(ds.image(int(j)))
                ts = _TRANSFORMS[name](x01, sw)
                clean_l.append(features_of(bb.module, x01[None], bb.preprocess.normalise, **feat_kw)[0])
                moved_l.append(features_of(bb.module, ts.images, bb.preprocess.normalise, batch_size=len(ts.images),
                                           transformed_normalisation=sw.get("transformed_normalisation"),
                                           **feat_kw))
            clean, moved = np.stack(clean_l), np.stack(moved_l)
            identity, n = ts.identity_index, n_img
            params = {"k": int(len(ts.params)), "params": [float(p) for p in ts.params]}
        sims = similarities(clean, moved, whitening)
        value = invariance(clean, moved, whitening, include_identity=include_identity, identity_index=identity)
        keep = sims if identity is None or include_identity else np.delete(sims, identity, axis=1)
        with warnings.catch_warnings():       # an image whose similarities are all NaN stays NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            per_image = np.nanmean(keep, axis=1)
        extra = {**base, "transform": name, **params, "ci": "normal approximation over images"}
        rows.append(_row(cfg, unit, fs.key, f"invariance_{name}", value, n=n, extra=extra, ci=_mean_ci(per_image)))
        outcomes[f"similarity_{name}"] = sims.astype(np.float32)
    if not rows:
        raise AnalysisError(f"dataset {unit.dataset!r}: none of the invariances {names} could be measured "
                            "(multi-view needs view pairs in the dataset)")
    return rows, outcomes


RUNNERS = {"saliency": run_saliency_unit, "reconstruction": run_reconstruction_unit,
           "invariance": run_invariance_unit}


# ---------------------------------------------------------------- the grid
def planned_units(cfg: Config, analyses: Iterable[str] = ANALYSES, *, models: Iterable[str] | None = None,
                  datasets: Iterable[str] | None = None) -> list[runs.Unit]:
    """Every (analysis, model, dataset) unit of the grid, in a fixed order (the shards split this list).

    Without ``datasets``: the run's datasets, then (saliency and reconstruction) this run's source image when
    it has one; with ``datasets``, a source image runs only when named there.
    """
    analyses = tuple(analyses)
    bad = [a for a in analyses if a not in ANALYSES]
    if bad:
        raise AnalysisError(f"analyses {bad} unknown; expected some of {ANALYSES}")
    opts = analysis_options(cfg)
    models = tuple(models or cfg.analysis_models)
    if datasets is None:
        spec, why = source_status(cfg)
        sources = [spec.name] if spec is not None and why is None else []
        datasets = tuple(cfg.datasets)
    else:
        datasets = tuple(datasets)
        sources = [d for d in datasets if is_source(d)]
        datasets = tuple(d for d in datasets if not is_source(d))
    units = []
    for a in analyses:
        ds_ok = opts.get(f"{a}_datasets")
        m_ok = opts.get(f"{a}_models")
        for d in datasets:
            if ds_ok is not None and d not in ds_ok:
                continue
            if a == "invariance" and not invariances_for(d):
                continue
            units += [runs.Unit(a, m, d) for m in models if m_ok is None or m in m_ok]
        if a in SOURCE_ANALYSES:
            units += [runs.Unit(a, m, d) for d in sources for m in models if m_ok is None or m in m_ok]
    return units


def run_analysis_grid(cfg: Config, analyses: Iterable[str] = ANALYSES, *, models: Iterable[str] | None = None,
                      datasets: Iterable[str] | None = None, shard: tuple[int, int] | None = None,
                      progress: bool = True) -> pd.DataFrame:
    """Run every analysis unit this worker owns that is not done with the current settings; return the rows of
    every unit of the grid that is done with them (from any worker)."""
    from ..progress import bar

    store = ResultsStore(cfg.results_dir)
    units = planned_units(cfg, analyses, models=models, datasets=datasets)
    todo = [u for u in runs.my_units(units, shard) if not _current(store, cfg, u)]
    from ..preflight import before_units, check_files

    before_units(cfg, [u for u in todo if not is_source(u.dataset)], progress=progress)
    src_todo = [u for u in todo if is_source(u.dataset)]
    if src_todo:        # the source image is not a registry dataset: only its models' weights to check
        check_files(cfg, sorted({u.protocol for u in src_todo}), models={u.model for u in src_todo},
                    datasets=cfg.datasets)
    for u in bar(todo, desc="analysis units", enabled=progress and bool(todo)):
        t0 = time.perf_counter()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            rows, outcomes = RUNNERS[u.protocol](cfg, u)
        outcomes["seconds"] = np.array([time.perf_counter() - t0])
        store.write(u.name(cfg), rows, outcomes)
    done = [u.name(cfg) for u in units if _current(store, cfg, u)]
    if not done:
        return pd.DataFrame()
    return pd.concat([store.read_unit(n) for n in done], ignore_index=True)


def outcome(cfg: Config, analysis: str, model: str, data: str, name: str) -> np.ndarray:
    """A stored map / image of one unit (e.g. ``"saliency_map"``, ``"reconstruction"``, ``"original"``)."""
    return runs.outcomes(cfg, analysis, model, data, name)
