"""`TrackEvent`: what the tracker tells the rest of the system (new / update / end)."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal, Optional

EventKind = Literal["new", "update", "end"]
EndReason = Literal["lost", "left_view", "stream_end"]


@dataclass(frozen=True)
class TrackEvent:
    """One event of one confirmed track. Positions in px (pixel-centre convention), velocity in px/frame."""

    event: EventKind
    track_id: int
    frame_index: int
    timestamp: float
    x: float
    y: float
    vx: float
    vy: float
    w: float
    h: float
    score: float
    top_score: float
    hits: int
    age: int
    first_frame: int
    last_frame: int
    reason: Optional[EndReason] = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict, floats rounded (positions to 1/1000 px, scores to 1e-4)."""
        d = asdict(self)
        for k in ("x", "y", "vx", "vy", "w", "h"):
            d[k] = round(float(d[k]), 3)
        for k in ("score", "top_score"):
            d[k] = round(float(d[k]), 4)
        d["timestamp"] = round(float(d["timestamp"]), 6)
        for k in ("track_id", "frame_index", "hits", "age", "first_frame", "last_frame"):
            d[k] = int(d[k])
        return d
