"""`FrameMux`: the per-camera frame buffers between the sources and the detector, and the batch former.

Live cameras keep only their newest frame (older ones are dropped and counted); lossless cameras block
their source while their buffer is full. `get_batch` takes frames round-robin across cameras, up to the
batch size, waiting at most the batch timeout after the first one (never for the slowest camera). When
every open camera is lossless it waits for a full batch instead, so a replay batches the same way every
time (and gives the same detections).
"""
from __future__ import annotations

import threading
import time
from collections import deque

from pipeline.frames import EndOfStream, Frame

Item = Frame | EndOfStream


class FrameMux:
    def __init__(self, metrics=None) -> None:
        self._cond = threading.Condition()
        self._bufs: dict[str, deque[tuple[Item, float]]] = {}
        self._live: dict[str, bool] = {}
        self._cap: dict[str, int] = {}
        self._open: set[str] = set()
        self._order: list[str] = []
        self._next = 0
        self._aborted = False
        self.metrics = metrics

    def add_camera(self, camera: str, live: bool, capacity: int) -> None:
        with self._cond:
            self._bufs[camera] = deque()
            self._live[camera] = live
            self._cap[camera] = 1 if live else capacity
            self._open.add(camera)
            self._order.append(camera)

    def _frames(self, camera: str) -> int:
        return sum(isinstance(i, Frame) for i, _ in self._bufs[camera])

    def put(self, item: Item, stop: threading.Event | None = None) -> bool:
        """Queue a frame or the camera's end; False when the run was aborted (or `stop` set while blocked)."""
        cam = item.camera
        with self._cond:
            buf = self._bufs[cam]
            if isinstance(item, EndOfStream):
                buf.append((item, time.monotonic()))
                self._open.discard(cam)
            elif self._live[cam]:
                stale = self._frames(cam)
                if stale:
                    self._bufs[cam] = buf = deque(x for x in buf if not isinstance(x[0], Frame))
                    if self.metrics:
                        self.metrics.dropped.labels(cam, "stale").inc(stale)
                buf.append((item, time.monotonic()))
            else:
                while self._frames(cam) >= self._cap[cam] and not self._aborted:
                    if stop is not None and stop.is_set():
                        return False
                    self._cond.wait(0.2)
                if self._aborted:
                    return False
                buf.append((item, time.monotonic()))
            if self.metrics:
                self.metrics.queue_depth.labels(f"frames:{cam}").set(self._frames(cam))
            self._cond.notify_all()
            return True

    def abort(self) -> None:
        with self._cond:
            self._aborted = True
            self._cond.notify_all()

    def _ready(self) -> tuple[int, bool]:
        frames, ends = 0, False
        for buf in self._bufs.values():
            for item, _ in buf:
                if isinstance(item, Frame):
                    frames += 1
                else:
                    ends = True
        return frames, ends

    def get_batch(self, max_frames: int, timeout: float) -> list[tuple[Item, float]] | None:
        """Up to `max_frames` frames (plus any ends reached) with their queue wait in seconds; None when done."""
        deadline = None
        with self._cond:
            while True:
                if self._aborted:
                    return None
                frames, ends = self._ready()
                if not frames and not ends and not self._open:
                    return None
                deterministic = all(not self._live[c] for c in self._open)
                now = time.monotonic()
                if frames and deadline is None:
                    deadline = now + timeout
                if frames >= max_frames or ends or (frames and (not self._open or (
                        not deterministic and now >= deadline))):
                    return self._take(max_frames)
                wait = 0.5 if (deterministic or deadline is None) else max(0.0, deadline - now)
                self._cond.wait(wait)

    def _take(self, max_frames: int) -> list[tuple[Item, float]]:
        out, taken, now = [], 0, time.monotonic()
        cams = self._order[self._next:] + self._order[: self._next]
        self._next = (self._next + 1) % max(1, len(self._order))
        progress = True
        while taken < max_frames and progress:
            progress = False
            for cam in cams:
                buf = self._bufs[cam]
                while buf and isinstance(buf[0][0], EndOfStream):
                    out.append((buf.popleft()[0], 0.0))
                if buf and taken < max_frames:
                    item, t = buf.popleft()
                    out.append((item, now - t))
                    taken += 1
                    progress = True
                while buf and isinstance(buf[0][0], EndOfStream):
                    out.append((buf.popleft()[0], 0.0))
        if self.metrics:
            for cam in cams:
                self.metrics.queue_depth.labels(f"frames:{cam}").set(self._frames(cam))
        self._cond.notify_all()
        return out
