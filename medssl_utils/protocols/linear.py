"""Linear evaluation on frozen features (paper section 4.3.2, "Linear").

Multinomial logistic regression; the L2 constant is chosen on the validation split, the model is
refitted on train+val with it and scored once on test. Arrays in, a plain result out.

Provenance of the constants: the paper (section 4.3.2) says 45 logarithmically spaced values between
1e-6 and 1e5. The authors' ``linear.py`` (original-code notes section 4.2) instead swept
``wd = logspace(-6, 5, 45)`` with ``C = 1 / wd`` (so C in [1e-5, 1e6]) from the largest C down,
kept the first best on ties (the larger C), used sklearn's lbfgs with ``warm_start=True`` and its
default ``max_iter=100``, and warm-started the final train+val fit from the last fit of the sweep.
"""
from __future__ import annotations

import time
import warnings
from contextlib import nullcontext
from dataclasses import dataclass, field

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from threadpoolctl import threadpool_limits

N_GRID = 45
GRID_LOG10 = (-6.0, 5.0)
METRICS = ("accuracy", "mean_per_class_accuracy")
CONVENTIONS = ("paper", "code")


class LinearProbeError(ValueError):
    pass


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))


def mean_per_class_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean over the classes present in ``y_true`` of their recall (confusion diagonal / row sums)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return float(np.mean([np.mean(y_pred[y_true == c] == c) for c in np.unique(y_true)]))


def score(metric: str, y_true: np.ndarray, y_pred: np.ndarray) -> float:
    if metric == "accuracy":
        return accuracy(y_true, y_pred)
    if metric == "mean_per_class_accuracy":
        return mean_per_class_accuracy(y_true, y_pred)
    raise LinearProbeError(f"unknown metric {metric!r}; expected one of {METRICS}")


def c_grid(convention: str = "paper", n: int = N_GRID) -> np.ndarray:
    """The C values in sweep order.

    ``paper``: C = logspace(-6, 5, n), swept from the strongest regularisation up (the usual direction
    for warm starts: each solution is a good start for the next, weaker penalty).
    ``code``: the authors' grid, C = 1 / logspace(-6, 5, n), i.e. from 1e6 down to 1e-5.
    """
    wd = np.logspace(*GRID_LOG10, n)
    if convention == "paper":
        return wd.copy()
    if convention == "code":
        return 1.0 / wd
    raise LinearProbeError(f"unknown c_grid_convention {convention!r}; expected one of {CONVENTIONS}")


@dataclass
class LinearProbeResult:
    classes: np.ndarray              # label values, column order of ``test_proba``
    test_pred: np.ndarray            # (n_test,)
    test_proba: np.ndarray           # (n_test, n_classes)
    test_correct: np.ndarray         # (n_test,) bool, per-item outcomes for bootstrap / paired tests
    metric: str
    test_metric: float               # ``metric`` on test, as a fraction
    test_accuracy: float
    test_mean_per_class_accuracy: float
    test_auc: float                  # binary tasks only (NaN otherwise or if test has one class)
    best_C: float
    best_val_score: float
    grid: np.ndarray                 # C values in sweep order
    val_scores: np.ndarray           # ``metric`` on val for each C in ``grid``
    n_iter: np.ndarray               # lbfgs iterations used at each C (== max_iter: not converged)
    final_n_iter: int
    converged: bool                  # every fit stopped before max_iter
    seconds: float
    switches: dict = field(default_factory=dict)

    def summary(self) -> dict:
        """Plain, JSON-able details for the results table's ``extra`` column."""
        return {"best_C": self.best_C, "best_val_score": self.best_val_score, "metric": self.metric,
                "converged": self.converged, "n_grid": int(len(self.grid)), **self.switches}


def _check_split(name: str, X: np.ndarray, y: np.ndarray, dim: int | None) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(X)
    y = np.asarray(y).reshape(-1)
    if X.ndim != 2:
        raise LinearProbeError(f"X_{name} must be a 2-D (items, features) array; got shape {X.shape}")
    if len(X) == 0:
        raise LinearProbeError(f"split {name!r} is empty: linear_probe needs items in train, val and test")
    if len(X) != len(y):
        raise LinearProbeError(f"X_{name} has {len(X)} rows but y_{name} has {len(y)} labels")
    if dim is not None and X.shape[1] != dim:
        raise LinearProbeError(f"X_{name} has {X.shape[1]} features; X_train has {dim}")
    X = X.astype(np.float64, copy=False)
    if not np.isfinite(X).all():
        bad = np.flatnonzero(~np.isfinite(X).all(axis=1))
        raise LinearProbeError(f"X_{name} has NaN or infinite features in {len(bad)} row(s), first row {bad[0]}; "
                               "re-extract the features (check weights and preprocessing)")
    return X, y


def _model(C: float, n_classes: int, max_iter: int, tol: float, warm_start: bool) -> LogisticRegression:
    # sklearn fits a two-class problem as one binomial weight vector. The paper's multinomial model
    # penalises both class vectors, whose optimum is w1 = -w0; that equals the binomial fit at 2C,
    # so binary tasks use 2C and the reported C stays on the multinomial (paper/authors') scale.
    c_eff = 2.0 * C if n_classes == 2 else C
    return LogisticRegression(C=c_eff, solver="lbfgs", max_iter=max_iter, tol=tol, warm_start=warm_start)


def _fit(clf: LogisticRegression, X: np.ndarray, y: np.ndarray) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    return int(np.max(clf.n_iter_))


def linear_probe(X_train, y_train, X_val, y_val, X_test, y_test, *, grid: np.ndarray | None = None,
                 metric: str = "accuracy", warm_start: bool = True, max_iter: int = 1000, tol: float = 1e-4,
                 c_grid_convention: str = "paper", blas_threads: int | None = 1) -> LinearProbeResult:
    """Select C on val, refit on train+val, evaluate on test.

    ``grid``: C values in sweep order (default ``c_grid(c_grid_convention)``).
    ``metric``: selection and headline metric, "accuracy" or "mean_per_class_accuracy" (EyePACS).
    ``warm_start``: each fit starts from the previous C's solution (authors: True; 2-3x faster).
    ``c_grid_convention``: "paper" (default) = C in logspace(-6, 5, 45) swept upwards, ties keep the
    smaller C, the final fit warm-starts from the selected C's solution; "code" = the authors' sweep
    C = 1/wd from 1e6 down, ties keep the larger C, the final fit warm-starts from the last sweep fit.
    In both, ties keep the first C reached in sweep order (strict ">").
    ``max_iter``: lbfgs iterations per fit. Not in the paper; the authors used sklearn's default 100,
    which often stops before convergence at large C on raw features. 1000 here; 100 reproduces the
    code. ``n_iter``/``converged`` in the result say whether a fit hit the cap.
    ``blas_threads``: BLAS threads during the fits (None = leave as is). lbfgs makes many small BLAS
    calls; on the project's loaded 2-core machines multi-threaded OpenBLAS made a 3000 x 512, 5-class
    sweep 50x slower (137 s vs 2.6 s) and a tiny one 18x slower, so 1 is the default.
    """
    if metric not in METRICS:
        raise LinearProbeError(f"unknown metric {metric!r}; expected one of {METRICS}")
    if max_iter < 1:
        raise LinearProbeError(f"max_iter must be >= 1 (got {max_iter})")
    Xtr, ytr = _check_split("train", X_train, y_train, None)
    Xva, yva = _check_split("val", X_val, y_val, Xtr.shape[1])
    Xte, yte = _check_split("test", X_test, y_test, Xtr.shape[1])
    classes = np.unique(ytr)
    if len(classes) < 2:
        raise LinearProbeError(f"y_train has a single class ({classes.tolist()}); a classifier needs at least two")
    for name, y in (("val", yva), ("test", yte)):
        unseen = np.setdiff1d(np.unique(y), classes)
        if len(unseen):
            raise LinearProbeError(f"y_{name} has class(es) {unseen.tolist()} absent from y_train "
                                   f"{classes.tolist()}; check the split manifest (it should be stratified)")
    grid = c_grid(c_grid_convention) if grid is None else np.asarray(grid, dtype=np.float64).reshape(-1)
    if grid.size == 0 or not np.all(np.isfinite(grid)) or np.any(grid <= 0):
        raise LinearProbeError("grid must be a non-empty array of positive, finite C values")
    if c_grid_convention not in CONVENTIONS:
        raise LinearProbeError(f"unknown c_grid_convention {c_grid_convention!r}; expected one of {CONVENTIONS}")

    limit = threadpool_limits(limits=blas_threads, user_api="blas") if blas_threads is not None else nullcontext()
    with limit:
        return _probe(Xtr, ytr, Xva, yva, Xte, yte, classes, grid, metric, warm_start, max_iter, tol,
                      c_grid_convention)


def _probe(Xtr, ytr, Xva, yva, Xte, yte, classes, grid, metric, warm_start, max_iter, tol,
           c_grid_convention) -> LinearProbeResult:
    t0 = time.perf_counter()
    k = len(classes)
    val_scores = np.empty(len(grid))
    n_iter = np.empty(len(grid), dtype=np.int64)
    clf = None
    best_i, best_state = -1, None
    for i, C in enumerate(grid):
        if clf is None or not warm_start:
            clf = _model(C, k, max_iter, tol, warm_start)
        else:
            clf.set_params(C=2.0 * C if k == 2 else C)
        n_iter[i] = _fit(clf, Xtr, ytr)
        val_scores[i] = score(metric, yva, clf.predict(Xva))
        if best_i < 0 or val_scores[i] > val_scores[best_i]:
            best_i, best_state = i, (clf.coef_.copy(), clf.intercept_.copy())
    best_C = float(grid[best_i])

    final = _model(best_C, k, max_iter, tol, warm_start)
    if warm_start:
        # sklearn warm-starts from existing coef_/intercept_ when warm_start=True.
        start = (clf.coef_.copy(), clf.intercept_.copy()) if c_grid_convention == "code" else best_state
        final.coef_, final.intercept_ = start[0].copy(), start[1].copy()
    Xtv, ytv = np.concatenate([Xtr, Xva]), np.concatenate([ytr, yva])
    final_iter = _fit(final, Xtv, ytv)
    proba = final.predict_proba(Xte)
    pred = final.classes_[proba.argmax(axis=1)]
    auc = float("nan")
    if k == 2 and len(np.unique(yte)) == 2:
        auc = float(roc_auc_score(yte == classes[1], proba[:, 1]))
    return LinearProbeResult(
        classes=final.classes_, test_pred=pred, test_proba=proba, test_correct=pred == yte, metric=metric,
        test_metric=score(metric, yte, pred), test_accuracy=accuracy(yte, pred),
        test_mean_per_class_accuracy=mean_per_class_accuracy(yte, pred), test_auc=auc, best_C=best_C,
        best_val_score=float(val_scores[best_i]), grid=grid, val_scores=val_scores, n_iter=n_iter,
        final_n_iter=final_iter, converged=bool(np.all(n_iter < max_iter) and final_iter < max_iter),
        seconds=time.perf_counter() - t0,
        switches={"c_grid_convention": c_grid_convention, "warm_start": warm_start, "max_iter": max_iter},
    )
