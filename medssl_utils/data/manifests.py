"""Split manifests: the (id, label, split) table of a dataset, made once from a seed, saved with its hash.

Protocols consume manifests, never ad-hoc shuffles, so every model sees the same split. When the loaded
dataset knows each image's patient (``ds.groups``: CheXpert, ChestX-ray14, EyePACS under their default
``split_by='patient'``) every random cut keeps a patient's images on one side, and the manifest carries a
``group`` column saying so; without groups (MedSynth, the per-image releases, ``split_by='image'``) the
split is the per-image one, unchanged.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from ..storage import atomic_write_bytes
from .base import DatasetError, ImageDataset

SPLITS = ("train", "val", "test")


def make_manifest(ds: ImageDataset, *, split: str = "random_80_20", seed: int = 0,
                  test_fraction: float | None = None, val_fraction: float = 0.2) -> pd.DataFrame:
    """Assign every image to train / val / test.

    ``random_80_20``: stratified random 80/20 train/test (the authors used 80/20 with a fixed seed);
    ``random_60_40``: the authors' custom CheXpert split; ``official``: the publisher's split
    (``ds.given_split``). A stratified ``val_fraction`` of train becomes val (linear and finetune
    select on it; few-shot pools all images). With ``ds.groups`` both cuts move whole patients.
    """
    rng = np.random.default_rng(seed)
    n = len(ds)
    labels = ds.labels
    groups = None if ds.groups is None else np.asarray(ds.groups, dtype=object)
    if split == "official":
        if ds.given_split is None:
            raise DatasetError(f"{ds.name}: split 'official' needs the publisher's split, which the loader did not give")
        base = np.asarray(ds.given_split, dtype=object)
    else:
        frac = test_fraction if test_fraction is not None else {"random_80_20": 0.2, "random_60_40": 0.4}.get(split)
        if frac is None:
            raise DatasetError(f"{ds.name}: unknown split {split!r}; expected random_80_20, random_60_40 or official")
        base = np.full(n, "train", dtype=object)
        base[_pick(labels, np.arange(n), frac, rng, groups)] = "test"
    train_idx = np.flatnonzero(base == "train")
    out = base.copy()
    out[_pick(labels[train_idx], train_idx, val_fraction, rng, groups)] = "val"
    df = pd.DataFrame({"id": list(ds.ids), "label": labels.astype(int), "split": out.astype(str)})
    if groups is not None:
        df["group"] = [str(g) for g in groups]
    return df


def _pick(labels: np.ndarray, index: np.ndarray, frac: float, rng: np.random.Generator,
          groups: np.ndarray | None) -> np.ndarray:
    if groups is None:
        return _stratified_pick(labels, index, frac, rng)
    return _grouped_pick(labels, index, groups[index], frac, rng)


def _grouped_pick(labels: np.ndarray, index: np.ndarray, groups: np.ndarray, frac: float,
                  rng: np.random.Generator) -> np.ndarray:
    """Whole groups, about ``frac`` of each class: groups in a seeded random order, each taken when it brings
    the per-class shares closer to ``frac`` (deviations relative to class size, so small classes count as
    much as large ones). On simulated patient data (geometric images per patient, mixed labels) this was
    closer per class than largest-group-first orders or an added total-size term."""
    names, inv = np.unique(groups.astype(str), return_inverse=True)
    classes, cls = np.unique(labels, return_inverse=True)
    counts = np.zeros((len(names), len(classes)), dtype=np.int64)
    np.add.at(counts, (inv, cls), 1)
    size = counts.sum(axis=0).tolist()
    target = [frac * n for n in size]
    rows, have, taken = counts.tolist(), [0] * len(classes), np.zeros(len(names), dtype=bool)
    for g in rng.permutation(len(names)).tolist():
        c = rows[g]
        after = sum(abs(h + x - t) / n for h, x, t, n in zip(have, c, target, size))
        before = sum(abs(h - t) / n for h, t, n in zip(have, target, size))
        if after < before:
            have = [h + x for h, x in zip(have, c)]
            taken[g] = True
    return index[taken[inv]]


def _stratified_pick(labels: np.ndarray, index: np.ndarray, frac: float, rng: np.random.Generator) -> np.ndarray:
    picked = []
    for c in np.unique(labels):
        members = index[labels == c]
        k = int(round(frac * len(members)))
        picked.append(rng.permutation(members)[:k])
    return np.concatenate(picked) if picked else np.array([], dtype=int)


def manifest_hash(df: pd.DataFrame) -> str:
    buf = df[["id", "label", "split"]].to_csv(index=False).encode()
    return hashlib.sha256(buf).hexdigest()[:16]


def save_manifest(df: pd.DataFrame, path: Path) -> str:
    """Write the manifest atomically; return its content hash (also stored beside it)."""
    h = manifest_hash(df)
    atomic_write_bytes(Path(path), df.to_csv(index=False).encode())
    atomic_write_bytes(Path(path).with_suffix(".sha256"), (h + "\n").encode())
    return h


def load_manifest(path: Path) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"missing manifest {path}")
    df = pd.read_csv(path, dtype={"id": str, "label": int, "split": str, "group": str})
    missing = {"id", "label", "split"} - set(df.columns)
    if missing:
        raise DatasetError(f"manifest {path}: missing column(s) {sorted(missing)}")
    return df


def split_for(ds: ImageDataset, registry_split: str) -> str:
    """The split a run uses: the publisher's whenever the loaded dataset carries one (CheXpert with
    ``official_valid=True``, EyePACS by default), else the registry's random split; a registry that asks for
    the publisher's split of a dataset loaded without it (EyePACS with ``official_test=False``) falls back to
    the stratified random 80/20 split its loader documents."""
    if ds.given_split is not None:
        return "official"
    return "random_80_20" if registry_split == "official" else registry_split


def manifest_for(ds: ImageDataset, cache_dir: Path, *, split: str, seed: int) -> tuple[pd.DataFrame, str]:
    """Make (or reuse) the manifest of ``ds`` under ``cache_dir/manifests``; return it and its hash.

    ``split`` is the registry's rule; ``split_for`` decides what it means for this loaded dataset."""
    split = split_for(ds, split)
    df = make_manifest(ds, split=split, seed=seed)
    h = manifest_hash(df)
    path = Path(cache_dir) / "manifests" / f"{ds.name}-{split}-seed{seed}-{h}.csv"
    if not path.exists():
        save_manifest(df, path)
    return df, h
