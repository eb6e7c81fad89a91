"""The rehearsal of the paper path (#19): fabricated publisher layouts, random originals converted by the real
converters, the `paper` profile's grid. The CI part runs two models on two datasets through every protocol and
analysis; the whole rehearsal with notebooks and book is `make rehearsal` (or MEDSSL_SLOW=1 for the CI-sized one)."""
import os

import pytest

from medssl_utils import config, rehearsal
from medssl_utils.data.registry import get_spec as dataset_spec
from medssl_utils.pipeline import grid, inputs


@pytest.fixture(scope="module")
def paper_cfg(tmp_path_factory):
    out = tmp_path_factory.mktemp("rehearsal")
    rehearsal.fabricate_data(out / "data", rehearsal.CI_DATASETS)
    rehearsal.fabricate_weights(out / "weights", rehearsal.CI_MODELS)
    params = rehearsal.parameters(out, rehearsal.CI_MODELS, rehearsal.CI_DATASETS)
    # CI budget: both models through few-shot and linear, the first through finetune and the analyses
    params.update(finetune_models=list(rehearsal.CI_MODELS[:1]), analysis_models=list(rehearsal.CI_MODELS[:1]))
    return config.resolve("paper", **params)


def _grid(cfg, protocols):
    rows = grid.run(cfg, protocols, progress=False)
    got = {(r.protocol, r.model, r.dataset) for r in rows.itertuples()}
    want = {(p, m, d) for m in rehearsal.CI_MODELS for d in rehearsal.CI_DATASETS for p in protocols
            if (p == "fewshot" or p in dataset_spec(d).manyshot) and (p != "finetune" or m in cfg.finetune_models)}
    assert got == want and len(want) >= 4
    assert rows.value.between(0, 100).all()


def test_the_paper_grid_runs_on_the_rehearsal(paper_cfg):
    """Few-shot and linear for both models on both datasets: the paper path from files to result rows (CI)."""
    _grid(paper_cfg, ["fewshot", "linear"])


@pytest.mark.skipif(not os.environ.get("MEDSSL_SLOW"), reason="about 5 min: set MEDSSL_SLOW=1")
def test_finetune_and_analyses_run_on_the_rehearsal(paper_cfg):
    cfg = paper_cfg
    _grid(cfg, ["fewshot", "linear", "finetune"])
    q3 = grid.run(cfg, grid.ANALYSES, progress=False)
    assert set(q3.model) == set(cfg.analysis_models) and {"saliency", "reconstruction"} <= set(q3.protocol)


def test_every_page_says_it_is_a_rehearsal(paper_cfg):
    assert "REHEARSAL: random weights, fabricated images" in config.describe(paper_cfg)
    assert "REHEARSAL" not in config.describe(config.resolve("smoke"))


def test_the_converted_weights_are_checked_like_real_ones(paper_cfg):
    from medssl_utils.models import fetch

    status = fetch.status(paper_cfg.weights_dir)
    assert set(rehearsal.CI_MODELS) <= set(status[status.columns[0]])
    for m in rehearsal.CI_MODELS:
        bb = inputs.backbone(paper_cfg, m)
        assert bb.weights_hash and not bb.weights_hash.startswith("random")


@pytest.mark.skipif(not os.environ.get("MEDSSL_SLOW"), reason="7 min: set MEDSSL_SLOW=1 (make rehearsal runs all 13 x 8)")
def test_ci_sized_rehearsal_builds_the_book(tmp_path):
    rehearsal.rehearse(tmp_path, models=rehearsal.CI_MODELS, datasets=rehearsal.CI_DATASETS, log=lambda *_: None)
    html = (tmp_path / "site" / "_build" / "html" / "book" / "generated" / "q1_supervised_vs_selfsupervised.html")
    assert "REHEARSAL" in html.read_text()


def test_the_gpu_check_skips_cleanly_without_cuda():
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"
    res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert res.returncode == 0 and res.stdout.strip() == "skipped: no CUDA device", res.stdout + res.stderr


def test_the_pages_show_a_counterpart_of_each_of_the_papers_26_tables_and_figures():
    """Read off the committed smoke notebooks (the book's pages, executed): every table and figure of the paper
    has a section that names it and draws it; Table 3's counterpart names every model and dataset of the run."""
    from pathlib import Path

    cfg = config.resolve("smoke")
    shown = rehearsal.counterparts(Path(__file__).parent / "notebooks", cfg.models, cfg.datasets)
    assert len(shown) == 26 and (shown["shown as"] != "missing").all(), shown[shown["shown as"] == "missing"]
    assert set(shown["shown as"]) == {"table", "figure"}
    t3 = shown.set_index("counterpart").loc["Table 3"]
    assert t3["models named"] == len(cfg.models) and t3["datasets named"] == len(cfg.datasets)


def test_every_fabricated_dataset_leaves_each_class_enough_for_a_few_shot_episode(tmp_path):
    """The rehearsal fabricates as few images as the protocols allow (extraction of 13 models dominates its
    time): each class keeps 37 non-test images under the patient-level split, 35 being one episode's need."""
    from medssl_utils.protocols.fewshot import N_QUERY, N_SHOT
    from medssl_utils.rehearsal.publishers import WRITERS

    names = list(WRITERS)
    rehearsal.fabricate_data(tmp_path / "data", names)
    (tmp_path / "weights").mkdir()
    cfg = config.resolve("paper", **rehearsal.parameters(tmp_path, ["supervised_r18"], names))
    total = 0
    for name in names:
        man, _ = inputs.manifest(cfg, name)
        per_class = man[man.split != "test"].groupby("label").size()
        assert per_class.min() >= N_SHOT + N_QUERY, (name, per_class.to_dict())
        total += len(man)
    assert total <= 1500
