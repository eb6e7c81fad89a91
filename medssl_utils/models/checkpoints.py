"""Finding and loading a model's canonical (converted, headless) weights.

The canonical form is a plain state dict saved as ``weights_dir/<name>.pt`` by the converters;
``load_canonical`` reads it safely (``weights_only=True``) and returns it with its short hash.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from ..storage import sha256_file

if TYPE_CHECKING:
    from .registry import ModelSpec


def canonical_path(spec: "ModelSpec", weights_dir: str | Path | None) -> Path | None:
    if spec.extra.get("packaged_weights"):
        return Path(spec.extra["packaged_weights"])
    if weights_dir is None:
        return None
    return Path(weights_dir) / f"{spec.name}.pt"


def safe_load(path: Path) -> dict:
    """``torch.load`` restricted to tensors and plain containers; a pickle that would run code is refused."""
    from .registry import ModelError

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"missing checkpoint file: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelError(f"cannot load {path} safely (weights_only=True): {type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else ''}. Truncated files and pickles that "
                         "would run code are refused.") from exc


def load_canonical(spec: "ModelSpec", weights_dir: str | Path | None, module: nn.Module) -> tuple[dict | None, str]:
    """Return (state dict or None for a random-init model, weights hash)."""
    from .registry import ModelError

    if spec.family == "random":
        seed = int(spec.extra.get("init_seed", 0))
        torch.manual_seed(seed)
        for m in module.modules():
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()
        return None, f"random-init-seed{seed}"
    path = canonical_path(spec, weights_dir)
    if path is None or not path.is_file():
        raise ModelError(f"model {spec.name!r}: converted weights not found at {path}; "
                         f"run `medssl weights fetch {spec.name}` (needs the internet) or "
                         f"`medssl weights convert {spec.name} --source FILE`")
    state = safe_load(path)
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    return state, sha256_file(path)[:16]
