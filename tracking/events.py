"""`TrackEvent`: what the tracker tells the rest of the system (new / update / end)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

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
