"""The rehearsal on a GPU beside the same rehearsal on the CPU (#19 item 4): one prepared script, < 10 min.

    python benchmarks/gpu_check.py [--out DIR] [--full]

Fabricates the rehearsal data and weights once, runs the paper grid (few-shot, linear, finetune) and the Q3
analyses with ``device: cpu`` and with ``device: cuda`` (AMP for extraction and finetuning, channels_last) into
separate caches, prints both timings and their ratio, and compares the results at stated tolerances:

* few-shot and linear: |GPU - CPU| <= 1.0 and 2.0 points (fp16 features move the last digits of the means);
* analyses: relative difference <= 5%; finetune: reported only (fp16 training is not expected to agree).

Without CUDA it prints "skipped: no CUDA device" and exits 0. ``--full`` uses all 13 models x 8 datasets.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

TOLERANCE = {"fewshot": 1.0, "linear": 2.0}
ANALYSIS_RTOL = 0.05


def _run(cfg):
    from medssl_utils.pipeline import grid

    t = time.perf_counter()
    rows = grid.run(cfg, ["fewshot", "linear", "finetune"], progress=False)
    t_protocols = time.perf_counter() - t
    t = time.perf_counter()
    q3 = grid.run(cfg, grid.ANALYSES, progress=False)
    return rows, q3, t_protocols, time.perf_counter() - t


def _compare(cpu: pd.DataFrame, gpu: pd.DataFrame) -> pd.DataFrame:
    keys = ["protocol", "model", "dataset", "metric"]
    m = cpu[keys + ["value"]].merge(gpu[keys + ["value"]], on=keys, suffixes=("_cpu", "_gpu"))
    m["diff"] = m.value_gpu - m.value_cpu
    return m


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None)
    ap.add_argument("--full", action="store_true")
    args = ap.parse_args(argv)
    if not torch.cuda.is_available():
        print("skipped: no CUDA device")
        return 0
    from medssl_utils import config, rehearsal

    out = Path(args.out or tempfile.mkdtemp(prefix="medssl-gpu-check-"))
    paper = config.load_profile("paper")
    models = paper["models"] if args.full else list(rehearsal.CI_MODELS) + ["supervised_r50", "supervised_d121"]
    datasets = paper["datasets"] if args.full else list(rehearsal.CI_DATASETS) + ["eyepacs"]
    rehearsal.fabricate_data(out / "data", datasets)
    rehearsal.fabricate_weights(out / "weights", models)
    base = rehearsal.parameters(out, models, datasets)
    results = {}
    for device in ("cpu", "cuda"):
        cfg = config.resolve("paper", **{**base, "device": device, "cache_dir": str(out / f"cache-{device}"),
                                         "results_dir": str(out / f"results-{device}")})
        results[device] = _run(cfg)
        print(f"{device}: protocols {results[device][2]:.1f} s, analyses {results[device][3]:.1f} s", flush=True)
    (cpu_rows, cpu_q3, cpu_tp, cpu_ta), (gpu_rows, gpu_q3, gpu_tp, gpu_ta) = results["cpu"], results["cuda"]
    print(f"\nGPU: {torch.cuda.get_device_name(0)}; {len(models)} models x {len(datasets)} datasets")
    print(f"protocols: CPU {cpu_tp:.1f} s, GPU {gpu_tp:.1f} s, ratio {cpu_tp / max(gpu_tp, 1e-9):.1f}x")
    print(f"analyses:  CPU {cpu_ta:.1f} s, GPU {gpu_ta:.1f} s, ratio {cpu_ta / max(gpu_ta, 1e-9):.1f}x")
    ok = True
    m = _compare(cpu_rows, gpu_rows)
    for protocol, g in m.groupby("protocol"):
        worst = g["diff"].abs().max()
        tol = TOLERANCE.get(protocol)
        verdict = "reported only" if tol is None else ("ok" if worst <= tol else f"FAIL (> {tol})")
        ok &= tol is None or worst <= tol
        print(f"{protocol:9s} {len(g):3d} values, max |GPU-CPU| {worst:.3f} points: {verdict}")
    q = _compare(cpu_q3, gpu_q3)
    if len(q):
        rel = (q["diff"].abs() / q.value_cpu.abs().clip(lower=1e-9)).max()
        ok &= rel <= ANALYSIS_RTOL
        print(f"analyses  {len(q):3d} values, max relative difference {rel:.4f}: {'ok' if rel <= ANALYSIS_RTOL else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
