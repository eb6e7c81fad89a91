"""Benchmark: the linear probe's 45-value C sweep, warm vs cold starts, and today's settings vs the old ones.

Synthetic ReLU-like features (non-negative, class-shifted means) in the shape of a MedSynth many-shot
split: 128-d (the mini-zoo) and 512-d (ResNet-18). Rows, all on the same data, grid and machine:

- ``default``: ``LinearSettings()``: train-standardised features, Newton-Cholesky (lbfgs above 1,024
  weights), tol 1e-8; kernel-independent (tests/test_linear_determinism.py).
- ``previous``: the project's settings before 2026-12-02: raw features, lbfgs, tol 1e-4, 1,000 iterations.
- ``authors``: ``LinearSettings.authors()``: the authors' grid, raw features, lbfgs, tol 1e-4, 100 iterations.

Each row is timed warm and cold; ``cost`` is its warm time over ``previous``'s warm time.
Run: ``.venv/bin/python benchmarks/bench_linear.py``.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from medssl_utils.protocols.linear import LinearSettings, linear_probe

PREVIOUS = LinearSettings(standardize=False, solver="lbfgs", tol=1e-4, max_iter=1000, tie_tol=0.0)
SETTINGS = {"default": LinearSettings(), "previous": PREVIOUS, "authors": LinearSettings.authors()}


def features(n: int, d: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    means = rng.normal(0, 0.06, (k, d))
    y = rng.integers(0, k, n)
    return np.maximum(means[y] + rng.normal(0, 1, (n, d)), 0).astype(np.float32), y


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1500, help="items; 60/20/20 train/val/test")
    ap.add_argument("--dims", type=int, nargs="+", default=[128, 512])
    ap.add_argument("--classes", type=int, nargs="+", default=[2, 5])
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"Linear probe C sweep (45 values), {args.n} items, 60/20/20 split, CPU")
    print(f"{'dim':>4s} {'classes':>7s} {'settings':>9s} {'solver':>15s} {'cold s':>7s} {'warm s':>7s} "
          f"{'cold/warm':>9s} {'cost':>6s} {'C':>9s} {'acc':>6s} {'converged':>9s}")
    for d in args.dims:
        for k in args.classes:
            X, y = features(args.n, d, k, seed=k)
            a, b = int(0.6 * args.n), int(0.8 * args.n)
            split = (X[:a], y[:a], X[a:b], y[a:b], X[b:], y[b:])
            runs = {name: (linear_probe(*split, settings=s, warm_start=False), linear_probe(*split, settings=s))
                    for name, s in SETTINGS.items()}
            base = runs["previous"][1].seconds
            for name, (cold, warm) in runs.items():
                print(f"{d:4d} {k:7d} {name:>9s} {warm.switches['solver_used']:>15s} {cold.seconds:7.2f} "
                      f"{warm.seconds:7.2f} {cold.seconds / warm.seconds:8.2f}x {warm.seconds / base:5.2f}x "
                      f"{warm.best_C:9.3g} {warm.test_accuracy:6.3f} {str(warm.converged):>9s}")


if __name__ == "__main__":
    main()
