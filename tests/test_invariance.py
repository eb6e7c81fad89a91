"""Whitened cosine-similarity invariance, Equation (3) of the paper (section 4.4.3)."""
import numpy as np
import pytest
import torch
from torch import nn

from medssl_utils.analysis import (AnalysisError, features_of, fit_whitening, horizontal_flips, hue_shifts,
                                   invariance, multiview_pairs, rotations, similarities)
from medssl_utils.analysis.invariance import sample_rows


pytestmark = pytest.mark.usefixtures("one_thread")


class FlipSymmetric(nn.Module):
    """f(x) = g(x) + g(mirror(x)): exactly blind to horizontal flips, not to rotations."""

    def __init__(self):
        super().__init__()
        self.g = nn.Sequential(nn.Conv2d(3, 8, 5, stride=2), nn.BatchNorm2d(8), nn.ReLU(),
                               nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(32, 8))

    def forward(self, x):
        return self.g(x) + self.g(torch.flip(x, dims=[-1]))


def _spd(d, seed):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(d, d))
    return a @ a.T + 0.5 * np.eye(d)


def _structured_images(n, size=24, seed=0):
    g = torch.Generator().manual_seed(seed)
    ramp = torch.linspace(0, 1, size)
    base = torch.rand((n, 3, 1, 1), generator=g) * ramp.view(1, 1, 1, size)        # left-right gradient
    blobs = torch.rand((n, 3, size, size), generator=g)
    return (0.6 * base + 0.4 * blobs).clamp(0, 1)


def test_whitening_matches_numpy_on_a_known_covariance():
    d = 5
    sigma = _spd(d, 0)
    x = np.random.default_rng(1).multivariate_normal(np.arange(d, dtype=float), sigma, size=20000)
    w = fit_whitening(x, shrinkage="none", eps=0.0, max_images=len(x))
    assert w.method == "empirical" and w.n_images == 20000
    assert np.allclose(w.L, np.tril(w.L))                                     # lower triangular
    np.testing.assert_allclose(w.L @ w.L.T, np.linalg.inv(np.cov(x, rowvar=False)), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(w.L @ w.L.T, np.linalg.inv(sigma), rtol=0.1, atol=0.05)   # the true Sigma^-1
    np.testing.assert_allclose(w.mean, np.arange(d), atol=0.1)
    z = w.apply(x)
    np.testing.assert_allclose(np.cov(z, rowvar=False), np.eye(d), atol=1e-8)
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-10)


def test_shrinkage_when_fewer_images_than_dimensions():
    from sklearn.covariance import LedoitWolf
    x = np.random.default_rng(2).normal(size=(30, 50))
    w = fit_whitening(x)                                   # default "auto": N <= D -> Ledoit-Wolf
    assert w.method == "ledoit_wolf"
    expected = LedoitWolf().fit(x).covariance_ + 1e-6 * np.eye(50)
    np.testing.assert_allclose(w.L @ w.L.T, np.linalg.inv(expected), rtol=1e-6, atol=1e-8)
    authors = fit_whitening(x, shrinkage="none")           # rank 29 covariance + 1e-6 I, as the authors
    assert authors.method == "empirical" and np.isfinite(authors.L).all()
    assert np.linalg.eigvalsh(authors.covariance).min() == pytest.approx(1e-6, rel=1e-3)
    assert fit_whitening(np.random.default_rng(3).normal(size=(200, 10))).method == "empirical"
    with pytest.raises(AnalysisError, match="shrinkage"):
        fit_whitening(x, shrinkage="oas")


def test_covariance_sampling():
    assert np.array_equal(sample_rows(700), np.arange(700))
    paper = sample_rows(5000)
    assert len(paper) == 1000 and len(np.unique(paper)) == 1000
    assert len(sample_rows(20000, sampling="authors")) == 2000               # max(1000, 10 %)
    assert len(np.unique(sample_rows(5000, sampling="authors"))) < 1000      # with replacement


def test_invariance_is_one_for_a_transform_the_model_ignores():
    torch.manual_seed(0)
    net = FlipSymmetric().eval()
    pool = _structured_images(300, seed=0)
    w = fit_whitening(features_of(net, pool, None, batch_size=64))
    test = _structured_images(20, seed=1)
    clean = features_of(net, test, None)
    flips = np.stack([features_of(net, horizontal_flips(img).images, None) for img in test])
    assert invariance(clean, flips, w, identity_index=0) == pytest.approx(1.0, abs=1e-6)
    rots = [rotations(img, k=4) for img in test]
    rot_feats = np.stack([features_of(net, r.images, None) for r in rots])
    assert invariance(clean, rot_feats, w, identity_index=rots[0].identity_index) < 0.95


def test_invariance_is_near_zero_for_unrelated_features_and_identity_switch():
    rng = np.random.default_rng(4)
    sigma = _spd(16, 5)
    clean = rng.multivariate_normal(np.zeros(16), sigma, size=3000)
    other = rng.multivariate_normal(np.zeros(16), sigma, size=(3000, 2))
    w = fit_whitening(clean, max_images=3000)
    assert abs(invariance(clean, other, w)) < 0.03
    with_identity = np.concatenate([clean[:, None, :], other], axis=1)
    assert abs(invariance(clean, with_identity, w, identity_index=0)) < 0.03     # identity left out
    authors = invariance(clean, with_identity, w, identity_index=0, include_identity=True)
    assert authors == pytest.approx(1 / 3, abs=0.03)
    sims = similarities(clean, with_identity, w)
    assert sims.shape == (3000, 3) and np.allclose(sims[:, 0], 1.0)
    with pytest.raises(AnalysisError, match="transformed_feats"):
        invariance(clean, other[:10], w)


def test_multiview_pairs():
    f = np.arange(12, dtype=float).reshape(6, 2)
    clean, other = multiview_pairs(f, np.array([[0, 1], [4, 5]]))
    assert clean.shape == (2, 2) and other.shape == (2, 1, 2)
    assert np.array_equal(other[1, 0], f[5])
    with pytest.raises(AnalysisError, match="pairs"):
        multiview_pairs(f, np.array([[0, 6]]))


def test_transform_sets():
    img = torch.rand((3, 16, 16), generator=torch.Generator().manual_seed(0))
    rot = rotations(img, k=20)
    assert np.allclose(rot.params, np.arange(20) * 18.0) and rot.identity_index == 0
    assert rot.images.shape == (20, 3, 16, 16) and torch.equal(rot.images[0], img)
    flip = horizontal_flips(img)
    assert list(flip.params) == [False, True] and torch.equal(flip.images[1], torch.flip(img, dims=[-1]))
    hue = hue_shifts(img, k=5)
    assert np.allclose(hue.params, [-0.5, -0.25, 0, 0.25, 0.5]) and hue.identity_index == 2
    assert torch.equal(hue.images[2], img) and not torch.allclose(hue.images[3], img)
    assert hue.images.min() >= 0 and hue.images.max() <= 1
    assert hue_shifts(img, k=4).identity_index is None


def test_features_of_train_mode_depends_on_batching_and_leaves_module_alone():
    torch.manual_seed(1)
    net = FlipSymmetric().eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x = _structured_images(8, seed=2)
    ev2, ev8 = features_of(net, x, None, batch_size=2), features_of(net, x, None, batch_size=8)
    np.testing.assert_allclose(ev2, ev8, rtol=1e-5, atol=1e-6)
    tr2 = features_of(net, x, None, bn_mode="train", batch_size=2)
    tr8 = features_of(net, x, None, bn_mode="train", batch_size=8)
    assert not np.allclose(tr2, tr8) and not np.allclose(tr8, ev8)
    assert not net.training
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_transformed_normalisation_switch():
    torch.manual_seed(2)
    net = FlipSymmetric().eval()
    x = _structured_images(4, seed=3)
    from medssl_utils.models.preprocessing import make_preprocess
    histeq, imnet = make_preprocess("histeq", 24), make_preprocess("imagenet", 24)
    own = features_of(net, x, histeq.normalise)
    authors = features_of(net, x, histeq.normalise, transformed_normalisation="imagenet")
    np.testing.assert_allclose(authors, features_of(net, x, imnet.normalise), rtol=1e-6)
    assert not np.allclose(own, authors)
    with pytest.raises(AnalysisError, match="transformed_normalisation"):
        features_of(net, x, None, transformed_normalisation="hist")
