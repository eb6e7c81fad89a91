"""Feature extraction of one large dataset through Ray Data, into the same cache entry ``features.extract`` writes.

Images are read and preprocessed by parallel Ray tasks (``map_batches`` over blocks of row indices), the backbone runs in
a pool of actors (one GPU each when on CUDA), and rows are put back in the dataset's order by their index as
they stream in, into a memory-mapped file: the driver never holds all features at once. The entry (key, layout,
lock, final write) is ``features.py``'s own, so either extractor's entry serves the other; an entry already
complete is returned without starting Ray. A killed Ray run starts its entry again (no partial resumption).
"""
from __future__ import annotations

import importlib
import logging
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.base import ImageDataset
from ..errors import MedsslError
from ..features import (FeatureError, FeatureSet, _array_fast_path, _complete, _entry_lock, _is_channels_last, _open,
                        array_batch, cache_key, commit_entry, embed, resolve_device)
from ..models.registry import Backbone
from .executors import require, ray_session

PARTIAL = "features.ray.partial.npy"   # not extract's features.partial.npy: its progress.json must stay true


def extract_ray(backbone: Backbone, dataset: ImageDataset, cache_dir: str | Path, manifest_hash: str, *,
                batch_size: int = 64, num_actors: int = 1, device: str = "auto", num_cpus_per_actor: float = 1,
                num_cpus_per_loader: float = 1, amp: bool = True, address: str | None = None,
                progress: bool = False) -> FeatureSet:
    """The cached features of ``dataset`` under ``backbone`` (as ``features.extract``), computed with Ray Data.

    ``device``: "auto" uses a GPU per actor when the Ray cluster has GPUs (the driver may have none), "cuda"
    requires them, "cpu" never asks. ``amp`` as in ``extract`` (fp16 autocast on a GPU only). ``address``: a
    running Ray cluster; None uses the current Ray or starts a local one for this call. Loading tasks and actors
    each hold their CPUs (fractions allowed), so a local Ray must have room for the actors and one loader.
    """
    if batch_size < 1 or num_actors < 1 or num_cpus_per_actor < 0 or num_cpus_per_loader <= 0:
        raise FeatureError(f"extract_ray: expected batch_size >= 1, num_actors >= 1, num_cpus_per_actor >= 0 and "
                           f"num_cpus_per_loader > 0 (got {batch_size}, {num_actors}, {num_cpus_per_actor}, "
                           f"{num_cpus_per_loader})")
    key = cache_key(backbone, dataset, manifest_hash)
    entry = Path(cache_dir) / "features" / key
    if _complete(entry, key):
        return _open(entry, key)
    require("ray.data", "ray")
    entry.mkdir(parents=True, exist_ok=True)
    with _entry_lock(entry):     # the same lock as extract: one extractor per entry, the others reuse it
        if _complete(entry, key):
            return _open(entry, key)
        tmp = entry / PARTIAL
        try:
            with ray_session(address, quiet=not progress) as ray:
                plan = _Plan(batch_size, num_actors, num_cpus_per_actor, num_cpus_per_loader,
                             _use_gpu(ray, device), amp)
                if address is None:
                    plan.check_fits(ray.cluster_resources())
                _fill(ray, backbone, dataset, tmp, plan, progress)
        except BaseException as exc:
            tmp.unlink(missing_ok=True)
            ours = _our_error(exc)
            if ours is not None:   # e.g. an unreadable image in a loader: its one line, not Ray's traceback banner
                raise ours from None
            raise
        return commit_entry(entry, key, backbone, dataset, manifest_hash, tmp)


def _fill(ray, backbone: Backbone, dataset: ImageDataset, tmp: Path, plan: "_Plan", progress: bool) -> None:
    """Run the pipeline and write every row of ``tmp`` exactly once, in the dataset's order."""
    with _quiet_data(ray, progress):   # before the datasets are made: each keeps the context it was made in
        _pipeline(ray, backbone, dataset, tmp, plan)


def _pipeline(ray, backbone: Backbone, dataset: ImageDataset, tmp: Path, plan: "_Plan") -> None:
    n, d, bs = len(dataset), backbone.feature_dim, plan.batch_size
    # Row indices made here, one block per batch: ray.data.range would add a read stage holding a CPU of its own.
    rows = ray.data.from_numpy(np.array_split(np.arange(n, dtype=np.int64), max(1, -(-n // bs))))
    loaded = rows.map_batches(load_rows, batch_size=bs, batch_format="numpy", num_cpus=plan.loader_cpus,
                              fn_args=(ray.put(dataset), backbone.preprocess))
    feats = loaded.map_batches(Embed, batch_size=bs, batch_format="numpy",
                               compute=ray.data.ActorPoolStrategy(size=plan.num_actors), num_cpus=plan.actor_cpus,
                               num_gpus=1 if plan.gpu else 0,
                               fn_constructor_args=(ray.put(backbone), "cuda" if plan.gpu else "cpu", plan.amp,
                                                    max(1, int(plan.actor_cpus))))
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(n, d))
    written = np.zeros(n, dtype=bool)
    for batch in feats.iter_batches(batch_size=None, batch_format="numpy"):
        idx, f = np.asarray(batch["row"], dtype=np.int64), np.asarray(batch["f"])
        _check_batch(backbone, dataset, idx, f, written)
        out[idx] = f
        written[idx] = True
    out.flush()
    del out
    if not written.all():
        raise FeatureError(f"{backbone.name} on {dataset.name}: Ray returned {int(written.sum())} of {n} rows")


_REMOTE_ERROR = re.compile(r"^(medssl_utils(?:\.\w+)+)\.(\w+): (.+)$", re.MULTILINE)


def _our_error(exc: BaseException) -> MedsslError | None:
    """The package's own error (e.g. an unreadable image in a loader) from inside Ray's wrappers, as itself.

    Ray Data does not ship a task's exception chain back, only its text, so the error's last traceback line
    (``medssl_utils.<module>.<Class>: <message>``) is read from there and the class rebuilt.
    """
    if isinstance(exc, MedsslError):
        return exc
    found = _REMOTE_ERROR.findall(str(exc))
    if not found:
        return None
    module, name, message = found[0]
    try:
        cls = getattr(importlib.import_module(module), name)
        if isinstance(cls, type) and issubclass(cls, MedsslError):
            return cls(message)
    except (ImportError, AttributeError, TypeError):
        pass
    return FeatureError(f"{name}: {message}")


@dataclass(frozen=True)
class _Plan:
    batch_size: int
    num_actors: int
    actor_cpus: float
    loader_cpus: float
    gpu: bool
    amp: bool

    def check_fits(self, have: dict) -> None:
        """A local Ray that cannot hold the pool and one loader would wait forever: say so instead."""
        need_cpu = self.num_actors * self.actor_cpus + self.loader_cpus
        if have.get("CPU", 0) < need_cpu or (self.gpu and have.get("GPU", 0) < self.num_actors):
            raise FeatureError(f"extract_ray: {self.num_actors} actor(s) x {self.actor_cpus:g} CPU"
                               f"{' + 1 GPU' if self.gpu else ''} and a loader of {self.loader_cpus:g} CPU need "
                               f"{need_cpu:g} CPU(s){f' and {self.num_actors} GPU(s)' if self.gpu else ''}; this Ray "
                               f"has {have.get('CPU', 0):g} CPU(s) and {have.get('GPU', 0):g} GPU(s): lower num_actors "
                               f"or num_cpus_per_actor")


def _check_batch(backbone: Backbone, dataset: ImageDataset, idx: np.ndarray, f: np.ndarray, written: np.ndarray) -> None:
    """The checks ``extract`` makes per batch, plus: every row index once."""
    d = backbone.feature_dim
    if f.shape != (len(idx), d):
        raise FeatureError(f"{backbone.name}: forward gave features of shape {f.shape}; expected ({len(idx)}, {d}) "
                           f"(feature_dim in the model registry)")
    if written[idx].any() or len(np.unique(idx)) != len(idx):
        raise FeatureError(f"{backbone.name} on {dataset.name}: Ray returned a row twice (a batch of rows from "
                           f"{int(idx.min())}); nothing was cached")
    if not np.isfinite(f).all():
        bad = int(idx[np.flatnonzero(~np.isfinite(f).all(axis=1))[0]])
        raise FeatureError(f"{backbone.name} on {dataset.name}: non-finite (NaN/inf) features, first at row {bad} "
                           f"(id {dataset.ids[bad]!r}); check the weights and the input preprocessing. "
                           "Nothing was cached for these rows.")


def _use_gpu(ray, device: str) -> bool:
    """Where the actors run is the cluster's business: "auto" asks for a GPU when the cluster has one."""
    dev = str(device)
    if dev == "auto":
        return ray.cluster_resources().get("GPU", 0) >= 1
    if dev.startswith("cuda"):
        if ray.cluster_resources().get("GPU", 0) < 1:
            raise FeatureError(f"device {device!r} requested but the Ray cluster has no GPU; use 'auto' or 'cpu'")
        return True
    return False


_RESOLVED: dict[Any, Any] = {}


def _resolve(obj: Any) -> Any:
    """An object the driver put once (Ray Data passes UDF arguments unresolved); fetched once per worker process."""
    import ray

    if not isinstance(obj, ray.ObjectRef):
        return obj
    if obj not in _RESOLVED:
        _RESOLVED.clear()   # a worker serves one extraction at a time: keep only the latest
        _RESOLVED[obj] = ray.get(obj)
    return _RESOLVED[obj]


def load_rows(batch: dict[str, np.ndarray], dataset: ImageDataset, preprocess) -> dict[str, np.ndarray]:
    """Read and preprocess rows ``batch["data"]``: the same values ``extract`` feeds its model (per-image PIL path,
    or the whole-batch path for in-memory arrays already at the input side, which is bit-identical to it)."""
    dataset = _resolve(dataset)
    idx = np.asarray(batch["data"], dtype=np.int64)
    if _array_fast_path(dataset, preprocess):
        x = array_batch(dataset.images[idx], preprocess)
    else:
        x = torch.stack([preprocess(dataset.image(int(i))) for i in idx])
    return {"row": idx, "x": x.numpy()}


class Embed:
    """The backbone in one Ray actor, set up as ``extract`` runs it: eval mode, channels_last, inference mode, fp16
    autocast only on a GPU when ``amp``."""

    def __init__(self, backbone: Backbone | Any, device: str, amp: bool, threads: int):
        backbone = _resolve(backbone)
        torch.set_num_threads(threads)
        self.dev = resolve_device(device)
        self.name, self.model = backbone.name, backbone.module.to(self.dev).eval()   # this actor's own copy
        if not _is_channels_last(self.model):
            self.model.to(memory_format=torch.channels_last)
        self.amp = amp and self.dev.type == "cuda"

    def __call__(self, batch: dict[str, Any]) -> dict[str, np.ndarray]:
        f = embed(self.model, torch.from_numpy(np.ascontiguousarray(batch["x"])), self.dev, self.amp)
        return {"row": np.asarray(batch["row"], dtype=np.int64), "f": f}


class _quiet_data:
    """Ray Data's progress bars, banners and info logs only when ``progress`` (all restored afterwards)."""

    FIELDS = ("enable_progress_bars", "print_on_execution_start")

    def __init__(self, ray, progress: bool):
        with warnings.catch_warnings():   # creating the context warns about Ray's own deprecated fields
            warnings.simplefilter("ignore", DeprecationWarning)
            self.ctx = ray.data.DataContext.get_current()
        self.progress = progress
        self.logger = logging.getLogger("ray.data")

    def __enter__(self):
        self.saved = {f: getattr(self.ctx, f) for f in self.FIELDS if hasattr(self.ctx, f)}
        self.level = self.logger.level
        for f in self.saved:
            setattr(self.ctx, f, self.progress)
        if not self.progress:
            self.logger.setLevel(logging.ERROR)
        return self

    def __exit__(self, *exc):
        for f, v in self.saved.items():
            setattr(self.ctx, f, v)
        self.logger.setLevel(self.level)
        return False
