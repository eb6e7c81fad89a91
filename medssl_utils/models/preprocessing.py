"""Each model's own input preprocessing (paper section 4.1; AUTHORS_CODE.md §2).

A preprocess maps a PIL image to a float tensor (3, S, S). Its ``key`` names everything that changes
the output, so it can enter the feature-cache key.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import functional as TF
from torchvision.transforms import InterpolationMode

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# MoCo-CXR's own pretraining statistics (stanfordmlgroup/MoCo-CXR image_transform.py).
CXR_MEAN = (0.5020, 0.5020, 0.5020)
CXR_STD = (0.085585, 0.085585, 0.085585)


def histogram_equalise(x: torch.Tensor, bins: int = 256) -> torch.Tensor:
    """Histogram equalisation of the whole tensor to the range 0-255, as CovidPrognosis's HistogramNormalize.

    As there, the histogram spans the tensor's own min..max (``np.histogram`` default range) and all
    channels are equalised jointly; the output is NOT rescaled to [0, 1] (MIMIC-CheXpert was trained on 0-255).
    """
    flat = x.detach().cpu().flatten().numpy().astype(np.float64)
    hist, edges = np.histogram(flat, bins=bins)
    cdf = hist.cumsum().astype(np.float64)
    cdf = 255.0 * cdf / cdf[-1]
    out = np.interp(flat, edges[:-1], cdf)
    return torch.from_numpy(out.reshape(tuple(x.shape)).astype(np.float32))


@dataclass(frozen=True)
class Preprocess:
    kind: str                      # "imagenet" | "none" ([0, 1]) | "histeq" (0-255) | "cxr"
    size: int                      # output side
    resize: int | None = None      # shorter side before the centre crop (default: = size)
    square: int | None = None      # authors' few-shot switch: resize to square x square (bilinear, aspect
                                   # ratio NOT kept) before the centre crop; replaces ``resize``

    @property
    def key(self) -> str:
        kind = "histeq-datarange" if self.kind == "histeq" else self.kind  # v2: bins span the image's range
        if self.square:
            return f"{kind}-square{self.square}-crop{self.size}-bilinear"
        return f"{kind}-resize{self.resize or self.size}-crop{self.size}-bicubic"

    def to_unit(self, img: Image.Image) -> torch.Tensor:
        """Resize (bicubic, shorter side; or the square switch), centre-crop, scale to [0, 1]: no normalisation."""
        img = img.convert("RGB")
        if self.square:
            img = TF.resize(img, [self.square, self.square], interpolation=InterpolationMode.BILINEAR)
        else:
            img = TF.resize(img, self.resize or self.size, interpolation=InterpolationMode.BICUBIC)
        img = TF.center_crop(img, [self.size, self.size])
        return TF.to_tensor(img)

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        """Apply this model's normalisation to a [0, 1] tensor (3, S, S) or batch (N, 3, S, S)."""
        if self.kind == "none":
            return x
        if self.kind == "histeq":
            if x.ndim == 4:
                return torch.stack([histogram_equalise(t) for t in x])
            return histogram_equalise(x)
        mean, std = (IMAGENET_MEAN, IMAGENET_STD) if self.kind == "imagenet" else (CXR_MEAN, CXR_STD)
        shape = (1, 3, 1, 1) if x.ndim == 4 else (3, 1, 1)
        return (x - torch.tensor(mean).view(shape)) / torch.tensor(std).view(shape)

    def __call__(self, img: Image.Image) -> torch.Tensor:
        return self.normalise(self.to_unit(img))


PREPROCESSING = ("imagenet", "none", "histeq", "cxr")


def make_preprocess(kind: str, size: int, *, normalisation: str | None = None, resize: int | None = None,
                    fewshot_small_resize: int | None = None) -> Preprocess:
    """``normalisation`` overrides the model's own: e.g. 'cxr' gives MoCo-CXR the statistics it was
    pretrained with, where the authors (default) fed it ImageNet-normalised input (AUTHORS_CODE.md §0 item 8), and
    'imagenet' for SimCLR-v1 is what the authors' final finetune and saliency runs fed it. A profile sets it
    per model: ``options: {models: {moco_cxr_r18: {normalisation: cxr}}}`` (``pipeline.inputs.backbone``).

    ``fewshot_small_resize`` reproduces the authors' few-shot input for the small datasets: a square resize
    to this side for a 224 px crop (they used 257), scaled in proportion for other input sizes."""
    kind = normalisation or kind
    if kind not in PREPROCESSING:
        from .registry import ModelError
        raise ModelError(f"unknown preprocessing {kind!r}; expected one of {PREPROCESSING}")
    square = None
    if fewshot_small_resize is not None:
        if int(fewshot_small_resize) < AUTHORS_CROP:
            from .registry import ModelError
            raise ModelError(f"fewshot_small_resize={fewshot_small_resize!r}: expected a side >= {AUTHORS_CROP} "
                             f"(the crop it is taken for)")
        square = max(size, round(int(fewshot_small_resize) * size / AUTHORS_CROP))
    return Preprocess(kind=kind, size=size, resize=resize, square=square)


AUTHORS_CROP = 224            # the crop the authors' resize sides refer to
AUTHORS_SMALL_RESIZE = 257    # their few-shot Resize([257, 257]) for the small datasets (AUTHORS_CODE.md §3)
