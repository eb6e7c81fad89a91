"""Real medical images that ship inside scikit-image (no download), for the mini profile's figures.

They sit beside MedSynth samples in the saliency and reconstruction figures, so those figures also show
what the tools do on real anatomy. Provenance strings restate scikit-image's own documentation (0.26).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class SampleImage:
    name: str
    modality: str
    image: Image.Image      # RGB
    provenance: str


_SOURCES: dict[str, tuple[str, str, str]] = {
    # name: (skimage.data function, modality, provenance)
    "retina": ("retina", "fundus photograph",
               "skimage.data.retina(): fundus photograph of a normal left eye, Wikimedia Commons "
               "'Fundus_photograph_of_normal_left_eye.jpg' (Haggstrom 2014, WikiJournal of Medicine), CC0."),
    "microaneurysms": ("microaneurysms", "fundus photograph (green channel crop)",
                       "skimage.data.microaneurysms(): 102x102 crop of the green channel of image 07_dr.JPG of "
                       "the High-Resolution Fundus (HRF) database (Budai et al. 2013), CC0; grey copied to RGB."),
    "immunohistochemistry": ("immunohistochemistry", "histology (IHC stain)",
                             "skimage.data.immunohistochemistry(): colonic glands, FHL2 IHC with DAB and "
                             "haematoxylin counterstain, Center for Microscopy And Molecular Imaging (CMMI); "
                             "no known copyright restrictions."),
}


def _to_rgb(array: np.ndarray) -> Image.Image:
    arr = np.asarray(array)
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    return Image.fromarray(arr.astype(np.uint8)).convert("RGB")


def sample_image(name: str) -> SampleImage:
    """One bundled image as a PIL RGB image with where it came from."""
    import skimage.data

    if name not in _SOURCES:
        from ._common import AnalysisError
        raise AnalysisError(f"unknown sample image {name!r}; expected one of {sorted(_SOURCES)}")
    func, modality, provenance = _SOURCES[name]
    loader: Callable[[], np.ndarray] = getattr(skimage.data, func)
    return SampleImage(name=name, modality=modality, image=_to_rgb(loader()), provenance=provenance)


def sample_images() -> list[SampleImage]:
    """All bundled medical samples, in a fixed order."""
    return [sample_image(n) for n in _SOURCES]


SAMPLE_NAMES = tuple(_SOURCES)
