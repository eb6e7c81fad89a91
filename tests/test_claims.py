"""The reproduction report's verdicts follow from the numbers: each claim flips when the numbers do."""
import pandas as pd

from medssl_utils import claims


def _fam(ssl: list[float], sup: list[float]) -> pd.DataFrame:
    rows = [{"task": f"t{i}", "family": "self-supervised", "value": v} for i, v in enumerate(ssl)]
    rows += [{"task": f"t{i}", "family": "supervised", "value": v} for i, v in enumerate(sup)]
    return pd.DataFrame(rows, columns=["task", "family", "value"])


def _tests(diffs: list[float], significant: list[bool]) -> pd.DataFrame:
    return pd.DataFrame({"diff": diffs, "significant": significant, "dataset": ["d"] * len(diffs)})


def test_ssl_beats_supervised_verdicts():
    paper = _fam([2, 2, 2], [1, 1, 1])
    ahead = _fam([2, 2, 2], [1, 1, 1])
    assert claims.ssl_beats_supervised(ahead, paper, _tests([1, 1, 1], [True, False, False])).verdict == \
        claims.SUPPORTED
    assert claims.ssl_beats_supervised(ahead, paper, _tests([1, 1, 1], [False] * 3)).verdict == claims.DIRECTION
    behind = _fam([1, 1, 2], [2, 2, 1])
    assert claims.ssl_beats_supervised(behind, paper, _tests([-1, -1, 1], [True, False, False])).verdict == \
        claims.NOT_SUPPORTED
    assert claims.ssl_beats_supervised(_fam([], []), paper, _tests([], [])).verdict == claims.UNTESTABLE


def test_domain_specific_focus_verdicts():
    paper = ({"domain-specific": 20.0, "self-supervised": 30.0}, {"domain-specific": 40.0, "self-supervised": 30.0})
    narrow = claims.domain_specific_focus({"domain-specific": 10.0, "self-supervised": 20.0}, {}, *paper)
    wide = claims.domain_specific_focus({"domain-specific": 30.0, "self-supervised": 20.0}, {}, *paper)
    assert narrow.verdict == claims.DIRECTION and wide.verdict == claims.NOT_SUPPORTED
    assert claims.domain_specific_focus({}, {}, *paper).verdict == claims.UNTESTABLE


def _corr(p_this: list[float], n_this: int = 5, protocol: str = "invariance", whats=None) -> pd.DataFrame:
    k = len(p_this)
    return pd.DataFrame({
        "what": whats or [f"pair {i}" for i in range(k)], "x_protocol": [protocol] * k,
        "r_paper_tables": [0.1] * k, "p_paper_tables": [0.6] * k, "n_paper_tables": [10] * k,
        "r_this_run": [0.9 if p < 0.05 else 0.1 for p in p_this], "p_this_run": p_this, "n_this_run": [n_this] * k})


def test_no_correlation_claim_counts_significant_pairs_beyond_chance():
    statement = ("C8", "6 (7)", "no correlation")
    none = claims.no_correlation_with_transfer(_corr([0.5, 0.3, 0.7, 0.2]), "invariance", *statement)
    assert none.verdict == claims.SUPPORTED and "0 of 4" in none.this_run and "low power" in none.this_run
    one = claims.no_correlation_with_transfer(_corr([0.01, 0.3, 0.7, 0.2]), "invariance", *statement)
    assert one.verdict == claims.SUPPORTED       # one of four at alpha 0.05: what chance allows
    many = claims.no_correlation_with_transfer(_corr([0.01, 0.02, 0.001, 0.2]), "invariance", *statement)
    assert many.verdict == claims.NOT_SUPPORTED and "3 of 4" in many.this_run
    # the paper's own exception is left out, other protocols are ignored, and too few points are not a test
    exc = _corr([0.001, 0.5], whats=["multi-view invariance vs transfer on CheXpert", "flip"])
    assert "0 of 1" in claims.no_correlation_with_transfer(exc, "invariance", *statement,
                                                           exclude=("multi-view invariance",)).this_run
    assert claims.no_correlation_with_transfer(_corr([0.5]), "reconstruction", *statement).verdict == \
        claims.UNTESTABLE
    assert claims.no_correlation_with_transfer(_corr([0.01, 0.01], n_this=2), "invariance", *statement).verdict \
        == claims.UNTESTABLE
    assert "0 of 4" in none.paper
