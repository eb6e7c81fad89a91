"""The flow of one run: config -> dataset + manifest -> backbone -> cached features -> protocol -> result rows.

Work is a grid of units (protocol, model, dataset). Each unit writes its own rows, so a grid can be
split across workers (``shard=(i, n)`` or RANK/WORLD_SIZE from torchrun/SLURM), finished units are
skipped, and the results never depend on how many workers ran.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd
import torch

from . import features as feat
from .config import Config
from .data.base import ImageDataset
from .data.manifests import manifest_for
from .data.registry import get_spec as dataset_spec
from .data.registry import load_dataset
from .models.preprocessing import make_preprocess
from .models.registry import Backbone, load_backbone
from .protocols import fewshot
from .results import ResultsStore, code_version, unit_name
from .errors import MedsslError
from .storage import atomic_path


@dataclass(frozen=True)
class Unit:
    protocol: str
    model: str
    dataset: str

    def name(self, cfg: Config) -> str:
        return unit_name(protocol=self.protocol, model=self.model, dataset=self.dataset,
                         profile=cfg.profile, seed=cfg.seed)


def shard_from_env() -> tuple[int, int]:
    """(rank, world size) from torchrun (RANK/WORLD_SIZE) or SLURM array/task variables; (0, 1) otherwise."""
    for rank_key, size_key in (("RANK", "WORLD_SIZE"), ("SLURM_PROCID", "SLURM_NTASKS"),
                               ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT")):
        if rank_key in os.environ and size_key in os.environ:
            return int(os.environ[rank_key]), int(os.environ[size_key])
    return 0, 1


def my_units(units: list[Unit], shard: tuple[int, int] | None) -> list[Unit]:
    rank, size = shard if shard is not None else shard_from_env()
    if not 0 <= rank < size:
        raise MedsslError(f"shard {rank}/{size}: expected 0 <= i < n (e.g. --shard 0/4)")
    return [u for k, u in enumerate(units) if k % size == rank]


# ---------------------------------------------------------------- data and features
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


def backbone(cfg: Config, name: str) -> Backbone:
    """The model with ``options.models.<name>.normalisation`` applied (e.g. MoCo-CXR's own CXR statistics); the
    preprocess key, hence every feature-cache and result key, names the normalisation used."""
    normalisation = ((cfg.options.get("models") or {}).get(name) or {}).get("normalisation")
    return _backbone(name, str(cfg.weights_dir) if cfg.weights_dir else None, cfg.device, normalisation)


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


# ---------------------------------------------------------------- settings: a changed switch reruns a unit
def settings(cfg: Config, protocol: str) -> dict:
    """Everything besides (model, dataset, profile, seed) and the inputs' cache key that changes a protocol
    unit's numbers. Stored in each row's ``extra``; a stored unit whose settings differ is computed again."""
    from .protocols.linear import LinearSettings

    linear = LinearSettings.from_options(cfg.options.get("linear")).as_dict()
    linear.pop("blas_threads")   # speed only: results do not depend on it (tests/test_linear_determinism.py)
    base = {"fewshot": {"episodes": cfg.n_episodes},
            "linear": {"constants": linear},
            "finetune": {"max_steps": cfg.finetune_max_steps, "eval_every": cfg.finetune_eval_every}}[protocol]
    return {**base, "switches": dict(cfg.options.get(protocol, {}) or {})}


def input_key(cfg: Config, unit: Unit) -> str:
    """The feature-cache key of the unit's (model, dataset) inputs: weights, preprocessing, pixels, manifest."""
    _, mh = manifest(cfg, unit.dataset)
    bb = backbone(cfg, unit.model)
    if unit.protocol == "fewshot":
        bb = _fewshot_backbone(bb, fewshot_inputs(cfg, unit.dataset).small_resize)
    return feat.cache_key(bb, dataset(cfg, unit.dataset), mh)


def is_current(store: ResultsStore, cfg: Config, unit: Unit, unit_settings: dict) -> bool:
    """Done, with these settings and the current inputs (a regenerated dataset or new weights redo it)."""
    name = unit.name(cfg)
    if not store.has(name):
        return False
    try:
        stored = store.read_unit(name)
        same = json.loads(stored.extra.iloc[0]).get("settings") == json.loads(json.dumps(unit_settings))
        return same and str(stored.cache_key.iloc[0]) == input_key(cfg, unit)
    except (ValueError, KeyError, IndexError, AttributeError, TypeError):  # unreadable / old file: not done
        return False


# ---------------------------------------------------------------- protocols as units
def _base_row(cfg: Config, unit: Unit, key: str) -> dict:
    return {"question": "Q1", "protocol": unit.protocol, "model": unit.model, "dataset": unit.dataset,
            "seed": cfg.seed, "profile": cfg.profile, "source": "this run", "cache_key": key,
            "code_version": code_version()}


def run_fewshot_unit(cfg: Config, unit: Unit) -> tuple[list[dict], dict]:
    inputs = fewshot_inputs(cfg, unit.dataset)
    fs = features(cfg, unit.model, unit.dataset, small_resize=inputs.small_resize)
    ep = episodes(cfg, unit.dataset)
    acc = fewshot.episode_accuracies(fs.features, ep) * 100
    mean, half = fewshot.mean_ci95(acc)
    e, w, k, q = ep.shape
    extra = {"n_way": w, "n_shot": k, "n_query": q, "settings": settings(cfg, "fewshot")} | \
        ({"inputs": inputs.tag} if inputs.tag else {})
    row = _base_row(cfg, unit, fs.key) | {
        "metric": "accuracy", "value": mean, "ci_low": mean - half, "ci_high": mean + half, "n": e,
        "extra": json.dumps(extra)}
    return [row], {"episode_accuracy": acc}


def _split_rows(cfg: Config, data: str, fs: feat.FeatureSet) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    man, _ = manifest(cfg, data)
    out = {}
    for split in ("train", "val", "test"):
        part = man[man.split == split]
        out[split] = (np.asarray(fs.rows(list(part.id))), part.label.to_numpy())
    return out


def _metric_rows(cfg: Config, unit: Unit, key: str, metric: str, y_true: np.ndarray, y_pred: np.ndarray,
                 proba: np.ndarray, extra: dict) -> list[dict]:
    """Headline metric with a bootstrap 95% CI, plus accuracy and (binary tasks) AUC, all in percent."""
    from . import stats

    base = _base_row(cfg, unit, key)
    extra = {**extra, "settings": settings(cfg, unit.protocol)}
    rows = []
    metrics = [metric] + (["accuracy"] if metric != "accuracy" else [])
    for m in metrics:
        ci = stats.bootstrap_ci(y_true=y_true, y_pred=y_pred, metric=m, seed=cfg.seed)
        rows.append(base | {"metric": m, "value": 100 * ci.estimate, "ci_low": 100 * ci.low,
                            "ci_high": 100 * ci.high, "n": len(y_true), "extra": json.dumps(extra)})
    if proba.shape[1] == 2 and len(np.unique(y_true)) == 2:
        ci = stats.bootstrap_ci(y_true=y_true, y_score=proba[:, 1], metric="auc", seed=cfg.seed)
        rows.append(base | {"metric": "auc", "value": 100 * ci.estimate, "ci_low": 100 * ci.low,
                            "ci_high": 100 * ci.high, "n": len(y_true), "extra": json.dumps(extra)})
    return rows


def run_linear_unit(cfg: Config, unit: Unit) -> tuple[list[dict], dict]:
    from .protocols.linear import LinearSettings, linear_probe

    fs = features(cfg, unit.model, unit.dataset)
    sp = _split_rows(cfg, unit.dataset, fs)
    metric = dataset_spec(unit.dataset).metric
    settings_ = LinearSettings.from_options(cfg.options.get("linear"))
    res = linear_probe(*sp["train"], *sp["val"], *sp["test"], metric=metric, settings=settings_)
    rows = _metric_rows(cfg, unit, fs.key, metric, sp["test"][1], res.test_pred, res.test_proba, res.summary())
    return rows, {"test_correct": res.test_correct.astype(np.uint8)}


def _image_split(ds: ImageDataset, index: np.ndarray, preprocess):
    """(preprocessed tensor, label) pairs of one split, for finetuning; the raw image stays reachable, so the
    training split can take the authors' augmentation (``options.finetune.augment: authors``)."""
    from .protocols.finetune import ImageSplit

    index = np.asarray(index, dtype=np.int64)
    return ImageSplit(lambda i: ds.image(int(index[i])), np.asarray(ds.labels)[index], preprocess)


def run_finetune_unit(cfg: Config, unit: Unit) -> tuple[list[dict], dict]:
    from .models.architectures import finetune_batch_size
    from .protocols.finetune import finetune

    ds = dataset(cfg, unit.dataset)
    man, mh = manifest(cfg, unit.dataset)
    bb = backbone(cfg, unit.model)
    pos = {i: k for k, i in enumerate(ds.ids)}
    splits = {s: _image_split(ds, np.array([pos[i] for i in man.id[man.split == s]]), bb.preprocess)
              for s in ("train", "val", "test")}
    spec = dataset_spec(unit.dataset)
    switches = {"batch_size": finetune_batch_size(bb.spec.arch), **cfg.options.get("finetune", {})}
    res = finetune(bb.module, bb.feature_dim, len(ds.classes), splits["train"], splits["val"], splits["test"],
                   max_steps=cfg.finetune_max_steps, eval_every=cfg.finetune_eval_every, metric=spec.metric,
                   device=cfg.device, seed=cfg.seed, progress=False, **switches)
    key = feat.cache_key(bb, ds, mh)
    rows = _metric_rows(cfg, unit, key, spec.metric, res.test_labels, res.test_pred, res.test_proba, res.summary())
    hist = res.history_frame().to_numpy(dtype=np.float64)
    return rows, {"test_correct": res.test_correct.astype(np.uint8), "history": hist,
                  "learning_rates": res.learning_rates.astype(np.float64)}


PROTOCOL_RUNNERS = {"fewshot": run_fewshot_unit, "linear": run_linear_unit, "finetune": run_finetune_unit}


def check_protocols(names: Iterable[str]) -> list[str]:
    """The protocol names, each one known; one clear error for a typo (which would otherwise run nothing)."""
    names = list(names)
    bad = [n for n in names if n not in PROTOCOL_RUNNERS]
    if bad or not names:
        raise MedsslError(f"--protocols: unknown protocol(s) {bad or names}; expected some of "
                          f"{', '.join(PROTOCOL_RUNNERS)}")
    return names


def run_grid(cfg: Config, protocols: Iterable[str] = ("fewshot",), *, models: Iterable[str] | None = None,
             datasets: Iterable[str] | None = None, shard: tuple[int, int] | None = None,
             progress: bool = True) -> pd.DataFrame:
    """Run every (protocol, model, dataset) unit this worker owns that is not done with the current settings
    and inputs; return all rows."""
    from .progress import bar

    store = ResultsStore(cfg.results_dir)
    chosen = list(models or cfg.models)
    units = [Unit(p, m, d) for p in protocols for d in (datasets or cfg.datasets) for m in chosen
             if (p == "fewshot" or p in dataset_spec(d).manyshot)
             and (p != "finetune" or m in cfg.finetune_models)]
    todo = [u for u in my_units(units, shard) if not is_current(store, cfg, u, settings(cfg, u.protocol))]
    from .preflight import before_units

    before_units(cfg, todo, progress=progress)   # missing files, small classes, bad images: before any extraction
    for u in bar(todo, desc="units", enabled=progress and bool(todo)):
        rows, outcomes = PROTOCOL_RUNNERS[u.protocol](cfg, u)
        store.write(u.name(cfg), rows, outcomes)
    names = {u.name(cfg) for u in units}
    return pd.concat([store.read_unit(n) for n in sorted(names) if store.has(n)], ignore_index=True) \
        if any(store.has(n) for n in names) else pd.DataFrame()


def outcomes(cfg: Config, protocol: str, model: str, data: str, name: str) -> np.ndarray:
    return ResultsStore(cfg.results_dir).outcomes(Unit(protocol, model, data).name(cfg), name)
