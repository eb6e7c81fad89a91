"""The model registry: one declarative record per backbone; nothing else branches on model names.

``load_backbone(name)`` is the single entry point: it returns the headless backbone in eval mode,
its feature dimension, its own input preprocessing and the hash of the weights it loaded.
"""
from __future__ import annotations

from ..errors import MedsslError

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn


class ModelError(MedsslError):
    """Bad model input: names the model, file or key and what was expected."""


@dataclass(frozen=True)
class ModelSpec:
    name: str                      # registry key
    title: str                     # display name in tables
    family: str                    # "supervised" | "self-supervised" | "domain-specific" | "random"
    arch: str                      # key of models.architectures.ARCHITECTURES
    feature_dim: int
    preprocessing: str             # key of models.preprocessing.PREPROCESSING
    input_size: int = 224          # side of the square input the backbone gets
    layout: str = "canonical"      # key of models.converters.CONVERTERS (original checkpoint layout)
    urls: tuple[str, ...] = ()     # where the authors got the weights
    filename: str = ""             # expected file name of the original checkpoint in weights_dir
    sha256: str | None = None      # of the original checkpoint, when known
    pretrain_data: str = ""        # e.g. "ImageNet-1k", "MIMIC-CXR + CheXpert"
    method: str = ""               # e.g. "SimCLR-v1", "MoCo-v2", "supervised"
    imagenet_top1: float | None = None   # the authors' results/imagenet-top1.csv value
    profile: str = "paper"         # "paper" = the paper's checkpoints; "mini" = our mini-zoo; "test"
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


MODELS: dict[str, ModelSpec] = {}
# Preprocessing kinds beyond preprocessing.PREPROCESSING: kind -> (spec, **options) -> preprocess (a user entry's
# own mean/std, user_entries.py); ``options.models.<m>.normalisation`` still overrides them.
PREPROCESS_KINDS: dict[str, Callable[..., Callable]] = {}


def register(spec: ModelSpec, *, replace: bool = False) -> ModelSpec:
    """``replace``: a user entry declared again with other fields (user_entries.py) takes the old one's place."""
    if spec.name in MODELS and not replace:
        raise ValueError(f"model {spec.name!r} registered twice")
    MODELS[spec.name] = spec
    return spec


def get_spec(name: str) -> ModelSpec:
    _load_entries()
    if name not in MODELS:
        raise ModelError(f"unknown model {name!r}; expected one of: {', '.join(sorted(MODELS))}")
    return MODELS[name]


def available(profile: str | None = None) -> list[str]:
    _load_entries()
    return sorted(n for n, s in MODELS.items() if profile is None or s.profile == profile)


@dataclass
class Backbone:
    """A loaded backbone: ``module(x)`` maps a preprocessed batch (N, 3, S, S) to features (N, feature_dim)."""

    spec: ModelSpec
    module: nn.Module
    feature_dim: int
    preprocess: Callable          # PIL image -> float tensor (3, S, S); has a ``.key`` string
    weights_hash: str             # sha256 (short) of the canonical weights; "random-<seed>" for random init

    @property
    def name(self) -> str:
        return self.spec.name


def load_backbone(name: str, weights_dir: str | Path | None = None, *, device: str | torch.device = "cpu",
                  **preprocess_options: Any) -> Backbone:
    """Return the backbone ``name`` in eval mode with its feature dim, preprocessing and weights hash."""
    from .architectures import build_headless
    from .checkpoints import load_canonical
    from .preprocessing import make_preprocess

    spec = get_spec(name)
    module = build_headless(spec.arch)
    if spec.extra.get("original_checkpoint"):  # a user entry: its own file, converted on load (user_entries.py)
        from .converters import load_original

        state, weights_hash = load_original(spec, module)
    else:
        state, weights_hash = load_canonical(spec, weights_dir, module)
    if state is not None:  # load_canonical has checked keys, shapes, provenance and finiteness
        try:
            missing, unexpected = module.load_state_dict(state, strict=False)
        except RuntimeError as exc:  # torch's multi-line message, on one line, naming the model
            raise ModelError(f"model {name!r}: weights do not fit {spec.arch}: "
                             f"{' '.join(str(exc).split())[:300]}") from None
        if missing or unexpected:
            raise ModelError(f"model {name!r}: weights do not fit {spec.arch}: missing keys {list(missing)[:10]}"
                             f"{'...' if len(missing) > 10 else ''}, unexpected keys {list(unexpected)[:10]}"
                             f"{'...' if len(unexpected) > 10 else ''}")
    module.eval().to(device)
    for p in module.parameters():
        p.requires_grad_(False)
    build = PREPROCESS_KINDS.get(spec.preprocessing)
    if build is not None and not preprocess_options.get("normalisation"):
        preprocess = build(spec, **preprocess_options)
    else:
        preprocess = make_preprocess(spec.preprocessing, spec.input_size, **preprocess_options)
    return Backbone(spec=spec, module=module, feature_dim=spec.feature_dim, preprocess=preprocess,
                    weights_hash=weights_hash)


def _load_entries() -> None:
    from . import entries  # noqa: F401
