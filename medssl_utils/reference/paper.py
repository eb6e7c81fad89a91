"""The paper's printed tables (transcribed as printed into paper_table*.csv; see PROVENANCE.md)."""
from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path

import pandas as pd

from ..results import make_rows
from .names import (
    DATASET_DISPLAY_SHORT, FAMILIES, FAMILY_NOTE, HERE, ReferenceDataError, _MANYSHOT_METRIC,
    _PAPER_HEADER_TO_DATASET, _PAPER_LABEL_TO_MODEL, _dec, _decimals, _row,
)


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
