"""The dataset registry: one declarative record per dataset; nothing else branches on dataset names.

A record says what the paper says about the dataset (modality, domain, classes, label conversion,
protocols) and how to build it (a loader function plus its default switches). Real datasets are read
from the layout their publisher ships under ``data_root/<folder>``; MedSynth sets are generated into
the cache.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .base import DatasetError, ImageDataset


@dataclass(frozen=True)
class DatasetSpec:
    name: str                      # registry key
    title: str                     # display name in tables
    modality: str                  # "chest X-ray" | "fundus" | "histology"
    domain: str                    # "in" (chest X-ray, the domain-specific models' domain) | "out"
    classes: tuple[str, ...]       # class names after the paper's label conversion
    label_policy: str              # the paper's conversion, in words
    fewshot_ways: int              # n-way of the paper's few-shot protocol on this dataset
    manyshot: tuple[str, ...]      # many-shot protocols the paper ran ("linear", "finetune")
    metric: str                    # "accuracy" | "mean_per_class_accuracy" (EyePACS linear/finetune)
    loader: Callable[..., ImageDataset]
    folder: str = ""               # sub-folder of data_root (real datasets)
    options: dict[str, Any] = field(default_factory=dict)   # loader switches and their defaults
    split: str = "random_80_20"    # how the test split is made (see manifests.py)
    synthetic: bool = False        # True for MedSynth: never mistaken for the real data
    stands_for: str | None = None  # MedSynth: the real dataset whose role it plays
    multiview: bool = False        # has view pairs for the multi-view invariance
    invariances: tuple[str, ...] = ()   # invariances the paper measured here (code notes s4.6): "rotation",
                                       # "hflip", "hue", "multiview"; MedSynth sets take their stands_for's
    # the authors' few-shot inputs (code notes s3, s4.1), used only under options.fewshot = authors:
    fewshot_pool_limit: int | None = None   # the large sets drew episodes from the first 10,001 training rows
    fewshot_square_resize: bool = False     # the small sets were resized to a square 257 px (aspect distorted)
    url: str = ""
    licence: str = ""
    n_images_paper: int | None = None   # Table 1 of the paper


DATASETS: dict[str, DatasetSpec] = {}


def register(spec: DatasetSpec) -> DatasetSpec:
    if spec.name in DATASETS:
        raise ValueError(f"dataset {spec.name!r} registered twice")
    DATASETS[spec.name] = spec
    return spec


def get_spec(name: str) -> DatasetSpec:
    _load_entries()
    if name not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; expected one of: {', '.join(sorted(DATASETS))}")
    return DATASETS[name]


def available() -> list[str]:
    _load_entries()
    return sorted(DATASETS)


def load_dataset(name: str, *, data_root: str | Path | None = None, cache_dir: str | Path | None = None,
                 image_size: int = 64, seed: int = 0, **switches: Any) -> ImageDataset:
    """Build dataset ``name``. Switches override the record's defaults; unknown switches are an error."""
    spec = get_spec(name)
    unknown = set(switches) - set(spec.options)
    if unknown:
        raise DatasetError(f"dataset {name!r}: unknown option(s) {sorted(unknown)}; "
                           f"expected some of {sorted(spec.options)}")
    opts = {**spec.options, **switches}
    if spec.synthetic:
        return spec.loader(spec, cache_dir=cache_dir, image_size=image_size, seed=seed, **opts)
    if data_root is None:
        raise DatasetError(f"dataset {name!r} is real data: set data_root to the folder holding {spec.folder!r}/")
    root = Path(data_root) / spec.folder
    if not root.is_dir():
        raise DatasetError(f"dataset {name!r}: folder {root} does not exist (expected the publisher's layout there)")
    return spec.loader(spec, root=root, **opts)


def _load_entries() -> None:
    """Import the modules whose import registers the entries (kept lazy to avoid import cycles)."""
    from . import entries  # noqa: F401
