"""Synthetic tiny targets rendered into real frames: sub-pixel anisotropic Gaussian spots."""
from __future__ import annotations

import numpy as np


def render_spot(shape: tuple[int, int], x: float, y: float, sigma_x: float, sigma_y: float,
                theta: float = 0.0, radius: float = 4.0) -> tuple[np.ndarray, tuple[slice, slice]]:
    """Unit-peak Gaussian spot centred at sub-pixel (x, y); returns the patch and where it goes."""
    h, w = shape
    r = int(np.ceil(radius * max(sigma_x, sigma_y))) + 1
    x0, x1 = max(0, int(np.floor(x)) - r), min(w, int(np.floor(x)) + r + 2)
    y0, y1 = max(0, int(np.floor(y)) - r), min(h, int(np.floor(y)) + r + 2)
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float64)
    dx, dy = xs - x, ys - y
    c, s = np.cos(theta), np.sin(theta)
    u, v = c * dx + s * dy, -s * dx + c * dy
    patch = np.exp(-0.5 * ((u / sigma_x) ** 2 + (v / sigma_y) ** 2))
    return patch, (slice(y0, y1), slice(x0, x1))


def local_clutter(image: np.ndarray, x: float, y: float, inner: int = 4, outer: int = 10) -> tuple[float, float]:
    """Mean and std of the ring of background around (x, y) (inner..outer px): the SCR reference."""
    h, w = image.shape
    xi, yi = int(round(x)), int(round(y))
    y0, y1, x0, x1 = max(0, yi - outer), min(h, yi + outer + 1), max(0, xi - outer), min(w, xi + outer + 1)
    patch = image[y0:y1, x0:x1].astype(np.float64)
    ys, xs = np.mgrid[y0:y1, x0:x1]
    d = np.maximum(np.abs(xs - xi), np.abs(ys - yi))
    ring = patch[(d >= inner) & (d <= outer)]
    if ring.size == 0:
        return float(image.mean()), float(image.std())
    return float(ring.mean()), float(ring.std())


def inject_targets(image: np.ndarray, rng: np.random.Generator, count: int, scr: tuple[float, float] = (2.0, 12.0),
                   sigma: tuple[float, float] = (0.5, 2.0), margin: int = 8) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Add `count` spots to a float copy of `image`; returns (image, centroids (N, 2), boxes (N, 4))."""
    out = image.astype(np.float32).copy()
    h, w = out.shape
    cents, boxes = [], []
    for _ in range(count):
        x, y = rng.uniform(margin, w - 1 - margin), rng.uniform(margin, h - 1 - margin)
        sx, sy = rng.uniform(*sigma), rng.uniform(*sigma)
        mean, std = local_clutter(out, x, y)
        patch, where = render_spot(out.shape, x, y, sx, sy, rng.uniform(0, np.pi))
        core = patch[patch >= np.exp(-2.0)]  # SCR is measured on the 2-sigma core, against the ring
        amp = rng.uniform(*scr) * max(std, 1.0) / (core.mean() if core.size else 1.0)
        out[where] += amp * patch
        ys, xs = np.nonzero(patch > 0.25)
        boxes.append([xs.min() + where[1].start, ys.min() + where[0].start, xs.max() + where[1].start, ys.max() + where[0].start])
        cents.append([x, y])
    return out, np.asarray(cents, float).reshape(-1, 2), np.asarray(boxes, float).reshape(-1, 4)
