"""NIH ChestX-ray14 as downloaded: ``Data_Entry_2017.csv`` and the PNGs.

Label (paper §4.2.2, following CD-FSL): only images with exactly one finding, and only the seven
findings CD-FSL uses; "No Finding", multi-finding rows and the other seven findings are left out.

Layout (the one rule, ``registry.LAYOUT_RULE``): NIH's release is loose files, so the CSV and the twelve
``images_0NN.tar.gz`` unpacked in ``data_root/chestx14/`` give ``data_root/chestx14/{Data_Entry_2017.csv,
images/00000001_000.png}`` (the tarballs all unpack to ``images/``, as the authors used them). Also read: the
Kaggle copy (``images_0NN/images/``), the 2020 revision ``Data_Entry_2017_v2020.csv`` when the original is
absent, and one wrapper folder (e.g. the Box folder ``ChestXray-NIHCC/``).

``split_by`` -- default ``"patient"``: the CSV's ``Patient ID`` keeps every image of a patient (all their
follow-ups) in one split; ``"image"`` splits images independently, as the authors' code did.
"""
from __future__ import annotations

from pathlib import Path

from ..base import DatasetError, FileImageDataset
from ..registry import DatasetSpec, register
from ..registry import expected_layout
from ._common import SPLIT_UNITS, Record, assemble, choice, read_csv

CLASSES = ("Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumothorax")
IMAGE, FINDINGS, PATIENT = "Image Index", "Finding Labels", "Patient ID"
CSV_NAMES = ("Data_Entry_2017.csv", "Data_Entry_2017_v2020.csv")


def find_csv(root: Path) -> Path:
    for name in CSV_NAMES:
        if (root / name).is_file():
            return root / name
    raise DatasetError(f"missing file {root / CSV_NAMES[0]}: expected ChestX-ray14's label CSV, as "
                       f"{expected_layout(SPEC)}")


def image_locations(root: Path) -> dict[str, Path]:
    """File name -> path over ``images/`` and ``images_*/images/``; one directory listing each."""
    folders = [root / "images"] + sorted(root.glob("images_*/images"))
    where: dict[str, Path] = {}
    for folder in folders:
        if folder.is_dir():
            for p in folder.iterdir():
                where.setdefault(p.name, p)
    if not where:
        raise DatasetError(f"missing folder {root / 'images'}: expected ChestX-ray14's PNGs, as "
                           f"{expected_layout(SPEC)} (or images_0NN/images/)")
    return where


def load_chestx14(spec: DatasetSpec, *, root: Path, split_by: str = "patient",
                  on_bad_image: str = "raise") -> FileImageDataset:
    choice("split_by", split_by, SPLIT_UNITS, spec.name)
    csv = find_csv(root)
    grouped = split_by == "patient"
    df = read_csv(csv, [IMAGE, FINDINGS] + ([PATIENT] if grouped else []),
                  what="ChestX-ray14's Data_Entry CSV (split_by='image' needs no Patient ID)")
    where = image_locations(root)
    index = {c: i for i, c in enumerate(CLASSES)}
    if grouped and df[PATIENT].isna().any():
        raise DatasetError(f"{csv} line {int(df[PATIENT].isna().to_numpy().argmax()) + 2}: blank {PATIENT}; "
                           "expected one per image (or split_by='image')")
    patients = df[PATIENT].astype(str).str.strip() if grouped else [None] * len(df)
    records = []
    for name, findings, patient in zip(df[IMAGE].astype(str).str.strip(), df[FINDINGS].astype(str), patients):
        parts = [f.strip() for f in findings.split("|")]
        if len(parts) != 1 or parts[0] not in index:
            continue
        records.append(Record(id=name, label=index[parts[0]], path=where.get(name, root / "images" / name),
                              group=patient))
    return assemble(spec, root, {"csv": csv.name}, records, on_bad_image=on_bad_image)


SPEC = register(DatasetSpec(
    name="chestx14", title="ChestX-ray14", modality="chest X-ray", domain="in", classes=CLASSES,
    label_policy="single-finding images of 7 findings (Atelectasis, Cardiomegaly, Effusion, Infiltration, "
                 "Mass, Nodule, Pneumothorax), 7-way; multi-finding and 'No Finding' images left out",
    fewshot_ways=5, manyshot=(), metric="accuracy", loader=load_chestx14, folder="chestx14",
    marks=("Data_Entry_2017.csv", "images/", "Data_Entry_2017_v2020.csv", "images_*/images/"),
    fewshot_pool_limit=10_001,
    options={"split_by": "patient", "on_bad_image": "raise"}, split="random_80_20", invariances=("hflip",),
    url="https://nihcc.app.box.com/v/ChestXray-NIHCC",
    licence="NIH Clinical Center public release; unrestricted use with citation of Wang et al. 2017 (see its README)",
    n_images_paper=112_120,
))
