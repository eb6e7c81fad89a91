"""What every native-layout loader shares: CSV and option checks, image checks, and assembling the dataset.

Loaders collect plain records (id, label, path, patient) and the view pairs by id; ``assemble`` drops
unusable images (only when asked to, and loudly), turns id pairs into index pairs and builds the dataset, so
the bad-image policy and the error shape (one line: a count, the first file, the expected layout) are the
same for all eight publishers. Each loader gets ``root`` = the publisher's folder that
``registry.locate`` found under ``data_root/<folder>/`` (``registry.LAYOUT_RULE``).
"""
from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import pandas as pd
from PIL import Image

from ..base import DatasetError, FileImageDataset
from ..registry import DatasetSpec, expected_layout

BAD_IMAGE_POLICIES = ("raise", "skip")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
_MAX_NAMED = 2  # how many offending files an error or warning names before it only counts (one short line)
SPLIT_UNITS = ("patient", "image")  # option ``split_by``: what a random split keeps on one side


@dataclass
class Record:
    id: str
    label: int
    path: Path
    split: str | None = None  # publisher's split ("train"/"test") when it has one
    group: str | None = None  # the patient (or study) when the publisher gives it; splits keep it on one side


def choice(name: str, value: Any, allowed: Sequence[Any], dataset: str) -> Any:
    """Reject a switch value outside ``allowed`` with one line naming the switch."""
    if value not in allowed:
        raise DatasetError(f"dataset {dataset!r}: option {name}={value!r} is not valid; expected one of "
                           f"{', '.join(repr(a) for a in allowed)}")
    return value


def read_csv(path: Path, columns: Iterable[str], *, what: str, **kw: Any) -> pd.DataFrame:
    """Read a publisher CSV and insist on the columns the loader uses."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"missing file {path}: expected {what}")
    try:
        df = pd.read_csv(path, **kw)
    except Exception as exc:  # pandas raises several types for malformed files
        raise DatasetError(f"cannot read {path} ({exc}): expected {what}") from exc
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DatasetError(f"{path}: missing column(s) {missing}; expected {what} with columns {list(columns)}")
    return df


def require_dir(path: Path, what: str) -> Path:
    if not Path(path).is_dir():
        raise DatasetError(f"missing folder {path}: expected {what}")
    return Path(path)


def image_files(folder: Path) -> list[Path]:
    """Image files directly in ``folder``, sorted, ignoring hidden files (macOS ``._*`` forks, ``.DS_Store``)."""
    return sorted(p for p in Path(folder).iterdir()
                  if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES)


def image_problem(path: Path) -> str | None:
    """Why ``path`` cannot be used as an image, or None.

    Cheap on the common formats so that a check of 10^5 files stays practical: Pillow's ``verify``
    reads the header (and every PNG chunk with its CRC); a JPEG must also end with its end-of-image
    marker, the usual sign of a cut download. Other formats (TIFF) and JPEGs with trailing bytes are
    fully decoded.
    """
    path = Path(path)
    if not path.is_file():
        return "missing file"
    try:
        with Image.open(path) as im:
            fmt = im.format
            im.verify()
        if fmt == "PNG":
            return None
        if fmt == "JPEG":
            with open(path, "rb") as fh:
                fh.seek(0, 2)
                fh.seek(max(0, fh.tell() - 64))
                tail = fh.read().rstrip(b"\x00\r\n ")
            if tail.endswith(b"\xff\xd9"):
                return None
        with Image.open(path) as im:
            im.load()
        return None
    except Exception as exc:  # Pillow raises many types for bad files
        return f"unreadable or truncated image ({type(exc).__name__}: {exc})"


def _name_some(items: Sequence[tuple[str, str]]) -> str:
    shown = "; ".join(f"{p} ({why})" for p, why in items[:_MAX_NAMED])
    more = f"; and {len(items) - _MAX_NAMED} more" if len(items) > _MAX_NAMED else ""
    return shown + more


def name_some(items: Sequence[str], n: int = _MAX_NAMED) -> str:
    """The first ``n`` of ``items`` and how many more: errors stay one short line however many files fail."""
    return ", ".join(str(i) for i in items[:n]) + (f" and {len(items) - n} more" if len(items) > n else "")


def fingerprint(root: Path, options: dict[str, Any]) -> str:
    """What besides the files decides the dataset: where it was read from and the switches."""
    opts = ",".join(f"{k}={options[k]}" for k in sorted(options))
    return f"root={Path(root).resolve()};{opts}"


def assemble(spec: DatasetSpec, root: Path, options: dict[str, Any], records: list[Record], *,
             pair_ids: Sequence[tuple[str, str]] = (), classes: tuple[str, ...] | None = None,
             on_bad_image: str = "raise") -> FileImageDataset:
    """Build the dataset from records, applying the bad-image policy.

    ``raise``: every listed file must exist (a stat each; content is checked when the image is read).
    ``skip``: every image is checked now; bad ones are dropped, kept in ``ds.skipped`` and announced
    with a warning that counts and names them.
    """
    choice("on_bad_image", on_bad_image, BAD_IMAGE_POLICIES, spec.name)
    if not records:
        raise DatasetError(f"dataset {spec.name!r}: no images found under {root}")
    skipped: list[tuple[str, str]] = []
    if on_bad_image == "raise":
        missing = [r.path for r in records if not r.path.is_file()]
        if missing:
            raise DatasetError(f"dataset {spec.name!r}: {len(missing)} of {len(records)} listed image(s) missing, "
                               f"first {missing[0]}; expected {expected_layout(spec)}, the release as published "
                               "(or on_bad_image='skip')")
    else:
        kept = []
        for r in records:
            why = image_problem(r.path)
            if why is None:
                kept.append(r)
            else:
                skipped.append((r.id, f"{r.path}: {why}"))
        if skipped:
            warnings.warn(f"dataset {spec.name!r}: skipped {len(skipped)} of {len(records)} image(s): "
                          f"{_name_some(skipped)}", stacklevel=3)
        records = kept
        if not records:
            raise DatasetError(f"dataset {spec.name!r}: every image under {root} is missing or unreadable")
    index = {r.id: i for i, r in enumerate(records)}
    pairs = [(index[a], index[b]) for a, b in pair_ids if a in index and b in index]
    splits = [r.split for r in records]
    groups = [r.group for r in records]
    if any(g is None for g in groups) and any(g is not None for g in groups):
        raise DatasetError(f"dataset {spec.name!r}: patient known for some images only")
    given = None
    if any(s is not None for s in splits):
        if any(s is None for s in splits):
            raise DatasetError(f"dataset {spec.name!r}: publisher split known for some images only")
        given = [str(s) for s in splits]
    return FileImageDataset(name=spec.name, ids=[r.id for r in records], labels=[r.label for r in records],
                            classes=classes or spec.classes, paths=[r.path for r in records], pairs=pairs,
                            skipped=skipped, given_split=given, fingerprint=fingerprint(root, options),
                            groups=None if not groups or groups[0] is None else [str(g) for g in groups])


def check_agreement(dataset: str, what: str, disagreements: list[tuple[str, str]]) -> None:
    """Two label sources must agree; one error counts the files where they do not and names the first."""
    if disagreements:
        raise DatasetError(f"dataset {dataset!r}: {what} disagree for {len(disagreements)} file(s): "
                           f"{_name_some(disagreements)}")


SUFFIX_LABEL = re.compile(r"_([01])$")
