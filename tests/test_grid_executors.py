"""The grid through each executor (#18): local, a local process pool, submitit (its local cluster: real subprocesses,
no SLURM) and Ray (a local Ray) give the same rows, byte for byte after sorting; the results store is the one place
they meet."""
import pytest

from medssl_utils import config
from medssl_utils.pipeline import grid

pytest.importorskip("submitit")
pytest.importorskip("ray")

MODELS = ["mini-random-s0", "mini-sup-s0"]
DATASETS = ["medsynth-montgomery", "medsynth-chexpert"]


def _cfg(tmp_path, executor, **options):
    return config.resolve("smoke", models=MODELS, datasets=DATASETS, analysis_models=MODELS[:1],
                          cache_dir=str(tmp_path / "cache"), results_dir=str(tmp_path / f"results-{executor}"),
                          n_episodes=40, dataset_scale=0.3, image_size=32, saliency_image_size=24,
                          executor=executor, executor_options=options)


def _csv(rows) -> str:
    keys = ["protocol", "model", "dataset", "metric"]
    return rows.drop(columns=["code_version"]).sort_values(keys).to_csv(index=False)


def test_every_executor_gives_the_same_rows(tmp_path):
    protocols = ["fewshot", "linear", "saliency"]
    local = grid.run(_cfg(tmp_path, "local"), protocols, progress=False)
    sub = grid.run(_cfg(tmp_path, "submitit", cluster="local", folder=str(tmp_path / "submitit"), chunk_size=50),
                   protocols, progress=False)
    ray = grid.run(_cfg(tmp_path, "ray", ray_num_cpus=2), protocols, progress=False)
    pool = grid.run(_cfg(tmp_path, "processes", workers=2), protocols, progress=False)
    assert len(local) >= 10 and set(local.protocol) == set(protocols)
    assert _csv(local) == _csv(sub) == _csv(ray) == _csv(pool)


def test_an_unknown_executor_or_option_is_one_line(tmp_path):
    expected = "parameter 'executor': 'slurm'; expected one of local, processes, submitit, ray"
    with pytest.raises(config.ConfigError, match=expected):
        _cfg(tmp_path, "slurm")
    with pytest.raises(config.ConfigError, match="executor_options: unknown key"):
        _cfg(tmp_path, "submitit", partitoin="gpu")


def test_a_killed_submitit_run_resumes_without_redoing_finished_units(tmp_path):
    """Kill -9 the driver and its local array jobs once the first unit is stored; the same call again finishes
    the grid, and the units stored before the kill keep their files (not computed again)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    folder = tmp_path / "submitit"
    kw = dict(models=["mini-random-s0", "mini-sup-s0", "mini-simclr-s0"], datasets=["medsynth-montgomery"],
              cache_dir=str(tmp_path / "cache"), results_dir=str(tmp_path / "results"), n_episodes=40,
              dataset_scale=0.3, image_size=32, executor="submitit",
              executor_options={"cluster": "local", "folder": str(folder), "chunk_size": 1, "array_parallelism": 1})
    code = ("from medssl_utils import config; from medssl_utils.pipeline import grid; "
            f"grid.run(config.resolve('smoke', **{kw!r}), ['fewshot'], progress=False)")
    proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    rows = tmp_path / "results" / "rows"
    deadline = time.time() + 240
    while not (rows.is_dir() and any(rows.iterdir())) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    subprocess.run(["pkill", "-9", "-f", str(folder)], check=False)        # the array jobs submitit started
    proc.wait()
    before = {p.name: p.stat().st_mtime_ns for p in rows.iterdir()}
    assert 1 <= len(before) < 3, before
    done = grid.run(config.resolve("smoke", **kw), ["fewshot"], progress=False)
    assert set(done.model) == set(kw["models"])
    assert all((rows / n).stat().st_mtime_ns == t for n, t in before.items())
