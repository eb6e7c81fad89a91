"""Benchmark: one dataset's features in-process (``features.extract``) vs through Ray Data (``scale.extract_ray``).

Same backbone, same images, fresh cache directories: wall time of each (Ray's own start is timed apart, as a
cluster is started once for many datasets), the ratio to the in-process run, and the largest difference of any
feature from the in-process one (expected 0 on CPU: same preprocessing, same eval-mode forward). A second call
of each shows the cache hit.

Run: ``.venv/bin/python benchmarks/bench_ray_extract.py`` (needs the ``cluster`` extra; default 2,000 MedSynth
images at 32 px through the mini-zoo's ``mini-sup-s0``, a local Ray with ``--cpus`` CPUs).
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from medssl_utils.data.registry import load_dataset
from medssl_utils.features import extract
from medssl_utils.models.registry import load_backbone
from medssl_utils.scale.executors import ray_session
from medssl_utils.scale.ray_extract import extract_ray


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="mini-sup-s0")
    ap.add_argument("--dataset", default="medsynth-chexpert")
    ap.add_argument("--n-per-class", type=int, default=1000)
    ap.add_argument("--image-size", type=int, default=32)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray (and torch threads in-process)")
    args = ap.parse_args()
    torch.set_num_threads(args.cpus)
    with tempfile.TemporaryDirectory(prefix="bench_ray_") as work:
        run(args, Path(work))


def run(args: argparse.Namespace, work: Path) -> None:
    bb = load_backbone(args.model)
    ds = load_dataset(args.dataset, image_size=args.image_size, seed=0, n_per_class=args.n_per_class, scale=1.0,
                      cache_dir=work / "data")
    n = len(ds)
    print(f"{n} images of {args.dataset} at {args.image_size} px, {args.model} ({bb.feature_dim}-d), batch {args.batch}, "
          f"{args.cpus} CPUs")
    ref, t_ref = timed(lambda: extract(bb, ds, work / "inproc", "bench", device="cpu", batch_size=args.batch,
                                       progress=False))
    rows = [("features.extract (in-process)", t_ref, 0.0)]
    # 1 actor: 1 CPU + a 0.5-CPU loader; 2 actors share what is left (all fits in --cpus, else Ray would wait)
    configs = [(1, min(1.0, args.cpus - 0.5)), (2, (args.cpus - 0.5) / 2)]
    t0 = time.perf_counter()
    with ray_session(num_cpus=args.cpus):
        t_start = time.perf_counter() - t0
        for actors, cpus in configs:
            out, t = timed(lambda: extract_ray(bb, ds, work / f"ray{actors}", "bench", batch_size=args.batch,
                                               num_actors=actors, device="cpu", num_cpus_per_actor=cpus,
                                               num_cpus_per_loader=0.5))
            assert out.ids == ref.ids and out.key == ref.key
            diff = float(np.abs(np.asarray(out.features) - np.asarray(ref.features)).max())
            rows.append((f"extract_ray, {actors} actor(s) x {cpus:g} CPU", t, diff))
        _, t_hit = timed(lambda: extract_ray(bb, ds, work / "ray1", "bench"))
    print(f"{'method':<36} {'wall s':>8} {'images/s':>9} {'x in-process':>13} {'max |diff|':>11}")
    for name, t, diff in rows:
        print(f"{name:<36} {t:8.2f} {n / t:9.0f} {t / t_ref:13.2f} {diff:11.2e}")
    print(f"second call (cache hit): {t_hit * 1000:.1f} ms; starting the local Ray (not in the rows): {t_start:.1f} s")


if __name__ == "__main__":
    main()
