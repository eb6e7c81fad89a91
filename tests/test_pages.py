"""The reference pages' builders: deviation switches exist with their stated defaults, constants come from
the code, and the dataset/model/mini-zoo tables hold what the registries and manifest say."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from medssl_utils import config
from medssl_utils.book import deviations, pages
from medssl_utils.data.registry import get_spec

ROOT = Path(__file__).resolve().parents[1]
EXISTING = [d for d in deviations.DEVIATIONS if d.status == "exists"]
PLANNED = [d for d in deviations.DEVIATIONS if d.status == "planned"]


# ------------------------------------------------------------------------------------------- deviations
@pytest.mark.parametrize("dev", deviations.DEVIATIONS, ids=lambda d: d.key)
def test_deviation_switch_exists_with_stated_default(dev):
    if dev.status == "planned":
        pytest.skip(f"planned switch, not written yet: {dev.switch.where} (deviation {dev.key!r})")
    ok, msg = deviations.check(dev)
    assert ok, msg


def test_required_deviations_are_recorded():
    keys = {d.key for d in deviations.DEVIATIONS}
    required = {"chexpert_uncertain", "pm_grouping", "chexpert_split", "finetune_restore_best", "saliency_bn_mode",
                "invariance_bn_mode", "invariance_identity", "covariance_shrinkage", "simclr_no_norm",
                "moco_cxr_normalisation", "dip_unnormalised", "linear_c_grid", "fewshot_pool"}
    assert required <= keys, sorted(required - keys)
    assert len(keys) == len(deviations.DEVIATIONS), "deviation keys must be unique"
    for d in deviations.DEVIATIONS:
        assert d.notes and d.paper and d.code and d.ours, d.key


def test_check_catches_a_wrong_default_and_a_missing_parameter():
    good = deviations.by_key("finetune_restore_best")
    wrong = deviations.Deviation(**{**good.__dict__, "switch": deviations.Switch(
        good.switch.module, good.switch.target, good.switch.parameter, False, True)})
    ok, msg = deviations.check(wrong)
    assert not ok and "restore_best" in msg
    with pytest.raises(deviations.DeviationError, match="no parameter 'nope'"):
        deviations.Switch(good.switch.module, good.switch.target, "nope", 1, 2).resolve()
    with pytest.raises(deviations.DeviationError, match="no option 'nope'"):
        deviations.Switch("medssl_utils.data.real.chexpert", "SPEC", "nope", 1, 2).resolve()


def test_dataset_switch_usage_is_a_valid_options_entry():
    usage = deviations.by_key("pm_grouping").switch.usage
    opts = json.loads(usage.split("=", 1)[1])
    assert opts == {"datasets": {"ichallenge_pm": {"pm_grouping": "normal_vs_myopic"}}}
    assert "normal_vs_myopic" in get_spec("ichallenge_pm").label_policy


def test_deviations_table_reads_the_code():
    df = pages.deviations_table()
    assert len(df) == len(deviations.DEVIATIONS)
    assert not df["Default in code"].str.startswith("MISSING").any()
    assert (df.Status == "planned").sum() == len(PLANNED)


# ------------------------------------------------------------------------------------------- constants
def test_constants_table_has_the_papers_fewshot_setting_and_the_profile_values():
    cfg = config.resolve("smoke")
    df = pages.protocol_constants(cfg).set_index("Constant")
    assert df.loc["episodes", "Our default"] == "600" and df.loc["episodes", "Paper"] == "600"
    assert df.loc["support images per class (shots)", "Our default"] == "20"
    assert df.loc["query images per class", "Our default"] == "15"
    assert df.loc["episodes", "This profile"] == str(cfg.n_episodes)
    assert df.loc["max steps", "This profile"] == str(cfg.finetune_max_steps)
    assert df.loc["DIP updates", "This profile"] == str(cfg.dip_steps)
    # the crop keeps the pixels every patch position covered equally: side - 2 (patch - 1)
    side = cfg.saliency_image_size
    patch = int(df.loc["occlusion patch (px)", "This profile"])
    assert int(df.loc["map crop (px)", "This profile"]) == side - 2 * (patch - 1)
    assert df.loc["learning rate", "Our default"] == "0.01"


def test_code_value_errors_name_the_missing_thing():
    with pytest.raises(pages.PagesError, match="no constant 'NOPE'"):
        pages.code_value("medssl_utils.protocols.fewshot", "NOPE")
    with pytest.raises(pages.PagesError, match="no parameter 'nope'"):
        pages.code_value("medssl_utils.protocols.finetune", "finetune.nope")


def test_schema_table_lists_every_results_column():
    from medssl_utils.results import COLUMNS

    assert list(pages.schema_table().Column) == COLUMNS


# ------------------------------------------------------------------------------------------- datasets
def test_real_dataset_table_follows_registry_and_table1():
    from medssl_utils.reference import dataset_table

    df = pages.real_dataset_table()
    assert list(df["Registry name"]) == list(pages.PAPER_ORDER)
    t1 = dataset_table().set_index("dataset")
    images = dict(zip(df["Registry name"], df["Images (paper Table 1)"]))
    assert images == {n: int(t1.loc[n, "n_images"]) for n in pages.PAPER_ORDER}
    ways = dict(zip(df["Registry name"], df["Few-shot ways"]))
    assert ways["chestx14"] == ways["eyepacs"] == 5 and ways["shenzhen"] == 2
    layouts = pages.real_layouts_table()
    assert "pm_grouping='normal_high_vs_pathological'" in layouts.set_index("Dataset").loc["iChallenge-PM",
                                                                                          "Switches (default)"]
    text = pages.real_layouts_markdown()
    assert "PALM-Training400" in text and "trainLabels.csv" in text


def test_medsynth_table_sizes_match_the_generator(tmp_path):
    df = pages.medsynth_table(0.25).set_index("MedSynth set")
    assert df.loc["medsynth-chexpert", "Stands for"] == "CheXpert"
    from medssl_utils.data.registry import load_dataset

    ds = load_dataset("medsynth-montgomery", cache_dir=None, image_size=32, seed=0, scale=0.25)
    assert df.loc["medsynth-montgomery", "Images"] == len(ds)
    assert df.loc["medsynth-montgomery", "Images per class"] == np.bincount(ds.labels).max()
    with pytest.raises(pages.PagesError, match="scale"):
        pages.medsynth_table(0)


def test_downsample_and_chance_level():
    imgs = np.full((3, 8, 8, 3), 51, np.uint8)
    x = pages.downsample(imgs, 4)
    assert x.shape == (3, 48) and np.allclose(x, 0.2)
    with pytest.raises(pages.PagesError, match="pixels"):
        pages.downsample(imgs, 9)
    assert pages.chance_level(np.array([0, 0, 0, 1]), "accuracy") == 0.75
    assert pages.chance_level(np.array([0, 0, 0, 1, 2]), "mean_per_class_accuracy") == pytest.approx(1 / 3)


def test_pixel_baseline_learns_a_separable_task_and_not_noise():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 60)
    signal = rng.normal(size=(120, 20)) + 3 * y[:, None]
    noise = rng.normal(size=(120, 20))
    tr, te = np.arange(0, 120, 2), np.arange(1, 120, 2)
    assert (pages.pixel_baseline(signal[tr], y[tr], signal[te]) == y[te]).mean() > 0.95
    assert (pages.pixel_baseline(noise[tr], y[tr], noise[te]) == y[te]).mean() < 0.8


def test_learnability_table_on_the_smoke_profile(tmp_path):
    cfg = config.resolve("smoke", cache_dir=str(tmp_path), image_size=32)
    df = pages.learnability_table(cfg, ["medsynth-montgomery", "medsynth-amd"]).set_index("MedSynth set")
    from medssl_utils.pipeline import inputs

    man, _ = inputs.manifest(cfg, "medsynth-amd")
    assert df.loc["medsynth-amd", "Test"] == (man.split == "test").sum()
    assert df.loc["medsynth-amd", "Train + val"] == (man.split != "test").sum()
    assert df["Chance (%)"].between(50, 60).all()
    assert df["Pixel baseline (%)"].between(0, 100).all()
    with pytest.raises(pages.PagesError, match="not a MedSynth set"):
        pages.learnability_table(cfg, ["chexpert"])


# ------------------------------------------------------------------------------------------- models
def test_paper_models_table_has_the_13_checkpoints():
    df = pages.paper_models_table()
    assert len(df) == 13
    assert set(df["Registry name"]) >= {"simclr_v1", "moco_cxr_d121", "mimic_chexpert_lr0.1"}
    top1 = df.set_index("Registry name")["ImageNet top-1 (authors' file, %)"]
    from medssl_utils.models.registry import get_spec as model_spec

    assert top1["supervised_r50"] == model_spec("supervised_r50").imagenet_top1
    assert np.isnan(top1["moco_cxr_r18"])
    assert (df["Source URL(s)"].str.startswith("https://")).all()


def test_weights_status_degrades_gracefully(tmp_path):
    table, note = pages.weights_status(None)
    assert table is None and "weights_dir" in note
    table, note = pages.weights_status(tmp_path / "absent")
    assert table is None and "not a folder" in note
    table, note = pages.weights_status(tmp_path)
    assert len(table) == 13 and not table.converted.any() and "0 of 13" in note


def _fake_manifest(path: Path) -> Path:
    models = {}
    for key, accs in (("sup", (0.62, 0.66)), ("simclr", (0.50, 0.54)), ("swav", (0.31, 0.35))):
        for seed, acc in enumerate(accs):
            models[f"mini-{key}-s{seed}"] = {
                "recipe": key, "train_seed": seed, "probe": {"fractal": acc, "cxr": acc - 0.1},
                "loss_curve": [[[10, 3.0], [20, 2.0 - 0.1 * seed]]], "wall_time_s": 100.0 + seed}
    models["mini-mimic-s0"] = {"recipe": "mimic", "train_seed": 0, "probe": {"fractal": 0.3, "cxr": 0.7},
                               "loss_curve": [[[10, 2.0], [20, 1.0]], [[10, 5.0], [20, 4.0]]]}
    random = {f"mini-random-s{s}": {"probe": {"fractal": 0.30 + 0.02 * s, "cxr": 0.40}} for s in range(3)}
    path.write_text(json.dumps({"models": models, "random_baseline": random}))
    return path


def test_minizoo_pages_without_a_manifest(tmp_path):
    zoo = pages.read_minizoo(tmp_path / "manifest.json")
    assert zoo.empty and "does not exist" in zoo.note
    table = pages.minizoo_table(zoo)
    assert len(table) == len(zoo.recipes) and (table["Seeds built"] == "not built yet").all()
    assert pages.loss_curve_figure(zoo) is None and pages.probe_figure(zoo) is None


def test_minizoo_pages_with_a_manifest(tmp_path):
    import matplotlib.pyplot as plt

    zoo = pages.read_minizoo(_fake_manifest(tmp_path / "manifest.json"))
    assert not zoo.empty and zoo.note == ""
    t = pages.minizoo_table(zoo).set_index("Key")
    assert t.loc["sup", "Seeds built"] == "0, 1" and t.loc["byol", "Seeds built"] == "not built yet"
    assert t.loc["sup", "Margin (points)"] == "+32.0"        # mean(62, 66) - mean(30, 32, 34)
    assert t.loc["sup", "Seed spread (points)"] == "4.8" and t.loc["sup", "Margin > spread"] == "yes"   # 2.8 + 2.0
    assert t.loc["simclr", "Margin (points)"] == "+20.0" and t.loc["simclr", "Margin > spread"] == "yes"
    assert t.loc["mimic", "Probe task"] == "cxr" and t.loc["mimic", "Margin (points)"] == "+30.0"
    assert t.loc["mimic", "Margin > spread"] == "too few seeds" and t.loc["byol", "Margin > spread"] == ""
    assert t.loc["swav", "Margin (points)"] == "+1.0" and t.loc["swav", "Margin > spread"] == "NO"   # not hidden
    assert t.loc["sup", "Probe acc. (%)"].startswith("64.0 ± 2.8")
    x, y, bounds = pages._curve(zoo.models["mini-mimic-s0"])
    assert list(x) == [10, 20, 30, 40] and bounds == [20]      # stages laid end to end
    fig = pages.loss_curve_figure(zoo)
    assert len([a for a in fig.axes if a.lines]) == 4
    fig2 = pages.probe_figure(zoo)
    assert len(fig2.axes) == 2                                  # one panel per probe task
    plt.close("all")


def test_bad_manifest_gives_a_note_not_a_crash(tmp_path):
    p = tmp_path / "manifest.json"
    p.write_text("{not json")
    zoo = pages.read_minizoo(p)
    assert zoo.empty and "not valid JSON" in zoo.note


# ------------------------------------------------------------------------------------------- notebooks
@pytest.mark.parametrize("name", ["datasets", "models", "methods"])
def test_notebooks_call_only_existing_builders(name):
    import nbformat

    nb = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    called = set(re.findall(r"pages\.(\w+)", code))
    assert called, f"{name}: no page builder called"
    assert all(hasattr(pages, f) for f in called), sorted(f for f in called if not hasattr(pages, f))
    assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code"), "source notebooks carry no outputs"
    assert any("parameters" in c.metadata.get("tags", []) for c in nb.cells)


def test_terminology_table_groups_the_run_as_table_2():
    """Table 2's counterpart: the paper profile's 13 models fall into the paper's three categories (5 / 3 / 5),
    its 8 datasets into 4 in-domain (chest X-ray) and 4 out-of-domain, all read from the registries."""
    from medssl_utils.models.registry import available

    paper = config.load_profile("paper")
    t = pages.terminology_table(available("paper"), paper["datasets"]).set_index("Term")
    assert {k: len(v.split(", ")) for k, v in t["In this run"].items()} == {
        "supervised": 3, "self-supervised": 5, "domain-specific": 5, "in": 4, "out": 4}
    assert t.loc["in", "In this run"].startswith("CheXpert")
    smoke = pages.terminology_table(["mini-random-s0"], ["medsynth-bach"])
    assert list(smoke.Term) == ["random", "out"]
