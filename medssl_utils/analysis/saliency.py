"""Occlusion saliency maps and attentive diffusion (paper section 4.4.1, after Ericsson et al. [20]).

Facts taken from the paper and the authors' code (AUTHORS_CODE.md §4.4):
- the image is resized to 242 x 242; a 10 x 10 patch slides over it with stride 1 (233 x 233 positions);
- the patch is filled with 0 *after* normalisation (the ImageNet mean colour for ImageNet-normalised models);
- the score of one position is the root relative squared error ||f - f_occ|| / ||f|| of the pooled features;
  it is added to every pixel the patch covers and averaged over the times the pixel was covered (10^2);
- the map is cropped to 224 x 224 (a border of patch - 1 = 9 pixels), where every pixel was covered equally;
- attentive diffusion = percentage of map pixels strictly above the map's mean.

Deviation of the authors' code, as a switch: they never called ``.eval()``, so BatchNorm used the statistics
of the single occluded image in each forward (``bn_mode="train"``). The paper does not mention it and eval
mode is the usual way to extract features, so the default is ``bn_mode="eval"``.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import nn

from ._common import AnalysisError, as_image_tensor, batchnorm_mode, check_bn_mode, module_device

# Paper section 4.4.1.
PAPER_IMAGE_SIZE = 242
PAPER_PATCH = 10
PAPER_CROP_SIZE = 224
DEFAULT_BATCH_SIZE = 64


def scaled_patch(image_size: int, *, reference_patch: int = PAPER_PATCH,
                 reference_size: int = PAPER_IMAGE_SIZE) -> int:
    """Patch side that covers the same fraction of the image as 10 px of 242 px (for small images)."""
    if image_size < 1:
        raise AnalysisError(f"image_size={image_size}; expected a positive number of pixels")
    return max(1, int(round(reference_patch * image_size / reference_size)))


def _positions(size: int, patch: int, stride: int) -> list[int]:
    pos = list(range(0, size - patch + 1, stride))
    if pos[-1] != size - patch:        # with stride > 1, still reach the far edge
        pos.append(size - patch)
    return pos


def _pooled(module: nn.Module, batch: torch.Tensor) -> torch.Tensor:
    out = module(batch)
    return out.reshape(out.shape[0], -1).double()


def occlusion_saliency(module: nn.Module, image01: torch.Tensor, normalise: Callable | None, *,
                       patch: int = PAPER_PATCH, stride: int = 1, value: float = 0.0, crop: int | None = None,
                       batch_size: int | None = None, bn_mode: str = "eval",
                       device: str | torch.device | None = None, progress: bool = True) -> np.ndarray:
    """Occlusion saliency map (H - 2 crop, W - 2 crop) of one [0, 1] image under a backbone.

    ``normalise`` maps the [0, 1] image to the model's input (``Preprocess.normalise``; None = identity);
    the patch of ``value`` is written after it, as the authors did. ``crop`` is the border dropped on each
    side (default ``patch - 1``: with stride 1 every kept pixel was then covered ``patch**2`` times).
    The map is the mean score over the times each pixel was covered.

    ``bn_mode="eval"`` sends the occluded copies in batches of ``batch_size`` (default 64); the result is
    identical to one image per forward. ``bn_mode="train"`` reproduces the authors' train-mode BatchNorm;
    there the statistics come from the batch itself, so it runs one image per forward (as they did) and
    cannot be batched: ``batch_size`` must be None or 1. Running statistics are never modified.
    """
    check_bn_mode(bn_mode)
    x01 = as_image_tensor(image01)
    _, height, width = x01.shape
    if not 1 <= patch <= min(height, width):
        raise AnalysisError(f"patch={patch}; expected 1 <= patch <= image side {min(height, width)}")
    if not 1 <= stride <= patch:
        raise AnalysisError(f"stride={stride}; expected 1 <= stride <= patch ({patch}) so every pixel is covered")
    crop = patch - 1 if crop is None else crop
    if crop < 0 or 2 * crop >= min(height, width):
        raise AnalysisError(f"crop={crop}; expected 0 <= crop < {min(height, width) / 2} for a {height}x{width} image")
    if bn_mode == "train":
        if batch_size not in (None, 1):
            raise AnalysisError(f"batch_size={batch_size} with bn_mode='train': train-mode BatchNorm normalises "
                                "with the batch's own statistics, so occluded copies must go one per forward "
                                "(batch_size=None or 1)")
        batch_size = 1
    batch_size = DEFAULT_BATCH_SIZE if batch_size is None else int(batch_size)
    if batch_size < 1:
        raise AnalysisError(f"batch_size={batch_size}; expected >= 1")

    x = normalise(x01) if normalise is not None else x01
    if tuple(x.shape) != tuple(x01.shape):
        raise AnalysisError(f"normalise changed the image shape {tuple(x01.shape)} -> {tuple(x.shape)}")
    dev = module_device(module, device)
    x = x.to(dev)
    ys, xs = _positions(height, patch, stride), _positions(width, patch, stride)
    positions = [(i, j) for i in ys for j in xs]
    scores = np.empty(len(positions), dtype=np.float64)

    starts = range(0, len(positions), batch_size)
    if progress:
        from ..progress import bar
        starts = bar(starts, desc=f"occlusion saliency ({len(positions)} positions)", unit="batch", leave=False)
    with batchnorm_mode(module, bn_mode), torch.no_grad():
        ref = _pooled(module, x[None])
        ref_norm = ref.norm()
        if not torch.isfinite(ref_norm) or float(ref_norm) == 0.0:
            raise AnalysisError(f"the clean image's feature has norm {float(ref_norm)}; the relative error "
                                "||f - f_occ|| / ||f|| is undefined")
        for start in starts:
            chunk = positions[start:start + batch_size]
            batch = x.unsqueeze(0).repeat(len(chunk), 1, 1, 1)
            for b, (i, j) in enumerate(chunk):
                batch[b, :, i:i + patch, j:j + patch] = value
            diff = (_pooled(module, batch) - ref).norm(dim=1) / ref_norm
            scores[start:start + len(chunk)] = diff.cpu().numpy()

    total = np.zeros((height, width), dtype=np.float64)
    count = np.zeros((height, width), dtype=np.int64)
    for (i, j), s in zip(positions, scores):
        total[i:i + patch, j:j + patch] += s
        count[i:i + patch, j:j + patch] += 1
    total, count = total[crop:height - crop, crop:width - crop], count[crop:height - crop, crop:width - crop]
    if (count == 0).any():   # cannot happen with stride <= patch; kept as a guard
        raise AnalysisError("some kept pixels were never occluded; reduce stride or increase crop")
    return total / count


def attentive_diffusion(saliency: np.ndarray) -> float:
    """Percentage of pixels whose saliency is strictly above the map's mean (a broad focus gives a high value).

    A constant map has no pixel above its mean: 0 (checked exactly, so rounding in the mean cannot
    make half the pixels count).
    """
    m = np.asarray(saliency, dtype=np.float64)
    if m.size == 0:
        raise AnalysisError("attentive_diffusion: empty saliency map")
    if not np.isfinite(m).all():
        raise AnalysisError("attentive_diffusion: the saliency map contains NaN or inf")
    if m.max() == m.min():
        return 0.0
    return float(100.0 * np.count_nonzero(m > m.mean()) / m.size)
