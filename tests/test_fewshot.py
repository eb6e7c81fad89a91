"""Few-shot protocol (medssl_utils.protocols.fewshot): episodes, prototype classification, the paper's CI."""
import numpy as np
import pytest

from medssl_utils.protocols.fewshot import FewShotError, episode_accuracies, mean_ci95, sample_episodes


def _labels(n_per_class=(40, 40)):
    return np.repeat(np.arange(len(n_per_class)), n_per_class)


def test_well_separated_features_are_perfect():
    rng = np.random.default_rng(0)
    labels = _labels((40, 45, 50))
    feats = 10 * np.eye(3)[labels] + rng.normal(0, 0.1, (len(labels), 3))
    eps = sample_episodes(labels, n_way=3, n_episodes=50, seed=1)
    assert np.all(episode_accuracies(feats, eps) == 1.0)


def test_indistinguishable_classes_are_at_chance():
    rng = np.random.default_rng(1)
    labels = _labels((60, 60))
    feats = rng.normal(0, 1, (120, 8))            # both classes drawn from one distribution
    acc = episode_accuracies(feats, sample_episodes(labels, n_way=2, n_episodes=600, seed=2))
    mean, ci = mean_ci95(acc)
    assert abs(mean - 0.5) < max(2 * ci, 0.02)
    # exactly identical rows: every distance ties, the lowest class index wins: exactly 1/2
    same = np.ones((120, 4))
    assert np.all(episode_accuracies(same, sample_episodes(labels, n_way=2, n_episodes=20)) == 0.5)


def test_ci_is_the_papers_formula_by_hand():
    values = np.array([0.5, 0.7, 0.9])
    mean, half = mean_ci95(values)
    std_pop = np.sqrt(((0.5 - 0.7) ** 2 + 0 + (0.9 - 0.7) ** 2) / 3)     # ddof=0, as the authors' np.std
    assert mean == pytest.approx(0.7)
    assert half == pytest.approx(1.96 * std_pop / np.sqrt(3))
    assert mean_ci95(np.full(10, 0.8)) == (pytest.approx(0.8), 0.0)
    with pytest.raises(FewShotError):
        mean_ci95(np.array([]))


def test_vectorised_accuracy_matches_a_plain_loop():
    rng = np.random.default_rng(3)
    labels = _labels((40, 40, 40))
    feats = rng.normal(0, 1, (120, 6)) + 0.8 * np.eye(3, 6)[labels]
    eps = sample_episodes(labels, n_way=3, n_shot=5, n_query=4, n_episodes=40, seed=4)
    fast = episode_accuracies(feats, eps, chunk=7)
    for e in range(40):
        protos = np.stack([feats[eps.support[e, w]].mean(0) for w in range(3)])
        right = 0
        for w in range(3):
            for q in eps.query[e, w]:
                right += int(np.argmin(((feats[q] - protos) ** 2).sum(1)) == w)
        assert fast[e] == pytest.approx(right / 12)


def test_same_seed_same_episodes_for_every_model():
    labels = _labels((50, 70))
    a = sample_episodes(labels, n_way=2, n_episodes=30, seed=7)
    b = sample_episodes(labels.copy(), n_way=2, n_episodes=30, seed=7)
    for k in ("classes", "support", "query"):
        np.testing.assert_array_equal(a.to_npz()[k], b.to_npz()[k])
    c = sample_episodes(labels, n_way=2, n_episodes=30, seed=8)
    assert not np.array_equal(a.support, c.support)
    # two models' features index the same rows, so per-episode outcomes pair up
    rng = np.random.default_rng(0)
    f1, f2 = rng.normal(size=(120, 4)), rng.normal(size=(120, 4))
    assert episode_accuracies(f1, a).shape == episode_accuracies(f2, a).shape == (30,)


def test_episodes_are_valid():
    labels = _labels((40, 36, 50, 45))
    pool = np.flatnonzero(np.arange(len(labels)) % 7 != 0)      # a restricted pool is respected
    eps = sample_episodes(labels, n_way=3, n_shot=5, n_query=6, n_episodes=100, seed=5, pool=pool)
    assert eps.shape == (100, 3, 5, 6)
    for e in range(100):
        assert len(set(eps.classes[e])) == 3
        for w, c in enumerate(eps.classes[e]):
            sup, qry = eps.support[e, w], eps.query[e, w]
            assert np.all(labels[sup] == c) and np.all(labels[qry] == c)
            assert len(set(sup)) == 5 and len(set(qry)) == 6 and not set(sup) & set(qry)
        assert np.isin(eps.support[e], pool).all() and np.isin(eps.query[e], pool).all()
    # all classes get used across episodes
    assert set(np.unique(eps.classes)) == {0, 1, 2, 3}


def test_too_small_dataset_is_a_clear_error():
    labels = _labels((40, 30))
    with pytest.raises(FewShotError, match=r"\{1: 30\}.*35 images"):
        sample_episodes(labels, n_way=2)                       # 20-shot + 15 queries = 35 per class
    with pytest.raises(FewShotError, match="3-way episodes need 3 classes"):
        sample_episodes(_labels((40, 40)), n_way=3)


def test_nan_features_are_rejected():
    labels = _labels((40, 40))
    feats = np.zeros((80, 3))
    feats[5, 1] = np.nan
    with pytest.raises(FewShotError, match="NaN"):
        episode_accuracies(feats, sample_episodes(labels, n_way=2, n_episodes=5))
