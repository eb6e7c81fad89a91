"""The run grid: units are skipped once done, and sharding never changes the results."""
import json

import numpy as np
import pandas as pd
import pytest

from medssl_utils import config
from tests.fixtures.spies import spy
from medssl_utils.pipeline import grid, inputs
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
    one = grid.run(_cfg(tmp_path, "one"), ["fewshot", "linear"], shard=(0, 1), progress=False)
    cfg = _cfg(tmp_path, "two")
    part0 = grid.run(cfg, ["fewshot", "linear"], shard=(0, 2), progress=False)
    both = grid.run(cfg, ["fewshot", "linear"], shard=(1, 2), progress=False)
    assert 0 < len(part0) < len(both)          # worker 0 did only its share; worker 1 then sees all rows
    pd.testing.assert_frame_equal(_sorted(one), _sorted(both))
    # the same episodes for every model: stored once per dataset, reused
    a = grid.outcome(cfg, "fewshot", "mini-random-s0", "medsynth-montgomery", "episode_accuracy")
    assert a.shape == (40,)


def test_finished_units_are_skipped(tmp_path, monkeypatch):
    cfg = _cfg(tmp_path)
    grid.run(cfg, ["fewshot"], progress=False)
    calls = []
    spy(monkeypatch, "fewshot", calls, run=False)
    again = grid.run(cfg, ["fewshot"], progress=False)
    assert calls == [] and len(again) == 4


def test_shard_from_environment(monkeypatch):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "3")
    assert grid.shard_from_env() == (1, 3)
    units = [grid.Unit("fewshot", f"m{i}", "d") for i in range(7)]
    assert [u.model for u in grid.my_units(units, None)] == ["m1", "m4"]
    with pytest.raises(ValueError, match="shard"):
        grid.my_units(units, (3, 3))


def test_dataset_too_small_for_episodes_names_it(tmp_path):
    cfg = _cfg(tmp_path, datasets=["medsynth-bach"], dataset_scale=0.2)
    with pytest.raises(FewShotError, match="medsynth-bach.*fewer than the 35 images"):
        grid.run(cfg, ["fewshot"], progress=False)


def test_finetune_rows_and_history(tmp_path):
    cfg = _cfg(tmp_path, models=["mini-random-s0"], datasets=["medsynth-chexpert"], dataset_scale=0.1)
    rows = grid.run(cfg, ["finetune"], progress=False)
    assert set(rows.metric) == {"accuracy", "auc"}
    acc = rows[rows.metric == "accuracy"].iloc[0]
    assert acc.ci_low <= acc.value <= acc.ci_high and 0 <= acc.value <= 100
    hist = grid.outcome(cfg, "finetune", "mini-random-s0", "medsynth-chexpert", "history")
    assert hist.shape[1] == 3 and np.isfinite(hist[:, 0]).all()


def test_a_changed_switch_reruns_the_unit_and_an_unchanged_one_does_not(tmp_path, monkeypatch):
    """A stored unit is reused only with the same settings: an old file never hides a changed switch."""
    cfg = _cfg(tmp_path, models=["mini-random-s0"], datasets=["medsynth-chexpert"])
    grid.run(cfg, ["linear"], progress=False)
    calls = []
    spy(monkeypatch, "linear", calls)
    grid.run(cfg, ["linear"], progress=False)
    assert calls == []
    changed = _cfg(tmp_path, models=["mini-random-s0"], datasets=["medsynth-chexpert"],
                   options={"linear": {"max_iter": 100}})
    rows = grid.run(changed, ["linear"], progress=False)
    assert len(calls) == 1
    assert {json.loads(e)["settings"]["switches"]["max_iter"] for e in rows.extra} == {100}


def test_authors_fewshot_pool_and_square_resize(tmp_path):
    """options.fewshot = authors: the large set's episodes come only from its first non-test rows (the cap is
    lowered here so it bites), and the small set's features use the square resize, a separate cache entry."""
    import dataclasses

    from medssl_utils.data import registry as dreg

    spec = dreg.get_spec("medsynth-chexpert")
    capped = dataclasses.replace(spec, fewshot_pool_limit=90)
    base = dict(models=["mini-random-s0"], datasets=["medsynth-chexpert", "medsynth-montgomery"])
    paper, authors = _cfg(tmp_path, "p", **base), _cfg(tmp_path, "a", options={"fewshot": {"pool": "authors",
                                                                                          "resize": "authors"}}, **base)
    orig = dreg.DATASETS["medsynth-chexpert"]
    dreg.DATASETS["medsynth-chexpert"] = capped
    try:
        fs_in = inputs.fewshot_inputs(authors, "medsynth-chexpert")
        man, _ = inputs.manifest(authors, "medsynth-chexpert")
        ds = inputs.dataset(authors, "medsynth-chexpert")
        non_test = sorted(ds.ids.index(i) for i in man.id[man.split != "test"])
        assert list(fs_in.pool) == non_test[:90]
        ep = inputs.episodes(authors, "medsynth-chexpert")
        used = np.union1d(ep.support.ravel(), ep.query.ravel())
        assert set(used) <= set(non_test[:90])
        assert inputs.episodes(paper, "medsynth-chexpert").support.max() >= 90   # the default pool is every image
        p_rows = grid.run(paper, ["fewshot"], progress=False)
        a_rows = grid.run(authors, ["fewshot"], progress=False)
    finally:
        dreg.DATASETS["medsynth-chexpert"] = orig
    def key(df, d):
        return df[df.dataset == d].cache_key.iloc[0]

    assert key(p_rows, "medsynth-montgomery") != key(a_rows, "medsynth-montgomery")   # square-resized features
    assert key(p_rows, "medsynth-chexpert") == key(a_rows, "medsynth-chexpert")      # large set: same features
    assert "square257" in json.loads(a_rows[a_rows.dataset == "medsynth-montgomery"].extra.iloc[0])["inputs"]
    # bad switches are refused by config, before any dataset is read
    with pytest.raises(config.ConfigError, match="options.fewshot.pool"):
        _cfg(tmp_path, options={"fewshot": {"pool": "first"}})
    with pytest.raises(config.ConfigError, match="unknown switch 'size'"):
        _cfg(tmp_path, options={"fewshot": {"size": 1}})


def test_the_shared_backbone_is_channels_last_once_and_never_mutated(tmp_path):
    """The cached module every protocol shares is converted once when cached; extraction leaves it as it was
    (format and values), so no result depends on which unit ran before."""
    import torch

    cfg = _cfg(tmp_path)
    model, data = cfg.models[0], cfg.datasets[0]
    module = inputs.backbone(cfg, model).module
    w = next(p for p in module.parameters() if p.dim() == 4)
    assert w.is_contiguous(memory_format=torch.channels_last)
    before = [p.detach().clone() for p in module.parameters()]
    inputs.features(cfg, model, data)
    assert inputs.backbone(cfg, model).module is module
    assert w.is_contiguous(memory_format=torch.channels_last)
    assert all(torch.equal(a, b) for a, b in zip(before, module.parameters()))


def test_n_boot_reaches_the_interval_and_reruns_the_unit(tmp_path, monkeypatch):
    """A parameter travels config -> the protocol's settings -> the rows: a changed n_boot redoes the unit."""
    kw = dict(models=["mini-random-s0"], datasets=["medsynth-chexpert"])
    first = grid.run(_cfg(tmp_path, **kw), ["linear"], progress=False)
    calls = []
    spy(monkeypatch, "linear", calls)
    fewer = grid.run(_cfg(tmp_path, n_boot=200, **kw), ["linear"], progress=False)
    assert len(calls) == 1
    assert {json.loads(e)["settings"]["n_boot"] for e in fewer.extra} == {200}
    assert (first.value.to_numpy() == fewer.value.to_numpy()).all()          # the estimate is not resampled
    assert not np.allclose(first[["ci_low", "ci_high"]], fewer[["ci_low", "ci_high"]])
