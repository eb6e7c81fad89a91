"""Benchmark: 600 few-shot episodes from the feature cache vs the authors' per-episode backbone passes.

Same images, model, episodes and machine. The authors' code (original-code notes section 4.1) ran
the backbone on each episode's n_way * (20 + 15) images (70 for 2-way) and classified by prototypes;
here their path gets its preprocessing for free (tensors prepared once, as their ``sub_meta``), so
only the forward passes and the prototype step are timed. Its 600-episode time is extrapolated from
``--timed-episodes`` episodes (printed as such); on those episodes both paths must give the same
per-episode accuracies. Target: >= 50x.

Run: ``.venv/bin/python benchmarks/bench_fewshot.py`` (2 threads; random-init torchvision ResNet-18
at 64 px on a 2 x 120 image set, the size of the small paper datasets; ``--model NAME`` for a
registry model).
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
from medssl_utils.protocols.fewshot import N_EPISODES, episode_accuracies, mean_ci95, sample_episodes


def random_r18(size: int) -> Backbone:
    torch.manual_seed(0)
    spec = ModelSpec(name="bench-r18", title="bench", family="random", arch="resnet18", feature_dim=512,
                     preprocessing="imagenet", input_size=size, profile="test")
    return Backbone(spec=spec, module=build_headless("resnet18").eval(), feature_dim=512,
                    preprocess=make_preprocess("imagenet", size), weights_hash="bench-seed0")


def toy_images(n_per_class: int, size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two classes: faint bright blob or not, on noise (like the MedSynth toy set)."""
    rng = np.random.default_rng(seed)
    labels = np.repeat([0, 1], n_per_class)
    yy, xx = np.mgrid[:size, :size] / size
    imgs = np.empty((len(labels), size, size, 3), np.uint8)
    for i, y in enumerate(labels):
        base = 0.4 + 0.1 * rng.standard_normal((size, size))
        cx, cy = rng.uniform(0.3, 0.7, 2)
        blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 0.005) * (0.5 if y else 0.0)
        imgs[i] = (np.clip(base + blob, 0, 1) * 255).astype(np.uint8)[..., None]
    return imgs, labels


def authors_episode(model, x_all: torch.Tensor, support: np.ndarray, query: np.ndarray) -> float:
    """One episode as the authors ran it: a forward pass on its images, then nearest prototype."""
    w, k = support.shape
    q = query.shape[1]
    idx = np.concatenate([support, query], axis=1).reshape(-1)
    with torch.inference_mode():
        f = model(x_all[idx].contiguous(memory_format=torch.channels_last)).double().view(w, k + q, -1)
    protos = f[:, :k].mean(1)
    d2 = torch.cdist(f[:, k:].reshape(w * q, -1), protos) ** 2
    pred = d2.argmin(1).view(w, q).numpy()
    return float((pred == np.arange(w)[:, None]).mean())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None)
    ap.add_argument("--n-per-class", type=int, default=120)
    ap.add_argument("--timed-episodes", type=int, default=30)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    bb = load_backbone(args.model) if args.model else random_r18(64)
    size = bb.preprocess.size
    imgs, labels = toy_images(args.n_per_class, size)
    ds = ArrayImageDataset(name="bench-fewshot", ids=[f"f{i:05d}" for i in range(len(labels))], labels=labels,
                           classes=("normal", "blob"), images=imgs, fingerprint="bench")
    episodes = sample_episodes(labels, n_way=2, n_episodes=N_EPISODES, seed=0)

    with tempfile.TemporaryDirectory() as cache:
        t = time.perf_counter()
        extract(bb, ds, cache, "bench", device="cpu", progress=False)
        t_extract = time.perf_counter() - t
        t = time.perf_counter()
        fs = extract(bb, ds, cache, "bench", device="cpu", progress=False)        # cache hit
        acc_cached = episode_accuracies(np.asarray(fs.features), episodes)
        t_cached = time.perf_counter() - t

    model = bb.module.eval().to(memory_format=torch.channels_last)
    x_all = torch.stack([bb.preprocess(ds.image(i)) for i in range(len(ds))])      # the authors' sub_meta
    m = args.timed_episodes
    authors_episode(model, x_all, episodes.support[0], episodes.query[0])          # warm-up
    t = time.perf_counter()
    acc_authors = np.array([authors_episode(model, x_all, episodes.support[e], episodes.query[e]) for e in range(m)])
    t_authors = (time.perf_counter() - t) * N_EPISODES / m
    agree = np.allclose(acc_authors, acc_cached[:m])

    mean, ci = mean_ci95(acc_cached)
    print(f"Few-shot, {N_EPISODES} episodes of 2-way 20-shot 15-query, {bb.name} ({bb.spec.arch}) at {size} px, "
          f"{len(ds)} images, {args.threads} threads, CPU")
    print(f"{'path':58s} {'seconds':>9s} {'speed-up':>9s}")
    print(f"{'authors: backbone on every episode (extrapolated from ' + str(m) + ')':58s} {t_authors:9.2f} {1.0:8.1f}x")
    print(f"{'cache hit: open features + 600 episodes':58s} {t_cached:9.3f} {t_authors / t_cached:8.1f}x")
    print(f"{'cold cache: extract once + 600 episodes':58s} {t_extract + t_cached:9.2f} "
          f"{t_authors / (t_extract + t_cached):8.1f}x")
    print(f"per-episode accuracies identical on the {m} timed episodes: {agree}; accuracy {100 * mean:.2f} "
          f"+- {100 * ci:.2f} %")
    ratio = t_authors / t_cached
    print(f"acceptance (cache >= 50x faster): {'PASS' if ratio >= 50 else 'FAIL'} ({ratio:.0f}x warm, "
          f"{t_authors / (t_extract + t_cached):.0f}x including the one-off extraction)")


if __name__ == "__main__":
    main()
