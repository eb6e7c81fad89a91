"""Feature extraction, once per (weights, preprocessing, dataset): a memory-mappable cache that resumes.

Layout of one entry, ``cache_dir/features/<key>/``:
  ``features.npy`` (N, D) float32 in the dataset's id order, ``ids.json``, ``meta.json`` (written last:
  an entry without it is incomplete). While running, rows go into ``features.partial.npy`` and the
  count of finished rows into ``progress.json``; a killed run resumes from there.
"""
from __future__ import annotations

import hashlib
import json
import os
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .data.base import ImageDataset
from .models.registry import Backbone
from .storage import atomic_write_text

FEATURE_CACHE_VERSION = 1


class FeatureError(ValueError):
    pass


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise FeatureError(f"device {device!r} requested but no CUDA GPU is available; use 'auto' or 'cpu'")
    return dev


def cache_key(backbone: Backbone, dataset: ImageDataset, manifest_hash: str) -> str:
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
        return self.features[[pos[i] for i in ids]]


class _Preprocessed(Dataset):
    def __init__(self, ds: ImageDataset, preprocess, start: int):
        self.ds, self.preprocess, self.start = ds, preprocess, start

    def __len__(self) -> int:
        return len(self.ds) - self.start

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.preprocess(self.ds.image(self.start + i))


def extract(backbone: Backbone, dataset: ImageDataset, cache_dir: str | Path, manifest_hash: str, *,
            device: str | torch.device = "auto", batch_size: int = 64, num_workers: int = 0,
            amp: bool = True, progress: bool = True, checkpoint_every: int = 8) -> FeatureSet:
    """Return the cached features of ``dataset`` under ``backbone``, extracting what is missing.

    Eval mode and no grad always; channels_last; bf16/fp16 autocast only on a GPU when ``amp``.
    """
    key = cache_key(backbone, dataset, manifest_hash)
    entry = Path(cache_dir) / "features" / key
    final, meta_path = entry / "features.npy", entry / "meta.json"
    if meta_path.is_file() and final.is_file():
        return _open(entry, key)
    entry.mkdir(parents=True, exist_ok=True)
    n, d = len(dataset), backbone.feature_dim
    partial, prog_path = entry / "features.partial.npy", entry / "progress.json"
    done = 0
    if partial.is_file() and prog_path.is_file():
        done = int(json.loads(prog_path.read_text()).get("done", 0))
        out = np.load(partial, mmap_mode="r+")
        if out.shape != (n, d):
            done, out = 0, None
    else:
        out = None
    if out is None:
        out = np.lib.format.open_memmap(partial, mode="w+", dtype=np.float32, shape=(n, d))
        atomic_write_text(prog_path, json.dumps({"done": 0}))
    dev = resolve_device(device)
    model = backbone.module.to(dev).eval().to(memory_format=torch.channels_last)
    loader = DataLoader(_Preprocessed(dataset, backbone.preprocess, done), batch_size=batch_size,
                        shuffle=False, num_workers=num_workers, pin_memory=dev.type == "cuda")
    autocast = torch.autocast(device_type="cuda", dtype=torch.float16) if (amp and dev.type == "cuda") else nullcontext()
    bar = _progress(total=n, initial=done, desc=f"features {backbone.name} / {dataset.name}", enabled=progress)
    pos = done
    with torch.inference_mode(), autocast:
        for b, x in enumerate(loader):
            x = x.to(dev, non_blocking=True).contiguous(memory_format=torch.channels_last)
            f = model(x).float().cpu().numpy()
            if not np.isfinite(f).all():
                raise FeatureError(f"{backbone.name} on {dataset.name}: non-finite features in rows {pos}..{pos + len(f) - 1}")
            out[pos:pos + len(f)] = f
            pos += len(f)
            bar.update(len(f))
            if (b + 1) % checkpoint_every == 0:
                out.flush()
                atomic_write_text(prog_path, json.dumps({"done": pos}))
    bar.close()
    out.flush()
    del out
    if pos != n:
        raise FeatureError(f"{backbone.name} on {dataset.name}: extracted {pos} of {n} rows")
    atomic_write_text(entry / "ids.json", json.dumps(list(dataset.ids)))
    os.replace(partial, final)
    meta = {"key": key, "model": backbone.name, "dataset": dataset.name, "n": n, "dim": d,
            "weights": backbone.weights_hash, "preprocess": backbone.preprocess.key,
            "manifest": manifest_hash, "fingerprint": dataset.fingerprint, "version": FEATURE_CACHE_VERSION}
    atomic_write_text(meta_path, json.dumps(meta, indent=1))
    prog_path.unlink(missing_ok=True)
    return _open(entry, key)


def _open(entry: Path, key: str) -> FeatureSet:
    feats = np.load(entry / "features.npy", mmap_mode="r")
    ids = json.loads((entry / "ids.json").read_text())
    return FeatureSet(features=feats, ids=ids, key=key)


def _progress(total: int, initial: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, disable=not enabled, leave=False)
