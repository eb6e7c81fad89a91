"""The one shape every dataset takes: (image, label, id), so any protocol runs on any dataset."""
from __future__ import annotations

from ..errors import MedsslError

from dataclasses import dataclass, field
from pathlib import Path
import numpy as np
from PIL import Image


class DatasetError(MedsslError):
    """Bad dataset input: the message names the file, column or class and what was expected."""


@dataclass
class ImageDataset:
    """A labelled image collection. Subclasses only say how to read image ``i``.

    ``pairs`` holds index pairs of two views of one object (frontal/lateral, left/right eye)
    for the multi-view invariance; empty when the dataset has none.
    """

    name: str
    ids: list[str]
    labels: np.ndarray
    classes: tuple[str, ...]
    pairs: list[tuple[int, int]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (id, reason), reported, never silent
    given_split: list[str] | None = None  # publisher's split per image ("train"/"test"), when it has one
    # the patient (or study) of each image, when the publisher says; random splits keep a group on one side
    groups: list[str] | None = None
    fingerprint: str = ""  # what else makes the pixels (generator version, image size, seed, data root)

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if len(self.ids) != len(self.labels):
            raise DatasetError(f"{self.name}: {len(self.ids)} ids but {len(self.labels)} labels")
        if len(self.ids) == 0:
            raise DatasetError(f"{self.name}: no images found")
        if len(set(self.ids)) != len(self.ids):
            raise DatasetError(f"{self.name}: image ids are not unique")
        if self.groups is not None and len(self.groups) != len(self.ids):
            raise DatasetError(f"{self.name}: {len(self.groups)} groups but {len(self.ids)} ids")
        bad = set(np.unique(self.labels)) - set(range(len(self.classes)))
        if bad:
            raise DatasetError(f"{self.name}: labels {sorted(bad)} outside 0..{len(self.classes) - 1}")

    def __len__(self) -> int:
        return len(self.ids)

    def image(self, i: int) -> Image.Image:  # pragma: no cover - abstract
        raise NotImplementedError

    def __getitem__(self, i: int) -> tuple[Image.Image, int, str]:
        return self.image(i), int(self.labels[i]), self.ids[i]



@dataclass
class ArrayImageDataset(ImageDataset):
    """Images held in memory as a uint8 array (N, H, W, 3): MedSynth and test data."""

    images: np.ndarray | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.images is None or self.images.ndim != 4 or self.images.shape[-1] != 3:
            raise DatasetError(f"{self.name}: images must be a (N, H, W, 3) uint8 array")
        if len(self.images) != len(self.ids):
            raise DatasetError(f"{self.name}: {len(self.images)} images but {len(self.ids)} ids")

    def image(self, i: int) -> Image.Image:
        return Image.fromarray(self.images[i])


@dataclass
class FileImageDataset(ImageDataset):
    """Images read from files on disk, converted to RGB as the paper does (grey stacked to 3 channels)."""

    paths: list[Path] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.paths) != len(self.ids):
            raise DatasetError(f"{self.name}: {len(self.paths)} paths but {len(self.ids)} ids")

    def image(self, i: int) -> Image.Image:
        return read_rgb(self.paths[i])


def read_rgb(path: Path) -> Image.Image:
    """Open an image fully (so truncation is caught here) and return it as RGB."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"missing image file: {path}")
    try:
        with Image.open(path) as im:
            im.load()
            return im.convert("RGB")
    except Exception as exc:  # PIL raises many types for bad files
        raise DatasetError(f"unreadable or truncated image: {path} ({exc})") from exc
