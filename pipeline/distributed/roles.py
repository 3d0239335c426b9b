"""The three roles of a distributed run, built from the pipeline's own stages:

- `ingest`: the camera readers and their `FrameMux` (live: newest frame only), then `FramePublisher` -> frames stream.
- `detect`: `DetectStage` reading batches from the frames stream (`StreamBatches`, consumer group `detect`)
  and writing to the detections stream (`DetectionPublisher`, which acknowledges the frames it published).
- `track`: `TrackStage` reading the detections stream in each camera's frame order (`OrderedDetections`,
  consumer group `track`), then the sinks as in a single-process run.
"""
from __future__ import annotations

import dataclasses
import logging
import threading
import time
import zlib
from typing import Any, Callable

from pipeline.config import PipelineConfig, redact_url
from pipeline.distributed.codec import Envelope, decode, encode_detected, encode_frame
from pipeline.distributed.reorder import Reorderer
from pipeline.distributed.streams import (GroupReader, StatsPoller, StreamMetrics, StreamsUnavailable,
                                          StreamWriter, connect, consumer_name)
from pipeline.frames import DetectedFrame, EndOfStream
from pipeline.workers import Aborted

log = logging.getLogger("pipeline.distributed")

ROLES = ("ingest", "detect", "track")
DETECT_GROUP, TRACK_GROUP = "detect", "track"
Step = Callable[[], bool]


def stream_names(config: PipelineConfig) -> tuple[str, str]:
    """(frames stream, detections stream)."""
    p = config.streams.prefix
    return f"{p}:frames", f"{p}:detections"


class FramePublisher:
    """Ingest: frames and ends from the mux -> the frames stream, numbered per camera (`seq`)."""

    def __init__(self, mux, writer: StreamWriter, live: dict[str, bool], level: int, metrics, poller: StatsPoller
                 ) -> None:
        self.mux, self.writer, self.live, self.level = mux, writer, live, level
        self.metrics, self.poller = metrics, poller
        self.run_id = time.time_ns()
        self.seq: dict[str, int] = {}

    def step(self) -> bool:
        self.poller.tick()
        batch = self.mux.get_batch(1, 0.05)
        if batch is None:
            return False
        for item, _ in batch:
            cam = item.camera
            seq = self.seq[cam] = self.seq.get(cam, 0) + 1
            env = Envelope(cam, self.run_id, seq, self.live[cam])
            dropped = self.writer.add(encode_frame(item, env, self.level), self.live[cam])
            if dropped is None:
                raise Aborted()
            if dropped and self.metrics:  # counted at the camera whose frame pushed them out
                self.metrics.dropped.labels(cam, "stream").inc(dropped)
        return True

    def abort(self) -> None:
        self.writer.stop.set()


class StreamBatches:
    """Detect: `DetectStage`'s input. Whatever the frames stream has (up to the batch size; reclaimed entries
    first), blocking briefly when it is empty; None once the run stops."""

    def __init__(self, reader: GroupReader, stop: threading.Event, smetrics: StreamMetrics, poller: StatsPoller
                 ) -> None:
        self.reader, self.stop, self.smetrics, self.poller = reader, stop, smetrics, poller
        self.entries: dict[int, tuple[bytes, Envelope]] = {}  # id(record) -> (entry id, envelope)

    def get_batch(self, max_frames: int, timeout: float) -> list[tuple[Any, float]] | None:
        if self.entries:  # not published by now: detection failed; left pending, retried once idle
            self.reader.release([eid for eid, _ in self.entries.values()])
            self.entries.clear()
        self.poller.tick()
        if self.stop.is_set():
            return None
        got = self.reader.read(max_frames, max(timeout, 0.2))
        if got is None:
            return None
        out, now = [], time.time()
        for eid, fields in got:
            try:
                record, env = decode(fields)
            except (KeyError, ValueError, zlib.error) as e:
                log.error("%s: dropping malformed entry %s: %s", self.reader.stream, eid.decode(), e)
                self.reader.ack([eid])
                continue
            wait = max(0.0, now - env.sent_at)
            self.smetrics.hop.labels("frames").observe(wait)
            self.entries[id(record)] = (eid, env)
            out.append((record, wait))
        return out

    def abort(self) -> None:
        self.stop.set()


class DetectionPublisher:
    """Detect: `DetectStage`'s output. Publishes each result and only then acknowledges its frame entry."""

    def __init__(self, batches: StreamBatches, writer: StreamWriter) -> None:
        self.batches, self.writer = batches, writer

    def put(self, item: DetectedFrame | EndOfStream) -> None:
        key = id(item.frame) if isinstance(item, DetectedFrame) else id(item)
        eid, env = self.batches.entries.pop(key)
        fields = encode_detected(item, dataclasses.replace(env, sent_at=None))
        w, r = self.writer, self.batches.reader

        def publish() -> bool:
            pipe = w.client.pipeline(transaction=False)
            pipe.xadd(w.stream, fields, maxlen=w.maxlen, approximate=True)
            pipe.xack(r.stream, r.group, eid)
            pipe.xdel(r.stream, eid)
            pipe.execute()
            return True

        if w.retry.call(publish) is None:  # aborted during a Redis outage
            raise Aborted()
        r.held.discard(eid)

    def abort(self) -> None:
        self.writer.stop.set()


@dataclasses.dataclass
class _Tally:
    """What one camera's stream delivered to the tracker (logged at the camera's end)."""

    frames: int = 0
    first: int = 0
    last: int = 0
    duplicates: int = 0
    missing: int = 0


class OrderedDetections:
    """Track: `TrackStage`'s input. Each camera's records in frame order, without duplicates; `ack_done()`
    acknowledges the last record once the tracker has handled it. When the run stops, every camera still open
    gets an end, so live tracks end and the sinks flush."""

    def __init__(self, reader: GroupReader, reorder: Reorderer, stop: threading.Event, cameras: list[str],
                 smetrics: StreamMetrics, poller: StatsPoller, on_restart: Callable[[str], None] | None = None
                 ) -> None:
        self.reader, self.reorder, self.stop, self.smetrics, self.poller = reader, reorder, stop, smetrics, poller
        self.open = set(cameras)
        self.on_restart = on_restart
        self.tally: dict[str, _Tally] = {}
        self._done: bytes | None = None
        self.aborted = threading.Event()

    def get(self, timeout: float = 0.2) -> Any:
        if self.aborted.is_set():
            raise Aborted()
        self.poller.tick()
        if self.stop.is_set():
            return EndOfStream(self.open.pop()) if self.open else None
        released = self.reorder.pop()
        if released is None:
            self._fill(timeout)
            released = self.reorder.pop()
            if released is None:
                return None
        record = released.record
        cam = record.camera if isinstance(record, EndOfStream) else record.frame.camera
        t = self.tally.setdefault(cam, _Tally())
        if released.skipped:
            log.warning("camera %s: %d frames never reached the tracker (stream trimmed or lost)", cam,
                        released.skipped)
            self.smetrics.skipped.labels(cam).inc(released.skipped)
            t.missing += released.skipped
        if isinstance(record, EndOfStream):
            self.open.discard(cam)
            log.info("camera %s ended: %d frames tracked in order (frames %d-%d), %d duplicates dropped, "
                     "%d never arrived", cam, t.frames, t.first, t.last, t.duplicates, t.missing)
            self.tally.pop(cam)
        else:
            t.frames += 1
            t.first = t.first or record.frame.index
            t.last = record.frame.index
        self._done = released.tag
        return record

    def _fill(self, timeout: float) -> None:
        got = self.reader.read(64, timeout)
        now, dupes = time.time(), []
        for eid, fields in got or []:
            try:
                record, env = decode(fields)
            except (KeyError, ValueError) as e:
                log.error("%s: dropping malformed entry %s: %s", self.reader.stream, eid.decode(), e)
                dupes.append(eid)
                continue
            self.smetrics.hop.labels("detections").observe(max(0.0, now - env.sent_at))
            if not self.reorder.push(record, env, eid):
                self.smetrics.duplicates.labels(env.camera).inc()
                self.tally.setdefault(env.camera, _Tally()).duplicates += 1
                dupes.append(eid)
        self.reader.ack(dupes)
        while self.reorder.restarted:
            cam = self.reorder.restarted.pop()
            log.warning("camera %s: its ingest worker restarted; starting a new tracker", cam)
            self.open.add(cam)
            if self.on_restart:
                self.on_restart(cam)

    def ack_done(self) -> None:
        if self._done is not None:
            self.reader.ack([self._done])
            self._done = None

    def abort(self) -> None:
        self.aborted.set()
        self.reader.retry.stop.set()


def check_role(config: PipelineConfig, role: str) -> str | None:
    """Why `config` cannot run as `role` (one line), or None."""
    if role not in ROLES:
        return f"--role must be one of {', '.join(ROLES)} (got {role!r})"
    cams = [c for c in config.cameras.values() if c.enabled]
    if role == "ingest" and len({c.live for c in cams}) > 1:
        return ("--role ingest: cameras must be all live or all lossless in one deployment (the frames stream is "
                "either trimmed or waited on); use separate streams.prefix values")
    if role == "track" and config.sinks.video is not None:
        return "--role track: sinks.video needs the frames, which the detections stream does not carry"
    return None


def build_role(role: str, config: PipelineConfig, *, mux, detector_factory: Callable[[], Any],
               make_tracker, emit: Callable[[Any], None], cameras: list[str], metrics, stop: threading.Event
               ) -> tuple[list[tuple[str, Step]], list[Any]]:
    """The stage steps of `role` and the objects to abort on a fatal error. Raises `StreamsUnavailable`."""
    from pipeline.stages import DetectStage, TrackStage, detector_batch_size

    s = config.streams
    client = connect(s.url)
    where = redact_url(s.url)
    smetrics = StreamMetrics(metrics.registry)
    smetrics.redis_up.set(1)
    frames, detections = stream_names(config)
    if role == "ingest":
        writer = StreamWriter(client, frames, s.frames_maxlen, threading.Event(), window=s.in_flight,
                              window_streams=[frames, detections], metrics=smetrics, where=where)
        live = {n: c.live for n, c in config.cameras.items()}
        pub = FramePublisher(mux, writer, live, s.compression_level, metrics, StatsPoller(client, [frames], smetrics))
        log.info("ingest: cameras %s -> %s on %s", ", ".join(cameras), frames, where)
        return [("publish", pub.step)], [pub]
    if role == "detect":
        detector = detector_factory()
        name = consumer_name("detect")
        reader = GroupReader(client, frames, DETECT_GROUP, name, stop, s.claim_idle_s, smetrics, where)
        poller = StatsPoller(client, [frames, detections], smetrics)
        batches = StreamBatches(reader, stop, smetrics, poller)
        writer = StreamWriter(client, detections, s.detections_maxlen, threading.Event(), metrics=smetrics,
                              where=where)
        out = DetectionPublisher(batches, writer)
        c = config.detector
        stage = DetectStage(detector, batches, out, detector_batch_size(detector, c), c.batch_timeout_ms / 1000,
                            metrics)
        log.info("detect worker %s: %s -> %s on %s", name, frames, detections, where)
        return [("detect", stage.step)], [batches, out]
    name = consumer_name("track")
    reader = GroupReader(client, detections, TRACK_GROUP, name, threading.Event(), s.claim_idle_s, smetrics, where)
    reorder: Reorderer[bytes] = Reorderer(s.reorder_window, s.gap_timeout_s, s.lossless_gap_timeout_s,
                                          join_after=2 * (s.in_flight + s.frames_maxlen))
    inp = OrderedDetections(reader, reorder, stop, cameras, smetrics, StatsPoller(client, [detections], smetrics))
    from pipeline.graph import camera_zones
    stage = TrackStage(make_tracker, inp, emit, cameras, metrics, camera_zones(config))
    inp.on_restart = lambda cam: stage.trackers.pop(cam, None)

    def track() -> bool:
        more = stage.step()
        inp.ack_done()
        return more

    log.info("track worker %s: %s on %s", name, detections, where)
    return [("track", track)], [inp]


__all__ = ["ROLES", "StreamsUnavailable", "build_role", "check_role", "stream_names"]
