"""load_backbone refuses weights that are not this model's converted weights, one line each (issue 19, defect 3).

The file in ``weights_dir`` must fit the architecture, be the file ``convert`` recorded for this model in
``weights_dir/manifest.json`` (packaged mini-zoo weights: the registered sha256) and hold finite values only.
Test entries are ResNet variants of the real torchvision entry (no sha256, so fabricated originals convert).
"""
from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
import torch

from medssl_utils.models import ModelError, get_spec, load_backbone
from medssl_utils.models.converters import LayoutError, convert, read_manifest
from medssl_utils.models.registry import MODELS
from medssl_utils.storage import sha256_file

try:
    from tests.fixtures import checkpoints as fx
except ImportError:  # pragma: no cover - run from inside tests/
    from fixtures import checkpoints as fx


def _spec(name: str, base: str, **changes):
    fields = dict(name=name, sha256=None, extra={}, profile="test", input_size=32)
    fields.update(changes)
    return dataclasses.replace(get_spec(base), **fields)


@pytest.fixture(scope="module")
def specs():
    get_spec("byol")  # the real entries first
    out = {"r18": _spec("test-wc-tv-r18", "supervised_r18"),
           "r18b": _spec("test-wc-tv-r18b", "supervised_r18"),
           "r50": _spec("test-wc-tv-r50", "supervised_r50"),
           "swav": _spec("test-wc-swav-r18", "swav", arch="resnet18", feature_dim=512)}
    for spec in out.values():
        MODELS[spec.name] = spec
    yield out
    for spec in out.values():
        MODELS.pop(spec.name, None)


def _converted(spec, weights_dir: Path, seed: int) -> Path:
    fx.write_checkpoint("torchvision", weights_dir / f"{spec.name}.orig.pth", spec.arch, seed=seed)
    return convert(spec.name, weights_dir / f"{spec.name}.orig.pth", weights_dir)


def _refusal(name: str, weights_dir: Path, *patterns: str) -> str:
    with pytest.raises(ModelError) as info:
        load_backbone(name, weights_dir)
    msg = str(info.value)
    assert "\n" not in msg, msg
    for pattern in patterns:
        assert pattern in msg, (pattern, msg)
    return msg


def test_weights_of_another_architecture_are_one_line_naming_the_file(specs, tmp_path):
    """ResNet-18 weights where ResNet-50 weights belong (before: torch's multi-line RuntimeError, no file name)."""
    src = _converted(specs["r18"], tmp_path, seed=1)
    target = tmp_path / f"{specs['r50'].name}.pt"
    shutil.copyfile(src, target)
    _refusal(specs["r50"].name, tmp_path, f"'{specs['r50'].name}'", str(target), "does not hold resnet50 weights",
             "it looks like resnet18 weights", "layer1.0.conv1.weight has shape (64, 64, 3, 3) in the file, "
             "resnet50 expects (64, 64, 1, 1)", "medssl weights convert test-wc-tv-r50")


def test_another_models_weights_of_the_same_architecture_are_refused(specs, tmp_path):
    src = _converted(specs["r18"], tmp_path, seed=1)
    _converted(specs["r18b"], tmp_path, seed=2)
    load_backbone(specs["r18b"].name, tmp_path)                           # its own file loads
    target = tmp_path / f"{specs['r18b'].name}.pt"
    shutil.copyfile(src, target)                                          # replaced by the other model's file
    _refusal(specs["r18b"].name, tmp_path, str(target), "weights manifest",
             f"it is the converted file of '{specs['r18'].name}'")
    # changed after conversion (same keys and shapes, other values)
    state = torch.load(src, weights_only=True)
    state["conv1.weight"] = state["conv1.weight"] * 2
    torch.save(state, target)
    _refusal(specs["r18b"].name, tmp_path, str(target), "changed or replaced after conversion")


def test_a_file_placed_by_hand_without_a_manifest_entry_is_refused(specs, tmp_path):
    torch.save(fx.reference_state("resnet18", 3), tmp_path / f"{specs['r18'].name}.pt")
    _refusal(specs["r18"].name, tmp_path, str(tmp_path / f"{specs['r18'].name}.pt"), "no entry in the weights manifest",
             f"medssl weights convert {specs['r18'].name} --source FILE --weights-dir {tmp_path}")


def test_non_finite_weights_are_refused(specs, tmp_path):
    spec = specs["r18"]
    state = dict(fx.reference_state("resnet18", 4))
    state["layer2.0.bn1.running_var"] = state["layer2.0.bn1.running_var"].clone()
    state["layer2.0.bn1.running_var"][3] = float("nan")
    # convert refuses a NaN original before writing anything
    torch.save(state, tmp_path / "nan.pth")
    with pytest.raises(ModelError, match=r"non-finite .*'layer2\.0\.bn1\.running_var' \(1 of 128 values\)"):
        convert(spec.name, tmp_path / "nan.pth", tmp_path / "w")
    assert not (tmp_path / "w").exists()
    # a NaN file with a matching manifest entry (e.g. written by an older converter) is refused by load_backbone
    weights = tmp_path / "w2"
    weights.mkdir()
    target = weights / f"{spec.name}.pt"
    torch.save(state, target)
    manifest = {"version": 1, "models": {spec.name: {"converted": target.name, "converted_sha256": sha256_file(target),
                                                     "arch": "resnet18", "layout": "torchvision", "source_verified": None}}}
    (weights / "manifest.json").write_text(json.dumps(manifest))
    assert read_manifest(weights)["models"][spec.name]["converted_sha256"] == sha256_file(target)
    _refusal(spec.name, weights, str(target), "non-finite (NaN/inf) weights", "'layer2.0.bn1.running_var'")
    # packaged weights: the registered sha256 is the check, then finiteness
    packaged = dataclasses.replace(spec, name="test-wc-packaged", extra={"packaged_weights": str(target)},
                                   sha256=sha256_file(target))
    MODELS[packaged.name] = packaged
    try:
        _refusal(packaged.name, None, str(target), "non-finite")
        MODELS[packaged.name] = dataclasses.replace(packaged, sha256="0" * 64)
        _refusal(packaged.name, None, str(target), "packaged weights", "the file was changed")
    finally:
        MODELS.pop(packaged.name, None)


def test_hint_for_a_torchvision_file_names_the_torchvision_layout(specs, tmp_path):
    """A torchvision file given to a layout that expects prefixed keys (before: 'looks like simclr_v1')."""
    fx.write_checkpoint("torchvision", tmp_path / "resnet18.pth", "resnet18", seed=5)
    with pytest.raises(LayoutError) as info:
        convert(specs["swav"].name, tmp_path / "resnet18.pth", tmp_path / "w")
    msg = str(info.value)
    assert "looks like the 'torchvision' layout" in msg and "simclr_v1" not in msg
    assert "supervised_r18" in msg and "supervised_r50" in msg       # the models whose originals have that layout
    # the simclr_v1 layout itself is still recognised as such
    fx.write_checkpoint("simclr_v1", tmp_path / "simclr.pth", "resnet18", seed=5)
    with pytest.raises(LayoutError, match="looks like the 'simclr_v1' layout"):
        convert(specs["swav"].name, tmp_path / "simclr.pth", tmp_path / "w")
