"""The reproduction report's verdicts follow from the numbers: each claim flips when the numbers do."""
import numpy as np
import pandas as pd

from medssl_utils.book import claims


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


# ---------------------------------------------------------------- #19 defect 7: C4 and C3 verdicts
def _points(x, y, source="ImageNet top-1 (authors' values)"):
    return pd.DataFrame({"group": [f"g{i}" for i in range(len(x))], "source_acc": x, "transfer": y,
                         "source": [source] * len(x)})


def test_c4_non_significance_is_never_support():
    paper = _points([60, 65, 70, 72, 75, 77], [0.5, 0.6, 0.4, 0.5, 0.45, 0.55])
    three = claims.source_accuracy_vs_transfer(_points([70, 72, 75], [0.6, 0.4, 0.5]), paper)
    assert three.verdict == claims.UNTESTABLE                       # the old code said "supported" (p = 0.6)
    flat = claims.source_accuracy_vs_transfer(_points([60, 65, 70, 72, 75, 77], [0.6, 0.5, 0.55, 0.4, 0.5, 0.45]),
                                              paper)
    assert flat.verdict == claims.DIRECTION and "p = " in flat.this_run        # r < 0, p >= 0.05
    rising = claims.source_accuracy_vs_transfer(_points([60, 65, 70, 72, 75, 77], [0.1, 0.2, 0.35, 0.4, 0.5, 0.6]),
                                                paper)
    assert rising.verdict == claims.NOT_SUPPORTED
    falling = claims.source_accuracy_vs_transfer(_points([60, 65, 70, 72, 75, 77], [0.6, 0.5, 0.4, 0.35, 0.2, 0.1]),
                                                 paper)
    assert falling.verdict == claims.SUPPORTED
    assert flat.paper_verdict == claims.DIRECTION


def test_c4_source_label_comes_from_the_data():
    from medssl_utils.book import report

    paper = _points([60, 65, 70, 72, 75, 77], [0.5, 0.6, 0.4, 0.5, 0.45, 0.55])
    c = claims.source_accuracy_vs_transfer(paper, paper)
    assert "ImageNet top-1" in c.this_run and "pretraining-task probe" not in c.this_run
    s = report.source_scores(["simclr_v1", "supervised_r50", "mini-sup-s0"]).set_index("group").source
    assert s["simclr_v1"] == s["supervised_r50"] == report.SOURCE_TOP1 and s["sup"] == report.SOURCE_PROBE


def _rows(values: dict, *, half: float = 1.0, protocol: str = "fewshot") -> pd.DataFrame:
    """Result rows: {(model, dataset): accuracy} for 2-way few-shot tasks."""
    from medssl_utils.results import make_rows

    return make_rows([{"question": "Q1", "protocol": protocol, "model": m, "dataset": d, "metric": "accuracy",
                       "value": v, "ci_low": v - half, "ci_high": v + half, "n": 100, "seed": 0, "profile": "smoke",
                       "source": "this run", "extra": '{"n_way": 2}'} for (m, d), v in values.items()])


def test_c3_is_not_supported_by_chance_level_winners():
    a, b, d1, d2 = "mini-sup-s0", "mini-simclr-s0", "medsynth-shenzhen", "medsynth-pm"
    at_chance = _rows({(a, d1): 51.0, (b, d1): 50.0, (a, d2): 50.0, (b, d2): 51.5})
    c = claims.no_single_best(at_chance)
    assert c.verdict == claims.UNTESTABLE and "0 of 2" in c.this_run      # the old code said "supported"
    assert claims.no_single_best(_rows({(a, d1): 71.0, (b, d1): 60.0, (a, d2): 60.0, (b, d2): 71.5})).verdict == \
        claims.SUPPORTED
    assert claims.no_single_best(_rows({(a, d1): 71.0, (b, d1): 60.0, (a, d2): 71.0, (b, d2): 60.5})).verdict == \
        claims.NOT_SUPPORTED
    # a wide interval reaching chance + margin is not clear of chance either
    wide = claims.no_single_best(_rows({(a, d1): 55.0, (b, d1): 50.0, (a, d2): 50.0, (b, d2): 55.0}, half=4.0))
    assert wide.verdict == claims.UNTESTABLE
    assert claims.chance_level("fewshot", d1, "accuracy", 2) == 50.0
    assert claims.chance_level("fewshot", "medsynth-eyepacs", "accuracy") == 20.0
    assert claims.chance_level("linear", "medsynth-eyepacs", "mean_per_class_accuracy") == 20.0
    assert claims.chance_level("linear", "medsynth-chexpert", "auc") == 50.0
    assert claims.no_single_best(at_chance).paper_verdict == claims.SUPPORTED     # the paper's tasks clear chance


# ---------------------------------------------------------------- the four conclusions added from #15
def _inv(values: dict) -> pd.DataFrame:
    from medssl_utils.results import make_rows

    return make_rows([{"question": "Q3", "protocol": "invariance", "model": m, "dataset": d,
                       "metric": f"invariance_{t}", "value": v} for (m, d, t), v in values.items()])


def _inv_grid(enforced: float, other: float, wins: int = 6) -> pd.DataFrame:
    cells = [(m, d) for m in ("mini-simclr-s0", "mini-mococxr-s0")
             for d in ("medsynth-chexpert", "medsynth-shenzhen", "medsynth-eyepacs")]
    vals = {}
    for k, (m, d) in enumerate(cells):
        e, o = (enforced, other) if k < wins else (other, enforced)
        vals[(m, d, "hflip" if d != "medsynth-eyepacs" else "hue")] = e
        vals[(m, d, "multiview" if d != "medsynth-shenzhen" else "rotation")] = o
    vals[("mini-sup-s0", "medsynth-chexpert", "hflip")] = 0.0        # supervised: not counted
    vals[("mini-sup-s0", "medsynth-chexpert", "multiview")] = 0.9
    return _inv(vals)


def test_invariances_carry_over_verdicts():
    from medssl_utils import reference

    paper = reference.paper_rows()
    good = claims.invariances_carry_over(_inv_grid(0.8, 0.1), paper)
    assert good.verdict == claims.SUPPORTED and "6 of 6" in good.this_run
    assert claims.invariances_carry_over(_inv_grid(0.8, 0.1, wins=4), paper).verdict == claims.DIRECTION
    assert claims.invariances_carry_over(_inv_grid(0.1, 0.8), paper).verdict == claims.NOT_SUPPORTED
    assert claims.invariances_carry_over(None, paper).verdict == claims.UNTESTABLE
    assert good.paper_verdict == claims.SUPPORTED and "7 of 7" in good.paper   # CheXpert: h-flip vs multi-view


def _fam_rows(cells: dict) -> pd.DataFrame:
    """{(protocol, dataset, family): value} -> family-means frame (report.family_means' columns)."""
    from medssl_utils.book import report

    return pd.DataFrame([{"task": f"{d} ({p})", "protocol": p, "dataset": d, "paper_dataset": report.paper_dataset(d),
                          "family": f, "value": v} for (p, d, f), v in cells.items()])


def test_supervised_exceptions_verdicts():
    from medssl_utils import reference
    from medssl_utils.book import report

    paper = report.paper_family_means(list(reference.PAPER_DATASETS))
    ex = [("fewshot", "medsynth-amd"), ("finetune", "medsynth-chexpert")]

    def fam(sup_ahead):
        cells = {}
        for (p, d), ahead in zip(ex, sup_ahead):
            cells[(p, d, "supervised")], cells[(p, d, "self-supervised")] = (60, 50) if ahead else (50, 60)
        cells[("fewshot", "medsynth-shenzhen", "supervised")] = 40          # not an exception: ignored
        cells[("fewshot", "medsynth-shenzhen", "self-supervised")] = 60
        return _fam_rows(cells)

    sig = pd.DataFrame({"protocol": [p for p, _ in ex], "dataset": [d for _, d in ex], "diff": [-10.0, -10.0],
                        "significant": [True, True]})
    assert claims.supervised_exceptions(fam([True, True]), paper, sig).verdict == claims.SUPPORTED
    assert claims.supervised_exceptions(fam([True, True]), paper, sig.assign(significant=[True, False])).verdict \
        == claims.DIRECTION
    assert claims.supervised_exceptions(fam([True, False]), paper, sig).verdict == claims.NOT_SUPPORTED
    none = claims.supervised_exceptions(_fam_rows({("fewshot", "medsynth-shenzhen", "supervised"): 1.0}), paper, sig)
    assert none.verdict == claims.UNTESTABLE
    assert none.paper_verdict == claims.DIRECTION and "3 of 3" in none.paper


def _mm_scaled(cells: dict) -> pd.DataFrame:
    """{(protocol, dataset, paper_model): scaled} -> scaled task rows."""
    from medssl_utils.book import report

    return pd.DataFrame([{"task": f"{d} ({p})", "protocol": p, "dataset": d, "domain": report.domain_of(d),
                          "paper_model": m, "family": "domain-specific", "value": 100 * v, "scaled": v}
                         for (p, d, m), v in cells.items()])


def test_mimic_above_moco_verdicts():
    from medssl_utils import reference
    from medssl_utils.book import report

    paper = report.paper_scaled_task_rows(list(reference.PAPER_DATASETS))
    tasks = [("fewshot", "medsynth-chexpert"), ("fewshot", "medsynth-montgomery"), ("linear", "medsynth-chexpert")]

    def scaled(wins):
        cells = {}
        for (p, d), w in zip(tasks, wins):
            cells[(p, d, "mimic_chexpert_best")], cells[(p, d, "moco_cxr_best")] = (0.9, 0.2) if w else (0.2, 0.9)
        cells[("fewshot", "medsynth-pm", "mimic_chexpert_best")] = 0.0    # out of domain: not counted
        cells[("fewshot", "medsynth-pm", "moco_cxr_best")] = 1.0
        return _mm_scaled(cells)

    tests = pd.DataFrame({"protocol": [p for p, _ in tasks], "dataset": [d for _, d in tasks], "diff": [5.0] * 3,
                          "significant": [True, True, False]})
    good = claims.mimic_above_moco_in_domain(scaled([1, 1, 1]), paper, tests)
    assert good.verdict == claims.SUPPORTED and "3 of 3 in-domain" in good.this_run
    assert claims.mimic_above_moco_in_domain(scaled([1, 1, 1]), paper, tests.assign(significant=False)).verdict == \
        claims.DIRECTION
    assert claims.mimic_above_moco_in_domain(scaled([1, 0, 0]), paper, tests).verdict == claims.NOT_SUPPORTED
    assert claims.mimic_above_moco_in_domain(scaled([1, 1, 1]).iloc[0:0], paper, tests).verdict == claims.UNTESTABLE
    assert good.paper_verdict == claims.DIRECTION and "5 of 6 in-domain" in good.paper
    # the pairs for the tests come from the registry's lineage (stands_for), not from names
    from medssl_utils.results import make_rows
    rows = make_rows([{"question": "Q2", "protocol": "fewshot", "model": m, "dataset": "medsynth-chexpert",
                       "metric": "accuracy", "value": 50.0} for m in ("mini-mimic-s0", "mini-mococxr-s0", "mini-sup-s0")])
    assert claims.mimic_vs_moco_pairs(rows) == [("mimic", "mococxr")]


def test_small_shift_hurts_verdicts():
    from medssl_utils import reference
    from medssl_utils.book import report

    paper = report.paper_scaled_task_rows(list(reference.PAPER_DATASETS))

    def scaled(ds, ssl, sup):
        return pd.DataFrame([{"task": "Shenzhen (few-shot)", "protocol": "fewshot", "dataset": "medsynth-shenzhen",
                              "domain": "in", "family": f, "value": v, "scaled": np.nan}
                             for f, v in (("domain-specific", ds), ("self-supervised", ssl), ("supervised", sup))])

    t = pd.DataFrame({"protocol": ["fewshot"], "dataset": ["medsynth-shenzhen"], "diff": [-5.0], "significant": [True]})
    assert claims.small_shift_hurts(scaled(50, 60, 58), paper, t, t).verdict == claims.SUPPORTED
    assert claims.small_shift_hurts(scaled(50, 60, 58), paper, t, t.assign(significant=False)).verdict == \
        claims.DIRECTION
    assert claims.small_shift_hurts(scaled(59, 60, 58), paper, t, t).verdict == claims.NOT_SUPPORTED
    c = claims.small_shift_hurts(scaled(50, 60, 58).iloc[0:0], paper, t, t)
    assert c.verdict == claims.UNTESTABLE
    # the paper's own Table 3: below SSL (73.6 vs 75.4) but above supervised (72.8) on Shenzhen
    assert c.paper_verdict == claims.NOT_SUPPORTED and "supervised 72.8" in c.paper and "over 20%" in c.paper


def test_claims_table_has_both_verdicts():
    c = claims.Claim("C0", "s", "x", "p", "t", claims.SUPPORTED, claims.DIRECTION)
    assert list(claims.table([c]).columns) == claims.TABLE_COLUMNS and claims.table([c]).paper_verdict[0] == \
        claims.DIRECTION


# ---------------------------------------------------------------- where the sources disagree (#15 item 3)
def test_every_disagreement_is_in_the_table():
    from medssl_utils import reference
    from medssl_utils.book import sources

    tab = sources.disagreement_table()
    dis = reference.disagreements()
    assert len(tab) == len(dis) + 1 and tab.iloc[-1].kind == "stated correlation"
    for d in dis.itertuples():
        hit = tab[(tab["where"] == d.source) & (tab.model == reference.MODEL_DISPLAY[d.model])
                  & (tab.dataset == reference.DATASET_DISPLAY[d.dataset]) & tab.measure.str.contains(d.metric)]
        assert len(hit) >= 1, d
    amd = tab[(tab.model == "SimCLR-v1") & (tab.dataset == "iChallenge-AMD")].iloc[0]
    assert amd.paper.startswith("47.90") and amd.authors_file.startswith("74.9") and amd.book_uses == sources.BOOK_USES
    assert (tab.changes_claims != "").all()
    mv = tab.iloc[-1]
    assert "r = 0.82" in mv.paper and "r = 0.24" in mv.authors_file and "r = 0.82" in mv.authors_file


def test_swapped_value_reaches_the_book_and_flags_a_changed_claim(monkeypatch):
    from medssl_utils import reference
    from medssl_utils.book import report, sources

    rows = reference.paper_rows()
    byol = rows[(rows.model == "byol") & (rows.protocol == "fewshot")]
    before = report.paper_family_means(list(reference.PAPER_DATASETS))
    with sources.paper_rows_replaced(rows.assign(value=np.where(rows.index.isin(byol.index), 0.0, rows.value))):
        after = report.paper_family_means(list(reference.PAPER_DATASETS))       # the page reads the swapped rows
    assert (after.value < before.value).any()
    assert report.paper_family_means(list(reference.PAPER_DATASETS)).equals(before)    # restored
    # a file value that put MoCo-CXR far lower on Shenzhen would put the domain-specific mean below supervised's
    # too: C12 on the paper's numbers changes, and the table says so
    fake = pd.DataFrame([{"source": "paper Table 3", "protocol": "fewshot", "metric": "accuracy",
                          "dataset": "shenzhen", "model": "moco_cxr_best", "quantity": "value",
                          "printed": "73.89 ± 0.64", "decimals": 2, "paper_value": 73.89, "file_value": 60.0,
                          "file_model": "moco_cxr_d121", "difference": -13.89, "kind": "substantive"}])
    monkeypatch.setattr(reference, "disagreements", lambda: fake)
    tab = sources.disagreement_table()
    assert tab.iloc[0].changes_claims == f"C12: {claims.NOT_SUPPORTED} -> {claims.DIRECTION}"
