"""The alert JSON record: one tracker event of one camera, as published by every sink."""
from __future__ import annotations

import json
import math
import time
from typing import Any

SCHEMA = 1
WALL_CLOCK_FIELDS = ("captured_at", "published_at")


def _num(v: Any, digits: int) -> float | None:
    if v is None:
        return None
    v = float(v)
    return round(v, digits) if math.isfinite(v) else None


def make_alert(event: Any, camera: str, pts: float | None, captured_at: float) -> dict[str, Any]:
    """Build the alert dict from a tracker `TrackEvent` (without `published_at`, stamped by each sink)."""
    g = (lambda k, d=None: event.get(k, d)) if isinstance(event, dict) else (lambda k, d=None: getattr(event, k, d))
    alert = {
        "schema": SCHEMA,
        "event": str(g("event")),
        "camera": camera,
        "track_id": int(g("track_id")),
        "frame_index": int(g("frame_index")),
        "pts": _num(pts, 6),
        "x": _num(g("x"), 3), "y": _num(g("y"), 3),
        "w": _num(g("w"), 3), "h": _num(g("h"), 3),
        "score": _num(g("score"), 4),
        "vx": _num(g("vx"), 4), "vy": _num(g("vy"), 4),
        "top_score": _num(g("top_score"), 4),
        "hits": g("hits"), "age": g("age"),
        "first_frame": g("first_frame"), "last_frame": g("last_frame"),
        "reason": g("reason"),
        "captured_at": _num(captured_at, 6),
    }
    return alert


def stamp(alert: dict[str, Any], now: float | None = None) -> dict[str, Any]:
    """A copy with `published_at` set to now (Unix seconds)."""
    out = dict(alert)
    out["published_at"] = round(time.time() if now is None else now, 6)
    return out


def dumps(alert: dict[str, Any]) -> str:
    return json.dumps(alert, separators=(",", ":"), allow_nan=False)


def without_wall_clock(alert: dict[str, Any]) -> dict[str, Any]:
    """The alert less its wall-clock fields: what a deterministic replay reproduces exactly."""
    return {k: v for k, v in alert.items() if k not in WALL_CLOCK_FIELDS}
