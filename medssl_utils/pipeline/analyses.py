"""The Q3 analyses of paper section 4.4 as grid units: saliency, feature inversion and invariances.

One unit per (analysis, model, dataset), run by ``grid`` like the transfer protocols: each writes its rows and
its maps / images (as outcomes). The settings that shape its numbers (``SaliencySettings`` and its siblings:
``cfg.saliency_image_size``, ``cfg.dip_steps``, ``cfg.invariance_images`` and ``options["analysis"]``) are
stored with the rows, so a changed switch can never be hidden by an old file. The tools themselves
(``analysis/``) take tensors and return arrays; everything that reads the run's data or settings is here.

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
import warnings
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from .. import features as feat
from ..analysis._common import AnalysisError
from ..analysis.invariance import (features_of, fit_whitening, horizontal_flips, hue_shifts, invariance,
                                   multiview_pairs, rotations, similarities)
from ..analysis.reconstruction import DIP_CHANNELS, DIP_FILTERS, invert_features, perceptual_distance
from ..analysis.saliency import (PAPER_CROP_SIZE, PAPER_IMAGE_SIZE, attentive_diffusion, occlusion_saliency,
                                 scaled_patch)
from ..config import Config
from ..data.registry import get_spec as dataset_spec
from ..data.source_images import SourceImageSpec, get_source, is_source, source_for
from ..models.preprocessing import Preprocess
from . import inputs
from .units import Protocol, Settings, Unit, base_row

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


@dataclass(frozen=True)
class SaliencySettings(Settings):
    image_size: int                                    # cfg.saliency_image_size
    switches: dict = field(default_factory=dict)       # options.analysis.saliency


@dataclass(frozen=True)
class ReconstructionSettings(Settings):
    dip_steps: int                                     # cfg.dip_steps
    switches: dict = field(default_factory=dict)


@dataclass(frozen=True)
class InvarianceSettings(Settings):
    images: int                                        # cfg.invariance_images
    switches: dict = field(default_factory=dict)


BUDGETS = {"saliency": "saliency_image_size", "reconstruction": "dip_steps", "invariance": "invariance_images"}


def _settings(name: str, cls):
    """The analysis's settings from a Config: its budget parameter and its switches."""
    return lambda cfg: cls(getattr(cfg, BUDGETS[name]), switches(cfg, name))


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
    _, mh = inputs.manifest(cfg, name)
    return inputs.dataset(cfg, name), sample_index(cfg, name), mh


def input_key(cfg: Config, unit: Unit) -> str:
    """The content key of a unit's inputs; a source image's names its own record and pixels."""
    if not is_source(unit.dataset):
        return inputs.feature_key(cfg, unit.model, unit.dataset)
    ds, _, mh = sample_input(cfg, unit.dataset)
    return feat.cache_key(inputs.backbone_identity(cfg, unit.model), ds, mh)


# ---------------------------------------------------------------- inputs
def sample_index(cfg: Config, name: str) -> int:
    """Position (in the dataset's id order) of the dataset's fixed sample image: the first test-split image
    of the last class present in the test split, in manifest order."""
    ds = inputs.dataset(cfg, name)
    man, _ = inputs.manifest(cfg, name)
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


def _row(cfg: Config, unit: Unit, settings: Settings, key: str, metric: str, value: float, *, n: int, extra: dict,
         ci: tuple[float, float] | None = None) -> dict:
    row = base_row(cfg, unit, key, "Q3") | {"metric": metric, "value": float(value), "n": n}
    if ci is not None:
        row["ci_low"], row["ci_high"] = float(ci[0]), float(ci[1])
    row["extra"] = json.dumps({**extra, "settings": settings.as_dict()}, sort_keys=True)
    return row


# ---------------------------------------------------------------- the three units
def _source_extra(name: str) -> dict:
    return {"source_image": get_source(name).stands_for} if is_source(name) else {}


def run_saliency_unit(cfg: Config, unit: Unit, settings: SaliencySettings) -> tuple[list[dict], dict]:
    ds, i, mh = sample_input(cfg, unit.dataset)
    bb = inputs.backbone(cfg, unit.model)
    size = settings.image_size
    x01 = at_size(bb.preprocess, size).to_unit(ds.image(i))
    patch = scaled_patch(size)
    sw = dict(settings.switches)
    smap = occlusion_saliency(bb.module, x01, bb.preprocess.normalise, patch=patch, progress=False, **sw)
    crop = (size - smap.shape[0]) // 2
    extra = {"sample_id": ds.ids[i], "image_size": size, "patch": patch, "crop": crop,
             "map_shape": list(smap.shape), "paper": f"{PAPER_IMAGE_SIZE} px, 10 px patch, crop to "
                                                    f"{PAPER_CROP_SIZE}", "units": "percent of map pixels",
             **_source_extra(unit.dataset)}
    row = _row(cfg, unit, settings, feat.cache_key(bb, ds, mh), "attentive_diffusion", attentive_diffusion(smap), n=1,
               extra=extra)
    return [row], {"saliency_map": smap.astype(np.float32), "image": _uint8_hwc(x01)}


def run_reconstruction_unit(cfg: Config, unit: Unit, settings: ReconstructionSettings) -> tuple[list[dict], dict]:
    ds, i, mh = sample_input(cfg, unit.dataset)
    bb = inputs.backbone(cfg, unit.model)
    x01 = bb.preprocess.to_unit(ds.image(i))
    sw = dict(settings.switches)
    note = {}
    if "normalise_input" not in sw and bb.preprocess.kind == "histeq":
        # histogram equalisation passes no gradient, so the generator cannot be trained through it
        sw["normalise_input"] = False
        note["normalise_input_note"] = "histogram-equalised model: fed [0, 1] input (as the authors did)"
    levels = dip_levels(int(x01.shape[-1]))
    rec = invert_features(bb.module, x01, bb.preprocess.normalise, n_steps=settings.dip_steps, seed=cfg.seed,
                          channels=DIP_CHANNELS[:levels], filters=DIP_FILTERS[:levels], progress=False, **sw)
    dist = perceptual_distance(x01.numpy(), rec.image, weights_dir=cfg.weights_dir)
    extra = {"sample_id": ds.ids[i], "image_size": int(x01.shape[-1]), "dip_levels": levels,
             "dip_steps": settings.dip_steps, "final_feature_mse": float(rec.losses[-1]),
             "lpips": any(k.startswith("lpips") for k in dist), **note, **_source_extra(unit.dataset)}
    key = feat.cache_key(bb, ds, mh)
    rows = [_row(cfg, unit, settings, key, m, v, n=1, extra=extra) for m, v in dist.items()]
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


def run_invariance_unit(cfg: Config, unit: Unit, settings: InvarianceSettings) -> tuple[list[dict], dict]:
    names = invariances_for(unit.dataset)
    if not names:
        raise AnalysisError(f"dataset {unit.dataset!r} has no invariances to measure (DatasetSpec.invariances)")
    ds = inputs.dataset(cfg, unit.dataset)
    bb = inputs.backbone(cfg, unit.model)
    fs = inputs.features(cfg, unit.model, unit.dataset)
    cached = np.asarray(fs.features, dtype=np.float64)
    sw = dict(settings.switches)
    fit_kw = {k: sw[k] for k in ("shrinkage", "sampling", "eps", "max_images") if k in sw}
    whitening = fit_whitening(cached, seed=cfg.seed, **fit_kw)
    feat_kw = {k: sw[k] for k in ("bn_mode",) if k in sw}
    include_identity = bool(sw.get("include_identity", False))
    rng = np.random.default_rng(cfg.seed)
    n_img = min(settings.images, len(ds))
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
        rows.append(_row(cfg, unit, settings, fs.key, f"invariance_{name}", value, n=n, extra=extra, ci=_mean_ci(per_image)))
        outcomes[f"similarity_{name}"] = sims.astype(np.float32)
    if not rows:
        raise AnalysisError(f"dataset {unit.dataset!r}: none of the invariances {names} could be measured "
                            "(multi-view needs view pairs in the dataset)")
    return rows, outcomes


# ---------------------------------------------------------------- the records
def _datasets(analysis: str, on_source: bool, measurable=None):
    """The run's datasets that the ``<analysis>_datasets`` filter keeps (and ``measurable`` accepts), then this
    run's source image when the analysis runs ``on_source`` and the run has one; with ``datasets`` given, a
    source image runs only when named there."""
    def pick(cfg: Config, datasets) -> list[str]:
        if datasets is None:
            spec, why = source_status(cfg)
            sources = [spec.name] if spec is not None and why is None else []
            datasets = list(cfg.datasets)
        else:
            sources = [d for d in datasets if is_source(d)]
            datasets = [d for d in datasets if not is_source(d)]
        keep = analysis_options(cfg).get(f"{analysis}_datasets")
        datasets = [d for d in datasets if (keep is None or d in keep) and (measurable is None or measurable(d))]
        return datasets + (sources if on_source else [])
    return pick


def _models_filter(analysis: str):
    def applies(cfg: Config, model: str, data: str) -> bool:
        keep = analysis_options(cfg).get(f"{analysis}_models")
        return keep is None or model in keep
    return applies


def _analysis(name: str, run, settings, measurable=None) -> Protocol:
    return Protocol(name, "Q3", run, _settings(name, settings), lambda cfg: cfg.analysis_models,
                    _datasets(name, name in SOURCE_ANALYSES, measurable), _models_filter(name), input_key, seeded=True)


PROTOCOLS = (_analysis("saliency", run_saliency_unit, SaliencySettings),
             _analysis("reconstruction", run_reconstruction_unit, ReconstructionSettings),
             _analysis("invariance", run_invariance_unit, InvarianceSettings, measurable=invariances_for))
