"""Feature cache (medssl_utils.features): hits, keys, interrupted runs, NaN, eval-mode BatchNorm."""
import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from medssl_utils.data.base import ArrayImageDataset
from medssl_utils.features import FeatureError, cache_key, extract
from medssl_utils.models.architectures import build_headless
from medssl_utils.models.preprocessing import make_preprocess
from medssl_utils.models.registry import Backbone, ModelSpec

ROOT = Path(__file__).resolve().parents[1]
N = 40
SIZE = 32
torch.set_num_threads(1)


def make_backbone(size=SIZE):
    """A random-init torchvision ResNet-18 built here, so the test does not depend on registry names."""
    torch.manual_seed(0)
    module = build_headless("resnet18").eval()
    spec = ModelSpec(name="test-r18", title="test", family="random", arch="resnet18", feature_dim=512,
                     preprocessing="imagenet", input_size=size, profile="test")
    return Backbone(spec=spec, module=module, feature_dim=512, preprocess=make_preprocess("imagenet", size),
                    weights_hash="test-seed0")


@pytest.fixture(scope="module")
def backbone():
    return make_backbone()


def _images(n=N, size=SIZE, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def _dataset(images=None, cls=ArrayImageDataset, **kw):
    images = _images() if images is None else images
    n = len(images)
    return cls(name="toy", ids=[f"im{i:03d}" for i in range(n)], labels=np.arange(n) % 2, classes=("a", "b"),
               images=images, fingerprint="fp1", **kw)


@dataclasses.dataclass
class CountingDataset(ArrayImageDataset):
    """Overrides ``image`` (so the per-image path runs), counts reads, can fail after ``fail_after`` reads."""
    fail_after: int = -1
    reads: int = 0

    def image(self, i):
        if self.reads == self.fail_after:
            raise RuntimeError("simulated crash")
        self.reads += 1
        return super().image(i)


class CountingModule(nn.Module):
    def __init__(self, inner, fail_after_batches=-1):
        super().__init__()
        self.inner, self.calls, self.fail_after = inner, 0, fail_after_batches

    def forward(self, x):
        if self.calls == self.fail_after:
            raise RuntimeError("simulated crash in forward")
        self.calls += 1
        return self.inner(x)


def _with_module(bb, module):
    return dataclasses.replace(bb, module=module)


@pytest.fixture(scope="module")
def reference(backbone, tmp_path_factory):
    """Features of the toy set from one uninterrupted run."""
    fs = extract(backbone, _dataset(), tmp_path_factory.mktemp("ref"), "m1", progress=False, batch_size=8)
    return np.array(fs.features)


def test_hit_returns_identical_features_without_recomputation(backbone, reference, tmp_path):
    first = extract(backbone, _dataset(), tmp_path, "m1", progress=False, batch_size=8)
    np.testing.assert_array_equal(first.features, reference)
    assert first.ids == [f"im{i:03d}" for i in range(N)]
    counter = CountingModule(backbone.module)
    ds = _dataset(cls=CountingDataset)
    again = extract(_with_module(backbone, counter), ds, tmp_path, "m1", progress=False, batch_size=8)
    assert counter.calls == 0 and ds.reads == 0
    assert again.key == first.key
    np.testing.assert_array_equal(again.features, first.features)
    np.testing.assert_array_equal(again.rows(["im005", "im001"]), reference[[5, 1]])
    entry = tmp_path / "features" / first.key
    meta = json.loads((entry / "meta.json").read_text())
    assert meta["n"] == N and meta["dim"] == 512 and not (entry / "progress.json").exists()
    with pytest.raises(FeatureError, match="not in the cache"):
        again.rows(["nope"])


def test_every_input_changes_the_key(backbone):
    ds = _dataset()
    base = cache_key(backbone, ds, "m1")
    variants = {
        "weights": cache_key(dataclasses.replace(backbone, weights_hash="other"), ds, "m1"),
        "preprocess": cache_key(dataclasses.replace(backbone, preprocess=make_preprocess("none", SIZE)), ds, "m1"),
        "resize": cache_key(dataclasses.replace(backbone, preprocess=make_preprocess("imagenet", SIZE, resize=40)), ds,
                            "m1"),
        "manifest": cache_key(backbone, ds, "m2"),
        "fingerprint": cache_key(backbone, dataclasses.replace(ds, fingerprint="fp2"), "m1"),
        "dataset": cache_key(backbone, dataclasses.replace(ds, name="toy2"), "m1"),
    }
    assert len({base, *variants.values()}) == len(variants) + 1
    assert cache_key(backbone, _dataset(), "m1") == base          # and nothing else does


def test_batch_fast_path_equals_per_image_path(backbone, reference, tmp_path):
    slow = CountingDataset(**{f.name: getattr(_dataset(), f.name) for f in dataclasses.fields(ArrayImageDataset)})
    fs = extract(backbone, slow, tmp_path, "m1", progress=False, batch_size=8)
    assert slow.reads == N                                        # the per-image path really ran
    np.testing.assert_array_equal(fs.features, reference)


def test_non_square_images_use_the_per_image_preprocessing(backbone, tmp_path):
    imgs = np.random.default_rng(3).integers(0, 256, (6, 40, 48, 3), dtype=np.uint8)
    fs = extract(backbone, _dataset(imgs), tmp_path, "m1", progress=False, batch_size=4)
    x = torch.stack([backbone.preprocess(_dataset(imgs).image(i)) for i in range(6)])
    with torch.inference_mode():
        want = backbone.module.eval()(x).numpy()
    np.testing.assert_allclose(fs.features, want, rtol=1e-4, atol=1e-5)


def test_crash_in_dataset_leaves_no_entry_and_resumes(backbone, reference, tmp_path):
    crashing = _dataset(cls=CountingDataset, fail_after=21)
    with pytest.raises(RuntimeError, match="simulated crash"):
        extract(backbone, crashing, tmp_path, "m1", progress=False, batch_size=8, checkpoint_every=1)
    key = cache_key(backbone, crashing, "m1")
    entry = tmp_path / "features" / key
    assert not (entry / "meta.json").exists() and not (entry / "features.npy").exists()
    done = json.loads((entry / "progress.json").read_text())["done"]
    assert done == 16                                            # two whole batches of 8 were made durable
    resumed = _dataset(cls=CountingDataset)
    fs = extract(backbone, resumed, tmp_path, "m1", progress=False, batch_size=8, checkpoint_every=1)
    assert resumed.reads == N - done                              # only the missing rows were computed
    np.testing.assert_array_equal(fs.features, reference)


def test_crash_in_forward_on_the_fast_path_resumes(backbone, reference, tmp_path):
    crashing = CountingModule(backbone.module, fail_after_batches=3)
    with pytest.raises(RuntimeError, match="simulated crash in forward"):
        extract(_with_module(backbone, crashing), _dataset(), tmp_path, "m1", progress=False, batch_size=8,
                checkpoint_every=2)
    counter = CountingModule(backbone.module)
    fs = extract(_with_module(backbone, counter), _dataset(), tmp_path, "m1", progress=False, batch_size=8,
                 checkpoint_every=2)
    assert counter.calls == 3                                     # 5 batches, 2 were durable
    np.testing.assert_array_equal(fs.features, reference)


def test_garbled_partial_files_are_discarded(backbone, reference, tmp_path):
    entry = tmp_path / "features" / cache_key(backbone, _dataset(), "m1")
    entry.mkdir(parents=True)
    (entry / "features.partial.npy").write_bytes(b"\x93NUMPY garbage")
    (entry / "progress.json").write_text('{"done": 24')
    fs = extract(backbone, _dataset(), tmp_path, "m1", progress=False, batch_size=8)
    np.testing.assert_array_equal(fs.features, reference)


_CHILD = textwrap.dedent("""
    import sys, time, dataclasses
    import numpy as np, torch
    torch.set_num_threads(1)
    sys.path.insert(0, sys.argv[3])
    from medssl_utils.data.base import ArrayImageDataset
    from medssl_utils.features import extract
    from test_features import make_backbone

    @dataclasses.dataclass
    class Slow(ArrayImageDataset):
        def image(self, i):
            if i >= 16:
                time.sleep(0.5)        # slow after two batches, so the parent can kill mid-run
            return super().image(i)

    images = np.load(sys.argv[2])
    ds = Slow(name="toy", ids=[f"im{i:03d}" for i in range(len(images))], labels=np.arange(len(images)) % 2,
              classes=("a", "b"), images=images, fingerprint="fp1")
    extract(make_backbone(), ds, sys.argv[1], "m1", progress=False, batch_size=8,
            checkpoint_every=1)
""")


def test_sigkill_mid_extraction_then_resume(backbone, reference, tmp_path):
    np.save(tmp_path / "images.npy", _images())
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    cache = tmp_path / "cache"
    entry = cache / "features" / cache_key(backbone, _dataset(), "m1")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    child = subprocess.Popen([sys.executable, str(script), str(cache), str(tmp_path / "images.npy"),
                              str(Path(__file__).parent)], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 45
        done = 0
        while time.monotonic() < deadline and child.poll() is None:
            try:
                done = json.loads((entry / "progress.json").read_text())["done"]
            except (OSError, ValueError, KeyError):
                done = 0
            if done >= 16:
                break
            time.sleep(0.05)
        assert child.poll() is None, f"child ended early: {child.stderr.read().decode()[-2000:]}"
        assert done >= 16, "child made no progress in time"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL
    assert not (entry / "meta.json").exists()
    resumed = _dataset(cls=CountingDataset)
    fs = extract(backbone, resumed, cache, "m1", progress=False, batch_size=8, checkpoint_every=1)
    assert 0 < resumed.reads <= N - 16
    np.testing.assert_array_equal(fs.features, reference)


def test_nan_features_are_a_clear_error(backbone, tmp_path):
    class NaNAfter(nn.Module):
        def forward(self, x):
            out = torch.zeros(len(x), 512)
            out[-1, 3] = float("nan")
            return out

    with pytest.raises(FeatureError, match=r"non-finite .*row 7 \(id 'im007'\)"):
        extract(_with_module(backbone, NaNAfter()), _dataset(), tmp_path, "m1", progress=False, batch_size=8)
    entry = tmp_path / "features" / cache_key(backbone, _dataset(), "m1")
    assert not (entry / "meta.json").exists() and not (entry / "features.npy").exists()


def test_nan_in_a_cached_entry_names_the_entry(backbone, tmp_path):
    """A damaged cache file (NaN planted after extraction) is refused on the hit, naming entry, model and dataset."""
    fs = extract(backbone, _dataset(), tmp_path, "m1", progress=False, batch_size=8)
    entry = tmp_path / "features" / fs.key
    del fs
    planted = np.load(entry / "features.npy", mmap_mode="r+")
    planted[12, 5], planted[30, 0] = np.nan, np.inf
    planted.flush()
    del planted
    counter = CountingModule(backbone.module)
    with pytest.raises(FeatureError) as info:
        extract(_with_module(backbone, counter), _dataset(), tmp_path, "m1", progress=False, batch_size=8)
    msg = str(info.value)
    assert "\n" not in msg and str(entry / "features.npy") in msg and "'test-r18'" in msg and "'toy'" in msg
    assert "row 12 (id 'im012')" in msg and f"delete {entry}" in msg
    assert counter.calls == 0                                    # refused, not silently recomputed


def test_batchnorm_runs_in_eval_mode(backbone, reference, tmp_path):
    backbone.module.train()                                      # a caller left it in train mode
    try:
        fs = extract(backbone, _dataset(), tmp_path, "m1", progress=False, batch_size=16)
        assert backbone.module.training                          # the caller's mode is restored
    finally:
        backbone.module.eval()
    # running statistics, not batch statistics: rows do not depend on the batch they were in
    np.testing.assert_allclose(fs.features, reference, rtol=1e-4, atol=1e-5)
    single = extract(backbone, _dataset(_images()[:3]), tmp_path / "one", "m1", progress=False, batch_size=1)
    np.testing.assert_allclose(single.features, reference[:3], rtol=1e-4, atol=1e-5)
    with torch.inference_mode():
        x = torch.stack([backbone.preprocess(_dataset().image(i)) for i in range(N)])
        train_mode = backbone.module.train()(x).numpy()
        backbone.module.eval()
    assert not np.allclose(train_mode, reference, atol=1e-3)     # batch statistics would have differed
