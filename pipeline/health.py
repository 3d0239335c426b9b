"""Per-camera status (online / offline / reconnecting / finished / failed): logged, counted, and pushed to listeners.

The Redis sink turns it into `<health_prefix>:<camera>` keys refreshed with a TTL (a heartbeat: a key that
expires means the pipeline itself is gone) and status events on `<health_prefix>:status`.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from pipeline.frames import StatusEvent

log = logging.getLogger("pipeline.health")

ONLINE, OFFLINE, RECONNECTING, FINISHED, FAILED = "online", "offline", "reconnecting", "finished", "failed"


class Health:
    """Thread-safe camera status board."""

    def __init__(self, metrics=None) -> None:
        self._status: dict[str, StatusEvent] = {}
        self._listeners: list[Callable[[StatusEvent], None]] = []
        self._lock = threading.Lock()
        self.metrics = metrics

    def subscribe(self, listener: Callable[[StatusEvent], None]) -> None:
        with self._lock:
            self._listeners.append(listener)
            current = list(self._status.values())
        for event in current:
            listener(event)

    def set(self, camera: str, status: str, reason: str = "") -> None:
        """Record a status; only changes are logged and sent to listeners."""
        with self._lock:
            old = self._status.get(camera)
            if old is not None and old.status == status:
                return
            event = StatusEvent(camera, status, reason, time.time())
            self._status[camera] = event
            listeners = list(self._listeners)
        level = logging.WARNING if status in (OFFLINE, FAILED) else logging.INFO
        log.log(level, "camera %s %s%s", camera, status, f": {reason}" if reason else "")
        if self.metrics is not None:
            self.metrics.camera_up.labels(camera).set(1 if status == ONLINE else 0)
        for listener in listeners:
            listener(event)

    def get(self, camera: str) -> str | None:
        with self._lock:
            event = self._status.get(camera)
        return event.status if event else None
