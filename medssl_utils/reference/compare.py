"""Paper vs file: which printed values the file reproduces, and which variant lies behind a family row."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

from .names import FAMILIES
from .paper import paper_rows
from .authors import authors_rows


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
