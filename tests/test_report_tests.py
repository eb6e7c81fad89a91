"""Recipe-vs-recipe and family comparisons (report.group_tests): paired across seeds and episodes."""
import zlib
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from medssl_utils.book import report

DATA = ["medsynth-chexpert", "medsynth-bach"]
RECIPES = {"sup": 0.0, "simclr": 0.0, "byol": 0.0, "random": 0.0}


def _rows(protocol="fewshot"):
    return pd.DataFrame([{"protocol": protocol, "model": f"mini-{r}-s{s}", "dataset": d, "metric": "accuracy",
                          "value": 60.0, "ci_low": 59.0, "ci_high": 61.0}
                         for r in RECIPES for s in range(3) for d in DATA])


@pytest.fixture
def outcomes(monkeypatch):
    """Per-episode accuracies: SimCLR is 8 points above supervised on CheXpert† (every seed), equal on BACH†;
    BYOL equals supervised everywhere; episode noise is shared by all models (the same episodes)."""
    rng = np.random.default_rng(0)
    episode = {d: rng.normal(60, 10, 300) for d in DATA}

    def fake(cfg, protocol, dataset, models, name):
        out = []
        for m in models:
            recipe, seed = m.split("-")[1], int(m[-1])
            shift = 8.0 if (recipe == "simclr" and dataset == "medsynth-chexpert") else 0.0
            out.append(episode[dataset] + shift + np.random.default_rng(zlib.crc32(f"{m}{dataset}".encode())).normal(0, 1, 300)
                       + 0.3 * seed)
        return np.stack(out)

    monkeypatch.setattr(report, "outcome_matrix", fake)
    return SimpleNamespace(seed=0)


def test_each_recipe_is_tested_against_the_supervised_recipe(outcomes):
    t = report.recipe_tests(outcomes, _rows(), "fewshot")
    assert set(t.model_b) == {"sup"} and set(t.model_a) == {"simclr", "byol"}   # random init is left out
    assert len(t) == 4 and t.correction.iloc[0] == "holm over 4 comparisons"
    sig = {(a, d): s for a, d, s in zip(t.model_a, t.dataset, t.significant)}
    assert sig[("simclr", "medsynth-chexpert")]
    assert not sig[("simclr", "medsynth-bach")] and not sig[("byol", "medsynth-chexpert")]
    row = t[(t.model_a == "simclr") & (t.dataset == "medsynth-chexpert")].iloc[0]
    assert 7 < row["diff"] < 9 and row.ci_low > 0


def test_table_marks_only_supported_differences(outcomes):
    tab = report.recipe_test_table(report.recipe_tests(outcomes, _rows(), "fewshot"))
    assert list(tab.index) == ["Mini SimCLR", "Mini BYOL"]
    cells = tab.loc["Mini SimCLR"].tolist()
    assert sum(c.endswith("*") for c in cells) == 1 and any(c.startswith("+8") or c.startswith("+7") for c in cells)
    assert not any(c.endswith("*") for c in tab.loc["Mini BYOL"])


def test_per_item_outcomes_are_reported_in_points(monkeypatch):
    """Linear outcomes are 0/1 per test item; differences come out in percentage points like few-shot's."""
    rng = np.random.default_rng(1)
    base = rng.random(400)

    def fake(cfg, protocol, dataset, models, name):
        return np.stack([(base < (0.8 if "simclr" in m else 0.6)).astype(float) for m in models])

    monkeypatch.setattr(report, "outcome_matrix", fake)
    t = report.recipe_tests(SimpleNamespace(seed=0), _rows("linear"), "linear")
    row = t[(t.model_a == "simclr")].iloc[0]
    assert 15 < row["diff"] < 25


def test_no_supervised_group_gives_no_tests(outcomes):
    rows = _rows()
    assert report.recipe_tests(outcomes, rows[~rows.model.str.contains("sup")], "fewshot").empty


def test_significant_counts_by_sign():
    t = pd.DataFrame({"diff": [2.0, -1.0, 3.0, -4.0], "significant": [True, True, False, True]})
    assert (report.n_significant(t), report.n_significant(t, +1), report.n_significant(t, -1)) == (3, 1, 2)
    assert report.n_significant(pd.DataFrame()) == 0
