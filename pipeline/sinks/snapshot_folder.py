"""Snapshots as files, for runs without Redis: `<folder>/<id>.jpg` (reduced frame) and `<id>-chip.jpg`;
files older than `ttl_s` are deleted (checked at most once a minute)."""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from pipeline.frames import Snapshot
from pipeline.sinks.base import Sink

log = logging.getLogger("pipeline.sinks.snapshots")

SWEEP_EVERY_S = 60.0


class SnapshotFolderSink(Sink):
    name = "snapshots"

    def __init__(self, folder: Path, ttl_s: float, metrics=None) -> None:
        super().__init__([], metrics)
        self.folder, self.ttl_s = Path(folder), ttl_s
        self.folder.mkdir(parents=True, exist_ok=True)
        self._swept_at = 0.0

    def handle(self, record: Any) -> None:
        if isinstance(record, Snapshot):
            (self.folder / f"{record.id}.jpg").write_bytes(record.frame_jpeg)
            (self.folder / f"{record.id}-chip.jpg").write_bytes(record.chip_jpeg)
        else:
            super().handle(record)

    def tick(self) -> None:
        now = time.monotonic()
        if now - self._swept_at < SWEEP_EVERY_S:
            return
        self._swept_at = now
        oldest = time.time() - self.ttl_s
        for path in self.folder.glob("*.jpg"):
            try:
                if path.stat().st_mtime < oldest:
                    path.unlink()
            except OSError:
                pass
