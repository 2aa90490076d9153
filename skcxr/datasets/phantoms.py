"""Synthetic frontal chest radiographs with ground truth: the embedded default data set.

:func:`make_phantoms` draws PA chest X-ray phantoms — soft-tissue outline,
two lung fields with branching vessel markings, heart, diaphragm domes, ribs,
clavicles, spine, trachea, gastric bubble, noise — with a random pose, size and
contrast per image, and simulates seven ChestX-ray14 findings with pixel-level
ground truth. Anatomy is lateralised as on a real film: the patient's right is
on the viewer's left, so the heart bulges and the gastric bubble lies to the
right of the image's centre line.

Everything is drawn in "body coordinates" (x, y in about [-1, 1], y pointing
down, 0 at the chest's centre) and rendered as an attenuation map that a
film-like tone curve turns into grey levels. Work is vectorised over chunks of
images with numpy and :mod:`scipy.ndimage`.
"""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd
from scipy import ndimage
from sklearn.utils import Bunch, check_random_state

from .chestxray14 import FINDINGS

__all__ = ["PHANTOM_FINDINGS", "DEFAULT_PREVALENCE", "make_phantoms"]

_SIMULATED = {"Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumothorax", "Consolidation"}
#: The simulated findings, in NIH ChestX-ray14 order and spelling.
PHANTOM_FINDINGS = tuple(f for f in FINDINGS if f in _SIMULATED)

#: Prevalence of each finding when ``prevalence=None``.
DEFAULT_PREVALENCE = {
    "Cardiomegaly": 0.25,
    "Effusion": 0.25,
    "Infiltration": 0.3,
    "Mass": 0.2,
    "Nodule": 0.25,
    "Pneumothorax": 0.2,
    "Consolidation": 0.2,
}

_HEART = (0.41, 0.28)  # semi-axes of the heart ellipse at hsize 1, body units
_CHUNK_PIXELS = 2 * 224 * 224  # rendered together; fixed, so that results do not depend on n
_F = np.float32


def _check_prevalence(prevalence) -> np.ndarray:
    """Prevalence argument -> float array (L,) in NIH order of PHANTOM_FINDINGS."""
    p = dict(DEFAULT_PREVALENCE)
    if prevalence is None:
        pass
    elif isinstance(prevalence, dict):
        unknown = sorted(set(prevalence) - set(PHANTOM_FINDINGS), key=str)
        if unknown:
            raise ValueError(
                f"Unknown finding(s) in prevalence: {unknown}. "
                f"Valid findings are: {list(PHANTOM_FINDINGS)}."
            )
        p.update(prevalence)
    elif isinstance(prevalence, numbers.Real) and not isinstance(prevalence, bool):
        p = dict.fromkeys(PHANTOM_FINDINGS, prevalence)
    else:
        raise ValueError(
            "prevalence must be None, a float in [0, 1] or a dict {finding: float}, "
            f"got {type(prevalence).__name__}."
        )
    out = np.empty(len(PHANTOM_FINDINGS))
    for k, name in enumerate(PHANTOM_FINDINGS):
        v = p[name]
        if not isinstance(v, numbers.Real) or isinstance(v, bool) or not 0.0 <= float(v) <= 1.0:
            raise ValueError(f"prevalence of {name!r} must be a float in [0, 1], got {v!r}.")
        out[k] = float(v)
    return out


# ----------------------------------------------------------------------------
# per-image parameters


def _u(rng, m, lo, hi):
    return rng.uniform(lo, hi, size=(m, 1, 1)).astype(_F)


def _draw_anatomy(rng, m: int, cardiomegaly: np.ndarray) -> dict:
    a = {
        # pose: rotation (rad), shift, scale of the body in the frame
        "rot": _u(rng, m, -0.05, 0.05),
        "tx": _u(rng, m, -0.05, 0.05),
        "ty": _u(rng, m, -0.04, 0.06),
        "sx": _u(rng, m, 0.88, 1.02),
        # body and thorax
        "body_w": _u(rng, m, 0.9, 1.02),
        "lat_r": _u(rng, m, 0.74, 0.84),  # lateral lung border, patient's right (viewer left)
        "lat_l": _u(rng, m, 0.74, 0.84),
        "apex": _u(rng, m, -0.74, -0.64),
        "yc": _u(rng, m, -0.05, 0.1),  # lateral wall vertical below dome + yc
        "dome_r": _u(rng, m, 0.28, 0.4),  # top of the right hemidiaphragm
        "dome_dl": _u(rng, m, 0.02, 0.09),  # left dome lower than the right by this
        "dome_h": _u(rng, m, 0.18, 0.28),  # depth of the costophrenic angle below the dome
        "med": _u(rng, m, 0.08, 0.11),  # half width of the upper mediastinum
        # heart (rotated ellipse); cardiomegaly enlarges it
        "hcx": _u(rng, m, 0.08, 0.13),
        "hcy": _u(rng, m, 0.12, 0.2),
        "hang": _u(rng, m, 0.25, 0.45),
        # ribs
        "rib_y0": _u(rng, m, -0.9, -0.82),
        "rib_dy": _u(rng, m, 0.12, 0.14),
        "rib_curv": _u(rng, m, 0.75, 0.95),
        "clav_y": _u(rng, m, -0.72, -0.64),
        # film
        "gain": _u(rng, m, 1.1, 1.5),
        "noise": _u(rng, m, 0.012, 0.03),
        "bright": _u(rng, m, -0.04, 0.04),
        "white": _u(rng, m, 1.35, 1.6),  # attenuation shown as white
    }
    a["sy"] = (a["sx"] * _u(rng, m, 0.95, 1.06)).astype(_F)
    # heart size from a target cardiothoracic ratio: heart width / widest inner thorax
    ctr = np.where(cardiomegaly[:, None, None], _u(rng, m, 0.53, 0.66), _u(rng, m, 0.36, 0.475))
    half = np.hypot(_HEART[0] * np.cos(a["hang"]), _HEART[1] * np.sin(a["hang"]))  # at hsize 1
    a["hsize"] = (ctr * (a["lat_r"] + a["lat_l"]) / (2 * half)).astype(_F)
    return a


# ----------------------------------------------------------------------------
# geometry in body coordinates; every function works on (m, S, S) arrays and
# (m, 1, 1) parameters


def _pose(a, S):
    """Pixel grid -> body coordinates X, Y (m, S, S) under each image's rotation, shift and scale."""
    g = ((np.arange(S, dtype=_F) + 0.5) / S * 2 - 1).astype(_F)
    xx, yy = g[None, None, :] - a["tx"], g[None, :, None] - a["ty"]
    c, s = np.cos(a["rot"]), np.sin(a["rot"])
    return (c * xx + s * yy) / a["sx"], (c * yy - s * xx) / a["sy"]


def _to_pixels(a, X, Y, S):
    """Body coordinates -> (col, row) pixel coordinates (inverse of _pose)."""
    c, s = np.cos(a["rot"]), np.sin(a["rot"])
    xx = a["tx"] + c * a["sx"] * X - s * a["sy"] * Y
    yy = a["ty"] + s * a["sx"] * X + c * a["sy"] * Y
    return (xx + 1) / 2 * S - 0.5, (yy + 1) / 2 * S - 0.5


def _dome(a, X):
    """Diaphragm level (y) under each x: two domes, the left (viewer right) lower."""
    left = X > 0
    lat = a["lat_r"] + left * (a["lat_l"] - a["lat_r"])
    u = (np.abs(X) - 0.38) / (lat - 0.38)
    u2 = u * u
    return a["dome_r"] + left * a["dome_dl"] + a["dome_h"] * u2 * (0.6 + 0.4 * (u > 0))


def _hemithorax(a, X, Y, side):
    """One hemithorax, not yet cut at the diaphragm, and a lung-depth profile in [0, 1]."""
    t = side * X
    lat = a["lat_r"] if side < 0 else a["lat_l"]
    tc, rx = (lat + 0.02) / 2, (lat - 0.02) / 2
    yc = a["dome_r"] + a["yc"]
    du = (t - tc) / rx
    du2 = du * du
    dv = np.minimum(Y - yc, 0) / (yc - a["apex"])
    G = du2 + (du < 0) * (du2 * du2 - du2) + dv * dv  # rounder laterally, straighter medially
    med = a["med"] + 0.1 * np.maximum(Y + 0.5, 0)
    if side > 0:  # aortic knob and pulmonary trunk on the left
        med = med + 0.07 * _bump(np.square((Y + 0.36) / 0.125)) + 0.05 * _bump(np.square((Y + 0.16) / 0.11))
    return (G <= 1) & (t >= med), np.sqrt(np.clip(1 - G, 0, 1))


def _heart(a, X, Y, dome):
    c, s = np.cos(a["hang"]), np.sin(a["hang"])
    hx, hy = X - a["hcx"] - 0.15 * (a["hsize"] - 1), Y - a["hcy"]  # grows mostly to the left
    u = (c * hx + s * hy) / (_HEART[0] * a["hsize"])
    v = (c * hy - s * hx) / (_HEART[1] * a["hsize"])
    return (u * u + v * v <= 1) & (Y < dome)


def _body(X, Y, a):
    """Soft-tissue thickness in [0, 1] (0 outside the body): torso widening to the shoulders, neck."""
    t = np.abs(X)
    w = a["body_w"] + 0.12 * np.square(np.clip(Y, -1, 0))
    torso = np.clip(1 - np.square(t / w), 0, 1)
    torso = torso * (1.4 - 0.4 * torso)  # a flattened ellipse: thin at the flanks
    sh = np.clip((t - 0.28) / 0.75, 0, 1)
    top = np.clip((Y + 1.0 - 0.3 * sh * np.sqrt(sh)) / 0.1, 0, 1)
    neck = np.sqrt(np.clip(1 - np.square(t / 0.26), 0, 1)) * np.clip((-0.55 - Y) / 0.2, 0, 1)
    return np.maximum(torso * top, neck)


def _ribs(a, X, Y):
    """Posterior ribs (arcs falling laterally), faint anterior ribs; and the clavicles."""
    t = np.abs(X)
    phase = (Y - a["rib_curv"] * t * t + 0.08 * t - a["rib_y0"]) / a["rib_dy"]
    k = np.floor(phase)
    f = np.abs(phase - k - 0.5)  # distance from the rib's centre line, in rib periods
    band = np.clip((0.2 - f) * 20 + 0.5, 0, 1)
    cortex = np.clip(1 - np.abs(f - 0.19) * 20, 0, 1)  # the denser cortical edges
    post = (0.45 * band + 0.55 * cortex) * ((k >= 0) & (k <= 9))
    pa = (Y - a["rib_y0"] - 0.5 * (0.9 - t) - 0.05) / (1.2 * a["rib_dy"])
    ka = np.floor(pa)
    ant = np.clip((0.15 - np.abs(pa - ka - 0.5)) * 16 + 0.5, 0, 1) * ((ka >= 0) & (ka <= 5))
    ant *= np.clip((t - 0.3) / 0.15, 0, 1)
    lateral = np.clip((a["body_w"] - 0.06 - t) / 0.06, 0, 1) * np.clip((t - 0.05) / 0.04, 0, 1)
    dc = np.abs(Y - a["clav_y"] + 0.2 * t - 0.2 * t * (0.7 - t))
    clav = np.clip((0.035 - dc) / 0.015 + 0.5, 0, 1) * np.clip((t - 0.07) / 0.03, 0, 1)
    clav *= np.clip((0.8 - t) / 0.05, 0, 1)
    return (post + 0.25 * ant) * lateral, clav


def _spine(X, Y):
    ph = (Y + 1) / 0.11
    disc = 1 - 0.35 * np.clip(1 - np.abs(ph - np.round(ph)) / 0.15, 0, 1)  # intervertebral spaces
    return np.clip((0.07 - np.abs(X)) / 0.012, 0, 1) * disc


# ----------------------------------------------------------------------------
# building blocks


def _bump(z2):
    """Cheap compact bell: (1 - z2)^2 for z2 < 1, else 0 (about exp(-2.4 z2) near 0)."""
    b = np.clip(1 - z2, 0, 1)
    return b * b


def _blur(img, sigma):
    if sigma < 0.3:
        return img
    return ndimage.gaussian_filter(img, sigma=(0, sigma, sigma), truncate=3.0)


def _smooth_noise(rng, m, S, cells):
    """Smooth noise with unit variance and about ``cells`` blobs across (separable upsampling)."""
    nodes = np.linspace(-1, 1, cells + 2)
    x = (np.arange(S) + 0.5) / S * 2 - 1
    U = np.exp(-np.square((x[:, None] - nodes[None, :]) * (cells + 1) / 2.4)).astype(_F)
    U /= U.sum(1, keepdims=True)
    low = rng.standard_normal((m, cells + 2, cells + 2), dtype=_F)
    up = (U @ low).reshape(-1, cells + 2) @ U.T  # one 2-D product: much faster than a batched one
    up = up.reshape(m, S, S)
    return (up - up.mean(axis=(1, 2), keepdims=True)) / (up.std(axis=(1, 2), keepdims=True) + 1e-6)


def _vessels(rng, a, S, depth=5, roots=9):
    """Pulmonary vessel markings: trees branching from each hilum, thinner at each level."""
    m = a["rot"].shape[0]
    pose = {k: a[k][:, :, 0] for k in ("rot", "tx", "ty", "sx", "sy")}
    base = np.deg2rad(np.linspace(-80, 80, roots))[None, None, :]
    theta = base + rng.normal(0, 0.12, (m, 2, roots))
    # roots leave along the hilum, the upper ones upwards, the lower ones downwards
    t0 = 0.16 + rng.uniform(-0.02, 0.02, (m, 2, 1)) + 0.04 * np.cos(base)
    y0 = np.array([-0.02, -0.08])[None, :, None] + 0.1 * np.sin(base) + rng.uniform(-0.04, 0.04, (m, 2, 1))
    length = rng.uniform(0.11, 0.15, (m, 2, roots))
    w = np.full(theta.shape, 0.75 * S / 224)
    img = np.broadcast_to(np.arange(m)[:, None, None], theta.shape)
    side = np.broadcast_to(np.array([-1.0, 1.0])[None, :, None], theta.shape)
    points = []  # (image, col, row, weight)
    for level in range(depth):
        t1 = t0 + length * np.cos(theta)
        y1 = y0 + length * np.sin(theta)
        ns = int(np.ceil(length.max() * S * 0.6)) + 2  # about one sample per pixel
        f = np.linspace(0, 1, ns)
        tp = t0[..., None] + (t1 - t0)[..., None] * f
        yp = y0[..., None] + (y1 - y0)[..., None] * f
        col, row = _to_pixels(pose, (side[..., None] * tp).reshape(m, -1), yp.reshape(m, -1), S)
        wp = np.broadcast_to((w * length * S / 2 / ns)[..., None], tp.shape).reshape(m, -1)
        ip = np.broadcast_to(img[..., None], tp.shape).reshape(m, -1)
        points.append((ip.ravel(), col.ravel(), row.ravel(), wp.ravel()))
        # two children per segment, shorter, thinner, turned apart
        spread = rng.uniform(0.25, 0.55, theta.shape)
        theta = np.stack([theta - spread, theta + spread], -1).reshape(m, 2, -1)
        theta = theta + rng.normal(0, 0.12, theta.shape)
        t0, y0 = np.repeat(t1, 2, axis=-1), np.repeat(y1, 2, axis=-1)
        length = np.repeat(length, 2, axis=-1) * rng.uniform(0.65, 0.85, theta.shape)
        w = np.repeat(w, 2, axis=-1) * 0.66
        img, side = np.repeat(img, 2, axis=-1), np.repeat(side, 2, axis=-1)
    return _blur(_splat(points, m, S), max(1.1 * S / 224, 0.4))


def _splat(points, m, S):
    """Add weighted points [(image, col, row, weight), ...] to their nearest pixels of (m, S, S)."""
    img, col, row, w = (np.concatenate(v) for v in zip(*points))
    c, r = np.rint(col).astype(np.intp), np.rint(row).astype(np.intp)
    ok = (c >= 0) & (c < S) & (r >= 0) & (r < S)
    out = np.bincount((img[ok] * S + r[ok]) * S + c[ok], weights=w[ok], minlength=m * S * S)
    return out.reshape(m, S, S).astype(_F)


def _blob(X, Y, cx, cy, r, lobes=None):
    """Projected sphere-like density in [0, 1] and its mask; lobulated when ``lobes`` is given."""
    dx, dy = X - cx, Y - cy
    d2 = dx * dx + dy * dy
    if lobes is not None:  # r * (1 + l3 cos(3 phi + a3) + l5 cos(5 phi + a5)), phi the polar angle
        inv = 1 / np.sqrt(d2 + 1e-12)
        c, s = dx * inv, dy * inv
        c2, s2 = c * c, s * s
        cos3, sin3 = c * (4 * c2 - 3), s * (3 - 4 * s2)
        cos5, sin5 = c * (16 * c2 * c2 - 20 * c2 + 5), s * (16 * s2 * s2 - 20 * s2 + 5)
        l3, a3, l5, a5 = lobes
        lobe3 = l3 * (cos3 * np.cos(a3) - sin3 * np.sin(a3))
        r = r * (1 + lobe3 + l5 * (cos5 * np.cos(a5) - sin5 * np.sin(a5)))
    q = 1 - d2 / (r * r)
    return np.sqrt(np.clip(q, 0, 1)), q > 0


class _Sites:
    """Random lesion centres inside the lung parenchyma, far enough from its border."""

    def __init__(self, mask):
        S = mask.shape[-1]
        self.q = max(1, S // 32)  # distances on a coarse grid: plenty for choosing centres
        small = np.pad(mask[:, :: self.q, :: self.q], ((0, 0), (1, 1), (1, 1)))
        # one 3-D transform; the huge spacing between images keeps them apart
        self.dist = ndimage.distance_transform_edt(small, sampling=(1e6, 1, 1))[:, 1:-1, 1:-1] * self.q

    def pick(self, rng, idx, min_dist):
        dist = self.dist[idx]
        k, h, w = dist.shape
        ok = dist >= np.reshape(min_dist, (-1, 1, 1))
        score = np.where(ok, rng.random(dist.shape), -1.0).reshape(k, -1)
        flat = np.where(score.max(1) >= 0, score.argmax(1), dist.reshape(k, -1).argmax(1))
        return (flat // w) * self.q, (flat % w) * self.q  # the very pixels the distances are for


def _subset(a, idx):
    return {key: v[idx] for key, v in a.items()}


# ----------------------------------------------------------------------------


def _render_chunk(rng, Yc, S):
    m, L = Yc.shape
    col = {name: k for k, name in enumerate(PHANTOM_FINDINGS)}
    has = {name: np.flatnonzero(Yc[:, k]) for name, k in col.items()}
    cardio = np.zeros(m, bool)
    cardio[has["Cardiomegaly"]] = True
    a = _draw_anatomy(rng, m, cardio)
    s = S / 224  # pixel sizes below are given at 224 px
    X, Y = _pose(a, S)
    dome = _dome(a, X)
    lesions = np.zeros((m, L, S, S), dtype=bool)

    heart = _heart(a, X, Y, dome)
    above = Y < dome
    thorax_r, depth_r = _hemithorax(a, X, Y, -1)
    thorax_l, depth_l = _hemithorax(a, X, Y, +1)
    hemi_r, hemi_l = thorax_r & above, thorax_l & above
    lung_r, lung_l = hemi_r & ~heart, hemi_l & ~heart

    # cardiothoracic ratio on the rendered masks
    def width(mask):
        cols = mask.any(1)
        return np.where(cols.any(1), S - np.argmax(cols[:, ::-1], 1) - np.argmax(cols, 1), 0)

    ctr = width(heart) / np.maximum(width(hemi_r | hemi_l), 1)
    lesions[has["Cardiomegaly"], col["Cardiomegaly"]] = heart[has["Cardiomegaly"]]

    # effusion: fluid at the base of one or both hemithoraces, its meniscus rising laterally
    fluid = np.zeros((m, S, S), _F)
    idx = has["Effusion"]
    if idx.size:
        k = idx.size
        r = rng.random(k)
        sides = np.where(r < 0.25, 0, np.where(r < 0.6, -1, 1))  # 0: both sides
        level = rng.uniform(0.0, 0.35, (k, 1, 1)).astype(_F)  # lateral height above the dome top
        menisc = rng.uniform(0.08, 0.2, (k, 1, 1)).astype(_F)
        dens = rng.uniform(0.6, 1.0, (k, 1, 1)).astype(_F)  # share of the lung's air replaced
        ai, Xi, Yi = _subset(a, idx), X[idx], Y[idx]
        # the fluid fills the costophrenic angle and hides the dome's outline
        below_dome = (Yi < dome[idx] + 0.03) & ~heart[idx]
        fl = np.zeros((k, S, S), _F)
        for side in (-1, 1):
            use = ((sides == 0) | (sides == side))[:, None, None]
            lat = ai["lat_r"] if side < 0 else ai["lat_l"]
            top = ai["dome_r"] + (ai["dome_dl"] if side > 0 else 0)
            u = np.clip(side * Xi / lat, 0, 1)
            surf = top - level + menisc * (1 - u * u * u)
            region = (thorax_r if side < 0 else thorax_l)[idx] & below_dome & use
            fl = np.maximum(fl, np.clip((Yi - surf) / 0.04, 0, 1) * region * dens)
        fluid[idx] = fl
        lesions[idx, col["Effusion"]] = fl > 0.4
    lung = (lung_r | lung_l) & (fluid < 0.4)

    # pneumothorax: the lung collapsed towards its base, a rim of air without markings
    ptx = np.zeros((m, S, S), bool)
    pleura = np.zeros((m, S, S), bool)
    sides = np.where(rng.random(has["Pneumothorax"].size) < 0.5, -1, 1)
    for side in (-1, 1):
        idx = has["Pneumothorax"][sides == side]
        if not idx.size:
            continue
        k = idx.size
        shrink = rng.uniform(0.78, 0.92, (k, 1, 1)).astype(_F)
        ai = _subset(a, idx)
        cx, cy = side * 0.2, ai["dome_r"] + 0.05
        Xs, Ys = cx + (X[idx] - cx) / shrink, cy + (Y[idx] - cy) / shrink
        dome_s = _dome(ai, Xs)
        collapsed = _hemithorax(ai, Xs, Ys, side)[0] & (Ys < dome_s) & ~_heart(ai, Xs, Ys, dome_s)
        region = (lung_r if side < 0 else lung_l)[idx] & ~collapsed & (fluid[idx] < 0.4)
        ring = ndimage.binary_dilation(region, structure=np.ones((1, 3, 3), bool))
        ptx[idx] = region
        pleura[idx] = collapsed & ring
        lesions[idx, col["Pneumothorax"]] = region

    sites = _Sites(lung & ~ptx)  # focal lesions sit in the aerated parenchyma
    opac = np.zeros((m, S, S), _F)  # density added by lung lesions
    bronch = np.zeros((m, S, S), _F)  # where air bronchograms show

    for name, rmin, rmax, dens in (("Nodule", 2.5, 7.5, (0.25, 0.45)), ("Mass", 11.0, 22.0, (0.25, 0.42))):
        idx = has[name]
        if not idx.size:
            continue
        k = idx.size
        rpx = rng.uniform(rmin, rmax, k) * s
        rows, cols = sites.pick(rng, idx, 0.8 * rpx)
        cx, cy = X[idx, rows, cols][:, None, None], Y[idx, rows, cols][:, None, None]
        r = (rpx * 2 / S / a["sx"][idx, 0, 0]).astype(_F)[:, None, None]
        lobes = None
        if name == "Mass":
            lobes = [rng.uniform(0, 0.15, (k, 1, 1)), rng.uniform(0, 6.3, (k, 1, 1)),
                     rng.uniform(0, 0.1, (k, 1, 1)), rng.uniform(0, 6.3, (k, 1, 1))]
        blob, mask = _blob(X[idx], Y[idx], cx, cy, r, lobes)
        opac[idx] += blob * rng.uniform(*dens, (k, 1, 1)).astype(_F)
        lesions[idx, col[name]] = mask

    # consolidation: dense, confluent, lobulated patch with air bronchograms
    idx = has["Consolidation"]
    if idx.size:
        k = idx.size
        rows, cols = sites.pick(rng, idx, 12.0 * s)
        cx, cy = X[idx, rows, cols][:, None, None], Y[idx, rows, cols][:, None, None]
        rx = rng.uniform(0.24, 0.38, (k, 1, 1)).astype(_F)
        ry = rx * rng.uniform(0.7, 1.3, (k, 1, 1)).astype(_F)
        env = np.exp(-np.square((X[idx] - cx) / rx) - np.square((Y[idx] - cy) / ry))
        nz = np.clip(_smooth_noise(rng, k, S, 10), -0.7, 0.7)
        # bounded on one side by a fissure: a straight edge, mostly horizontal
        ang = rng.uniform(-0.4, 0.4, (k, 1, 1)) + np.pi / 2 * rng.choice([-1, 1], (k, 1, 1))
        cut = (X[idx] - cx) * np.cos(ang) + (Y[idx] - cy) * np.sin(ang) < rng.uniform(0.06, 0.2, (k, 1, 1))
        patch = (env * (1 + 0.7 * nz) > 0.45) & cut & lung[idx]
        soft = _blur(patch.astype(_F), 1.8 * s) * (0.85 + 0.15 * nz)
        opac[idx] += soft * rng.uniform(0.28, 0.42, (k, 1, 1)).astype(_F)
        bronch[idx] = soft
        lesions[idx, col["Consolidation"]] = patch

    # infiltration: diffuse, streaky/reticular, ill-defined, often both lungs
    idx = has["Infiltration"]
    if idx.size:
        k = idx.size
        rows, cols = sites.pick(rng, idx, 8.0 * s)
        cx, cy = X[idx, rows, cols][:, None, None], Y[idx, rows, cols][:, None, None]
        both = rng.random((k, 1, 1)) < 0.35
        rx = rng.uniform(0.18, 0.3, (k, 1, 1)).astype(_F)
        ry = rng.uniform(0.2, 0.35, (k, 1, 1)).astype(_F)
        Xm = np.where(both, np.abs(X[idx]) * np.sign(cx), X[idx])  # mirrored for bilateral disease
        e = np.square((Xm - cx) / rx) + np.square((Y[idx] - cy) / ry)
        env = np.exp(-e * np.sqrt(e))
        ridge = np.square(np.clip(1 - np.abs(_smooth_noise(rng, k, S, 28)) / 0.6, 0, 1))  # streaks
        tex = env * (0.35 + 0.65 * ridge) * (0.7 + 0.3 * np.clip(_smooth_noise(rng, k, S, 9), -1, 1))
        opac[idx] += tex * lung[idx] * rng.uniform(0.25, 0.38, (k, 1, 1)).astype(_F)
        lesions[idx, col["Infiltration"]] = (env > 0.5) & lung[idx]

    # --- attenuation map -----------------------------------------------------
    # (sharp terms are left sharp: the film's unsharpness at the end softens them)
    body = _body(X, Y, a)
    A = body * (1 + 0.2 * np.clip((Y - dome) / 0.03, 0, 1) + 0.15 * np.clip(Y + 0.1, 0, 0.6))
    depth = lung_r * depth_r + lung_l * depth_l
    air = _blur((lung_r | lung_l) * (1 - fluid) * (0.5 + 0.5 * depth) * body, 1.5 * s)
    A -= 0.8 * air + 0.05 * ptx
    # trachea, hila, gastric bubble under the left dome
    trachea = np.clip((0.035 - np.abs(X - 0.01 * (Y + 1))) / 0.01, 0, 1) * np.clip((-0.3 - Y) / 0.05, 0, 1)
    A -= 0.2 * body * trachea
    for side, hy in ((-1, -0.02), (1, -0.08)):
        A += 0.14 * _bump(np.square((X - side * 0.2) / 0.11) + np.square((Y - hy) / 0.155))
    gb = np.square((X - 0.42) / 0.13) + np.square((Y - a["dome_r"] - a["dome_dl"] - 0.1) / 0.06)
    A -= rng.uniform(0.05, 0.3, (m, 1, 1)).astype(_F) * np.clip((1 - gb) / 0.2, 0, 1) * (Y > dome + 0.02)
    # vessel markings: in aerated lung only, none in the pneumothorax, dark in consolidation
    # (air bronchograms)
    A += _vessels(rng, a, S) * (0.3 * (lung & ~ptx) - 0.3 * bronch)
    A += 0.15 * pleura + opac
    ribs, clav = _ribs(a, X, Y)
    A += body * (0.14 * (0.4 + 0.7 * air) * ribs + 0.3 * clav + 0.12 * _spine(X, Y))
    # film: exposure and tone curve (1 - exp(-gain A), normalised), quantum noise, unsharpness
    norm = 255 / (1 - np.exp(-a["gain"] * a["white"]))
    A *= -a["gain"]
    I = np.exp(A, out=A)
    I *= -norm
    I += norm + 255 * a["bright"] + 0.5
    grain = a["noise"] * 255 * 3.46 * min(1.0, s) ** 0.5  # smaller images: pixels average more quanta
    I += grain * (rng.random(I.shape, dtype=_F) - 0.5)  # uniform noise of unit variance times grain
    I = _blur(I, 0.8 * s)
    images = np.clip(I, 0, 255, out=I).astype(np.uint8)
    return images, lung, lesions, ctr


def make_phantoms(n, size=224, prevalence=None, random_state=None) -> Bunch:
    """Synthetic frontal chest radiographs with labels, lung masks and lesion masks.

    Each image is a PA chest X-ray phantom: soft-tissue outline, dark lung
    fields with vessel markings that branch from the hila and fade to the
    periphery, the heart to the image's right of the centre line (the patient's
    left), diaphragm domes, posterior and anterior ribs, clavicles, spine,
    trachea, noise, and a random pose, size and contrast per image. Seven
    findings are simulated, independently, several per image possible:

    - ``Cardiomegaly``: enlarged heart, growing mostly to the patient's left;
      cardiothoracic ratio 0.53-0.66 (0.36-0.475 otherwise);
    - ``Effusion``: basal fluid on one or both sides whose meniscus rises
      laterally; it blunts the costophrenic angle and hides the dome;
    - ``Infiltration``: ill-defined, streaky/reticular opacity, often bilateral;
    - ``Mass``: large lobulated opacity (22-44 px across at 224 px);
    - ``Nodule``: small round opacity (5-15 px across at 224 px);
    - ``Pneumothorax``: the lung collapsed towards its base, leaving an apical
      and lateral rim of air without vessel markings behind a thin visceral
      pleural line;
    - ``Consolidation``: dense, confluent patch, often bounded by a straight
      fissure, with air bronchograms.

    Findings are drawn independently (several per image are common) and the
    anatomy varies per image, so no two images are alike. Logistic regression
    on LBP + HOG features reaches a macro-AUC of about 0.75-0.8 at 224 px
    (400 training images): Cardiomegaly, Effusion and Pneumothorax are easy,
    Nodule is hard.

    Parameters
    ----------
    n : int
        Number of images (>= 1).
    size : int, default=224
        Side of the square images in pixels (>= 32; 64 and more keep the
        smallest nodules and the cardiothoracic margin above a pixel).
    prevalence : None, float or dict, default=None
        Probability of each finding. None uses :data:`DEFAULT_PREVALENCE`
        (0.2-0.3 each); a float applies to every finding; a dict
        ``{finding: p}`` overrides the named findings and keeps the default
        for the others.
    random_state : int, RandomState instance or None, default=None
        Seed; the same seed gives the same data set.

    Returns
    -------
    data : sklearn.utils.Bunch
        - ``images``: uint8 (n, size, size), bright = dense, as a radiograph;
        - ``Y``: uint8 (n, L) 0/1 labels, columns as ``target_names``;
        - ``target_names``: list of the L = 7 simulated findings, NIH order and spelling;
        - ``lung_masks``: bool (n, size, size), the aerated lung fields (heart,
          mediastinum and pleural fluid excluded, pneumothorax air included);
        - ``lesion_masks``: bool (n, L, size, size), where each finding is (the
          heart for Cardiomegaly, the fluid for Effusion, the pleural air for
          Pneumothorax, ...); non-empty exactly where ``Y == 1``;
        - ``boxes``: DataFrame (image, finding, x, y, w, h), one bounding box
          in pixels per positive label, like NIH's ``BBox_List_2017.csv``;
        - ``ctr``: float (n,) cardiothoracic ratio measured on the rendered heart
          and hemithorax masks (> 0.5 exactly for Cardiomegaly from 64 px up;
          smaller images may blur the margin by a pixel);
        - ``patient_ids``: ``np.arange(n)`` (one image per patient);
        - ``DESCR``: a short description.

    Examples
    --------
    >>> from skcxr.datasets.phantoms import make_phantoms
    >>> data = make_phantoms(8, size=64, random_state=0)
    >>> data.images.shape, data.Y.shape, data.lesion_masks.shape
    ((8, 64, 64), (8, 7), (8, 7, 64, 64))
    >>> data.target_names[:2]
    ['Cardiomegaly', 'Effusion']
    """
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}.")
    if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 32:
        raise ValueError(f"size must be an integer >= 32, got {size!r}.")
    n, S = int(n), int(size)
    p = _check_prevalence(prevalence)
    rs = check_random_state(random_state)
    seed = int(rs.randint(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    L = len(PHANTOM_FINDINGS)
    Y = (rng.random((n, L)) < p).astype(np.uint8)

    images = np.empty((n, S, S), np.uint8)
    lung_masks = np.empty((n, S, S), bool)
    lesion_masks = np.empty((n, L, S, S), bool)
    ctr = np.empty(n)
    chunk = max(1, _CHUNK_PIXELS // (S * S))
    for c, start in enumerate(range(0, n, chunk)):
        sl = slice(start, min(start + chunk, n))
        out = _render_chunk(np.random.default_rng([seed, c]), Y[sl], S)
        images[sl], lung_masks[sl], lesion_masks[sl], ctr[sl] = out

    rows = []
    for i, k in zip(*np.nonzero(Y)):
        m = lesion_masks[i, k]
        r, c = np.flatnonzero(m.any(1)), np.flatnonzero(m.any(0))
        rows.append((i, PHANTOM_FINDINGS[k], c[0], r[0], c[-1] - c[0] + 1, r[-1] - r[0] + 1))
    boxes = pd.DataFrame(rows, columns=["image", "finding", "x", "y", "w", "h"])
    boxes[["x", "y", "w", "h"]] = boxes[["x", "y", "w", "h"]].astype(float)  # as load_bboxes
    return Bunch(
        images=images,
        Y=Y,
        target_names=list(PHANTOM_FINDINGS),
        lung_masks=lung_masks,
        lesion_masks=lesion_masks,
        boxes=boxes,
        ctr=ctr,
        patient_ids=np.arange(n),
        DESCR=(
            f"{n} synthetic PA chest radiographs ({S}x{S}, uint8) with "
            f"{L} simulated findings, lung masks and lesion masks (skcxr.make_phantoms)."
        ),
    )
