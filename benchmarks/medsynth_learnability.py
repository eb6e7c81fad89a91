"""MedSynth acceptance: generation time and learnability of every set, printed as a table.

For each set: images, classes, chance level (1/k, the sets are balanced), generation time at the
chosen size, and held-out accuracy (stratified 80/20 split) of two cheap learners:
  * logistic regression on raw pixels down-sampled to 16x16 (standardised, C chosen on a val split);
  * optionally (--cnn) a tiny CNN trained from scratch for a few epochs on 32 px images.
A third column fits the same logistic regression on global colour statistics only (channel means, SDs,
quantiles): it should stay far below the pixel learners, showing the signal is a localised pattern.
A set is "learnable" when the learners are clearly above chance, and "not trivial" when raw-pixel
logistic regression stays clearly below 100 %.

    .venv/bin/python benchmarks/medsynth_learnability.py [--size 64] [--scale 1.0] [--cnn] [--seed 0]
"""
from __future__ import annotations

import argparse
import time
import warnings

import numpy as np


def downsample(images: np.ndarray, out: int) -> np.ndarray:
    """Area-average (N, H, W, C) uint8 images to (N, out, out, C) floats in [0, 1]."""
    n, h, w, c = images.shape
    f = h // out
    x = images[:, : out * f, : out * f].astype(np.float32) / 255.0
    return x.reshape(n, out, f, out, f, c).mean(axis=(2, 4))


def global_stats(images: np.ndarray) -> np.ndarray:
    """Per-channel mean, SD and 10/50/90 % quantiles: what a 'global colour/brightness shift' would expose."""
    x = images.reshape(len(images), -1, images.shape[-1]).astype(np.float32) / 255.0
    q = np.quantile(x, [0.1, 0.5, 0.9], axis=1).transpose(1, 0, 2).reshape(len(x), -1)
    return np.concatenate([x.mean(1), x.std(1), q], axis=1)


def split(labels: np.ndarray, seed: int, test: float = 0.2):
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(labels))
    return train_test_split(idx, test_size=test, stratify=labels, random_state=seed)


def logreg_accuracy(x: np.ndarray, y: np.ndarray, seed: int) -> float:
    """Raw-pixel linear baseline; C picked on a validation split of the training part."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    tr, te = split(y, seed)
    tr2, va = split(y[tr], seed + 1)
    x = x.reshape(len(x), -1)
    best_c, best = None, -1.0
    for c in (0.001, 0.01, 0.1, 1.0):
        sc = StandardScaler().fit(x[tr][tr2])
        m = LogisticRegression(C=c, max_iter=300).fit(sc.transform(x[tr][tr2]), y[tr][tr2])
        acc = m.score(sc.transform(x[tr][va]), y[tr][va])
        if acc > best:
            best_c, best = c, acc
    sc = StandardScaler().fit(x[tr])
    m = LogisticRegression(C=best_c, max_iter=300).fit(sc.transform(x[tr]), y[tr])
    return float(m.score(sc.transform(x[te]), y[te]))


def cnn_accuracy(x: np.ndarray, y: np.ndarray, seed: int, epochs: int = 12) -> float:
    """A 4-layer CNN from scratch (flip augmentation), held-out accuracy at the last epoch."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    tr, te = split(y, seed)
    xt = torch.tensor(x.transpose(0, 3, 1, 2))
    xt = (xt - xt[tr].mean()) / (xt[tr].std() + 1e-6)
    yt = torch.tensor(y)
    k = int(y.max()) + 1

    def block(i, o):
        return nn.Sequential(nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU(), nn.MaxPool2d(2))

    net = nn.Sequential(block(3, 16), block(16, 32), block(32, 64), block(64, 64),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(64, k))
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=1e-3)
    steps = epochs * int(np.ceil(len(tr) / 64))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    g = torch.Generator().manual_seed(seed)
    tr_t = torch.tensor(tr)
    for _ in range(epochs):
        net.train()
        for b in tr_t[torch.randperm(len(tr_t), generator=g)].split(64):
            xb = xt[b]
            flip = torch.rand(len(b), generator=g) < 0.5
            xb = torch.where(flip[:, None, None, None], xb.flip(3), xb)
            loss = nn.functional.cross_entropy(net(xb), yt[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    net.eval()
    with torch.no_grad():
        pred = torch.cat([net(xt[torch.tensor(b)]).argmax(1) for b in np.array_split(te, max(1, len(te) // 256))])
    return float((pred.numpy() == y[te]).mean())


def main(argv=None) -> None:
    from medssl_utils.data import available, get_spec, load_dataset

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cnn", action="store_true", help="also train a tiny CNN per set (slower)")
    ap.add_argument("--sets", default="", help="comma-separated subset of MedSynth sets")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore", message=".*failed to converge.*")
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass
    names = [n for n in available() if get_spec(n).synthetic]
    if args.sets:
        names = [n for n in args.sets.split(",") if n]
    head = "| set | images | classes | pairs | gen wall s | gen CPU s | chance | global stats | logreg 16px |"
    head += " CNN 32px |" if args.cnn else ""
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    total = total_cpu = 0.0
    for name in names:
        t0, c0 = time.perf_counter(), time.process_time()
        ds = load_dataset(name, image_size=args.size, seed=args.seed, scale=args.scale)
        gen, cpu = time.perf_counter() - t0, time.process_time() - c0
        total += gen
        total_cpu += cpu
        k = len(ds.classes)
        lr = logreg_accuracy(downsample(ds.images, 16), ds.labels, args.seed)
        gs = logreg_accuracy(global_stats(ds.images), ds.labels, args.seed)
        row = (f"| {name} | {len(ds)} | {k} | {len(ds.pairs)} | {gen:.2f} | {cpu:.2f} | {100 / k:.1f} | "
               f"{100 * gs:.1f} | {100 * lr:.1f} |")
        if args.cnn:
            row += f" {100 * cnn_accuracy(downsample(ds.images, 32), ds.labels, args.seed):.1f} |"
        print(row, flush=True)
    print(f"\ntotal generation time for {len(names)} sets at {args.size} px, scale {args.scale}: {total:.1f} s wall, "
          f"{total_cpu:.1f} s CPU (one process, numpy, no cache; wall > CPU when the machine is shared)")


if __name__ == "__main__":
    main()
