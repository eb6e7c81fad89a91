"""Prototypical-network few-shot evaluation on cached features (paper section 4.3.1).

Episodes are index arrays drawn once per dataset from a seed, so every model sees the same episodes
and models can be compared episode by episode.
"""
from __future__ import annotations

from ..errors import MedsslError

from dataclasses import dataclass

import numpy as np

# Paper section 4.3.1: K-way 20-shot, 15 queries per class, 600 episodes, 95% CI.
N_SHOT = 20
N_QUERY = 15
N_EPISODES = 600


class FewShotError(MedsslError):
    pass


@dataclass(frozen=True)
class FewShotInputs:
    """What episodes are drawn from and how images are resized, for one dataset."""

    pool: np.ndarray | None             # candidate rows; None = every image of the dataset
    small_resize: int | None            # ``make_preprocess(fewshot_small_resize=...)``; None = the default resize

    @property
    def tag(self) -> str:
        """Cache/result tag: empty for the defaults, so their cached episodes keep their names."""
        parts = ([f"pool{len(self.pool)}"] if self.pool is not None else []) + \
                ([f"square{self.small_resize}"] if self.small_resize else [])
        return "-".join(parts)


def fewshot_inputs(train_rows: np.ndarray, *, pool_limit: int | None, square_resize: bool,
                   pool: str = "all", resize: str = "paper") -> FewShotInputs:
    """The profile switch ``options.fewshot = {pool: ..., resize: ...}`` for one dataset.

    ``pool="authors"``: a dataset with a ``pool_limit`` (their large sets) draws episodes only from its first
    ``pool_limit`` training rows, in dataset order, as the authors' code did; other sets use every image.
    ``resize="authors"``: a dataset flagged ``square_resize`` (their small sets) is resized to a square
    257 px for a 224 crop (aspect ratio distorted). The defaults ("all", "paper") are what the paper states.
    """
    from ..models.preprocessing import AUTHORS_SMALL_RESIZE

    if pool not in ("all", "authors"):
        raise FewShotError(f"options.fewshot.pool: {pool!r}; expected 'all' (every image) or 'authors'")
    if resize not in ("paper", "authors"):
        raise FewShotError(f"options.fewshot.resize: {resize!r}; expected 'paper' or 'authors'")
    rows = None
    if pool == "authors" and pool_limit is not None:
        rows = np.sort(np.asarray(train_rows, dtype=np.int64))[:pool_limit]
    small = AUTHORS_SMALL_RESIZE if resize == "authors" and square_resize else None
    return FewShotInputs(rows, small)


@dataclass(frozen=True)
class Episodes:
    classes: np.ndarray   # (E, W) class labels of each episode
    support: np.ndarray   # (E, W, K) row indices into the feature array
    query: np.ndarray     # (E, W, Q) row indices

    @property
    def shape(self) -> tuple[int, int, int, int]:
        e, w, k = self.support.shape
        return e, w, k, self.query.shape[2]

    def to_npz(self) -> dict[str, np.ndarray]:
        return {"classes": self.classes, "support": self.support, "query": self.query}


def sample_episodes(labels: np.ndarray, *, n_way: int, n_shot: int = N_SHOT, n_query: int = N_QUERY,
                    n_episodes: int = N_EPISODES, seed: int = 0, pool: np.ndarray | None = None) -> Episodes:
    """Draw episodes: ``n_way`` classes at random, then ``n_shot + n_query`` distinct images per class.

    ``pool`` restricts the candidate rows (default: all). Raises if a class is too small for the shape.
    """
    labels = np.asarray(labels)
    pool = np.arange(len(labels)) if pool is None else np.asarray(pool)
    by_class = {c: pool[labels[pool] == c] for c in np.unique(labels[pool])}
    need = n_shot + n_query
    small = {int(c): len(ix) for c, ix in by_class.items() if len(ix) < need}
    if small:
        raise FewShotError(f"classes {small} (class: images) have fewer than the {need} images an episode needs "
                           f"({n_shot}-shot + {n_query} queries)")
    if len(by_class) < n_way:
        raise FewShotError(f"{n_way}-way episodes need {n_way} classes; the data has {len(by_class)}")
    rng = np.random.default_rng(seed)
    classes = np.sort(np.array(list(by_class)))
    ep_cls = np.empty((n_episodes, n_way), dtype=np.int64)
    sup = np.empty((n_episodes, n_way, n_shot), dtype=np.int64)
    qry = np.empty((n_episodes, n_way, n_query), dtype=np.int64)
    for e in range(n_episodes):
        chosen = rng.permutation(classes)[:n_way]
        ep_cls[e] = chosen
        for w, c in enumerate(chosen):
            picks = rng.choice(by_class[c], size=need, replace=False)
            sup[e, w], qry[e, w] = picks[:n_shot], picks[n_shot:]
    return Episodes(ep_cls, sup, qry)


def episode_accuracies(features: np.ndarray, episodes: Episodes, *, chunk: int = 100) -> np.ndarray:
    """Per-episode accuracy (fraction) of nearest-prototype (squared Euclidean) classification.

    Vectorised over episodes: ||q - p||^2 = ||q||^2 - 2 q.p + ||p||^2, in chunks to bound memory.
    """
    feats = np.asarray(features, dtype=np.float64)
    if not np.isfinite(feats).all():
        raise FewShotError("features contain NaN or infinite values")
    e_total, w, _, q = episodes.shape
    acc = np.empty(e_total)
    truth = np.broadcast_to(np.arange(w)[:, None], (w, q))
    for s in range(0, e_total, chunk):
        sup = feats[episodes.support[s:s + chunk]]            # (e, W, K, D)
        qry = feats[episodes.query[s:s + chunk]]              # (e, W, Q, D)
        protos = sup.mean(axis=2)                             # (e, W, D)
        cross = np.einsum("ewqd,ecd->ewqc", qry, protos)
        d2 = (qry ** 2).sum(-1)[..., None] - 2 * cross + (protos ** 2).sum(-1)[:, None, None, :]
        pred = d2.argmin(-1)                                  # (e, W, Q); ties -> lowest class index
        acc[s:s + chunk] = (pred == truth).mean(axis=(1, 2))
    return acc


def mean_ci95(values: np.ndarray) -> tuple[float, float]:
    """Mean and 95% CI half-width as the paper reports: 1.96 * std / sqrt(n), population std (ddof=0)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        raise FewShotError("no values")
    return float(v.mean()), float(1.96 * v.std() / np.sqrt(v.size))
