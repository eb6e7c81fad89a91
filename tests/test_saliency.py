"""Occlusion saliency and attentive diffusion (paper section 4.4.1)."""
import numpy as np
import pytest
import torch
from torch import nn

from medssl_utils.analysis import (AnalysisError, attentive_diffusion, occlusion_saliency,
                                   scaled_patch)


pytestmark = pytest.mark.usefixtures("one_thread")



class QuadrantNet(nn.Module):
    """Sees only the top-left quadrant; features keep their spatial layout so every seen pixel matters."""

    def __init__(self, size: int):
        super().__init__()
        self.half = size // 2
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x):
        return torch.tanh(self.conv(x[:, :, :self.half, :self.half])).flatten(1)


class SmallBNNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 6, 3, stride=2, padding=1), nn.BatchNorm2d(6), nn.ReLU(),
                                  nn.Conv2d(6, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                  nn.AdaptiveAvgPool2d(1), nn.Flatten())

    def forward(self, x):
        return self.body(x)


def _bn_net(seed=0):
    torch.manual_seed(seed)
    net = SmallBNNet()
    with torch.no_grad():           # non-trivial running statistics, so eval and train modes differ
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    return net.eval()


def _image(size, seed=0):
    return torch.rand((3, size, size), generator=torch.Generator().manual_seed(seed))


def test_saliency_concentrates_where_the_model_looks():
    torch.manual_seed(0)
    size, patch = 24, 3
    net = QuadrantNet(size).eval()
    m = occlusion_saliency(net, _image(size), None, patch=patch, progress=False)
    assert m.shape == (size - 2 * (patch - 1),) * 2
    # A patch touches the seen quadrant (image rows/cols < 12) only if it covers a pixel <= 13,
    # i.e. map index <= 11; beyond that the feature cannot change.
    assert np.abs(m[12:, :]).max() <= 1e-6 * m.max()
    assert np.abs(m[:, 12:]).max() <= 1e-6 * m.max()
    assert (m[:10, :10] > 0).all()
    assert m[:12, :12].sum() / m.sum() > 0.999


def test_eval_mode_batched_equals_one_per_forward():
    net = _bn_net()
    img = _image(20, seed=1)
    one = occlusion_saliency(net, img, lambda t: (t - 0.5) / 0.25, patch=4, batch_size=1, progress=False)
    many = occlusion_saliency(net, img, lambda t: (t - 0.5) / 0.25, patch=4, batch_size=37, progress=False)
    np.testing.assert_allclose(many, one, rtol=1e-5, atol=1e-8)
    assert one.std() > 0


def test_train_mode_is_authors_batchnorm_and_leaves_the_module_alone():
    net = _bn_net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    img = _image(20, seed=2)
    ev = occlusion_saliency(net, img, None, patch=4, progress=False)
    tr = occlusion_saliency(net, img, None, patch=4, bn_mode="train", progress=False)
    assert not np.allclose(ev, tr)                     # per-image statistics change the features
    assert not net.training                            # mode restored
    for k, v in net.state_dict().items():              # running statistics untouched
        assert torch.equal(v, before[k]), k
    with pytest.raises(AnalysisError, match="one per forward"):
        occlusion_saliency(net, img, None, patch=4, bn_mode="train", batch_size=8, progress=False)


def test_patch_value_is_written_in_normalised_space():
    # A constant image whose normalised version is all zeros: a zero patch after normalisation changes nothing.
    net = _bn_net()
    img = torch.full((3, 16, 16), 0.5)
    m = occlusion_saliency(net, img, lambda t: (t - 0.5) / 0.25, patch=3, progress=False)
    assert np.abs(m).max() < 1e-6
    m_other = occlusion_saliency(net, img, lambda t: (t - 0.5) / 0.25, patch=3, value=1.0, progress=False)
    assert m_other.max() > 1e-3


def test_crop_and_stride_arguments():
    net = _bn_net()
    img = _image(40, seed=3)
    m = occlusion_saliency(net, img, None, patch=10, progress=False)
    assert m.shape == (22, 22)                          # 40 - 2 * 9: as 242 -> 224 in the paper
    m2 = occlusion_saliency(net, img, None, patch=10, stride=5, crop=0, progress=False)
    assert m2.shape == (40, 40) and np.isfinite(m2).all()
    with pytest.raises(AnalysisError, match="stride"):
        occlusion_saliency(net, img, None, patch=4, stride=5, progress=False)
    with pytest.raises(AnalysisError, match="patch"):
        occlusion_saliency(net, img, None, patch=41, progress=False)
    with pytest.raises(AnalysisError, match=r"\[0, 1\]"):
        occlusion_saliency(net, img * 3, None, patch=4, progress=False)


def test_scaled_patch():
    assert scaled_patch(242) == 10
    assert scaled_patch(64) == 3
    assert scaled_patch(8) == 1


def test_attentive_diffusion():
    assert attentive_diffusion(np.zeros((50, 50))) == 0.0
    assert attentive_diffusion(np.full((37, 41), 0.1)) == 0.0      # mean rounding cannot count pixels
    peak = np.zeros((50, 50))
    peak[20, 30] = 1.0
    assert attentive_diffusion(peak) == pytest.approx(100 / 2500)
    half = np.zeros((10, 10))
    half[:5] = 1.0
    assert attentive_diffusion(half) == pytest.approx(50.0)
    broad = np.random.default_rng(0).uniform(size=(64, 64))
    assert 40 < attentive_diffusion(broad) < 60
    with pytest.raises(AnalysisError):
        attentive_diffusion(np.array([[np.nan, 1.0]]))
