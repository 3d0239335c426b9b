"""The product's wire contract, and its only serializer: `Alert` (one tracker event of one camera, as every
sink publishes it) and `CameraStatus` (a camera's health, on the Redis health channel and keys).

`python -m pipeline schema alert` prints the JSON Schema (draft 2020-12) of what goes on the wire.
Each alert carries an `id` unique to that alert message and a per-camera `seq` (1, 2, 3, ... in one run of
the tracking process), so an at-least-once consumer can drop duplicates and notice gaps.
"""
from __future__ import annotations

import json
import math
import time
import uuid
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

from tracking.events import EndReason, EventKind

SCHEMA = 2
# fields that differ between two runs of the same input: what a deterministic replay leaves out
PER_RUN_FIELDS = ("id", "captured_at", "published_at", "snapshot_url")

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def _round(v: Any, digits: int) -> float | None:
    if v is None:
        return None
    v = float(v)
    return round(v, digits) if math.isfinite(v) else None


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_by_name=True, validate_by_alias=True,
                              serialize_by_alias=True, ser_json_inf_nan="null",
                              json_schema_serialization_defaults_required=True)

    def to_json(self) -> str:
        """The message as sent: compact JSON."""
        return self.model_dump_json()

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """JSON Schema (draft 2020-12) of the message as sent."""
        return {"$schema": JSON_SCHEMA_DIALECT, **cls.model_json_schema(by_alias=True, mode="serialization")}


class Alert(_Wire):
    """One `new` / `update` / `end` event of one confirmed track of one camera.

    Positions in px (the centre of pixel (i, j) is (i, j)), velocity in px/frame, times in Unix seconds.
    """

    schema_version: Literal[2] = Field(SCHEMA, alias="schema", description="version of this message format")
    id: str = Field(pattern=r"^[0-9a-f]{32}$", description="unique to this alert message (UUID4, hex)")
    seq: int = Field(ge=1, description="per camera: 1, 2, 3, ... in one run, over all events; a gap means "
                                       "alerts were lost (or left out by the sink's `events` filter)")
    event: EventKind
    camera: str
    track_id: int = Field(ge=1)
    frame_index: int = Field(ge=0, description="the camera's frame count in this run, from 1")
    pts: Optional[float] = Field(description="stream time of the frame, s (null: the source has none)")
    x: float
    y: float
    w: float = Field(ge=0)
    h: float = Field(ge=0)
    score: float = Field(ge=0, le=1, description="detector score of the latest hit")
    vx: float
    vy: float
    top_score: float = Field(ge=0, le=1)
    hits: int = Field(ge=0)
    age: int = Field(ge=0, description="frames since the track started")
    first_frame: int
    last_frame: int
    reason: Optional[EndReason] = Field(None, description="why an `end` track ended; null otherwise")
    captured_at: Optional[float] = Field(description="wall clock when the frame was received")
    published_at: Optional[float] = Field(None, description="wall clock when the sink sent it")
    snapshot_url: Optional[str] = Field(None, description="its picture (`pipeline.snapshots`): /snapshots/<id> on "
                                                          "the console, or a file:// URI; null: none taken")

    @classmethod
    def from_event(cls, event: Any, camera: str, seq: int, pts: float | None, captured_at: float | None) -> "Alert":
        """The alert of a tracker `TrackEvent` (positions rounded to 1/1000 px, scores to 1e-4)."""
        return cls(id=uuid.uuid4().hex, seq=seq, event=event.event, camera=camera, track_id=int(event.track_id),
                   frame_index=int(event.frame_index), pts=_round(pts, 6),
                   x=round(float(event.x), 3), y=round(float(event.y), 3),
                   w=round(float(event.w), 3), h=round(float(event.h), 3),
                   score=round(float(event.score), 4), vx=round(float(event.vx), 4), vy=round(float(event.vy), 4),
                   top_score=round(float(event.top_score), 4), hits=int(event.hits), age=int(event.age),
                   first_frame=int(event.first_frame), last_frame=int(event.last_frame), reason=event.reason,
                   captured_at=_round(captured_at, 6))

    def stamped(self, now: float | None = None) -> "Alert":
        """A copy with `published_at` set to now (Unix seconds)."""
        return self.model_copy(update={"published_at": round(time.time() if now is None else now, 6)})


class AlertNumbering:
    """Gives each camera's alerts `seq` 1, 2, 3, ... (one per run of the tracking stage)."""

    def __init__(self) -> None:
        self._last: dict[str, int] = {}

    def alerts(self, events: list[Any], camera: str, pts: float | None, captured_at: float | None) -> list[Alert]:
        out = []
        for e in events:
            seq = self._last[camera] = self._last.get(camera, 0) + 1
            out.append(Alert.from_event(e, camera, seq, pts, captured_at))
        return out


class CameraStatus(_Wire):
    """A camera changed status; also the value of its health key (then with `updated_at`)."""

    schema_version: Literal[2] = Field(SCHEMA, alias="schema")
    event: Literal["status"] = "status"
    camera: str
    status: Literal["online", "offline", "reconnecting", "finished", "failed"]
    reason: str
    at: float = Field(description="wall clock of the change")
    updated_at: Optional[float] = Field(None, description="health keys only: wall clock of the heartbeat")

    @classmethod
    def of(cls, event: Any, updated_at: float | None = None) -> "CameraStatus":
        """The message of a `pipeline.frames.StatusEvent`."""
        return cls(camera=event.camera, status=event.status, reason=event.reason, at=round(event.at, 6),
                   updated_at=None if updated_at is None else round(updated_at, 3))


MESSAGES: dict[str, type[_Wire]] = {"alert": Alert, "status": CameraStatus}


def comparable(alert: dict[str, Any]) -> dict[str, Any]:
    """A wire alert (parsed JSON) less `PER_RUN_FIELDS`: what a deterministic replay reproduces exactly."""
    return {k: v for k, v in alert.items() if k not in PER_RUN_FIELDS}


def schema_text(name: str) -> str:
    """The JSON Schema of message `name` ('alert' or 'status'), pretty-printed."""
    return json.dumps(MESSAGES[name].json_schema(), indent=2)
