"""The detector's motion input: each frame minus a background of the camera's recent frames, aligned to it.

One `MotionBackground` per camera, fed every frame in order with the scene offset that ego-motion measured
(`tracking.egomotion.SceneOffset`: x, y, measured; None for a still camera). The background is an exponential
moving average (`alpha`) of the frames up to `lag` frames before the current one, shifted by whole pixels as
the scene moves, so a target that moves leaves a residual and the static scene, clouds and hot pixels of a
still camera cancel. Memory per camera: one float32 frame plus `lag` frames as decoded (640x512: 1.3 MB +
3 x 0.33 MB); a 15-frame median would take 20 MB.

The residual is None (the model then sees a blank motion channel, as on a still image) until `warmup` frames
are in the background (the first `warmup + lag - 1` frames after a reset), and whenever the background cannot be aligned: a slew that ego-motion
could not measure, or a change of frame size; `reset()` is for reconnects and cuts.
"""
from __future__ import annotations

from collections import deque
from typing import Any

import cv2
import numpy as np

# What a checkpoint trained on the motion input records (preprocessing["motion"]); the same values at run time.
MOTION_DEFAULTS = {"kind": "aligned_ema", "alpha": 1 / 16, "lag": 3, "warmup": 4}
RESIDUAL_STEPS = 8  # the residual's integer steps per 8-bit grey level (the model sees it normalised: any scale)


def shift_whole(a: np.ndarray, dx: int, dy: int, fill: np.ndarray) -> np.ndarray:
    """`a` moved by (dx, dy) whole pixels (out[y, x] = a[y - dy, x - dx]), float32; the pixels it uncovers are
    taken from `fill` (the current frame: no residual where the background knows nothing)."""
    h, w = a.shape
    out = fill.astype(np.float32)  # a copy
    if abs(dx) < w and abs(dy) < h:
        out[max(0, dy):h + min(0, dy), max(0, dx):w + min(0, dx)] = \
            a[max(0, -dy):h - max(0, dy), max(0, -dx):w - max(0, dx)]
    return out


class MotionBackground:
    """Aligned running background of one camera; `update(frame, scene)` returns the frame's motion residual."""

    def __init__(self, alpha: float = MOTION_DEFAULTS["alpha"], lag: int = MOTION_DEFAULTS["lag"],
                 warmup: int = MOTION_DEFAULTS["warmup"]) -> None:
        self.alpha, self.lag, self.warmup = float(alpha), int(lag), int(warmup)
        self.reset()

    @classmethod
    def from_meta(cls, params: dict[str, Any] | None) -> "MotionBackground":
        """The background a checkpoint's `preprocessing["motion"]` describes."""
        p = {**MOTION_DEFAULTS, **(params or {})}
        return cls(p["alpha"], p["lag"], p["warmup"])

    def reset(self) -> None:
        self.recent: deque[tuple[np.ndarray, tuple[int, int]]] = deque()
        self.background: np.ndarray | None = None  # float32
        self.at = (0, 0)  # the whole-pixel scene offset the background is aligned to
        self.count = 0  # frames folded into the background since the reset
        self.shape: tuple[int, ...] | None = None

    def update(self, frame: np.ndarray, scene: Any = None) -> np.ndarray | None:
        """The residual of `frame` against the aligned background as int16 in eighths of an 8-bit grey level
        (`RESIDUAL_STEPS`; a 16-bit frame's grey level is 257 units), or None. Integers, so the same residual
        reaches the model in one process, across machines (the frames stream) and in training.

        ~0.5 ms for a 640x512 frame on one core (OpenCV for the arithmetic)."""
        if scene is not None and not getattr(scene, "measured", True):
            self.reset()  # a slew too fast to measure: the old background no longer lines up
            return None
        if frame.shape != self.shape:
            self.reset()
            self.shape = frame.shape
        frame = _for_cv(frame)
        at = (0, 0) if scene is None else (int(round(scene.x)), int(round(scene.y)))
        self.recent.append((frame, at))
        if len(self.recent) > self.lag:
            self._fold(*self.recent.popleft())
        if self.background is None or self.count < self.warmup:
            return None
        steps = RESIDUAL_STEPS / (257.0 if frame.dtype == np.uint16 else 1.0)
        return cv2.addWeighted(frame, steps, self._aligned(at, frame), -steps, 0.0, dtype=cv2.CV_16S)

    def _aligned(self, at: tuple[int, int], fill: np.ndarray) -> np.ndarray:
        dx, dy = at[0] - self.at[0], at[1] - self.at[1]
        return self.background if dx == 0 and dy == 0 else shift_whole(self.background, dx, dy, fill)

    def _fold(self, frame: np.ndarray, at: tuple[int, int]) -> None:
        if self.background is None:
            self.background, self.at, self.count = frame.astype(np.float32), at, 1
            return
        bg = self._aligned(at, frame)
        rate = max(self.alpha, 1.0 / (self.count + 1))  # a plain mean until 1/alpha frames are in
        cv2.accumulateWeighted(frame, bg, rate)  # in place: bg = (1 - rate) bg + rate frame
        self.background, self.at = bg, at
        self.count += 1


def _for_cv(frame: np.ndarray) -> np.ndarray:
    f = np.asarray(frame)
    if f.dtype not in (np.uint8, np.uint16, np.float32):
        f = f.astype(np.float32)
    return np.ascontiguousarray(f)


def residuals(frames, scenes=None, params: dict[str, Any] | None = None) -> list[np.ndarray | None]:
    """The residual of each frame of one sequence, in order (`scenes`: their scene offsets, or None)."""
    bg = MotionBackground.from_meta(params)
    scenes = scenes if scenes is not None else [None] * len(frames)
    return [bg.update(f, s) for f, s in zip(frames, scenes)]
