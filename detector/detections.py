"""`Detections`: the one record passed from the detector to the tracker and the sinks.

Coordinates use the convention of the whole project: the centre of pixel (column i, row j) is (i, j).
`xy` is the target's sub-pixel centroid, `wh` its box size in pixels.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np


def _f32(a: Any, shape: tuple[int, ...]) -> np.ndarray:
    return np.asarray(a, dtype=np.float32).reshape(shape)


@dataclass(frozen=True)
class Detections:
    """N point detections of one frame: centroid, box size, score (all float32)."""

    xy: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))
    wh: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))
    score: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.float32))

    def __post_init__(self) -> None:
        n = len(np.asarray(self.score).reshape(-1))
        object.__setattr__(self, "xy", _f32(self.xy, (n, 2)))
        object.__setattr__(self, "wh", _f32(self.wh, (n, 2)))
        object.__setattr__(self, "score", _f32(self.score, (n,)))

    def __len__(self) -> int:
        return len(self.score)

    def __getitem__(self, index: Any) -> "Detections":
        """Select by mask, index array or slice (always returns `Detections`)."""
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        return Detections(self.xy[index], self.wh[index], self.score[index])

    @property
    def boxes(self) -> np.ndarray:
        """(N, 4) boxes x1, y1, x2, y2 around the centroid, in the pixel-centre convention."""
        half = self.wh / 2
        return np.concatenate([self.xy - half, self.xy + half], axis=1)

    @classmethod
    def empty(cls) -> "Detections":
        return cls()

    @classmethod
    def concat(cls, parts: Iterable["Detections"]) -> "Detections":
        parts = list(parts)
        if not parts:
            return cls()
        return cls(
            np.concatenate([p.xy for p in parts]),
            np.concatenate([p.wh for p in parts]),
            np.concatenate([p.score for p in parts]),
        )

    def to_dicts(self) -> list[dict[str, float]]:
        """JSON-ready rows `{"x", "y", "w", "h", "score"}`."""
        return [
            {"x": round(float(x), 3), "y": round(float(y), 3), "w": round(float(w), 3),
             "h": round(float(h), 3), "score": round(float(s), 4)}
            for (x, y), (w, h), s in zip(self.xy, self.wh, self.score)
        ]

    @classmethod
    def from_dicts(cls, rows: Iterable[dict[str, float]]) -> "Detections":
        rows = list(rows)
        return cls(
            [[r["x"], r["y"]] for r in rows],
            [[r.get("w", 1.0), r.get("h", 1.0)] for r in rows],
            [r.get("score", 1.0) for r in rows],
        )
