"""Scale-out (medssl_utils.scale): the same files from every executor, resume, retries, options errors, and Ray Data
extraction into the same cache entry as ``features.extract``.

Engines are real: submitit's LocalExecutor runs array tasks as subprocesses, Ray runs a 2-CPU local instance
(started once for the module). Toy units write one small file each; marker files count the calls.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import uuid
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from medssl_utils.data.base import ArrayImageDataset, DatasetError
from medssl_utils.errors import MedsslError
from medssl_utils.scale.executors import EXECUTORS, ExecutorOptions, execute
from medssl_utils.storage import atomic_write_text

HERE = Path(__file__).resolve().parent


# ---------------------------------------------------------------- toy units (module level: they must pickle)
def write_unit(root: str, unit: str) -> None:
    """Writes out/<unit>.txt; ``odd*`` fail while ``broken`` exists, ``flaky*`` fail once, ``bad*`` always."""
    r = Path(root)
    (r / "calls").mkdir(parents=True, exist_ok=True)
    (r / "calls" / f"{unit}.{uuid.uuid4().hex}").touch()
    if unit.startswith("odd") and (r / "broken").exists():
        raise RuntimeError(f"{unit}: broken")
    if unit.startswith("flaky") and not (r / f"flaked-{unit}").exists():
        (r / f"flaked-{unit}").touch()
        raise RuntimeError(f"{unit}: first attempt fails")
    if unit.startswith("bad"):
        raise ValueError(f"{unit} always fails\nsecond line of the message")
    atomic_write_text(r / "out" / f"{unit}.txt", hashlib.sha256(unit.encode()).hexdigest() * 3)


def unit_done(root: str, unit: str) -> bool:
    return (Path(root) / "out" / f"{unit}.txt").is_file()


def calls(root: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    for p in (root / "calls").glob("*"):
        out[p.name.split(".")[0]] = out.get(p.name.split(".")[0], 0) + 1
    return out


def run(root: Path, units, executor: str, **options):
    opts = {"cluster": "local", "folder": str(root.parent / "submitit"), "cpus_per_task": 1, "chunk_size": 3,
            "timeout_min": 5, **options}
    return execute(units, partial(write_unit, str(root)), is_done=partial(unit_done, str(root)), executor=executor,
                   options=opts)


@pytest.fixture(scope="module")
def importable():
    """Subprocesses (submitit) and Ray workers unpickle this module's functions by name: let them import it."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])))
        yield


@pytest.fixture(scope="module")
def ray_up(importable):
    ray = pytest.importorskip("ray")
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    yield ray
    if started:
        ray.shutdown()


# ---------------------------------------------------------------- options
@pytest.mark.parametrize("options, key", [
    ({"partiton": "gpu"}, "partiton"),
    ({"partition": 3}, "executor_options.partition"),
    ({"gpus_per_task": "1"}, "executor_options.gpus_per_task"),
    ({"chunk_size": 0}, "executor_options.chunk_size"),
    ({"max_retries": True}, "executor_options.max_retries"),
    ({"cluster": "kubernetes"}, "executor_options.cluster"),
    ({"ray_address": "auto", "ray_num_cpus": 4}, "executor_options.ray_num_cpus"),
    ({"workers": 0}, "executor_options.workers"),
    (["partition"], "executor_options"),
])
def test_options_errors_are_one_line_naming_the_key(options, key):
    with pytest.raises(MedsslError) as err:
        ExecutorOptions.from_options(options)
    msg = str(err.value)
    assert key in msg and "\n" not in msg


def test_options_defaults_and_values():
    assert ExecutorOptions.from_options(None) == ExecutorOptions()
    o = ExecutorOptions.from_options({"partition": "gpu", "gpus_per_task": 1, "folder": Path("/x")})
    assert (o.partition, o.gpus_per_task, o.folder, o.chunk_size, o.max_retries) == ("gpu", 1, "/x", 4, 2)
    assert EXECUTORS == ("local", "processes", "submitit", "ray")


def test_unknown_executor_and_missing_extra(monkeypatch, tmp_path):
    with pytest.raises(MedsslError, match="unknown executor 'dask'"):
        run(tmp_path, ["u0"], "dask")
    monkeypatch.setitem(sys.modules, "submitit", None)    # as if the extra were not installed
    with pytest.raises(MedsslError) as err:
        run(tmp_path, ["u0"], "submitit")
    assert str(err.value) == "executor 'submitit' needs the optional extra: pip install -e '.[cluster]'"


# ---------------------------------------------------------------- executors
def test_every_executor_writes_the_same_files(tmp_path, ray_up):
    pytest.importorskip("submitit")
    units = [f"u{i:02d}" for i in range(7)]
    got = {}
    for ex in EXECUTORS:
        root = tmp_path / ex
        assert run(root, units, ex) == []
        got[ex] = {p.name: p.read_bytes() for p in sorted((root / "out").iterdir())}
        assert calls(root) == {u: 1 for u in units}
        assert run(root, units, ex) == [] and calls(root) == {u: 1 for u in units}   # all done: nothing submitted
    assert len(got["local"]) == len(units)
    assert got["local"] == got["submitit"] == got["ray"]


def test_processes_share_the_cores_and_one_worker_runs_here(tmp_path, importable, monkeypatch):
    from medssl_utils.scale import executors

    monkeypatch.setattr(executors, "_cores", lambda: 4)
    opts = ExecutorOptions.from_options
    assert executors.process_workers(opts({"workers": 3}), 10) == 3
    assert executors.process_workers(opts({"workers": 3}), 2) == 2           # never more workers than units
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    assert executors.process_workers(opts(None), 10) == 4                    # one per core
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    assert executors.process_workers(opts(None), 10) == 1                    # the units would share one GPU
    root = tmp_path / "one"
    assert run(root, ["a", "b"], "processes", workers=1) == []             # in this process: no pool
    assert {p.name.split(".")[0] for p in (root / "calls").iterdir()} == {"a", "b"}


def test_submitit_resume_redoes_only_undone_units(tmp_path, importable):
    pytest.importorskip("submitit")
    root = tmp_path / "r"
    root.mkdir()
    (root / "broken").touch()
    units = ["even0", "odd1", "even2", "odd3", "even4"]
    assert run(root, units, "submitit", max_retries=0) == ["odd1", "odd3"]
    assert calls(root) == {u: 1 for u in units}
    (root / "broken").unlink()
    assert run(root, units, "submitit", max_retries=0) == []
    assert calls(root) == {"even0": 1, "odd1": 2, "even2": 1, "odd3": 2, "even4": 1}
    assert sorted(p.stem for p in (root / "out").iterdir()) == sorted(units)


@pytest.mark.parametrize("executor", ["processes", "submitit", "ray"])
def test_retries_until_done_and_return_what_never_finishes(tmp_path, executor, request, capfd):
    if executor != "processes":
        pytest.importorskip(executor)
    request.getfixturevalue("ray_up" if executor == "ray" else "importable")
    root = tmp_path / "r"
    units = ["ok0", "flaky1", "bad2", "ok3"]
    assert run(root, units, executor, max_retries=2, chunk_size=2) == ["bad2"]
    assert calls(root) == {"ok0": 1, "flaky1": 2, "bad2": 3, "ok3": 1}
    err = capfd.readouterr().err
    assert "ValueError: bad2 always fails" in err and "second line" not in err


# ---------------------------------------------------------------- Ray Data extraction
@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    """The mini-zoo's supervised backbone (32 px, 128-d) and a few hundred MedSynth images."""
    from medssl_utils.data.registry import load_dataset
    from medssl_utils.models.registry import load_backbone

    ds = load_dataset("medsynth-chexpert", image_size=32, seed=0, n_per_class=100, scale=1.0,
                      cache_dir=tmp_path_factory.mktemp("data"))
    return load_backbone("mini-sup-s0"), ds


def test_ray_extract_matches_extract_and_shares_its_cache_entry(tmp_path, ray_up, mini, monkeypatch):
    from medssl_utils import features
    from medssl_utils.scale import ray_extract

    bb, ds = mini
    assert len(ds) >= 200
    ref = features.extract(bb, ds, tmp_path / "a", "mh", device="cpu", progress=False)
    # loader (0.5 CPU) and actor (1 CPU) differ, so Ray Data keeps them apart: the layout used with GPU actors
    got = ray_extract.extract_ray(bb, ds, tmp_path / "b", "mh", batch_size=32, num_actors=1, device="cpu",
                                  num_cpus_per_loader=0.5)
    assert got.key == ref.key and got.ids == ref.ids == list(ds.ids)
    assert got.features.shape == ref.features.shape and got.features.dtype == np.float32
    assert np.abs(np.asarray(got.features) - np.asarray(ref.features)).max() <= 1e-6
    entry_a, entry_b = (tmp_path / d / "features" / ref.key for d in ("a", "b"))
    assert sorted(p.name for p in entry_b.iterdir()) == sorted(p.name for p in entry_a.iterdir())
    assert json.loads((entry_b / "meta.json").read_text()) == json.loads((entry_a / "meta.json").read_text())

    def no_work(*a, **k):
        raise AssertionError("recomputed a complete entry")

    monkeypatch.setattr(ray_extract, "_fill", no_work)
    monkeypatch.setattr(features, "_extract_locked", no_work)
    again = ray_extract.extract_ray(bb, ds, tmp_path / "b", "mh")          # its own entry: a hit
    assert np.array_equal(np.asarray(again.features), np.asarray(got.features))
    assert features.extract(bb, ds, tmp_path / "b", "mh", progress=False).key == ref.key   # and extract reads it
    assert ray_extract.extract_ray(bb, ds, tmp_path / "a", "mh").ids == ref.ids            # and the reverse


def test_ray_extract_refuses_a_pool_that_cannot_fit(tmp_path, ray_up, mini):
    from medssl_utils.features import FeatureError
    from medssl_utils.scale.ray_extract import extract_ray

    bb, ds = mini
    with pytest.raises(FeatureError) as err:
        extract_ray(bb, ds, tmp_path, "mh", num_actors=4, device="cpu")
    assert "4 actor(s)" in str(err.value) and "\n" not in str(err.value)
    assert not list((tmp_path / "features").glob("*/features*.npy"))


def _per_image(ds, cls, n=48):
    """The first ``n`` images as ``cls`` (a subclass overriding ``image``: the per-image PIL path, as files take)."""
    return cls(name="toy", ids=list(ds.ids[:n]), labels=ds.labels[:n], classes=ds.classes, images=ds.images[:n],
               fingerprint="per-image")


class PerImage(ArrayImageDataset):
    def image(self, i):
        return super().image(i)


class Unreadable(ArrayImageDataset):
    def image(self, i):
        if i == 7:
            raise DatasetError(f"unreadable or truncated image: /data/{self.ids[i]}.png (broken)")
        return super().image(i)


def test_ray_extract_per_image_path_and_one_line_errors(tmp_path, ray_up, mini):
    from medssl_utils import features
    from medssl_utils.scale.ray_extract import extract_ray

    bb, ds = mini
    small = _per_image(ds, PerImage)
    ref = features.extract(bb, small, tmp_path / "a", "mh", device="cpu", batch_size=16, progress=False)
    got = extract_ray(bb, small, tmp_path / "b", "mh", batch_size=16, device="cpu")   # equal CPUs: Ray fuses the two
    assert got.ids == ref.ids and np.abs(np.asarray(got.features) - np.asarray(ref.features)).max() <= 1e-6
    with pytest.raises(DatasetError) as err:
        extract_ray(bb, _per_image(ds, Unreadable), tmp_path / "c", "mh", batch_size=16, device="cpu")
    assert str(err.value).startswith("unreadable or truncated image: /data/") and "\n" not in str(err.value)
    assert not list((tmp_path / "c").rglob("*.npy"))      # nothing half-written is left
