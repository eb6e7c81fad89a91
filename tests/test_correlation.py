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
    groups = ["a", "a", "a", "b", "b", "c", "c"]
    s = minmax_per_dataset([10.0, 20.0, 15.0, 0.5, 0.7, 3.0, 3.0], groups)
    assert isinstance(s, np.ndarray) and s.shape == (7,)
    assert s[:3].tolist() == pytest.approx([0.0, 1.0, 0.5])
    assert s[3:5].tolist() == pytest.approx([0.0, 1.0])
    assert np.isnan(s[5:]).all()                          # a constant group has no scale: NaN, never 0.5
    assert np.isnan(minmax_per_dataset([4.0], ["x"])).all()   # one model on a task: no ranking either
    with_nan = minmax_per_dataset([1.0, np.nan, 3.0], ["a", "a", "a"])
    assert with_nan[0] == 0 and np.isnan(with_nan[1]) and with_nan[2] == 1
    with pytest.raises(AnalysisError, match="length"):
        minmax_per_dataset([1.0, 2.0], ["a"])
    with pytest.raises(AnalysisError, match="inf"):
        minmax_per_dataset([1.0, np.inf], ["a", "a"])


def test_one_scaler_behind_report_and_claims():
    """report.minmax (Figures 2-5, C2, C4, C5) is the tested scaler: a constant task gives NaN there too, and a
    constant task leaves a family mean untouched instead of pulling it to 0.5."""
    from medssl_utils.book import report

    df = pd.DataFrame({"task": ["t1", "t1", "t2", "t2"], "value": [1.0, 3.0, 7.0, 7.0]})
    got = report.minmax(df, "value", "task")
    assert np.array_equal(got, minmax_per_dataset(df.value, df.task), equal_nan=True)
    assert np.isnan(got[2:]).all()
    assert pd.Series(got[[1, 3]]).mean() == 1.0            # the tie is skipped, not averaged in as 0.5
