"""Headless backbones: the classification head replaced by identity, so forward gives pooled features.

``feature_map`` gives the pre-pooling map (ResNet ``layer4``; DenseNet ``denseblock4`` before ``norm5``),
which the deep-image-prior inversion matches.
"""
from __future__ import annotations

from typing import Callable

import torch
import torchvision
from torch import nn


def _resnet(fn: Callable[..., nn.Module]) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        m = fn(weights=None)
        m.fc = nn.Identity()
        return m
    return build


def _densenet121() -> nn.Module:
    m = torchvision.models.densenet121(weights=None)
    m.classifier = nn.Identity()
    return m


ARCHITECTURES: dict[str, Callable[[], nn.Module]] = {
    "resnet18": _resnet(torchvision.models.resnet18),
    "resnet50": _resnet(torchvision.models.resnet50),
    "densenet121": _densenet121,
}


# Paper section 4.3.2: batch 64 for finetuning, 16 for DenseNet-121 (GPU memory).
FINETUNE_BATCH_SIZE = {"densenet121": 16}


def finetune_batch_size(arch: str) -> int:
    return FINETUNE_BATCH_SIZE.get(arch, 64)


def register_architecture(name: str, builder: Callable[[], nn.Module]) -> None:
    ARCHITECTURES[name] = builder


def build_headless(arch: str) -> nn.Module:
    if arch not in ARCHITECTURES:
        from .registry import ModelError
        raise ModelError(f"unknown architecture {arch!r}; expected one of {sorted(ARCHITECTURES)}")
    return ARCHITECTURES[arch]()


def feature_map(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The last spatial feature map before global pooling."""
    if hasattr(module, "feature_map"):
        return module.feature_map(x)
    if isinstance(module, torchvision.models.ResNet):
        m = module
        x = m.maxpool(m.relu(m.bn1(m.conv1(x))))
        return m.layer4(m.layer3(m.layer2(m.layer1(x))))
    if isinstance(module, torchvision.models.DenseNet):
        feats = module.features
        for name, layer in feats.named_children():
            if name == "norm5":
                break
            x = layer(x)
        return x
    raise TypeError(f"feature_map: unsupported module {type(module).__name__}")
