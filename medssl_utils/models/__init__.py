"""Backbones: registry, architectures, checkpoint conversion, preprocessing, the mini-zoo."""
from .registry import Backbone, ModelError, ModelSpec, available, get_spec, load_backbone

__all__ = ["Backbone", "ModelError", "ModelSpec", "available", "get_spec", "load_backbone"]
