"""MedSynth: procedurally generated stand-ins for the paper's eight datasets. SYNTHETIC, not medical data.

Placeholder for the walking skeleton: one set of blobs. The dataset work (issue 3) replaces it.
"""
from __future__ import annotations

import numpy as np

from ..base import ArrayImageDataset
from ..registry import DatasetSpec, register


def _toy(spec: DatasetSpec, *, cache_dir=None, image_size: int = 64, seed: int = 0, n_per_class: int = 120):
    rng = np.random.default_rng(seed)
    n = n_per_class * len(spec.classes)
    labels = np.repeat(np.arange(len(spec.classes)), n_per_class)
    yy, xx = np.mgrid[:image_size, :image_size] / image_size
    imgs = np.empty((n, image_size, image_size, 3), np.uint8)
    for i, y in enumerate(labels):
        base = 0.4 + 0.1 * rng.standard_normal((image_size, image_size))
        cx, cy = rng.uniform(0.3, 0.7, 2)
        blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 0.005) * (0.5 if y else 0.0)
        imgs[i] = (np.clip(base + blob, 0, 1) * 255).astype(np.uint8)[..., None]
    ids = [f"{spec.name}-{i:05d}" for i in range(n)]
    return ArrayImageDataset(name=spec.name, ids=ids, labels=labels, classes=spec.classes, images=imgs)


register(DatasetSpec(name="medsynth-toy", title="MedSynth toy (synthetic)", modality="chest X-ray", domain="in",
                     classes=("normal", "nodule"), label_policy="synthetic: nodule present", fewshot_ways=2,
                     manyshot=("linear",), metric="accuracy", loader=_toy, synthetic=True,
                     options={"n_per_class": 120}))
