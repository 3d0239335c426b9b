"""The two processing stages: `DetectStage` (one shared model, batches across cameras) and `TrackStage`
(one tracker per camera). Each has one input and one output; `step()` handles one unit of work."""
from __future__ import annotations

import logging
import time
from typing import Any, Callable

from pipeline.alerts import Alert, AlertNumbering
from pipeline.frames import DetectedFrame, EndOfStream, Frame, TrackedFrame
from pipeline.mux import FrameMux
from pipeline.workers import Channel, InTurn

log = logging.getLogger("pipeline.stages")


class StreamEnded:
    """A camera's stream is over: the tracker's final `end` alerts, then nothing more from it."""

    def __init__(self, camera: str, alerts: list[Alert], error: str | None = None) -> None:
        self.camera, self.alerts, self.error = camera, alerts, error


DONE = "done"  # sentinel: every camera has ended


def detector_batch_size(detector: Any, config: Any) -> int:
    """`config.batch_size` (a `DetectorConfig`), or the default for the device the detector runs on."""
    return config.batch_for(_device_type(detector))


def detector_workers(detector: Any, config: Any) -> int:
    """`config.workers` (a `DetectorConfig`), or the default for the device the detector runs on."""
    return config.workers_for(_device_type(detector))


def _device_type(detector: Any) -> str:
    return getattr(getattr(detector, "device", None), "type", "cpu")


class DetectStage:
    """Frames -> `DetectedFrame`s, in each camera's order; ends pass through after that camera's frames."""

    def __init__(self, detector: Any, mux: FrameMux, out: Channel, batch_size: int, batch_timeout_s: float,
                 metrics=None, turns: InTurn | None = None) -> None:
        self.detector, self.mux, self.out = detector, mux, out
        self.batch_size, self.batch_timeout_s, self.metrics = batch_size, batch_timeout_s, metrics
        self.turns = turns  # shared by several detect workers: their results leave in the order taken

    def step(self) -> bool:
        def get() -> Any:
            return self.mux.get_batch(self.batch_size, self.batch_timeout_s)

        number, batch = self.turns.take(get) if self.turns else (0, get())
        if batch is None:
            return False
        frames = [item for item, _ in batch if isinstance(item, Frame)]
        results: dict[int, DetectedFrame] = {}
        try:
            if frames:
                timings: dict[str, float] = {}
                t0 = time.perf_counter()
                motion = [f.motion for f in frames]
                dets = (self.detector.predict_batch([f.image for f in frames], timings, motion=motion)
                        if any(m is not None for m in motion) else
                        self.detector.predict_batch([f.image for f in frames], timings))
                if len(dets) != len(frames):
                    raise RuntimeError(f"detector returned {len(dets)} results for {len(frames)} frames")
                elapsed = time.perf_counter() - t0
                if self.metrics:
                    self.metrics.batch.observe(len(frames))
                    self.metrics.observe("inference", timings.get("inference", elapsed))
                    if "peaks" in timings:
                        self.metrics.observe("peaks", timings["peaks"])
                    for (item, waited) in batch:
                        if isinstance(item, Frame):
                            self.metrics.observe("queue_wait", waited)
                waits = {id(item): waited for item, waited in batch}
                for f, d in zip(frames, dets):
                    results[id(f)] = DetectedFrame(f, d, {**f.timings, "queue_wait": waits[id(f)], **timings})
                    if self.metrics:
                        self.metrics.detections.labels(f.camera).inc(len(d))
        finally:  # a failed batch loses its frames, never a camera's end (that would hang the run)
            out = [item if isinstance(item, EndOfStream) else results[id(item)] for item, _ in batch
                   if isinstance(item, EndOfStream) or id(item) in results]
            if self.turns:
                self.turns.put(number, out)
            else:
                for item in out:
                    self.out.put(item)
        return True


class TrackStage:
    """`DetectedFrame`s -> `TrackedFrame`s with alerts, one tracker per camera, created at its first frame."""

    def __init__(self, make_tracker: Callable[[tuple[int, int]], Any], inp: Channel, emit: Callable[[Any], None],
                 cameras: list[str], metrics=None, zones: dict[str, tuple] | None = None) -> None:
        self.make_tracker, self.inp, self.emit, self.metrics = make_tracker, inp, emit, metrics
        self.zones = zones or {}  # camera -> (exclude polygons, include polygons or None)
        self.filters: dict[str, Any] = {}
        self.open = set(cameras)
        self.trackers: dict[str, Any] = {}
        self.last: dict[str, Frame] = {}
        self.numbering = AlertNumbering()

    def step(self) -> bool:
        item = self.inp.get()
        if item is None:
            return True
        if isinstance(item, EndOfStream):
            self._end(item)
            return bool(self.open)
        frame, dets = item.frame, item.detections
        t0 = time.perf_counter()
        tracker = self.trackers.get(frame.camera)
        if tracker is None:
            tracker = self.trackers[frame.camera] = self.make_tracker(frame.size)
            self.filters[frame.camera] = self._zone_filter(frame.camera, frame.size)
        if self.filters.get(frame.camera) is not None:
            dets = self.filters[frame.camera](dets)
        events = tracker.update(dets, frame.index, frame.timestamp, frame.scene)
        tracks = tracker.active_tracks()
        track_s = time.perf_counter() - t0
        if self.metrics:
            self.metrics.observe("track", track_s)
        self.last[frame.camera] = frame
        alerts = self.numbering.alerts(events, frame.camera, frame.pts, frame.captured_at)
        self._count(frame.camera, alerts)
        self.emit(TrackedFrame(frame, dets, alerts, tracks, {**item.timings, "track": track_s}))
        return True

    def _zone_filter(self, camera: str, size: tuple[int, int]) -> Any:
        """The camera's mask/zones raster for its frame size; polygons outside the frame fail the stage."""
        exclude, include = self.zones.get(camera, ([], None))
        if not exclude and not include:
            return None
        from pipeline.zones import ZoneFilter, polygon_problems

        problems = polygon_problems(camera, "mask", exclude, size) + polygon_problems(camera, "zones", include or [], size)
        if problems:
            raise ValueError("; ".join(problems))
        return ZoneFilter(exclude, include, size)

    def _end(self, end: EndOfStream) -> None:
        alerts: list[Alert] = []
        try:
            tracker, last = self.trackers.pop(end.camera, None), self.last.get(end.camera)
            if tracker is not None and last is not None:
                events = tracker.finish(last.index, last.timestamp)
                alerts = self.numbering.alerts(events, end.camera, last.pts, last.captured_at)
                self._count(end.camera, alerts)
        finally:
            self.open.discard(end.camera)
            self.emit(StreamEnded(end.camera, alerts, end.error))
            if not self.open:
                self.emit(DONE)

    def _count(self, camera: str, alerts: list[Alert]) -> None:
        if self.metrics:
            for a in alerts:
                self.metrics.alerts.labels(camera, a.event).inc()
