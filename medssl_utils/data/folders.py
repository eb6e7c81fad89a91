"""Datasets the package has never heard of: an ImageFolder tree or a CSV of (path, label), as a user entry declares
them (``medssl_utils/user_entries.py``).

* ImageFolder: ``root/<class>/<image>`` (torchvision's convention): the class is the sub-folder, images directly in
  it (``.png``, ``.jpg``, ``.jpeg``, ``.tif``, ``.tiff``; hidden files ignored). An image's id is its path under root.
* CSV: one row per image, a path column (relative to ``image_root``, by default the CSV's folder) and a label
  column; optionally a split column (``train`` / ``val`` / ``test``: the publisher's split, used as is) and a group
  column (patient: random splits keep a group on one side). An image's id is its path as written.

The dataset's fingerprint (hence every feature-cache key) covers the index and each file's size and mtime, so
an edited folder or CSV is extracted again, never read from a stale cache.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .base import DatasetError, FileImageDataset
from .real._common import IMAGE_SUFFIXES, Record, assemble, image_files, name_some
from .registry import DatasetSpec

SPLIT_VALUES = ("train", "val", "test")


@dataclass(frozen=True)
class Index:
    """What a folder or CSV lists, before any image is read."""
    ids: tuple[str, ...]
    labels: tuple[str, ...]           # class names as found (folder names, CSV label values as text)
    paths: tuple[Path, ...]
    splits: tuple[str, ...] | None = None
    groups: tuple[str, ...] | None = None

    def digest(self) -> str:
        h = hashlib.sha256()
        for i, (id_, label, path) in enumerate(zip(self.ids, self.labels, self.paths)):
            st = path.stat() if path.is_file() else None
            extra = f"{self.splits[i] if self.splits else ''}|{self.groups[i] if self.groups else ''}"
            h.update(f"{id_}|{label}|{extra}|{st.st_size if st else -1}|{st.st_mtime_ns if st else -1}\n".encode())
        return h.hexdigest()[:16]


def index_folder(root: Path) -> Index:
    """``root/<class>/<image>``; an empty class folder or a root without class folders is an error."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"folder {root} does not exist; expected an ImageFolder tree root/<class>/<image>")
    classes = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith((".", "__MACOSX")))
    if not classes:
        raise DatasetError(f"folder {root} has no class sub-folders; expected an ImageFolder tree root/<class>/<image>")
    ids, labels, paths = [], [], []
    for folder in classes:
        files = image_files(folder)
        if not files:
            raise DatasetError(f"class folder {folder} holds no images ({', '.join(IMAGE_SUFFIXES)})")
        for f in files:
            ids.append(f.relative_to(root).as_posix())
            labels.append(folder.name)
            paths.append(f)
    return Index(tuple(ids), tuple(labels), tuple(paths))


def index_csv(csv: Path, *, image_root: Path | None = None, path_column: str = "path", label_column: str = "label",
              split_column: str | None = None, group_column: str | None = None) -> Index:
    """The CSV's rows; a missing column, an empty cell, a repeated path or a split value outside train/val/test is
    one line naming the CSV, the column and the first row concerned."""
    csv = Path(csv)
    if not csv.is_file():
        raise DatasetError(f"CSV file {csv} does not exist")
    try:
        df = pd.read_csv(csv, dtype=str, keep_default_na=False)
    except Exception as exc:  # pandas raises several types for malformed files
        raise DatasetError(f"cannot read CSV {csv}: {' '.join(str(exc).split())[:200]}") from None
    df.columns = [str(c).strip() for c in df.columns]
    wanted = {"path_column": path_column, "label_column": label_column, "split_column": split_column,
              "group_column": group_column}
    for field, column in wanted.items():
        if column is not None and column not in df.columns:
            raise DatasetError(f"CSV {csv}: no column {column!r} ({field}); its columns are {list(df.columns)}")
    if df.empty:
        raise DatasetError(f"CSV {csv} has no rows")
    for field, column in wanted.items():
        if column is None:
            continue
        blank = [i + 2 for i, v in enumerate(df[column]) if not str(v).strip()]   # +2: header line, 1-based
        if blank:
            raise DatasetError(f"CSV {csv}: column {column!r} ({field}) is empty on line(s) {name_some(blank)}")
    ids = [str(v).strip() for v in df[path_column]]
    seen: set[str] = set()
    dup = [i for i in ids if i in seen or seen.add(i)]
    if dup:
        raise DatasetError(f"CSV {csv}: column {path_column!r} lists {len(dup)} path(s) twice, e.g. {dup[0]!r}")
    base = Path(image_root) if image_root is not None else csv.parent
    paths = [p if p.is_absolute() else base / p for p in map(Path, ids)]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise DatasetError(f"CSV {csv}: {len(missing)} of {len(paths)} image(s) in column {path_column!r} do not exist "
                           f"(paths relative to {base}), first {missing[0]}")
    splits = None
    if split_column is not None:
        splits = tuple(str(v).strip().lower() for v in df[split_column])
        bad = sorted(set(splits) - set(SPLIT_VALUES))
        if bad:
            raise DatasetError(f"CSV {csv}: column {split_column!r} (split_column) holds {bad[:3]}; expected "
                               f"{', '.join(SPLIT_VALUES)}")
        absent = [s for s in ("train", "test") if s not in splits]
        if absent:
            raise DatasetError(f"CSV {csv}: column {split_column!r} (split_column) has no {absent[0]!r} rows; "
                               "expected train and test rows (val is optional)")
    groups = tuple(str(v).strip() for v in df[group_column]) if group_column is not None else None
    return Index(tuple(ids), tuple(str(v).strip() for v in df[label_column]), tuple(paths), splits, groups)


def load_indexed(spec: DatasetSpec, *, root: Path, index: "IndexSource", on_bad_image: str = "raise") -> FileImageDataset:
    """The loader of a user entry (``DatasetSpec.loader`` is this with ``index`` bound): labels are positions in
    ``spec.classes``, which the entry fixed when it was declared."""
    ix = index()
    pos = {c: k for k, c in enumerate(spec.classes)}
    unknown = sorted(set(ix.labels) - set(pos))
    if unknown:
        raise DatasetError(f"dataset {spec.name!r}: {root} now has class(es) {unknown[:3]} not declared when it was "
                           f"registered ({', '.join(spec.classes)}); resolve the config again")
    records = [Record(id=i, label=pos[c], path=p, split=ix.splits[k] if ix.splits else None,
                      group=ix.groups[k] if ix.groups else None)
               for k, (i, c, p) in enumerate(zip(ix.ids, ix.labels, ix.paths))]
    return assemble(spec, root, {"index": ix.digest()}, records, on_bad_image=on_bad_image)


class IndexSource:
    """A picklable, comparable description of where an entry's index comes from (folder or CSV and its columns)."""

    def __init__(self, kind: str, path: Path, **columns):
        self.kind, self.path, self.columns = kind, Path(path), columns

    def __call__(self) -> Index:
        return index_folder(self.path) if self.kind == "imagefolder" else index_csv(self.path, **self.columns)

    def __eq__(self, other) -> bool:
        return isinstance(other, IndexSource) and (self.kind, self.path, self.columns) == \
            (other.kind, other.path, other.columns)

    def __hash__(self) -> int:
        return hash((self.kind, self.path, tuple(sorted((k, str(v)) for k, v in self.columns.items()))))

    def __repr__(self) -> str:
        return f"IndexSource({self.kind}, {self.path})"
