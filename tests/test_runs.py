"""The run grid: units are skipped once done, and sharding never changes the results."""
import numpy as np
import pandas as pd
import pytest

from medssl_utils import config, runs
from medssl_utils.protocols.fewshot import FewShotError


def _cfg(tmp_path, results="r", **kw):
    base = dict(models=["mini-random-s0", "mini-random-s1"], datasets=["medsynth-montgomery", "medsynth-chexpert"],
                cache_dir=str(tmp_path / "cache"), results_dir=str(tmp_path / results), n_episodes=40,
                dataset_scale=0.3, image_size=32, finetune_max_steps=4, finetune_eval_every=2)
    base.update(kw)
    return config.resolve("smoke", **base)


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    cols = ["protocol", "model", "dataset", "metric", "value", "ci_low", "ci_high", "n"]
    return df[cols].sort_values(cols[:4]).reset_index(drop=True)


def test_shards_give_the_same_rows_as_one_worker(tmp_path):
    one = runs.run_grid(_cfg(tmp_path, "one"), ["fewshot", "linear"], shard=(0, 1), progress=False)
    cfg = _cfg(tmp_path, "two")
    part0 = runs.run_grid(cfg, ["fewshot", "linear"], shard=(0, 2), progress=False)
    both = runs.run_grid(cfg, ["fewshot", "linear"], shard=(1, 2), progress=False)
    assert 0 < len(part0) < len(both)          # worker 0 did only its share; worker 1 then sees all rows
    pd.testing.assert_frame_equal(_sorted(one), _sorted(both))
    # the same episodes for every model: stored once per dataset, reused
    a = runs.outcomes(cfg, "fewshot", "mini-random-s0", "medsynth-montgomery", "episode_accuracy")
    assert a.shape == (40,)


def test_finished_units_are_skipped(tmp_path, monkeypatch):
    cfg = _cfg(tmp_path)
    runs.run_grid(cfg, ["fewshot"], progress=False)
    calls = []
    monkeypatch.setitem(runs.PROTOCOL_RUNNERS, "fewshot", lambda c, u: calls.append(u) or ([], {}))
    again = runs.run_grid(cfg, ["fewshot"], progress=False)
    assert calls == [] and len(again) == 4


def test_shard_from_environment(monkeypatch):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "3")
    assert runs.shard_from_env() == (1, 3)
    units = [runs.Unit("fewshot", f"m{i}", "d") for i in range(7)]
    assert [u.model for u in runs.my_units(units, None)] == ["m1", "m4"]
    with pytest.raises(ValueError, match="shard"):
        runs.my_units(units, (3, 3))


def test_dataset_too_small_for_episodes_names_it(tmp_path):
    cfg = _cfg(tmp_path, datasets=["medsynth-bach"], dataset_scale=0.2)
    with pytest.raises(FewShotError, match="medsynth-bach.*fewer than the 35 images"):
        runs.run_grid(cfg, ["fewshot"], progress=False)


def test_finetune_rows_and_history(tmp_path):
    cfg = _cfg(tmp_path, models=["mini-random-s0"], datasets=["medsynth-chexpert"], dataset_scale=0.1)
    rows = runs.run_grid(cfg, ["finetune"], progress=False)
    assert set(rows.metric) == {"accuracy", "auc"}
    acc = rows[rows.metric == "accuracy"].iloc[0]
    assert acc.ci_low <= acc.value <= acc.ci_high and 0 <= acc.value <= 100
    hist = runs.outcomes(cfg, "finetune", "mini-random-s0", "medsynth-chexpert", "history")
    assert hist.shape[1] == 3 and np.isfinite(hist[:, 0]).all()
