"""`Sink`: receives every `TrackedFrame` and `StreamEnded` of the run, in order, on its own worker thread."""
from __future__ import annotations

from typing import Any

from pipeline.alerts import Alert
from pipeline.frames import TrackedFrame
from pipeline.stages import StreamEnded


class Sink:
    """Override `publish` (alerts), and `on_frame` / `on_end` / `tick` / `close` as needed."""

    name = "sink"

    def __init__(self, events: list[str] | None = None, metrics=None) -> None:
        self.events = set(events) if events is not None else {"new", "update", "end"}
        self.metrics = metrics

    def handle(self, record: Any) -> None:
        if isinstance(record, TrackedFrame):
            self._alerts(record.alerts)
            self.on_frame(record)
        elif isinstance(record, StreamEnded):
            self._alerts(record.alerts)
            self.on_end(record.camera)

    def _alerts(self, alerts: list[Alert]) -> None:
        chosen = [a for a in alerts if a.event in self.events]
        if chosen:
            self.publish(chosen)

    def publish(self, alerts: list[Alert]) -> None:
        pass

    def on_frame(self, record: TrackedFrame) -> None:
        pass

    def on_end(self, camera: str) -> None:
        pass

    def tick(self) -> None:
        """Called at least every 0.2 s, with or without records."""

    def close(self) -> None:
        """Flush and release; called once, also after a failure."""
