"""Fake copies of the paper's eight datasets in their publishers' layouts, for the loader tests and the rehearsal.

Every writer puts its dataset under ``root/<registry folder>`` with the publisher's file names, CSV columns
and folder nesting (the archive extracted there, its top folder kept: ``registry.LAYOUT_RULE``), 8x8 images,
patients with several images where the publisher names patients, and the distractors a real download has
(other findings, uncertain labels, multi-label rows, stray non-image files). Each returns the truth it wrote, so tests derive the
expected labels from what was written rather than from a loader run. The pixels are noise.
"""
from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

SIZE = 8


def _image(path: Path, seed: int, *, mode: str = "L", fmt: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    shape = (SIZE, SIZE) if mode == "L" else (SIZE, SIZE, 3)
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode=mode).save(path, format=fmt)
    return path


def _text(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def _csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def truncate(path: Path, keep: float = 0.5) -> Path:
    """Cut a file short, as an interrupted download does."""
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[: max(1, int(len(data) * keep))])
    return Path(path)


# ---------------------------------------------------------------- CheXpert
CHEXPERT_COLUMNS = ["Path", "Sex", "Age", "Frontal/Lateral", "AP/PA", "No Finding", "Enlarged Cardiomediastinum",
                    "Cardiomegaly", "Lung Opacity", "Lung Lesion", "Edema", "Consolidation", "Pneumonia",
                    "Atelectasis", "Pneumothorax", "Pleural Effusion", "Pleural Other", "Fracture",
                    "Support Devices"]
# kind -> (Pleural Effusion cell, other finding set to 1.0)
CHEXPERT_KINDS = {"positive": ("1.0", "Lung Opacity"), "negative_other": ("0.0", "Cardiomegaly"),
                  "uncertain": ("-1.0", "Edema"), "blank_no_finding": ("", "No Finding"),
                  "blank_other": ("", "Atelectasis")}


def write_chexpert(root: Path, n_per_class: int = 3, *, variant: str = "CheXpert-v1.0",
                   csv_at_root: bool = False) -> dict:
    """CheXpert: ``<variant>/train.csv`` + ``valid.csv``, ``<variant>/train/patientNNNNN/studyN/viewN_<v>.jpg``.

    ``n_per_class`` studies of each kind in CHEXPERT_KINDS. Every study has view1_frontal; even-numbered
    studies add view2_lateral; every fifth study has a second frontal and a lateral (view2_frontal,
    view3_lateral); one extra lateral-only study cannot be paired. Every third study is the second study
    (``study2``) of the previous study's patient, so patients span kinds. Returns {"train": rows, "valid":
    rows}, each row {"id", "pe" (cell text), "view", "study", "patient"}.
    """
    base = Path(root) / "chexpert"
    rows, truth, k = [], [], 0

    def add(kind_cell: str, other: str, study: str, view: str, name: str, split: str, out: list, seed: int):
        rel = f"{variant}/{split}/{study}/{name}"
        cells = {c: "" for c in CHEXPERT_COLUMNS}
        cells.update({"Path": rel, "Sex": "Female" if seed % 2 else "Male", "Age": 40 + seed % 30,
                      "Frontal/Lateral": view, "AP/PA": "AP" if view == "Frontal" else "",
                      "Pleural Effusion": kind_cell, other: "1.0", "Support Devices": "1.0" if seed % 3 == 0 else ""})
        if kind_cell == "" and other == "No Finding":
            cells["Support Devices"] = ""
        _image(base / rel, seed, fmt="JPEG")
        out.append([cells[c] for c in CHEXPERT_COLUMNS])
        truth.append({"id": rel, "pe": kind_cell, "view": view, "study": f"{split}/{study}", "split": split,
                      "patient": study.split("/")[0]})

    for kind, (cell, other) in CHEXPERT_KINDS.items():
        for _ in range(n_per_class):
            study = f"patient{k:05d}/study2" if k % 3 == 2 else f"patient{k + 1:05d}/study1"
            add(cell, other, study, "Frontal", "view1_frontal.jpg", "train", rows, 100 + 10 * k)
            if k % 5 == 0:
                add(cell, other, study, "Frontal", "view2_frontal.jpg", "train", rows, 101 + 10 * k)
                add(cell, other, study, "Lateral", "view3_lateral.jpg", "train", rows, 102 + 10 * k)
            elif k % 2 == 0:
                add(cell, other, study, "Lateral", "view2_lateral.jpg", "train", rows, 103 + 10 * k)
            k += 1
    add("0.0", "Fracture", f"patient{k + 1:05d}/study2", "Lateral", "view1_lateral.jpg", "train", rows, 104 + 10 * k)
    train_truth = truth[:]
    csv_dir = base if csv_at_root else base / variant
    _csv(csv_dir / "train.csv", CHEXPERT_COLUMNS, rows)
    truth.clear()
    valid_rows: list = []
    for j in range(4):  # the official validation set has no uncertain labels
        add("1.0" if j % 2 else "0.0", "Edema", f"patient{64541 + j}/study1", "Frontal", "view1_frontal.jpg",
            "valid", valid_rows, 900 + j)
    _csv(csv_dir / "valid.csv", CHEXPERT_COLUMNS, valid_rows)
    return {"train": train_truth, "valid": truth[:]}


# ---------------------------------------------------------------- ChestX-ray14
CHESTX_CLASSES = ("Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumothorax")
# The release's header really does split "OriginalImage[Width,Height]" into two columns and ends in a comma.
CHESTX_HEADER = ["Image Index", "Finding Labels", "Follow-up #", "Patient ID", "Patient Age", "Patient Gender",
                 "View Position", "OriginalImage[Width", "Height]", "OriginalImagePixelSpacing[x", "y]", ""]
CHESTX_DISTRACTORS = ("No Finding", "No Finding", "Pneumonia", "Hernia", "Atelectasis|Effusion",
                      "Mass|Nodule", "Effusion|Infiltration|Pneumothorax")


def write_chestx14(root: Path, n_per_class: int = 3, *, kaggle_layout: bool = False) -> dict[str, str]:
    """ChestX-ray14: ``Data_Entry_2017.csv`` + ``images/*.png`` (or ``images_00N/images/`` when kaggle_layout).

    ``n_per_class`` single-finding rows of each of the 7 classes plus CHESTX_DISTRACTORS (No Finding,
    findings outside the 7, multi-finding rows), all with images. Patients have 1, 1, 2, 1, 3, 1, ... images
    (follow-ups ``_000``, ``_001``, ...), some with different findings. Returns {image name: finding labels}.
    """
    base = Path(root) / "chestx14"
    findings = [c for c in CHESTX_CLASSES for _ in range(n_per_class)] + list(CHESTX_DISTRACTORS)
    rows, truth = [], {}
    patient, follow, sizes = 1, 0, (1, 1, 2, 1, 3)
    for i, f in enumerate(findings):
        if follow == sizes[(patient - 1) % len(sizes)]:
            patient, follow = patient + 1, 0
        name = f"{patient:08d}_{follow:03d}.png"
        folder = base / (f"images_{1 + i % 2:03d}/images" if kaggle_layout else "images")
        _image(folder / name, 200 + i)
        rows.append([name, f, follow, patient, 30 + i % 40, "MF"[i % 2], "PA", 2500, 2048, 0.143, 0.143])
        truth[name] = f
        follow += 1
    _csv(base / "Data_Entry_2017.csv", CHESTX_HEADER, rows)
    return truth


# ---------------------------------------------------------------- Montgomery / Shenzhen
MONTGOMERY_ABNORMAL = ("right upper lobe cavitary infiltrate, TB", "bilateral miliary pattern",
                       "normal heart size; left apical scarring from old TB")
SHENZHEN_ABNORMAL = ("STB,ATB in the left upper field", "PTB in the right upper field",
                     "secondary PTB  in the left lower field")


def _montgomery_reading(label: int, i: int) -> str:
    finding = "normal" if label == 0 else MONTGOMERY_ABNORMAL[i % len(MONTGOMERY_ABNORMAL)]
    return f"Patient's Sex: {'MF'[i % 2]}\nPatient's Age: {30 + i:03d}Y\n{'' if i % 2 else chr(10)}{finding}\n"


def _shenzhen_reading(label: int, i: int) -> str:
    finding = "normal" if label == 0 else SHENZHEN_ABNORMAL[i % len(SHENZHEN_ABNORMAL)]
    sex = ("male", "Female", "female")[i % 3]
    sep = "  " if i % 4 == 3 else "\n"  # a few readings on one line after the demographics
    return f"{sex} {20 + i}yrs{sep}{finding}\n"


def _write_tb(base: Path, prefix: str, reading, n_per_class: int, readings: bool, no_suffix: bool,
              contradict: int) -> dict[str, int]:
    truth = {}
    for i in range(2 * n_per_class):
        label = i % 2
        stem = f"{prefix}_{i + 1:04d}" if no_suffix else f"{prefix}_{i + 1:04d}_{label}"
        _image(base / "CXR_png" / f"{stem}.png", 300 + i)
        if readings:
            said = 1 - label if i < contradict else label
            _text(base / "ClinicalReadings" / f"{stem}.txt", reading(said, i))
        truth[stem] = label
    _text(base / "CXR_png" / "Thumbs.db", b"\x00thumbs")
    return truth


def write_montgomery(root: Path, n_per_class: int = 3, *, readings: bool = True, no_suffix: bool = False,
                     contradict: int = 0) -> dict[str, int]:
    """Montgomery: ``MontgomerySet/CXR_png/MCUCXR_NNNN_L.png`` + ``ClinicalReadings/<stem>.txt`` + masks.

    Alternating normal/abnormal. ``no_suffix`` drops the _L suffix from the names; ``contradict`` makes the
    first that many readings say the opposite of the name. Returns {stem: true label}.
    """
    base = Path(root) / "montgomery" / "MontgomerySet"
    truth = _write_tb(base, "MCUCXR", _montgomery_reading, n_per_class, readings, no_suffix, contradict)
    for stem in list(truth)[:2]:
        _image(base / "ManualMask" / "leftMask" / f"{stem}.png", 1)
    _text(base / "NLM-MontgomeryCXRSet-ReadMe.pdf", b"%PDF-1.4 fake")
    return truth


def write_shenzhen(root: Path, n_per_class: int = 3, *, readings: bool = True, no_suffix: bool = False,
                   contradict: int = 0) -> dict[str, int]:
    """Shenzhen: ``ChinaSet_AllFiles/CXR_png/CHNCXR_NNNN_L.png`` + ``ClinicalReadings/<stem>.txt``.

    Same switches and return as write_montgomery.
    """
    base = Path(root) / "shenzhen" / "ChinaSet_AllFiles"
    truth = _write_tb(base, "CHNCXR", _shenzhen_reading, n_per_class, readings, no_suffix, contradict)
    _text(base / "NLM-ChinaCXRSet-ReadMe.docx", b"PK fake")
    return truth


# ---------------------------------------------------------------- BACH
BACH_CLASSES = (("Normal", "n"), ("Benign", "b"), ("InSitu", "is"), ("Invasive", "iv"))


def write_bach(root: Path, n_per_class: int = 3, *, ground_truth: bool = True, contradict: bool = False) -> dict[str, int]:
    """BACH: ``ICIAR2018_BACH_Challenge/Photos/<Class>/<p>NNN.tif`` + ``microscopy_ground_truth.csv``.

    ``contradict`` makes the ground-truth CSV name a wrong class for one image. Returns {stem: ordinal label}.
    """
    photos = Path(root) / "bach" / "ICIAR2018_BACH_Challenge" / "Photos"
    truth, lines = {}, []
    for label, (folder, p) in enumerate(BACH_CLASSES):
        for j in range(n_per_class):
            name = f"{p}{j + 1:03d}.tif"
            _image(photos / folder / name, 400 + 10 * label + j, mode="RGB", fmt="TIFF")
            truth[name[:-4]] = label
            said = BACH_CLASSES[(label + 1) % 4][0] if contradict and label == 0 and j == 0 else folder
            lines.append(f"{name},{said}\n")
    if ground_truth:
        _text(photos / "microscopy_ground_truth.csv", "".join(lines))
    _text(photos / "Normal" / "Thumbs.db", b"\x00thumbs")
    _text(Path(root) / "bach" / "ICIAR2018_BACH_Challenge" / "WSI" / "A01.svs", b"II*\x00 fake slide")
    return truth


# ---------------------------------------------------------------- EyePACS
def write_eyepacs(root: Path, n_per_class: int = 3, *, test: bool = True) -> dict[str, tuple[int, str]]:
    """EyePACS (Kaggle): ``trainLabels.csv`` + ``train/<id>_<eye>.jpeg``; ``testLabels.csv`` + ``test/``.

    Train: ``n_per_class`` patients per grade; the left eye has that grade, the right eye the same grade
    for even patients and the next grade for odd ones; one more patient has a left eye only. Test: one
    patient per grade, both eyes. Returns {image: (level, split)}.
    """
    base = Path(root) / "eyepacs"
    truth: dict[str, tuple[int, str]] = {}
    rows, patient = [], 10
    for grade in range(5):
        for j in range(n_per_class):
            for eye, level in (("left", grade), ("right", grade if j % 2 == 0 else (grade + 1) % 5)):
                name = f"{patient}_{eye}"
                _image(base / "train" / f"{name}.jpeg", patient * 2 + (eye == "right"), mode="RGB", fmt="JPEG")
                rows.append([name, level])
                truth[name] = (level, "train")
            patient += 3
    name = f"{patient}_left"
    _image(base / "train" / f"{name}.jpeg", 7, mode="RGB", fmt="JPEG")
    rows.append([name, 0])
    truth[name] = (0, "train")
    _csv(base / "trainLabels.csv", ["image", "level"], rows)
    if test:
        rows = []
        for grade in range(5):
            patient = 1 + 2 * grade
            for eye in ("left", "right"):
                name = f"{patient}_{eye}"
                _image(base / "test" / f"{name}.jpeg", 5000 + patient * 2 + (eye == "right"), mode="RGB", fmt="JPEG")
                rows.append([name, grade, "Public" if grade % 2 else "Private"])
                truth[name] = (grade, "test")
        _csv(base / "testLabels.csv", ["image", "level", "Usage"], rows)
    return truth


# ---------------------------------------------------------------- iChallenge
def write_ichallenge_amd(root: Path, n_per_class: int = 3) -> dict[str, int]:
    """iChallenge-AMD: ``Training400/AMD/ANNNN.jpg`` and ``Training400/Non-AMD/NNNNN.jpg``. Returns {stem: label}."""
    base = Path(root) / "ichallenge_amd" / "Training400"
    truth = {}
    for j in range(n_per_class):
        _image(base / "AMD" / f"A{j + 1:04d}.jpg", 600 + j, mode="RGB", fmt="JPEG")
        _image(base / "Non-AMD" / f"N{j + 1:04d}.jpg", 700 + j, mode="RGB", fmt="JPEG")
        truth[f"A{j + 1:04d}"], truth[f"N{j + 1:04d}"] = 1, 0
    _text(base / "Fovea_location.xlsx", b"PK fake sheet")
    _text(base / "AMD" / ".DS_Store", b"\x00\x00")
    return truth


def write_ichallenge_pm(root: Path, n_per_class: int = 3, *, nested: bool = True) -> dict[str, str]:
    """iChallenge-PM (PALM): ``PALM-Training400/PALM-Training400/{N,H,P}NNNN.jpg`` (one level when not nested).

    Returns {stem: class letter}.
    """
    outer = Path(root) / "ichallenge_pm" / "PALM-Training400"
    folder = outer / "PALM-Training400" if nested else outer
    truth = {}
    for letter in "NHP":
        for j in range(n_per_class):
            stem = f"{letter}{j + 1:04d}"
            _image(folder / f"{stem}.jpg", 800 + ord(letter) + j, mode="RGB", fmt="JPEG")
            truth[stem] = letter
    _text(folder / "._N0001.jpg", b"\x00\x05\x16\x07 resource fork")
    _text(outer / "Fovea_Location_Train.xlsx", b"PK fake sheet")
    return truth


# ---------------------------------------------------------------- other accepted layouts
def relayout(root: Path, name: str, form: str) -> Path:
    """Rearrange a written dataset into another form the loaders accept: ``"no_top"`` (the archive's top folder
    dropped: its contents moved up into ``root/<folder>/``) or ``"wrapper"`` (everything inside one more folder,
    as a download's own folder). Returns the dataset folder."""
    from medssl_utils.data import get_spec

    spec = get_spec(name)
    base = Path(root) / spec.folder
    if form == "no_top":
        top = (base / spec.top[0]).rename(base / "top-being-dropped")   # PALM's inner folder has the top's name
        for p in list(top.iterdir()):
            shutil.move(str(p), str(base / p.name))
        top.rmdir()
    elif form == "wrapper":
        inner = base / "download"
        inner.mkdir()
        for p in list(base.iterdir()):
            if p != inner:
                shutil.move(str(p), str(inner / p.name))
    else:
        raise ValueError(form)
    return base


WRITERS = {"chexpert": write_chexpert, "chestx14": write_chestx14, "montgomery": write_montgomery,
           "shenzhen": write_shenzhen, "bach": write_bach, "eyepacs": write_eyepacs,
           "ichallenge_amd": write_ichallenge_amd, "ichallenge_pm": write_ichallenge_pm}


def write_all(root: Path, n_per_class: int = 3) -> dict[str, object]:
    """All eight datasets under ``root`` (a data_root for ``load_dataset``); returns each writer's truth."""
    return {name: w(root, n_per_class) for name, w in WRITERS.items()}
