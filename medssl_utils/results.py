"""The one tidy results table. This run's rows and the paper's reference rows share its schema.

Each unit of work (question, protocol, model, dataset, ...) writes its rows to its own small CSV
under ``results_dir/rows/``; the table is their union. So workers never collide, finished work is
skipped by its file, and the table does not depend on how many workers ran. Per-episode / per-item
outcomes, for paired tests, go beside them as ``results_dir/outcomes/<unit>.npy``.
"""
from __future__ import annotations

from .errors import MedsslError

import hashlib
import re
import subprocess
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from .storage import atomic_path, atomic_write_bytes

# The documented schema (also rendered on the book's methods page).
SCHEMA: dict[str, str] = {
    "question": "Q1 | Q2 | Q3: which research question the row serves",
    "protocol": "fewshot | linear | finetune | saliency | reconstruction | invariance | imagenet",
    "model": "model registry name",
    "dataset": "dataset registry name (the paper's real name for reference rows)",
    "metric": "accuracy | mean_per_class_accuracy | auc | attentive_diffusion | lpips_alex | ... ",
    "value": "the number, in percent for accuracies",
    "ci_low": "lower end of the 95% interval (NaN if none)",
    "ci_high": "upper end of the 95% interval (NaN if none)",
    "n": "episodes, test items or images behind the value",
    "seed": "seed of the run (episodes, splits, training)",
    "profile": "mini | smoke | paper | published (the paper's own numbers)",
    "source": "'this run' or the provenance of a reference value",
    "cache_key": "feature-cache key (or other input key) the value was computed from",
    "code_version": "medssl_utils version + git commit of the code that computed it",
    "extra": "JSON with protocol details (chosen C, steps, switches)",
}
COLUMNS = list(SCHEMA)


class ResultsError(MedsslError):
    pass


def code_version() -> str:
    from . import __version__

    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).parent, timeout=5).stdout.strip()
    except Exception:
        sha = ""
    return f"{__version__}+{sha}" if sha else __version__


def unit_name(**parts: object) -> str:
    """A file-safe, readable name for one unit of work."""
    raw = "__".join(f"{k}={parts[k]}" for k in sorted(parts))
    safe = re.sub(r"[^A-Za-z0-9_.=-]+", "-", raw)
    if len(safe) > 150:
        safe = safe[:120] + "-" + hashlib.sha256(raw.encode()).hexdigest()[:16]
    return safe


def make_rows(rows: Iterable[dict]) -> pd.DataFrame:
    df = pd.DataFrame(list(rows))
    missing = [c for c in ("question", "protocol", "model", "dataset", "metric", "value") if c not in df]
    if missing:
        raise ResultsError(f"result rows lack required column(s) {missing}")
    for c in COLUMNS:
        if c not in df:
            df[c] = np.nan if c in ("ci_low", "ci_high", "n", "seed") else ""
    return df[COLUMNS]


class ResultsStore:
    def __init__(self, results_dir: str | Path):
        self.dir = Path(results_dir)

    def _rows_path(self, unit: str) -> Path:
        return self.dir / "rows" / f"{unit}.csv"

    def has(self, unit: str) -> bool:
        return self._rows_path(unit).is_file()

    def write(self, unit: str, rows: Iterable[dict], outcomes: dict[str, np.ndarray] | None = None) -> pd.DataFrame:
        """Write a unit's outcomes first, then its rows (the rows file marks the unit done)."""
        df = make_rows(rows)
        for name, arr in (outcomes or {}).items():
            with atomic_path(self.dir / "outcomes" / f"{unit}__{name}.npy") as tmp:
                with open(tmp, "wb") as f:
                    np.save(f, np.asarray(arr))
        atomic_write_bytes(self._rows_path(unit), df.to_csv(index=False).encode())
        return df

    def read_unit(self, unit: str) -> pd.DataFrame:
        return pd.read_csv(self._rows_path(unit))

    def outcomes(self, unit: str, name: str) -> np.ndarray:
        path = self.dir / "outcomes" / f"{unit}__{name}.npy"
        if not path.is_file():
            raise ResultsError(f"no stored outcomes {path}")
        return np.load(path)

    def table(self) -> pd.DataFrame:
        files = sorted((self.dir / "rows").glob("*.csv"))
        if not files:
            return pd.DataFrame(columns=COLUMNS)
        return pd.concat([pd.read_csv(f) for f in files], ignore_index=True)[COLUMNS]

    def export(self, path: str | Path) -> Path:
        """Write the union as one CSV (the shareable results table)."""
        atomic_write_bytes(Path(path), self.table().to_csv(index=False).encode())
        return Path(path)
