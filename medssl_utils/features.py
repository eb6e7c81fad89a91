"""Feature extraction, once per (weights, preprocessing, dataset): a memory-mappable cache that resumes.

Layout of one entry, ``cache_dir/features/<key>/``:
  ``features.npy`` (N, D) float32 in the dataset's id order, ``ids.json``, ``meta.json`` (written last:
  an entry without it is incomplete). While running, rows go into ``features.partial.npy`` and the
  count of finished rows into ``progress.json`` (written atomically, only after the rows it counts were
  flushed); a killed run resumes from there. Rows past the recorded count are never trusted.

Why a cache: the authors' few-shot code ran the backbone on every episode's 70-175 images, 600 times
per (model, dataset); extracting each image once and indexing the rows is the same computation
(eval-mode BatchNorm makes a row independent of its batch) at a fraction of the cost.
"""
from __future__ import annotations

from .errors import MedsslError

import hashlib
import json
import os
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .data.base import ArrayImageDataset, ImageDataset
from .models.preprocessing import Preprocess
from .models.registry import Backbone
from .storage import atomic_write_text

FEATURE_CACHE_VERSION = 1


class FeatureError(MedsslError):
    pass


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise FeatureError(f"device {device!r} requested but no CUDA GPU is available; use 'auto' or 'cpu'")
    return dev


def cache_key(backbone: Backbone, dataset: ImageDataset, manifest_hash: str) -> str:
    """Everything that changes a feature row enters the key: weights, preprocessing, pixels, id set."""
    parts = {
        "v": FEATURE_CACHE_VERSION, "model": backbone.name, "arch": backbone.spec.arch,
        "weights": backbone.weights_hash, "preprocess": backbone.preprocess.key,
        "dataset": dataset.name, "fingerprint": dataset.fingerprint, "manifest": manifest_hash,
    }
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:20]
    return f"{backbone.name}__{dataset.name}__{digest}"


@dataclass
class FeatureSet:
    features: np.ndarray     # (N, D) float32, memory-mapped
    ids: list[str]
    key: str

    def rows(self, ids: list[str]) -> np.ndarray:
        pos = {i: k for k, i in enumerate(self.ids)}
        missing = [i for i in ids if i not in pos]
        if missing:
            raise FeatureError(f"feature set {self.key}: {len(missing)} id(s) not in the cache, e.g. {missing[:3]}")
        return self.features[[pos[i] for i in ids]]


class _Preprocessed(Dataset):
    def __init__(self, ds: ImageDataset, preprocess, start: int):
        self.ds, self.preprocess, self.start = ds, preprocess, start

    def __len__(self) -> int:
        return len(self.ds) - self.start

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.preprocess(self.ds.image(self.start + i))


def _array_fast_path(dataset: ImageDataset, preprocess) -> bool:
    """True when whole uint8 batches can be preprocessed at once with bit-identical results.

    Holds for in-memory arrays already at the model's input side: the bicubic resize and centre crop
    are then identities, leaving /255 and the model's normalisation (checked in tests/test_features.py).
    Subclasses that override ``image`` (e.g. to add effects) keep the per-image path.
    """
    if not isinstance(dataset, ArrayImageDataset) or type(dataset).image is not ArrayImageDataset.image:
        return False
    if type(preprocess) is not Preprocess:
        return False
    _, h, w, _ = dataset.images.shape
    return (dataset.images.dtype == np.uint8 and h == w == preprocess.size and preprocess.resize in (None, preprocess.size)
            and not preprocess.square)


def array_batch(images: np.ndarray, preprocess) -> torch.Tensor:
    """(N, H, W, 3) uint8 at the input side -> the model's input: the whole-batch path of ``_array_fast_path``."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)
    return preprocess.normalise(x.float().div_(255))


def embed(model: torch.nn.Module, x: torch.Tensor, dev: torch.device, amp: bool) -> np.ndarray:
    """One batch through a model already in eval mode and channels_last: the forward every extractor runs
    (fp16 autocast only on a GPU when ``amp``), float32 features out."""
    x = x.to(dev, non_blocking=True).contiguous(memory_format=torch.channels_last)
    autocast = torch.autocast(device_type="cuda", dtype=torch.float16) if (amp and dev.type == "cuda") else nullcontext()
    with torch.inference_mode(), autocast:
        return model(x).float().cpu().numpy()


def _batches(dataset: ImageDataset, preprocess, start: int, batch_size: int, num_workers: int,
             pin: bool) -> Iterator[torch.Tensor]:
    if _array_fast_path(dataset, preprocess):
        for s in range(start, len(dataset), batch_size):
            yield array_batch(dataset.images[s:s + batch_size], preprocess)
        return
    loader = DataLoader(_Preprocessed(dataset, preprocess, start), batch_size=batch_size, shuffle=False,
                        num_workers=num_workers, pin_memory=pin)
    yield from loader


def _open_partial(partial: Path, prog_path: Path, n: int, d: int, key: str) -> tuple[np.ndarray, int]:
    """The partial array and how many rows of it are trusted; a fresh one if anything does not fit."""
    if partial.is_file() and prog_path.is_file():
        try:
            prog = json.loads(prog_path.read_text())
            out = np.load(partial, mmap_mode="r+")
            done = int(prog.get("done", 0))
            if out.shape == (n, d) and out.dtype == np.float32 and prog.get("key", key) == key and 0 <= done <= n:
                return out, done
            del out
        except (ValueError, OSError, json.JSONDecodeError):
            pass   # a run killed while creating the file: start again
    out = np.lib.format.open_memmap(partial, mode="w+", dtype=np.float32, shape=(n, d))
    atomic_write_text(prog_path, json.dumps({"done": 0, "key": key}))
    return out, 0


def _complete(entry: Path, key: str) -> bool:
    meta_path, final = entry / "meta.json", entry / "features.npy"
    if not (meta_path.is_file() and final.is_file() and (entry / "ids.json").is_file()):
        return False
    try:
        meta = json.loads(meta_path.read_text())
        shape = np.load(final, mmap_mode="r").shape
    except (ValueError, OSError, json.JSONDecodeError):
        return False
    return meta.get("key") == key and shape == (meta.get("n"), meta.get("dim"))


def extract(backbone: Backbone, dataset: ImageDataset, cache_dir: str | Path, manifest_hash: str, *,
            device: str | torch.device = "auto", batch_size: int = 64, num_workers: int = 0,
            amp: bool = True, progress: bool = True, checkpoint_every: int = 8) -> FeatureSet:
    """Return the cached features of ``dataset`` under ``backbone``, extracting what is missing.

    Eval mode (BatchNorm uses its running statistics, so a row does not depend on its batch) and no
    grad always; the module's previous train/eval mode is restored afterwards. channels_last (faster
    on CPU and GPU); fp16 autocast only on a GPU when ``amp``. In-memory uint8 arrays already at the
    input side are preprocessed a whole batch at a time (identical values, far less overhead).
    ``checkpoint_every`` batches the progress is made durable; a killed run redoes at most that many.
    """
    if batch_size < 1 or checkpoint_every < 1:
        raise FeatureError(f"batch_size and checkpoint_every must be >= 1 (got {batch_size}, {checkpoint_every})")
    key = cache_key(backbone, dataset, manifest_hash)
    entry = Path(cache_dir) / "features" / key
    if _complete(entry, key):
        return _open(entry, key)
    entry.mkdir(parents=True, exist_ok=True)
    # Several workers (shards, notebooks) may need the same entry: one extracts, the others wait and reuse it.
    with _entry_lock(entry):
        if _complete(entry, key):
            return _open(entry, key)
        return _extract_locked(backbone, dataset, entry, key, manifest_hash, device=device, batch_size=batch_size,
                               num_workers=num_workers, amp=amp, progress=progress, checkpoint_every=checkpoint_every)


def _is_channels_last(model: torch.nn.Module) -> bool:
    w = next((p for p in model.parameters() if p.dim() == 4), None)
    return w is None or w.is_contiguous(memory_format=torch.channels_last)


@contextmanager
def _entry_lock(entry: Path):
    import fcntl

    with open(entry / ".lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _extract_locked(backbone: Backbone, dataset: ImageDataset, entry: Path, key: str, manifest_hash: str, *,
                    device, batch_size: int, num_workers: int, amp: bool, progress: bool,
                    checkpoint_every: int) -> FeatureSet:
    n, d = len(dataset), backbone.feature_dim
    partial, prog_path = entry / "features.partial.npy", entry / "progress.json"
    out, done = _open_partial(partial, prog_path, n, d, key)
    dev = resolve_device(device)
    model = backbone.module
    was_training = model.training
    convert = not _is_channels_last(model)   # runs' cached backbones already are: then nothing is mutated
    model = model.to(dev).eval()
    if convert:
        model.to(memory_format=torch.channels_last)
    bar = _progress(total=n, initial=done, desc=f"features {backbone.name} / {dataset.name}", enabled=progress)
    pos = done
    try:
        batches = _batches(dataset, backbone.preprocess, done, batch_size, num_workers, dev.type == "cuda")
        for b, x in enumerate(batches):
            f = embed(model, x, dev, amp)
            if f.shape != (len(x), d):
                raise FeatureError(f"{backbone.name}: forward gave features of shape {f.shape}; expected "
                                   f"({len(x)}, {d}) (feature_dim in the model registry)")
            if not np.isfinite(f).all():
                bad = pos + int(np.flatnonzero(~np.isfinite(f).all(axis=1))[0])
                raise FeatureError(f"{backbone.name} on {dataset.name}: non-finite (NaN/inf) features, first at "
                                   f"row {bad} (id {dataset.ids[bad]!r}); check the weights and the input "
                                   "preprocessing. Nothing was cached for these rows.")
            out[pos:pos + len(f)] = f
            pos += len(f)
            bar.update(len(f))
            if (b + 1) % checkpoint_every == 0:
                out.flush()
                atomic_write_text(prog_path, json.dumps({"done": pos, "key": key}))
    finally:
        bar.close()
        model.train(was_training)
        if convert:
            model.to(memory_format=torch.contiguous_format)  # leave a caller's module as it came
    out.flush()
    del out
    if pos != n:
        raise FeatureError(f"{backbone.name} on {dataset.name}: extracted {pos} of {n} rows")
    return commit_entry(entry, key, backbone, dataset, manifest_hash, partial)


def commit_entry(entry: Path, key: str, backbone: Backbone, dataset: ImageDataset, manifest_hash: str,
                 finished: Path) -> FeatureSet:
    """Make ``finished`` (a fully written, flushed (N, D) float32 .npy in ``entry``) the entry's features.

    Shared by every extractor (``extract``, ``scale.ray_extract``), so all write one layout: ids, the rename,
    then ``meta.json`` last (the mark of a complete entry). Call it holding the entry's lock.
    """
    n, d = len(dataset), backbone.feature_dim
    atomic_write_text(entry / "ids.json", json.dumps(list(dataset.ids)))
    os.replace(finished, entry / "features.npy")
    meta = {"key": key, "model": backbone.name, "dataset": dataset.name, "n": n, "dim": d,
            "weights": backbone.weights_hash, "preprocess": backbone.preprocess.key,
            "manifest": manifest_hash, "fingerprint": dataset.fingerprint, "version": FEATURE_CACHE_VERSION}
    atomic_write_text(entry / "meta.json", json.dumps(meta, indent=1))
    (entry / "progress.json").unlink(missing_ok=True)
    (entry / "features.partial.npy").unlink(missing_ok=True)   # another extractor's leftover, now superseded
    return _open(entry, key)


def _open(entry: Path, key: str) -> FeatureSet:
    feats = np.load(entry / "features.npy", mmap_mode="r")
    ids = json.loads((entry / "ids.json").read_text())
    _require_finite(entry, feats, ids)
    return FeatureSet(features=feats, ids=ids, key=key)


def _require_finite(entry: Path, feats: np.ndarray, ids: list[str], block: int = 4096) -> None:
    """Extraction never caches a non-finite row, so one in the file means the entry is damaged: name it here,
    not later as an anonymous NaN in a probe. Checked block by block so the memory map is not copied."""
    for start in range(0, len(feats), block):
        ok = np.isfinite(feats[start:start + block]).all(axis=1)
        if ok.all():
            continue
        row = start + int(np.flatnonzero(~ok)[0])
        try:
            meta = json.loads((entry / "meta.json").read_text())
        except (OSError, ValueError):
            meta = {}
        model, dataset = meta.get("model", "?"), meta.get("dataset", "?")
        first = ids[row] if row < len(ids) else "?"
        raise FeatureError(f"cached features {entry / 'features.npy'} (model {model!r}, dataset {dataset!r}) hold "
                           f"non-finite (NaN/inf) values, first at row {row} (id {first!r}); "
                           f"the cache entry is damaged: delete {entry} and run again to re-extract it")


def _progress(total: int, initial: int, desc: str, enabled: bool):
    from .progress import bar

    return bar(total=total, initial=initial, desc=desc, enabled=enabled, leave=False)
