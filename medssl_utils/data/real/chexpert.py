"""CheXpert (Stanford) as downloaded: ``CheXpert-v1.0[-small]/train.csv`` and the JPEGs it lists.

Layout (the one rule, ``registry.LAYOUT_RULE``): the archive unzipped into ``data_root/chexpert/``, so
``data_root/chexpert/CheXpert-v1.0/{train.csv, valid.csv, train/patient00001/study1/view1_frontal.jpg}``
(or ``CheXpert-v1.0-small/``, the downsampled archive). Also read: the top folder dropped
(``data_root/chexpert/train.csv``, ``train/``), one wrapper folder, and ``train.csv``/``valid.csv`` beside the
top folder (where the authors copied them). The CSV's ``Path`` column (``CheXpert-v1.0-small/train/...``) is
resolved inside the folder found, whatever its name.

Label (paper §4.2.2): many-to-one on Pleural Effusion, the most common finding; every other finding and
"No Finding" are negative; a blank cell (not mentioned) is negative.

Switches (defaults follow the paper's wording; the other values reproduce the authors' code):

``uncertain`` -- the labeller's -1 ("uncertain") on Pleural Effusion. Default ``"zeros"``: the paper
gives the positive label to the pathology only, so a mention the labeller could not confirm stays
negative; this is also what the authors' linear and finetune runs did in effect (they drew
U(0.55, 0.85) and the integer cast truncated it to 0). ``"ones"`` is their few-shot code (U-Ones);
``"ignore"`` drops those images (CheXpert's U-Ignore), which neither the paper nor the code used.

``views`` -- ``"all"`` (default) keeps frontal and lateral images mixed, as the paper is silent and the
authors' code did; ``"frontal"`` keeps frontal images only.

``official_valid`` -- the test split. Default ``False``: the registry's ``random_60_40`` split of
``train.csv`` (paper silent; the authors' code shuffled ``train.csv`` and took 60 % / 40 %, ignoring the
official validation set). ``True`` also reads ``valid.csv`` (234 images, 200 patients) and marks it as the
publisher's test split, for ``make_manifest(ds, split="official")``.

``split_by`` -- what the random split keeps on one side. Default ``"patient"``: every image of a patient
(``patientNNNNN`` in the path) in the same split, so no patient's studies, nor a study's frontal/lateral
pair, straddle train and test; ``"study"`` groups by study only; ``"image"`` splits images independently,
as the authors' code did (it shuffled the rows of ``train.csv``). The official validation patients are
disjoint from the training patients already.

Multi-view pairs: each lateral image with the first frontal image of the same study (the authors
paired a lateral with ``view1_frontal`` of its study).
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd

from ..base import DatasetError, FileImageDataset
from ..registry import DatasetSpec, register
from ..registry import expected_layout
from ._common import Record, assemble, choice, read_csv

PATH, VIEW, TARGET = "Path", "Frontal/Lateral", "Pleural Effusion"
TOPS = ("CheXpert-v1.0", "CheXpert-v1.0-small")   # what the two archives unzip to
SPLIT_BY = ("patient", "study", "image")


def find_csv(root: Path) -> Path:
    """``train.csv`` in the release folder, else beside it when that folder is a named top folder (the
    authors copied the CSV up one level)."""
    places = [root] + ([root.parent] if root.name in TOPS else [])
    for folder in places:
        if (folder / "train.csv").is_file():
            return folder / "train.csv"
    raise DatasetError(f"missing file {root / 'train.csv'}: expected CheXpert's train.csv, as "
                       f"{expected_layout(SPEC)}")


def image_path(root: Path, rel: str) -> Path:
    """``Path`` cells start with the archive's top folder (``CheXpert-v1.0-small/train/...``); ``root`` is it."""
    head, _, rest = rel.partition("/")
    return root / rest if head.startswith("CheXpert") and rest else root / rel


def group_of(rel: str, split_by: str) -> str | None:
    """``patientNNNNN`` (or ``patientNNNNN/studyN``) of a ``Path`` cell; None for image-level splits."""
    if split_by == "image":
        return None
    parts = rel.split("/")
    at = next((i for i, p in enumerate(parts) if p.startswith("patient")), None)
    if at is None or at + 1 >= len(parts) - 1:
        raise DatasetError(f"CheXpert path {rel!r} has no patientNNNNN/studyN/ part; expected "
                           "CheXpert-v1.0*/train/patientNNNNN/studyN/viewN_*.jpg (or split_by='image')")
    return "/".join(parts[at:at + (1 if split_by == "patient" else 2)])


def _records(csv: Path, root: Path, *, uncertain: str, views: str, split: str | None,
             split_by: str = "patient") -> list[tuple[Record, str]]:
    """(record, view) per kept row; vectorised because train.csv has 223,414 rows."""
    df = read_csv(csv, [PATH, VIEW, TARGET], what="a CheXpert label CSV", dtype={PATH: str, VIEW: str})
    view = df[VIEW].astype(str).str.strip()
    bad_view = ~view.isin(["Frontal", "Lateral"])
    if bad_view.any():
        i = int(bad_view.to_numpy().argmax())
        raise DatasetError(f"{csv} line {i + 2}: {VIEW} is {str(df[VIEW].iloc[i])!r}; expected 'Frontal' or 'Lateral'")
    value = pd.to_numeric(df[TARGET], errors="coerce")
    bad_value = (value.notna() & ~value.isin([1.0, 0.0, -1.0])) | (value.isna() & df[TARGET].notna())
    if bad_value.any():
        i = int(bad_value.to_numpy().argmax())
        raise DatasetError(f"{csv} line {i + 2}: {TARGET} value {str(df[TARGET].iloc[i])!r}; expected 1, 0, -1 or blank")
    unc = {"zeros": 0.0, "ones": 1.0, "ignore": np.nan}[uncertain]
    label = value.fillna(0.0).replace(-1.0, unc)
    keep = label.notna() & ((view == "Frontal") if views == "frontal" else True)
    paths = df[PATH].astype(str).str.strip()[keep]
    return [(Record(id=rel, label=int(y), path=image_path(root, rel), split=split, group=group_of(rel, split_by)), v)
            for rel, y, v in zip(paths, label[keep], view[keep])]


def view_pairs(rows: list[tuple[Record, str]]) -> list[tuple[str, str]]:
    """(frontal id, lateral id) for every lateral whose study also has a frontal image."""
    frontal: dict[str, list[str]] = defaultdict(list)
    lateral: dict[str, list[str]] = defaultdict(list)
    for rec, view in rows:
        study = rec.id.rsplit("/", 1)[0]
        (frontal if view == "Frontal" else lateral)[study].append(rec.id)
    return [(sorted(frontal[s])[0], lat) for s in sorted(lateral) if frontal.get(s) for lat in sorted(lateral[s])]


def load_chexpert(spec: DatasetSpec, *, root: Path, uncertain: str = "zeros", views: str = "all",
                  official_valid: bool = False, split_by: str = "patient", on_bad_image: str = "raise") -> FileImageDataset:
    choice("uncertain", uncertain, ("zeros", "ones", "ignore"), spec.name)
    choice("views", views, ("all", "frontal"), spec.name)
    choice("official_valid", official_valid, (False, True), spec.name)
    choice("split_by", split_by, SPLIT_BY, spec.name)
    csv = find_csv(root)
    kw = dict(uncertain=uncertain, views=views, split_by=split_by)
    rows = _records(csv, root, split="train" if official_valid else None, **kw)
    if official_valid:
        rows += _records(csv.with_name("valid.csv"), root, split="test", **kw)
    opts = dict(uncertain=uncertain, views=views, official_valid=official_valid,
                csv=csv.relative_to(root.parent).as_posix())
    return assemble(spec, root, opts, [r for r, _ in rows], pair_ids=view_pairs(rows), on_bad_image=on_bad_image)


SPEC = register(DatasetSpec(
    name="chexpert", title="CheXpert", modality="chest X-ray", domain="in",
    classes=("no pleural effusion", "pleural effusion"),
    label_policy="Pleural Effusion positive vs every other finding or none (many-to-one); blank = negative; "
                 "uncertain (-1) = negative by default (switch uncertain='ones' is the authors' few-shot code)",
    fewshot_ways=2, manyshot=("linear", "finetune"), metric="accuracy", loader=load_chexpert,
    fewshot_pool_limit=10_001,
    folder="chexpert", top=TOPS, marks=("train.csv", "train/"),
    options={"uncertain": "zeros", "views": "all", "official_valid": False, "split_by": "patient",
             "on_bad_image": "raise"},
    split="random_60_40", multiview=True, invariances=("hflip", "multiview"),
    url="https://stanfordmlgroup.github.io/competitions/chexpert/",
    licence="Stanford CheXpert Dataset Research Use Agreement (registration; non-commercial research only)",
    n_images_paper=224_316,
))
