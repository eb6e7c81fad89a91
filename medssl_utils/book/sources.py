"""Where the paper's printed tables and the authors' results file disagree, and whether it matters.

The book's reference side is the printed tables (``reference.paper_rows()``: every ``report.paper_*`` and
``report_q3`` paper column reads them); the authors' file (``reference.authors_rows()``) is shown beside only
for ImageNet top-1 and the correlation table. So each disagreement is judged by swapping the file's value into
the paper rows and recomputing every claim's verdict on the paper's numbers.
"""
from __future__ import annotations

import json
from contextlib import contextmanager

import numpy as np
import pandas as pd

from .. import reference

from . import claims, report

BOOK_USES = "paper (printed table)"
COLUMNS = ["where", "model", "dataset", "measure", "paper", "authors_file", "kind", "book_uses", "changes_claims"]


@contextmanager
def paper_rows_replaced(rows: pd.DataFrame):
    """Every reader of ``reference.paper_rows()`` sees ``rows`` inside the block (the page's paper side, recomputed
    with one value swapped, through the very functions the page calls)."""
    original = reference.paper_rows
    reference.paper_rows = lambda: rows.copy()
    try:
        yield
    finally:
        reference.paper_rows = original


def _paper_correlations() -> pd.DataFrame:
    """``report_q3.correlations_table``'s paper-table columns only (the this-run columns left empty)."""
    from . import report_q3

    out, cache = [], {}
    for c in reference.published_correlations().itertuples():
        key = (c.x_protocol, c.x_metric)
        if key not in cache:
            try:
                cache[key] = report_q3.paper_points(*key, source="paper")
            except KeyError:
                cache[key] = pd.DataFrame(columns=["dataset", "x", "acc"])
        pts = cache[key][cache[key].dataset == c.y_dataset]
        r, p, _ = report_q3._r_text(pts.x, pts.acc)
        out.append({"what": c.what, "x_protocol": c.x_protocol, "r_paper_tables": r, "p_paper_tables": p,
                    "n_paper_tables": len(pts), "r_this_run": np.nan, "p_this_run": np.nan, "n_this_run": 0})
    return pd.DataFrame(out)


def paper_verdicts(datasets: list[str]) -> dict[str, str]:
    """Each claim's verdict on the paper's numbers, for the real counterparts of ``datasets``."""
    from . import report_q3

    fam0 = pd.DataFrame(columns=["task", "protocol", "dataset", "paper_dataset", "family", "value"])
    sc0 = pd.DataFrame(columns=["task", "protocol", "dataset", "domain", "family", "value", "scaled", "paper_model"])
    none = pd.DataFrame()
    pf, ps = report.paper_family_means(datasets), report.paper_scaled_task_rows(datasets)
    corr = _paper_correlations()
    found = [
        claims.ssl_beats_supervised(fam0, pf, none),
        claims.best_ssl_method(pd.DataFrame(columns=["protocol"]), report.paper_scaled_rows(datasets)),
        claims.no_single_best(pd.DataFrame()),
        claims.source_accuracy_vs_transfer(pd.DataFrame(), report.paper_source_points(datasets)),
        claims.domain_specific_tradeoff(sc0, ps, none),
        claims.domain_specific_focus({}, {}, report_q3.paper_family_ad("in"), report_q3.paper_family_ad("out")),
        claims.no_correlation_with_transfer(corr, "reconstruction", "C7", "", ""),
        claims.no_correlation_with_transfer(corr, "invariance", "C8", "", "", exclude=("multi-view invariance",)),
        claims.invariances_carry_over(None, reference.paper_rows()),
        claims.supervised_exceptions(fam0, pf, none),
        claims.mimic_above_moco_in_domain(sc0, ps, none),
        claims.small_shift_hurts(sc0, ps, none, none),
    ]
    return {c.key: c.paper_verdict for c in found}


def _swapped(rows: pd.DataFrame, d) -> pd.DataFrame:
    hit = ((rows.source == d.source) & (rows.protocol == d.protocol) & (rows.metric == d.metric)
           & (rows.dataset == d.dataset) & (rows.model == d.model))
    out = rows.copy()
    if d.quantity == "value":
        shift = d.file_value - out.loc[hit, "value"]
        out.loc[hit, "value"] = d.file_value
        out.loc[hit, "ci_low"] += shift
        out.loc[hit, "ci_high"] += shift
    else:                                    # the CI half-width
        out.loc[hit, "ci_low"] = out.loc[hit, "value"] - d.file_value
        out.loc[hit, "ci_high"] = out.loc[hit, "value"] + d.file_value
    return out


def _fmt(x: float) -> str:
    return "—" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:g}"


def disagreement_table(datasets: list[str] | None = None) -> pd.DataFrame:
    """One row per ``reference.disagreements()`` row: both values, which one the book uses, and which claims'
    verdicts on the paper's numbers change when the file's value replaces the printed one ("none" if none);
    then one row for the stated multi-view correlation (``multiview_recovery``)."""
    datasets = list(reference.PAPER_DATASETS) if datasets is None else list(datasets)
    base_rows = reference.paper_rows()
    base = paper_verdicts(datasets)
    out = []
    for d in reference.disagreements().itertuples():
        if d.kind == "missing_in_file":
            change = "no other value to swap in"
        else:
            with paper_rows_replaced(_swapped(base_rows, d)):
                new = paper_verdicts(datasets)
            moved = [f"{k}: {base[k]} -> {new[k]}" for k in base if new.get(k) != base[k]]
            change = "; ".join(moved) if moved else "none"
        measure = d.metric if d.quantity == "value" else f"{d.metric} (95% CI half-width)"
        file_txt = _fmt(d.file_value) + (f" ({reference.MODEL_DISPLAY.get(d.file_model, d.file_model)})"
                                            if d.file_model and d.file_model != d.model else "")
        out.append({"where": d.source, "model": reference.MODEL_DISPLAY.get(d.model, d.model),
                    "dataset": reference.DATASET_DISPLAY.get(d.dataset, d.dataset), "measure": f"{d.protocol} "
                    f"{measure}", "paper": d.printed if d.quantity == "value" else _fmt(d.paper_value),
                    "authors_file": file_txt, "kind": d.kind.replace("_", " "), "book_uses": BOOK_USES,
                    "changes_claims": change})
    out.append(multiview_recovery())
    return pd.DataFrame(out, columns=COLUMNS)


def multiview_recovery() -> dict:
    """The text's r = 0.82 (multi-view invariance vs few-shot on CheXpert) against the authors' file: r over every
    model there, and the one model whose omission brings r closest to the stated value."""
    from . import report_q3
    from ..analysis.correlation import pearson

    stated = reference.published_correlations().iloc[0]
    pts = report_q3.paper_points(stated.x_protocol, stated.x_metric, source="authors")
    pts = pts[pts.dataset == stated.y_dataset].reset_index(drop=True)
    r_all, p_all = pearson(pts.x, pts.acc)
    loo = []
    for i in range(len(pts)):
        rest = pts.drop(index=i)
        loo.append((abs(pearson(rest.x, rest.acc)[0] - stated.r), i, *pearson(rest.x, rest.acc)))
    _, i, r_loo, p_loo = min(loo)
    left = reference.MODEL_DISPLAY.get(pts.model[i], pts.model[i])
    return {"where": f"text {stated['where']}", "model": f"{len(pts)} models", "dataset":
            reference.DATASET_DISPLAY.get(stated.y_dataset, stated.y_dataset),
            "measure": "Pearson r, multi-view invariance vs few-shot accuracy",
            "paper": f"r = {stated.r:g} (p = {stated.p:g})",
            "authors_file": f"r = {r_all:.2f} (p = {p_all:.2g}) over all {len(pts)}; r = {r_loo:.2f} "
                            f"(p = {p_loo:.2g}) without {left}",
            "kind": "stated correlation", "book_uses": "both (Q3 correlation table)",
            "changes_claims": "none: C8 leaves this correlation out as the paper's own exception"}


def to_json(table: pd.DataFrame) -> str:
    return json.dumps(table.to_dict(orient="records"))
