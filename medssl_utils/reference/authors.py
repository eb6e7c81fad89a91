"""The authors' results file (results/full_data.csv, kept verbatim here) as rows of the results schema."""
from __future__ import annotations

import csv
import json
from decimal import Decimal
from functools import lru_cache

import pandas as pd

from ..results import COLUMNS, make_rows
from .names import (
    AUTHORS_CODE, AUTHORS_FILE, AUTHORS_SOURCE, FILE_DATASETS, FILE_MODELS, ReferenceDataError, _LPIPS,
    _MANYSHOT_METRIC, _dec, _row,
)
from .paper import _float_counts, paper_rows


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
