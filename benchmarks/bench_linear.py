"""Benchmark: the linear probe's 45-value C sweep with and without warm starts.

Synthetic ReLU-like features (non-negative, class-shifted means), ResNet-18 sized (512-d), in the
shape of a MedSynth many-shot split. Same data, grid and machine for both rows; the table also says
whether both runs chose the same C and how far their test probabilities are apart.

Run: ``.venv/bin/python benchmarks/bench_linear.py`` (2 threads for torch; BLAS limited to 1 thread
inside ``linear_probe``, its default, see its docstring).
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from medssl_utils.protocols.linear import linear_probe


def features(n: int, d: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    means = rng.normal(0, 0.06, (k, d))
    y = rng.integers(0, k, n)
    return np.maximum(means[y] + rng.normal(0, 1, (n, d)), 0).astype(np.float32), y


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=3000, help="items; 60/20/20 train/val/test")
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--classes", type=int, nargs="+", default=[2, 5])
    ap.add_argument("--max-iter", type=int, nargs="+", default=[100, 1000])
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"Linear probe C sweep (45 values), {args.n} x {args.dim} features, 60/20/20 split, CPU")
    print(f"{'classes':>7s} {'max_iter':>8s} {'cold s':>8s} {'warm s':>8s} {'speed-up':>8s} {'iters cold':>10s} "
          f"{'iters warm':>10s} {'C cold':>9s} {'C warm':>9s} {'acc cold':>8s} {'acc warm':>8s} {'max|dp|':>8s}")
    for k in args.classes:
        X, y = features(args.n, args.dim, k, seed=k)
        a, b = int(0.6 * args.n), int(0.8 * args.n)
        split = (X[:a], y[:a], X[a:b], y[a:b], X[b:], y[b:])
        for max_iter in args.max_iter:
            cold = linear_probe(*split, warm_start=False, max_iter=max_iter)
            warm = linear_probe(*split, warm_start=True, max_iter=max_iter)
            dp = np.abs(cold.test_proba - warm.test_proba).max()
            print(f"{k:7d} {max_iter:8d} {cold.seconds:8.2f} {warm.seconds:8.2f} {cold.seconds / warm.seconds:7.2f}x "
                  f"{cold.n_iter.sum():10d} {warm.n_iter.sum():10d} {cold.best_C:9.3g} {warm.best_C:9.3g} "
                  f"{cold.test_accuracy:8.3f} {warm.test_accuracy:8.3f} {dp:8.1e}")


if __name__ == "__main__":
    main()
