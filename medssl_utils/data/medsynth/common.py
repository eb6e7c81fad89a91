"""Shared machinery of MedSynth: batched drawing primitives, the cache, and the loader factory.

Every primitive works on a whole batch at once: per-image parameters are arrays of shape (B,) and are
broadcast against a (H, W) coordinate grid in unit coordinates ([0, 1] across the image), so one
description of a scene renders at any image size. Shapes have soft edges at least one pixel wide, so
nothing aliases away at 32 px.
"""
from __future__ import annotations

import hashlib
import json
import zlib
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ...storage import atomic_path
from ..base import ArrayImageDataset, DatasetError

# A render function takes (rng, per-image labels, image size, style options) and returns
# float images (N, H, W, 3) in [0, 1] plus view pairs (index pairs into the batch).
RenderFn = Callable[..., tuple[np.ndarray, list[tuple[int, int]]]]

BATCH = 256  # images drawn per vectorised batch: large enough to amortise Python, small enough for cache


# ----------------------------------------------------------------------------------------------- grid / shapes
def grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates in unit space, shaped (1, H, W) to broadcast against (B, 1, 1) parameters."""
    c = (np.arange(size, dtype=np.float32) + 0.5) / size
    yy, xx = np.meshgrid(c, c, indexing="ij")
    return yy[None], xx[None]


def col(a) -> np.ndarray:
    """(B,) parameters as (B, 1, 1) so they broadcast over the pixel grid."""
    return np.asarray(a, dtype=np.float32)[:, None, None]


def soft_step(d: np.ndarray, edge: float) -> np.ndarray:
    """Smooth 0->1 transition of a signed distance ``d`` (positive inside) over width ``edge``."""
    return 1.0 / (1.0 + np.exp(-np.clip(d / edge, -30, 30)))


def ellipse(yy, xx, cy, cx, ry, rx, edge: float, angle=None) -> np.ndarray:
    """Soft filled ellipse; parameters are (B,) arrays (or scalars). Returns (B, H, W) in [0, 1]."""
    dy, dx = yy - col(cy), xx - col(cx)
    if angle is not None:
        ca, sa = np.cos(col(angle)), np.sin(col(angle))
        dx, dy = ca * dx + sa * dy, -sa * dx + ca * dy
    r = np.sqrt((dy / col(ry)) ** 2 + (dx / col(rx)) ** 2)
    scale = np.minimum(col(ry), col(rx))
    return soft_step((1.0 - r) * scale, edge)


def gauss(yy, xx, cy, cx, sigma, amp=1.0) -> np.ndarray:
    """Isotropic Gaussian blob(s) with per-image centre, width and amplitude."""
    d2 = (yy - col(cy)) ** 2 + (xx - col(cx)) ** 2
    return col(np.broadcast_to(amp, np.shape(cy))) * np.exp(-d2 / (2 * col(sigma) ** 2))


def blobs(yy, xx, cy, cx, sigma, amp) -> np.ndarray:
    """Sum of K blobs per image; (B, K) parameter arrays, amplitude 0 switches a blob off."""
    out = np.zeros((cy.shape[0],) + yy.shape[1:], np.float32)
    for k in range(cy.shape[1]):
        on = amp[:, k] != 0
        if not on.any():
            continue
        out[on] += gauss(yy, xx, cy[on, k], cx[on, k], sigma[on, k], amp[on, k])
    return out


def smooth_noise(rng: np.random.Generator, n: int, size: int, cells: int) -> np.ndarray:
    """Band-limited noise (N, H, W), unit variance-ish, made by bilinear up-sampling a coarse random grid.

    ``cells`` is the number of coarse cells across the image, so the texture scale does not depend on size.
    """
    coarse = rng.standard_normal((n, cells + 1, cells + 1)).astype(np.float32)
    pos = np.linspace(0, cells, size, dtype=np.float32)
    i0 = np.minimum(pos.astype(int), cells - 1)
    f = pos - i0
    rows = coarse[:, i0] * (1 - f)[None, :, None] + coarse[:, i0 + 1] * f[None, :, None]
    out = rows[:, :, i0] * (1 - f)[None, None, :] + rows[:, :, i0 + 1] * f[None, None, :]
    return out


def blur(img: np.ndarray, sigma_px: float) -> np.ndarray:
    """Separable Gaussian blur over the two pixel axes of (B, H, W) or (B, H, W, C)."""
    if sigma_px <= 0.2:
        return img
    r = max(1, int(np.ceil(2.5 * sigma_px)))
    k = np.exp(-np.arange(-r, r + 1) ** 2 / (2 * sigma_px ** 2)).astype(np.float32)
    k /= k.sum()
    out = img
    for axis in (1, 2):
        pad = [(0, 0)] * out.ndim
        pad[axis] = (r, r)
        p = np.pad(out, pad, mode="edge")
        acc = np.zeros_like(out)
        n = out.shape[axis]
        for j, w in enumerate(k):
            acc += w * np.take(p, np.arange(j, j + n), axis=axis)
        out = acc
    return out


def to_uint8(img: np.ndarray) -> np.ndarray:
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def uniform(rng: np.random.Generator, lo, hi, n) -> np.ndarray:
    return rng.uniform(lo, hi, n).astype(np.float32)


# ----------------------------------------------------------------------------------------------- loader factory
def _set_rng(name: str, seed: int) -> np.random.Generator:
    """One stream per (set, seed): the same seed gives unrelated images in different sets."""
    return np.random.default_rng([int(seed), zlib.crc32(name.encode())])


def fingerprint(name: str, version: int, image_size: int, seed: int, options: dict[str, Any]) -> str:
    opts = json.dumps(options, sort_keys=True, default=str)
    return f"medsynth:{name}:v{version}:size={image_size}:seed={seed}:{opts}"


def counts_from(spec_name: str, n_classes: int, n_per_class: int, scale: float) -> int:
    """Images per class after ``scale``; at least 2 so every class can be split 80/20."""
    if not isinstance(n_per_class, (int, np.integer)) or n_per_class < 1:
        raise DatasetError(f"{spec_name}: option n_per_class must be a positive integer, got {n_per_class!r}")
    if not isinstance(scale, (int, float)) or not np.isfinite(scale) or scale <= 0:
        raise DatasetError(f"{spec_name}: option scale must be a positive number, got {scale!r}")
    return max(2, int(round(n_per_class * float(scale))))


def make_loader(render: RenderFn, version: int) -> Callable[..., ArrayImageDataset]:
    """Wrap a render function into a registry loader with fingerprinting and an .npz cache.

    The cache key is the full fingerprint (generator version, size, seed, options), hashed into the
    file name, so a changed generator or option never reuses stale pixels.
    """

    def loader(spec, *, cache_dir=None, image_size: int = 64, seed: int = 0, n_per_class: int = 100,
               scale: float = 1.0, **style: Any) -> ArrayImageDataset:
        if not isinstance(image_size, (int, np.integer)) or image_size < 16:
            raise DatasetError(f"{spec.name}: image_size must be an integer >= 16, got {image_size!r}")
        per_class = counts_from(spec.name, len(spec.classes), n_per_class, scale)
        options = {"n_per_class": n_per_class, "scale": scale, **style}
        fp = fingerprint(spec.name, version, int(image_size), int(seed), options)
        path = None
        if cache_dir is not None:
            digest = hashlib.sha256(fp.encode()).hexdigest()[:16]
            path = Path(cache_dir) / "medsynth" / f"{spec.name}-v{version}-{image_size}px-seed{seed}-{digest}.npz"
            if path.is_file():
                return _read_cache(spec, path, fp)
        rng = _set_rng(spec.name, seed)
        labels = np.repeat(np.arange(len(spec.classes)), per_class)
        labels = labels[rng.permutation(len(labels))]  # interleave classes so any prefix is balanced-ish
        images, pairs, ids = render(rng, labels, int(image_size), name=spec.name, **style)
        images = to_uint8(images) if images.dtype != np.uint8 else images
        ds = ArrayImageDataset(name=spec.name, ids=ids, labels=labels, classes=spec.classes,
                               pairs=[(int(a), int(b)) for a, b in pairs], images=images, fingerprint=fp)
        if path is not None:
            _write_cache(ds, path)
        return ds

    loader.version = version  # type: ignore[attr-defined]
    return loader


def _write_cache(ds: ArrayImageDataset, path: Path) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:  # a file object, so numpy does not append its own suffix
            np.savez(f, images=ds.images, labels=ds.labels, ids=np.asarray(ds.ids),
                     pairs=np.asarray(ds.pairs, dtype=np.int64).reshape(-1, 2),
                     fingerprint=np.asarray(ds.fingerprint))


def _read_cache(spec, path: Path, fp: str) -> ArrayImageDataset:
    try:
        with np.load(path, allow_pickle=False) as z:
            stored_fp = str(z["fingerprint"])
            if stored_fp != fp:
                raise DatasetError(f"MedSynth cache {path}: fingerprint {stored_fp!r} does not match {fp!r}; "
                                   f"delete the file")
            return ArrayImageDataset(name=spec.name, ids=[str(s) for s in z["ids"]], labels=z["labels"],
                                     classes=spec.classes, pairs=[tuple(map(int, p)) for p in z["pairs"]],
                                     images=z["images"], fingerprint=fp)
    except DatasetError:
        raise
    except Exception as exc:  # truncated / foreign file
        raise DatasetError(f"MedSynth cache {path} is unreadable ({exc}); delete it to regenerate") from exc


def batched(n: int, batch: int = BATCH):
    for s in range(0, n, batch):
        yield slice(s, min(n, s + batch))


def splat(n_images: int, size: int, img: np.ndarray, cy: np.ndarray, cx: np.ndarray, sigma: np.ndarray,
          amp: np.ndarray, sy: np.ndarray | None = None) -> np.ndarray:
    """Add many small Gaussians (flat arrays, one entry per blob) into (n_images, H, W) maps at once.

    Each blob only touches a window of +-3 sigma around its centre, and all windows are accumulated with
    one weighted bincount, so thousands of nuclei cost about as much as a few full-frame operations.
    ``sy`` (optional) gives a different vertical sigma, for elongated blobs.
    """
    sy = sigma if sy is None else sy
    out = np.zeros(n_images * size * size, np.float64)
    if len(img) == 0:
        return out.reshape(n_images, size, size).astype(np.float32)
    half = max(1, int(np.ceil(3 * max(float(sigma.max()), float(sy.max())) * size)))
    off = np.arange(-half, half + 1)
    py, px = cy * size - 0.5, cx * size - 0.5  # centres in pixel units
    iy = np.round(py).astype(np.int64)[:, None, None] + off[None, :, None]
    ix = np.round(px).astype(np.int64)[:, None, None] + off[None, None, :]
    g = np.exp(-((iy - py[:, None, None]) / (sy[:, None, None] * size)) ** 2 / 2
               - ((ix - px[:, None, None]) / (sigma[:, None, None] * size)) ** 2 / 2) * amp[:, None, None]
    iy, ix = np.broadcast_arrays(iy, ix)
    ok = (iy >= 0) & (iy < size) & (ix >= 0) & (ix < size)
    flat = (img[:, None, None] * size + iy) * size + ix
    out += np.bincount(flat[ok], weights=np.broadcast_to(g, ok.shape)[ok], minlength=out.size)
    return out.reshape(n_images, size, size).astype(np.float32)
