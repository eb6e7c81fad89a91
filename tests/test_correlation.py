"""Pearson correlation, weighted line fits with reduced chi^2, per-dataset min-max scaling."""
import numpy as np
import pandas as pd
import pytest

from medssl_utils.analysis import AnalysisError, linear_fit, minmax_per_dataset, pearson


def test_pearson_against_the_definition():
    rng = np.random.default_rng(0)
    x = rng.normal(size=40)
    y = 0.5 * x + rng.normal(size=40)
    r, p = pearson(x, y)
    xc, yc = x - x.mean(), y - y.mean()
    assert r == pytest.approx(np.sum(xc * yc) / np.sqrt(np.sum(xc ** 2) * np.sum(yc ** 2)), rel=1e-12)
    t = r * np.sqrt(38 / (1 - r ** 2))                            # two-sided t-test with n - 2 dof
    from scipy.stats import t as student
    assert p == pytest.approx(2 * student.sf(abs(t), 38), rel=1e-8)
    r0, p0 = pearson(x, rng.normal(size=40))
    assert abs(r0) < 0.4 and p0 > p
    assert pearson([1, 2, 3, 4], [8, 6, 4, 2])[0] == pytest.approx(-1.0)
    with pytest.raises(AnalysisError, match="length"):
        pearson([1, 2, 3], [1, 2])
    with pytest.raises(AnalysisError, match="constant"):
        pearson([1, 2, 3], [5, 5, 5])


def test_linear_fit_exact_weighted_and_chi2():
    x = np.linspace(0, 10, 12)
    fit = linear_fit(x, 3 * x - 2)
    assert fit.slope == pytest.approx(3) and fit.intercept == pytest.approx(-2) and fit.reduced_chi2 < 1e-20
    rng = np.random.default_rng(1)
    yerr = rng.uniform(0.5, 2.0, size=12)
    y = 1.5 * x + 4 + rng.normal(size=12) * yerr
    slope, intercept, chi2 = linear_fit(x, y, yerr)
    ref = np.polyfit(x, y, 1, w=1 / yerr)                       # numpy's weighted fit, w = 1 / sigma
    assert (slope, intercept) == pytest.approx(tuple(ref), rel=1e-9)
    resid = (y - np.polyval(ref, x)) / yerr
    assert chi2 == pytest.approx(np.sum(resid ** 2) / 10, rel=1e-9)
    # with honest error bars the reduced chi^2 is about 1 (many points), and 4x too small bars give ~16
    xs = np.linspace(0, 1, 4000)
    sig = np.full_like(xs, 0.3)
    ys = 2 * xs + rng.normal(size=xs.size) * sig
    assert linear_fit(xs, ys, sig).reduced_chi2 == pytest.approx(1.0, abs=0.1)
    assert linear_fit(xs, ys, sig / 4).reduced_chi2 == pytest.approx(16.0, rel=0.1)
    with pytest.raises(AnalysisError, match="yerr"):
        linear_fit(x, y, np.zeros_like(x))


def test_minmax_per_dataset():
    df = pd.DataFrame({"dataset": ["a", "a", "a", "b", "b", "c", "c"],
                       "acc": [10.0, 20.0, 15.0, 0.5, 0.7, 3.0, 3.0]}, index=list("pqrstuv"))
    s = minmax_per_dataset(df, "acc")
    assert list(s.index) == list(df.index) and s.name == "acc_scaled"
    assert s[["p", "q", "r"]].tolist() == pytest.approx([0.0, 1.0, 0.5])
    assert s[["s", "t"]].tolist() == pytest.approx([0.0, 1.0])
    assert s[["u", "v"]].isna().all()                    # a constant group has no scale
    with pytest.raises(AnalysisError, match="'auc'"):
        minmax_per_dataset(df, "auc")
