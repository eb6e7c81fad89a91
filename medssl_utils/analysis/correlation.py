"""Correlation statistics behind the paper's scatter plots and Figures 2-5 (paper sections 5, Appendix D).

Facts taken from the authors' code (AUTHORS_CODE.md §4.7): Pearson r and its p-value come from
``scipy.stats.pearsonr``; weighted straight-line fits use the error bars as sigma (``curve_fit(sigma=yerr)``)
and report a reduced chi^2. The paper's captions of Figures 2-5 scale each dataset's values to [0, 1]
(min-max per dataset, ``minmax_per_dataset``).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from ._common import AnalysisError


def _paired(x, y, min_points: int) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x, dtype=np.float64).ravel(), np.asarray(y, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise AnalysisError(f"x and y differ in length: {x.size} vs {y.size}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise AnalysisError("x or y contains NaN or inf; drop those rows first")
    if x.size < min_points:
        raise AnalysisError(f"{x.size} points; expected at least {min_points}")
    return x, y


def pearson(x, y) -> tuple[float, float]:
    """Pearson correlation coefficient r and its two-sided p-value (scipy.stats.pearsonr)."""
    from scipy.stats import pearsonr

    x, y = _paired(x, y, 3)
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        raise AnalysisError("pearson: x or y is constant; the correlation is undefined")
    res = pearsonr(x, y)
    return float(res.statistic), float(res.pvalue)


class LinearFit(NamedTuple):
    slope: float
    intercept: float
    reduced_chi2: float   # sum(((y - fit) / yerr)^2) / (n - 2); with no yerr, yerr = 1 (the residual variance)


def linear_fit(x, y, yerr=None) -> LinearFit:
    """Least-squares line y = slope * x + intercept, weighted by 1 / yerr^2 when error bars are given."""
    x, y = _paired(x, y, 3)
    if yerr is None:
        sigma = np.ones_like(y)
    else:
        sigma = np.asarray(yerr, dtype=np.float64).ravel()
        if sigma.shape != y.shape:
            raise AnalysisError(f"yerr has {sigma.size} values, y has {y.size}")
        if not (np.isfinite(sigma).all() and (sigma > 0).all()):
            raise AnalysisError("yerr: every error bar must be finite and > 0")
    if np.ptp(x) == 0:
        raise AnalysisError("linear_fit: x is constant; the slope is undefined")
    design = np.stack([x, np.ones_like(x)], axis=1) / sigma[:, None]
    (slope, intercept), *_ = np.linalg.lstsq(design, y / sigma, rcond=None)
    resid = (y - (slope * x + intercept)) / sigma
    return LinearFit(float(slope), float(intercept), float(np.sum(resid ** 2) / (x.size - 2)))


def minmax_per_dataset(values, groups) -> np.ndarray:
    """``values`` rescaled to [0, 1] within each group of ``groups`` (same length, same order): the one min-max
    scaler behind every scaled figure and claim (Figures 2-5, A4; claims C2, C4, C5, C11).

    A group whose values are all equal (one model on the task, or a tie) gets NaN, not 0.5: it carries no
    ranking, and a made-up middle value would pull every family's mean towards 0.5 and count a task that says
    nothing; NaN drops it from means (pandas skips NaN) and draws no bar. NaN inputs stay NaN and are ignored
    when the group's min and max are taken.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    g = np.asarray(groups, dtype=object).ravel()
    if v.shape != g.shape:
        raise AnalysisError(f"minmax_per_dataset: values and groups differ in length: {v.size} vs {g.size}")
    if np.isinf(v).any():
        raise AnalysisError("minmax_per_dataset: values contain inf; expected finite numbers (NaN allowed)")
    s = pd.Series(v)
    by = s.groupby(pd.Series(g), sort=False)
    lo, hi = by.transform("min").to_numpy(), by.transform("max").to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(hi > lo, (v - lo) / (hi - lo), np.nan)
