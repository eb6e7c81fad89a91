"""Benchmark: the grid's units in this process (``local``) against a pool of worker processes (``processes``).

What it decides: the ``mini`` profile runs its units with ``executor: processes``. On the project's 2-core CPU,
one process with 2 torch threads leaves much of the second core idle in a unit's single-threaded parts (episode
sampling, bootstrap intervals, pandas, PIL resizing) and scales poorly on the mini-zoo's small convolutions;
two 1-thread workers keep both cores busy. Both runs start from an empty cache and results folder, so feature
extraction, few-shot, linear and finetuning are all timed; they must give the same rows (checked here).

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


def timed_run(executor: str, root: Path, models: list[str], finetune: list[str]) -> tuple[float, object]:
    cfg = config.resolve("mini", cache_dir=str(root / "cache"), results_dir=str(root / "results"),
                         executor=executor, finetune_models=finetune)
    for d in cfg.datasets:   # data generation is not what is compared: done before the clock starts
        inputs.dataset(cfg, d), inputs.manifest(cfg, d), inputs.episodes(cfg, d)
    t = time.perf_counter()
    rows = grid.run(cfg, ["fewshot", "linear"], models=models, progress=False)
    rows = [rows, grid.run(cfg, ["finetune"], models=finetune, progress=False)]
    return time.perf_counter() - t, rows


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
            frames[ex] = [r[cols].sort_values(cols[:4]).reset_index(drop=True) for r in rows]
    same = all(a.equals(b) for a, b in zip(frames["local"], frames["processes"]))
    workers = process_workers(ExecutorOptions(), 1_000)
    print(f"{_cores()} CPU cores; processes: {workers} workers x {max(1, _cores() // workers)} thread(s)")
    print(f"{'executor':<10} {'seconds':>8} {'ratio':>6}")
    for ex in seconds:
        print(f"{ex:<10} {seconds[ex]:8.1f} {seconds['local'] / seconds[ex]:6.2f}x")
    print(f"same rows: {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
