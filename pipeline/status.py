"""What a run tells its operator: a one-line status every few seconds for live runs (fps per camera, dropped
frames, live tracks, alerts) and a one-line summary at the end of every run (frames, tracks, alerts by event,
undelivered alerts) and what it found (each alerted track), all counted from the records the track stage emits."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from pipeline.frames import TrackedFrame


@dataclass
class _Camera:
    frames: int = 0
    last_index: int = 0  # the reader numbers every frame it delivers: gaps are frames dropped before tracking
    live_tracks: int = 0
    frames_at_last_status: int = 0


@dataclass
class RunStats:
    """Counts of one run; `count` is called from the track stage's thread, the lines from any thread."""

    started: float = field(default_factory=time.monotonic)
    cameras: dict[str, _Camera] = field(default_factory=dict)
    alerts: dict[str, int] = field(default_factory=dict)
    found: dict[tuple[str, int], list] = field(default_factory=dict)  # (camera, track) -> [alerted at, first, last, top score]
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _last_status: float = field(default_factory=time.monotonic)

    def count(self, record: Any) -> None:
        """Account one record the track stage emitted (`TrackedFrame` or `StreamEnded`)."""
        alerts = getattr(record, "alerts", None) or []
        with self._lock:
            if isinstance(record, TrackedFrame):
                cam = self.cameras.setdefault(record.frame.camera, _Camera())
                cam.frames += 1
                cam.last_index = max(cam.last_index, record.frame.index)
                cam.live_tracks = len(record.tracks)
            elif hasattr(record, "camera"):
                self.cameras.setdefault(record.camera, _Camera()).live_tracks = 0
            for a in alerts:  # `pipeline.alerts.Alert`s
                self.alerts[a.event] = self.alerts.get(a.event, 0) + 1
                seen = self.found.setdefault((a.camera, a.track_id), [a.frame_index, a.first_frame, a.last_frame, 0.0])
                seen[2] = max(seen[2], a.last_frame)
                seen[3] = max(seen[3], a.top_score or a.score or 0.0)

    def _alerts_text(self) -> str:
        return " ".join(f"{e} {self.alerts[e]}" for e in ("new", "update", "end") if e in self.alerts) or "none"

    def status_line(self) -> str:
        """`status: cam1 24.9 fps, 3 dropped, 2 tracks | alerts new 4 update 12`, rates since the last call."""
        now = time.monotonic()
        with self._lock:
            span = max(now - self._last_status, 1e-6)
            self._last_status = now
            parts = []
            for name, c in sorted(self.cameras.items()):
                fps = (c.frames - c.frames_at_last_status) / span
                c.frames_at_last_status = c.frames
                parts.append(f"{name} {fps:.1f} fps, {c.last_index - c.frames} dropped, {c.live_tracks} tracks")
            return f"status: {'; '.join(parts) or 'no frames yet'} | alerts {self._alerts_text()}"

    def found_lines(self, limit: int = 10) -> list[str]:
        """`found: drone track 1 alerted at frame 9 (seen in frames 1-325, best score 0.91)`: one line per alerted
        track (at most `limit`),
        or `found: nothing alerted`."""
        with self._lock:
            found = sorted(self.found.items())
        lines = [f"found: {cam} track {tid} alerted at frame {at} (seen in frames {first}-{last}, best score {top:.2f})"
                 for (cam, tid), (at, first, last, top) in found[:limit]]
        if len(found) > limit:
            lines.append(f"found: ... and {len(found) - limit} more tracks")
        return lines or ["found: nothing alerted"]

    def summary_line(self, undelivered: dict[str, int]) -> str:
        """`summary: 200 frames (sample 200), 4 tracks, alerts new 4 update 14 end 4, 0 undelivered, 8.1 s`."""
        with self._lock:
            frames = sum(c.frames for c in self.cameras.values())
            per_cam = ", ".join(f"{n} {c.frames}" for n, c in sorted(self.cameras.items()))
            dropped = sum(c.last_index - c.frames for c in self.cameras.values())
            tracks = self.alerts.get("new", 0)
            alerts = self._alerts_text()
        lost = sum(undelivered.values())
        where = f" ({', '.join(f'{k} {v}' for k, v in sorted(undelivered.items()))})" if lost else ""
        return (f"summary: {frames} frames ({per_cam or 'none'}), {dropped} dropped, {tracks} tracks, "
                f"alerts {alerts}, {lost} undelivered{where}, {time.monotonic() - self.started:.1f} s")
