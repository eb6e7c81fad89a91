"""Issue #15 item 5: the authors' finetune schedule and augmentation, and model normalisation, set from a profile."""
import json

import numpy as np
import pytest
import torch

from medssl_utils import config
from medssl_utils.pipeline import grid, inputs

torch.set_num_threads(1)
MODEL, DATA = "mini-random-s0", "medsynth-eyepacs"   # 5-way: no 2,000-resample AUC bootstrap (~10 s a unit)


def _cfg(tmp_path, results="r", **kw):
    base = dict(models=[MODEL], datasets=[DATA], cache_dir=str(tmp_path / "cache"),
                results_dir=str(tmp_path / results), n_episodes=40, dataset_scale=0.1, image_size=32,
                finetune_max_steps=4, finetune_eval_every=2)
    base.update(kw)
    return config.resolve("smoke", **base)


def test_profile_normalisation_changes_the_preprocessing_and_the_feature_cache_key(tmp_path):
    """Before: options.models was an unknown section; only a direct load_backbone call could set 'cxr'."""
    plain = _cfg(tmp_path, datasets=["medsynth-montgomery"], dataset_scale=0.3)
    cxr = _cfg(tmp_path, datasets=["medsynth-montgomery"], dataset_scale=0.3,
               options={"models": {MODEL: {"normalisation": "cxr"}}})
    a, b = inputs.backbone(plain, MODEL), inputs.backbone(cxr, MODEL)
    assert a.preprocess.kind == "imagenet" and b.preprocess.kind == "cxr"
    img = inputs.dataset(plain, "medsynth-montgomery").image(0)
    assert not torch.allclose(a.preprocess(img), b.preprocess(img))
    unit = grid.Unit("linear", MODEL, "medsynth-montgomery")
    assert grid.PROTOCOLS["linear"].input_key(plain, unit) != grid.PROTOCOLS["linear"].input_key(cxr, unit)
    fa, fb = inputs.features(plain, MODEL, "medsynth-montgomery"), inputs.features(cxr, MODEL, "medsynth-montgomery")
    assert fa.key != fb.key and fa.features.shape == fb.features.shape
    assert not np.allclose(fa.features, fb.features)                  # recomputed, not the cached plain features
    assert inputs.backbone(plain, MODEL).preprocess.kind == "imagenet"   # the override does not leak between configs


def test_finetune_unit_with_the_authors_switches_from_a_profile(tmp_path):
    opts = {"finetune": {"schedule": "cosine", "augment": "authors"}}
    cfg = _cfg(tmp_path, "a", options=opts)
    rows = grid.run(cfg, ["finetune"], progress=False)
    again = grid.run(_cfg(tmp_path, "b", options=opts), ["finetune"], progress=False)
    paper = grid.run(_cfg(tmp_path, "c"), ["finetune"], progress=False)
    extra = json.loads(rows.extra.iloc[0])
    assert extra["schedule"] == "cosine" and extra["augment"] == "authors"
    assert extra["settings"]["switches"] == opts["finetune"]
    assert json.loads(paper.extra.iloc[0])["schedule"] == "constant"
    assert json.loads(paper.extra.iloc[0])["augment"] == "paper"
    rates = grid.outcome(cfg, "finetune", MODEL, DATA, "learning_rates")
    np.testing.assert_allclose(rates, [1e-2 * (1 + np.cos(np.pi * t / 4)) / 2 for t in range(4)], rtol=1e-12)
    np.testing.assert_array_equal(rows.value, again.value)            # deterministic per seed
    hist = {r: grid.outcome(_cfg(tmp_path, r), "finetune", MODEL, DATA, "history") for r in ("a", "b", "c")}
    np.testing.assert_array_equal(hist["a"], hist["b"])
    assert not np.array_equal(hist["a"][:, 1], hist["c"][:, 1])        # train loss differs from the paper's switches


@pytest.mark.parametrize("options, needle", [
    ({"finetune": {"schedule": "linear"}}, r"'options\.finetune\.schedule': 'linear'; expected one of constant, cosine"),
    ({"finetune": {"augment": "mixup"}}, r"'options\.finetune\.augment': 'mixup'; expected one of paper, authors, null"),
    ({"models": {MODEL: {"normalisation": "foo"}}},
     rf"'options\.models\.{MODEL}\.normalisation': 'foo'; expected one of imagenet, none, histeq, cxr"),
    ({"models": {MODEL: {"normalization": "cxr"}}}, rf"'options\.models\.{MODEL}': unknown option"),
    ({"models": {"moco_cxr_r18": {"normalisation": "cxr"}}}, r"'options\.models': 'moco_cxr_r18' is not one of"),
    ({"models": {MODEL: "cxr"}}, rf"'options\.models\.{MODEL}' must be a mapping"),
])
def test_bad_switch_values_are_refused_by_config_in_one_line(tmp_path, options, needle):
    with pytest.raises(config.ConfigError, match=needle) as info:
        _cfg(tmp_path, options=options)
    assert "\n" not in str(info.value)


def test_good_switch_values_pass_config(tmp_path):
    cfg = _cfg(tmp_path, options={"finetune": {"schedule": "constant", "augment": None},
                                  "models": {MODEL: {"normalisation": None}}})
    assert inputs.backbone(cfg, MODEL).preprocess.kind == "imagenet"


def test_finetune_batch_size_from_a_profile_overrides_the_architecture_default(tmp_path):
    """Before: options.finetune.batch_size passed batch_size twice (a TypeError inside the unit)."""
    from medssl_utils import config
    from medssl_utils.pipeline import grid

    cfg = config.resolve("smoke", models=["mini-random-s0"], finetune_models=["mini-random-s0"],
                         datasets=["medsynth-eyepacs"], cache_dir=str(tmp_path / "c"), results_dir=str(tmp_path / "r"),
                         dataset_scale=0.3, image_size=32, finetune_max_steps=2, finetune_eval_every=1,
                         options={"finetune": {"batch_size": 4}})
    rows = grid.run(cfg, ["finetune"], progress=False)
    assert not rows.empty
