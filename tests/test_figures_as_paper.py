"""Figures 2, 3, 4 and A4 as the paper defines them (what is scaled over which models, bars, error bars, panels),
run tables in the paper's dataset order, and claims that read the very values the figures draw."""
import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from scipy.stats import pearsonr  # noqa: E402

from medssl_utils import reference  # noqa: E402
from medssl_utils.book import claims, report
from medssl_utils.models.registry import MODELS, available  # noqa: E402

PAPER = list(reference.PAPER_DATASETS)
IMAGENET = ("self-supervised", "supervised")


def _rows(values: dict) -> pd.DataFrame:
    """{(protocol, dataset, recipe): value} -> result rows of seed-0 mini-zoo models."""
    out = []
    for (p, d, r), v in values.items():
        out.append({"protocol": p, "model": f"mini-{r}-s0", "dataset": d, "metric": report.headline_metric(p, d),
                    "value": float(v), "ci_low": v - 1.0, "ci_high": v + 1.0, "extra": ""})
    return pd.DataFrame(out)


# Domain-specific models best everywhere, random init worst: the scaling rule decides what the bars show.
RECIPES = {"sup": 60.0, "simclr": 64.0, "byol": 70.0, "mimic": 90.0, "mococxr": 80.0, "random": 40.0}
DATASETS = ("medsynth-pm", "medsynth-chexpert")          # listed against the paper's order on purpose


@pytest.fixture
def rows():
    vals = {}
    for p in ("fewshot", "linear"):
        for k, d in enumerate(DATASETS):
            for r, v in RECIPES.items():
                vals[(p, d, r)] = v + 3 * k
    return _rows(vals)


# ---------------------------------------------------------------- Figure 2
def test_figure2_scales_each_task_over_ssl_and_supervised_only():
    fam = report.paper_family_means(PAPER)
    assert set(fam.family) == set(IMAGENET)                           # no domain-specific bar
    ref = reference.paper_rows()
    for task in fam.itertuples():
        cell = ref[(ref.protocol == task.protocol) & (ref.dataset == task.dataset)]
        cell = cell[[m in reference.MODELS[:8] for m in cell.model]]
        cell = cell[[m == report._paper_metric(task.dataset) or task.protocol == "fewshot" for m in cell.metric]]
        scaled = (cell.value - cell.value.min()) / (cell.value.max() - cell.value.min())   # spans exactly [0, 1]
        fams = [report.reference_family(m) for m in cell.model]
        assert task.value == pytest.approx(scaled[[f == task.family for f in fams]].mean())


def test_figure2_this_run_ignores_domain_specific_and_random(rows):
    fam = report.family_means(rows)
    assert set(fam.family) == set(IMAGENET)
    t = fam.pivot_table(index="task", columns="family", values="value")
    # sup = 0 and BYOL = 1 on every task, although MIMIC-CheXpert is higher and random init lower
    assert (t["supervised"] == 0).all() and np.allclose(t["self-supervised"], (4 / 10 + 1) / 2)
    assert fam.raw.max() < 80                                         # raw means kept beside the bars


def test_figure2_constant_task_has_no_bar():
    flat = _rows({("fewshot", "medsynth-pm", r): 50.0 for r in ("sup", "simclr")})
    assert report.family_means(flat).value.isna().all()              # not 0.5 (the old report.minmax)


# ---------------------------------------------------------------- Figure 3
def test_figure3_scales_over_all_models():
    ref = report.paper_scaled_rows(PAPER)
    assert {"self-supervised", "supervised", "domain-specific"} <= set(ref.family)
    for _, g in ref.groupby("dataset"):
        assert g.scaled.min() == 0 and g.scaled.max() == 1
    ds = ref[ref.family == "domain-specific"]
    assert ((ds.scaled == 0) | (ds.scaled == 1)).any()               # a domain-specific model is an end point
    ssl = ref[ref.family == "self-supervised"]
    assert not all(g.scaled.min() == 0 and g.scaled.max() == 1 for _, g in ssl.groupby("dataset"))


def test_figure3_this_run_scaling_includes_every_family(rows):
    s = report.fewshot_scaled(rows)
    ssl = s[s.family == "self-supervised"]
    assert ssl.scaled.min() == pytest.approx((64 - 40) / 50) and ssl.scaled.max() == pytest.approx((70 - 40) / 50)
    assert s[s.family == "random"].scaled.eq(0).all() and s[s.group == "mimic"].scaled.eq(1).all()


def test_claim_c2_reads_figure3_values():
    ref = report.paper_scaled_rows(PAPER)
    means = ref[ref.family == "self-supervised"].groupby("label").scaled.mean()
    c = claims.best_ssl_method(pd.DataFrame(columns=["protocol"]), ref)
    assert f"{means.idxmax()} ({means.max():.2f})" in c.paper and c.paper_verdict == claims.SUPPORTED


# ---------------------------------------------------------------- Figure 4
def test_figure4_types_error_bars_and_mimic_only():
    scaled = report.paper_scaled_task_rows(PAPER)
    sm = report.domain_type_summary(scaled)
    assert set(sm.type) == {"SSL (ImageNet)", "Supervised", "MIMIC-CheXpert"}     # MoCo-CXR left out
    sub = scaled[(scaled.protocol == "fewshot") & (scaled.domain == "in") & (scaled.family == "self-supervised")]
    per_model = sub.groupby("label").scaled.mean()
    row = sm[(sm.protocol == "fewshot") & (sm.domain == "in") & (sm.type == "SSL (ImageNet)")].iloc[0]
    assert row.n_models == 5 and row.sd == pytest.approx(np.std(per_model.to_numpy()))
    assert row.value == pytest.approx(sub.groupby("dataset").scaled.mean().mean())
    # scaled across all models: MoCo-CXR has no bar but still sets the scale (lowest on BACH few-shot)
    bach = scaled[(scaled.protocol == "fewshot") & (scaled.dataset == "bach")]
    assert bach.set_index("model").scaled["moco_cxr_best"] == 0


def test_figure4_mimic_counterpart_by_stands_for(rows):
    sm = report.domain_type_summary(report.scaled_task_rows(rows))
    mimic = sm[sm.type == "MIMIC-CheXpert"]
    assert len(mimic) and (mimic.value == 1).all()                   # mini MIMIC is best; mini MoCo-CXR is not it
    assert report.figure4_type("domain-specific", "moco_cxr_best") is None
    none = rows[~rows.model.str.contains("mimic")]
    assert "MIMIC-CheXpert" not in set(report.domain_type_summary(report.scaled_task_rows(none)).type)


def test_claim_c5_reads_figure4_bars():
    scaled = report.paper_scaled_task_rows(PAPER)
    sm = report.domain_type_summary(scaled)
    c = claims.domain_specific_tradeoff(scaled.iloc[0:0], scaled, pd.DataFrame())
    gi, go = report.figure4_gap(sm, "in"), report.figure4_gap(sm, "out")
    assert f"{gi:+.2f} in, {go:+.2f} out" in c.paper and gi > 0 > go


# ---------------------------------------------------------------- Figure A4
def test_figure_a4_manyshot_correlations_match_scipy():
    available()
    ref = reference.paper_rows()
    corr = report.source_correlations(report.paper_source_points(PAPER), report.paper_manyshot_points())
    corr = corr.set_index("panel")
    for p, d in report.A4_MANYSHOT:
        cell = ref[(ref.protocol == p) & (ref.dataset == d) & (ref.metric == report._paper_metric(d))]
        cell = cell[[m in MODELS and MODELS[m].imagenet_top1 is not None for m in cell.model]]
        assert len(cell) == 8
        res = pearsonr([MODELS[m].imagenet_top1 for m in cell.model], cell.value)
        panel = report._a4_panel(p, d)
        assert corr.loc[panel, "r"] == pytest.approx(res.statistic) and corr.loc[panel, "p"] == pytest.approx(res.pvalue)
        assert corr.loc[panel, "n"] == 8


def test_figure_a4_axis_label_comes_from_the_source_column():
    few = pd.DataFrame({"group_title": ["a", "b", "c"], "source_acc": [1.0, 2.0, 3.0], "transfer": [0.1, 0.5, 0.2],
                        "source": "probe on corpus X"})
    fig = report.source_figure(few, pd.DataFrame(columns=report.A4_COLUMNS), report.paper_source_points(PAPER),
                               report.paper_manyshot_points())
    assert len(fig.axes) == 10
    assert "probe on corpus X" in fig.axes[0].get_xlabel()
    assert reference.MODEL_DISPLAY and report.SOURCE_TOP1 in fig.axes[5].get_xlabel().replace("\n", " ")
    assert "r = " in fig.axes[6].get_title()


# ---------------------------------------------------------------- figures on a tiny frame, tables
def test_figures_have_the_expected_panels(rows):
    import matplotlib.pyplot as plt

    figs = [report.family_figure(report.family_means(rows), report.paper_family_means(list(DATASETS))),
            report.scaled_box_figure(rows, report.paper_scaled_rows(list(DATASETS))),
            report.domain_figure(report.scaled_task_rows(rows), report.paper_scaled_task_rows(list(DATASETS)))]
    for fig in figs:
        titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
        assert titles == ["this run", "paper (published)"]
        plt.close(fig)
    ticks = [t.get_text() for t in figs[0].axes[0].get_xticklabels()]
    assert ticks[0].startswith("CheXpert") and "iChallenge-PM" in ticks[1]          # the paper's order


def test_run_tables_use_paper_order_and_readable_headers(rows):
    t = report.run_table(rows, "fewshot")
    assert t.index.name == "model" and t.columns.name == "dataset"
    assert [c.split()[0] for c in t.columns] == ["MedSynth-CheXpert", "MedSynth-iChallenge-PM"]
    p = report.paper_table("fewshot", list(DATASETS))
    assert list(p.columns) == ["CheXpert", "iChallenge-PM"] and p.index.name == "model"
    tests = pd.DataFrame({"protocol": ["fewshot"] * 2, "dataset": list(DATASETS), "dataset_title":
                          [report.dataset_title(d) for d in DATASETS], "mean_a": [1.0, 2.0], "mean_b": [0.5, 1.0],
                          "diff": [0.5, 1.0], "significant": [True, False]})
    tt = report.tests_table(tests, a="SSL", b="supervised")
    assert list(tt.columns) == ["protocol", "dataset", "SSL mean", "supervised mean", "difference", "significant"]
    assert tt.dataset.iloc[0].startswith("MedSynth-CheXpert")


def test_paired_tests_do_not_depend_on_the_order_of_the_rows(tmp_path):
    """The family means are sums over recipes: summed in a fixed order, shuffled rows give the same p-values."""
    from medssl_utils import config
    from medssl_utils.book import report
    from medssl_utils.pipeline import grid

    cfg = config.resolve("smoke", models=["mini-sup-s0", "mini-simclr-s0", "mini-moco-s0", "mini-byol-s0"],
                         datasets=["medsynth-montgomery"], n_episodes=60, dataset_scale=0.3, image_size=32,
                         cache_dir=str(tmp_path / "c"), results_dir=str(tmp_path / "r"))
    rows = grid.run(cfg, ["fewshot"], progress=False)
    r = report.annotate(rows)
    for order in (r.iloc[::-1], r.iloc[[1, 3, 0, 2]], r.iloc[[2, 0, 3, 1]]):
        fam = report._pair_outcomes(cfg, order, "fewshot", "medsynth-montgomery", "self-supervised", "family")
        ref = report._pair_outcomes(cfg, r, "fewshot", "medsynth-montgomery", "self-supervised", "family")
        assert fam.shape == (1, 60) and fam.tobytes() == ref.tobytes()      # bit for bit
    a = report.family_tests(cfg, rows, "fewshot")
    pd.testing.assert_frame_equal(a, report.family_tests(cfg, rows.iloc[::-1].reset_index(drop=True), "fewshot"))
