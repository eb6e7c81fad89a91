"""Q3 driver and report (medssl_utils.analysis.driver, medssl_utils.book.report_q3) on a tiny synthetic config."""
import json

import numpy as np
import pandas as pd
import pytest
import torch

from medssl_utils import config, reference
from medssl_utils.pipeline import analyses, grid, inputs
from tests.fixtures.spies import spy
from medssl_utils.book import report_q3
from medssl_utils.models.minizoo.arch import ARCH_NAME, FEATURE_DIM, INPUT_SIZE
from medssl_utils.models.registry import MODELS, ModelSpec, register
from medssl_utils.results import COLUMNS

torch.set_num_threads(1)
MODEL = "test-q3-random"
DATASETS = ["medsynth-chexpert", "medsynth-eyepacs"]
SOURCE = "source-fractaldb-mini"      # the mini world's ImageNet counterpart (saliency and reconstruction only)


@pytest.fixture(scope="module", autouse=True)
def throwaway_model():
    """A random-init mini-zoo backbone under a name no profile uses (removed again afterwards)."""
    from medssl_utils.models.registry import available

    available()
    if MODEL not in MODELS:
        register(ModelSpec(name=MODEL, title="Test random init", family="random", arch=ARCH_NAME,
                           feature_dim=FEATURE_DIM, preprocessing="imagenet", input_size=INPUT_SIZE, profile="test",
                           extra={"init_seed": 0}))
    yield
    MODELS.pop(MODEL, None)


def tiny(tmp_path, results="res", **kw):
    opts = {"datasets": {d: {"scale": 0.2} for d in DATASETS}}
    return config.resolve("smoke", cache_dir=str(tmp_path / "cache"), results_dir=str(tmp_path / results),
                          models=[MODEL], analysis_models=[MODEL], datasets=DATASETS, image_size=32, dip_steps=3,
                          saliency_image_size=24, invariance_images=6, options=kw.pop("options", opts), **kw)


@pytest.fixture(scope="module")
def q3_grid(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("q3")
    cfg = tiny(tmp)
    return tmp, cfg, grid.run(cfg, grid.ANALYSES, progress=False)


def _key(df):
    return df[["protocol", "model", "dataset", "metric", "value"]].sort_values(
        ["protocol", "dataset", "metric"]).reset_index(drop=True)


def test_rows_have_the_schema_and_the_expected_metrics(q3_grid):
    _, cfg, rows = q3_grid
    assert list(rows.columns) == COLUMNS
    assert (rows.question == "Q3").all() and (rows.source == "this run").all() and (rows.profile == "smoke").all()
    got = set(zip(rows.protocol, rows.dataset, rows.metric))
    want = {("saliency", d, "attentive_diffusion") for d in DATASETS}
    want |= {("reconstruction", d, m) for d in DATASETS for m in ("one_minus_ssim", "mse")}
    # MedSynth sets inherit the invariances the authors ran on their real counterparts
    want |= {("invariance", "medsynth-chexpert", f"invariance_{t}") for t in ("hflip", "multiview")}
    want |= {("invariance", "medsynth-eyepacs", f"invariance_{t}") for t in ("rotation", "hue", "multiview")}
    # the pretraining-source image (the paper's ImageNet column of Tables A4-A7): no invariance on it
    want |= {("saliency", SOURCE, "attentive_diffusion")} | {("reconstruction", SOURCE, m) for m in ("one_minus_ssim", "mse")}
    assert got == want
    assert not rows.metric.str.startswith("lpips").any()     # no trunk weights: never called LPIPS
    ad = rows[rows.metric == "attentive_diffusion"].value
    assert ad.between(0, 100).all()
    inv = rows[rows.protocol == "invariance"]
    assert inv.value.between(-1, 1).all() and (inv.n == 6).all()
    assert (inv.ci_low <= inv.value).all() and (inv.value <= inv.ci_high).all()
    extra = [json.loads(e) for e in rows.extra]
    assert all(e["settings"] for e in extra)
    sal = [e for e, p in zip(extra, rows.protocol) if p == "saliency"]
    assert all(e["image_size"] == 24 and e["patch"] == 1 for e in sal)
    # the sample image is the first test image of the last class, in manifest order
    man, _ = inputs.manifest(cfg, "medsynth-eyepacs")
    test = man[man.split == "test"]
    assert {e["sample_id"] for e, d in zip(extra, rows.dataset) if d == "medsynth-eyepacs" and "sample_id" in e} == \
        {test[test.label == test.label.max()].id.iloc[0]}


def test_outcomes_are_stored(q3_grid):
    _, cfg, _ = q3_grid
    smap = grid.outcome(cfg, "saliency", MODEL, "medsynth-chexpert", "saliency_map")
    assert smap.shape == (24, 24)     # patch 1 -> nothing cropped
    rec = grid.outcome(cfg, "reconstruction", MODEL, "medsynth-chexpert", "reconstruction")
    orig = grid.outcome(cfg, "reconstruction", MODEL, "medsynth-chexpert", "original")
    assert rec.dtype == np.uint8 and rec.shape == orig.shape == (INPUT_SIZE, INPUT_SIZE, 3)
    src = grid.outcome(cfg, "saliency", MODEL, SOURCE, "image")
    assert src.shape == (24, 24, 3) and src.std() > 5          # the corpus image at the saliency size, not blank
    sims = grid.outcome(cfg, "invariance", MODEL, "medsynth-eyepacs", "similarity_rotation")
    assert sims.shape == (6, analyses.ROTATION_K)


def test_finished_units_are_skipped_and_changed_settings_rerun(q3_grid, monkeypatch):
    tmp, cfg, rows = q3_grid
    calls = []
    for name in grid.ANALYSES:
        spy(monkeypatch, name, calls)
    again = grid.run(cfg, grid.ANALYSES, progress=False)
    assert calls == []
    pd.testing.assert_frame_equal(_key(again), _key(rows))
    changed = tiny(tmp, options={"datasets": {d: {"scale": 0.2} for d in DATASETS},
                                 "analysis": {"invariance": {"include_identity": True}}})
    grid.run(changed, ["invariance"], progress=False)
    assert {u.protocol for u in calls} == {"invariance"} and len(calls) == len(DATASETS)


def test_sharding_gives_the_same_rows(q3_grid, tmp_path):
    _, _, rows = q3_grid
    cfg = tiny(tmp_path, results="sharded")
    first = grid.run(cfg, grid.ANALYSES, shard=(0, 2), progress=False)
    assert 0 < len(first) < len(rows)
    both = grid.run(cfg, grid.ANALYSES, shard=(1, 2), progress=False)
    pd.testing.assert_frame_equal(_key(both), _key(rows), check_exact=False, rtol=1e-6)


def test_options_are_validated_and_filter_units(tmp_path):
    from medssl_utils.config import ConfigError

    with pytest.raises(ConfigError, match="nope"):      # refused by config, before any work
        tiny(tmp_path, options={"analysis": {"saliency": {"nope": 1}}})
    cfg = tiny(tmp_path, options={"analysis": {"reconstruction_datasets": ["medsynth-eyepacs"]}})
    units = grid.plan(cfg, grid.ANALYSES)
    # the filter restricts the run's datasets; the source image has its own switch
    assert {u.dataset for u in units if u.protocol == "reconstruction"} == {"medsynth-eyepacs", SOURCE}
    assert {u.dataset for u in units if u.protocol == "saliency"} == set(DATASETS) | {SOURCE}
    assert {u.dataset for u in units if u.protocol == "invariance"} == set(DATASETS)
    off = tiny(tmp_path, options={"analysis": {"source_image": False}})
    assert SOURCE not in {u.dataset for u in grid.plan(off, grid.ANALYSES)}
    with pytest.raises(ConfigError, match="source_image"):
        tiny(tmp_path, options={"analysis": {"source_image": "yes"}})
    assert analyses.invariances_for("medsynth-bach") == ("hue",) and analyses.invariances_for("medsynth-cxr-source") == ()


def test_dip_levels_and_resizing():
    assert [analyses.dip_levels(s) for s in (224, 64, 32)] == [6, 4, 3]
    from medssl_utils.models.preprocessing import make_preprocess
    from PIL import Image

    pre = analyses.at_size(make_preprocess("imagenet", 32), 24)
    assert tuple(pre.to_unit(Image.new("RGB", (64, 48))).shape) == (3, 24, 24)


def test_report_tables_put_the_paper_beside(q3_grid):
    _, cfg, rows = q3_grid
    for table in report_q3.TABLES:
        this, paper, direction, note = report_q3.table_pair(rows, table)
        ref = reference.paper_rows()
        assert len(paper) == ref[ref.source == f"paper Table {table}"].model.nunique()
        if table in ("A4", "A5", "A6"):
            assert direction == "lower" and "NOT LPIPS" in note and len(this) == 1
        if table in ("A4", "A5", "A6", "A7"):     # the ImageNet counterpart last, as the paper's ImageNet column
            assert list(this.columns)[-1] == "source corpus†" and list(paper.columns)[-1] == "ImageNet"
            assert this.iloc[0, -1] != "—"
    a7 = report_q3.paper_table("A7")
    assert a7.loc["MoCo-CXR", "CheXpert"] == "33"       # printed 0.33, shown in percent
    this, *_ = report_q3.table_pair(rows, "A3")
    assert list(this.columns) == ["CheXpert†", "EyePACS†"]         # no source column outside A4-A7
    marks = report_q3._marks(pd.DataFrame({"c": ["0.2", "0.9", "0.5"]}), "lower")
    assert list(marks.c) == ["best", "", "second"]


def test_correlations_recompute_the_paper_from_its_numbers(q3_grid):
    _, cfg, rows = q3_grid
    corr = report_q3.correlations_table(rows, pd.DataFrame())
    assert len(corr) == len(reference.published_correlations())
    mv = corr[corr["where"].str.startswith("s5.3")].iloc[0]
    assert mv.stated_r == 0.82 and mv.n_authors_file == 10
    assert abs(mv.r_authors_file - 0.24) < 0.01          # all ten models (the note in the reference data)
    top1 = corr[corr["where"] == "Figure A4 analysis"].set_index("what")
    assert abs(top1.filter(like="shenzhen", axis=0).r_authors_file.iloc[0] - (-0.672)) < 0.001
    assert (corr.n_this_run == 0).all()                    # no few-shot rows given: nothing claimed for this run
