"""The NLM tuberculosis chest X-ray sets, Montgomery County and Shenzhen, as downloaded.

Layout (the one rule, ``registry.LAYOUT_RULE``): each zip unpacked in its folder, top folder kept:
``data_root/montgomery/MontgomerySet/CXR_png/MCUCXR_NNNN_L.png`` and
``data_root/shenzhen/ChinaSet_AllFiles/CXR_png/CHNCXR_NNNN_L.png``, each with an optional
``ClinicalReadings/<stem>.txt`` beside ``CXR_png/`` (demographics, then the radiologist's reading). Also read:
the top folder dropped (``data_root/montgomery/CXR_png/``) or inside one wrapper folder.

Split: the releases give no patient id beyond the image number (one X-ray per case), so the random split is
per image (no ``split_by`` switch).

Label (paper §4.2.2, following the publishers): any abnormal reading is positive. Two sources carry it:
the ``_0``/``_1`` suffix of the file name and the reading text ("normal" -> 0, anything else -> 1, the
authors' rule on the same text in their metadata CSV). Switch ``label_source``: ``"filename"``
(default; present on every file of the release) or ``"text"`` (needs every reading file; accepts file
names without the suffix). Whenever both sources exist for an image they must agree, otherwise the
loader raises, counting the disagreeing files and naming the first.
"""
from __future__ import annotations

import re
from pathlib import Path

from ..base import DatasetError, FileImageDataset
from ..registry import DatasetSpec, register
from ._common import SUFFIX_LABEL, Record, assemble, check_agreement, choice, image_files, name_some, require_dir

# Montgomery starts with "Patient's Sex: F" / "Patient's Age: 040Y" lines; Shenzhen with "male 35yrs".
_FIELD_LINE = re.compile(r"^\s*patient\W?s\s+[a-z]+\s*:.*$", re.I | re.M)  # any apostrophe
_SEX_AGE = re.compile(r"^\s*(male|female)\b\s*,?\s*(\d+\s*(yrs?|years?|y|months?|days?)\b)?", re.I)


def reading_finding(text: str) -> str:
    """The reading with the demographic fields removed, lower case, whitespace collapsed."""
    body = _SEX_AGE.sub("", _FIELD_LINE.sub("", text).strip(), count=1)
    return " ".join(body.split()).lower().rstrip(".")


def reading_label(path: Path) -> int:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise DatasetError(f"cannot read clinical reading {path} ({exc})") from exc
    finding = reading_finding(text)
    if not finding:
        raise DatasetError(f"{path}: no reading after the demographic fields; expected 'normal' or a finding")
    return 0 if finding == "normal" else 1


def _load_tb(spec: DatasetSpec, root: Path, *, label_source: str, on_bad_image: str) -> FileImageDataset:
    """``root``: the release's top folder (``MontgomerySet/``, ``ChinaSet_AllFiles/``), as located."""
    choice("label_source", label_source, ("filename", "text"), spec.name)
    images = require_dir(root / "CXR_png", f"{spec.title}'s PNG folder {spec.top[0]}/CXR_png/")
    readings = root / "ClinicalReadings"
    if label_source == "text":
        require_dir(readings, f"{spec.title}'s reading files {spec.top[0]}/ClinicalReadings/*.txt (label_source='text')")
    records, no_suffix, no_text, disagree = [], [], [], []
    for png in image_files(images):
        m = SUFFIX_LABEL.search(png.stem)
        from_name = int(m.group(1)) if m else None
        txt = readings / f"{png.stem}.txt"
        from_text = reading_label(txt) if txt.is_file() else None
        if from_name is not None and from_text is not None and from_name != from_text:
            disagree.append((str(png), f"name says {from_name}, {txt.name} says {from_text}"))
        if label_source == "filename" and from_name is None:
            no_suffix.append(str(png))
        if label_source == "text" and from_text is None:
            no_text.append(str(txt))
        label = from_name if label_source == "filename" else from_text
        records.append(Record(id=png.stem, label=label if label is not None else -1, path=png))
    if no_suffix:
        raise DatasetError(f"dataset {spec.name!r}: {len(no_suffix)} file name(s) without the _0/_1 label suffix: "
                           f"{name_some(no_suffix)}; expected <stem>_0.png or <stem>_1.png (or label_source='text')")
    if no_text:
        raise DatasetError(f"dataset {spec.name!r}: {len(no_text)} missing reading file(s): {name_some(no_text)}; "
                           "label_source='text' needs one per image")
    check_agreement(spec.name, "file-name suffix and clinical reading", disagree)
    return assemble(spec, root, {"label_source": label_source}, records, on_bad_image=on_bad_image)


def load_montgomery(spec: DatasetSpec, *, root: Path, label_source: str = "filename",
                    on_bad_image: str = "raise") -> FileImageDataset:
    return _load_tb(spec, root, label_source=label_source, on_bad_image=on_bad_image)


def load_shenzhen(spec: DatasetSpec, *, root: Path, label_source: str = "filename",
                  on_bad_image: str = "raise") -> FileImageDataset:
    return _load_tb(spec, root, label_source=label_source, on_bad_image=on_bad_image)


_COMMON = dict(modality="chest X-ray", domain="in", classes=("normal", "abnormal (tuberculosis)"),
               label_policy="any abnormal reading = positive (file-name suffix _1; reading text other than "
                            "'normal'), as the publishers define it",
               fewshot_ways=2, manyshot=(), metric="accuracy",
               fewshot_square_resize=True, marks=("CXR_png/",),
               options={"label_source": "filename", "on_bad_image": "raise"}, split="random_80_20",
               invariances=("rotation", "hflip"),
               url="https://lhncbc.nlm.nih.gov/LHC-downloads/downloads.html#tuberculosis-image-data-sets",
               licence="U.S. National Library of Medicine public release; cite Jaeger et al. 2014")

MONTGOMERY = register(DatasetSpec(name="montgomery", title="Montgomery-CXR", loader=load_montgomery,
                                  folder="montgomery", top=("MontgomerySet",), n_images_paper=138, **_COMMON))
SHENZHEN = register(DatasetSpec(name="shenzhen", title="Shenzhen-CXR", loader=load_shenzhen,
                                folder="shenzhen", top=("ChinaSet_AllFiles",), n_images_paper=662, **_COMMON))
