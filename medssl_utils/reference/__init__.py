"""The paper's published numbers and the authors' raw results file, as rows of the results schema.

Why this exists: every number the book prints beside a number of this run must come from a row that
says where it came from. Two published sources are kept apart, because they do not always agree:

* ``paper_rows()``: the printed tables of Anton et al., J. Imaging 2022, 8(12):320 (Tables 3, 4, A1-A7),
  transcribed as printed (``source = "paper Table 3"`` etc.). Table 1 is ``dataset_table()``.
* ``authors_rows()``: the authors' ``results/full_data.csv`` (jonahanton/SSL_medicalimaging, last commit
  2022-12-08), kept verbatim in this folder and parsed here (``source = "authors' results file"``).

``disagreements()`` lists every printed value that the file does not reproduce at the printed precision;
``best_of_matches()`` shows which variant(s) lie behind the paper's one-row-per-family entries
(MIMIC-CheXpert = three learning rates, MoCo-CXR = two backbones). PROVENANCE.md has the details.

Units: accuracies in percent (few-shot, linear, finetune, ImageNet top-1); attentive diffusion, LPIPS
distances and invariance cosine similarities as the paper prints them (fractions / raw similarities).
Metric names used here: ``accuracy``, ``mean_per_class_accuracy`` (EyePACS linear/finetune),
``attentive_diffusion``, ``lpips_alex``, ``lpips_vgg``, ``lpips_squeeze``, ``lpips_mean`` (average of the
three), ``invariance_rotation``, ``invariance_hflip``, ``invariance_hue``, ``invariance_multiview``.
Paper rows for the families use the model names ``mimic_chexpert_best`` and ``moco_cxr_best``.
"""
from __future__ import annotations

from ..errors import MedsslError

import csv
import json
import math
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from ..results import COLUMNS, make_rows

HERE = Path(__file__).parent
AUTHORS_FILE = HERE / "SSL_medicalimaging_full_data.csv"
AUTHORS_SOURCE = "authors' results file"
AUTHORS_CODE = "jonahanton/SSL_medicalimaging@77fceef"
PROFILE = "published"


class ReferenceDataError(MedsslError):
    pass


# ----------------------------------------------------------------------------------------------
# Names: registry names, the names in the authors' file, and the names the paper prints.
# ----------------------------------------------------------------------------------------------
MODELS = ("simclr_v1", "moco_v2", "swav", "byol", "pirl", "supervised_r50", "supervised_r18", "supervised_d121",
          "mimic_chexpert_lr0.01", "mimic_chexpert_lr0.1", "mimic_chexpert_lr1.0", "moco_cxr_r18", "moco_cxr_d121")

# Authors' file "Models" column -> registry name. In the authors' code "mimic-cxr" means MoCo-CXR.
FILE_MODELS = {
    "simclrv1": "simclr_v1", "mocov2": "moco_v2", "swav": "swav", "byol": "byol", "pirl": "pirl",
    "supervised r50": "supervised_r50", "supervised r18": "supervised_r18", "supervised d121": "supervised_d121",
    "mimic-chexpert lr=0.01": "mimic_chexpert_lr0.01", "mimic-chexpert lr=0.1": "mimic_chexpert_lr0.1",
    "mimic-chexpert lr=1.0": "mimic_chexpert_lr1.0", "mimic-cxr r18": "moco_cxr_r18", "mimic-cxr d121": "moco_cxr_d121",
}

# Dataset names used in the authors' file -> registry name (stoic, cifar10, imagenet kept as extra names).
FILE_DATASETS = {
    "shenzhencxr": "shenzhen", "montgomerycxr": "montgomery", "bach": "bach", "iChallengeAMD": "ichallenge_amd",
    "iChallengePM": "ichallenge_pm", "chexpert": "chexpert", "stoic": "stoic", "diabetic retinopathy": "eyepacs",
    "chestx": "chestx14", "cifar10": "cifar10", "imagenet": "imagenet",
}

# The paper prints one row per family; the family stands for these variants.
FAMILIES = {
    "mimic_chexpert_best": ("mimic_chexpert_lr0.01", "mimic_chexpert_lr0.1", "mimic_chexpert_lr1.0"),
    "moco_cxr_best": ("moco_cxr_r18", "moco_cxr_d121"),
}
FAMILY_NOTE = {
    "mimic_chexpert_best": "paper s4.1: three MIMIC-CheXpert models (MoCo lr 0.01, 0.1, 1.0) are considered, "
                           "'however often only the results for the best performing one is presented'",
    "moco_cxr_best": "paper s4.1: MoCo-CXR ResNet-18 and DenseNet-121 are both considered; the tables print one "
                     "MoCo-CXR row",
}

MODEL_GROUP = {**{m: "ssl" for m in MODELS[:5]}, **{m: "supervised" for m in MODELS[5:8]},
               **{m: "domain_specific" for m in MODELS[8:]},
               **{f: "domain_specific" for f in FAMILIES}}

# How the paper prints model names: Table 3 (long) and Table 4 / appendix tables (short).
MODEL_DISPLAY = {
    "simclr_v1": "SimCLR-v1", "moco_v2": "MoCo-v2", "swav": "SwAV", "byol": "BYOL", "pirl": "PIRL",
    "supervised_r50": "Supervised (r50)", "supervised_r18": "Supervised (r18)", "supervised_d121": "Supervised (d121)",
    "mimic_chexpert_lr0.01": "MIMIC-CheXpert (lr 0.01)", "mimic_chexpert_lr0.1": "MIMIC-CheXpert (lr 0.1)",
    "mimic_chexpert_lr1.0": "MIMIC-CheXpert (lr 1.0)", "moco_cxr_r18": "MoCo-CXR (r18)",
    "moco_cxr_d121": "MoCo-CXR (d121)", "mimic_chexpert_best": "MIMIC-CheXpert", "moco_cxr_best": "MoCo-CXR",
}
MODEL_DISPLAY_SHORT = {**MODEL_DISPLAY, "simclr_v1": "SimCLR", "moco_v2": "MoCo"}
_PAPER_LABEL_TO_MODEL = {**{v: k for k, v in MODEL_DISPLAY.items()}, "SimCLR": "simclr_v1", "MoCo": "moco_v2"}

# Dataset names as printed: Table 1 (long), Table 3 column headers (short).
DATASET_DISPLAY = {
    "chexpert": "CheXpert", "shenzhen": "Shenzhen-CXR", "montgomery": "Montgomery-CXR", "chestx14": "ChestX-ray14",
    "bach": "BACH", "eyepacs": "EyePACS", "ichallenge_amd": "iChallenge-AMD", "ichallenge_pm": "iChallenge-PM",
    "stoic": "STOIC", "cifar10": "CIFAR10", "imagenet": "ImageNet",
}
DATASET_DISPLAY_SHORT = {**DATASET_DISPLAY, "shenzhen": "Shenzhen", "montgomery": "Montgomery", "chestx14": "ChestX",
                         "ichallenge_amd": "iC-AMD", "ichallenge_pm": "iC-PM"}
PAPER_DATASETS = ("chexpert", "shenzhen", "montgomery", "chestx14", "bach", "eyepacs", "ichallenge_amd",
                  "ichallenge_pm")
# Every column header the paper prints (incl. its typo "Montomery") -> registry name.
_PAPER_HEADER_TO_DATASET = {**{v: k for k, v in DATASET_DISPLAY.items()},
                            **{v: k for k, v in DATASET_DISPLAY_SHORT.items()}, "Montomery": "montgomery"}

FEWSHOT_WAYS = {"chestx14": 5, "eyepacs": 5}          # all others 2-way (paper s4.3.1)
FEWSHOT_SETTING = {"n_shot": 20, "n_query": 15, "episodes": 600, "seed": 0,
                   "ci": "1.96 * population std / sqrt(600) of per-episode accuracies"}

# Facts attached to rows (original-code-notes s0, s3, s5); they explain numbers, they change none.
_DATASET_NOTES = {
    ("fewshot", "ichallenge_pm"): {"pm_label_mapping": "normal vs (high myopia + pathological): the mapping in "
                                   "the authors' code when the PM numbers were committed (before 05f38d1); the "
                                   "paper's s4.2.2 describes (normal + high myopia) vs pathological"},
    ("fewshot", "chexpert"): {"chexpert_uncertain": "U-Ones (uncertain -> positive), Pleural Effusion vs rest"},
    ("linear", "chexpert"): {"chexpert_uncertain": "effectively U-Zeros (uniform(0.55,0.85) cast to int), "
                             "Pleural Effusion vs rest"},
    ("finetune", "chexpert"): {"chexpert_uncertain": "effectively U-Zeros (uniform(0.55,0.85) cast to int), "
                               "Pleural Effusion vs rest"},
}
# Test-set sizes of the authors' splits (original-code-notes s3) for many-shot rows; ImageNet val for top-1.
_N_ITEMS = {("linear", "chexpert"): 89365, ("finetune", "chexpert"): 89365,
            ("linear", "eyepacs"): 53576, ("finetune", "eyepacs"): 53576, ("imagenet", "imagenet"): 50000}
_N_BY_PROTOCOL = {"fewshot": 600, "invariance": 100, "saliency": 1, "reconstruction": 1}
_MANYSHOT_METRIC = {"chexpert": "accuracy", "eyepacs": "mean_per_class_accuracy"}
_LPIPS = {"alexnet": "lpips_alex", "vgg": "lpips_vgg", "squeezenet": "lpips_squeeze", "average": "lpips_mean"}


def _question(protocol: str, model: str) -> str:
    if protocol in ("saliency", "reconstruction", "invariance"):
        return "Q3"
    return "Q2" if MODEL_GROUP.get(model) == "domain_specific" else "Q1"


def _dec(text: str, where: str) -> Decimal | None:
    """Parse a number exactly as written (so rounding comparisons are exact); empty -> None."""
    text = (text or "").strip()
    if text == "" or text.lower() == "nan":
        return None
    try:
        return Decimal(text)
    except InvalidOperation:
        raise ReferenceDataError(f"{where}: expected a number, got {text!r}") from None


def _decimals(d: Decimal) -> int:
    return max(0, -d.as_tuple().exponent)


def _row(*, protocol, model, dataset, metric, value, source, extra, ci_half=None, code_version="") -> dict:
    n = _N_ITEMS.get((protocol, dataset), _N_BY_PROTOCOL.get(protocol, np.nan))
    extra = {**extra, **_DATASET_NOTES.get((protocol, dataset), {})}
    if protocol == "fewshot":
        extra = {"n_way": FEWSHOT_WAYS.get(dataset, 2), **FEWSHOT_SETTING, **extra}
    if (protocol, dataset) in _N_ITEMS and protocol != "imagenet":
        extra["n_note"] = "test items of the authors' split (original-code-notes s3)"
    v = float(value)
    return {
        "question": _question(protocol, model), "protocol": protocol, "model": model, "dataset": dataset,
        "metric": metric, "value": v,
        "ci_low": float(value - ci_half) if ci_half is not None else np.nan,
        "ci_high": float(value + ci_half) if ci_half is not None else np.nan,
        "n": n, "seed": 0 if protocol in ("fewshot", "invariance") else np.nan,
        "profile": PROFILE, "source": source, "cache_key": "", "code_version": code_version,
        "extra": json.dumps(extra, sort_keys=True),
    }


# ----------------------------------------------------------------------------------------------
# The paper's tables (transcribed as printed into paper_table*.csv; see PROVENANCE.md)
# ----------------------------------------------------------------------------------------------
def _hdr_fewshot(h):
    return "fewshot", "accuracy", _PAPER_HEADER_TO_DATASET[h]


def _hdr_manyshot(h):
    protocol, ds = h.split(" ", 1)
    ds = _PAPER_HEADER_TO_DATASET[ds]
    return protocol, _MANYSHOT_METRIC[ds], ds


def _hdr_a1(h):
    ds = _PAPER_HEADER_TO_DATASET[h]
    return "invariance", "invariance_hue" if ds == "bach" else "invariance_rotation", ds


def _fixed(protocol, metric):
    return lambda h: (protocol, metric, _PAPER_HEADER_TO_DATASET[h])


PAPER_TABLES = {
    "1": "paper_table1.csv",
    "3": ("paper_table3.csv", _hdr_fewshot),
    "4": ("paper_table4.csv", _hdr_manyshot),
    "A1": ("paper_table_a1.csv", _hdr_a1),
    "A2": ("paper_table_a2.csv", _fixed("invariance", "invariance_hflip")),
    "A3": ("paper_table_a3.csv", _fixed("invariance", "invariance_multiview")),
    "A4": ("paper_table_a4.csv", _fixed("reconstruction", "lpips_alex")),
    "A5": ("paper_table_a5.csv", _fixed("reconstruction", "lpips_squeeze")),
    "A6": ("paper_table_a6.csv", _fixed("reconstruction", "lpips_vgg")),
    "A7": ("paper_table_a7.csv", _fixed("saliency", "attentive_diffusion")),
}
# What the family cells turn out to be, checked against the authors' file (tests re-check it: best_of_matches()).
_PER_CELL_MAX = ("per-cell maximum over the variants: each printed cell equals the largest of the variants' values "
                 "in the authors' file, so one row mixes variants")
_FAMILY_AGGREGATION = {"3": _PER_CELL_MAX, "4": _PER_CELL_MAX, "A4": _PER_CELL_MAX + " (for LPIPS the largest is "
                       "the worst reconstruction)", "A5": _PER_CELL_MAX + " (for LPIPS the largest is the worst "
                       "reconstruction)", "A6": _PER_CELL_MAX + " (for LPIPS the largest is the worst "
                       "reconstruction)", "A7": _PER_CELL_MAX + " (for attentive diffusion the broadest focus)",
                       "A2": "single variant: the authors' file has invariance values only for {single}",
                       "A3": "single variant: the authors' file has invariance values only for {single}"}
_FAMILY_SINGLE_VARIANT = {"mimic_chexpert_best": "mimic_chexpert_lr0.01", "moco_cxr_best": "moco_cxr_d121"}
_PAPER_DESCR = {
    "4": {"metric_note": "the paper says 'accuracy'; the authors' code reports mean per-class accuracy on EyePACS "
                         "and plain accuracy on CheXpert"},
    "A7": {"units": "fraction of the saliency map above its mean (paper prints 0-1)"},
}


def _read_csv(path: Path) -> list[dict]:
    if not path.is_file():
        raise ReferenceDataError(f"reference data file {path} is missing (it ships with medssl_utils)")
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@lru_cache(maxsize=None)
def _paper_rows_cached() -> pd.DataFrame:
    rows = []
    for table, spec in PAPER_TABLES.items():
        if table == "1":
            continue
        fname, header_map = spec
        records = _read_csv(HERE / fname)
        for rec in records:
            label = rec.pop("model")
            if label not in _PAPER_LABEL_TO_MODEL:
                raise ReferenceDataError(f"{fname}: unknown model label {label!r}; expected one of "
                                     f"{sorted(_PAPER_LABEL_TO_MODEL)}")
            model = _PAPER_LABEL_TO_MODEL[label]
            for header, cell in rec.items():
                if not cell.strip():
                    continue            # the paper leaves the cell blank (not run)
                protocol, metric, dataset = header_map(header)
                where = f"{fname} row {label!r} column {header!r}"
                if "±" in cell:
                    v_txt, ci_txt = (s.strip() for s in cell.split("±"))
                    value, ci = _dec(v_txt, where), _dec(ci_txt, where)
                else:
                    value, ci = _dec(cell, where), None
                extra = {"table": table, "printed": cell, "model_label": label, "column_label": header,
                         "decimals": _decimals(value), **_PAPER_DESCR.get(table, {})}
                if model in FAMILIES:
                    extra.update(best_of=list(FAMILIES[model]), best_of_note=FAMILY_NOTE[model],
                                 aggregation=_FAMILY_AGGREGATION[table].format(
                                     single=_FAMILY_SINGLE_VARIANT[model]))
                rows.append(_row(protocol=protocol, model=model, dataset=dataset, metric=metric, value=value,
                                 ci_half=ci, source=f"paper Table {table}", extra=extra))
    return _float_counts(make_rows(rows))


def _float_counts(df: pd.DataFrame) -> pd.DataFrame:
    # n and seed as floats (NaN-able), the same dtype this run's rows get from make_rows.
    return df.astype({"n": float, "seed": float})


def paper_rows() -> pd.DataFrame:
    """The paper's Tables 3, 4 and A1-A7 as schema rows (profile 'published', source 'paper Table X')."""
    return _paper_rows_cached().copy()


def dataset_table() -> pd.DataFrame:
    """Table 1 of the paper: dataset, printed name, type, number of images, number of classes."""
    recs = _read_csv(HERE / PAPER_TABLES["1"])
    out = []
    for r in recs:
        name = r["Dataset"]
        if name not in _PAPER_HEADER_TO_DATASET:
            raise ReferenceDataError(f"{PAPER_TABLES['1']}: unknown dataset {name!r}")
        out.append({"dataset": _PAPER_HEADER_TO_DATASET[name], "display": name, "short": DATASET_DISPLAY_SHORT[
            _PAPER_HEADER_TO_DATASET[name]], "type": r["Type"], "n_images": int(r["# Images"].replace(",", "")),
            "n_classes": int(r["# Classes"]), "domain": "in" if r["Type"] == "CXR" else "out",
            "source": "paper Table 1"})
    return pd.DataFrame(out)


# ----------------------------------------------------------------------------------------------
# The authors' results file
# ----------------------------------------------------------------------------------------------
def _parse_file_column(col: str) -> dict | None:
    """Map one column header of full_data.csv to (protocol, metric, dataset, details); None = not a metric."""
    def ds(name: str) -> tuple[str, dict]:
        details = {}
        for way in ("(2way)", "(5way)"):
            if name.endswith(way):
                name = name[: -len(way)].strip()
                details["n_way"] = int(way[1])
        if name not in FILE_DATASETS:
            raise ReferenceDataError(f"{AUTHORS_FILE.name}: column {col!r} names unknown dataset {name!r}; "
                                 f"expected one of {sorted(FILE_DATASETS)}")
        return FILE_DATASETS[name], details

    if col in ("Models", "Model Type", "Marker Size"):
        return None
    if col.startswith("few shot "):
        rest = col[len("few shot "):]
        kind = "ci_half"
        if rest.endswith(" uncertainty"):
            rest = rest[: -len(" uncertainty")]
        else:
            kind = "value"
        d, det = ds(rest)
        return {"protocol": "fewshot", "metric": "accuracy", "dataset": d, "details": det, "kind": kind,
                "percent": True}
    if col == "imagenet top1":
        return {"protocol": "imagenet", "metric": "accuracy", "dataset": "imagenet", "details": {"top": 1},
                "kind": "value", "percent": True}
    for protocol in ("linear", "finetune"):
        if col.startswith(protocol + " "):
            d, det = ds(col[len(protocol) + 1:])
            if d not in _MANYSHOT_METRIC:
                raise ReferenceDataError(f"{AUTHORS_FILE.name}: column {col!r}: no many-shot metric known for {d!r}")
            return {"protocol": protocol, "metric": _MANYSHOT_METRIC[d], "dataset": d, "details": det,
                    "kind": "value", "percent": True}
    if col.startswith("attentive diffusion "):
        d, det = ds(col[len("attentive diffusion "):])
        return {"protocol": "saliency", "metric": "attentive_diffusion", "dataset": d, "details": det,
                "kind": "value", "percent": False}
    if col.startswith("invariance "):
        transform, rest = col[len("invariance "):].split(" ", 1)
        if transform not in ("rotation", "hflip", "hue", "multiview"):
            raise ReferenceDataError(f"{AUTHORS_FILE.name}: column {col!r}: unknown invariance {transform!r}")
        d, det = ds(rest)
        return {"protocol": "invariance", "metric": f"invariance_{transform}", "dataset": d, "details": det,
                "kind": "value", "percent": False}
    if col.startswith("perceptual distance "):
        net, rest = col[len("perceptual distance "):].split(" ", 1)
        if net not in _LPIPS:
            raise ReferenceDataError(f"{AUTHORS_FILE.name}: column {col!r}: unknown LPIPS network {net!r}")
        d, det = ds(rest.strip())
        return {"protocol": "reconstruction", "metric": _LPIPS[net], "dataset": d, "details": det,
                "kind": "value", "percent": False}
    raise ReferenceDataError(f"{AUTHORS_FILE.name}: unrecognised column {col!r}")


@lru_cache(maxsize=None)
def _authors_table() -> tuple[tuple[str, ...], tuple[dict, ...]]:
    with open(AUTHORS_FILE, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        body = [r for r in reader if r]
    if header[0] != "Models":
        raise ReferenceDataError(f"{AUTHORS_FILE.name}: first column must be 'Models', got {header[0]!r}")
    recs = []
    for r in body:
        if len(r) != len(header):
            raise ReferenceDataError(f"{AUTHORS_FILE.name}: row {r[0]!r} has {len(r)} fields, expected {len(header)}")
        recs.append(dict(zip(header, r)))
    return tuple(header), tuple(recs)


def authors_models() -> list[str]:
    """Registry names of the models in the authors' file, in file order (unknown names are an error)."""
    _, recs = _authors_table()
    out = []
    for r in recs:
        if r["Models"] not in FILE_MODELS:
            raise ReferenceDataError(f"{AUTHORS_FILE.name}: unknown model {r['Models']!r}; expected one of "
                                 f"{sorted(FILE_MODELS)}")
        out.append(FILE_MODELS[r["Models"]])
    return out


@lru_cache(maxsize=None)
def _authors_rows_cached() -> pd.DataFrame:
    header, recs = _authors_table()
    specs = {c: _parse_file_column(c) for c in header}
    models = authors_models()
    rows = []
    for rec, model in zip(recs, models):
        for col, spec in specs.items():
            if spec is None or spec["kind"] != "value":
                continue
            value = _dec(rec[col], f"{AUTHORS_FILE.name} row {rec['Models']!r} column {col!r}")
            if value is None:
                continue            # not run / not reported
            ci = None
            if spec["protocol"] == "fewshot":
                ucol = col + " uncertainty"
                if ucol not in rec:
                    raise ReferenceDataError(f"{AUTHORS_FILE.name}: column {col!r} has no {ucol!r} column")
                ci = _dec(rec[ucol], f"{AUTHORS_FILE.name} row {rec['Models']!r} column {ucol!r}")
            scale = Decimal(100) if spec["percent"] else Decimal(1)
            extra = {"column": col, "model_in_file": rec["Models"], "model_type": rec.get("Model Type", ""),
                     "printed": rec[col], **spec["details"]}
            if ci is not None:
                extra["printed_ci"] = rec[col + " uncertainty"]
            if spec["protocol"] == "imagenet":
                extra["top1_note"] = ("the authors' analysis values; torchvision documents 69.76 (r18), 76.13 (r50), "
                                      "74.43 (d121) for the V1 weights")
            rows.append(_row(protocol=spec["protocol"], model=model, dataset=spec["dataset"], metric=spec["metric"],
                             value=value * scale, ci_half=None if ci is None else ci * scale,
                             source=AUTHORS_SOURCE, extra=extra, code_version=AUTHORS_CODE))
    df = _float_counts(make_rows(rows))
    ties = identical_values()
    if len(ties):
        flag = {}
        for t in ties.itertuples():
            for col, model in ((t.column_a, t.model_a), (t.column_b, t.model_b)):
                flag.setdefault((col, model), []).append(t.description)
        new_extra = []
        for e, m in zip(df["extra"], df["model"]):
            d = json.loads(e)
            if (d["column"], m) in flag:
                d["identical_value_note"] = "; ".join(flag[(d["column"], m)])
            new_extra.append(json.dumps(d, sort_keys=True))
        df["extra"] = new_extra
    return df


def authors_rows() -> pd.DataFrame:
    """The authors' full_data.csv as schema rows (source "authors' results file"); NaN cells give no row."""
    return _authors_rows_cached().copy()


def reference_rows() -> pd.DataFrame:
    """Paper rows and authors'-file rows together (tell them apart by ``source``)."""
    return pd.concat([paper_rows(), authors_rows()], ignore_index=True)[COLUMNS]


@lru_cache(maxsize=None)
def _identical_cached() -> pd.DataFrame:
    """Exact ties inside the authors' file that may be copy errors (neutral: ties can also be chance)."""
    header, recs = _authors_table()
    models = authors_models()
    cells = []                               # (column, model, decimal text, spec)
    for rec, model in zip(recs, models):
        for col in header:
            spec = _parse_file_column(col)
            if spec is None or spec["kind"] != "value":
                continue
            v = _dec(rec[col], col)
            if v is None or len(v.normalize().as_tuple().digits) < 4:
                continue                     # fewer than 4 significant digits: ties are too likely by chance
            cells.append((col, model, v, spec))
    out = []
    for i, (ca, ma, va, sa) in enumerate(cells):
        for cb, mb, vb, sb in cells[i + 1:]:
            if va != vb:
                continue
            same_measure = (sa["protocol"], sa["metric"]) == (sb["protocol"], sb["metric"])
            if ca == cb:
                kind = "same column, two models"
            elif ma == mb and same_measure:
                kind = "same model, two datasets"
            else:
                continue
            out.append({"kind": kind, "column_a": ca, "model_a": ma, "column_b": cb, "model_b": mb,
                        "value": str(va), "description": f"{ca!r} of {ma} equals {cb!r} of {mb} ({va})"})
    return pd.DataFrame(out, columns=["kind", "column_a", "model_a", "column_b", "model_b", "value",
                                      "description"])


def identical_values() -> pd.DataFrame:
    """Exact ties in the authors' file (>= 4 significant digits) between models or between datasets."""
    return _identical_cached().copy()


# ----------------------------------------------------------------------------------------------
# Paper vs file
# ----------------------------------------------------------------------------------------------
def _file_lookup() -> dict:
    df = authors_rows()
    out = {}
    for r in df.itertuples():
        out[(r.protocol, r.metric, r.dataset, r.model)] = (r.value, (r.ci_high - r.ci_low) / 2
                                                           if not math.isnan(r.ci_low) else np.nan)
    return out


def _agrees(paper: float, other: float, decimals: int) -> bool:
    # Inclusive half-unit tolerance: accepts either tie-breaking convention of the printed rounding.
    return abs(paper - other) <= 0.5 * 10 ** -decimals + 1e-9


def best_of_matches() -> pd.DataFrame:
    """For each paper cell printed for a family (MIMIC-CheXpert, MoCo-CXR): the variants' file values, which
    variant(s) round to the printed number, and whether the printed number is the max / min over variants."""
    look = _file_lookup()
    out = []
    for r in paper_rows().itertuples():
        if r.model not in FAMILIES:
            continue
        e = json.loads(r.extra)
        d = e["decimals"]
        vals = {v: look.get((r.protocol, r.metric, r.dataset, v), (np.nan,))[0] for v in FAMILIES[r.model]}
        have = {k: v for k, v in vals.items() if not math.isnan(v)}
        out.append({
            "source": r.source, "protocol": r.protocol, "metric": r.metric, "dataset": r.dataset, "model": r.model,
            "paper_value": r.value, "decimals": d, **{f"file_{k}": v for k, v in vals.items()},
            "matched_variants": ",".join(k for k, v in have.items() if _agrees(r.value, v, d)),
            "equals_max": bool(have) and _agrees(r.value, max(have.values()), d),
            "equals_min": bool(have) and _agrees(r.value, min(have.values()), d),
        })
    return pd.DataFrame(out)


def disagreements() -> pd.DataFrame:
    """Every printed value (and Table 3 CI half-width) the authors' file does not reproduce at the printed
    precision. Family rows compare with the closest variant. kind: 'last_digit' (off by at most one unit of the
    last printed digit), 'substantive', or 'missing_in_file'."""
    look = _file_lookup()
    out = []
    for r in paper_rows().itertuples():
        e = json.loads(r.extra)
        d = e["decimals"]
        variants = FAMILIES.get(r.model, (r.model,))
        cands = {v: look[(r.protocol, r.metric, r.dataset, v)] for v in variants
                 if (r.protocol, r.metric, r.dataset, v) in look}
        base = {"source": r.source, "protocol": r.protocol, "metric": r.metric, "dataset": r.dataset,
                "model": r.model, "printed": e["printed"], "decimals": d}
        if not cands:
            out.append({**base, "quantity": "value", "paper_value": r.value, "file_value": np.nan,
                        "file_model": "", "difference": np.nan, "kind": "missing_in_file"})
            continue
        best = min(cands, key=lambda v: abs(cands[v][0] - r.value))
        fv, fci = cands[best]
        checks = [("value", r.value, fv)]
        if not math.isnan(r.ci_low):
            checks.append(("ci_halfwidth", round((r.ci_high - r.ci_low) / 2, 10), fci))
        for quantity, pv, other in checks:
            if _agrees(pv, other, d):
                continue
            diff = other - pv
            kind = "last_digit" if abs(diff) <= 1.5 * 10 ** -d + 1e-9 else "substantive"
            out.append({**base, "quantity": quantity, "paper_value": pv, "file_value": other, "file_model": best,
                        "difference": diff, "kind": kind})
    cols = ["source", "protocol", "metric", "dataset", "model", "quantity", "printed", "decimals", "paper_value",
            "file_value", "file_model", "difference", "kind"]
    return pd.DataFrame(out, columns=cols)


# ----------------------------------------------------------------------------------------------
# Correlations the paper states (and the ones it only shows in figures)
# ----------------------------------------------------------------------------------------------
_CORR_COLUMNS = ["where", "source", "what", "x", "y", "x_protocol", "x_metric", "x_dataset", "y_protocol",
                 "y_metric", "y_dataset", "models", "r", "p", "claim", "note"]


def published_correlations() -> pd.DataFrame:
    """Every Pearson r / p the paper states in its text, plus one row per correlation its figures show only as
    images (r, p = NaN) so the book can recompute them all and print the stated value beside.

    Only one r/p pair is in the paper's text (s5.3, multi-view invariance vs CheXpert performance). Figure 7 and
    Figures A1-A4 overlay their r/p on the plot images, which the text copy does not contain; their claims are
    kept as words. Three values the authors' notebook printed (Figure A4's analysis) are added with
    source 'authors' notebook' (quoted in original-code-notes s6)."""
    rows = []

    def add(where, source, what, x, y, models, r=np.nan, p=np.nan, claim="", note=""):
        rows.append({"where": where, "source": source, "what": what, "x": f"{x[0]}/{x[1]} on {x[2]}",
                     "y": f"{y[0]}/{y[1]} on {y[2]}", "x_protocol": x[0], "x_metric": x[1], "x_dataset": x[2],
                     "y_protocol": y[0], "y_metric": y[1], "y_dataset": y[2], "models": models, "r": r, "p": p,
                     "claim": claim, "note": note})

    fs = lambda ds: ("fewshot", "accuracy", ds)  # noqa: E731
    add("s5.3 (also Figure A1)", "paper", "multi-view invariance vs transfer performance on CheXpert",
        ("invariance", "invariance_multiview", "chexpert"), fs("chexpert"), "not stated", 0.82, 0.0068,
        "clear correlation between multi-view invariance and transfer performance",
        "from the authors' file, few-shot CheXpert vs multi-view CheXpert over the 9 models that have a value "
        "other than mimic_chexpert_lr0.01 gives r=0.820, p=0.0068; with all 10 models r=0.24 (p=0.50)")
    add("Figure 7 caption; s5.3", "paper", "attentive diffusion vs few-shot accuracy on CheXpert",
        ("saliency", "attentive_diffusion", "chexpert"), fs("chexpert"), "all models",
        claim="'clear linear relationship' for in-domain data and domain-specific models; the caption explains "
              "that r close to -1 with p close to 0 is a strong negative correlation",
        note="r and p are overlaid on the figure image only")
    ds_for_inv = [("invariance_rotation", d) for d in ("shenzhen", "montgomery", "eyepacs", "ichallenge_amd",
                                                        "ichallenge_pm")] + \
                 [("invariance_hflip", d) for d in ("shenzhen", "montgomery", "chestx14", "chexpert")] + \
                 [("invariance_hue", d) for d in ("eyepacs", "bach")] + \
                 [("invariance_multiview", "eyepacs")]
    for metric, d in ds_for_inv:
        add("Figure A1", "paper", f"{metric} vs few-shot accuracy on {d}", ("invariance", metric, d), fs(d),
            "models with an invariance value", claim="no significant correlation (high p values)",
            note="r and p are overlaid on the figure image only")
    for d in PAPER_DATASETS:
        add("Figure A2; s5.3", "paper", f"attentive diffusion vs few-shot accuracy on {d}",
            ("saliency", "attentive_diffusion", d), fs(d), "all models",
            claim=("linear relation for in-domain data" if d in ("chexpert", "chestx14", "montgomery", "shenzhen")
                   else "no relation between attentive diffusion and transfer accuracy out of domain"),
            note="r and p are overlaid on the figure image only; 'transfer performance' taken as few-shot")
        add("Figure A3; s5.3", "paper", f"mean LPIPS distance vs few-shot accuracy on {d}",
            ("reconstruction", "lpips_mean", d), fs(d), "all models",
            claim="no linear fit appropriate (no fit with reduced chi-square below 1.5); no significant correlation",
            note="r and p are overlaid on the figure image only; 'transfer performance' taken as few-shot")
        add("Figure A4; s5.1", "paper", f"ImageNet top-1 vs few-shot accuracy on {d}",
            ("imagenet", "accuracy", "imagenet"), fs(d), "the 8 ImageNet-pretrained models",
            claim="no significant correlations",
            note="r and p are overlaid on the figure image only; 'transfer performance' taken as few-shot")
    nb = "authors' notebook transfer_performance_top_1_imagenet_correlation.ipynb (original-code-notes s6)"
    for d, r, p, extra in (("shenzhen", -0.672, 0.068, {}), ("cifar10", 0.835, 0.0099, {"n_way": 2}),
                           ("eyepacs", -0.39, np.nan, {})):
        add("Figure A4 analysis", nb, f"ImageNet top-1 vs few-shot accuracy on {d}",
            ("imagenet", "accuracy", "imagenet"), fs(d), "the 8 ImageNet-pretrained models", r, p,
            claim="printed in the notebook output", note=json.dumps(extra) if extra else "")
    return pd.DataFrame(rows, columns=_CORR_COLUMNS)


__all__ = [
    "paper_rows", "authors_rows", "reference_rows", "dataset_table", "disagreements", "best_of_matches",
    "published_correlations", "identical_values", "authors_models", "MODELS", "FILE_MODELS", "FILE_DATASETS",
    "FAMILIES", "MODEL_DISPLAY", "MODEL_DISPLAY_SHORT", "DATASET_DISPLAY", "DATASET_DISPLAY_SHORT",
    "PAPER_DATASETS", "PAPER_TABLES", "ReferenceDataError", "AUTHORS_FILE",
]
