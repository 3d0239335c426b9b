"""Apparent background motion between frames (platform drift), by FFT phase correlation."""
from __future__ import annotations

import numpy as np
from scipy import fft, ndimage

_LOWPASS = 0.1  # std of the frequency weighting, cycles/px
_OPENING = 7  # px: bright features narrower than this (targets, hot pixels) are removed first
MIN_PEAK_RATIO = 1.05  # the correlation peak over the strongest other one: a tie means no reliable motion
MAX_SHIFT = 8.0  # px/frame: larger apparent motion is taken as a failed measurement


def _background(frame: np.ndarray) -> np.ndarray:
    """Grey opening: the frame without small bright spots, which move unlike the background."""
    f = np.asarray(frame, np.float32)
    return ndimage.maximum_filter(ndimage.minimum_filter(f, size=_OPENING), size=_OPENING)


class SceneMotion:
    """Cumulative scene offset of one camera's frames, fed in order: `update(frame)` returns how far the scene
    has moved since the first frame (px). Differences between two frames' offsets give the tracker's `shift`,
    also across frames dropped in between.

    A platform drifts smoothly, so a measured shift counts only when it agrees (within CONSISTENCY px) with the
    previous measurement; an isolated value is a chance peak of a structureless background and counts as 0.
    """

    CONSISTENCY = 1.0

    def __init__(self) -> None:
        self.prev: np.ndarray | None = None
        self.last: tuple[float, float] | None = None
        self.offset = (0.0, 0.0)

    def update(self, frame: np.ndarray) -> tuple[float, float]:
        if self.prev is not None and self.prev.shape == frame.shape:
            shift = estimate_shift(self.prev, frame)
            if shift is not None and self.last is not None and \
                    max(abs(shift[0] - self.last[0]), abs(shift[1] - self.last[1])) <= self.CONSISTENCY:
                self.offset = (self.offset[0] + shift[0], self.offset[1] + shift[1])
            self.last = shift
        self.prev = frame
        return self.offset

    def reset(self) -> None:
        """After a gap (reconnect) the next frame is not comparable with the last one."""
        self.prev = self.last = None


def estimate_shift(prev: np.ndarray, cur: np.ndarray) -> tuple[float, float] | None:
    """(dx, dy) in px such that `cur(x, y) ~ prev(x - dx, y - dy)`: how far the scene moved between two grey
    frames. For the tracker's `shift` argument. Phase correlation of the frames' grey openings, half-way
    whitened and low-passed, with a Gaussian fit through the peak; ~0.015 px rms per frame on drifting
    IR backgrounds with targets and hot pixels (20-40 ms for 640x512 on one CPU core).

    None when the background has too little structure to tell: on sensor noise alone the correlation maximum
    falls anywhere in the frame, so a maximum beyond MAX_SHIFT (a platform drifts by a few px a frame), or one
    that does not stand MIN_PEAK_RATIO above the next, is no measurement. The caller treats None as no motion."""
    a, b = _background(prev), _background(cur)
    win = np.outer(np.hanning(a.shape[0]), np.hanning(a.shape[1])).astype(np.float32)
    fa = fft.rfft2((a - a.mean()) * win)
    fb = fft.rfft2((b - b.mean()) * win)
    r = fb * np.conj(fa)
    r /= np.sqrt(np.abs(r)) + 1e-9
    fy = fft.fftfreq(a.shape[0]).astype(np.float32)[:, None]
    fx = fft.rfftfreq(a.shape[1]).astype(np.float32)[None, :]
    r *= np.exp(-(fx**2 + fy**2) / (2 * _LOWPASS**2))
    corr = fft.irfft2(r, s=a.shape)
    py, px = np.unravel_index(int(np.argmax(corr)), corr.shape)
    others = corr.copy()
    others[np.ix_(np.arange(py - 6, py + 7) % corr.shape[0], np.arange(px - 6, px + 7) % corr.shape[1])] = -np.inf
    if not corr[py, px] >= MIN_PEAK_RATIO * others.max():
        return None
    out = []
    for axis, p in ((1, px), (0, py)):
        n = corr.shape[axis]
        idx = [py, px]
        vals = []
        for o in (-1, 0, 1):
            idx[axis] = (p + o) % n
            vals.append(float(corr[idx[0], idx[1]]))
        if min(vals) > 0:
            vals = list(np.log(vals))  # the low-passed peak is close to a Gaussian
        den = vals[0] - 2 * vals[1] + vals[2]
        sub = 0.5 * (vals[0] - vals[2]) / den if abs(den) > 1e-12 else 0.0
        v = p + float(np.clip(sub, -0.5, 0.5))
        out.append(v - n if v > n / 2 else v)
    if max(abs(out[0]), abs(out[1])) > MAX_SHIFT:
        return None
    return out[0], out[1]
