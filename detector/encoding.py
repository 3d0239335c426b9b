"""Centroid-aware asymmetric Gaussian heatmap encoding, and the coordinate convention.

Convention, end to end: the centre of pixel (column i, row j) is (i, j). A map cell u at stride s covers
pixels s*u .. s*u+s-1, so its centre is at pixel s*u + (s-1)/2 and pixel x sits at map coordinate
(x - (s-1)/2) / s. The heatmap peaks (value 1) on the integer cell nearest the target's centroid; the
sub-cell remainder is the offset target, so cell + offset decodes the centroid exactly.

Spread per axis: sigma = sqrt((L / (2k))^2 + s0^2) for a box side of L cells, with k = sqrt(2) erfinv(P).
The reference steps P with the target's area (0.65 / 0.85 / 0.99), which makes sigma non-monotonic in size;
here P is fixed (0.9: 90 % of the mass inside the box along that axis) and the floor s0 keeps the tiniest
targets' supervision from collapsing onto one cell. Sigma grows monotonically with width and height.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.special import erfinv

MASS_INSIDE = 0.9
K = math.sqrt(2.0) * float(erfinv(MASS_INSIDE))
SIGMA_FLOOR = 0.5  # cells


def to_map(coord: np.ndarray | float, stride: int) -> np.ndarray | float:
    """Pixel coordinate -> map coordinate (both in the pixel-centre convention)."""
    return (np.asarray(coord, dtype=np.float64) - (stride - 1) / 2.0) / stride


def to_pixel(coord: np.ndarray | float, stride: int) -> np.ndarray | float:
    """Map coordinate -> pixel coordinate."""
    return np.asarray(coord, dtype=np.float64) * stride + (stride - 1) / 2.0


def sigma_for_size(cells: np.ndarray | float) -> np.ndarray | float:
    """Gaussian sigma (cells) for a box side of `cells` map cells; monotonic increasing."""
    cells = np.asarray(cells, dtype=np.float64)
    return np.sqrt((cells / (2.0 * K)) ** 2 + SIGMA_FLOOR**2)


def encode_targets(
    centroids: np.ndarray, boxes: np.ndarray, map_hw: tuple[int, int], stride: int
) -> dict[str, np.ndarray]:
    """Training targets for one image.

    centroids: (N, 2) x, y in pixels; boxes: (N, 4) inclusive pixel indices xmin, ymin, xmax, ymax.
    Returns heatmap (1, h, w), ltrb (4, h, w) and offset (2, h, w) targets plus a positive-cell mask (h, w).
    """
    h, w = map_hw
    heat = np.zeros((h, w), np.float32)
    ltrb = np.zeros((4, h, w), np.float32)
    offset = np.zeros((2, h, w), np.float32)
    pos = np.zeros((h, w), bool)
    ys, xs = np.arange(h, dtype=np.float32)[:, None], np.arange(w, dtype=np.float32)[None, :]
    for (cx, cy), (x0, y0, x1, y1) in zip(np.asarray(centroids, float).reshape(-1, 2), np.asarray(boxes, float).reshape(-1, 4)):
        u, v = to_map(cx, stride), to_map(cy, stride)
        iu, iv = int(round(u)), int(round(v))
        if not (0 <= iu < w and 0 <= iv < h):
            continue
        bw, bh = (x1 - x0 + 1) / stride, (y1 - y0 + 1) / stride
        sx, sy = sigma_for_size(bw), sigma_for_size(bh)
        g = np.exp(-((xs - iu) ** 2) / (2 * sx * sx) - ((ys - iv) ** 2) / (2 * sy * sy))
        np.maximum(heat, g, out=heat)
        heat[iv, iu] = 1.0
        # Box edges are pixel borders: inclusive indices extend half a pixel beyond the centres.
        ltrb[:, iv, iu] = np.maximum(0.0, [
            (cx - (x0 - 0.5)) / stride, (cy - (y0 - 0.5)) / stride,
            ((x1 + 0.5) - cx) / stride, ((y1 + 0.5) - cy) / stride,
        ])
        offset[:, iv, iu] = (u - iu, v - iv)
        pos[iv, iu] = True
    return {"heatmap": heat[None], "ltrb": ltrb, "offset": offset, "positive": pos}
