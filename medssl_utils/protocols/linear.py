"""Linear evaluation on frozen features (paper section 4.3.2, "Linear").

Multinomial logistic regression; the L2 constant is chosen on the validation split, the model is
refitted on train+val with it and scored once on test. Arrays in, a plain result out.

Provenance of the constants: the paper (section 4.3.2) says 45 logarithmically spaced values between
1e-6 and 1e5. The authors' ``linear.py`` instead swept ``wd = logspace(-6, 5, 45)`` with ``C = 1 / wd``
(so C in [1e-5, 1e6]) from the largest C down, kept the first best on ties (the larger C), used
sklearn's lbfgs on raw features with ``warm_start=True``, ``tol=1e-4`` and the default ``max_iter=100``,
and warm-started the final train+val fit from the last fit of the sweep.

Why the defaults differ from the authors' solver settings: a fit that stops before the optimum stops
at a point that depends on floating-point rounding, which differs between BLAS kernels (OpenBLAS picks
one per processor, ``OPENBLAS_CORETYPE`` overrides it) and thread counts. Measured on the smoke
features and a family of near-tie problems (``tests/test_linear_determinism.py``), lbfgs at
``tol=1e-4`` on raw features changed the selected C in 6 of 52 problems between two kernels. So the
features are standardised on train, each fit is converged tightly (Newton-Cholesky, which reaches the
optimum in ~10-20 steps even at C = 1e5, wherever the Hessian is small enough), and val scores within
``tie_tol`` of the best count as tied. The authors' settings remain switches (``LinearSettings.authors``).
"""
from __future__ import annotations

import time
import warnings
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, replace

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from threadpoolctl import threadpool_limits

from ..errors import MedsslError

N_GRID = 45
GRID_LOG10 = (-6.0, 5.0)
METRICS = ("accuracy", "mean_per_class_accuracy")
CONVENTIONS = ("paper", "code")
SOLVERS = ("auto", "newton-cholesky", "lbfgs")


class LinearProbeError(MedsslError):
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


@dataclass(frozen=True)
class LinearSettings:
    """The linear protocol's constants; every field changes results, so all of them are stored with a unit.

    ``c_grid_convention``: "paper" = C in logspace(-6, 5, 45) swept upwards, ties keep the smaller C, the
    final fit starts from the selected C's solution; "code" = the authors' C = 1/wd from 1e6 down, ties
    keep the larger C, the final fit starts from the last fit of the sweep.
    ``standardize``: centre and scale the features by the train split's mean and SD (paper: silent;
    authors: raw features). Makes the fits well conditioned, so they converge to the same optimum on
    every machine.
    ``solver``: "auto" = Newton-Cholesky when the model has at most ``newton_max_params`` weights
    (features x classes, one vector for binary tasks), else lbfgs; Newton converges quadratically, so
    its answer does not depend on rounding. Its cost grows with the square of the weights: on 900 x 512
    features, 5 classes (2,565 weights) the sweep took 54 s against lbfgs's 0.9 s, hence the 1,024 cap
    (the mini-zoo's 128-d features always get Newton). lbfgs at large C on separable features may hit
    ``max_iter`` (the result's ``converged`` flag says so); such fits can differ between BLAS kernels
    in their probabilities (up to 5e-3 measured), not, on the 84 problems measured, in C or predictions.
    ``tol``: the solvers' gradient tolerance (authors: sklearn's default 1e-4).
    ``tie_tol``: val scores within this of the best are tied (mean per-class accuracy of two equal
    counts can differ in the last bit, depending on summation order).
    ``blas_threads``: BLAS threads during the fits (None = leave as is). lbfgs makes many small BLAS
    calls; on the project's loaded 2-core machines multi-threaded OpenBLAS made a 3000 x 512, 5-class
    sweep 50x slower (137 s vs 2.6 s), so 1 is the default. Results do not depend on it.
    """

    c_grid_convention: str = "paper"
    standardize: bool = True
    solver: str = "auto"
    tol: float = 1e-8
    max_iter: int = 1000
    warm_start: bool = True
    tie_tol: float = 1e-9
    newton_max_params: int = 1024
    blas_threads: int | None = 1

    def __post_init__(self):
        if self.c_grid_convention not in CONVENTIONS:
            raise LinearProbeError(f"unknown c_grid_convention {self.c_grid_convention!r}; "
                                   f"expected one of {CONVENTIONS}")
        if self.solver not in SOLVERS:
            raise LinearProbeError(f"unknown solver {self.solver!r}; expected one of {SOLVERS}")
        if not isinstance(self.max_iter, int) or self.max_iter < 1:
            raise LinearProbeError(f"max_iter must be an integer >= 1 (got {self.max_iter!r})")
        if not self.tol > 0 or not self.tie_tol >= 0:
            raise LinearProbeError(f"tol must be > 0 and tie_tol >= 0 (got {self.tol!r}, {self.tie_tol!r})")

    @classmethod
    def from_options(cls, options: dict | None) -> "LinearSettings":
        """From a profile's ``options.linear`` mapping; an unknown key is one clear error."""
        options = dict(options or {})
        unknown = sorted(set(options) - set(cls.__dataclass_fields__))
        if unknown:
            raise LinearProbeError(f"options.linear: unknown key(s) {unknown}; expected some of "
                                   f"{sorted(cls.__dataclass_fields__)}")
        return cls(**options)

    @classmethod
    def authors(cls) -> "LinearSettings":
        """The authors' ``linear.py``: their grid and tie rule, lbfgs on raw features, tol 1e-4, 100 iterations."""
        return cls(c_grid_convention="code", standardize=False, solver="lbfgs", tol=1e-4, max_iter=100,
                   tie_tol=0.0)

    def as_dict(self) -> dict:
        return asdict(self)


def standardize_on(X_fit: np.ndarray, *others: np.ndarray) -> tuple[np.ndarray, ...]:
    """Centre and scale every array by ``X_fit``'s column mean and SD; constant columns keep SD 1."""
    mu = X_fit.mean(axis=0)
    sd = X_fit.std(axis=0)
    sd[sd <= 1e-12 * np.maximum(1.0, np.abs(mu))] = 1.0
    return tuple((X - mu) / sd for X in (X_fit, *others))


def select_index(val_scores: np.ndarray, tie_tol: float) -> int:
    """The first index, in sweep order, whose score is within ``tie_tol`` of the best."""
    val_scores = np.asarray(val_scores, dtype=np.float64)
    return int(np.flatnonzero(val_scores >= val_scores.max() - tie_tol)[0])


def _solver(s: LinearSettings, n_features: int, n_classes: int) -> str:
    if s.solver != "auto":
        return s.solver
    n_params = (n_features + 1) * (1 if n_classes == 2 else n_classes)
    return "newton-cholesky" if n_params <= s.newton_max_params else "lbfgs"


def _model(C: float, n_classes: int, solver: str, s: LinearSettings) -> LogisticRegression:
    # sklearn fits a two-class problem as one binomial weight vector. The paper's multinomial model
    # penalises both class vectors, whose optimum is w1 = -w0; that equals the binomial fit at 2C,
    # so binary tasks use 2C and the reported C stays on the multinomial (paper/authors') scale.
    c_eff = 2.0 * C if n_classes == 2 else C
    return LogisticRegression(C=c_eff, solver=solver, max_iter=s.max_iter, tol=s.tol, warm_start=s.warm_start)


def _fit(clf: LogisticRegression, X: np.ndarray, y: np.ndarray) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        # newton-cholesky warns and falls back to lbfgs on a singular Hessian; the result records n_iter
        warnings.simplefilter("ignore", UserWarning)
        clf.fit(X, y)
    return int(np.max(clf.n_iter_))


def linear_probe(X_train, y_train, X_val, y_val, X_test, y_test, *, grid: np.ndarray | None = None,
                 metric: str = "accuracy", settings: LinearSettings | None = None,
                 **overrides) -> LinearProbeResult:
    """Select C on val, refit on train+val, evaluate on test.

    ``grid``: C values in sweep order (default ``c_grid(settings.c_grid_convention)``).
    ``metric``: selection and headline metric, "accuracy" or "mean_per_class_accuracy" (EyePACS).
    ``settings``: the protocol's constants (``LinearSettings``); keyword ``overrides`` replace single fields,
    e.g. ``linear_probe(..., max_iter=100)``.
    """
    if metric not in METRICS:
        raise LinearProbeError(f"unknown metric {metric!r}; expected one of {METRICS}")
    try:
        s = replace(settings or LinearSettings(), **overrides)
    except TypeError as exc:
        raise LinearProbeError(f"linear_probe: {exc}; expected fields of LinearSettings "
                               f"{sorted(LinearSettings.__dataclass_fields__)}") from None
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
    grid = c_grid(s.c_grid_convention) if grid is None else np.asarray(grid, dtype=np.float64).reshape(-1)
    if grid.size == 0 or not np.all(np.isfinite(grid)) or np.any(grid <= 0):
        raise LinearProbeError("grid must be a non-empty array of positive, finite C values")
    if s.standardize:
        Xtr, Xva, Xte = standardize_on(Xtr, Xva, Xte)
    limit = threadpool_limits(limits=s.blas_threads, user_api="blas") if s.blas_threads is not None else nullcontext()
    with limit:
        return _probe(Xtr, ytr, Xva, yva, Xte, yte, classes, grid, metric, s)


def _probe(Xtr, ytr, Xva, yva, Xte, yte, classes, grid, metric, s: LinearSettings) -> LinearProbeResult:
    t0 = time.perf_counter()
    k = len(classes)
    solver = _solver(s, Xtr.shape[1], k)
    val_scores = np.empty(len(grid))
    n_iter = np.empty(len(grid), dtype=np.int64)
    states = []
    clf = None
    for i, C in enumerate(grid):
        if clf is None or not s.warm_start:
            clf = _model(C, k, solver, s)
        else:
            clf.set_params(C=2.0 * C if k == 2 else C)
        n_iter[i] = _fit(clf, Xtr, ytr)
        val_scores[i] = score(metric, yva, clf.predict(Xva))
        states.append((clf.coef_.copy(), clf.intercept_.copy()))
    best_i = select_index(val_scores, s.tie_tol)
    best_C = float(grid[best_i])

    final = _model(best_C, k, solver, s)
    if s.warm_start:
        # sklearn warm-starts from existing coef_/intercept_ when warm_start=True.
        start = states[-1] if s.c_grid_convention == "code" else states[best_i]
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
        final_n_iter=final_iter, converged=bool(np.all(n_iter < s.max_iter) and final_iter < s.max_iter),
        seconds=time.perf_counter() - t0,
        switches={**s.as_dict(), "solver_used": solver},
    )
