"""Apparent background motion between frames (platform drift), by FFT phase correlation."""
from __future__ import annotations

import numpy as np
from scipy import fft


def estimate_shift(prev: np.ndarray, cur: np.ndarray) -> tuple[float, float]:
    """(dx, dy) in px such that `cur(x, y) ~ prev(x - dx, y - dy)`: how far the scene moved; sub-pixel by a
    parabola through the correlation peak. For the tracker's `shift` argument."""
    a = np.asarray(prev, np.float32)
    b = np.asarray(cur, np.float32)
    win = np.outer(np.hanning(a.shape[0]), np.hanning(a.shape[1])).astype(np.float32)
    fa = fft.rfft2((a - a.mean()) * win)
    fb = fft.rfft2((b - b.mean()) * win)
    r = fb * np.conj(fa)
    r /= np.abs(r) + 1e-9
    corr = fft.irfft2(r, s=a.shape)
    py, px = np.unravel_index(int(np.argmax(corr)), corr.shape)
    out = []
    for axis, p in ((1, px), (0, py)):
        n = corr.shape[axis]
        idx = [py, px]
        vals = []
        for o in (-1, 0, 1):
            idx[axis] = (p + o) % n
            vals.append(corr[idx[0], idx[1]])
        den = vals[0] - 2 * vals[1] + vals[2]
        sub = 0.5 * (vals[0] - vals[2]) / den if abs(den) > 1e-12 else 0.0
        v = p + float(np.clip(sub, -0.5, 0.5))
        out.append(v - n if v > n / 2 else v)
    return out[0], out[1]
