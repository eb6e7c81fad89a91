"""Deep-image-prior feature inversion and the LPIPS-or-substitute perceptual distance (paper section 4.4.2)."""
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from medssl_utils.analysis import (AnalysisError, SkipGenerator, headline_metric, invert_features,
                                   perceptual_distance)
from medssl_utils.analysis.reconstruction import LPIPS_TRUNKS, _build_lpips, noise_side


pytestmark = pytest.mark.usefixtures("one_thread")


SMALL = dict(channels=(8, 8, 8), skip=2, filters=(3, 3, 3), noise_channels=8)


class TinyBackbone(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)

    def feature_map(self, x):
        return self.conv2(torch.relu(self.bn(self.conv1(x))))

    def forward(self, x):
        return self.feature_map(x).mean((2, 3))


def _backbone():
    torch.manual_seed(0)
    net = TinyBackbone()
    for p in net.parameters():
        p.requires_grad_(True)       # the inversion must not touch them even when they could get gradients
    return net


def _image(size=32, seed=0):
    return torch.rand((3, size, size), generator=torch.Generator().manual_seed(seed))


def test_dip_loss_decreases_and_backbone_is_untouched():
    net = _backbone().train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    rec = invert_features(net, _image(), lambda t: (t - 0.5) / 0.25, n_steps=40, progress=False, **SMALL)
    assert rec.losses.shape == (40,) and np.isfinite(rec.losses).all()
    assert rec.losses[-5:].mean() < 0.8 * rec.losses[0]
    assert rec.image.shape == (3, 32, 32) and rec.image.dtype == np.float32
    assert rec.image.min() >= 0.0 and rec.image.max() <= 1.0
    assert net.training                                   # caller's mode restored
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert all(p.grad is None for p in net.parameters())


def test_dip_is_seeded():
    net = _backbone().eval()
    a = invert_features(net, _image(), None, normalise_input=False, n_steps=3, seed=1, progress=False, **SMALL)
    b = invert_features(net, _image(), None, normalise_input=False, n_steps=3, seed=1, progress=False, **SMALL)
    c = invert_features(net, _image(), None, normalise_input=False, n_steps=3, seed=2, progress=False, **SMALL)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.losses, b.losses)
    assert not np.array_equal(a.image, c.image)


def test_normalise_input_switch():
    net = _backbone().eval()

    def boom(t):
        raise RuntimeError("normalise must not be called when normalise_input=False")

    invert_features(net, _image(), boom, normalise_input=False, n_steps=1, progress=False, **SMALL)
    with pytest.raises(AnalysisError, match="normalise_input"):
        invert_features(net, _image(), None, n_steps=1, progress=False, **SMALL)
    calls = []
    invert_features(net, _image(), lambda t: calls.append(1) or t, n_steps=2, progress=False, **SMALL)
    assert len(calls) == 1 + 1 + 2       # a gradient probe, the target, then every step


def test_generator_sizes():
    assert noise_side(224, 6) == 256                       # the authors' 256 -> 224 crop
    assert noise_side(64, 6) == 256 and noise_side(64, 4) == 64
    g = SkipGenerator(8, 3, (8, 8, 8), 2, (3, 3, 3))
    assert g(torch.rand(1, 8, 32, 32)).shape == (1, 3, 32, 32)
    paper = SkipGenerator()                                # the authors' 6-level skip net builds
    assert paper.levels == 6
    with pytest.raises(AnalysisError):
        SkipGenerator(8, 3, (8, 8), 2, (3,))


def test_substitute_distance_is_never_called_lpips(tmp_path):
    a = _image(48, 1)
    noisy = (a + 0.1 * torch.randn(a.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    noisier = (a + 0.3 * torch.randn(a.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    for weights_dir in (None, tmp_path):                   # no weights dir / a dir without trunk files
        same = perceptual_distance(a, a, weights_dir)
        assert set(same) == {"one_minus_ssim", "mse"}
        assert not any("lpips" in k for k in same)
        assert headline_metric(same) == "one_minus_ssim"
        assert same["one_minus_ssim"] == pytest.approx(0.0, abs=1e-9) and same["mse"] == 0.0
        d1, d2 = perceptual_distance(a, noisy, weights_dir), perceptual_distance(a, noisier, weights_dir)
        assert 0 < d1["one_minus_ssim"] < d2["one_minus_ssim"]
        assert 0 < d1["mse"] < d2["mse"]
    with pytest.raises(AnalysisError, match="alexnet-owt-7be5be79.pth"):
        perceptual_distance(a, a, tmp_path, require_lpips=True)
    with pytest.raises(AnalysisError, match="shape"):
        perceptual_distance(a, _image(40), None)


def _fake_squeeze_file(directory: Path) -> Path:
    import torchvision
    torch.manual_seed(3)
    state = torchvision.models.squeezenet1_1(weights=None).state_dict()
    path = directory / [t.filename for t in LPIPS_TRUNKS if t.lpips_net == "squeeze"][0]
    torch.save(state, path)
    return path


def test_lpips_trunk_is_loaded_from_the_file_and_heads_are_the_shipped_ones(tmp_path):
    import lpips
    path = _fake_squeeze_file(tmp_path)
    state = torch.load(path, weights_only=True)
    model = _build_lpips("squeeze", path)
    trunk = model.net.state_dict()
    used = {"features." + key.split(".", 1)[1] for key in trunk}
    assert used == {k for k in state if k.startswith("features.")}      # every trunk tensor, nothing else
    for key, value in trunk.items():
        assert torch.equal(value, state["features." + key.split(".", 1)[1]]), key
    shipped = torch.load(Path(lpips.__file__).parent / "weights/v0.1/squeeze.pth", map_location="cpu",
                         weights_only=True)
    for key, value in shipped.items():
        assert torch.equal(model.state_dict()[key], value), key


def test_a_trunk_file_with_the_wrong_hash_is_refused(tmp_path):
    _fake_squeeze_file(tmp_path)                          # right name, but not torchvision's ImageNet weights
    with pytest.raises(AnalysisError, match="sha256"):
        perceptual_distance(_image(48), _image(48, 2), tmp_path)


def test_lpips_keys_only_for_present_trunks_and_mean_only_for_all_three(tmp_path, monkeypatch):
    from medssl_utils.analysis import reconstruction
    _fake_squeeze_file(tmp_path)
    monkeypatch.setattr(reconstruction, "_check_hash", lambda path: None)   # the fake file stands in for ImageNet
    a, b = _image(48, 1), _image(48, 2)
    d = perceptual_distance(a, b, tmp_path)
    assert set(d) == {"one_minus_ssim", "mse", "lpips_squeeze"}         # no mean over a single net
    assert d["lpips_squeeze"] > 0 and headline_metric(d) == "one_minus_ssim"
    assert perceptual_distance(a, a, tmp_path)["lpips_squeeze"] == pytest.approx(0.0, abs=1e-7)


def test_non_differentiable_normalisation_is_refused_clearly():
    from medssl_utils.models.preprocessing import make_preprocess
    histeq = make_preprocess("histeq", 32)
    with pytest.raises(AnalysisError, match="does not pass gradients"):
        invert_features(_backbone().eval(), _image(), histeq.normalise, n_steps=1, progress=False, **SMALL)
