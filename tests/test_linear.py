"""Linear probe (medssl_utils.protocols.linear): selection on val, refit, conventions, bad input."""
import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.special import logsumexp

from medssl_utils.protocols.linear import LinearProbeError, c_grid, linear_probe


def _blobs(rng, n_per_class, centres, sd=1.0):
    X = np.concatenate([rng.normal(c, sd, (n_per_class, len(c))) for c in centres])
    y = np.repeat(np.arange(len(centres)), n_per_class)
    return X, y


def _splits(seed=0, centres=((0, 0, 0, 0), (3, 3, 0, 0)), n=(60, 20, 40), sd=1.0):
    rng = np.random.default_rng(seed)
    return [v for k in n for v in _blobs(rng, k, np.asarray(centres, float), sd)]


def test_grids_follow_paper_and_code():
    paper, code = c_grid("paper"), c_grid("code")
    assert len(paper) == len(code) == 45
    assert paper[0] == pytest.approx(1e-6) and paper[-1] == pytest.approx(1e5) and np.all(np.diff(paper) > 0)
    assert code[0] == pytest.approx(1e6) and code[-1] == pytest.approx(1e-5) and np.all(np.diff(code) < 0)
    np.testing.assert_allclose(np.diff(np.log10(paper)), 11 / 44)


def test_separable_binary_task():
    res = linear_probe(*_splits(centres=((0, 0, 0, 0), (8, 8, 0, 0))), max_iter=200)
    assert res.test_accuracy == 1.0 and res.test_auc == 1.0 and res.test_metric == 1.0
    assert res.best_C in res.grid and len(res.val_scores) == 45 and len(res.n_iter) == 45
    assert res.test_proba.shape == (80, 2)
    np.testing.assert_allclose(res.test_proba.sum(1), 1.0)
    assert res.test_correct.dtype == bool and res.test_correct.all()


def test_chosen_C_is_first_best_in_sweep_order():
    for convention in ("paper", "code"):
        res = linear_probe(*_splits(seed=1, sd=2.0), c_grid_convention=convention, max_iter=200)
        first_best = int(np.argmax(res.val_scores))          # argmax returns the first maximum
        assert res.best_C == res.grid[first_best]
        assert res.best_val_score == res.val_scores.max()
        # weak regularisation (large C) wins ties in the authors' sweep, strong in the paper's
        ties = res.grid[res.val_scores == res.val_scores.max()]
        assert res.best_C == (ties.max() if convention == "code" else ties.min())


def test_strong_regularisation_predicts_majority_and_selection_avoids_it():
    rng = np.random.default_rng(2)
    centres = np.array([[0.0, 0, 0, 0], [2, 2, 0, 0]])
    X0, y0 = _blobs(rng, 90, centres[:1])
    X1, y1 = _blobs(rng, 30, centres[1:])
    X_tr, y_tr = np.concatenate([X0, X1]), np.r_[y0, y1 + 1]        # 3:1 imbalance in train
    X_va, y_va, X_te, y_te = _splits(seed=12, centres=centres, n=(20, 40))
    res = linear_probe(X_tr, y_tr, X_va, y_va, X_te, y_te)
    # C = 1e-6 leaves the weights at ~0, so the intercept (the train majority) decides: chance on balanced val
    assert res.val_scores[0] == pytest.approx(0.5)
    assert res.best_val_score > 0.8 and res.test_accuracy > 0.8


def test_warm_start_same_answer_fewer_iterations():
    data = _splits(seed=3, centres=((0, 0, 0, 0), (2, 0, 0, 0), (0, 2, 0, 0)), sd=1.2)
    grid = np.logspace(-4, 3, 15)
    warm = linear_probe(*data, grid=grid, warm_start=True, tol=1e-7)
    cold = linear_probe(*data, grid=grid, warm_start=False, tol=1e-7)
    assert warm.converged and cold.converged
    assert warm.best_C == cold.best_C
    np.testing.assert_allclose(warm.test_proba, cold.test_proba, atol=1e-3)
    assert warm.n_iter.sum() < cold.n_iter.sum()


def test_binary_fit_is_the_multinomial_model():
    """The paper's model has one weight vector per class; sklearn fits one vector for two classes."""
    X_tr, y_tr, X_va, y_va, X_te, y_te = _splits(seed=4, sd=2.5, n=(30, 10, 20))
    C = 0.05
    res = linear_probe(X_tr, y_tr, X_va, y_va, X_te, y_te, grid=[C], tol=1e-10, max_iter=10_000, standardize=False)
    X, y = np.concatenate([X_tr, X_va]), np.concatenate([y_tr, y_va])
    d = X.shape[1]

    def objective(theta):      # sum of cross-entropies + 1/(2C) * (||w0||^2 + ||w1||^2), intercepts free
        W, b = theta[:2 * d].reshape(2, d), theta[2 * d:]
        z = X @ W.T + b
        return -(z[np.arange(len(y)), y] - logsumexp(z, axis=1)).sum() + 0.5 / C * (W ** 2).sum()

    theta = minimize(objective, np.zeros(2 * d + 2), method="BFGS", options={"gtol": 1e-9}).x
    z = X_te @ theta[:2 * d].reshape(2, d).T + theta[2 * d:]
    p = np.exp(z - logsumexp(z, axis=1, keepdims=True))
    np.testing.assert_allclose(res.test_proba, p, atol=2e-4)


def test_mean_per_class_accuracy_metric():
    rng = np.random.default_rng(5)
    X0, y0 = _blobs(rng, 150, np.array([[0.0, 0, 0], [1.5, 0, 0]]))
    keep = np.r_[np.arange(150), np.arange(150, 180)]                 # 5:1 imbalance
    X, y = X0[keep], y0[keep]
    idx = rng.permutation(len(y))
    tr, va, te = idx[:100], idx[100:140], idx[140:]
    res = linear_probe(X[tr], y[tr], X[va], y[va], X[te], y[te], metric="mean_per_class_accuracy")
    hand = np.mean([np.mean(res.test_pred[y[te] == c] == c) for c in (0, 1)])
    assert res.test_metric == pytest.approx(hand) == pytest.approx(res.test_mean_per_class_accuracy)
    assert res.test_accuracy == pytest.approx(np.mean(res.test_pred == y[te]))


def test_multiclass_has_no_auc_and_string_free_labels():
    X_tr, y_tr, X_va, y_va, X_te, y_te = _splits(seed=6, centres=((0, 0, 0, 0), (4, 0, 0, 0), (0, 4, 0, 0)))
    shift = 10     # labels need not be 0..K-1
    res = linear_probe(X_tr, y_tr + shift, X_va, y_va + shift, X_te, y_te + shift, grid=np.logspace(-2, 2, 5))
    assert np.isnan(res.test_auc)
    assert list(res.classes) == [10, 11, 12] and res.test_proba.shape == (len(y_te), 3)
    assert res.test_accuracy > 0.9
    assert set(res.summary()) >= {"best_C", "c_grid_convention", "warm_start", "max_iter"}


def test_bad_input_gives_clear_errors():
    X_tr, y_tr, X_va, y_va, X_te, y_te = _splits(seed=7)
    bad = X_va.copy()
    bad[3, 1] = np.nan
    with pytest.raises(LinearProbeError, match="X_val has NaN"):
        linear_probe(X_tr, y_tr, bad, y_va, X_te, y_te)
    inf = X_tr.copy()
    inf[0, 0] = np.inf
    with pytest.raises(LinearProbeError, match="X_train"):
        linear_probe(inf, y_tr, X_va, y_va, X_te, y_te)
    with pytest.raises(LinearProbeError, match="'test' is empty"):
        linear_probe(X_tr, y_tr, X_va, y_va, X_te[:0], y_te[:0])
    with pytest.raises(LinearProbeError, match="single class"):
        linear_probe(X_tr, np.zeros_like(y_tr), X_va, y_va, X_te, y_te)
    with pytest.raises(LinearProbeError, match="features; X_train has"):
        linear_probe(X_tr, y_tr, X_va[:, :2], y_va, X_te, y_te)
    with pytest.raises(LinearProbeError, match="rows but y_test"):
        linear_probe(X_tr, y_tr, X_va, y_va, X_te, y_te[:-1])
    with pytest.raises(LinearProbeError, match="absent from y_train"):
        linear_probe(X_tr, y_tr, X_va, y_va, X_te, y_te + 5)
    with pytest.raises(LinearProbeError, match="unknown metric"):
        linear_probe(X_tr, y_tr, X_va, y_va, X_te, y_te, metric="f1")
    with pytest.raises(LinearProbeError, match="c_grid_convention"):
        linear_probe(X_tr, y_tr, X_va, y_va, X_te, y_te, c_grid_convention="authors")


def test_ties_within_tolerance_keep_the_first_in_sweep_order():
    from medssl_utils.protocols.linear import select_index

    scores = np.array([0.5, 0.7, 0.7 - 1e-12, 0.7, 0.6])
    assert select_index(scores, 1e-9) == 1
    assert select_index(scores[::-1], 1e-9) == 1            # the code convention sweeps the other way
    assert select_index(np.array([0.7 - 1e-12, 0.7]), 0.0) == 1   # exact ties only: the last bit decides
    assert select_index(np.array([0.7 - 1e-12, 0.7]), 1e-9) == 0


def test_standardisation_uses_train_statistics_and_keeps_constant_columns_finite():
    from medssl_utils.protocols.linear import standardize_on

    rng = np.random.default_rng(8)
    tr = np.c_[rng.normal(3, 2, 50), np.full(50, 7.0)]
    te = np.c_[rng.normal(3, 2, 20), np.full(20, 7.0)]
    s_tr, s_te = standardize_on(tr, te)
    np.testing.assert_allclose(s_tr[:, 0].mean(), 0, atol=1e-12)
    np.testing.assert_allclose(s_tr[:, 0].std(), 1)
    np.testing.assert_allclose((te[:, 0] - tr[:, 0].mean()) / tr[:, 0].std(), s_te[:, 0])
    assert np.all(s_tr[:, 1] == 0) and np.all(s_te[:, 1] == 0)


def test_settings_validate_and_the_authors_preset():
    from medssl_utils.protocols.linear import LinearSettings

    a = LinearSettings.authors()
    assert (a.c_grid_convention, a.standardize, a.solver, a.tol, a.max_iter) == ("code", False, "lbfgs", 1e-4, 100)
    with pytest.raises(LinearProbeError, match="unknown key"):
        LinearSettings.from_options({"max_iters": 3})
    with pytest.raises(LinearProbeError, match="solver"):
        LinearSettings(solver="saga")
    with pytest.raises(LinearProbeError, match="LinearSettings"):
        linear_probe(*_splits(seed=9), not_a_field=1)


def test_default_fits_converge_even_at_large_C_on_separable_features():
    res = linear_probe(*_splits(seed=10, centres=((0, 0, 0, 0), (6, 6, 0, 0), (0, 6, 6, 0))))
    assert res.converged and res.switches["solver_used"] == "newton-cholesky"
    assert res.n_iter.max() < 100
