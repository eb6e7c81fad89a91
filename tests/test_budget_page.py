"""Issue 17, item 3: the budget page's arithmetic (curves, neutral gap, projection) and the claims per budget."""
from __future__ import annotations

import dataclasses

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from medssl_utils.book import report, report_budget as rb  # noqa: E402
from medssl_utils.models.minizoo import read_manifest  # noqa: E402
from medssl_utils.models.registry import MODELS, available, get_spec  # noqa: E402


def _fake_budget(monkeypatch, base: str, budget: int, images: int | None = None) -> str:
    """Register ``base``'s weights under a budget name (the same checkpoint, so results must equal the base's)."""
    available()
    spec = get_spec(base)
    recipe, seed = spec.extra["recipe"], spec.extra["seed"]
    name = f"mini-{recipe}-b{budget}-s{seed}"
    extra = dict(spec.extra, budget=budget, group=f"{recipe}-b{budget}",
                 images_seen=images or spec.extra["images_seen"] * budget,
                 recipe_title=f"{spec.extra['recipe_title']} x{budget}")
    monkeypatch.setitem(MODELS, name, dataclasses.replace(spec, name=name, extra=extra))
    return name


def test_every_mini_model_carries_its_budget_and_images_seen():
    available()
    manifest = read_manifest()
    for name, rec in manifest["models"].items():
        spec = get_spec(name)
        assert spec.extra["budget"] == 1
        own = sum(st["steps"] * st["batch_size"] for st in rec["stages"])
        parent = (rec.get("init_from") or {}).get("name")
        assert spec.extra["images_seen"] == own + (get_spec(parent).extra["images_seen"] if parent else 0) > 0
    assert get_spec("mini-random-s0").extra["budget"] == 0
    for name, rec in manifest.get("budgets", {}).items():
        spec = get_spec(name)
        parent = (rec.get("init_from") or {}).get("name")
        assert spec.extra["budget"] == rec["budget"] > 1
        assert spec.extra["images_seen"] == rec["images_seen"] + (get_spec(parent).extra["images_seen"] if parent else 0)
        assert report.group_of(name) == f"{rec['recipe']}-b{rec['budget']}" != report.group_of(rec["base_model"])


def test_budget_siblings_add_the_same_recipe_and_seed_only(monkeypatch):
    a = _fake_budget(monkeypatch, "mini-simclr-s0", 4)
    b = _fake_budget(monkeypatch, "mini-simclr-s1", 4)
    _fake_budget(monkeypatch, "mini-byol-s0", 4)
    got = rb.budget_siblings(["mini-sup-s0", "mini-simclr-s0", "mini-random-s0"])
    assert got[:3] == ["mini-sup-s0", "mini-simclr-s0", "mini-random-s0"]
    assert a in got and b not in got and "mini-byol-b4-s0" not in got


def _rows(values: dict) -> pd.DataFrame:
    out = []
    for (p, d, m), v in values.items():
        out.append({"protocol": p, "model": m, "dataset": d, "metric": report.headline_metric(p, d),
                    "value": float(v), "ci_low": v - 1.0, "ci_high": v + 1.0, "extra": ""})
    return pd.DataFrame(out)


def test_transfer_curve_puts_all_budgets_on_one_scale_without_random_init(monkeypatch):
    b4 = _fake_budget(monkeypatch, "mini-simclr-s0", 4)
    vals = {}
    for d, shift in (("medsynth-chexpert", 0.0), ("medsynth-bach", 10.0)):
        for m, v in (("mini-sup-s0", 80.0), ("mini-simclr-s0", 60.0), (b4, 70.0), ("mini-random-s0", 0.0)):
            vals[("fewshot", d, m)] = v + shift
    c = rb.transfer_curve(_rows(vals))
    got = {(r.recipe, r.budget): r.value for r in c.itertuples()}
    # scaled per dataset over sup, simclr 1x, simclr 4x (random init, far below, is not on the scale)
    assert got == {("sup", 1): 1.0, ("simclr", 1): 0.0, ("simclr", 4): 0.5}
    assert set(c.protocol) == {"fewshot"}
    assert c.set_index(["recipe", "budget"]).images_seen[("simclr", 4)] == 4 * get_spec("mini-simclr-s0").extra[
        "images_seen"]


def _manifest(knn: dict) -> dict:
    """Neutral-probe records for registered models: {name: kNN accuracy (0-1)}; budget names are fakes."""
    models, budgets = {}, {}
    for n, v in knn.items():
        rec = {"knn": v, "linear": v}
        if "-b" in n:
            budgets[n] = {"neutral_probe": rec}
        else:
            models[n] = rec
    return {"neutral_probe": {"models": models, "random_baseline": {}}, "budgets": budgets}


def test_neutral_gap_is_ssl_minus_supervised_at_the_same_budget(monkeypatch):
    names = [_fake_budget(monkeypatch, m, 4) for m in ("mini-sup-s0", "mini-simclr-s0", "mini-simclr-s1")]
    m = _manifest({"mini-sup-s0": 0.90, "mini-sup-s1": 0.94, "mini-simclr-s0": 0.10, "mini-simclr-s1": 0.20,
                   names[0]: 0.95, names[1]: 0.40, names[2]: 0.50})
    gap = rb.neutral_gap(rb.neutral_rows(m)).set_index(["recipe", "budget"])
    assert gap.value[("simclr", 1)] == pytest.approx(15.0 - 92.0)
    assert gap.value[("simclr", 4)] == pytest.approx(45.0 - 95.0)
    assert gap.sd[("simclr", 1)] == pytest.approx(np.std([10.0, 20.0], ddof=1))
    assert list(gap.index.get_level_values("recipe").unique()) == ["simclr"]      # supervised is the reference


def test_a_budget_without_supervised_is_compared_with_the_largest_supervised_budget_below(monkeypatch):
    """A 16x SimCLR with no 16x supervised model: its gap is taken against supervised at 4x, and says so."""
    names = [_fake_budget(monkeypatch, m, b) for m, b in (("mini-sup-s0", 4), ("mini-simclr-s0", 4),
                                                          ("mini-simclr-s0", 16))]
    assert rb.supervised_reference([1, 4, 16], [1, 4]) == {1: 1, 4: 4, 16: 4}
    assert rb.supervised_reference([1, 2], [2]) == {2: 2}
    m = _manifest({"mini-sup-s0": 0.90, "mini-simclr-s0": 0.10, names[0]: 0.96, names[1]: 0.60, names[2]: 0.93})
    gap = rb.neutral_gap(rb.neutral_rows(m)).set_index(["recipe", "budget"])
    assert gap.value[("simclr", 16)] == pytest.approx(93.0 - 96.0)
    assert gap.supervised_budget[("simclr", 16)] == 4 and gap.supervised_budget[("simclr", 4)] == 4
    words = rb.projection_table(rb.project_budget(gap.reset_index())).set_index("recipe").status
    assert words["simclr"] == "within 5 points at 16x (gap against supervised at 4x: not built at 16x)"
    both = rb.neutral_projections(rb.neutral_rows(m))
    assert list(both.probe) == ["knn", "linear"] and list(rb.projection_table(both).probe) == ["kNN", "linear"]


def test_a_budget_missing_a_family_is_named_not_evaluated():
    """Claims need both families they compare; a budget without them gets a 'not evaluated' row, and the page's
    sentence gives each claim's largest evaluated budget first."""
    rows = [{"budget": "1x", "claim": c, "verdict": "not supported at 1x", "this_run": "x", "evaluated": True}
            for c in ("C1", "C5")]
    rows += [{"budget": "4x", "claim": "C1", "verdict": "supported at 4x", "this_run": "y", "evaluated": True},
             {"budget": "4x", "claim": "C5", "verdict": "not evaluated at 4x (needs domain-specific and "
              "self-supervised models)", "this_run": "only Mini SimCLR x4 built at 4x", "evaluated": False}]
    text = rb.largest_verdicts(pd.DataFrame(rows))
    assert text == ("C1: supported at 4x (y); C5: not supported at 1x (x); not evaluated at 4x (needs "
                    "domain-specific and self-supervised models): only Mini SimCLR x4 built at 4x.")


def test_a_verdict_on_one_training_run_says_so():
    rows = [{"budget": b, "claim": "C1", "verdict": f"supported at {b}", "this_run": "y", "evaluated": True,
             "seeds": n} for b, n in (("1x", 3), ("4x", 2))]
    assert rb.largest_verdicts(pd.DataFrame(rows)) == "C1: supported at 4x (y)."
    rows[1]["seeds"] = 1
    assert rb.largest_verdicts(pd.DataFrame(rows)) == ("C1: supported at 4x (y, one training run per recipe there, "
                                                       "so seed-to-seed variation is untested).")
    assert "seeds per recipe (fewest)" in rb.verdict_table(pd.DataFrame(rows).assign(n_models=2, paper_verdict="-")).columns


def test_projection_extrapolates_a_rising_gap_and_says_when_it_does_not():
    gap = pd.DataFrame({"recipe": ["a", "a", "b", "b", "c", "c", "d", "e", "e"], "family": "self-supervised",
                        "budget": [1, 4, 1, 4, 1, 4, 1, 1, 4], "images_seen": [1e5, 4e5, 1e5, 4e5, 1e5, 4e5, 1e5, 1e5, 4e5],
                        "value": [-80.0, -60.0, -50.0, -55.0, -10.0, -3.0, -30.0, -90.0, -89.0], "sd": np.nan,
                        "n_seeds": 1})
    p = rb.project_budget(gap).set_index("recipe")
    slope = 20.0 / np.log10(4)
    assert p.slope_per_10x["a"] == pytest.approx(slope)
    assert p.projected_images["a"] == pytest.approx(1e5 * 10 ** (75.0 / slope))       # -80 + slope*dx = -5
    assert p.projected_budget["a"] == pytest.approx(p.projected_images["a"] / 1e5)
    assert np.isnan(p.projected_images["b"]) and p.slope_per_10x["b"] < 0               # falling: no projection
    assert p.reached["c"] and np.isnan(p.projected_images["c"])
    assert np.isnan(p.slope_per_10x["d"])                                               # one budget: no line
    words = rb.projection_table(rb.project_budget(gap)).set_index("recipe").status
    assert words["a"].startswith("rising") and words["b"].startswith("not rising")
    assert words["c"].startswith("within 5") and words["d"] == "one budget: no trend"
    assert words["e"].startswith("rising too slowly")             # 1 point per 4x: beyond 10,000x
    # a third budget: the line goes through the last two (a flattening curve is not projected with its early slope)
    flat = pd.concat([gap[gap.recipe == "a"], gap[gap.recipe == "a"].iloc[[1]].assign(budget=16, images_seen=1.6e6,
                                                                                      value=-55.0)])
    f = rb.project_budget(flat).iloc[0]
    assert f.budgets == 3 and f.slope_per_10x == pytest.approx(5.0 / np.log10(4))
    assert f.projected_images == pytest.approx(1.6e6 * 10 ** (50.0 / f.slope_per_10x))


def test_paper_position_is_the_authors_imagenet_top1_gap():
    ssl, sup = (69.3, 71.1, 61.7, 75.3, 74.3), (77.2, 72.12, 74.98)   # simclr moco pirl swav byol | r50 r18 d121
    assert rb.paper_top1_gap() == pytest.approx(np.mean(ssl) - np.mean(sup))


def test_claims_per_budget_name_the_budget_and_equal_weights_give_equal_verdicts(tmp_path, monkeypatch):
    """Budget checkpoints that are the 1x weights must reproduce the 1x claims word for word."""
    from medssl_utils import config
    from medssl_utils.pipeline import grid

    base = ["mini-sup-s0", "mini-simclr-s0", "mini-byol-s0", "mini-mimic-s0", "mini-random-s0"]
    fakes = [_fake_budget(monkeypatch, m, 4) for m in base[:4]]
    cfg = config.resolve("smoke", models=base, datasets=["medsynth-montgomery", "medsynth-bach"], n_episodes=40,
                         dataset_scale=0.4, image_size=32, cache_dir=str(tmp_path / "c"),
                         results_dir=str(tmp_path / "r"))
    models = rb.budget_siblings(cfg.models)
    assert set(fakes) <= set(models)
    models = [m for m in models if rb.budget_of(m) <= 1 or m in fakes]     # committed checkpoints of other budgets
    rows = grid.run(cfg, ["fewshot"], models=models, progress=False)
    assert rb.budgets_of(rows) == [1, 4]
    v = rb.verdicts_by_budget(cfg, rows, protocols=("fewshot",))
    assert list(v.budget) == ["1x", "1x", "4x", "4x"] and list(v.claim) == ["C1", "C5", "C1", "C5"]
    assert all(t.endswith(f"at {b}") for t, b in zip(v.verdict, v.budget))
    one, four = v[v.budget == "1x"], v[v.budget == "4x"]
    assert list(one.this_run) == list(four.this_run)
    assert [t.rsplit(" at ", 1)[0] for t in one.verdict] == [t.rsplit(" at ", 1)[0] for t in four.verdict]
    assert rb.largest_verdicts(v).startswith("C1: ") and "at 4x" in rb.largest_verdicts(v)
    assert v.evaluated.all() and v.seeds.eq(1).all()             # one seed of each recipe: the sentence says so
    assert rb.largest_verdicts(v).count("one training run per recipe there") == 2
    lone = _fake_budget(monkeypatch, "mini-simclr-s0", 16)
    rows16 = pd.concat([rows, rows[rows.model == "mini-simclr-s0"].assign(model=lone)], ignore_index=True)
    v16 = rb.verdicts_by_budget(cfg, rows16, protocols=("fewshot",))
    assert list(v16.budget) == ["1x", "1x", "4x", "4x", "16x", "16x"]
    assert v16.iloc[:4].drop(columns="evaluated").equals(v.drop(columns="evaluated"))
    assert not v16.iloc[4:].evaluated.any() and set(v16.iloc[4:].this_run) == {"only Mini SimCLR built at 16x"}
    assert "C1: " + v.iloc[2].verdict in rb.largest_verdicts(v16) and "not evaluated at 16x" in rb.largest_verdicts(v16)
    fig = rb.budget_figure(rb.transfer_curve(rows, ("fewshot",)), rb.neutral_gap(rb.neutral_rows(read_manifest())),
                           rb.paper_top1_gap(), rb.paper_positions(list(cfg.datasets), ("fewshot",)))
    assert len(fig.axes) == 2 and fig.axes[0].get_xscale() == "log"


def test_no_budget_axis_is_said_not_faked():
    assert rb.largest_verdicts(pd.DataFrame()).startswith("no budget axis")
    assert rb.verdict_table(pd.DataFrame()).empty


def test_the_paper_profile_has_no_axis_and_every_step_of_the_page_still_runs():
    """Under the `paper` profile (the rehearsal) the page must say there is no budget axis, not fail."""
    available("paper")
    models = ["supervised_r50", "simclr_v1", "byol"]
    vals = {("fewshot", d, m): 50.0 + k for d in ("medsynth-chexpert", "medsynth-bach") for k, m in enumerate(models)}
    rows = _rows(vals)
    assert rb.budget_siblings(models) == models and rb.budgets_of(rows) == [1]
    assert rb.transfer_curve(rows).empty and rb.budget_table(read_manifest(), models).empty
    neutral = rb.neutral_rows(read_manifest())
    gap = rb.neutral_gap(neutral[neutral.model.isin(models)])
    assert gap.empty and rb.projection_table(rb.project_budget(gap)).empty


def test_the_budget_table_orders_budgets_by_size_within_a_recipe():
    available()
    names = ["mini-simclr-b16-s0", "mini-simclr-b4-s0", "mini-simclr-s0", "mini-sup-s0"]
    if not all(n in MODELS for n in names):
        pytest.skip("the committed zoo has no 16x SimCLR")
    t = rb.budget_table(read_manifest(), names)
    assert list(t.budget) == ["1x", "4x", "16x", "1x"] and list(t.recipe)[::3] == ["Mini SimCLR", "Mini supervised"]
