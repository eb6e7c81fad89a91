"""H&E-histology-like MedSynth set (BACH stand-in): pink stroma, purple nuclei, four architectures.

Images are rendered in optical density: a haematoxylin map (nuclei) and an eosin map (stroma, cytoplasm)
are mixed with per-image stain vectors (Beer-Lambert), so stain colour varies the way real slides do.
The class lives in the tissue architecture and the nuclei, not the colour:
normal = few small glands (ring of small regular nuclei around a lumen); benign = more, larger,
crowded glands with two cell layers; in situ = ducts filled with larger, varied nuclei but bounded
by a rim; invasive = large pleomorphic nuclei scattered in cords through the stroma.
"""
from __future__ import annotations

import numpy as np

from .common import batched, blur, col, smooth_noise, splat, to_uint8, uniform

VERSION = 3

CLASSES = ("normal", "benign", "in situ carcinoma", "invasive carcinoma")
# Ruifrok & Johnston optical-density vectors for haematoxylin and eosin (rows: H, E), the usual reference.
_HE = np.array([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11]], np.float32)


def _ring(rng, cy, cx, r, spacing, sigma, jitter):
    n = max(6, int(2 * np.pi * r / spacing))
    t = np.linspace(0, 2 * np.pi, n, endpoint=False) + rng.uniform(0, 2 * np.pi)
    rr = r + rng.normal(0, jitter, n)
    return cy + rr * np.sin(t), cx + rr * np.cos(t), np.full(n, sigma) * rng.uniform(0.85, 1.15, n)


def _fill(rng, cy, cx, r, spacing, sig_lo, sig_hi):
    n = max(4, int(np.pi * r * r / spacing ** 2))
    rr = r * np.sqrt(rng.random(n))
    t = rng.uniform(0, 2 * np.pi, n)
    return cy + rr * np.sin(t), cx + rr * np.cos(t), rng.uniform(sig_lo, sig_hi, n)


def _image_plan(rng, label: int):
    """Nuclei (cy, cx, sigma, amp) and gland lumens/rims (cy, cx, r) of one image."""
    ys, xs, ss, aa = [], [], [], []
    lumens, rims = [], []

    def add(y, x, s, a):
        ys.append(y), xs.append(x), ss.append(s), aa.append(np.broadcast_to(a, np.shape(y)))

    # stromal fibroblasts in every class (small, sparse)
    n_str = rng.integers(8, 20)
    add(rng.random(n_str), rng.random(n_str), rng.uniform(0.006, 0.009, n_str), rng.uniform(0.5, 0.8, n_str))
    if rng.random() < 0.5:  # a lymphocyte aggregate in any class: dense, but small round nuclei
        n_l = rng.integers(6, 18)
        ly, lx = rng.uniform(0.1, 0.9, 2)
        add(ly + rng.normal(0, 0.05, n_l), lx + rng.normal(0, 0.05, n_l), rng.uniform(0.007, 0.009, n_l), 1.1)
    if label in (0, 1):  # glands: rings of small regular nuclei around a lumen
        n_g = rng.integers(2, 5) if label == 0 else rng.integers(3, 6)
        for _ in range(n_g):
            r = rng.uniform(0.05, 0.085) if label == 0 else rng.uniform(0.06, 0.1)
            cy, cx = rng.uniform(0.1, 0.9, 2)
            add(*_ring(rng, cy, cx, r, 0.03, 0.0095, 0.004), 0.9)
            if label == 1 and rng.random() < 0.7:  # a second (myoepithelial) layer and a crowded epithelium
                add(*_ring(rng, cy, cx, r + 0.024, 0.034, 0.008, 0.004), 0.7)
                add(*_ring(rng, cy, cx, r - 0.02, 0.03, 0.009, 0.006), 0.8)
            lumens.append((cy, cx, r - (0.03 if label == 1 else 0.018)))
    elif label == 2:  # carcinoma in situ: ducts full of atypical nuclei, bounded by a rim
        for _ in range(rng.integers(1, 3)):
            r = rng.uniform(0.11, 0.17)
            cy, cx = rng.uniform(0.2, 0.8, 2)
            add(*_fill(rng, cy, cx, r - 0.015, 0.04, 0.01, 0.018), rng.uniform(0.7, 1.1))
            add(*_ring(rng, cy, cx, r, 0.035, 0.008, 0.003), 0.8)
            rims.append((cy, cx, r))
            if rng.random() < 0.4:  # comedo-type central necrosis
                lumens.append((cy, cx, 0.35 * r))
        if rng.random() < 0.5:
            cy, cx = rng.uniform(0.1, 0.9, 2)
            r = rng.uniform(0.05, 0.07)
            add(*_ring(rng, cy, cx, r, 0.03, 0.0095, 0.004), 0.9)
            lumens.append((cy, cx, r - 0.018))
    else:  # invasive: cords and nests of pleomorphic nuclei throughout a region
        cy0, cx0 = rng.uniform(0.3, 0.7, 2)
        reach = rng.uniform(0.35, 0.6)
        for _ in range(rng.integers(4, 8)):  # small nests / cords
            t = rng.uniform(0, 2 * np.pi)
            cy, cx = cy0 + reach * rng.random() * np.sin(t), cx0 + reach * rng.random() * np.cos(t)
            n = rng.integers(4, 10)
            ang = rng.uniform(0, np.pi)
            along = rng.normal(0, 0.06, n)
            add(cy + along * np.sin(ang) + rng.normal(0, 0.015, n), cx + along * np.cos(ang) + rng.normal(0, 0.015, n),
                rng.uniform(0.01, 0.02, n), rng.uniform(0.8, 1.3, n))
        n_single = rng.integers(6, 18)
        add(cy0 + rng.normal(0, reach / 2, n_single), cx0 + rng.normal(0, reach / 2, n_single),
            rng.uniform(0.01, 0.019, n_single), rng.uniform(0.8, 1.2, n_single))
    return (np.concatenate(ys), np.concatenate(xs), np.concatenate(ss), np.concatenate(aa).astype(float),
            lumens, rims)


def render_histology(rng: np.random.Generator, labels: np.ndarray, size: int, *, name: str,
                     stain_jitter: float = 0.2):
    n = len(labels)
    images = np.empty((n, size, size, 3), np.uint8)
    yy = ((np.arange(size, dtype=np.float32) + 0.5) / size)[None, :, None]
    xx = ((np.arange(size, dtype=np.float32) + 0.5) / size)[None, None, :]
    for sl in batched(n):
        idx = np.arange(sl.start, sl.stop)
        b = len(idx)
        plans = [_image_plan(rng, int(labels[i])) for i in idx]
        img_of = np.concatenate([np.full(len(p[0]), j) for j, p in enumerate(plans)])
        cy, cx, sg, am = (np.concatenate([p[k] for p in plans]) for k in range(4))
        hmap = splat(b, size, img_of, cy, cx, sg, am)
        # Equalise the total haematoxylin between classes with a diffuse basophilic background, so the
        # amount of purple alone does not give the class away: the class must be read from the pattern.
        mass = np.bincount(img_of, weights=2 * np.pi * am * sg ** 2, minlength=b)
        target = rng.uniform(0.06, 0.12, b)
        fill = np.maximum(0.0, target - mass).astype(np.float32)
        hmap += col(fill) * np.clip(1 + 0.5 * smooth_noise(rng, b, size, 5), 0.2, 2)
        # eosin: fibrous stroma, cytoplasm around nuclei, white lumens and fat
        ang = col(uniform(rng, 0, np.pi, b))
        warp = smooth_noise(rng, b, size, 6)
        fibres = 0.5 + 0.5 * np.sin(2 * np.pi * 9 * (np.cos(ang) * xx + np.sin(ang) * yy) + 2.5 * warp)
        emap = col(uniform(rng, 0.35, 0.6, b)) * (0.7 + 0.3 * fibres) + 0.25 * np.clip(hmap, 0, 1)
        emap = emap * (1 + 0.15 * smooth_noise(rng, b, size, 12))
        clear = np.zeros((b, size, size), np.float32)
        for j, p in enumerate(plans):
            for (ly, lx, lr) in p[4]:
                d = lr - np.sqrt((yy[0] - ly) ** 2 + (xx[0] - lx) ** 2)
                clear[j] = np.maximum(clear[j], 1 / (1 + np.exp(-np.clip(d * size, -30, 30))))
            for (ry, rx, rr) in p[5]:  # the basement-membrane rim: a thin denser eosin line
                d = np.sqrt((yy[0] - ry) ** 2 + (xx[0] - rx) ** 2) - rr - 0.012
                emap[j] += 0.35 * np.exp(-(d * size / 1.2) ** 2)
        n_fat = rng.integers(0, 3, b)  # fat vacuoles: white holes in any class
        for k in range(2):
            fy, fx, fr = uniform(rng, 0, 1, b), uniform(rng, 0, 1, b), uniform(rng, 0.04, 0.09, b)
            hole = 1 / (1 + np.exp(-np.clip((col(fr) - np.sqrt((yy - col(fy)) ** 2 + (xx - col(fx)) ** 2)) * size,
                                            -30, 30)))
            clear = np.maximum(clear, hole * col((n_fat > k).astype(np.float32)))
        hmap = hmap * (1 - clear)
        emap = emap * (1 - 0.85 * clear)
        # stain vectors and strengths vary per image (different labs / scanners)
        vecs = _HE[None] * (1 + stain_jitter * rng.standard_normal((b, 2, 3))).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=2, keepdims=True)
        h_str = uniform(rng, 0.7, 1.6, b)
        e_str = uniform(rng, 0.25, 0.8, b)
        od = (hmap[..., None] * (h_str[:, None, None, None] * vecs[:, None, None, 0, :])
              + emap[..., None] * (e_str[:, None, None, None] * vecs[:, None, None, 1, :]))
        rgb = np.exp(-1.6 * od) * col(uniform(rng, 0.92, 1.0, b))[..., None]
        rgb = blur(rgb, 0.4 * size / 64)
        rgb = rgb + 0.015 * rng.standard_normal(rgb.shape).astype(np.float32)
        images[sl] = to_uint8(rgb)
    ids = [f"{name}-{i:05d}" for i in range(n)]
    return images, [], ids
