"""Baidu's iChallenge fundus sets (grand-challenge.org), training parts as downloaded.

Layout (the one rule, ``registry.LAYOUT_RULE``): each training zip unpacked in its folder, top folder kept.
Also read: the top folder dropped or inside one wrapper folder. Neither release names patients, so the random
split is per image.

iChallenge-AMD: ``data_root/ichallenge_amd/Training400/{AMD, Non-AMD}/*.jpg``; the folder is the label.
(The authors used a hand-made ``amd_labels.csv``; the folders carry the same information.)

iChallenge-PM (PALM): ``data_root/ichallenge_pm/PALM-Training400/PALM-Training400/*.jpg`` (unpacking the
release's inner zip in place gives the double folder; the images directly in the outer one are read too) with
file names ``N*.jpg`` normal, ``H*.jpg`` high myopia,
``P*.jpg`` pathological myopia. Switch ``pm_grouping``:
``"normal_high_vs_pathological"`` (default) -- the paper's wording (§4.2.2, after the challenge
organisers): normal and high myopia negative, pathological myopia positive;
``"normal_vs_myopic"`` -- normal negative, high and pathological myopia positive: the mapping the
authors' code had when the published PM numbers were computed (changed in their repository on
2022-04-26, after those results were committed; AUTHORS_CODE.md §0 item 3, §5 item 1).
"""
from __future__ import annotations

import re
from pathlib import Path

from ..base import DatasetError, FileImageDataset
from ..registry import DatasetSpec, register
from ._common import Record, assemble, choice, image_files, name_some, require_dir

AMD_FOLDERS = ("Non-AMD", "AMD")  # label 0, 1

PM_GROUPINGS = {
    # grouping -> (class names, label of N, H, P)
    "normal_high_vs_pathological": (("normal or high myopia", "pathological myopia"), {"N": 0, "H": 0, "P": 1}),
    "normal_vs_myopic": (("normal", "high or pathological myopia"), {"N": 0, "H": 1, "P": 1}),
}
_PM_NAME = re.compile(r"^([NHP])\d+$")


def load_amd(spec: DatasetSpec, *, root: Path, on_bad_image: str = "raise") -> FileImageDataset:
    records = []
    for label, folder in enumerate(AMD_FOLDERS):
        for img in image_files(require_dir(root / folder, f"iChallenge-AMD class folder Training400/{folder}/")):
            records.append(Record(id=img.stem, label=label, path=img))
    return assemble(spec, root, {}, records, on_bad_image=on_bad_image)


def palm_folder(root: Path) -> Path:
    """The folder that holds the PALM images: the nested copy when it exists and has images."""
    outer = root
    nested = outer / "PALM-Training400"
    if nested.is_dir() and image_files(nested):
        return nested
    return outer


def load_pm(spec: DatasetSpec, *, root: Path, pm_grouping: str = "normal_high_vs_pathological",
            on_bad_image: str = "raise") -> FileImageDataset:
    choice("pm_grouping", pm_grouping, tuple(PM_GROUPINGS), spec.name)
    classes, label_of = PM_GROUPINGS[pm_grouping]
    folder = palm_folder(root)
    records, strange = [], []
    for img in image_files(folder):
        m = _PM_NAME.match(img.stem)
        if m is None:
            strange.append(img.name)
            continue
        records.append(Record(id=img.stem, label=label_of[m.group(1)], path=img))
    if strange:
        raise DatasetError(f"dataset {spec.name!r}: {folder} holds {len(strange)} image(s) whose names do not say "
                           f"the class: {name_some(strange)}; expected N*.jpg (normal), H*.jpg (high myopia) or "
                           "P*.jpg (pathological)")
    return assemble(spec, root, {"pm_grouping": pm_grouping}, records, classes=classes, on_bad_image=on_bad_image)


AMD = register(DatasetSpec(
    name="ichallenge_amd", title="iChallenge-AMD", modality="fundus", domain="out", classes=("non-AMD", "AMD"),
    label_policy="age-related macular degeneration vs not (the release's class folders)",
    fewshot_ways=2, manyshot=(), metric="accuracy", loader=load_amd, folder="ichallenge_amd",
    top=("Training400",), marks=("AMD/", "Non-AMD/"),
    fewshot_square_resize=True,
    options={"on_bad_image": "raise"}, split="random_80_20", invariances=("rotation",),
    url="https://amd.grand-challenge.org/",
    licence="iChallenge (Baidu Research) challenge data; registration, research use under the challenge terms",
    n_images_paper=400,
))

PM = register(DatasetSpec(
    name="ichallenge_pm", title="iChallenge-PM", modality="fundus", domain="out",
    classes=PM_GROUPINGS["normal_high_vs_pathological"][0],
    label_policy="normal + high myopia negative vs pathological myopia positive (switch "
                 "pm_grouping='normal_vs_myopic': normal vs high + pathological, the authors' published runs)",
    fewshot_ways=2, manyshot=(), metric="accuracy", loader=load_pm, folder="ichallenge_pm",
    top=("PALM-Training400",), marks=("PALM-Training400/", "[NHP]*.jpg"),
    fewshot_square_resize=True,
    options={"pm_grouping": "normal_high_vs_pathological", "on_bad_image": "raise"}, split="random_80_20",
    invariances=("rotation",),
    url="https://palm.grand-challenge.org/",
    licence="iChallenge-PALM (Baidu Research) challenge data; registration, research use under the challenge terms",
    n_images_paper=400,
))
