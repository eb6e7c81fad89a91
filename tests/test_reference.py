"""The reference rows: transcription of the paper, parsing of the authors' file, and their comparison."""
from __future__ import annotations

import csv
import hashlib
import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from medssl_utils import reference as R
from medssl_utils.results import COLUMNS, SCHEMA

PROTOCOLS = {"fewshot", "linear", "finetune", "saliency", "reconstruction", "invariance", "imagenet"}


@pytest.fixture(scope="module")
def paper():
    return R.paper_rows()


@pytest.fixture(scope="module")
def authors():
    return R.authors_rows()


def cell(df, source, model, dataset, protocol=None, metric=None):
    sel = (df.source == source) & (df.model == model) & (df.dataset == dataset)
    if protocol:
        sel &= df.protocol == protocol
    if metric:
        sel &= df.metric == metric
    hit = df[sel]
    assert len(hit) == 1, (source, model, dataset, protocol, metric, len(hit))
    return hit.iloc[0]


# ---------------------------------------------------------------- schema
@pytest.mark.parametrize("which", ["paper", "authors", "both"])
def test_rows_follow_schema(which):
    df = {"paper": R.paper_rows, "authors": R.authors_rows, "both": R.reference_rows}[which]()
    assert list(df.columns) == COLUMNS == list(SCHEMA)
    assert len(df) > 0
    assert set(df.profile) == {"published"}
    assert set(df.protocol) <= PROTOCOLS
    assert set(df.question) <= {"Q1", "Q2", "Q3"}
    assert df.value.notna().all() and np.isfinite(df.value).all()
    has_ci = df.ci_low.notna()
    assert (has_ci == df.ci_high.notna()).all()
    assert (df.ci_low[has_ci] < df.value[has_ci]).all() and (df.value[has_ci] < df.ci_high[has_ci]).all()
    assert set(df.protocol[has_ci]) == {"fewshot"}
    for e in df.extra:
        assert isinstance(json.loads(e), dict)
    # one row per (source, protocol, model, dataset, metric, n_way)
    ways = df.extra.map(lambda e: json.loads(e).get("n_way"))
    key = df[["source", "protocol", "model", "dataset", "metric"]].assign(n_way=ways)
    assert not key.duplicated().any()
    # accuracies are in percent, the analysis quantities are not
    acc = df.metric.isin(["accuracy", "mean_per_class_accuracy"])
    assert df.value[acc].between(15, 100).all()
    assert df.value[~acc].between(-0.01, 1.0).all()


def test_registry_names(paper, authors):
    assert set(authors.model) == set(R.MODELS)
    assert set(paper.model) == set(R.MODELS[:8]) | set(R.FAMILIES)
    assert set(paper.dataset) == set(R.PAPER_DATASETS) | {"imagenet"}
    assert set(authors.dataset) == set(R.PAPER_DATASETS) | {"stoic", "cifar10", "imagenet"}


# ---------------------------------------------------------------- counts as printed
def test_table_counts(paper):
    counts = paper.groupby("source").size().to_dict()
    # Table 3 prints 10 model rows (8 ImageNet models + MIMIC-CheXpert + MoCo-CXR) x 8 datasets
    assert counts["paper Table 3"] == 10 * 8
    t3 = paper[paper.source == "paper Table 3"]
    assert t3.model.nunique() == 10 and t3.dataset.nunique() == 8
    assert counts["paper Table 4"] == 8 * 4 + 2 * 2        # domain-specific: no EyePACS
    assert counts["paper Table A1"] == 5 * 4
    assert counts["paper Table A2"] == 7 * 4
    assert counts["paper Table A3"] == 5 * 2 + 2
    for t in ("A4", "A5", "A6", "A7"):
        assert counts[f"paper Table {t}"] == 10 * 9
    # family rows say they are "best of" variants
    for e in paper[paper.model.isin(list(R.FAMILIES))].extra:
        d = json.loads(e)
        assert d["best_of"] and "aggregation" in d


def test_dataset_table():
    t = R.dataset_table()
    assert list(t.dataset) == ["chexpert", "shenzhen", "montgomery", "chestx14", "bach", "eyepacs",
                               "ichallenge_amd", "ichallenge_pm"]
    got = dict(zip(t.dataset, zip(t.n_images, t.n_classes, t.type)))
    assert got["chexpert"] == (224316, 14, "CXR")
    assert got["shenzhen"] == (662, 2, "CXR")
    assert got["montgomery"] == (138, 2, "CXR")
    assert got["chestx14"] == (112120, 14, "CXR")
    assert got["bach"] == (400, 4, "BHM")
    assert got["eyepacs"] == (35126, 5, "Fundus")
    assert set(t.domain[t.type == "CXR"]) == {"in"} and set(t.domain[t.type != "CXR"]) == {"out"}


# ---------------------------------------------------------------- spot values typed from the paper's text
SPOTS = [  # (source, model, dataset, protocol, metric, value, ci half-width or None)
    ("paper Table 3", "simclr_v1", "chexpert", "fewshot", "accuracy", 59.73, 0.72),
    ("paper Table 3", "simclr_v1", "ichallenge_amd", "fewshot", "accuracy", 47.90, 0.62),
    ("paper Table 3", "byol", "ichallenge_pm", "fewshot", "accuracy", 95.83, 0.28),
    ("paper Table 3", "supervised_d121", "ichallenge_amd", "fewshot", "accuracy", 77.12, 0.60),
    ("paper Table 3", "mimic_chexpert_best", "chestx14", "fewshot", "accuracy", 34.82, 0.48),
    ("paper Table 3", "moco_cxr_best", "bach", "fewshot", "accuracy", 69.07, 0.82),
    ("paper Table 4", "swav", "eyepacs", "linear", "mean_per_class_accuracy", 37.61, None),
    ("paper Table 4", "moco_v2", "chexpert", "finetune", "accuracy", 79.96, None),
    ("paper Table 4", "mimic_chexpert_best", "chexpert", "linear", "accuracy", 77.28, None),
    ("paper Table 4", "supervised_r50", "eyepacs", "finetune", "mean_per_class_accuracy", 47.08, None),
    ("paper Table A1", "pirl", "bach", "invariance", "invariance_hue", 0.498, None),
    ("paper Table A1", "moco_v2", "ichallenge_amd", "invariance", "invariance_rotation", 0.120, None),
    ("paper Table A2", "moco_cxr_best", "chexpert", "invariance", "invariance_hflip", 0.997, None),
    ("paper Table A3", "pirl", "eyepacs", "invariance", "invariance_multiview", 0.472, None),
    ("paper Table A4", "byol", "shenzhen", "reconstruction", "lpips_alex", 0.96, None),
    ("paper Table A5", "supervised_d121", "ichallenge_amd", "reconstruction", "lpips_squeeze", 0.14, None),
    ("paper Table A6", "mimic_chexpert_best", "bach", "reconstruction", "lpips_vgg", 1.00, None),
    ("paper Table A7", "simclr_v1", "imagenet", "saliency", "attentive_diffusion", 0.26, None),
    ("paper Table A7", "moco_cxr_best", "chexpert", "saliency", "attentive_diffusion", 0.33, None),
]


@pytest.mark.parametrize("source,model,dataset,protocol,metric,value,ci", SPOTS)
def test_spot_values(paper, source, model, dataset, protocol, metric, value, ci):
    r = cell(paper, source, model, dataset, protocol, metric)
    assert r.value == pytest.approx(value, abs=1e-9)
    if ci is None:
        assert np.isnan(r.ci_low)
    else:
        assert r.ci_low == pytest.approx(value - ci, abs=1e-9)
        assert r.ci_high == pytest.approx(value + ci, abs=1e-9)


def test_figure8_and_text_values_agree_with_tables(paper):
    # Figure 8 caption: attentive diffusion on CheXpert 0.33 (MoCo-CXR), 0.50 (BYOL), 0.47 (Supervised r50);
    # s5.3: MoCo-CXR h-flip invariance 0.997 on CheXpert, 0.778 on ChestX.
    ad = {m: cell(paper, "paper Table A7", m, "chexpert").value for m in ("moco_cxr_best", "byol", "supervised_r50")}
    assert ad == {"moco_cxr_best": 0.33, "byol": 0.50, "supervised_r50": 0.47}
    assert cell(paper, "paper Table A2", "moco_cxr_best", "chestx14").value == 0.778


# ---------------------------------------------------------------- the authors' file
def test_authors_file_is_verbatim_copy():
    # sha256 of jonahanton/SSL_medicalimaging results/full_data.csv as copied (CRLF line ends kept)
    data = R.AUTHORS_FILE.read_bytes()
    assert hashlib.sha256(data).hexdigest() == "bb1f0fcb11f3d5b1c24bb1f0d7439a73f378815dbd34bd3f503caf4c65a5893b"
    with open(R.AUTHORS_FILE, newline="") as f:
        rows = list(csv.reader(f))
    assert len(rows) == 14 and all(len(r) == 92 for r in rows)


def test_parser_maps_all_models_and_columns(authors):
    assert R.authors_models() == list(R.MODELS)
    assert set(R.FILE_MODELS.values()) == set(R.MODELS)
    # every non-empty metric cell became a row (89 metric columns minus 11 CI columns = 78 value columns)
    with open(R.AUTHORS_FILE, newline="") as f:
        recs = list(csv.DictReader(f))
    value_cols = [c for c in recs[0] if c not in ("Models", "Model Type", "Marker Size")
                  and not c.endswith(" uncertainty")]
    assert len(value_cols) == 78
    assert len(authors) == sum(1 for r in recs for c in value_cols if r[c].strip() not in ("", "nan"))
    assert set(json.loads(e)["column"] for e in authors.extra) == set(value_cols)


def test_authors_values(authors):
    src = R.AUTHORS_SOURCE
    # few-shot: fractions -> percent, uncertainty -> CI half-width
    r = cell(authors, src, "moco_v2", "shenzhen", "fewshot")
    assert (r.value, r.ci_low, r.ci_high) == (73.76, 73.10, 74.42)
    r = cell(authors, src, "simclr_v1", "ichallenge_amd", "fewshot")
    assert r.value == 74.90
    # the "mimic-cxr" names are MoCo-CXR
    assert cell(authors, src, "moco_cxr_d121", "chexpert", "finetune").value == 74.55
    assert cell(authors, src, "mimic_chexpert_lr0.01", "chestx14", "fewshot").value == 33.73
    # cifar10 has a 2-way and a 5-way row
    cif = authors[(authors.dataset == "cifar10") & (authors.model == "supervised_r50")]
    assert sorted(json.loads(e)["n_way"] for e in cif.extra) == [2, 5]
    # ImageNet top-1 only for the 8 ImageNet models
    top1 = authors[authors.protocol == "imagenet"]
    assert set(top1.model) == set(R.MODELS[:8])
    assert cell(authors, src, "supervised_r18", "imagenet", "imagenet").value == 72.12
    # linear EyePACS is mean per-class accuracy; attentive diffusion stays a fraction
    assert cell(authors, src, "pirl", "eyepacs", "linear").metric == "mean_per_class_accuracy"
    assert cell(authors, src, "moco_v2", "chexpert", "saliency").value == 0.4864


def test_lpips_mean_is_mean_of_three_nets(authors):
    lp = authors[authors.protocol == "reconstruction"].pivot_table(index=["model", "dataset"], columns="metric",
                                                                   values="value")
    assert len(lp) == 13 * 10
    mean3 = lp[["lpips_alex", "lpips_vgg", "lpips_squeeze"]].mean(axis=1)
    assert np.allclose(mean3, lp["lpips_mean"], atol=2e-6)


# ---------------------------------------------------------------- paper vs file
def test_disagreements(paper):
    d = R.disagreements()
    assert set(d.columns) >= {"source", "model", "dataset", "paper_value", "file_value", "kind"}
    amd = d[(d.model == "simclr_v1") & (d.dataset == "ichallenge_amd") & (d.quantity == "value")]
    assert len(amd) == 1
    assert amd.iloc[0].paper_value == 47.90 and amd.iloc[0].file_value == 74.90
    assert amd.iloc[0].kind == "substantive"
    # the MoCo-CXR h-flip CheXpert value (paper 0.997) vs the file's copied 0.7784
    mc = d[(d.model == "moco_cxr_best") & (d.dataset == "chexpert") & (d.metric == "invariance_hflip")]
    assert len(mc) == 1 and mc.iloc[0].file_value == pytest.approx(0.7784)
    # values the paper prints but the file lacks
    miss = d[d.kind == "missing_in_file"]
    assert set(zip(miss.model, miss.dataset)) == {("supervised_r18", "imagenet"), ("supervised_d121", "imagenet")}
    # everything not listed agrees at the printed precision: re-check independently with Decimal rounding
    listed = set(zip(d.source, d.model, d.dataset, d.metric, d.quantity))
    look = R.authors_rows().set_index(["protocol", "metric", "dataset", "model"])
    n_checked = 0
    for r in paper[~paper.model.isin(list(R.FAMILIES))].itertuples():
        if (r.source, r.model, r.dataset, r.metric, "value") in listed:
            continue
        dec = json.loads(r.extra)["decimals"]
        fv = look.loc[(r.protocol, r.metric, r.dataset, r.model), "value"]
        assert abs(round(fv, dec) - r.value) < 10 ** -dec / 2 + 1e-9, (r.source, r.model, r.dataset, fv, r.value)
        n_checked += 1
    assert n_checked > 350


def test_family_cells_are_per_cell_maxima():
    b = R.best_of_matches()
    assert len(b) == 2 * 8 + 4 + 2 * 4 + 2 + 4 * 2 * 9
    maxed = b[b.source.isin(["paper Table 3", "paper Table 4", "paper Table A4", "paper Table A5",
                             "paper Table A6", "paper Table A7"])]
    assert maxed.equals_max.all()
    # and the maximum is not always the same variant: the printed row mixes variants
    t3 = maxed[(maxed.source == "paper Table 3") & (maxed.model == "mimic_chexpert_best")]
    assert t3.matched_variants.nunique() == 3


# ---------------------------------------------------------------- correlations
def test_published_correlations_and_recompute(authors):
    c = R.published_correlations()
    stated = c[c.r.notna() & (c.source == "paper")]
    assert len(stated) == 1
    s = stated.iloc[0]
    assert (s.r, s.p) == (0.82, 0.0068)
    # the stated value is recomputable from the authors' file: 9 models, MIMIC-CheXpert lr0.01 left out
    x = authors[(authors.protocol == s.x_protocol) & (authors.metric == s.x_metric) & (authors.dataset == s.x_dataset)]
    y = authors[(authors.protocol == s.y_protocol) & (authors.metric == s.y_metric) & (authors.dataset == s.y_dataset)]
    xy = x.set_index("model").value.to_frame("x").join(y.set_index("model").value.rename("y"), how="inner")
    assert len(xy) == 10
    r9, p9 = stats.pearsonr(*xy.drop(index="mimic_chexpert_lr0.01").values.T)
    assert round(r9, 2) == s.r and round(p9, 4) == s.p
    r10, _ = stats.pearsonr(*xy.values.T)
    assert abs(r10 - s.r) > 0.3
    # every correlation row names quantities that exist in the reference rows
    have = set(zip(authors.protocol, authors.metric, authors.dataset))
    for r in c.itertuples():
        assert (r.x_protocol, r.x_metric, r.x_dataset) in have, r.what
        assert (r.y_protocol, r.y_metric, r.y_dataset) in have, r.what
    assert {"s5.3 (also Figure A1)", "Figure 7 caption; s5.3"} <= set(c["where"])
    assert all(any(w.startswith(f) for w in c["where"]) for f in ("Figure A1", "Figure A2", "Figure A3", "Figure A4"))


def test_notebook_correlations_recompute(authors):
    c = R.published_correlations()
    nb = c[c.source.str.startswith("authors' notebook") & c.p.notna()]
    assert len(nb) == 2
    top1 = authors[authors.protocol == "imagenet"].set_index("model").value
    for r in nb.itertuples():
        y = authors[(authors.protocol == "fewshot") & (authors.dataset == r.y_dataset)]
        if r.y_dataset == "cifar10":
            y = y[y.extra.map(lambda e: json.loads(e)["n_way"] == 2)]
        xy = top1.to_frame("x").join(y.set_index("model").value.rename("y"), how="inner")
        assert len(xy) == 8
        rr, pp = stats.pearsonr(xy.x, xy.y)
        assert round(rr, 3) == pytest.approx(r.r, abs=1e-9)
        assert pp == pytest.approx(r.p, rel=0.05)


# ---------------------------------------------------------------- known issues, names, errors
def test_identical_values_flags_known_copies(authors):
    t = R.identical_values()
    desc = " | ".join(t.description)
    assert "'invariance hflip chestx' of moco_cxr_d121 equals 'invariance hflip chexpert' of moco_cxr_d121" in desc
    assert "'attentive diffusion shenzhencxr' of mimic_chexpert_lr0.01" in desc
    r = cell(authors, R.AUTHORS_SOURCE, "moco_cxr_d121", "chestx14", "invariance")
    assert "identical_value_note" in json.loads(r.extra)


def test_display_names_cover_everything(paper):
    for m in set(paper.model) | set(R.MODELS):
        assert m in R.MODEL_DISPLAY and m in R.MODEL_DISPLAY_SHORT
    assert R.MODEL_DISPLAY["simclr_v1"] == "SimCLR-v1" and R.MODEL_DISPLAY_SHORT["simclr_v1"] == "SimCLR"
    for d in R.PAPER_DATASETS:
        assert d in R.DATASET_DISPLAY and d in R.DATASET_DISPLAY_SHORT
    assert R.DATASET_DISPLAY_SHORT["ichallenge_amd"] == "iC-AMD"


def test_pm_rows_carry_label_mapping_note(paper, authors):
    for df in (paper, authors):
        pm = df[(df.protocol == "fewshot") & (df.dataset == "ichallenge_pm")]
        assert len(pm) and all("pm_label_mapping" in json.loads(e) for e in pm.extra)


def test_unknown_column_is_one_clear_error():
    from medssl_utils.reference.authors import _parse_file_column

    with pytest.raises(R.ReferenceDataError, match="unrecognised column 'few-shot bach'"):
        _parse_file_column("few-shot bach")
    with pytest.raises(R.ReferenceDataError, match="unknown dataset 'kvasir'"):
        _parse_file_column("linear kvasir")


def test_returned_frames_are_copies():
    a = R.paper_rows()
    a.loc[:, "value"] = -1.0
    assert (R.paper_rows().value != -1.0).all()
    assert isinstance(R.reference_rows(), pd.DataFrame)
