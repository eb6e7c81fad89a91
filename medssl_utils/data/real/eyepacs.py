"""EyePACS, from Kaggle's Diabetic Retinopathy Detection competition, as downloaded.

Layout (the one rule, ``registry.LAYOUT_RULE``): Kaggle's files are loose, so unpacked in
``data_root/eyepacs/`` they give ``data_root/eyepacs/{trainLabels.csv, train/10_left.jpeg}`` (image, level;
``train.zip.001``... unpack to ``train/``); and ``testLabels.csv`` (image, level[, Usage]: the labels Kaggle
released after the competition, which it names ``retinopathy_solution.csv``; either name is read) with
``test/<image>.jpeg``. Also read inside one wrapper folder (``diabetic-retinopathy-detection/``).
Label: the DR grade 0-4, five classes (few-shot 5-way; many-shot scored by mean per-class accuracy).

Switches:
``official_test`` -- default ``True``: the test images form the publisher's test split (``given_split``),
as the authors' linear and finetune runs used; ``False`` reads the training part only (the 35,126
images of the paper's Table 1) and leaves the split to a random manifest.
``split_by`` -- default ``"patient"``: image names are ``<patient>_left``/``<patient>_right``, and a random
split (``official_test=False``) or the validation part carved out of train keeps both eyes of a patient on
one side (Kaggle's own split is by patient already); ``"image"`` splits images independently.
``pairs_same_level`` -- multi-view pairs are the left and right eye of one patient. Default ``False``
(the paper: two views of the same object); ``True`` keeps only pairs whose eyes have the same grade,
as the authors' code did.
"""
from __future__ import annotations

from pathlib import Path

from ..base import DatasetError, FileImageDataset
from ..registry import DatasetSpec, register
from ._common import SPLIT_UNITS, Record, assemble, choice, read_csv, require_dir

GRADES = ("no DR", "mild DR", "moderate DR", "severe DR", "proliferative DR")


TEST_CSVS = ("testLabels.csv", "retinopathy_solution.csv")


def patient_of(image: str) -> str:
    """``10_left`` -> ``10``; a name without the eye suffix is its own patient."""
    for eye in ("_left", "_right"):
        if image.endswith(eye):
            return image[: -len(eye)]
    return image


def _part(root: Path, csv_name: str, folder: str, split: str | None, hint: str = "",
          grouped: bool = True) -> list[Record]:
    csv = root / csv_name
    df = read_csv(csv, ["image", "level"], what=f"EyePACS labels (image, level) for {folder}/{hint}")
    images = require_dir(root / folder, f"EyePACS images {folder}/<image>.jpeg listed in {csv_name}")
    out = []
    for row_no, (name, level) in enumerate(zip(df["image"].astype(str).str.strip(), df["level"]), start=2):
        try:
            grade = int(level)
        except (TypeError, ValueError):
            grade = -1
        if grade not in range(len(GRADES)) or grade != level:
            raise DatasetError(f"{csv} line {row_no}: level {str(level)!r}; expected an integer 0-4")
        out.append(Record(id=name, label=grade, path=images / f"{name}.jpeg", split=split,
                          group=patient_of(name) if grouped else None))
    return out


def eye_pairs(records: list[Record], *, same_level: bool) -> list[tuple[str, str]]:
    """(left id, right id) of each patient with both eyes in the same split."""
    by_id = {r.id: r for r in records}
    pairs = []
    for r in records:
        if not r.id.endswith("_left"):
            continue
        other = by_id.get(r.id[: -len("_left")] + "_right")
        if other is None or other.split != r.split or (same_level and other.label != r.label):
            continue
        pairs.append((r.id, other.id))
    return pairs


def load_eyepacs(spec: DatasetSpec, *, root: Path, official_test: bool = True, pairs_same_level: bool = False,
                 split_by: str = "patient", on_bad_image: str = "raise") -> FileImageDataset:
    choice("official_test", official_test, (True, False), spec.name)
    choice("pairs_same_level", pairs_same_level, (False, True), spec.name)
    choice("split_by", split_by, SPLIT_UNITS, spec.name)
    grouped = split_by == "patient"
    records = _part(root, "trainLabels.csv", "train", "train" if official_test else None, grouped=grouped)
    if official_test:
        test_csv = next((n for n in TEST_CSVS if (root / n).is_file()), TEST_CSVS[0])
        records += _part(root, test_csv, "test", "test", grouped=grouped,
                         hint=f" named {' or '.join(TEST_CSVS)} (or pass official_test=False)")
    opts = dict(official_test=official_test, pairs_same_level=pairs_same_level)
    return assemble(spec, root, opts, records, pair_ids=eye_pairs(records, same_level=pairs_same_level),
                    on_bad_image=on_bad_image)


SPEC = register(DatasetSpec(
    name="eyepacs", title="EyePACS", modality="fundus", domain="out", classes=GRADES,
    label_policy="diabetic retinopathy grade 0-4 as 5 classes",
    fewshot_ways=5, manyshot=("linear", "finetune"), metric="mean_per_class_accuracy", loader=load_eyepacs,
    fewshot_pool_limit=10_001,
    folder="eyepacs", marks=("trainLabels.csv", "train/"),
    options={"official_test": True, "pairs_same_level": False, "split_by": "patient", "on_bad_image": "raise"},
    split="official", multiview=True, invariances=("rotation", "hue", "multiview"),
    url="https://www.kaggle.com/c/diabetic-retinopathy-detection",
    licence="Kaggle competition data (EyePACS); competition rules, non-commercial research use",
    n_images_paper=35_126,
))
