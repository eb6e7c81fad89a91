"""The pretraining-source image of Tables A4-A7's last column: one record per world, nothing branches on names.

The paper runs reconstruction and saliency on an ImageNet image too (the ImageNet column of Tables A4-A7),
i.e. on an image from the models' pretraining source. Analyses only: no few-shot/linear/finetune, so it is
not an evaluation dataset of the dataset registry (and never appears on the datasets page).

* the mini world (every dataset of the run synthetic): the mini-zoo's natural-image corpus (FractalDB-mini,
  ``models.minizoo.corpus``) supplies it: the first held-out image of class 0, which no recipe pretrained on;
  rendering class 0 alone gives the same pixels as the full corpus (each class has its own generator);
* the paper world: the first JPEG/PNG (sorted path order) under ``data_root/imagenet/``, when there is one;
  without it the column is "not run" (``missing``), never an error.

Each record gives a one-image ``ImageDataset`` whose name and fingerprint are its own, so every content-keyed
cache (``features.cache_key``) tells it apart from any registry dataset.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .base import ArrayImageDataset, DatasetError, FileImageDataset, ImageDataset

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclass(frozen=True)
class SourceImageSpec:
    name: str                       # unit / row ``dataset`` name; never a registry dataset name
    title: str                      # column header in this run's tables
    stands_for: str                 # the paper's column it is the counterpart of (reference dataset name)
    synthetic: bool                 # the world it belongs to: runs whose datasets are all synthetic (True) or not
    load: Callable[..., ImageDataset]         # (data_root, cache_dir, seed) -> one-image dataset
    missing: Callable[..., str | None]        # (data_root) -> why it cannot run ("not run: ..."), None if it can
    description: str = ""           # caption text: what the image is


SOURCE_IMAGES: dict[str, SourceImageSpec] = {}


def register(spec: SourceImageSpec) -> SourceImageSpec:
    if spec.name in SOURCE_IMAGES:
        raise ValueError(f"source image {spec.name!r} registered twice")
    SOURCE_IMAGES[spec.name] = spec
    return spec


def is_source(name: str) -> bool:
    return name in SOURCE_IMAGES


def get_source(name: str) -> SourceImageSpec:
    if name not in SOURCE_IMAGES:
        raise DatasetError(f"unknown source image {name!r}; expected one of {sorted(SOURCE_IMAGES)}")
    return SOURCE_IMAGES[name]


def source_for(synthetic: bool) -> SourceImageSpec | None:
    """The record of the world whose datasets are (not) synthetic."""
    hits = [s for s in SOURCE_IMAGES.values() if s.synthetic == synthetic]
    return hits[0] if hits else None


# ---------------------------------------------------------------- the mini world: FractalDB-mini
FRACTAL_CLASS = 0


def _fractal_image():
    from ..models.minizoo.corpus import CORPUS_NAME, CORPUS_VERSION, make_corpus
    from ..models.minizoo.train import CORPUS_SEED

    one = make_corpus(CORPUS_SEED, n_classes=FRACTAL_CLASS + 1)      # same per-class generator as the recipes'
    i = int(np.flatnonzero(one.heldout & (one.labels == FRACTAL_CLASS))[0])
    tag = f"{CORPUS_NAME}-v{CORPUS_VERSION}-seed{CORPUS_SEED}-class{FRACTAL_CLASS}-image{i}"
    return one.images[i], tag


def _load_fractal(data_root=None, cache_dir=None, seed: int = 0) -> ImageDataset:
    img, tag = _fractal_image()
    return ArrayImageDataset(name="source-fractaldb-mini", ids=[tag], labels=np.zeros(1, np.int64),
                             classes=("source",), images=np.ascontiguousarray(img[None]),
                             fingerprint=f"source-image:{tag}")


register(SourceImageSpec(
    name="source-fractaldb-mini", title="source corpus†", stands_for="imagenet", synthetic=True,
    load=_load_fractal, missing=lambda data_root=None: None,
    description="an image of the mini-zoo's natural-image pretraining corpus (FractalDB-mini, held out from "
                "pretraining): the stand-in for the paper's ImageNet image"))


# ---------------------------------------------------------------- the paper world: data_root/imagenet/
IMAGENET_FOLDER = "imagenet"
IMAGENET_MISSING = f"not run: no ImageNet image under data_root/{IMAGENET_FOLDER}"


def _imagenet_files(data_root) -> list[Path]:
    if data_root is None or not (Path(data_root) / IMAGENET_FOLDER).is_dir():
        return []
    root = Path(data_root) / IMAGENET_FOLDER
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                  and not any(part.startswith(".") for part in p.relative_to(root).parts))


def _imagenet_missing(data_root=None) -> str | None:
    return None if _imagenet_files(data_root) else IMAGENET_MISSING


def _load_imagenet(data_root=None, cache_dir=None, seed: int = 0) -> ImageDataset:
    files = _imagenet_files(data_root)
    if not files:
        raise DatasetError(f"source image 'source-imagenet': {IMAGENET_MISSING.split(': ', 1)[1]} "
                           f"(data_root {data_root}); expected any JPEG/PNG there")
    path = files[0]
    rel = path.relative_to(Path(data_root) / IMAGENET_FOLDER).as_posix()
    st = path.stat()
    return FileImageDataset(name="source-imagenet", ids=[rel], labels=np.zeros(1, np.int64), classes=("source",),
                            paths=[path], fingerprint=f"source-image:imagenet:{rel}:{st.st_size}:{st.st_mtime_ns}")


register(SourceImageSpec(
    name="source-imagenet", title="ImageNet", stands_for="imagenet", synthetic=False,
    load=_load_imagenet, missing=_imagenet_missing,
    description=f"the first JPEG/PNG under data_root/{IMAGENET_FOLDER}/ (sorted path order)"))
