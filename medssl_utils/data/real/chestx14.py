"""NIH ChestX-ray14 as downloaded: ``Data_Entry_2017.csv`` and the PNGs.

Label (paper §4.2.2, following CD-FSL): only images with exactly one finding, and only the seven
findings CD-FSL uses; "No Finding", multi-finding rows and the other seven findings are left out.

Images may sit in ``images/`` (the NIH tarballs unpacked together, as the authors did) or in
``images_0NN/images/`` (the Kaggle copy); the CSV may also be the 2020 revision
``Data_Entry_2017_v2020.csv`` when the original is absent.
"""
from __future__ import annotations

from pathlib import Path

from ..base import DatasetError, FileImageDataset
from ..registry import DatasetSpec, register
from ._common import Record, assemble, read_csv

CLASSES = ("Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumothorax")
IMAGE, FINDINGS = "Image Index", "Finding Labels"
CSV_NAMES = ("Data_Entry_2017.csv", "Data_Entry_2017_v2020.csv")


def find_csv(root: Path) -> Path:
    for name in CSV_NAMES:
        if (root / name).is_file():
            return root / name
    raise DatasetError(f"missing file {root / CSV_NAMES[0]}: expected ChestX-ray14's label CSV (image name, "
                       "'|'-separated findings)")


def image_locations(root: Path) -> dict[str, Path]:
    """File name -> path over ``images/`` and ``images_*/images/``; one directory listing each."""
    folders = [root / "images"] + sorted(root.glob("images_*/images"))
    where: dict[str, Path] = {}
    for folder in folders:
        if folder.is_dir():
            for p in folder.iterdir():
                where.setdefault(p.name, p)
    if not where:
        raise DatasetError(f"missing folder {root / 'images'}: expected ChestX-ray14's PNGs in images/ "
                           "or images_0NN/images/")
    return where


def load_chestx14(spec: DatasetSpec, *, root: Path, on_bad_image: str = "raise") -> FileImageDataset:
    csv = find_csv(root)
    df = read_csv(csv, [IMAGE, FINDINGS], what="ChestX-ray14's Data_Entry CSV")
    where = image_locations(root)
    index = {c: i for i, c in enumerate(CLASSES)}
    records = []
    for name, findings in zip(df[IMAGE].astype(str).str.strip(), df[FINDINGS].astype(str)):
        parts = [f.strip() for f in findings.split("|")]
        if len(parts) != 1 or parts[0] not in index:
            continue
        records.append(Record(id=name, label=index[parts[0]], path=where.get(name, root / "images" / name)))
    return assemble(spec, root, {"csv": csv.name}, records, on_bad_image=on_bad_image)


SPEC = register(DatasetSpec(
    name="chestx14", title="ChestX-ray14", modality="chest X-ray", domain="in", classes=CLASSES,
    label_policy="single-finding images of 7 findings (Atelectasis, Cardiomegaly, Effusion, Infiltration, "
                 "Mass, Nodule, Pneumothorax), 7-way; multi-finding and 'No Finding' images left out",
    fewshot_ways=5, manyshot=(), metric="accuracy", loader=load_chestx14, folder="chestx14",
    fewshot_pool_limit=10_001,
    options={"on_bad_image": "raise"}, split="random_80_20", invariances=("hflip",),
    url="https://nihcc.app.box.com/v/ChestXray-NIHCC",
    licence="NIH Clinical Center public release; unrestricted use with citation of Wang et al. 2017 (see its README)",
    n_images_paper=112_120,
))
