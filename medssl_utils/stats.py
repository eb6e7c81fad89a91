"""Uncertainty and model comparisons for the transfer results: arrays in, numbers or tables out.

The paper reports few-shot 95% intervals as 1.96 std / sqrt(600) (``protocols.fewshot.mean_ci95``)
and no intervals for linear / finetune; these helpers add percentile-bootstrap intervals for the
latter and paired tests, because every model sees the same episodes and the same test items:

* ``bootstrap_ci``: interval of a test-set metric, resampling test items.
* ``paired_bootstrap`` / ``wilcoxon_paired``: two models on the same units (episodes or items).
* ``seed_episode_bootstrap``: two recipes, several training seeds each (mini-zoo), on shared episodes:
  resamples seeds (the training runs) and episodes (the data) so both sources of variation count.
* ``holm`` / ``benjamini_hochberg`` and ``compare_models``: many pairs at once, corrected.

Bootstrap p-values are two-sided, from the null-centred bootstrap distribution of the mean
difference, with the +1 correction: p = (1 + #{|d* - d| >= |d|}) / (1 + n_boot), never 0.
"""
from __future__ import annotations

from .errors import MedsslError

import itertools
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pandas as pd

N_BOOT = 10_000
LEVEL = 0.95
_CHUNK_CELLS = 4_000_000   # bootstrap work matrices are processed in chunks of about this many cells


class StatsError(MedsslError):
    pass


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float
    level: float
    n: int
    n_boot: int


@dataclass(frozen=True)
class PairedResult:
    """Mean of ``a`` minus mean of ``b`` with its percentile interval and two-sided p-value."""
    diff: float
    low: float
    high: float
    p_value: float
    mean_a: float
    mean_b: float
    n: int
    n_boot: int
    method: str


@dataclass(frozen=True)
class WilcoxonResult:
    statistic: float
    p_value: float
    n: int
    n_nonzero: int
    median_diff: float


def _vector(name: str, x, *, dtype=np.float64) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise StatsError(f"{name} must be a 1-D array of per-item or per-episode outcomes; got shape {arr.shape}")
    if arr.size == 0:
        raise StatsError(f"{name} is empty")
    arr = arr.astype(dtype)
    if not np.isfinite(arr).all():
        raise StatsError(f"{name} contains NaN or infinite values")
    return arr


def _counts(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """Bootstrap resamples as multiplicity counts (size, n): resample mean = counts @ x / n."""
    return rng.multinomial(n, np.full(n, 1.0 / n), size=size)


def _chunks(n_boot: int, n: int) -> list[int]:
    step = max(1, _CHUNK_CELLS // max(n, 1))
    return [min(step, n_boot - s) for s in range(0, n_boot, step)]


def _percentile(boot: np.ndarray, level: float) -> tuple[float, float]:
    alpha = (1 - level) / 2
    lo, hi = np.nanquantile(boot, [alpha, 1 - alpha])
    return float(lo), float(hi)


def _check_common(n_boot: int, level: float) -> None:
    if n_boot < 1:
        raise StatsError(f"n_boot must be >= 1 (got {n_boot})")
    if not 0 < level < 1:
        raise StatsError(f"level must be in (0, 1) (got {level})")


def bootstrap_ci(correct=None, *, y_true=None, y_pred=None, y_score=None, metric: str | Callable = "accuracy",
                 n_boot: int = 2000, level: float = LEVEL, seed: int = 0) -> Interval:
    """Percentile-bootstrap interval of a test metric (fractions in, fractions out).

    Give ``correct`` (per-item 0/1 outcomes) for accuracy, or ``y_true`` with ``y_pred`` for
    "accuracy" / "mean_per_class_accuracy" / a callable ``metric(y_true, y_pred)``, or ``y_true``
    with ``y_score`` (positive-class score) for "auc". Test items are resampled with replacement.
    """
    _check_common(n_boot, level)
    rng = np.random.default_rng(seed)
    if correct is not None:
        if metric != "accuracy":
            raise StatsError(f"per-item 'correct' outcomes give accuracy only; for metric {metric!r} pass y_true "
                             "and y_pred (or y_score)")
        x = _vector("correct", correct)
        n = len(x)
        boot = np.concatenate([_counts(rng, n, m) @ x / n for m in _chunks(n_boot, n)])
        return Interval(float(x.mean()), *_percentile(boot, level), level=level, n=n, n_boot=n_boot)
    if y_true is None:
        raise StatsError("bootstrap_ci needs either 'correct' or 'y_true' with 'y_pred' / 'y_score'")
    yt = np.asarray(y_true).reshape(-1)
    if len(yt) == 0:
        raise StatsError("y_true is empty")
    n = len(yt)
    if metric == "auc":
        from sklearn.metrics import roc_auc_score

        if y_score is None:
            raise StatsError("metric 'auc' needs y_score (the positive-class score)")
        ys = _vector("y_score", y_score)
        if len(ys) != n:
            raise StatsError(f"y_true has {n} items but y_score has {len(ys)}")
        if len(np.unique(yt)) != 2:
            raise StatsError(f"metric 'auc' needs exactly two classes in y_true; got {np.unique(yt).tolist()}")
        pos = yt == np.unique(yt)[1]
        # Each resample's AUC from its item counts over the score ranks (ties count one half, as in
        # roc_auc_score): O(n) per resample instead of a sort, and the same resamples as drawing indices.
        _, group = np.unique(ys, return_inverse=True)
        n_groups = int(group.max()) + 1
        boot = np.full(n_boot, np.nan)
        for b in range(n_boot):
            c = np.bincount(rng.integers(0, n, n), minlength=n).astype(np.float64)
            p_w = np.bincount(group, weights=c * pos, minlength=n_groups)
            n_w = np.bincount(group, weights=c * ~pos, minlength=n_groups)
            if p_w.sum() > 0 and n_w.sum() > 0:
                boot[b] = p_w @ (np.cumsum(n_w) - 0.5 * n_w) / (p_w.sum() * n_w.sum())
        return Interval(float(roc_auc_score(pos, ys)), *_percentile(boot, level), level=level, n=n, n_boot=n_boot)
    if y_pred is None:
        raise StatsError(f"metric {metric!r} needs y_pred")
    yp = np.asarray(y_pred).reshape(-1)
    if len(yp) != n:
        raise StatsError(f"y_true has {n} items but y_pred has {len(yp)}")
    hit = (yt == yp).astype(np.float64)
    if metric == "accuracy":
        boot = np.concatenate([_counts(rng, n, m) @ hit / n for m in _chunks(n_boot, n)])
        return Interval(float(hit.mean()), *_percentile(boot, level), level=level, n=n, n_boot=n_boot)
    if metric == "mean_per_class_accuracy":
        classes = np.unique(yt)
        member = (yt[:, None] == classes[None, :]).astype(np.float64)     # (n, K)
        right = member * hit[:, None]
        parts = []
        for m in _chunks(n_boot, n):
            c = _counts(rng, n, m)
            with np.errstate(invalid="ignore", divide="ignore"):
                parts.append(np.nanmean((c @ right) / (c @ member), axis=1))   # classes absent from a draw skipped
        est = float(np.mean(right.sum(0) / member.sum(0)))
        return Interval(est, *_percentile(np.concatenate(parts), level), level=level, n=n, n_boot=n_boot)
    if callable(metric):
        boot = np.empty(n_boot)
        for b in range(n_boot):
            idx = rng.integers(0, n, n)
            boot[b] = metric(yt[idx], yp[idx])
        return Interval(float(metric(yt, yp)), *_percentile(boot, level), level=level, n=n, n_boot=n_boot)
    raise StatsError(f"unknown metric {metric!r}; expected 'accuracy', 'mean_per_class_accuracy', 'auc' or a callable")


def _null_p(boot: np.ndarray, observed: float) -> float:
    extreme = np.sum(np.abs(boot - observed) >= abs(observed) - 1e-12)
    return float((1 + extreme) / (1 + len(boot)))


def paired_bootstrap(a, b, *, n_boot: int = N_BOOT, level: float = LEVEL, seed: int = 0) -> PairedResult:
    """Mean difference of two models scored on the same units (episodes or test items), resampled together."""
    _check_common(n_boot, level)
    x, y = _vector("a", a), _vector("b", b)
    if len(x) != len(y):
        raise StatsError(f"paired outcomes must have the same length (same episodes / items); got {len(x)} and {len(y)}")
    d = x - y
    n = len(d)
    rng = np.random.default_rng(seed)
    boot = np.concatenate([_counts(rng, n, m) @ d / n for m in _chunks(n_boot, n)])
    obs = float(d.mean())
    return PairedResult(obs, *_percentile(boot, level), p_value=_null_p(boot, obs), mean_a=float(x.mean()),
                        mean_b=float(y.mean()), n=n, n_boot=n_boot, method="paired bootstrap")


def wilcoxon_paired(a, b, *, zero_method: str = "wilcox") -> WilcoxonResult:
    """Two-sided Wilcoxon signed-rank test on paired outcomes; p = 1 when every pair ties.

    ``zero_method`` is scipy's: "wilcox" drops tied pairs (on 0/1 item outcomes this is a sign test on
    the discordant items), "pratt" / "zsplit" keep them.
    """
    from scipy.stats import wilcoxon

    x, y = _vector("a", a), _vector("b", b)
    if len(x) != len(y):
        raise StatsError(f"paired outcomes must have the same length; got {len(x)} and {len(y)}")
    d = x - y
    nz = int(np.sum(d != 0))
    if nz == 0:
        return WilcoxonResult(0.0, 1.0, len(d), 0, 0.0)
    res = wilcoxon(x, y, zero_method=zero_method, alternative="two-sided")
    return WilcoxonResult(float(res.statistic), float(res.pvalue), len(d), nz, float(np.median(d)))


def _matrix(name: str, x) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise StatsError(f"{name} must be a 2-D (seeds, episodes) array; got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise StatsError(f"{name} contains NaN or infinite values")
    return arr


def seed_episode_bootstrap(a, b, *, n_boot: int = N_BOOT, level: float = LEVEL, seed: int = 0,
                           paired_seeds: bool = False) -> PairedResult:
    """Two recipes with several training seeds each, scored on the same episodes: a two-level bootstrap.

    ``a`` (S_a, E) and ``b`` (S_b, E) hold per-episode outcomes; column e is the same episode for both.
    Each replicate draws seeds with replacement for each recipe (independently: different training
    runs; ``paired_seeds=True`` draws one set of seed rows for both when seed s of A and of B share
    something, e.g. the data order) and one set of episodes with replacement shared by both recipes.
    A single seed per recipe reduces this to ``paired_bootstrap`` over episodes.
    """
    _check_common(n_boot, level)
    A, B = _matrix("a", a), _matrix("b", b)
    if A.shape[1] != B.shape[1]:
        raise StatsError(f"a and b must cover the same episodes (columns); got {A.shape[1]} and {B.shape[1]}")
    if paired_seeds and A.shape[0] != B.shape[0]:
        raise StatsError(f"paired_seeds needs the same number of seeds; got {A.shape[0]} and {B.shape[0]}")
    sa, e = A.shape
    sb = B.shape[0]
    A, B = _inflate_seeds(A), _inflate_seeds(B)
    rng = np.random.default_rng(seed)
    parts = []
    for m in _chunks(n_boot, e):
        wa = _counts(rng, sa, m) / sa
        wb = wa if paired_seeds else _counts(rng, sb, m) / sb
        v = _counts(rng, e, m) / e
        parts.append(((wa @ A) * v).sum(1) - ((wb @ B) * v).sum(1))
    boot = np.concatenate(parts)
    obs = float(A.mean() - B.mean())
    return PairedResult(obs, *_percentile(boot, level), p_value=_null_p(boot, obs), mean_a=float(A.mean()),
                        mean_b=float(B.mean()), n=e, n_boot=n_boot,
                        method=f"seed x episode bootstrap ({sa} vs {sb} seeds{', paired' if paired_seeds else ''})")


def _inflate_seeds(A: np.ndarray) -> np.ndarray:
    """Scale each episode's deviations across seeds by sqrt(S / (S - 1)).

    Resampling S rows gives the seed variance times (S - 1) / S; the scaling makes it unbiased
    (the means are unchanged). With very few seeds the bootstrap remains too liberal (a t with S - 1
    degrees of freedom is far wider than the normal): see ``seed_level_ttest``.
    """
    s = A.shape[0]
    if s < 2:
        return A
    centre = A.mean(axis=0, keepdims=True)
    return centre + np.sqrt(s / (s - 1)) * (A - centre)


def seed_level_ttest(a, b) -> float:
    """Welch t-test p-value on per-seed means (each training run is one observation).

    Calibrated for seed-to-seed variation even with 2-3 seeds (the bootstrap is not), but treats the
    episodes as fixed; ``compare_models`` asks both to agree for 2-D outcomes.
    """
    from scipy.stats import ttest_ind

    A, B = _matrix("a", a), _matrix("b", b)
    if A.shape[0] < 2 or B.shape[0] < 2:
        raise StatsError(f"a seed-level test needs >= 2 seeds per recipe; got {A.shape[0]} and {B.shape[0]}")
    ma, mb = A.mean(1), B.mean(1)
    if np.ptp(ma) == 0 and np.ptp(mb) == 0:
        return 1.0 if ma[0] == mb[0] else 0.0
    return float(ttest_ind(ma, mb, equal_var=False).pvalue)


def seed_episode_ci(a, *, n_boot: int = N_BOOT, level: float = LEVEL, seed: int = 0) -> Interval:
    """Interval of one recipe's mean over seeds and episodes, resampling both (see seed_episode_bootstrap)."""
    _check_common(n_boot, level)
    A = _matrix("a", a)
    s, e = A.shape
    obs = float(A.mean())
    A = _inflate_seeds(A)
    rng = np.random.default_rng(seed)
    boot = np.concatenate([((_counts(rng, s, m) / s @ A) * (_counts(rng, e, m) / e)).sum(1)
                           for m in _chunks(n_boot, e)])
    return Interval(obs, *_percentile(boot, level), level=level, n=e, n_boot=n_boot)


def _pvector(p) -> np.ndarray:
    arr = np.asarray(p, dtype=np.float64).reshape(-1)
    if np.any(~np.isfinite(arr)) or np.any((arr < 0) | (arr > 1)):
        raise StatsError("p-values must be finite and in [0, 1]")
    return arr


def holm(p) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (family-wise error), in the input order."""
    p = _pvector(p)
    m = len(p)
    order = np.argsort(p, kind="stable")
    adj = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out = np.empty(m)
    out[order] = np.minimum(adj, 1.0)
    return out


def benjamini_hochberg(p) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (false discovery rate), in the input order."""
    p = _pvector(p)
    m = len(p)
    order = np.argsort(p, kind="stable")
    ranked = p[order] * m / np.arange(1, m + 1)
    adj = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(adj, 1.0)
    return out


CORRECTIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {"holm": holm, "bh": benjamini_hochberg,
                                                                "none": lambda p: _pvector(p)}


def compare_models(outcomes: dict[str, np.ndarray], pairs: Sequence[tuple[str, str]] | None = None, *,
                   correction: str = "holm", n_boot: int = N_BOOT, level: float = LEVEL, seed: int = 0,
                   alpha: float = 0.05) -> pd.DataFrame:
    """Paired comparisons of models on shared units, one row per pair, corrected over the pairs given.

    ``outcomes[name]`` is 1-D (per-episode accuracy or per-item 0/1, same units for all models) or 2-D
    (seeds, episodes) for mini-zoo recipes; then the bootstrap is ``seed_episode_bootstrap`` and the
    Wilcoxon test runs on the seed-averaged episode outcomes (it ignores seed variance; the bootstrap
    p-value is the one ``significant`` uses) and, with >= 2 seeds per recipe, ``seed_level_ttest``
    too; ``significant`` then needs both (the bootstrap alone is too liberal with 3 seeds: about 12%
    false positives at alpha 0.05 in a simulation with no true difference). ``pairs`` default: all pairs.
    ``correction``: "holm" (default), "bh" or "none", applied to each p-value column over the pairs.
    """
    if correction not in CORRECTIONS:
        raise StatsError(f"unknown correction {correction!r}; expected one of {sorted(CORRECTIONS)}")
    names = list(outcomes)
    if pairs is None:
        pairs = list(itertools.combinations(names, 2))
    if not pairs:
        raise StatsError("compare_models needs at least two models or one pair")
    rows = []
    for k, (x, y) in enumerate(pairs):
        for name in (x, y):
            if name not in outcomes:
                raise StatsError(f"pair ({x!r}, {y!r}): no outcomes for {name!r}; have {names}")
        a, b = np.asarray(outcomes[x], dtype=np.float64), np.asarray(outcomes[y], dtype=np.float64)
        if a.ndim != b.ndim:
            raise StatsError(f"{x!r} and {y!r}: outcomes must both be 1-D or both 2-D (seeds, episodes)")
        p_seed = np.nan
        if a.ndim == 2:
            boot = seed_episode_bootstrap(a, b, n_boot=n_boot, level=level, seed=seed + k)
            wil = wilcoxon_paired(a.mean(0), b.mean(0))
            if a.shape[0] >= 2 and b.shape[0] >= 2:
                p_seed = seed_level_ttest(a, b)
        else:
            boot = paired_bootstrap(a, b, n_boot=n_boot, level=level, seed=seed + k)
            wil = wilcoxon_paired(a, b)
        rows.append({"model_a": x, "model_b": y, "n": boot.n, "mean_a": boot.mean_a, "mean_b": boot.mean_b,
                     "diff": boot.diff, "ci_low": boot.low, "ci_high": boot.high, "p_bootstrap": boot.p_value,
                     "p_wilcoxon": wil.p_value, "p_seed_t": p_seed, "method": boot.method})
    df = pd.DataFrame(rows)
    adjust = CORRECTIONS[correction]
    for col in ("p_bootstrap", "p_wilcoxon", "p_seed_t"):
        vals = df[col].to_numpy(dtype=np.float64)
        adj = np.full(len(vals), np.nan)
        ok = np.isfinite(vals)
        if ok.any():
            adj[ok] = adjust(vals[ok])
        df[f"{col}_adj"] = adj
    df["correction"] = correction
    seed_ok = np.where(np.isfinite(df["p_seed_t_adj"]), df["p_seed_t_adj"] < alpha, True)
    df["significant"] = (df["p_bootstrap_adj"] < alpha) & seed_ok
    return df
