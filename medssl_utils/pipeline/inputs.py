"""A run's inputs, for a ``Config``: dataset, split manifest, backbone, cached features, few-shot episodes.

Each is built once per process and shared by every protocol and analysis (``lru_cache`` on plain values), so
no consumer may change what it gets: the backbone is put in channels_last once, here, and nothing else
mutates it; the episodes are drawn once from the seed and stored, so every model meets the same ones.
"""
from __future__ import annotations

import json
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .. import features as feat
from ..config import Config
from ..data.base import ImageDataset
from ..data.manifests import manifest_for
from ..data.registry import get_spec as dataset_spec
from ..data.registry import load_dataset
from ..models.preprocessing import make_preprocess
from ..models.registry import Backbone, load_backbone
from ..protocols import fewshot
from ..storage import atomic_path


@lru_cache(maxsize=64)
def _dataset(name: str, data_root: str | None, cache_dir: str, image_size: int, seed: int, scale: float,
             options: str) -> ImageDataset:
    spec = dataset_spec(name)
    opts = json.loads(options)
    if spec.synthetic and "scale" in spec.options:
        opts.setdefault("scale", scale)
    return load_dataset(name, data_root=data_root, cache_dir=cache_dir, image_size=image_size, seed=seed, **opts)


def dataset(cfg: Config, name: str) -> ImageDataset:
    opts = cfg.options.get("datasets", {}).get(name, {})
    return _dataset(name, str(cfg.data_root) if cfg.data_root else None, str(cfg.cache_dir), cfg.image_size,
                    cfg.seed, cfg.dataset_scale, json.dumps(opts, sort_keys=True))


def manifest(cfg: Config, name: str) -> tuple[pd.DataFrame, str]:
    ds = dataset(cfg, name)
    return manifest_for(ds, cfg.cache_dir, split=dataset_spec(name).split, seed=cfg.seed)


@lru_cache(maxsize=8)
def _backbone(name: str, weights_dir: str | None, device: str, normalisation: str | None = None) -> Backbone:
    """Cached and shared by every protocol and analysis, so it is put in channels_last once, here (the format
    every consumer runs in); no consumer changes it afterwards, so no result depends on what ran before."""
    extra = {"normalisation": normalisation} if normalisation else {}
    bb = load_backbone(name, weights_dir, device=feat.resolve_device(device), **extra)
    bb.module.to(memory_format=torch.channels_last)
    return bb


def _backbone_args(cfg: Config, name: str) -> tuple:
    normalisation = ((cfg.options.get("models") or {}).get(name) or {}).get("normalisation")
    return name, str(cfg.weights_dir) if cfg.weights_dir else None, cfg.device, normalisation


def backbone(cfg: Config, name: str) -> Backbone:
    """The model with ``options.models.<name>.normalisation`` applied (e.g. MoCo-CXR's own CXR statistics); the
    preprocess key, hence every feature-cache and result key, names the normalisation used."""
    return _backbone(*_backbone_args(cfg, name))


@lru_cache(maxsize=4096)
def _identity(name: str, weights_dir: str | None, device: str, normalisation: str | None) -> Backbone:
    """The backbone without its module: what cache keys read (name, arch, weights hash, preprocessing).

    Checking whether a grid's units are done needs every model's key for every dataset; the grid visits
    models inside datasets, so the small module cache above would reload each checkpoint once per dataset.
    This one holds no weights, so it can hold every model of a run."""
    return replace(_backbone(name, weights_dir, device, normalisation), module=None)


def backbone_identity(cfg: Config, name: str) -> Backbone:
    return _identity(*_backbone_args(cfg, name))


def features(cfg: Config, model: str, data: str, *, progress: bool = False,
             small_resize: int | None = None) -> feat.FeatureSet:
    """``small_resize``: the authors' square few-shot resize (``fewshot_inputs``); a separate cache entry."""
    ds = dataset(cfg, data)
    _, mh = manifest(cfg, data)
    bb = _fewshot_backbone(backbone(cfg, model), small_resize)
    return feat.extract(bb, ds, cfg.cache_dir, mh, device=cfg.device, progress=progress)


def _fewshot_backbone(bb: Backbone, small_resize: int | None) -> Backbone:
    if small_resize is None:
        return bb
    return replace(bb, preprocess=make_preprocess(bb.preprocess.kind, bb.preprocess.size,
                                                  fewshot_small_resize=small_resize))


def fewshot_inputs(cfg: Config, data: str) -> fewshot.FewShotInputs:
    """``options.fewshot`` applied to one dataset (defaults: every image, the paper's resize)."""
    switches = dict(cfg.options.get("fewshot", {}))   # names and values checked by config (preflight)
    spec = dataset_spec(data)
    ds = dataset(cfg, data)
    man, _ = manifest(cfg, data)
    pos = {i: k for k, i in enumerate(ds.ids)}
    train_rows = np.array([pos[i] for i in man.id[man.split != "test"]], dtype=np.int64)
    return fewshot.fewshot_inputs(train_rows, pool_limit=spec.fewshot_pool_limit,
                                  square_resize=spec.fewshot_square_resize, **switches)


def episodes(cfg: Config, data: str) -> fewshot.Episodes:
    """The dataset's episodes, drawn once from the seed and stored: identical for every model."""
    ds = dataset(cfg, data)
    _, mh = manifest(cfg, data)
    ways = dataset_spec(data).fewshot_ways
    pool = fewshot_inputs(cfg, data).pool
    tag = f"-pool{len(pool)}" if pool is not None else ""
    path = Path(cfg.cache_dir) / "episodes" / (
        f"{data}-{mh}-{ways}w{fewshot.N_SHOT}s{fewshot.N_QUERY}q{cfg.n_episodes}e-seed{cfg.seed}{tag}.npz")
    if path.is_file():
        with np.load(path) as z:
            return fewshot.Episodes(z["classes"], z["support"], z["query"])
    try:
        ep = fewshot.sample_episodes(ds.labels, n_way=ways, n_episodes=cfg.n_episodes, seed=cfg.seed, pool=pool)
    except fewshot.FewShotError as exc:
        raise fewshot.FewShotError(f"dataset {data!r}: {exc}") from None
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **ep.to_npz())
    return ep


def feature_key(cfg: Config, model: str, data: str, *, small_resize: int | None = None) -> str:
    """The feature-cache key of (model, dataset): weights, preprocessing, pixels, manifest."""
    _, mh = manifest(cfg, data)
    return feat.cache_key(_fewshot_backbone(backbone_identity(cfg, model), small_resize), dataset(cfg, data), mh)


def split_rows(cfg: Config, data: str, fs: feat.FeatureSet) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(feature rows, labels) of the train, val and test splits, in manifest order."""
    man, _ = manifest(cfg, data)
    out = {}
    for split in ("train", "val", "test"):
        part = man[man.split == split]
        out[split] = (np.asarray(fs.rows(list(part.id))), part.label.to_numpy())
    return out


def clear_caches() -> None:
    """Forget the datasets and backbones built so far (after registering new entries)."""
    _dataset.cache_clear()
    _backbone.cache_clear()
    _identity.cache_clear()
