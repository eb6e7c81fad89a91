"""Time one occlusion saliency map: torchvision ResNet-18 (random weights), one small image, on CPU.

Usage: python benchmarks/bench_saliency.py [--size 64] [--threads 2] [--batch-size 64] [--bn-mode eval]

The image is scikit-image's bundled fundus photograph (no download); the patch is scaled with the image
(10 px at 242 px, so 3 px at 64 px) and the stride is 1, as in the paper. Target: under a minute on 2 cores.
On cores shared with other jobs, --threads 1 is faster than 2 (the two threads wait for each other).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--bn-mode", choices=("eval", "train"), default="eval")
    ap.add_argument("--patch", type=int, default=None, help="default: scaled_patch(size)")
    args = ap.parse_args()

    from PIL import Image
    from skimage import data as skdata

    from medssl_utils.analysis import attentive_diffusion, occlusion_saliency, scaled_patch
    from medssl_utils.models.architectures import build_headless
    from medssl_utils.models.preprocessing import make_preprocess

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    module = build_headless("resnet18").eval()
    prep = make_preprocess("imagenet", args.size)
    image01 = prep.to_unit(Image.fromarray(skdata.retina()).convert("RGB"))   # bundled with scikit-image
    patch = args.patch or scaled_patch(args.size)

    start = time.perf_counter()
    sal = occlusion_saliency(module, image01, prep.normalise, patch=patch, bn_mode=args.bn_mode,
                             batch_size=args.batch_size if args.bn_mode == "eval" else None, progress=False)
    seconds = time.perf_counter() - start
    positions = (args.size - patch + 1) ** 2
    # the physical limit: the same number of forwards of the clean image at the same batch size, in whichever
    # memory format is faster here (channels_last is not always: measured slower for this model at 64 px)
    def bare_rate(fmt):
        batch = image01[None].repeat(args.batch_size, 1, 1, 1).contiguous(memory_format=fmt)
        m = build_headless("resnet18").eval().to(memory_format=fmt)
        with torch.inference_mode():
            m(batch)
            n_batches = max(1, positions // args.batch_size)
            t0 = time.perf_counter()
            for _ in range(n_batches):
                m(batch)
            return n_batches * args.batch_size / (time.perf_counter() - t0)

    rates = {"contiguous": bare_rate(torch.contiguous_format), "channels_last": bare_rate(torch.channels_last)}
    bare = max(rates.values())
    print(json.dumps({
        "model": "torchvision resnet18 (random init, headless)", "image": "skimage retina",
        "size": args.size, "patch": patch, "stride": 1, "positions": positions, "map_shape": list(sal.shape),
        "bn_mode": args.bn_mode, "batch_size": args.batch_size if args.bn_mode == "eval" else 1,
        "threads": args.threads, "seconds": round(seconds, 2),
        "forwards_per_second": round(positions / seconds, 1),
        "bare_forward_images_per_second": {k: round(v, 1) for k, v in rates.items()},
        "ratio_saliency_to_bare": round(positions / seconds / bare, 3),
        "attentive_diffusion": round(attentive_diffusion(sal), 2),
        "load_average_1min": round(os.getloadavg()[0], 2),   # other work sharing the cores
        "torch": torch.__version__, "cpu": platform.processor() or platform.machine(),
    }, indent=1))


if __name__ == "__main__":
    main()
