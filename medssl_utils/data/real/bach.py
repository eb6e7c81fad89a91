"""BACH (ICIAR 2018 grand challenge), microscopy part, as downloaded.

Layout (the one rule, ``registry.LAYOUT_RULE``): the zip unpacked in ``data_root/bach/``, top folder kept:
``data_root/bach/ICIAR2018_BACH_Challenge/Photos/<Normal|Benign|InSitu|Invasive>/*.tif``; the class is the
folder. Also read: the top folder dropped (``data_root/bach/Photos/``) or inside one wrapper folder. The
release names no patients, so the random split is per image.

Label (paper §4.2.2): the four classes as one ordinal number, Normal 0 < Benign 1 < in situ carcinoma 2 <
invasive carcinoma 3 (the paper's "between 0 and 4" is the half-open range). When the
release's ``Photos/microscopy_ground_truth.csv`` (no header: file name, class) is present it must agree
with the folders; the authors read their labels from it.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..base import DatasetError, FileImageDataset
from ..registry import DatasetSpec, register
from ._common import Record, assemble, check_agreement, image_files, require_dir

FOLDERS = ("Normal", "Benign", "InSitu", "Invasive")  # ordinal order
TOP = "ICIAR2018_BACH_Challenge"
PHOTOS = Path("Photos")


def _ground_truth(path: Path) -> dict[str, str]:
    try:
        df = pd.read_csv(path, header=None, dtype=str)
    except Exception as exc:
        raise DatasetError(f"cannot read {path} ({exc}): expected rows 'file name,class'") from exc
    if df.shape[1] < 2:
        raise DatasetError(f"{path}: {df.shape[1]} column(s); expected rows 'file name,class'")
    return {str(n).strip(): str(c).strip() for n, c in zip(df[0], df[1])}


def load_bach(spec: DatasetSpec, *, root: Path, on_bad_image: str = "raise") -> FileImageDataset:
    photos = require_dir(root / PHOTOS, f"BACH's microscopy folder {TOP}/{PHOTOS}/")
    records = []
    for label, folder in enumerate(FOLDERS):
        for tif in image_files(require_dir(photos / folder, f"BACH class folder {TOP}/{PHOTOS / folder}/")):
            records.append(Record(id=tif.stem, label=label, path=tif))
    truth_csv = photos / "microscopy_ground_truth.csv"
    if truth_csv.is_file():
        truth = _ground_truth(truth_csv)
        bad = [(str(r.path), f"{truth_csv.name} says {truth.get(r.path.name, 'nothing')}")
               for r in records if truth.get(r.path.name) != FOLDERS[r.label]]
        check_agreement(spec.name, "class folder and microscopy_ground_truth.csv", bad)
    return assemble(spec, root, {}, records, on_bad_image=on_bad_image)


SPEC = register(DatasetSpec(
    name="bach", title="BACH", modality="histology", domain="out",
    classes=("normal", "benign", "in situ carcinoma", "invasive carcinoma"),
    label_policy="4 classes as an ordinal number: normal 0, benign 1, in situ 2, invasive 3",
    fewshot_ways=2, manyshot=(), metric="accuracy", loader=load_bach, folder="bach", top=(TOP,), marks=("Photos/",),
    fewshot_square_resize=True,
    options={"on_bad_image": "raise"}, split="random_80_20", invariances=("hue",),
    url="https://iciar2018-challenge.grand-challenge.org/",
    licence="CC BY-NC-ND 4.0 (BACH challenge data; registration on the challenge site)",
    n_images_paper=400,
))
