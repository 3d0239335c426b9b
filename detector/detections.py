"""`Detections`: the one record passed from the detector to the tracker and the sinks (and, with the tracker's
columns added, `tracking.tracks.Tracks`). Columnar, in the manner of supervision's `Detections`: one numpy
array per quantity, one row per detection.

Coordinates use the convention of the whole project: the centre of pixel (column i, row j) is (i, j).
`xy` is the target's sub-pixel centroid and `ltrb` the distances from it to the left, top, right and bottom
edges of its box, as the model predicts them (a box need not be centred on the centroid); `xyxy` and `wh`
are derived from these two.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterable, Self

import numpy as np


def column() -> Any:
    """A dataclass field for a column (default: empty; `__post_init__` gives it its shape and dtype)."""
    return field(default_factory=lambda: np.zeros(0))


@dataclass(frozen=True)
class Detections:
    """N detections of one frame: centroid `xy` (N, 2), box extents `ltrb` (N, 4), `score` (N,), float32.

    `COLUMNS` names each column's per-row shape and dtype; subclasses add columns. Select rows with a mask,
    an index array, an int or a slice (`dets[dets.score >= 0.5]`); the result is of the same class."""

    COLUMNS: ClassVar[dict[str, tuple[tuple[int, ...], type]]] = {
        "xy": ((2,), np.float32), "ltrb": ((4,), np.float32), "score": ((), np.float32)}

    xy: np.ndarray = column()
    ltrb: np.ndarray = column()
    score: np.ndarray = column()

    def __post_init__(self) -> None:
        n = len(np.asarray(self.score).reshape(-1))
        for name, (shape, dtype) in self.COLUMNS.items():
            object.__setattr__(self, name, np.asarray(getattr(self, name), dtype).reshape((n, *shape)))

    def __len__(self) -> int:
        return len(self.score)

    def __getitem__(self, index: Any) -> Self:
        """Select by mask, index array, int or slice (always returns a record of this class)."""
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        return type(self)(**{name: getattr(self, name)[index] for name in self.COLUMNS})

    @property
    def xyxy(self) -> np.ndarray:
        """(N, 4) float64 boxes x1, y1, x2, y2: the centroid minus the left/top, plus the right/bottom extents."""
        xy = self.xy.astype(np.float64)
        return np.concatenate([xy - self.ltrb[:, :2], xy + self.ltrb[:, 2:]], axis=1)

    @property
    def wh(self) -> np.ndarray:
        """(N, 2) box width and height."""
        return self.ltrb[:, :2] + self.ltrb[:, 2:]

    @classmethod
    def from_xywh(cls, xy: Any, wh: Any, score: Any) -> Self:
        """Detections whose boxes of size `wh` are centred on their centroids `xy`."""
        half = np.asarray(wh, np.float64).reshape(-1, 2) / 2
        return cls(xy, np.concatenate([half, half], axis=1), score)

    @classmethod
    def empty(cls) -> Self:
        return cls()

    @classmethod
    def concat(cls, parts: Iterable[Self]) -> Self:
        parts = list(parts)
        if not parts:
            return cls()
        return cls(**{name: np.concatenate([getattr(p, name) for p in parts]) for name in cls.COLUMNS})

    def to_dicts(self) -> list[dict[str, float]]:
        """JSON-ready rows `{"x", "y", "x1", "y1", "x2", "y2", "score"}` (centroid, box corners, score)."""
        return [
            {"x": round(float(x), 3), "y": round(float(y), 3), "x1": round(float(x1), 3), "y1": round(float(y1), 3),
             "x2": round(float(x2), 3), "y2": round(float(y2), 3), "score": round(float(s), 4)}
            for (x, y), (x1, y1, x2, y2), s in zip(self.xy, self.xyxy, self.score)
        ]

    @classmethod
    def from_dicts(cls, rows: Iterable[dict[str, float]]) -> Self:
        """Rows of `to_dicts`; rows with only `w`, `h` (the earlier format) get a box of that size centred on
        the centroid, and rows without either a 1 px box."""
        rows = list(rows)
        xy = np.array([[r["x"], r["y"]] for r in rows], np.float64).reshape(-1, 2)
        ltrb = np.array([[r["x"] - r["x1"], r["y"] - r["y1"], r["x2"] - r["x"], r["y2"] - r["y"]] if "x1" in r
                         else [r.get("w", 1.0) / 2, r.get("h", 1.0) / 2] * 2 for r in rows], np.float64)
        return cls(xy, ltrb.reshape(-1, 4), [r.get("score", 1.0) for r in rows])
