"""Q3 as the paper prints it (issue #15): the ImageNet column of Tables A4-A7, the paper's column order, and the
models of Figures 6 and 8. Fast: fabricated result rows, no analysis is run."""
import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from medssl_utils import config
from medssl_utils.pipeline import analyses, grid
from medssl_utils.book import report_q3
from medssl_utils.data import source_images
from medssl_utils.results import COLUMNS

MINI_DATASETS = ["medsynth-bach", "medsynth-chexpert", "medsynth-eyepacs", "medsynth-amd"]   # alphabetical-ish
MINI_MODELS = ["mini-sup-s0", "mini-simclr-s0", "mini-byol-s0", "mini-mococxr-s0", "mini-mimic-s0"]
PAPER_MODELS = ["simclr_v1", "moco_v2", "swav", "byol", "pirl", "supervised_r50", "supervised_r18", "supervised_d121",
                "mimic_chexpert_lr0.01", "moco_cxr_r18", "moco_cxr_d121"]


def fake_rows(models, datasets, protocol="saliency", metric="attentive_diffusion"):
    rng = np.random.default_rng(0)
    out = [{"question": "Q3", "protocol": protocol, "model": m, "dataset": d, "metric": metric,
            "value": float(rng.uniform(30, 60)), "seed": 0, "profile": "mini", "source": "this run", "n": 1,
            "extra": json.dumps({})} for m in models for d in datasets]
    df = pd.DataFrame(out)
    for c in COLUMNS:
        if c not in df:
            df[c] = np.nan if c in ("ci_low", "ci_high") else ""
    return df[COLUMNS]


def paper_cfg(tmp_path, **kw):
    root = tmp_path / "data"
    root.mkdir(exist_ok=True)
    return config.resolve("paper", data_root=str(root), cache_dir=str(tmp_path / "cache"),
                          results_dir=str(tmp_path / "res"), **kw)


@pytest.mark.parametrize("table", ["A4", "A5", "A6", "A7"])
def test_paper_side_has_imagenet_last(table):
    paper = report_q3.paper_table(table)
    assert list(paper.columns)[-1] == "ImageNet"
    assert list(paper.columns) == ["Shenzhen", "Montgomery", "EyePACS", "ChestX", "BACH", "iC-AMD", "iC-PM",
                                   "CheXpert", "ImageNet"]
    assert paper.columns.name is None and paper.index.name == "Model"


@pytest.mark.parametrize("table,protocol,metric", [("A4", "reconstruction", "one_minus_ssim"),
                                                    ("A7", "saliency", "attentive_diffusion")])
def test_run_table_in_the_paper_order_with_the_source_column_last(table, protocol, metric):
    rows = fake_rows(MINI_MODELS[:2], ["source-fractaldb-mini"] + MINI_DATASETS, protocol, metric)
    this, paper, _, note = report_q3.table_pair(rows, table)
    # paper order: ... EyePACS, BACH, iC-AMD, ..., CheXpert, ImageNet; headers as the paper prints them
    assert list(this.columns) == ["EyePACS†", "BACH†", "iC-AMD†", "CheXpert†", "source corpus†"]
    assert this.index.name == "Model" and this.columns.name is None
    assert list(this.index) == ["Mini SimCLR", "Mini supervised"]    # the paper's family order: self-supervised first
    assert "ImageNet" in note and "FractalDB-mini" in note


def test_invariance_tables_follow_the_paper_order():
    rows = pd.concat([fake_rows(MINI_MODELS[:1], ["medsynth-eyepacs", "medsynth-bach", "medsynth-amd"], "invariance",
                                m) for m in ("invariance_rotation", "invariance_hue")])
    this, paper, _, _ = report_q3.table_pair(rows, "A1")
    # the paper's four columns first, in its order; the rest (not printed by the paper) after
    assert list(this.columns)[:3] == ["EyePACS† (rotation)", "iC-AMD† (rotation)", "BACH† (hue)"]
    assert set(list(this.columns)[3:]) == {"EyePACS† (hue)", "iC-AMD† (hue)", "BACH† (rotation)"}


def test_missing_imagenet_under_paper_is_a_not_run_cell(tmp_path):
    cfg = paper_cfg(tmp_path)
    spec, why = analyses.source_status(cfg)
    assert spec.name == "source-imagenet" and why == "not run: no ImageNet image under data_root/imagenet"
    units = grid.plan(cfg, grid.ANALYSES)                               # no exception, and no source unit
    assert units and not any(source_images.is_source(u.dataset) for u in units)
    rows = fake_rows(["pirl", "byol"], ["chexpert", "shenzhen"])
    this, *_ = report_q3.table_pair(rows, "A7", cfg=cfg)
    assert list(this.columns) == ["Shenzhen", "CheXpert", "ImageNet"]
    assert (this["ImageNet"] == why).all()
    this6, *_ = report_q3.table_pair(fake_rows(["pirl"], ["chexpert"], "reconstruction", "one_minus_ssim"), "A6",
                                     cfg=cfg)
    assert list(this6.columns)[-1] == "ImageNet" and this6["ImageNet"].iloc[0].startswith("not run")


def test_an_imagenet_image_under_paper_is_the_source(tmp_path):
    cfg = paper_cfg(tmp_path)
    (cfg.data_root / "imagenet" / "val").mkdir(parents=True)
    Image.new("RGB", (40, 30), (200, 10, 10)).save(cfg.data_root / "imagenet" / "val" / "b.JPEG")
    Image.new("RGB", (40, 30), (10, 200, 10)).save(cfg.data_root / "imagenet" / "val" / "a.png")
    spec, why = analyses.source_status(cfg)
    assert why is None
    ds, i, _ = analyses.sample_input(cfg, "source-imagenet")
    assert ds.ids == ["val/a.png"] and np.asarray(ds.image(i))[0, 0, 1] == 200        # first in sorted order
    units = grid.plan(cfg, grid.ANALYSES)
    assert {u.protocol for u in units if u.dataset == "source-imagenet"} == {"saliency", "reconstruction"}
    assert len([u for u in units if u.dataset == "source-imagenet"]) == 2 * len(cfg.analysis_models)


def test_the_mini_source_image_is_a_held_out_corpus_image():
    from medssl_utils.models.minizoo.corpus import make_corpus

    ds = source_images.get_source("source-fractaldb-mini").load()
    two = make_corpus(0, n_classes=2)           # class 0 alone renders the same pixels as within the corpus
    k = int(ds.ids[0].rsplit("image", 1)[1])
    assert two.heldout[k] and two.labels[k] == 0
    assert np.array_equal(np.asarray(ds.image(0)), two.images[k])


def test_source_cache_key_differs_from_every_dataset(tmp_path):
    cfg = config.resolve("smoke", cache_dir=str(tmp_path / "cache"), results_dir=str(tmp_path / "res"),
                         datasets=["medsynth-chexpert", "medsynth-bach"], image_size=32, analysis_models=["mini-sup-s0"],
                         options={"datasets": {d: {"scale": 0.05} for d in ("medsynth-chexpert", "medsynth-bach")}})
    spec = analyses.source_image(cfg)
    assert spec.name == "source-fractaldb-mini"
    src = analyses.input_key(cfg, grid.Unit("saliency", "mini-sup-s0", spec.name))
    keys = {analyses.input_key(cfg, grid.Unit("saliency", "mini-sup-s0", d)) for d in cfg.datasets}
    assert len(keys) == 2 and src not in keys
    assert src.rsplit("__", 1)[1] not in {k.rsplit("__", 1)[1] for k in keys}       # the content digest too
    assert src == analyses.input_key(cfg, grid.Unit("reconstruction", "mini-sup-s0", spec.name))


def test_figure_models_are_the_papers_when_present():
    six = report_q3.figure_models("figure6", PAPER_MODELS)
    eight = report_q3.figure_models("figure8", PAPER_MODELS)
    assert [m for _, m, _ in six] == ["pirl", "supervised_d121"]
    assert [m for _, m, _ in eight] == ["moco_cxr_r18", "byol", "supervised_r50"]
    assert all(how == "the paper's model" for *_, how in six + eight)


def test_figure_models_take_the_counterparts_in_mini():
    eight = report_q3.figure_models("figure8", MINI_MODELS)
    assert eight[:2] == [("moco_cxr_best", "mini-mococxr-s0", "stands for it"), ("byol", "mini-byol-s0", "stands for it")]
    assert eight[2][:2] == ("supervised_r50", "mini-sup-s0") and "no counterpart" in eight[2][2]   # r18 only
    six = report_q3.figure_models("figure6", MINI_MODELS)
    assert [m for _, m, _ in six] == ["mini-simclr-s0", "mini-sup-s0"]          # no PIRL / d121 recipe: family
    cap = report_q3.figure_models_caption(eight)
    assert "BYOL: Mini BYOL" in cap and "MoCo-CXR: Mini MoCo-CXR" in cap


def test_figure8_caption_names_the_stand_ins(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    cfg = config.resolve("smoke", cache_dir=str(tmp_path / "cache"), results_dir=str(tmp_path / "res"))
    rows = fake_rows(MINI_MODELS, ["medsynth-chexpert"])
    fig = report_q3.figure8(cfg, rows)
    assert len(fig.axes) == 3
    text = " ".join(t.get_text() for t in fig.texts)
    assert "Supervised (r50): Mini supervised" in text and "BYOL: Mini BYOL" in text
