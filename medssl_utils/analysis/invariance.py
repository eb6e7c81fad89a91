"""Invariance of features to transformations: cosine similarity in whitened feature space (paper 4.4.3, Eq. 3).

Facts taken from the paper and the authors' code (AUTHORS_CODE.md §4.6, after Ericsson et al. [48]):
- mean feature and covariance from 1000 randomly chosen images of the dataset (all if fewer);
- L is the Cholesky factor of the inverse covariance, Sigma^-1 = L L^T; an image's whitened feature is
  (f - mean) @ L (row vector), whose covariance is L^T Sigma L = I;
- invariance = cosine similarity of the whitened clean and transformed features, averaged over 100 images
  and over the transform parameters; 1 = invariant, 0 = no invariance;
- transforms: rotation (k angles linspace(0, 360, k+1)[:k]), horizontal flip ([False, True]), hue
  (factors linspace(-0.5, 0.5, k)), and multi-view pairs (two views of the same subject).

Deviations of the authors' code, as switches (default = the paper, or the sound choice where it is silent):
- ``fit_whitening(shrinkage="none")``: the authors added eps = 1e-6 to the plain covariance, which is rank
  deficient when there are fewer images than feature dimensions (1000 images vs 2048 dims for a ResNet-50),
  so the whitening is dominated by the eps directions. The default ``"auto"`` uses the Ledoit-Wolf
  shrinkage estimator in that case.
- ``fit_whitening(sampling="authors")``: they drew max(1000, 10 % of N) images *with* replacement.
- ``invariance(include_identity=True)``: they averaged over all k parameters including the identity
  (angle 0, no flip, hue 0), whose similarity is 1 by construction and inflates the score. The paper's
  equation averages over Theta as well, but the identity says nothing about invariance; default: left out.
- ``features_of(bn_mode="train")``: their backbones ran in train mode, so BatchNorm used the statistics of
  each batch (the k transformed versions of one image; 256 images for the covariance).
- ``features_of(transformed_normalisation="imagenet")``: their transformed copies were always ImageNet- (or
  un-) normalised, even for MIMIC-CheXpert, whose clean images were histogram-equalised.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn
from torchvision.transforms import functional as TF

from ._common import AnalysisError, as_image_tensor, batchnorm_mode, check_bn_mode, module_device

# Paper section 4.4.3 / AUTHORS_CODE.md §4.6.
PAPER_COVARIANCE_IMAGES = 1000
PAPER_SIMILARITY_IMAGES = 100
AUTHORS_EPS = 1e-6
SHRINKAGE = ("auto", "ledoit_wolf", "none")
SAMPLING = ("paper", "authors")


# --------------------------------------------------------------------------------------------------
# Whitening
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Whitening:
    mean: np.ndarray          # (D,)
    L: np.ndarray             # (D, D) lower triangular, L @ L.T = inverse(covariance)
    covariance: np.ndarray    # (D, D), eps included
    method: str               # "ledoit_wolf" or "empirical"
    n_images: int             # rows the estimate used

    def apply(self, features: np.ndarray) -> np.ndarray:
        """Whitened features (..., D): (f - mean) @ L."""
        f = np.asarray(features, dtype=np.float64)
        if f.shape[-1] != self.mean.shape[0]:
            raise AnalysisError(f"features have dimension {f.shape[-1]}, the whitening was fitted on "
                                f"{self.mean.shape[0]}")
        return (f - self.mean) @ self.L


def _check_features(features, name: str, ndim: int) -> np.ndarray:
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != ndim:
        raise AnalysisError(f"{name}: expected a {ndim}-d array, got shape {f.shape}")
    if not np.isfinite(f).all():
        raise AnalysisError(f"{name}: contains NaN or inf")
    return f


def sample_rows(n: int, *, max_images: int = PAPER_COVARIANCE_IMAGES, sampling: str = "paper",
                seed: int = 0) -> np.ndarray:
    """Row indices for the mean/covariance estimate.

    ``"paper"``: ``max_images`` distinct rows (all if fewer). ``"authors"``: all rows if n < max_images,
    otherwise max(max_images, n // 10) rows drawn with replacement.
    """
    if sampling not in SAMPLING:
        raise AnalysisError(f"sampling={sampling!r}; expected one of {SAMPLING}")
    rng = np.random.default_rng(seed)
    if n <= max_images:
        return np.arange(n)
    if sampling == "paper":
        return np.sort(rng.choice(n, size=max_images, replace=False))
    return rng.choice(n, size=max(max_images, n // 10), replace=True)


def fit_whitening(features, *, shrinkage: str = "auto", eps: float = AUTHORS_EPS,
                  max_images: int = PAPER_COVARIANCE_IMAGES, sampling: str = "paper", seed: int = 0) -> Whitening:
    """Mean and whitening matrix L (Sigma^-1 = L L^T) from pooled features (N, D).

    ``shrinkage``: ``"auto"`` = Ledoit-Wolf when N <= D (the plain covariance is then singular), plain
    covariance otherwise; ``"ledoit_wolf"`` always; ``"none"`` = the authors' plain covariance (ddof 1).
    ``eps`` * I is added in every case (authors: 1e-6).
    """
    if shrinkage not in SHRINKAGE:
        raise AnalysisError(f"shrinkage={shrinkage!r}; expected one of {SHRINKAGE}")
    if eps < 0:
        raise AnalysisError(f"eps={eps}; expected >= 0")
    f = _check_features(features, "features", 2)
    f = f[sample_rows(len(f), max_images=max_images, sampling=sampling, seed=seed)]
    n, d = f.shape
    if n < 2:
        raise AnalysisError(f"features: {n} row(s); a covariance needs at least 2")
    use_lw = shrinkage == "ledoit_wolf" or (shrinkage == "auto" and n <= d)
    if use_lw:
        from sklearn.covariance import LedoitWolf
        lw = LedoitWolf(assume_centered=False).fit(f)
        mean, cov, method = lw.location_.astype(np.float64), lw.covariance_.astype(np.float64), "ledoit_wolf"
    else:
        mean, cov, method = f.mean(axis=0), np.cov(f, rowvar=False, ddof=1).reshape(d, d), "empirical"
    cov = cov + eps * np.eye(d)
    try:
        precision = np.linalg.inv(cov)
        precision = (precision + precision.T) / 2
        L = np.linalg.cholesky(precision)
    except np.linalg.LinAlgError as err:
        raise AnalysisError(f"fit_whitening: the covariance of {n} images x {d} dims is not invertible/positive "
                            f"definite with eps={eps} ({err}); use shrinkage='auto' or a larger eps") from None
    return Whitening(mean=mean, L=L, covariance=cov, method=method, n_images=n)


# --------------------------------------------------------------------------------------------------
# Similarities
# --------------------------------------------------------------------------------------------------
def similarities(clean_feats, transformed_feats, whitening: Whitening) -> np.ndarray:
    """Cosine similarity (N, T) of whitened clean features (N, D) with whitened transformed ones (N, T, D).

    A whitened feature of zero length gives NaN (ignored by the means, as the authors' nanmean).
    """
    c = _check_features(clean_feats, "clean_feats", 2)
    t = _check_features(transformed_feats, "transformed_feats", 3)
    if t.shape[0] != c.shape[0] or t.shape[2] != c.shape[1]:
        raise AnalysisError(f"transformed_feats has shape {t.shape}; expected ({c.shape[0]}, T, {c.shape[1]}) "
                            f"to match clean_feats {c.shape}")
    zc, zt = whitening.apply(c)[:, None, :], whitening.apply(t)
    denom = np.linalg.norm(zc, axis=-1) * np.linalg.norm(zt, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, np.sum(zc * zt, axis=-1) / denom, np.nan)


def invariance(clean_feats, transformed_feats, whitening: Whitening, *, include_identity: bool = False,
               identity_index: int | None = None) -> float:
    """Equation (3): mean whitened cosine similarity over images, then over transform parameters.

    ``identity_index`` is the column of ``transformed_feats`` that is the untransformed image (from
    ``TransformSet.identity_index``; None if the set has none). It is left out unless ``include_identity``
    (the authors' choice).
    """
    sims = similarities(clean_feats, transformed_feats, whitening)
    if identity_index is not None and not include_identity:
        if not -sims.shape[1] <= identity_index < sims.shape[1]:
            raise AnalysisError(f"identity_index={identity_index}; expected an index into the "
                                f"{sims.shape[1]} transforms")
        sims = np.delete(sims, identity_index, axis=1)
        if sims.shape[1] == 0:
            raise AnalysisError("no transform left once the identity is excluded")
    with warnings.catch_warnings():          # all-NaN columns are reported below, not warned about
        warnings.simplefilter("ignore", RuntimeWarning)
        per_transform = np.nanmean(sims, axis=0)
        value = np.nanmean(per_transform)
    if not np.isfinite(value):
        raise AnalysisError("invariance: every similarity is NaN (all whitened features have zero length)")
    return float(value)


def multiview_pairs(features, pairs) -> tuple[np.ndarray, np.ndarray]:
    """(clean (P, D), transformed (P, 1, D)) for two views per subject, given as row-index pairs (P, 2).

    Pass the result to ``invariance`` with ``identity_index=None``: there is no identity transform.
    """
    f = _check_features(features, "features", 2)
    p = np.asarray(pairs)
    if p.ndim != 2 or p.shape[1] != 2 or not np.issubdtype(p.dtype, np.integer):
        raise AnalysisError(f"pairs: expected an integer array (P, 2) of row indices, got {p.dtype} {p.shape}")
    if len(p) and (p.min() < 0 or p.max() >= len(f)):
        raise AnalysisError(f"pairs: indices must lie in [0, {len(f)}), got [{p.min()}, {p.max()}]")
    return f[p[:, 0]], f[p[:, 1]][:, None, :]


# --------------------------------------------------------------------------------------------------
# Transforms of one [0, 1] image
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TransformSet:
    name: str
    params: np.ndarray            # (T,) angle in degrees / flip flag / hue factor
    images: torch.Tensor          # (T, 3, S, S) in [0, 1]
    identity_index: int | None    # which of the T is the untransformed image


def rotations(image01: torch.Tensor, k: int = 20) -> TransformSet:
    """Rotations by linspace(0, 360, k+1)[:k] degrees (torchvision default: nearest, black corners)."""
    x = as_image_tensor(image01)
    if k < 1:
        raise AnalysisError(f"k={k}; expected >= 1 rotation angle")
    angles = np.linspace(0.0, 360.0, k + 1)[:k]
    images = torch.stack([x if a == 0 else TF.rotate(x, float(a)) for a in angles])
    return TransformSet("rotation", angles, images, 0)


def horizontal_flips(image01: torch.Tensor) -> TransformSet:
    """The image and its mirror image: parameters [False, True]."""
    x = as_image_tensor(image01)
    return TransformSet("h_flip", np.array([False, True]), torch.stack([x, TF.hflip(x)]), 0)


def hue_shifts(image01: torch.Tensor, k: int = 5) -> TransformSet:
    """Hue shifted by factors linspace(-0.5, 0.5, k); the identity (factor 0) exists for odd k only."""
    x = as_image_tensor(image01)
    if k < 1:
        raise AnalysisError(f"k={k}; expected >= 1 hue factor")
    factors = np.linspace(-0.5, 0.5, k)
    images = torch.stack([x if f == 0 else TF.adjust_hue(x, float(f)).clamp(0, 1) for f in factors])
    zero = np.flatnonzero(factors == 0)
    return TransformSet("hue", factors, images, int(zero[0]) if len(zero) else None)


# --------------------------------------------------------------------------------------------------
# Features of [0, 1] batches
# --------------------------------------------------------------------------------------------------
def features_of(module: nn.Module, images01: torch.Tensor, normalise: Callable | None, *, bn_mode: str = "eval",
                batch_size: int = 256, transformed_normalisation: str | None = None,
                device: str | torch.device | None = None) -> np.ndarray:
    """Pooled features (B, D) of a [0, 1] batch (B, 3, S, S), normalised per model before the forward.

    In ``bn_mode="train"`` (authors) BatchNorm uses each forward's own statistics, so the features depend on
    how the batch is cut: chunks of ``batch_size`` go together (the authors: the k transformed versions of
    one image per forward; 256 images for the covariance). Eval mode does not depend on it.

    ``transformed_normalisation`` (default None = use ``normalise``) names a preprocessing kind
    (``models.preprocessing.PREPROCESSING``) to use for this batch instead; pass it for the transformed
    copies only to reproduce the authors, whose transform pipeline always applied ImageNet (or no)
    normalisation, never the histogram equalisation MIMIC-CheXpert's clean images got (AUTHORS_CODE.md
    §5 item 5).
    """
    check_bn_mode(bn_mode)
    x = torch.as_tensor(images01).float()
    if x.ndim != 4 or x.shape[1] != 3:
        raise AnalysisError(f"images01: expected a (B, 3, S, S) batch, got shape {tuple(x.shape)}")
    if batch_size < 1:
        raise AnalysisError(f"batch_size={batch_size}; expected >= 1")
    if transformed_normalisation is not None:
        from ..models.preprocessing import PREPROCESSING, make_preprocess
        if transformed_normalisation not in PREPROCESSING:
            raise AnalysisError(f"transformed_normalisation={transformed_normalisation!r}; expected None or one "
                                f"of {PREPROCESSING}")
        normalise = make_preprocess(transformed_normalisation, int(x.shape[-1])).normalise
    dev = module_device(module, device)
    out = []
    with batchnorm_mode(module, bn_mode), torch.no_grad():
        for start in range(0, len(x), batch_size):
            chunk = x[start:start + batch_size]
            chunk = normalise(chunk) if normalise is not None else chunk
            f = module(chunk.to(dev))
            out.append(f.reshape(f.shape[0], -1).double().cpu().numpy())
    return np.concatenate(out, axis=0)
