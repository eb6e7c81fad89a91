"""Issue 17's infrastructure: resumable training (stretches give the uninterrupted run's weights, bit for bit),
budgets as an axis (names, schedules over the total, manifest records), the neutral probe, the GPU script."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from medssl_utils.errors import MedsslError
from medssl_utils.models.minizoo import MANIFEST_PATH
from medssl_utils.models.minizoo import budget as B
from medssl_utils.models.minizoo import corpus as C
from medssl_utils.models.minizoo import neutral as N
from medssl_utils.models.minizoo import recipes as R
from medssl_utils.models.minizoo import resume as S
from medssl_utils.models.minizoo import train as T


class _TinySources(T.Sources):
    """Random tiny sets for every key (fractal, cxr, neutral): a step takes well under a second."""

    def get(self, key):
        g = torch.Generator().manual_seed({"fractal": 0, "cxr": 1}.get(key, 2))
        x = torch.rand(24, 3, 32, 32, generator=g)
        y = torch.arange(24) % 4
        return x, y, x[:8], y[:8], 4, {"name": key}


def _tiny(recipe: str, steps: int = 6) -> R.Recipe:
    return B.budget_recipe(R.RECIPES[recipe], 1, steps=steps)


def _train(recipe, path, stop=None, save_every=0, seed=5):
    key = S.run_key(f"t-{recipe.key}", recipe, seed, None, 8, None)
    return S.train_resumable(recipe, seed, _TinySources(), path, key, batch_size=8, stop=stop, save_every=save_every)


def _same(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("key", ["sup", "moco", "byol"])
def test_half_then_resume_gives_the_uninterrupted_weights(key, tmp_path):
    """K steps in one go == K/2, state file, K/2 more (MoCo: key encoder + queue; BYOL: EMA target)."""
    torch.set_num_threads(1)
    recipe = _tiny(key, steps=6)
    whole = _train(recipe, tmp_path / "whole.pt")
    first = _train(recipe, tmp_path / "split.pt", stop=S.Stop(max_steps=3))
    assert not first.done and first.stretch["steps"] == [0, 3]
    saved = torch.load(tmp_path / "split.pt", weights_only=True)
    if key == "moco":
        assert any(k.endswith("memory_bank.bank") for k in saved["learner"]["buffers"])
        assert any(k.startswith("key_backbone.") for k in saved["learner"]["params"])
    if key == "byol":
        assert any(k.startswith("target_backbone.") for k in saved["learner"]["params"])
    second = _train(recipe, tmp_path / "split.pt")
    assert whole.done and second.done and _same(whole.backbone, second.backbone)
    assert whole.curves == second.curves and len(second.state["stretches"]) == 2
    # and the resumable loop is the one every published 1x model was trained with
    classic, curves = T.train_recipe(recipe, 5, _TinySources(), batch_size=8)
    assert _same(classic, whole.backbone) and curves == whole.curves


def test_stretches_across_a_stage_boundary_and_after_a_crash(tmp_path):
    """MIMIC analogue (supervised stage, then MoCo): 3 stretches crossing the boundary; then a run that dies
    mid-stretch resumes from its last periodic save."""
    torch.set_num_threads(1)
    recipe = _tiny("mimic", steps=3)
    whole = _train(recipe, tmp_path / "whole.pt")
    for _ in range(2):
        assert not _train(recipe, tmp_path / "split.pt", stop=S.Stop(max_steps=2)).done
    assert torch.load(tmp_path / "split.pt", weights_only=True)["stage"] == 1
    last = _train(recipe, tmp_path / "split.pt")
    assert last.done and _same(whole.backbone, last.backbone) and whole.curves == last.curves

    class Crash(S.Stop):
        def __call__(self):
            if self.taken == 5:
                raise KeyboardInterrupt("power cut")
            return super().__call__()

    with pytest.raises(KeyboardInterrupt):
        _train(recipe, tmp_path / "crash.pt", stop=Crash(), save_every=2)
    state = torch.load(tmp_path / "crash.pt", weights_only=True)
    assert (state["stage"], state["position"]["step"]) == (1, 2)       # the save after step 2 of stage 1
    again = _train(recipe, tmp_path / "crash.pt")
    assert _same(whole.backbone, again.backbone)


def test_a_state_file_of_another_run_is_refused(tmp_path):
    _train(_tiny("sup", steps=4), tmp_path / "s.pt", stop=S.Stop(max_steps=1))
    with pytest.raises(MedsslError, match="written for another run") as exc:
        _train(_tiny("sup", steps=8), tmp_path / "s.pt")
    assert "\n" not in str(exc.value)
    (tmp_path / "bad.pt").write_bytes(b"not a state")
    with pytest.raises(S.MinizooStateError, match="not a readable"):
        _train(_tiny("sup", steps=4), tmp_path / "bad.pt")


def test_budget_names_and_schedules_over_the_total():
    assert B.budget_name("simclr", 0, 1) == "mini-simclr-s0" and B.budget_name("simclr", 0, 4) == "mini-simclr-b4-s0"
    assert B.parse_budget_name("mini-simclr-b16-s2") == ("simclr", 2, 16)
    assert B.parse_budget_name("mini-simclr-s2") == ("simclr", 2, 1)
    for bad in ("mini-simclr-b0-s1", "mini-foo-b4-s0", "mini-simclr-bx-s0"):
        with pytest.raises(MedsslError):
            B.parse_budget_name(bad)
    one, sixteen = R.RECIPES["byol"].stages[0], B.budget_recipe(R.RECIPES["byol"], 16).stages[0]
    assert sixteen.steps == 16 * one.steps and sixteen.warmup == one.warmup and sixteen.batch_size == one.batch_size
    # a 16x run is not a 1x run continued: where 1x has decayed to 0, 16x is still near its peak
    assert R.lr_at(one, one.steps) == 0 and R.lr_at(sixteen, one.steps) > 0.9 * sixteen.lr
    assert B.budget_recipe(R.RECIPES["mimic"], 4).stages[1].steps == 4 * R.RECIPES["mimic"].stages[1].steps
    with pytest.raises(MedsslError, match="budget 0"):
        B.budget_recipe(R.RECIPES["sup"], 0)


def test_continue_build_in_stretches_publishes_budget_records(tmp_path):
    """A chained recipe at budget 2 (tiny steps): the parent is built first, a stretch pauses, the next one
    publishes both with images seen, stretches, devices and both probes; state files are removed."""
    torch.set_num_threads(1)
    b = B.Build(out=tmp_path / "w", manifest=tmp_path / "w" / "manifest.json", sources=_TinySources(),
                state_dir=tmp_path / "state", progress=False, steps=2, batch_size=8)
    assert B.build_all(["mini-mococxr-s1"], 2, b, S.Stop(max_steps=3)) == {"mini-mococxr-s1": "paused"}
    assert (tmp_path / "state" / "mini-sup-b2-s1.state.pt").is_file()
    with pytest.raises(MedsslError, match="--continue"):
        B.continue_build("mini-sup-s1", 2, B.Build(**{**b.__dict__, "resume": False}), S.Stop())
    assert B.build_all(["mini-mococxr-s1"], 2, b, S.Stop()) == {"mini-mococxr-s1": "published"}
    data = json.loads(b.manifest.read_text())
    assert data["models"] == {} and set(data["budgets"]) == {"mini-sup-b2-s1", "mini-mococxr-b2-s1"}
    sup, cxr = data["budgets"]["mini-sup-b2-s1"], data["budgets"]["mini-mococxr-b2-s1"]
    assert sup["budget"] == 2 and sup["steps"] == 4 and sup["images_seen"] == 4 * 8 and len(sup["stretches"]) == 2
    assert sup["stretches"][0]["steps"] == [0, 3] and sup["stretches"][1]["steps"] == [3, 4]
    assert sup["devices"][0].startswith("cpu") and set(sup["neutral_probe"]) == {"knn", "linear"}
    assert cxr["init_from"] == {"name": "mini-sup-b2-s1", "sha256": sup["sha256"]}
    assert not list((tmp_path / "state").glob("*.pt"))
    state = torch.load(tmp_path / "w" / "mini-mococxr-b2-s1.pt", weights_only=True)
    assert all(v.dtype == torch.float16 for v in state.values() if v.is_floating_point())
    assert B.build_all(["mini-mococxr-s1"], 2, b, S.Stop()) == {"mini-mococxr-s1": "skipped"}
    rows = B.budget_table(data)
    assert [(r["recipe"], r["budget"], r["seeds"]) for r in rows] == [("mococxr", 2, [1]), ("sup", 2, [1])]
    # the same build imported into another zoo; 1x is never written into the package by a budget build
    imported = B.import_budgets(tmp_path / "w", tmp_path / "zoo", tmp_path / "zoo" / "manifest.json")
    assert imported == ["mini-mococxr-b2-s1", "mini-sup-b2-s1"]
    with pytest.raises(MedsslError, match="budget 1 is the committed zoo"):
        B.continue_build("mini-sup-s0", 1, B.Build(out=T.WEIGHTS_DIR, manifest=tmp_path / "m.json",
                                                   sources=_TinySources()), S.Stop())


def test_publishing_a_budget_leaves_the_committed_records_byte_identical(tmp_path):
    copy = tmp_path / "manifest.json"
    shutil.copyfile(MANIFEST_PATH, copy)
    before = json.loads(copy.read_text())
    B.publish_budget({"name": "mini-sup-b64-s9", "budget": 64}, copy)
    after = json.loads(copy.read_text())
    assert set(after) == set(before) | {"budgets"}
    assert after["budgets"].pop("mini-sup-b64-s9") == {"name": "mini-sup-b64-s9", "budget": 64}
    before.setdefault("budgets", {})
    for key in before:      # the 1x records and every budget record already there
        assert json.dumps(after[key], sort_keys=True) == json.dumps(before[key], sort_keys=True), key


def test_neutral_scores_on_known_features():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(5, 16)) * 10
    y = np.repeat(np.arange(5), 30)
    f = np.abs(centres[y] + rng.normal(size=(150, 16)))
    fit, test = np.arange(150) % 3 != 0, np.arange(150) % 3 == 0
    s = N.neutral_scores(f[fit], y[fit], f[test], y[test])
    assert s == {"knn": 1.0, "linear": 1.0}
    noise = rng.random((150, 16))
    assert N.knn_accuracy(noise[fit], y[fit], noise[test], y[test]) < 0.5
    # a 1-1 tie among the 2 neighbours goes to the more similar one
    ft, yt = np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([0, 1])
    assert N.knn_accuracy(ft, yt, np.array([[0.9, 0.1], [0.1, 0.9]]), np.array([0, 1]), k=2) == 1.0


def test_the_neutral_corpus_has_classes_no_recipe_trained_on():
    assert N.NEUTRAL_SEED != T.CORPUS_SEED
    a = C.make_corpus.__wrapped__(seed=T.CORPUS_SEED, n_classes=2, n_per_class=3, n_heldout=1)
    b = C.make_corpus.__wrapped__(seed=N.NEUTRAL_SEED, n_classes=2, n_per_class=3, n_heldout=1)
    assert not np.array_equal(a.images, b.images)
    module = T.build_mini_resnet18_w16()
    s = N.neutral_probe(module, _TinySources())
    assert set(s) == {"knn", "linear"} and all(0 <= v <= 1 for v in s.values())


def test_the_cli_needs_an_action_and_forwards_options():
    from medssl_utils.cli import main

    for argv in (["--budget", "4"], ["--budget", "4", "--baselines"], ["--worker", "--name", "mini-sup-s0"]):
        with pytest.raises(SystemExit):
            T.main(argv)
    with pytest.raises(SystemExit) as exc:     # 'medssl minizoo --budget ...' reaches the trainer's parser
        main(["minizoo", "--budget", "4"])
    assert exc.value.code == 2


def test_the_budget_gpu_script_skips_cleanly_without_cuda():
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "minizoo_budget_gpu.py"
    res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert res.returncode == 0 and res.stdout.strip() == "skipped: no CUDA device", res.stdout + res.stderr


def test_the_budget_gpu_script_runs_its_whole_path_on_cpu(tmp_path):
    """``--device cpu`` dry run (a few steps): data, two workers sharing a chained pair (MoCo-CXR waits for its
    supervised parent), publish with both probes, the table; so the script is exercised before a GPU is lent."""
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "minizoo_budget_gpu.py"
    out = tmp_path / "gpu"
    res = subprocess.run([sys.executable, str(script), "--device", "cpu", "--budget", "2", "--jobs", "2",
                          "--names", "mini-sup-s0", "mini-mococxr-s0", "--steps", "2", "--batch-size", "8",
                          "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    recs = json.loads((out / "manifest.json").read_text())["budgets"]
    assert set(recs) == {"mini-sup-b2-s0", "mini-mococxr-b2-s0"}
    assert recs["mini-mococxr-b2-s0"]["init_from"]["sha256"] == recs["mini-sup-b2-s0"]["sha256"]
    for rec in recs.values():
        assert rec["overrides"] == {"steps": 2, "batch_size": 8} and rec["images_seen"] == 2 * 2 * 8 * len(rec["stages"])
        assert rec["devices"][0].startswith("cpu") and set(rec["neutral_probe"]) == {"knn", "linear"}
        assert f"{rec['name']} " in res.stdout
    assert "budget 2: workers exited [0, 0]" in res.stdout
    bad = subprocess.run([sys.executable, str(script), "--device", "cpu", "--names", "mini-nope-s0"],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0 and "mini-nope-s0" in bad.stderr


def test_supersede_retires_a_recipes_records_weights_and_budgets(tmp_path):
    """Before a recipe change is rebuilt: the 1x records and their budget checkpoints move to 'superseded' with
    their probes and the reason, the weights go, and other recipes' records stay byte-identical."""
    manifest = tmp_path / "manifest.json"
    stages = [{"method": "swav", "lr": 0.3, "params": {"n_low": 2}}]
    rec = {"probe": {"fractal": 0.2}, "sha256": "a", "wall_time_s": 1.0, "steps": 600, "stages": stages,
           "recipe": "swav"}
    data = {"models": {"mini-swav-s0": {**rec, "file": "mini-swav-s0.pt"},
                       "mini-sup-s0": {**rec, "file": "mini-sup-s0.pt"}},
            "budgets": {"mini-swav-b4-s0": {**rec, "file": "mini-swav-b4-s0.pt", "steps": 2400,
                                            "neutral_probe": {"knn": 0.15, "linear": 0.4}}},
            "neutral_probe": {"models": {"mini-swav-s0": {"knn": 0.08, "linear": 0.3, "weights": "a"}}}}
    manifest.write_text(json.dumps(data))
    for f in ("mini-swav-s0.pt", "mini-sup-s0.pt", "mini-swav-b4-s0.pt"):
        (tmp_path / f).write_bytes(b"x")
    moved = T.supersede(["mini-swav-s0"], "two crops", tmp_path, manifest)
    after = json.loads(manifest.read_text())
    assert moved == ["mini-swav-b4-s0", "mini-swav-s0"]
    assert set(after["models"]) == {"mini-sup-s0"} and after["budgets"] == {}
    assert after["models"]["mini-sup-s0"] == data["models"]["mini-sup-s0"]
    old = after["superseded"]["mini-swav-s0 (600 steps; swav lr 0.3 n_low 2)"]
    assert old["neutral_probe"] == {"knn": 0.08, "linear": 0.3} and old["why"] == "two crops"
    assert after["superseded"]["mini-swav-b4-s0 (2400 steps; swav lr 0.3 n_low 2)"]["neutral_probe"]["knn"] == 0.15
    assert not (tmp_path / "mini-swav-s0.pt").exists() and not (tmp_path / "mini-swav-b4-s0.pt").exists()
    assert (tmp_path / "mini-sup-s0.pt").exists()
