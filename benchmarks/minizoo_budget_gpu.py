"""Build the mini-zoo's budget checkpoints on one CUDA GPU (issue 17 item 5): one prepared script, < 10 min.

    python benchmarks/minizoo_budget_gpu.py [--out DIR] [--budget B] [--minutes 9] [--jobs 8] [--names ...]

1. builds the corpus, the chest-X-ray source and the neutral set once (cached for the workers);
2. times 20 steps of every recipe on the GPU (one process) and picks the largest budget in 16, 4, 1 whose
   estimated wall time fits the minutes left (``--budget`` overrides);
3. starts ``--jobs`` workers (``medssl minizoo --budget B --worker --continue --device cuda``) that share the
   21 models (7 recipes x 3 seeds; MoCo-CXR waits for its supervised parent) and stop cleanly, state saved,
   at the deadline, so a second call continues where the first stopped;
4. prints images seen, wall time, where it ran and both probes (source task; neutral kNN / linear) per model.

Checkpoints, records (``DIR/manifest.json``, key ``budgets``, each stretch with the GPU's name) and state files
go to ``--out``; ``medssl minizoo --import-budgets DIR`` copies finished checkpoints into the package zoo.
Training on CUDA uses the recipes' bfloat16 autocast and channels_last; the CPU path is unchanged, and GPU
checkpoints say so in the manifest (they are not bit-identical to a CPU rebuild).

Estimate (no GPU was available when this was written): on the 2-core CPU one thread trains 0.34-0.60 s a step
(manifest wall times: the 21 models at 1x are 14,100 steps, 103 min). This 0.7 M-parameter net at 32 px leaves
an H100/H200 launch-bound: ~10-20 ms a step in one process (300-600 kernels per step), i.e. the 1x zoo in
~2.5-5 min sequentially, ~40-80 s with 8 processes sharing the GPU (assumed 4x aggregate). 4x then takes ~3-5
min and fits; 16x (~11-21 min) does not fit in one call, but the pilot decides, and a second call continues.
Without CUDA it prints "skipped: no CUDA device" and exits 0. ``--device cpu`` is a dry run of the same path
(data, pilot, workers sharing a list, stop at the deadline, table): tests run it on CPU with a few steps so the
script is exercised before a GPU is ever lent.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

BUDGET_CHOICES = (16, 4, 1)
PARALLEL_GAIN = 4.0        # assumed aggregate speed-up of --jobs processes over one (launch-bound GPU)
PROBE_MARGIN_S = 90        # the last models' CPU probes after the training deadline


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _pilot(sources, device: str = "cuda", steps: int = 20, recipes=None) -> dict[str, float]:
    """Seconds per step of each recipe's stages on ``device``, one process (after 5 warm-up steps)."""
    from medssl_utils.models.minizoo import recipes as R
    from medssl_utils.models.minizoo.arch import build_mini_resnet18_w16
    from medssl_utils.models.minizoo.resume import Stop, run_stage

    out = {}
    for key, recipe in R.RECIPES.items():
        if recipes is not None and key not in recipes:
            continue
        total = 0.0
        for stage in recipe.stages:
            x, y, _, _, n_classes, _ = sources.get(stage.data)
            backbone = build_mini_resnet18_w16().to(device, memory_format=torch.channels_last)
            learner = R.build_learner(stage, backbone, n_classes).to(device, memory_format=torch.channels_last)
            gen = torch.Generator().manual_seed(0)
            x, y = x.to(device), y.to(device)
            run_stage(learner, stage, x, y, gen, stop=Stop(max_steps=5))
            _sync(device)
            t = time.perf_counter()
            run_stage(learner, stage, x, y, gen, stop=Stop(max_steps=steps))
            _sync(device)
            total += (time.perf_counter() - t) / steps * stage.steps
        out[key] = total / sum(st.steps for st in recipe.stages)
    return out


def _choose(per_step: dict[str, float], seconds: float, jobs: int, names=None) -> tuple[int, dict[int, float]]:
    """The largest budget whose estimated wall time (``names``, default every recipe x 3 seeds, shared by
    ``jobs`` processes) fits."""
    from medssl_utils.models.minizoo import recipes as R

    names = names or [R.model_name(k, s) for s in R.SEEDS for k in R.RECIPES]
    one = sum(per_step[k] * sum(st.steps for st in R.RECIPES[k].stages)
              for k in (R.parse_name(n)[0] for n in names))
    est = {b: b * one / min(jobs, PARALLEL_GAIN) for b in BUDGET_CHOICES}
    return next((b for b in BUDGET_CHOICES if est[b] <= seconds), 1), est


def _table(manifest: Path, budget: int) -> None:
    recs = json.loads(manifest.read_text()).get("budgets", {}) if manifest.is_file() else {}
    print(f"{'model':22} {'images seen':>12} {'wall s':>8} {'source %':>9} {'kNN %':>7} {'linear %':>9}  device")
    for name, r in sorted(recs.items()):
        if r["budget"] != budget:
            continue
        src = "cxr" if any(st["data"] == "cxr" for st in r["stages"]) else "fractal"
        print(f"{name:22} {r['images_seen']:>12,} {r['wall_time_s']:>8.0f} {100 * r['probe'][src]:>9.1f} "
              f"{100 * r['neutral_probe']['knn']:>7.1f} {100 * r['neutral_probe']['linear']:>9.1f}  "
              f"{', '.join(r['devices'])}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None, help="checkpoints, manifest.json and state (default: a temp dir)")
    ap.add_argument("--budget", type=int, default=None, help="skip the pilot and build this budget")
    ap.add_argument("--minutes", type=float, default=9.0, help="wall-clock limit of the whole script")
    ap.add_argument("--jobs", type=int, default=8, help="worker processes sharing the GPU")
    ap.add_argument("--names", nargs="+", default=None, help="1x names to build (default: all 21)")
    ap.add_argument("--device", default="cuda", help="cuda, or cpu for a dry run of the same path")
    ap.add_argument("--steps", type=int, default=None, help=argparse.SUPPRESS)       # tests
    ap.add_argument("--batch-size", type=int, default=None, help=argparse.SUPPRESS)  # tests
    args = ap.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("skipped: no CUDA device")
        return 0
    from medssl_utils.models.minizoo import recipes as R

    for name in args.names or []:
        R.parse_name(name)                 # a bad name fails here, not in eight workers
    from medssl_utils.models.minizoo.train import Sources

    t0 = time.time()
    out = Path(args.out or tempfile.mkdtemp(prefix="medssl-minizoo-gpu-"))
    cache = Path(tempfile.mkdtemp(prefix="medssl-minizoo-cache-"))
    sources = Sources(cache)
    for key in ("fractal", "cxr", "neutral"):
        sources.get(key)
    where = torch.cuda.get_device_name() if args.device.startswith("cuda") else args.device
    print(f"device: {where}; data ready in {time.time() - t0:.0f}s", flush=True)
    left = 60 * args.minutes - (time.time() - t0) - PROBE_MARGIN_S
    budget = args.budget
    if budget is None:
        recipes = args.names and {R.parse_name(n)[0] for n in args.names}
        per_step = _pilot(sources, args.device, recipes=recipes)
        left = 60 * args.minutes - (time.time() - t0) - PROBE_MARGIN_S
        budget, est = _choose(per_step, left, args.jobs, args.names)
        print("pilot s/step: " + ", ".join(f"{k} {1000 * v:.1f} ms" for k, v in per_step.items()))
        print("estimated wall time: " + ", ".join(f"{b}x {v / 60:.1f} min" for b, v in est.items())
              + f"; {left / 60:.1f} min left -> budget {budget}", flush=True)
    cmd = [sys.executable, "-m", "medssl_utils.models.minizoo.train", "--budget", str(budget), "--worker",
           "--continue", "--device", args.device, "--out", str(out), "--cache-dir", str(cache), "--threads", "2",
           "--state-dir", str(out / "state"), "--stretch-minutes", f"{max(left, 0) / 60:.2f}"]
    cmd += ["--name", *args.names] if args.names else []
    cmd += [f"--{k.replace('_', '-')}={v}" for k, v in (("steps", args.steps), ("batch_size", args.batch_size)) if v]
    workers = [subprocess.Popen(cmd) for _ in range(args.jobs)]
    codes = [w.wait() for w in workers]
    _table(out / "manifest.json", budget)
    print(f"budget {budget}: workers exited {codes}; {time.time() - t0:.0f}s in all; checkpoints in {out} "
          f"(medssl minizoo --import-budgets {out})")
    return 0 if not any(codes) else 1


if __name__ == "__main__":
    sys.exit(main())
