"""CheXpert (Stanford) as downloaded: ``CheXpert-v1.0[-small]/train.csv`` and the JPEGs it lists.

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
from ._common import Record, assemble, choice, read_csv

PATH, VIEW, TARGET = "Path", "Frontal/Lateral", "Pleural Effusion"
# Where train.csv may sit, in the order searched; the authors copied it to the root.
CSV_CANDIDATES = ("train.csv", "CheXpert-v1.0/train.csv", "CheXpert-v1.0-small/train.csv")


def find_csv(root: Path) -> Path:
    for rel in CSV_CANDIDATES:
        if (root / rel).is_file():
            return root / rel
    raise DatasetError(f"missing file: none of {[str(root / r) for r in CSV_CANDIDATES]} exists; expected "
                       "CheXpert's train.csv (its Path column relative to the folder holding CheXpert-v1.0*/)")


def _records(csv: Path, root: Path, *, uncertain: str, views: str, split: str | None) -> list[tuple[Record, str]]:
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
    return [(Record(id=rel, label=int(y), path=root / rel, split=split), v)
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
                  official_valid: bool = False, on_bad_image: str = "raise") -> FileImageDataset:
    choice("uncertain", uncertain, ("zeros", "ones", "ignore"), spec.name)
    choice("views", views, ("all", "frontal"), spec.name)
    choice("official_valid", official_valid, (False, True), spec.name)
    csv = find_csv(root)
    rows = _records(csv, root, uncertain=uncertain, views=views, split="train" if official_valid else None)
    if official_valid:
        rows += _records(csv.with_name("valid.csv"), root, uncertain=uncertain, views=views, split="test")
    opts = dict(uncertain=uncertain, views=views, official_valid=official_valid, csv=csv.relative_to(root).as_posix())
    return assemble(spec, root, opts, [r for r, _ in rows], pair_ids=view_pairs(rows), on_bad_image=on_bad_image)


SPEC = register(DatasetSpec(
    name="chexpert", title="CheXpert", modality="chest X-ray", domain="in",
    classes=("no pleural effusion", "pleural effusion"),
    label_policy="Pleural Effusion positive vs every other finding or none (many-to-one); blank = negative; "
                 "uncertain (-1) = negative by default (switch uncertain='ones' is the authors' few-shot code)",
    fewshot_ways=2, manyshot=("linear", "finetune"), metric="accuracy", loader=load_chexpert,
    fewshot_pool_limit=10_001,
    folder="chexpert",
    options={"uncertain": "zeros", "views": "all", "official_valid": False, "on_bad_image": "raise"},
    split="random_60_40", multiview=True, invariances=("hflip", "multiview"),
    url="https://stanfordmlgroup.github.io/competitions/chexpert/",
    licence="Stanford CheXpert Dataset Research Use Agreement (registration; non-commercial research only)",
    n_images_paper=224_316,
))
