"""The dataset registry: one declarative record per dataset; nothing else branches on dataset names.

A record says what the paper says about the dataset (modality, domain, classes, label conversion,
protocols) and how to build it (a loader function plus its default switches). MedSynth sets are generated
into the cache.

Real datasets, one rule for all eight (``LAYOUT_RULE``): ``data_root/<folder>/`` holds the publisher's
archive(s) extracted there as published, the archive's own top folder kept (``top``: ``MontgomerySet/``,
``CheXpert-v1.0/``, ...; ChestX-ray14 and EyePACS ship loose files, so theirs start directly with the
files). Also accepted, because they are unambiguous: that top folder dropped or renamed, and one extra
wrapper folder (a download's own folder, e.g. ``data_root/eyepacs/diabetic-retinopathy-detection/``).
``locate`` finds the publisher's folder by the record's ``marks`` and hands it to the loader.
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
    top: tuple[str, ...] = ()      # the folder(s) the publisher's archive extracts to (none: loose files)
    marks: tuple[str, ...] = ()    # what identifies the release inside ``top`` (glob patterns, any one will do;
                                   # the first two are shown in errors and docs)
    options: dict[str, Any] = field(default_factory=dict)   # loader switches and their defaults
    split: str = "random_80_20"    # how the test split is made (see manifests.py)
    synthetic: bool = False        # True for MedSynth: never mistaken for the real data
    stands_for: str | None = None  # MedSynth: the real dataset whose role it plays
    multiview: bool = False        # has view pairs for the multi-view invariance
    invariances: tuple[str, ...] = ()   # invariances the paper measured here (AUTHORS_CODE.md §4.6): "rotation",
                                       # "hflip", "hue", "multiview"; MedSynth sets take their stands_for's
    # the authors' few-shot inputs (AUTHORS_CODE.md §3, §4.1), used only under options.fewshot = authors:
    fewshot_pool_limit: int | None = None   # the large sets drew episodes from the first 10,001 training rows
    fewshot_square_resize: bool = False     # the small sets were resized to a square 257 px (aspect distorted)
    url: str = ""
    licence: str = ""
    n_images_paper: int | None = None   # Table 1 of the paper
    root: str = ""                 # a user entry's own folder or CSV (user_entries.py): read from there, no data_root


DATASETS: dict[str, DatasetSpec] = {}
# The paper's datasets in the order of its Table 1 (and of every table and figure of this book).
PAPER_ORDER = ("chexpert", "chestx14", "montgomery", "shenzhen", "bach", "eyepacs", "ichallenge_amd", "ichallenge_pm")


def register(spec: DatasetSpec, *, replace: bool = False) -> DatasetSpec:
    """``replace``: a user entry declared again with other fields (user_entries.py) takes the old one's place."""
    if spec.name in DATASETS and not replace:
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
    if spec.root:
        return spec.loader(spec, root=Path(spec.root), **opts)
    if data_root is None:
        raise DatasetError(f"dataset {name!r} is real data: set data_root to the folder holding {spec.folder!r}/")
    root = Path(data_root) / spec.folder
    if not root.is_dir():
        raise DatasetError(f"dataset {name!r}: folder {root} does not exist; expected {expected_layout(spec)} "
                           f"({_rule_short(spec)})")
    return spec.loader(spec, root=locate(spec, root), **opts)


LAYOUT_RULE = ("data_root/<folder>/ holds the publisher's archive(s) extracted there as published, the archive's "
               "top folder kept (releases of loose files start with their files)")


def _rule_short(spec: DatasetSpec) -> str:
    return ("the publisher's archive extracted there as published, its top folder kept" if spec.top else
            "the publisher's files unpacked there as published")


def expected_layout(spec: DatasetSpec) -> str:
    """The first files/folders the rule puts under ``data_root``, e.g. ``data_root/bach/ICIAR2018_BACH_Challenge/Photos/``."""
    top = f"{spec.top[0]}/" if spec.top else ""
    shown = spec.marks[:2]
    inner = shown[0] if len(shown) == 1 else "{" + ", ".join(shown) + "}"
    return f"data_root/{spec.folder}/{top}{inner}"


def _matches(folder: Path, marks: tuple[str, ...]) -> bool:
    return any(next(folder.glob(m.rstrip("/")), None) is not None for m in marks)


def _release_in(base: Path, spec: DatasetSpec) -> Path | None:
    """The publisher's folder directly in ``base``: its top folder by name, else ``base`` itself when it holds
    the contents (loose files, or the top folder dropped)."""
    for top in spec.top:
        if (base / top).is_dir() and _matches(base / top, spec.marks):
            return base / top
    return base if _matches(base, spec.marks) else None


def _subfolders(folder: Path) -> list[Path]:
    return sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith((".", "__MACOSX")))


def locate(spec: DatasetSpec, root: Path) -> Path:
    """The publisher's folder under ``root`` = ``data_root/<folder>`` (see ``LAYOUT_RULE``), at most one wrapper
    folder deep; a wrong layout is one line saying the rule and what was found."""
    if not spec.marks:
        return root
    found = _release_in(root, spec)
    if found is not None:
        return found
    # one wrapper folder around the release, or the top folder under another name
    hits = [h for h in (_release_in(d, spec) for d in _subfolders(root)) if h is not None]
    if len(hits) == 1:
        return hits[0]
    if len(hits) > 1:
        raise DatasetError(f"dataset {spec.name!r}: {root} holds {len(hits)} copies of the release "
                           f"({', '.join(h.relative_to(root).as_posix() for h in hits[:3])}); expected one, "
                           f"as {expected_layout(spec)}")
    entries = sorted(p.name + ("/" if p.is_dir() else "") for p in root.iterdir() if not p.name.startswith("."))
    seen = ", ".join(e[:40] for e in entries[:4]) + (", ..." if len(entries) > 4 else "") if entries else "nothing"
    raise DatasetError(f"dataset {spec.name!r}: {root} does not hold the release (found {seen}); "
                       f"expected {expected_layout(spec)} ({_rule_short(spec)})")


def _load_entries() -> None:
    """Import the modules whose import registers the entries (kept lazy to avoid import cycles)."""
    from . import entries  # noqa: F401
