"""The paper's model zoo: registry entries, converters for every original layout, safe loading, fetch/status.

Checkpoints are small random files in each original key layout (tests/fixtures/checkpoints.py). Speed:
layouts are exercised on ResNet-18 variants of the real entries; one real ResNet-50 entry (byol) and one
real DenseNet-121 entry (mimic_chexpert_lr0.1) are loaded end to end.
"""
from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from medssl_utils.models import ModelError, get_spec, load_backbone
from medssl_utils.models.architectures import ARCHITECTURES, build_headless
from medssl_utils.models.checkpoints import CorruptCheckpointError, UnsafeCheckpointError
from medssl_utils.models.converters import CONVERTERS, LayoutError, convert, convert_object, read_manifest
from medssl_utils.models.fetch import fetch, status
from medssl_utils.models.preprocessing import PREPROCESSING
from medssl_utils.models.registry import MODELS, ModelSpec, available
from medssl_utils.storage import sha256_file

try:
    from tests.fixtures import checkpoints as fx
except ImportError:  # pragma: no cover - run from inside tests/
    from fixtures import checkpoints as fx

PAPER_MODELS = {"simclr_v1", "moco_v2", "swav", "byol", "pirl", "supervised_r50", "supervised_r18",
                "supervised_d121", "mimic_chexpert_lr0.01", "mimic_chexpert_lr0.1", "mimic_chexpert_lr1.0",
                "moco_cxr_r18", "moco_cxr_d121"}
# One real entry per original layout; each gets a ResNet-18 test variant.
LAYOUT_ENTRY = {"torchvision": "supervised_r18", "simclr_v1": "simclr_v1", "moco": "moco_v2",
                "moco_cxr": "moco_cxr_r18", "swav": "swav", "pirl": "pirl", "byol": "byol",
                "mimic_chexpert": "mimic_chexpert_lr0.1"}


def _variant(layout: str, **changes) -> ModelSpec:
    base = get_spec(LAYOUT_ENTRY[layout])
    fields = dict(name=f"test-{layout}-r18", arch="resnet18", feature_dim=512, sha256=None, extra={},
                  profile="test", input_size=32)
    fields.update(changes)
    return dataclasses.replace(base, **fields)


@pytest.fixture(scope="module")
def variants():
    """ResNet-18 variants of the real entries, registered for load_backbone and removed afterwards."""
    get_spec("byol")  # load the real entries first
    specs = {layout: _variant(layout) for layout in LAYOUT_ENTRY}
    for spec in specs.values():
        MODELS[spec.name] = spec
    yield specs
    for spec in specs.values():
        MODELS.pop(spec.name, None)


@pytest.fixture(scope="module")
def reference_r18():
    model = torchvision.models.resnet18(weights=None)
    model.fc = nn.Identity()
    return model.eval()


def _inputs(seed: int = 0, size: int = 32, n: int = 3) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def _snapshot(d: Path) -> dict:
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(d.iterdir())} if d.exists() else {}


# --- registry entries -------------------------------------------------------------------------------

def test_the_thirteen_paper_entries():
    assert set(available("paper")) == PAPER_MODELS
    dims = {}
    for arch in {get_spec(n).arch for n in PAPER_MODELS}:
        with torch.device("meta"):  # the feature dim the headless architecture really outputs
            dims[arch] = build_headless(arch)(torch.empty(1, 3, 64, 64)).shape[1]
    for name in PAPER_MODELS:
        spec = get_spec(name)
        assert spec.arch in ARCHITECTURES and spec.layout in CONVERTERS and spec.preprocessing in PREPROCESSING
        assert spec.urls and spec.filename and spec.method and spec.pretrain_data and spec.notes, name
        if not spec.extra.get("manual"):
            assert spec.urls[0].rsplit("/", 1)[1] == spec.filename, name
        assert dims[spec.arch] == spec.feature_dim, name


def test_entries_follow_the_paper_and_the_authors_code():
    pre = {n: get_spec(n).preprocessing for n in PAPER_MODELS}
    assert pre["simclr_v1"] == "none"
    assert {pre[n] for n in PAPER_MODELS if n.startswith("mimic_chexpert")} == {"histeq"}
    assert all(pre[n] == "imagenet" for n in PAPER_MODELS if n != "simclr_v1" and not n.startswith("mimic"))
    # authors' results/imagenet-top1.csv
    top1 = {"simclr_v1": 69.3, "moco_v2": 71.1, "byol": 74.3, "swav": 75.3, "pirl": 61.7, "supervised_r50": 77.2,
            "supervised_r18": 72.12, "supervised_d121": 74.98}
    for name in PAPER_MODELS:
        assert get_spec(name).imagenet_top1 == top1.get(name), name
    assert {get_spec(n).arch for n in ("moco_cxr_r18", "supervised_r18")} == {"resnet18"}
    assert {get_spec(n).arch for n in PAPER_MODELS if "d121" in n or "mimic" in n} == {"densenet121"}


# --- conversion: features equal a torchvision model loaded with the same tensors ---------------------

@pytest.mark.parametrize("layout", sorted(LAYOUT_ENTRY))
def test_conversion_gives_the_reference_features(layout, variants, reference_r18, tmp_path):
    spec = variants[layout]
    options = {"protocol": 5} if layout == "byol" else {}
    ref = fx.write_checkpoint(layout, tmp_path / "original.bin", "resnet18", seed=7, **options)
    out = convert(spec.name, tmp_path / "original.bin", tmp_path / "w")
    assert out == tmp_path / "w" / f"{spec.name}.pt"
    backbone = load_backbone(spec.name, tmp_path / "w")
    assert not backbone.module.training and backbone.feature_dim == 512
    x = _inputs()
    reference_r18.load_state_dict(ref)
    with torch.no_grad():
        got, want = backbone.module(x), reference_r18(x)
    assert got.shape == (3, 512) and want.abs().mean() > 1e-3
    torch.testing.assert_close(got, want, atol=1e-6, rtol=0)
    entry = read_manifest(tmp_path / "w")["models"][spec.name]
    assert entry["layout"] == layout and entry["source"] == "original.bin"
    assert entry["source_sha256"] == sha256_file(tmp_path / "original.bin")
    assert entry["converted_sha256"] == sha256_file(out) and backbone.weights_hash == entry["converted_sha256"][:16]


def test_byol_pickle_with_its_real_containers_protocol_2(variants, reference_r18, tmp_path):
    """The real file's experiment_state is a byol.byol_experiment namedtuple, pickled with protocol 2."""
    ref = fx.write_checkpoint("byol", tmp_path / "pretrain.pkl", "resnet18", seed=3, style="namedtuple")
    convert(variants["byol"].name, tmp_path / "pretrain.pkl", tmp_path / "w")
    backbone = load_backbone(variants["byol"].name, tmp_path / "w")
    reference_r18.load_state_dict(ref)
    x = _inputs(1)
    with torch.no_grad():
        torch.testing.assert_close(backbone.module(x), reference_r18(x), atol=1e-6, rtol=0)


def _functional_reference(module: nn.Module, ref: dict, x: torch.Tensor) -> torch.Tensor:
    """The same torchvision module evaluated with the reference tensors (no second large instance)."""
    with torch.no_grad():
        return torch.func.functional_call(module, ref, (x,))


def test_real_resnet50_entry_byol(tmp_path):
    spec = get_spec("byol")
    ref = fx.write_checkpoint("byol", tmp_path / spec.filename, "resnet50", seed=11, protocol=5)
    convert("byol", tmp_path / spec.filename, tmp_path)
    backbone = load_backbone("byol", tmp_path)
    x = _inputs(2, size=32, n=2)
    with torch.no_grad():
        got = backbone.module(x)
    assert got.shape == (2, 2048)
    torch.testing.assert_close(got, _functional_reference(backbone.module, ref, x), atol=1e-6, rtol=0)


def test_real_densenet121_entries(tmp_path):
    spec = get_spec("mimic_chexpert_lr0.1")
    ref = fx.write_checkpoint("mimic_chexpert", tmp_path / spec.filename, "densenet121", seed=5)
    convert(spec.name, tmp_path / spec.filename, tmp_path)
    backbone = load_backbone(spec.name, tmp_path)
    assert backbone.preprocess.kind == "histeq"
    x = _inputs(3, size=32, n=2)
    with torch.no_grad():
        got = backbone.module(x)
    assert got.shape == (2, 1024)
    torch.testing.assert_close(got, _functional_reference(backbone.module, ref, x), atol=1e-6, rtol=0)
    # torchvision's 2017-format DenseNet file (dotted layer names, no BN counters): same tensors recovered
    legacy = fx.torchvision_file_state(ref, "densenet121", torch.Generator().manual_seed(0))  # in memory: fast
    assert "features.denseblock1.denselayer1.norm.1.weight" in legacy and "classifier.weight" in legacy
    state = convert_object("torchvision", legacy, "densenet121")  # strict check included
    assert set(state) == set(ref)
    for key, value in ref.items():
        if not key.endswith("num_batches_tracked"):
            assert torch.equal(state[key], value), key


def test_source_sha256_is_verified(variants, tmp_path):
    spec = variants["swav"]
    fx.write_checkpoint("swav", tmp_path / "swav.pth.tar", "resnet18", seed=1)
    digest = sha256_file(tmp_path / "swav.pth.tar")
    wrong = dataclasses.replace(spec, sha256="0" * 64)
    with pytest.raises(ModelError, match="sha256"):
        convert(wrong, tmp_path / "swav.pth.tar", tmp_path / "w")
    assert not (tmp_path / "w").exists() or not any((tmp_path / "w").iterdir())
    convert(dataclasses.replace(spec, sha256=digest), tmp_path / "swav.pth.tar", tmp_path / "w")
    assert read_manifest(tmp_path / "w")["models"][spec.name]["source_verified"] is True


# --- bad input: one clear error each, nothing written ----------------------------------------------

def _expect_refusal(spec, source: Path, weights_dir: Path, error, *patterns: str) -> str:
    weights_dir.mkdir(exist_ok=True)
    (weights_dir / "keep.txt").write_text("untouched")
    before = _snapshot(weights_dir)
    with pytest.raises(error) as info:
        convert(spec, source, weights_dir)
    message = str(info.value)
    for pattern in patterns:
        assert pattern in message, (pattern, message)
    assert _snapshot(weights_dir) == before
    return message


def test_truncated_files_are_refused(variants, tmp_path):
    fx.write_checkpoint("moco", tmp_path / "moco.pth.tar", "resnet18", seed=1)
    fx.truncate(tmp_path / "moco.pth.tar")
    _expect_refusal(variants["moco"], tmp_path / "moco.pth.tar", tmp_path / "w", CorruptCheckpointError,
                    str(tmp_path / "moco.pth.tar"), "truncated")
    fx.write_checkpoint("byol", tmp_path / "byol.pkl", "resnet18", seed=1, protocol=5)
    fx.truncate(tmp_path / "byol.pkl", 0.3)
    _expect_refusal(variants["byol"], tmp_path / "byol.pkl", tmp_path / "w", CorruptCheckpointError,
                    str(tmp_path / "byol.pkl"), "truncated")
    (tmp_path / "empty.pth").write_bytes(b"")
    _expect_refusal(variants["swav"], tmp_path / "empty.pth", tmp_path / "w", CorruptCheckpointError, "empty")


def test_wrong_architecture_is_refused(tmp_path):
    """ResNet-18 weights for a ResNet-50 entry: one error listing missing and unexpected keys."""
    fx.write_checkpoint("swav", tmp_path / "swav_r18.pth.tar", "resnet18", seed=2)
    msg = _expect_refusal(get_spec("swav"), tmp_path / "swav_r18.pth.tar", tmp_path / "w", ModelError,
                          "resnet50", "missing keys", "swav_r18.pth.tar")
    assert "layer1.0.conv3.weight" in msg or "shape mismatches" in msg


def test_another_models_checkpoint_is_refused(variants, tmp_path):
    fx.write_checkpoint("moco", tmp_path / "moco.pth.tar", "resnet18", seed=3)
    _expect_refusal(variants["swav"], tmp_path / "moco.pth.tar", tmp_path / "w", LayoutError,
                    "'swav'", "looks like the 'moco' layout", "moco.pth.tar")
    fx.write_checkpoint("pirl", tmp_path / "PIRL.pth", "resnet18", seed=3)
    _expect_refusal(variants["moco"], tmp_path / "PIRL.pth", tmp_path / "w", LayoutError,
                    "'state_dict'", "looks like the 'pirl' layout")
    fx.write_checkpoint("mimic_chexpert", tmp_path / "mimic.pt", "resnet18", seed=3)
    # its Lightning hyper-parameters are only allow-listed for the mimic_chexpert layout
    _expect_refusal(variants["moco_cxr"], tmp_path / "mimic.pt", tmp_path / "w", UnsafeCheckpointError,
                    "mimic.pt", "allowed for the 'mimic_chexpert' layout")
    _expect_refusal(variants["byol"], tmp_path / "moco.pth.tar", tmp_path / "w", CorruptCheckpointError,
                    "not a plain pickle")


@pytest.mark.parametrize("plain_pickle", [False, True], ids=["torch-file", "plain-pickle"])
def test_malicious_pickle_is_refused_and_never_runs(variants, tmp_path, plain_pickle):
    marker = tmp_path / "payload-ran"
    source = tmp_path / ("evil.pkl" if plain_pickle else "evil.pth")
    fx.write_malicious(source, marker, plain_pickle=plain_pickle)
    spec = variants["byol" if plain_pickle else "moco"]
    _expect_refusal(spec, source, tmp_path / "w", UnsafeCheckpointError, str(source), "mkdir", "refusing")
    assert not marker.exists()


def test_malicious_canonical_file_is_refused_by_load_backbone(variants, tmp_path):
    marker = tmp_path / "payload-ran"
    fx.write_malicious(tmp_path / f"{variants['swav'].name}.pt", marker)
    with pytest.raises(UnsafeCheckpointError, match="mkdir"):
        load_backbone(variants["swav"].name, tmp_path)
    assert not marker.exists()


# --- BatchNorm in eval mode whenever features are extracted ----------------------------------------

def test_extract_uses_running_statistics(variants, tmp_path):
    from medssl_utils.data.base import ArrayImageDataset
    from medssl_utils.features import extract

    spec = variants["torchvision"]
    fx.write_checkpoint("torchvision", tmp_path / "r18.pth", "resnet18", seed=9)
    convert(spec.name, tmp_path / "r18.pth", tmp_path / "w")
    backbone = load_backbone(spec.name, tmp_path / "w")
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(6, 32, 32, 3), dtype=np.uint8)
    ds = ArrayImageDataset(name="tiny", ids=[f"i{i}" for i in range(6)], labels=np.zeros(6, int), classes=("a",),
                           images=images, fingerprint="test")
    x = torch.stack([backbone.preprocess(ds.image(i)) for i in range(6)])
    with torch.no_grad():
        expected = backbone.module.eval()(x).numpy()
        batch_stats = copy.deepcopy(backbone.module).train()(x).numpy()  # what train-mode BN would give
    assert np.abs(batch_stats - expected).max() > 1e-2  # so the check below can fail
    running_before = {k: v.clone() for k, v in backbone.module.state_dict().items() if "running" in k}
    backbone.module.train()  # left in train mode on purpose: extract must switch to eval itself
    feats = extract(backbone, ds, tmp_path / "cache", "manifest0", device="cpu", batch_size=3, progress=False)
    np.testing.assert_allclose(np.asarray(feats.features), expected, atol=1e-5, rtol=1e-5)
    for key, value in backbone.module.state_dict().items():
        if key in running_before:
            assert torch.equal(value, running_before[key]), key


# --- status and fetch ------------------------------------------------------------------------------

def test_status_without_anything_on_disk(tmp_path):
    table = status(tmp_path / "empty")
    assert set(table["model"]) == PAPER_MODELS
    assert not table[["present", "converted", "verified"]].to_numpy().any()
    assert table.loc[table.model == "simclr_v1", "manual"].item()


def test_status_tracks_conversion_and_tampering(variants, tmp_path):
    spec = dataclasses.replace(variants["moco"], filename="moco_r18.pth.tar")
    row = status(tmp_path, [spec]).iloc[0]
    assert not row.present and not row.converted
    fx.write_checkpoint("moco", tmp_path / spec.filename, "resnet18", seed=4)
    convert(spec, tmp_path / spec.filename, tmp_path)
    row = status(tmp_path, [spec]).iloc[0]
    assert row.present and row.converted and row.verified and row.path.endswith(f"{spec.name}.pt")
    with open(tmp_path / f"{spec.name}.pt", "ab") as f:
        f.write(b"x")
    assert not status(tmp_path, [spec]).iloc[0].verified


def test_fetch_from_a_file_url_then_offline_errors(variants, tmp_path):
    src = tmp_path / "mirror" / "swav_r18.pth.tar"
    src.parent.mkdir()
    ref = fx.write_checkpoint("swav", src, "resnet18", seed=8)
    spec = dataclasses.replace(variants["swav"], urls=(src.as_uri(),), filename="swav_r18.pth.tar",
                               sha256=sha256_file(src))
    paths = fetch([spec], tmp_path / "w", progress=False)
    assert (tmp_path / "w" / "swav_r18.pth.tar").read_bytes() == src.read_bytes()
    state = torch.load(paths[spec.name], weights_only=True)
    assert torch.equal(state["layer4.1.bn2.running_var"], ref["layer4.1.bn2.running_var"])
    assert status(tmp_path / "w", [spec]).iloc[0].verified
    # offline / dead link: one clear message per model, no partial file left behind
    dead = dataclasses.replace(spec, name="test-dead", urls=("http://127.0.0.1:9/nothing.pth",), filename="nothing.pth")
    with pytest.raises(ModelError, match="cannot download http://127.0.0.1:9/nothing.pth") as info:
        fetch([dead, "simclr_v1"], tmp_path / "w2", progress=False, timeout=5)
    assert "manual step" in str(info.value) and "2 of 2 models not ready" in str(info.value)
    assert not (tmp_path / "w2").exists() or not any((tmp_path / "w2").iterdir())
