"""Retinal-fundus-like MedSynth sets: orange disc, optic disc, vessel tree, macula, vignetting.

The class signal is always a set of localised lesions (dots, blots, yellow deposits, atrophy around
the optic disc); nuisance comes from pigmentation, illumination, pose, camera colour, vessel layout,
pigment spots and light reflexes that occur in every class.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .common import batched, blur, col, ellipse, gauss, grid, smooth_noise, soft_step, splat, to_uint8, uniform
from .views import assign_views, patient_labels

VERSION = 3


@dataclass(frozen=True)
class FundusStyle:
    """Camera and population look of one fundus collection."""

    radius: tuple[float, float] = (0.43, 0.47)   # fundus circle radius (unit image coordinates)
    crop: float = 0.0                             # > 0: the circle is cut flat at top and bottom
    base: tuple[float, float, float] = (0.82, 0.38, 0.16)
    base_jitter: float = 0.08
    brightness: tuple[float, float] = (0.8, 1.15)
    vignette: tuple[float, float] = (0.25, 0.55)
    noise: float = 0.02
    blur_px64: float = 0.4
    reflex_prob: float = 0.5


EYEPACS_STYLE = FundusStyle()
AMD_STYLE = FundusStyle(radius=(0.5, 0.54), crop=0.44, base=(0.86, 0.42, 0.2), vignette=(0.35, 0.6), noise=0.015,
                        blur_px64=0.6)
PM_STYLE = FundusStyle(radius=(0.47, 0.5), base=(0.8, 0.36, 0.18), brightness=(0.75, 1.1), noise=0.025,
                       blur_px64=0.5, reflex_prob=0.3)

# ----------------------------------------------------------------------------------------- lesion programmes
# Each programme maps a patient's class to lesion counts / strengths, drawn per eye.


def dr_lesions(rng, label: np.ndarray) -> dict[str, np.ndarray]:
    """Diabetic-retinopathy grades 0..4: lesion counts grow with grade and overlap between neighbours."""
    n = len(label)
    lo_ma, hi_ma = np.array([0, 1, 2, 4, 4]), np.array([0, 4, 7, 10, 10])
    lo_h, hi_h = np.array([0, 0, 1, 3, 3]), np.array([0, 0, 3, 7, 7])
    lo_e, hi_e = np.array([0, 0, 0, 2, 2]), np.array([0, 0, 4, 8, 8])
    return {
        "ma": rng.integers(lo_ma[label], hi_ma[label] + 1),
        "haem": rng.integers(lo_h[label], hi_h[label] + 1),
        "exud": rng.integers(lo_e[label], hi_e[label] + 1),
        "neo": (label == 4).astype(np.float32) * uniform(rng, 0.6, 1.0, n),
        "drusen": np.zeros(n, np.int64), "ppa": uniform(rng, 0.0, 0.25, n), "tess": uniform(rng, 0.0, 0.3, n),
        "atrophy": np.zeros(n, np.int64),
    }


def amd_lesions(rng, label: np.ndarray) -> dict[str, np.ndarray]:
    """AMD: yellow drusen clustered at the macula; healthy eyes may show one or two small ones."""
    n = len(label)
    return {
        "ma": np.zeros(n, np.int64), "haem": (rng.random(n) < 0.1).astype(np.int64),
        "exud": np.zeros(n, np.int64), "neo": np.zeros(n, np.float32),
        "drusen": np.where(label == 1, rng.integers(3, 11, n), rng.integers(0, 4, n)),
        "ppa": uniform(rng, 0.0, 0.3, n), "tess": uniform(rng, 0.0, 0.3, n), "atrophy": np.zeros(n, np.int64),
    }


def pm_lesions(rng, label: np.ndarray) -> dict[str, np.ndarray]:
    """Pathological myopia vs {normal + high myopia}: high myopia already shows tessellation and a small
    peripapillary crescent; pathological myopia adds a wide atrophic halo and patchy atrophy."""
    n = len(label)
    high_myopia = (label == 0) & (rng.random(n) < 0.6)
    ppa = np.where(label == 1, uniform(rng, 0.45, 1.2, n), np.where(high_myopia, uniform(rng, 0.2, 0.7, n),
                                                                    uniform(rng, 0.0, 0.25, n)))
    tess = np.where(label == 1, uniform(rng, 0.4, 1.0, n), np.where(high_myopia, uniform(rng, 0.3, 1.0, n),
                                                                     uniform(rng, 0.0, 0.3, n)))
    return {
        "ma": np.zeros(n, np.int64), "haem": np.zeros(n, np.int64), "exud": np.zeros(n, np.int64),
        "neo": np.zeros(n, np.float32), "drusen": np.zeros(n, np.int64),
        "ppa": ppa.astype(np.float32), "tess": tess.astype(np.float32),
        "atrophy": np.where(label == 1, rng.integers(0, 2, n), 0),
    }


# ----------------------------------------------------------------------------------------- drawing
def _dots(rng, Y, X, count, kmax, cy, cx, spread, sigma, amp):
    """Up to ``kmax`` Gaussian dots per image, the first ``count`` switched on, uniform in a disc.

    Dot centres are drawn in unit image coordinates and mapped through the same pose as the scene
    (Y, X are the pose-corrected coordinates of the pixel grid), then splatted in pixel space.
    """
    b, size = Y.shape[0], Y.shape[1]
    r = spread[:, None] * np.sqrt(rng.random((b, kmax)))
    t = rng.uniform(0, 2 * np.pi, (b, kmax))
    s = rng.uniform(*sigma, (b, kmax))
    a = rng.uniform(*amp, (b, kmax)) * (np.arange(kmax)[None, :] < np.asarray(count)[:, None])
    on = a > 0
    img = np.broadcast_to(np.arange(b)[:, None], (b, kmax))[on]
    sy, sx = (np.broadcast_to(np.asarray(cy, np.float64)[:, None], (b, kmax)) + r * np.sin(t))[on], \
        (np.broadcast_to(np.asarray(cx, np.float64)[:, None], (b, kmax)) + r * np.cos(t))[on]
    # scene -> image coordinates: invert the per-image affine encoded in the corner values of Y, X
    py, px = _scene_to_image(Y, X, img, sy, sx)
    return splat(b, size, img, py, px, s[on], a[on])


def _scene_to_image(Y, X, img, sy, sx):
    """Image (unit) coordinates of scene points, for a per-image affine pixel->scene map held in Y, X."""
    size = Y.shape[1]
    c0, c1 = 0.5 / size, (size - 0.5) / size
    # affine: scene = A @ (y, x) + t, recovered from three grid corners of each image
    y00, x00 = Y[:, 0, 0], X[:, 0, 0]
    dyy, dxy = (Y[:, -1, 0] - y00) / (c1 - c0), (X[:, -1, 0] - x00) / (c1 - c0)  # d scene / d image-y
    dyx, dxx = (Y[:, 0, -1] - y00) / (c1 - c0), (X[:, 0, -1] - x00) / (c1 - c0)  # d scene / d image-x
    det = dyy * dxx - dyx * dxy
    qy, qx = sy - y00[img], sx - x00[img]
    iy = (dxx[img] * qy - dyx[img] * qx) / det[img]
    ix = (-dxy[img] * qy + dyy[img] * qx) / det[img]
    return c0 + iy, c0 + ix


def _render_batch(rng, Y, X, lat, les, pat, style: FundusStyle, size):
    """Fundus images for one batch. Y, X: (B,H,W) pose-corrected coordinates; lat: +1 right eye, -1 left."""
    b = Y.shape[0]
    edge = 1.0 / size
    R = pat["radius"]
    cy, cx = np.full(b, 0.5), np.full(b, 0.5)
    # optic disc on the nasal side, macula slightly temporal of centre
    dy_, dx_ = 0.5 + pat["disc_dy"] * R, 0.5 + lat * pat["disc_dx"] * R
    my, mx = 0.5 + 0.03 * R, 0.5 - lat * 0.06 * R
    disc_r = pat["disc_r"] * R
    rr = np.sqrt((Y - 0.5) ** 2 + (X - 0.5) ** 2) / col(R)
    # --- background: pigmentation texture, tessellation, macula
    tex = 0.06 * smooth_noise(rng, b, size, 8)
    stripes = np.sin(40 * (X + 0.08 * smooth_noise(rng, b, size, 5)) + 25 * Y * col(pat["tess_dir"]))
    tess = col(les["tess"]) * 0.12 * np.clip(stripes, 0, 1) * soft_step(0.85 - rr, 0.1)
    dark = gauss(Y, X, my, mx, 0.09 * R, 0.22 * pat["macula"]) + tess
    bright = np.zeros_like(Y)
    # --- vessels: arcs leaving the disc, in disc-centred polar coordinates
    vy, vx = Y - col(dy_), (X - col(dx_)) * col(-lat)  # +x towards the macula
    vr = np.sqrt(vy ** 2 + vx ** 2)
    vth = np.arctan2(vy, vx)
    inv_w = 1.0 / (0.009 + 0.012 * np.exp(-vr / 0.12))
    for k in range(7):
        base = [-0.75, 0.75, -1.9, 1.9, 2.6, -2.6, 0.0][k]
        th0 = base + rng.normal(0, 0.18, b).astype(np.float32)
        curl = np.sign(base) * uniform(rng, 1.0, 2.2, b) if k < 2 else uniform(rng, -1.5, 1.5, b)
        dth = np.mod(vth - col(th0) - col(curl) * vr + np.pi, 2 * np.pi) - np.pi
        length = 0.55 if k < 2 else 0.3
        amp = (0.55 if k < 4 else 0.35) * np.exp(-vr / length)
        dark += col(uniform(rng, 0.7, 1.0, b)) * amp * np.exp(-(vr * dth * inv_w) ** 2) \
            * soft_step(vr - disc_r[:, None, None] * 0.3, edge)
    # --- disc, cup, peripapillary atrophy
    disc = ellipse(Y, X, dy_, dx_, disc_r * pat["disc_tilt"], disc_r, 1.2 * edge)
    ppa_r = disc_r * (1 + les["ppa"])
    ppa_cx = dx_ - lat * 0.35 * disc_r * les["ppa"]  # atrophy extends temporally (a crescent, then a halo)
    ppa = ellipse(Y, X, dy_, ppa_cx, ppa_r * pat["disc_tilt"] * np.maximum(1, 0.8 + 0.2 * les["ppa"]), ppa_r,
                  1.5 * edge) * (1 - disc)
    cup = gauss(Y, X, dy_, dx_, 0.45 * disc_r, 0.35)
    bright += 0.75 * disc + cup * disc + 0.4 * ppa * col(np.minimum(1.0, 0.5 + les["ppa"]))
    # --- lesions
    spread = 0.75 * R
    dark += _dots(rng, Y, X, les["ma"], 10, cy, cx, spread, (0.011, 0.015), (0.55, 0.8))
    dark += _dots(rng, Y, X, les["haem"], 7, cy, cx, spread, (0.02, 0.034), (0.45, 0.7))
    bright += _dots(rng, Y, X, les["exud"], 8, my, mx, 0.4 * R, (0.011, 0.018), (0.5, 0.8))
    bright += _dots(rng, Y, X, les["drusen"], 12, my, mx, 0.16 * R, (0.011, 0.018), (0.25, 0.45))
    bright += _dots(rng, Y, X, les["atrophy"], 2, my, mx, 0.25 * R, (0.035, 0.05), (0.45, 0.6))
    if (les["neo"] > 0).any():  # a tuft of fine tortuous vessels beside the disc
        ny, nx = dy_ + uniform(rng, -0.08, 0.08, b), dx_ - lat * uniform(rng, 0.07, 0.12, b)
        tuft = gauss(Y, X, ny, nx, np.full(b, 0.045), 1.0)
        wiggle = np.sin(90 * X + 7 * smooth_noise(rng, b, size, 10)) * np.sin(90 * Y)
        dark += col(les["neo"]) * 0.7 * tuft * np.clip(wiggle, 0, 1)
    # --- nuisance present in every class: pigment spots and light reflexes
    dark += _dots(rng, Y, X, pat["pigment"], 3, cy, cx, spread, (0.01, 0.018), (0.25, 0.45))
    refl = (rng.random(b) < style.reflex_prob).astype(np.int64) * rng.integers(1, 3, b)
    bright += 0.6 * _dots(rng, Y, X, refl, 2, cy, cx, 0.6 * R, (0.02, 0.04), (0.3, 0.5))
    # --- colour composition
    base = pat["base"][:, None, None, :]
    img = base * (1 + tex)[..., None]
    img = img * (1 - np.clip(dark, 0, 0.95)[..., None] * np.array([0.45, 0.8, 0.8], np.float32))
    yel = np.array([1.0, 0.86, 0.5], np.float32)
    bmap = np.clip(bright, 0, 1)[..., None]
    img = img * (1 - bmap) + bmap * yel * col(pat["bright_tint"])[..., None]
    vign = 1 - col(pat["vignette"]) * rr ** 2
    img = img * (vign * col(pat["brightness"]))[..., None]
    mask = soft_step(1 - rr, edge / col(R))
    if style.crop > 0:
        mask = mask * soft_step(style.crop - np.abs(Y - 0.5), edge)
    img = img * mask[..., None]
    img = blur(img, style.blur_px64 * size / 64)
    img = img + style.noise * rng.standard_normal(img.shape).astype(np.float32) * mask[..., None]
    return np.clip(img, 0, 1)


def render_fundus(rng: np.random.Generator, labels: np.ndarray, size: int, *, name: str, lesions, style: FundusStyle,
                  pair_fraction: float = 0.0):
    """Render a fundus set; with ``pair_fraction`` > 0, patients contribute a left and a right eye."""
    patient, view, pairs = assign_views(labels, pair_fraction)
    plabel = patient_labels(patient, labels)
    n_pat = len(plabel)
    u = lambda lo, hi, m=n_pat: uniform(rng, lo, hi, m)  # noqa: E731
    base = np.asarray(style.base, np.float32) * (1 + style.base_jitter * rng.standard_normal((n_pat, 3)))
    pat = {  # per patient: shared by both eyes
        "base": base.astype(np.float32), "disc_dx": u(0.42, 0.52), "disc_dy": u(-0.06, 0.06),
        "disc_r": u(0.13, 0.19), "disc_tilt": u(1.0, 1.2), "macula": u(0.6, 1.2), "tess_dir": u(-1.0, 1.0),
        "bright_tint": u(0.85, 1.0),
    }
    n = len(labels)
    les = lesions(rng, labels)  # per eye, from the patient's class
    img_p = {  # per image: the acquisition
        "radius": u(*style.radius, m=n), "brightness": u(*style.brightness, m=n), "vignette": u(*style.vignette, m=n),
        "pigment": rng.integers(0, 4, n),
    }
    # first view = right eye, second = left eye; unpaired images get a random eye
    lat = np.where(view == 1, -1.0, np.where(np.isin(np.arange(n), [a for a, _ in pairs]), 1.0,
                                             np.where(rng.random(n) < 0.5, 1.0, -1.0))).astype(np.float32)
    ty, tx = u(-0.025, 0.025, m=n), u(-0.025, 0.025, m=n)
    rot = u(-0.15, 0.15, m=n)
    images = np.empty((n, size, size, 3), np.uint8)
    yy, xx = grid(size)
    for sl in batched(n):
        idx = np.arange(sl.start, sl.stop)
        ca, sa = np.cos(col(rot[idx])), np.sin(col(rot[idx]))
        dy, dx = yy - 0.5 - col(ty[idx]), xx - 0.5 - col(tx[idx])
        Y = ca * dy - sa * dx + 0.5
        X = sa * dy + ca * dx + 0.5
        p = {k: v[patient[idx]] for k, v in pat.items()}
        p.update({k: v[idx] for k, v in img_p.items()})
        images[sl] = to_uint8(_render_batch(rng, Y, X, lat[idx], {k: v[idx] for k, v in les.items()}, p, style,
                                             size))
    eye = {1.0: "right", -1.0: "left"}
    ids = [f"{name}-p{patient[i]:05d}-{eye[float(lat[i])]}" for i in range(n)]
    return images, pairs, ids
