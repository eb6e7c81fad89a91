"""Benchmark: the grid's units in this process (``local``) against a pool of worker processes (``processes``).

Why: the ``mini`` profile runs its units with ``executor: processes``, one 1-thread worker per core, so that a
unit's single-threaded parts (episode sampling, bootstrap intervals, pandas, PIL resizing) overlap with another
unit's convolutions. Both runs start from an empty cache and results folder, so feature extraction, few-shot,
linear and finetuning are all timed, and each ``grid.run`` starts its own pool (the spawn and imports count).
The few-shot and linear rows must be identical (checked here); finetune rows may differ in the last digits.

Run: ``.venv/bin/python benchmarks/bench_executors.py`` (about 3 minutes on 2 cores; ``--models`` and
``--finetune`` choose the units). Prints seconds per executor and the ratio.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from medssl_utils import config
from medssl_utils.pipeline import grid, inputs
from medssl_utils.scale.executors import ExecutorOptions, _cores, process_workers


def timed_run(executor: str, root: Path, models: list[str], finetune: list[str]) -> tuple[list[float], object]:
    """Seconds of (few-shot + linear, finetune), each one ``grid.run`` (a pool is started per call), and the
    few-shot and linear rows."""
    cfg = config.resolve("mini", cache_dir=str(root / "cache"), results_dir=str(root / "results"),
                         executor=executor, finetune_models=finetune)
    for d in cfg.datasets:   # data generation is not what is compared: done before the clock starts
        inputs.dataset(cfg, d), inputs.manifest(cfg, d), inputs.episodes(cfg, d)
    t0 = time.perf_counter()
    rows = grid.run(cfg, ["fewshot", "linear"], models=models, progress=False)
    t1 = time.perf_counter()
    grid.run(cfg, ["finetune"], models=finetune, progress=False)
    return [t1 - t0, time.perf_counter() - t1], rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["mini-sup-b4-s0", "mini-simclr-b4-s0", "mini-moco-b4-s0",
                                                    "mini-swav-b4-s0"])
    ap.add_argument("--finetune", nargs="+", default=["mini-sup-s0", "mini-simclr-s0"])
    args = ap.parse_args()
    cols = ["protocol", "model", "dataset", "metric", "value"]
    seconds, frames = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for ex in ("local", "processes"):
            seconds[ex], rows = timed_run(ex, Path(tmp) / ex, args.models, args.finetune)
            frames[ex] = rows[cols].sort_values(cols[:4]).reset_index(drop=True)
    workers = process_workers(ExecutorOptions(), 1_000)
    print(f"{_cores()} CPU cores; processes: {workers} workers x {max(1, _cores() // workers)} thread(s)")
    print(f"{'executor':<10} {'few-shot+linear s':>18} {'ratio':>6} {'finetune s':>11} {'ratio':>6}")
    for ex, (a, b) in seconds.items():
        la, lb = seconds["local"]
        print(f"{ex:<10} {a:18.1f} {la / a:5.2f}x {b:11.1f} {lb / b:5.2f}x")
    # finetuning's 100 SGD steps amplify thread-count rounding differences, so only these rows must agree
    print(f"few-shot and linear rows identical: {'yes' if frames['local'].equals(frames['processes']) else 'NO'}")


if __name__ == "__main__":
    main()
