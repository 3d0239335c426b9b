"""`Reorderer`: puts each camera's records back in frame order in front of the tracker and drops duplicates.

Detect workers finish batches in any order, and a reclaimed entry (its worker died) arrives late, so the
track role buffers each camera's records by their publish sequence number `seq` and releases them strictly
in order. A record whose (camera, frame_index) was already released or is already buffered is a duplicate
(a worker that was presumed dead finished after all, or died between publishing and acknowledging) and is
dropped. A gap that never fills (a live stream trimmed unread entries) is skipped, and counted, once the
camera has `window` records waiting behind it or the oldest has waited `gap_timeout_s` (live cameras), or
`lossless_gap_timeout_s` (replays: only a frame that failed detection again and again is ever skipped).
A record from a newer ingest run (the ingest worker restarted) resets the camera; older runs' records are stale.
A camera first seen at a `seq` beyond `join_after` (this track worker started mid-run) starts there.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, TypeVar

from pipeline.distributed.codec import Envelope
from pipeline.frames import EndOfStream

T = TypeVar("T")


@dataclass
class _Camera(Generic[T]):
    run: int
    next_seq: int = 1
    released_index: int = 0
    buffer: dict[int, tuple[Any, T, int | None]] = field(default_factory=dict)  # seq -> (record, tag, frame index)
    indices: set[int] = field(default_factory=set)
    waiting_since: float | None = None
    ended: bool = False


@dataclass
class Released(Generic[T]):
    record: Any
    tag: T
    skipped: int  # frames missing just before this one


class Reorderer(Generic[T]):
    """Per-camera ordering; `tag` is anything the caller wants back with the record (the stream entry id)."""

    def __init__(self, window: int = 32, gap_timeout_s: float = 2.0, lossless_gap_timeout_s: float = 60.0,
                 join_after: int = 128, clock: Callable[[], float] = time.monotonic) -> None:
        self.window, self.gap_timeout_s, self.lossless_gap_timeout_s = window, gap_timeout_s, lossless_gap_timeout_s
        self.join_after = join_after
        self.clock = clock
        self.cameras: dict[str, _Camera[T]] = {}
        self.live: dict[str, bool] = {}
        self.restarted: list[str] = []  # cameras whose ingest run changed since the caller last looked

    def push(self, record: Any, env: Envelope, tag: T) -> bool:
        """Buffer one record; False when it is a duplicate or stale (the caller acknowledges it at once)."""
        cam = self.cameras.get(env.camera)
        if cam is None or env.run > cam.run:
            if cam is not None:
                self.restarted.append(env.camera)
            cam = self.cameras[env.camera] = _Camera(env.run)
            if env.seq > self.join_after:
                cam.next_seq = env.seq
        elif env.run < cam.run:
            return False
        self.live[env.camera] = env.live
        index = None if isinstance(record, EndOfStream) else record.frame.index
        if cam.ended or env.seq < cam.next_seq or env.seq in cam.buffer:
            return False
        if index is not None and (index <= cam.released_index or index in cam.indices):
            return False
        cam.buffer[env.seq] = (record, tag, index)
        if index is not None:
            cam.indices.add(index)
        return True

    def pop(self) -> Released[T] | None:
        """The next record that may go to the tracker, if any (cameras taken in turn)."""
        now = self.clock()
        for name, cam in self.cameras.items():
            if not cam.buffer:
                cam.waiting_since = None
                continue
            skipped = 0
            if cam.next_seq not in cam.buffer:
                if cam.waiting_since is None:
                    cam.waiting_since = now
                live = self.live.get(name, False)
                limit = self.gap_timeout_s if live else self.lossless_gap_timeout_s
                if not ((live and len(cam.buffer) >= self.window) or now - cam.waiting_since >= limit):
                    continue
                first = min(cam.buffer)
                skipped, cam.next_seq = first - cam.next_seq, first
            record, tag, index = cam.buffer.pop(cam.next_seq)
            cam.next_seq += 1
            cam.waiting_since = None
            if index is not None:
                cam.indices.discard(index)
                cam.released_index = index
            else:
                cam.ended = True
            return Released(record, tag, skipped)
        return None

    def held(self) -> int:
        return sum(len(c.buffer) for c in self.cameras.values())
