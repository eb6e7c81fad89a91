"""Chest-X-ray-like MedSynth sets: grey radiographs with body, lungs, heart, ribs, spine and vessel markings.

A scene is an attenuation map (bright = dense) built from the patient's anatomy plus localised findings;
an acquisition style (field of view, exposure, gamma, noise, blur, heel effect, burnt-in marker) then
turns it into pixels. The sets share anatomy and findings and differ by style, which is what makes
Montgomery/Shenzhen a larger shift from the CXR source than CheXpert/ChestX-ray14 are.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .common import (batched, blur, col, ellipse, gauss, grid, smooth_noise, soft_step, to_uint8, uniform)
from .views import assign_views, patient_labels

VERSION = 4

FINDINGS = ("effusion", "cardiomegaly", "nodule", "mass", "infiltrate", "atelectasis", "pneumothorax",
            "tb", "consolidation", "edema")


@dataclass(frozen=True)
class ChestStyle:
    """How a site acquires its radiographs; the only thing that differs between the chest sets."""

    fov: float = 1.0               # anatomy scale: < 1 shows more background around the body
    shift: float = 0.035           # random anatomy translation (unit coordinates)
    rotation: float = 0.05         # random rotation (radians)
    exposure: float = 0.0          # mean brightness offset
    exposure_jitter: float = 0.07
    contrast: float = 1.0
    contrast_jitter: float = 0.18
    gamma: tuple[float, float] = (0.75, 1.3)
    noise: float = 0.02            # white noise SD
    grain: float = 0.02            # low-frequency mottle SD
    blur_px64: float = 0.5         # blur at 64 px (scaled with image size)
    background: float = 0.04       # air outside the body
    heel: float = 0.12             # max vertical exposure gradient
    marker_prob: float = 0.0       # probability of a burnt-in bright letter-marker
    collimation: float = 0.0       # dark collimator borders, max width
    lateral_style: bool = True     # lateral views drawn (only sets with pairs use them)


CHEXPERT_STYLE = ChestStyle()
CHESTX14_STYLE = ChestStyle(contrast=0.92, noise=0.035, blur_px64=0.7, exposure=0.02, marker_prob=0.2)
MONTGOMERY_STYLE = ChestStyle(fov=0.8, shift=0.05, exposure=0.12, contrast=0.75, noise=0.015, grain=0.015,
                              blur_px64=0.9, background=0.16, heel=0.05, collimation=0.08, marker_prob=0.5)
SHENZHEN_STYLE = ChestStyle(fov=0.86, shift=0.05, rotation=0.07, exposure=-0.08, contrast=1.3, noise=0.06,
                            grain=0.045, gamma=(0.6, 1.0), blur_px64=0.3, background=0.25, heel=0.25,
                            marker_prob=0.8)


# ------------------------------------------------------------------------------------------- finding policies
def policy_single(findings_of_class: tuple[str | None, ...], extra: dict[str, float] | None = None):
    """Class c shows exactly the finding findings_of_class[c] (None = healthy) plus optional co-findings."""

    def policy(rng: np.random.Generator, plabel: np.ndarray) -> dict[str, np.ndarray]:
        has = {f: np.zeros(len(plabel), bool) for f in FINDINGS}
        for c, f in enumerate(findings_of_class):
            if f is not None:
                has[f] |= plabel == c
        for f, p in (extra or {}).items():
            primary = np.isin(plabel, [c for c, g in enumerate(findings_of_class) if g == f])
            has[f] |= (rng.random(len(plabel)) < p) & ~primary if f in findings_of_class else \
                rng.random(len(plabel)) < p
        return has

    return policy


# ------------------------------------------------------------------------------------------- patient parameters
def draw_patients(rng: np.random.Generator, has: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Anatomy and finding parameters per patient (shared by both views of a pair)."""
    p = len(next(iter(has.values())))
    u = lambda lo, hi: uniform(rng, lo, hi, p)  # noqa: E731
    d: dict[str, np.ndarray] = {
        "body_rx": u(0.36, 0.44), "body_ry": u(0.48, 0.56),
        "lung_cy": u(0.42, 0.46), "lung_ry": u(0.27, 0.31), "lung_rx": u(0.125, 0.15), "lung_dx": u(0.165, 0.195),
        "heart_cy": u(0.62, 0.66), "heart_cx": u(0.53, 0.56), "heart_r": u(0.085, 0.1),
        "heart_scale": np.where(has["cardiomegaly"], u(1.35, 1.6), u(0.9, 1.12)).astype(np.float32),
        "rib_y0": u(0.16, 0.21), "rib_dy": u(0.058, 0.068), "rib_curv": u(1.8, 2.6),
        "bone": u(0.06, 0.1), "lung_dark": u(0.26, 0.34),
        "side": rng.integers(0, 2, p), "side2": rng.integers(0, 2, p), "both": rng.random(p) < 0.3,
        # finding geometry, in lung-relative coordinates
        "eff_h": u(0.15, 0.35), "eff_m": u(0.2, 0.45), "eff_amp": u(0.12, 0.22),
        "nod_r": np.sqrt(u(0.0, 0.55)), "nod_t": u(0, 2 * np.pi), "nod_s": u(0.022, 0.034), "nod_amp": u(0.1, 0.17),
        "mass_r": np.sqrt(u(0.0, 0.4)), "mass_t": u(0, 2 * np.pi), "mass_rad": u(0.055, 0.08),
        "mass_amp": u(0.17, 0.26),
        "inf_v": u(-0.2, 0.45), "inf_u": u(-0.3, 0.4), "inf_rad": u(0.09, 0.13), "inf_amp": u(0.16, 0.24),
        "atel_scale": np.where(has["atelectasis"], u(0.68, 0.8), np.float32(1.0)).astype(np.float32),
        "atel_band_v": u(0.1, 0.45), "atel_amp": u(0.14, 0.22), "atel_tilt": u(-0.25, 0.25),
        "ptx_w": u(0.3, 0.5), "ptx_dark": u(0.05, 0.09),
        "tb_u": u(-0.3, 0.4), "tb_v": u(-0.75, -0.45), "tb_rad": u(0.07, 0.11), "tb_amp": u(0.14, 0.22),
        "tb_cav": rng.integers(0, 3, p), "tb_cav_r": u(0.018, 0.028),
        "cons_u": u(-0.3, 0.3), "cons_v": u(0.0, 0.5), "cons_rad": u(0.09, 0.13), "cons_amp": u(0.2, 0.28),
        "edema_amp": u(0.1, 0.16), "edema_s": u(0.07, 0.1),
        "ves_seed": rng.integers(0, 2**31, p),
    }
    for f, v in has.items():
        d["has_" + f] = v
    return d


def _lung(d: dict, s: np.ndarray):
    """Centre and radii of lung ``s`` (0 = image left, 1 = image right) for each patient of the subset."""
    sign = np.where(s == 0, -1.0, 1.0).astype(np.float32)
    cx = 0.5 + sign * d["lung_dx"]
    ry = d["lung_ry"] * np.where(d["has_atelectasis"] & (d["side2"] == s), d["atel_scale"], 1.0)
    cy = d["lung_cy"] - (d["lung_ry"] - ry)  # collapse lifts the base, the apex stays
    return cy.astype(np.float32), cx.astype(np.float32), ry.astype(np.float32), d["lung_rx"], sign


def _sub(d: dict, idx: np.ndarray) -> dict:
    return {k: v[idx] for k, v in d.items()}


# ------------------------------------------------------------------------------------------- frontal view
def _frontal(Y, X, d, rng, size):
    """Attenuation of a batch of frontal views. Y, X: (B, H, W) anatomy coordinates."""
    b = Y.shape[0]
    edge = 1.0 / size
    body = ellipse(Y, X, np.full(b, 0.58), np.full(b, 0.5), d["body_ry"], d["body_rx"], 2 * edge)
    neck = ellipse(Y, X, np.full(b, 0.05), np.full(b, 0.5), np.full(b, 0.12), np.full(b, 0.09), 2 * edge)
    att = 0.42 * np.maximum(body, neck)
    masks, centres = [], []
    for s in (0, 1):
        ss = np.full(b, s)
        cy, cx, ry, rx, sign = _lung(d, ss)
        m = ellipse(Y, X, cy, cx, ry, rx, 1.5 * edge, angle=-sign * 0.12)
        masks.append(m)
        centres.append((cy, cx, ry, rx, sign))
    lungs = np.maximum(masks[0], masks[1])
    att -= col(d["lung_dark"]) * lungs
    # heart, spine, clavicles, ribs
    hs = d["heart_scale"]
    heart = ellipse(Y, X, d["heart_cy"], d["heart_cx"], d["heart_r"] * (0.85 + 0.15 * hs), d["heart_r"] * 1.15 * hs,
                    1.5 * edge)
    att += 0.24 * heart * lungs + 0.06 * heart
    vert = 0.8 + 0.2 * np.cos(2 * np.pi * Y / 0.055)
    att += col(d["bone"]) * 1.6 * soft_step(0.03 - np.abs(X - 0.5), edge) * vert * (Y > 0.08)
    for sgn in (-1.0, 1.0):
        t = Y - (0.15 - 0.2 * (X - 0.5) * sgn)  # clavicle, rising laterally
        cw = max(0.014, 0.8 / size)
        att += col(d["bone"]) * (0.014 / cw) * np.exp(-(t / cw) ** 2) \
            * soft_step(0.3 - np.abs(X - 0.5 - sgn * 0.15), edge) \
            * ((X - 0.5) * sgn > 0.03)
    ax = np.abs(X - 0.5)
    rib_zone = 0.8 * col(d["bone"]) * soft_step(0.4 - ax, edge) * (ax > 0.04) * body
    rel = (Y + 0.35 * ax - col(d["rib_curv"]) * ax ** 2 - col(d["rib_y0"])) / col(d["rib_dy"])
    # distance to the nearest of 8 parallel rib curves, in rib spacings: one exp instead of eight
    k = np.clip(np.round(rel), 0, 7)
    rib_w = max(0.012, 0.8 / size)  # never thinner than ~1 px (no aliasing at 32 px); keep the rib's total density
    att += rib_zone * (0.012 / rib_w) * np.exp(-(((rel - k) * col(d["rib_dy"])) / rib_w) ** 2)
    # lung markings: vessel lines from the hila, end-on vessel blobs, parenchymal texture
    marks = 0.035 * smooth_noise(rng, b, size, 10)
    for s in (0, 1):
        cy, cx, ry, rx, sign = centres[s]
        hy, hx = cy + 0.02, 0.5 + sign * 0.075
        dy, dx = Y - col(hy), (X - col(hx)) * col(sign)
        r = np.sqrt(dy ** 2 + dx ** 2)
        w0 = 0.007 + 0.01 * np.exp(-r / 0.08)  # vessels taper away from the hilum
        w = np.maximum(w0, 0.8 / size)  # but stay ~1 px wide, with the same integrated density
        inv_w = 1.0 / w
        fade = np.exp(-r / 0.17) * (w0 / w)
        for _ in range(4):
            th0 = uniform(rng, -1.1, 1.2, b)
            c0, s0 = col(np.cos(th0)), col(np.sin(th0))
            perp = (dy * c0 - dx * s0) * inv_w
            along = dx * c0 + dy * s0
            marks += col(uniform(rng, 0.05, 0.1, b)) * np.exp(-perp * perp) * (along > 0) * fade
        for _ in range(4):
            rr = np.sqrt(rng.uniform(0, 0.8, b)).astype(np.float32)
            tt = rng.uniform(0, 2 * np.pi, b).astype(np.float32)
            marks += gauss(Y, X, cy + rr * ry * np.sin(tt), cx + rr * rx * np.cos(tt), uniform(rng, 0.012, 0.026, b),
                           uniform(rng, 0.04, 0.12, b))
    findings = _findings(Y, X, d, rng, size, masks, centres, marks)
    return att + findings, body


def _findings(Y, X, d, rng, size, masks, centres, marks):
    """Localised pathology patterns inside the lungs (plus the lung markings they may erase)."""
    b = Y.shape[0]
    edge = 1.0 / size
    side = d["side"]
    pick = lambda arrs: [np.where(side == 0, a0, a1) for a0, a1 in zip(*arrs)]  # noqa: E731
    cy, cx, ry, rx, sign = pick(([centres[0][i] for i in range(5)], [centres[1][i] for i in range(5)]))
    m_side = np.where(col(side) == 0, masks[0], masks[1])
    lungs = np.maximum(masks[0], masks[1])
    out = np.zeros_like(Y)
    keep_marks = np.ones_like(Y)
    # lung-relative coordinates of the affected side: u lateral (+1 at the outer wall), v down (+1 at the base)
    u = (X - col(cx)) / col(rx) * col(sign)
    v = (Y - col(cy)) / col(ry)

    def on(f):
        return col(d["has_" + f].astype(np.float32))

    if d["has_effusion"].any():
        eff = np.zeros_like(Y)
        level = 1.0 - 2.0 * col(d["eff_h"]) - col(d["eff_m"]) * np.clip(u, 0, 1) ** 2  # meniscus
        eff += soft_step((v - level) * col(ry), 1.2 * edge) * m_side
        # bilateral in some patients: the other lung gets a smaller effusion
        other = np.where(col(side) == 0, masks[1], masks[0])
        ocy, ocx, ory, orx, osign = pick(([centres[1][i] for i in range(5)], [centres[0][i] for i in range(5)]))
        ou = (X - col(ocx)) / col(orx) * col(osign)
        ov = (Y - col(ocy)) / col(ory)
        olevel = 1.0 - 1.2 * col(d["eff_h"]) - col(d["eff_m"]) * np.clip(ou, 0, 1) ** 2
        eff += col(d["both"].astype(np.float32)) * soft_step((ov - olevel) * col(ory), 1.2 * edge) * other
        out += on("effusion") * col(d["eff_amp"]) * eff
        keep_marks *= 1 - on("effusion") * np.clip(eff, 0, 1)
    if d["has_nodule"].any():
        ny = cy + d["nod_r"] * ry * np.sin(d["nod_t"])
        nx = cx + d["nod_r"] * rx * np.cos(d["nod_t"])
        out += on("nodule") * gauss(Y, X, ny, nx, d["nod_s"], d["nod_amp"])
    if d["has_mass"].any():
        my = cy + d["mass_r"] * ry * np.sin(d["mass_t"])
        mx = cx + d["mass_r"] * rx * np.cos(d["mass_t"])
        r = np.sqrt((Y - col(my)) ** 2 + (X - col(mx)) ** 2)
        th = np.arctan2(Y - col(my), X - col(mx))
        rad = col(d["mass_rad"]) * (1 + 0.15 * np.sin(3 * th + col(d["mass_t"])))
        out += on("mass") * col(d["mass_amp"]) * soft_step(rad - r, 1.5 * edge)
    if d["has_infiltrate"].any() or d["has_tb"].any() or d["has_consolidation"].any():
        patch_tex = np.clip(0.6 + 0.8 * smooth_noise(rng, b, size, 14), 0, 1.5)
        for f, pu, pv, prad, pamp in (("infiltrate", "inf_u", "inf_v", "inf_rad", "inf_amp"),
                                      ("tb", "tb_u", "tb_v", "tb_rad", "tb_amp"),
                                      ("consolidation", "cons_u", "cons_v", "cons_rad", "cons_amp")):
            if not d["has_" + f].any():
                continue
            py = cy + d[pv] * ry
            px = cx + sign * d[pu] * rx
            region = ellipse(Y, X, py, px, d[prad] * 1.3, d[prad], 3 * edge) * m_side
            tex = patch_tex if f != "consolidation" else 0.35 + 0.65 * np.clip(patch_tex, 0, 1)
            if f == "tb":  # bilateral upper-lobe disease in some patients
                oy = d["lung_cy"] + d[pv] * d["lung_ry"]
                ox = 0.5 - sign * d["lung_dx"] - sign * d[pu] * d["lung_rx"]
                region = region + col(d["both"].astype(np.float32)) * ellipse(
                    Y, X, oy, ox, d[prad], d[prad] * 0.8, 3 * edge) * np.maximum(masks[0], masks[1])
            out += on(f) * col(d[pamp]) * region * tex
            if f == "tb":
                for j in range(2):
                    cav = (d["tb_cav"] > j).astype(np.float32)
                    jy = py + (j - 0.5) * 0.6 * d[prad]
                    jx = px + (0.5 - j) * 0.5 * d[prad]
                    r = np.sqrt((Y - col(jy)) ** 2 + (X - col(jx)) ** 2)
                    rim = np.exp(-((r - col(d["tb_cav_r"])) / (0.9 * edge + 0.006)) ** 2)
                    hole = soft_step(col(d["tb_cav_r"]) - r, edge)
                    out += on(f) * col(cav) * (0.12 * rim - 0.2 * hole * np.clip(region, 0, 1))
    if d["has_atelectasis"].any():
        sa = d["side2"]
        a_cy, a_cx, a_ry, a_rx, a_sign = [np.where(sa == 0, p0, p1) for p0, p1 in zip(centres[0], centres[1])]
        line = a_cy + d["atel_band_v"] * a_ry  # plate-like band, slightly tilted
        t = Y - col(line) - col(d["atel_tilt"]) * (X - col(a_cx))
        plate = np.exp(-(t / (0.012 + edge)) ** 2) * np.where(col(sa) == 0, masks[0], masks[1])
        out += on("atelectasis") * col(d["atel_amp"]) * plate
    if d["has_pneumothorax"].any():
        edge_u = 1.0 - col(d["ptx_w"]) - 0.5 * np.clip(v + 0.2, 0, None)  # widest at the apex
        reg = soft_step((u - edge_u) * col(rx), edge) * m_side
        line = np.exp(-(((u - edge_u) * col(rx)) / (0.006 + 0.6 * edge)) ** 2) * m_side * (v < 0.6)
        out += on("pneumothorax") * (0.12 * line - col(d["ptx_dark"]) * reg)
        keep_marks *= 1 - on("pneumothorax") * reg
    if d["has_edema"].any():
        hz = np.zeros_like(Y)
        for s in (0, 1):
            ccy, ccx, cry, crx, csign = centres[s]
            hz += gauss(Y, X, ccy + 0.1 * cry, ccx - csign * 0.45 * crx, d["edema_s"], 1.0) * masks[s]
        out += on("edema") * col(d["edema_amp"]) * hz * (0.7 + 0.3 * np.clip(smooth_noise(rng, b, size, 16), -1, 1))
    return out + marks * keep_marks * lungs


# ------------------------------------------------------------------------------------------- lateral view
def _lateral(Y, X, d, rng, size):
    """Attenuation of a batch of lateral views (anterior = image left)."""
    b = Y.shape[0]
    edge = 1.0 / size
    body = ellipse(Y, X, np.full(b, 0.58), np.full(b, 0.5), d["body_ry"], d["body_rx"] * 0.85, 2 * edge)
    att = 0.46 * body
    lcy, lry, lrx = d["lung_cy"] + 0.02, d["lung_ry"] * 1.05, d["lung_rx"] * 2.2
    lung = ellipse(Y, X, lcy, np.full(b, 0.5), lry, lrx, 1.5 * edge)
    att -= col(d["lung_dark"]) * 0.8 * lung
    hs = d["heart_scale"]
    heart = ellipse(Y, X, d["heart_cy"], 0.38 - 0.02 * (hs - 1), d["heart_r"] * (0.9 + 0.1 * hs), d["heart_r"] * hs,
                    1.5 * edge)
    att += 0.2 * heart * lung
    vert = 0.75 + 0.25 * np.cos(2 * np.pi * Y / 0.055)
    att += col(d["bone"]) * 1.5 * soft_step(0.035 - np.abs(X - 0.76), edge) * vert * body
    for k in range(7):  # ribs seen obliquely
        yk = col(d["rib_y0"] + k * d["rib_dy"])
        rib = np.exp(-((Y - yk - 0.25 * (X - 0.7)) / 0.013) ** 2) * soft_step(0.3 - np.abs(X - 0.55), edge)
        att += 0.5 * col(d["bone"]) * rib * body
    marks = 0.03 * smooth_noise(rng, b, size, 10) * lung
    for _ in range(5):
        rr = np.sqrt(rng.uniform(0, 0.7, b)).astype(np.float32)
        tt = rng.uniform(0, 2 * np.pi, b).astype(np.float32)
        marks += gauss(Y, X, lcy + rr * lry * np.sin(tt), 0.5 + rr * lrx * np.cos(tt), uniform(rng, 0.012, 0.026, b),
                       uniform(rng, 0.04, 0.1, b)) * lung
    out = np.zeros_like(Y)
    # effusion pools posteriorly (image right) with a meniscus climbing the posterior wall
    u = (X - 0.5) / col(lrx)
    v = (Y - col(lcy)) / col(lry)
    level = 1.0 - 2.0 * col(d["eff_h"]) - col(d["eff_m"]) * np.clip(u, 0, 1) ** 2
    eff = soft_step((v - level) * col(lry), 1.2 * edge) * lung
    out += col(d["has_effusion"].astype(np.float32) * d["eff_amp"]) * eff
    marks *= 1 - col(d["has_effusion"].astype(np.float32)) * eff
    if d["has_nodule"].any():
        ny = lcy + d["nod_r"] * lry * np.sin(d["nod_t"])
        nx = 0.5 + d["nod_r"] * lrx * np.cos(d["nod_t"])
        out += col(d["has_nodule"].astype(np.float32)) * gauss(Y, X, ny, nx, d["nod_s"], d["nod_amp"])
    for f, amp in (("consolidation", "cons_amp"), ("tb", "tb_amp"), ("infiltrate", "inf_amp")):
        if d["has_" + f].any():
            vy = {"consolidation": 0.35, "tb": -0.6, "infiltrate": 0.15}[f]
            reg = ellipse(Y, X, lcy + vy * lry, np.full(b, 0.55), np.full(b, 0.1), np.full(b, 0.12), 3 * edge)
            out += col(d["has_" + f].astype(np.float32) * d[amp]) * reg * lung
    return att + out + marks, body


# ------------------------------------------------------------------------------------------- acquisition
def _acquire(att, body, Y, rng, style: ChestStyle, size):
    b = att.shape[0]
    n = lambda lo, hi: col(uniform(rng, lo, hi, b))  # noqa: E731
    img = style.background + att
    img = img + style.grain * smooth_noise(rng, b, size, 6) * body
    heel = n(-style.heel, style.heel)
    img = img * (1 + heel * (Y - 0.5))
    img = (img - 0.3) * (style.contrast * n(1 - style.contrast_jitter, 1 + style.contrast_jitter)) + 0.3
    img = img + style.exposure + n(-style.exposure_jitter, style.exposure_jitter)
    img = np.clip(img, 0, 1) ** n(*style.gamma)
    img = blur(img, style.blur_px64 * size / 64)
    yy, xx = grid(size)
    if style.marker_prob > 0:  # a burnt-in "L/R" marker: bright block in a random top corner
        has = col((rng.random(b) < style.marker_prob).astype(np.float32))
        mx = col(np.where(rng.random(b) < 0.5, uniform(rng, 0.06, 0.14, b), uniform(rng, 0.8, 0.88, b)))
        my = col(uniform(rng, 0.05, 0.14, b))
        blk = soft_step(0.035 - np.maximum(np.abs(xx - mx), np.abs(yy - my)), 0.7 / size)
        img = img * (1 - has * blk) + has * blk * 0.95
    if style.collimation > 0:
        w = col(uniform(rng, 0.0, style.collimation, b))
        frame = soft_step(np.minimum.reduce([xx - w, 1 - w - xx, yy - w * 0.5, 1 - w * 0.5 - yy]), 1.0 / size)
        img = img * frame + 0.02 * (1 - frame)
    img = img + style.noise * rng.standard_normal(img.shape).astype(np.float32)
    return np.clip(img, 0, 1)


def render_chest(rng: np.random.Generator, labels: np.ndarray, size: int, *, name: str, policy, style: ChestStyle,
                 pair_fraction: float = 0.0):
    """Render a chest set: per-patient anatomy/findings, per-image pose and acquisition, views in pairs."""
    patient, view, pairs = assign_views(labels, pair_fraction)
    plabel = patient_labels(patient, labels)
    has = policy(rng, plabel)
    pp = draw_patients(rng, has)
    n = len(labels)
    # per-image pose (a second view is a new exposure, so it gets its own pose and exposure)
    scale = style.fov * uniform(rng, 0.93, 1.07, n)
    ty, tx = uniform(rng, -style.shift, style.shift, n), uniform(rng, -style.shift, style.shift, n)
    rot = uniform(rng, -style.rotation, style.rotation, n)
    flip = np.zeros(n, bool)
    images = np.empty((n, size, size, 3), np.uint8)
    yy, xx = grid(size)
    for sl in batched(n):
        idx = np.arange(sl.start, sl.stop)
        ca, sa = np.cos(col(rot[idx])), np.sin(col(rot[idx]))
        dy, dx = yy - 0.5 - col(ty[idx]), xx - 0.5 - col(tx[idx])
        Y = (ca * dy - sa * dx) / col(scale[idx]) + 0.5
        X = (sa * dy + ca * dx) / col(scale[idx]) + 0.5
        X = np.where(col(flip[idx]), 1 - X, X)
        out = np.empty((len(idx), size, size), np.float32)
        for v, draw in ((0, _frontal), (1, _lateral)):
            sel = np.flatnonzero(view[idx] == v)
            if len(sel) == 0:
                continue
            d = _sub(pp, patient[idx[sel]])
            att, body = draw(Y[sel], X[sel], d, rng, size)
            out[sel] = _acquire(att, body, Y[sel], rng, style, size)
        images[sl] = to_uint8(out)[..., None]
    vname = ("frontal", "lateral")
    ids = [f"{name}-p{patient[i]:05d}-{vname[view[i]]}" for i in range(n)]
    return images, pairs, ids

