"""Issue #19 defect 4: what a run would find at hour two is found before any work, with one line each."""
from pathlib import Path

import pytest

from medssl_utils import cli, config
from medssl_utils.pipeline import grid
from medssl_utils.preflight import PreflightError
from medssl_utils.protocols.fewshot import FewShotError
from tests.fixtures import real_datasets as fx


def _one_line(capsys, argv, *needles):
    assert cli.main(argv) == 2
    # progress bars may precede it on the terminal (carriage returns); the error is the one last line
    stderr = capsys.readouterr().err
    err = stderr.replace("\r", "\n").strip().splitlines()[-1]
    assert err.startswith("medssl: ") and stderr.count("medssl: ") == 1 and "Traceback" not in stderr, stderr
    for n in needles:
        assert n in err, err
    return err


def test_check_refuses_a_data_root_without_the_dataset_folders(tmp_path, capsys):
    """Before: `medssl check --profile paper -p data_root=EMPTY` said "ok"."""
    _one_line(capsys, ["check", "--profile", "paper", "-p", f"data_root={tmp_path}", "--quick"],
              "no folder for 8 of 8 real dataset(s)", "chexpert/", "ichallenge_amd")


def test_check_refuses_paper_models_without_weights(tmp_path, capsys):
    """Before: "ok", then the run failed with "converted weights not found at None"."""
    fx.write_montgomery(tmp_path, 2)
    _one_line(capsys, ["check", "--profile", "paper", "-p", f"data_root={tmp_path}", "-p", "datasets=[montgomery]",
                       "--quick"], "weights_dir", "medssl weights fetch")
    weights = tmp_path / "w"
    weights.mkdir()
    _one_line(capsys, ["check", "--profile", "paper", "-p", f"data_root={tmp_path}", "-p", "datasets=[montgomery]",
                       "-p", f"weights_dir={weights}", "-p", "models=[byol, swav]", "-p", "analysis_models=[byol]",
                       "--quick"], "missing for 2 model(s)", "byol.pt", "swav.pt")


def test_notebooks_refuse_missing_weights_before_executing_any(tmp_path, capsys):
    fx.write_montgomery(tmp_path, 2)
    out = tmp_path / "out"
    _one_line(capsys, ["notebooks", "--profile", "paper", "--out", str(out), "-p", f"data_root={tmp_path}",
                       "-p", "datasets=[montgomery]"], "weights_dir")
    assert not out.exists() or not list(out.iterdir())


@pytest.mark.parametrize("stride, size, ok", [(1, 32, True), (2, 32, False), (10, 242, True), (11, 242, False),
                                              (4, 100, True), (5, 100, False)])
def test_saliency_stride_beyond_the_scaled_patch_is_refused_by_config(tmp_path, stride, size, ok):
    """Before: found at run time by occlusion_saliency. The patch is 10 px at 242 px and scales with the image."""
    kw = dict(cache_dir=str(tmp_path), results_dir=str(tmp_path / "r"), saliency_image_size=size,
              options={"analysis": {"saliency": {"stride": stride}}})
    if ok:
        config.resolve("smoke", **kw)
    else:
        with pytest.raises(config.ConfigError, match=r"options.analysis.saliency.stride.*patch side"):
            config.resolve("smoke", **kw)


@pytest.mark.parametrize("options, needle", [
    ({"fewshots": {}}, "unknown section"),
    ({"finetune": {"learning_rate": 0.1}}, "options.finetune"),
    ({"datasets": {"medsynth-bach": {"official_valid": True}}}, "options.datasets.medsynth-bach"),
    ({"datasets": {"chexpert": {}}}, "not one of this run's datasets"),
])
def test_unknown_options_are_refused_by_config(tmp_path, options, needle):
    """Before: an unknown finetune switch was a TypeError deep in a unit; a typo'd section was silently ignored."""
    with pytest.raises(config.ConfigError, match=needle):
        config.resolve("smoke", cache_dir=str(tmp_path), results_dir=str(tmp_path / "r"), options=options)


def test_small_fewshot_classes_fail_before_any_extraction(tmp_path):
    """Before: the episodes were drawn after the first model's features were extracted."""
    cfg = config.resolve("smoke", models=["mini-random-s0"], datasets=["medsynth-chexpert", "medsynth-bach"],
                         cache_dir=str(tmp_path / "cache"), results_dir=str(tmp_path / "r"), dataset_scale=0.2,
                         image_size=32, n_episodes=10)
    with pytest.raises(FewShotError, match="medsynth-bach.*fewer than"):
        grid.run(cfg, ["fewshot"], progress=False)
    assert not (tmp_path / "cache" / "features").exists()
    assert not (tmp_path / "r").exists() or not list(Path(tmp_path / "r").rglob("*.csv"))


def _montgomery_cfg(tmp_path, **options):
    return config.resolve("smoke", models=["mini-random-s0"], datasets=["montgomery"], data_root=str(tmp_path / "data"),
                          cache_dir=str(tmp_path / "cache"), results_dir=str(tmp_path / "r"), n_episodes=5,
                          options={"datasets": {"montgomery": options}} if options else {})


def test_a_corrupt_image_is_found_before_extraction_and_skip_needs_no_restart(tmp_path):
    """Before: the corrupt file stopped extraction part-way, and on_bad_image=skip then redid it all."""
    truth = fx.write_montgomery(tmp_path / "data", 40)
    stem = sorted(truth)[7]
    bad = next((tmp_path / "data").rglob(f"CXR_png/{stem}.png"))
    fx.truncate(bad, 0.3)
    with pytest.raises(PreflightError, match=rf"'montgomery'.*1 unreadable image.*{stem}.png.*on_bad_image: skip"):
        grid.run(_montgomery_cfg(tmp_path), ["fewshot"], progress=False)
    assert not (tmp_path / "cache" / "features").exists()     # nothing was extracted
    with pytest.warns(UserWarning, match="skipped 1 of 80"):
        rows = grid.run(_montgomery_cfg(tmp_path, on_bad_image="skip"), ["fewshot"], progress=False)
    assert len(rows) == 1 and rows.value.iloc[0] > 0


def test_the_image_scan_is_done_once_per_dataset_version(tmp_path, monkeypatch):
    from medssl_utils.data.real import _common

    calls = []
    real = _common.image_problem
    monkeypatch.setattr(_common, "image_problem", lambda p: calls.append(p) or real(p))
    fx.write_montgomery(tmp_path / "data", 40)
    cfg = _montgomery_cfg(tmp_path)
    grid.run(cfg, ["fewshot"], progress=False)
    assert len(calls) == 80 and len(list((tmp_path / "cache" / "image-scans").glob("montgomery-*.json"))) == 1
    grid.run(cfg, ["fewshot"], progress=False, models=["mini-random-s1"])   # new unit, same dataset
    assert len(calls) == 80                                                       # not scanned again


def test_data_errors_reach_the_cli_as_one_line(tmp_path, capsys):
    """Defect 5: a few-shot/data error used to print a 15-50 line traceback from `medssl run`."""
    _one_line(capsys, ["run", "--profile", "smoke", "--protocols", "fewshot", "-p", "models=[mini-random-s0]",
                       "-p", "datasets=[medsynth-bach]", "-p", "dataset_scale=0.2", "-p", f"cache_dir={tmp_path}/c",
                       "-p", f"results_dir={tmp_path}/r"], "medsynth-bach", "fewer than")
    stem = sorted(fx.write_montgomery(tmp_path / "data", 40))[0]
    fx.truncate(next((tmp_path / "data").rglob(f"CXR_png/{stem}.png")), 0.3)
    _one_line(capsys, ["run", "--profile", "smoke", "--protocols", "fewshot", "-p", "models=[mini-random-s0]",
                       "-p", "datasets=[montgomery]", "-p", f"data_root={tmp_path}/data", "-p", f"cache_dir={tmp_path}/c",
                       "-p", f"results_dir={tmp_path}/r"], "unreadable image")
