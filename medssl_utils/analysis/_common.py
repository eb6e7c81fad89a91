"""Shared pieces of the analysis tools: the error type and the BatchNorm-mode switch.

The authors ran saliency and invariances with the backbone in train mode (their ``backbones.py`` forces
``.train()``; AUTHORS_CODE.md §5 item 4), so BatchNorm normalises with the statistics of whatever batch
is in the forward pass. ``batchnorm_mode("train")`` reproduces that without the side effect the authors
also had: their running statistics were updated by every forward; ours are left untouched.
"""
from __future__ import annotations

from ..errors import MedsslError

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn

BN_MODES = ("eval", "train")


class AnalysisError(MedsslError):
    """Bad input to an analysis tool: names the parameter and what was expected."""


def check_bn_mode(bn_mode: str) -> str:
    if bn_mode not in BN_MODES:
        raise AnalysisError(f"bn_mode={bn_mode!r}; expected one of {BN_MODES}")
    return bn_mode


@contextmanager
def batchnorm_mode(module: nn.Module, bn_mode: str = "eval") -> Iterator[nn.Module]:
    """Put ``module`` in eval or (authors') train mode for the block, then restore every flag.

    In train mode BatchNorm uses the current batch's statistics but, because ``track_running_stats`` is
    switched off for the block, its running mean/var and batch counter are not modified.
    """
    check_bn_mode(bn_mode)
    saved_training = {m: m.training for m in module.modules()}
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved_tracking = {m: m.track_running_stats for m in norms}
    try:
        module.train(bn_mode == "train")
        if bn_mode == "train":
            for m in norms:
                m.track_running_stats = False
        yield module
    finally:
        for m, flag in saved_tracking.items():
            m.track_running_stats = flag
        for m, flag in saved_training.items():
            m.training = flag


def module_device(module: nn.Module, device: str | torch.device | None) -> torch.device:
    """``device`` if given, else where the module's parameters live (CPU for a parameter-free module)."""
    if device is not None:
        return torch.device(device)
    for p in module.parameters():
        return p.device
    return torch.device("cpu")


def as_image_tensor(image01, name: str = "image01") -> torch.Tensor:
    """A (3, H, W) float tensor in [0, 1]; arrays are accepted too."""
    t = torch.as_tensor(image01)
    if t.ndim != 3 or t.shape[0] != 3:
        raise AnalysisError(f"{name}: expected a (3, H, W) image, got shape {tuple(t.shape)}")
    t = t.float()
    if not torch.isfinite(t).all():
        raise AnalysisError(f"{name}: contains NaN or inf")
    lo, hi = float(t.min()), float(t.max())
    if lo < -1e-6 or hi > 1 + 1e-6:
        raise AnalysisError(f"{name}: expected values in [0, 1] (unnormalised), got range [{lo:.3g}, {hi:.3g}]")
    return t
