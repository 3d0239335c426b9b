"""Console and JSONL alert sinks."""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import TextIO

from pipeline.alerts import Alert
from pipeline.sinks.base import Sink


class ConsoleSink(Sink):
    """One JSON line per alert on stdout (logs go to stderr)."""

    name = "console"

    def __init__(self, events: list[str], metrics=None, stream: TextIO | None = None) -> None:
        super().__init__(events, metrics)
        self.stream = stream

    def publish(self, alerts: list[Alert]) -> None:
        out = self.stream or sys.stdout
        for a in alerts:
            out.write(a.stamped().to_json() + "\n")
        out.flush()


class JsonlSink(Sink):
    """Appends one JSON line per alert to a file, flushed after every frame's alerts."""

    name = "jsonl"

    def __init__(self, path: str | Path, events: list[str], metrics=None) -> None:
        super().__init__(events, metrics)
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(self.path, "w", encoding="utf-8")

    def publish(self, alerts: list[Alert]) -> None:
        t0 = time.perf_counter()
        now = time.time()
        for a in alerts:
            self._f.write(a.stamped(now).to_json() + "\n")
        self._f.flush()
        if self.metrics:
            self.metrics.observe("publish", time.perf_counter() - t0)

    def close(self) -> None:
        if not self._f.closed:
            self._f.flush()
            os.fsync(self._f.fileno())
            self._f.close()
