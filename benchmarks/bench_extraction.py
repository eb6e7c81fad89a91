"""Benchmark: feature extraction (``features.extract``) vs the bare forward pass on in-memory tensors.

Acceptance: extraction >= 80% of the bare forward throughput (images/s). The bare pass gets the
preprocessed batch for free (tensors already in memory) and runs ``model(x)`` in eval mode under
``inference_mode``, in both memory layouts; the ratio is taken against the faster one. Extraction
includes everything: preprocessing, the cache files, the NaN check and the final rename.

Run: ``.venv/bin/python benchmarks/bench_extraction.py`` (2 threads; a random-init torchvision
ResNet-18, so no weights are needed; ``--model NAME`` uses a registry model instead).
"""
from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import torch

from medssl_utils.data.base import ArrayImageDataset
from medssl_utils.features import extract
from medssl_utils.models.architectures import build_headless
from medssl_utils.models.preprocessing import make_preprocess
from medssl_utils.models.registry import Backbone, ModelSpec, load_backbone


def random_r18(size: int) -> Backbone:
    torch.manual_seed(0)
    spec = ModelSpec(name="bench-r18", title="bench", family="random", arch="resnet18", feature_dim=512,
                     preprocessing="imagenet", input_size=size, profile="test")
    return Backbone(spec=spec, module=build_headless("resnet18").eval(), feature_dim=512,
                    preprocess=make_preprocess("imagenet", size), weights_hash="bench-seed0")


class PerImage(ArrayImageDataset):
    """Same images through the per-image (PIL) path, as files on disk would go."""

    def image(self, i):
        return super().image(i)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None)
    ap.add_argument("--n", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    bb = load_backbone(args.model) if args.model else random_r18(64)
    size = bb.preprocess.size
    imgs = np.random.default_rng(0).integers(0, 256, (args.n, size, size, 3), dtype=np.uint8)
    kw = dict(name="bench", ids=[f"b{i:05d}" for i in range(args.n)], labels=np.zeros(args.n, int), classes=("a",),
              images=imgs, fingerprint="bench")
    ds_fast, ds_slow = ArrayImageDataset(**kw), PerImage(**kw)
    x_all = torch.stack([bb.preprocess(ds_fast.image(i)) for i in range(args.n)])
    model = bb.module.eval()

    def bare(channels_last: bool) -> float:
        m = model.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
        batches = [x_all[s:s + args.batch] for s in range(0, args.n, args.batch)]
        if channels_last:
            batches = [b.contiguous(memory_format=torch.channels_last) for b in batches]
        with torch.inference_mode():
            m(batches[0])
            t = time.perf_counter()
            for b in batches:
                m(b)
            return args.n / (time.perf_counter() - t)

    def extraction(ds) -> float:
        with tempfile.TemporaryDirectory() as d:
            t = time.perf_counter()
            extract(bb, ds, d, "bench", device="cpu", batch_size=args.batch, progress=False)
            return args.n / (time.perf_counter() - t)

    runs = {"bare forward, NCHW": [], "bare forward, channels_last": [], "extract (batch preprocessing)": [],
            "extract (per-image PIL path)": []}
    for _ in range(args.repeats):      # interleaved, so load changes on the shared machine hit every row
        runs["bare forward, NCHW"].append(bare(False))
        runs["bare forward, channels_last"].append(bare(True))
        runs["extract (batch preprocessing)"].append(extraction(ds_fast))
        runs["extract (per-image PIL path)"].append(extraction(ds_slow))
    med = {k: float(np.median(v)) for k, v in runs.items()}
    ref = max(med["bare forward, NCHW"], med["bare forward, channels_last"])
    print(f"Extraction throughput, {bb.name} ({bb.spec.arch}) at {size} px, {args.n} images, batch {args.batch}, "
          f"{args.threads} threads, CPU; median of {args.repeats} interleaved runs")
    print(f"{'path':34s} {'images/s':>10s} {'vs best bare':>13s}")
    for k, v in med.items():
        print(f"{k:34s} {v:10.1f} {v / ref:12.1%}")
    ratio = med["extract (batch preprocessing)"] / ref
    print(f"acceptance (extract >= 80% of bare forward): {'PASS' if ratio >= 0.8 else 'FAIL'} ({ratio:.1%})")


if __name__ == "__main__":
    main()
