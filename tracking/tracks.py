"""`Tracks`: the tracker's confirmed live tracks of one frame, as a `Detections` with the tracker's columns."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from detector.detections import Detections, column


@dataclass(frozen=True)
class Tracks(Detections):
    """One row per confirmed live track, by id. `xy` is the filter's position, `ltrb` the smoothed box extents
    of its detections about it, `score` its latest detection's; `vxy` the velocity (px/frame); `age` the
    frames since the track started, `misses` the frames since its last hit (coasting when > 0)."""

    COLUMNS: ClassVar[dict[str, tuple[tuple[int, ...], type]]] = {
        "xy": ((2,), np.float64), "ltrb": ((4,), np.float64), "score": ((), np.float64),
        "track_id": ((), np.int64), "vxy": ((2,), np.float64), "top_score": ((), np.float64),
        "hits": ((), np.int64), "age": ((), np.int64), "misses": ((), np.int64),
        "first_frame": ((), np.int64), "last_frame": ((), np.int64)}

    track_id: np.ndarray = column()
    vxy: np.ndarray = column()
    top_score: np.ndarray = column()
    hits: np.ndarray = column()
    age: np.ndarray = column()
    misses: np.ndarray = column()
    first_frame: np.ndarray = column()
    last_frame: np.ndarray = column()
