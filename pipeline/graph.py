"""`Pipeline`: builds sources -> detect -> track -> sinks from a config and runs it until the sources end or
a signal arrives.

Shutdown: SIGINT/SIGTERM stop the readers; what was already accepted is detected and tracked, live tracks
get their `end`, sinks are flushed, and `run()` returns 0. A second signal, a stage that keeps failing, or
a drain that exceeds `run.shutdown_timeout_s` aborts with a message naming the stage and returns 1.

With a `role` (`ingest`, `detect` or `track`) only that part of the graph runs, joined to the other roles'
processes by Redis Streams (`pipeline.distributed`); without one everything runs here.
"""
from __future__ import annotations

import logging
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from detector.exit_status import ExitStatus
from pipeline.config import PipelineConfig
from pipeline.health import Health
from pipeline.prometheus import Metrics
from pipeline.mux import FrameMux
from pipeline.sinks import Sink, build_sinks
from pipeline.snapshots import Snapshotter
from pipeline.sources import CameraReader, missing_input
from pipeline.stages import DONE, DetectStage, StreamEnded, TrackStage, detector_batch_size, detector_workers
from pipeline.status import RunStats
from pipeline.workers import Channel, InTurn, Worker

log = logging.getLogger("pipeline")


class StartupError(Exception):
    """The pipeline cannot start (one line for the user)."""


def load_detector(config: PipelineConfig, one_worker: bool = False) -> Any:
    """The shared detector of the run, with the CPU inference threads of each of its `detector.workers` (or,
    `one_worker`, those of a lone worker: `detector.threads`, by default every core, as a process of the
    `detect` role runs it); raises `StartupError` with the detector's one-line message."""
    from detector import Detector
    from detector.predict import pick_device

    d = config.detector
    try:
        threads = d.threads if one_worker else d.threads_for(pick_device(d.device).type)
        # the detector reports down to the tracker's low_score (see `tracker_config`)
        det = Detector.load(d.weights, device=d.device, threshold=config.tracker.low_score,
                            runtime=d.runtime, precision=d.precision, threads=threads)
    except (ValueError, OSError, RuntimeError) as e:
        raise StartupError(f"detector: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    log.info("detector %s on %s (%s, %s)", getattr(det, "variant", "?"), getattr(det, "device", "?"),
             getattr(det, "runtime", "?"), getattr(det, "precision", "?"))
    return det


def motion_input(config: PipelineConfig, detector: Any = None) -> dict | None:
    """The motion-input parameters the camera readers compute residuals with: the loaded `detector`'s, else
    those its checkpoint's header records (the `ingest` role loads no model); None for frame-only weights."""
    if detector is not None:
        return getattr(detector, "motion_params", None)
    from detector import DetectorError
    from detector.checkpoint import read_meta

    try:
        pre = read_meta(config.detector.weights).get("preprocessing", {})
    except DetectorError as e:
        raise StartupError(f"detector: {e}") from None
    return pre.get("motion") if int(pre.get("channels", 1)) > 1 else None


def tracker_config(config: PipelineConfig, detector: Any = None) -> Any:
    """The tracker settings fed by this run's detector: the operating threshold chosen on val and stored
    in its checkpoint becomes `high_score` unless the config sets one. The threshold comes from the loaded
    `detector`'s meta, else from the checkpoint's header (no second load of the weights)."""
    meta = getattr(detector, "meta", None)
    if meta is None:
        from detector import DetectorError
        from detector.checkpoint import read_meta

        try:
            meta = read_meta(config.detector.weights)
        except DetectorError as e:
            raise StartupError(f"detector: {e}") from None
    return config.tracker.fed_by(float(meta.get("threshold", 0.5)))


def _draws_pictures(config: PipelineConfig) -> bool:
    s = config.sinks
    return s.video is not None or (s.redis is not None and s.redis.live is not None)


def default_tracker_factory(config: PipelineConfig, detector: Any = None) -> Callable[[tuple[int, int]], Any]:
    from tracking import Tracker

    settings = tracker_config(config, detector)
    return lambda size: Tracker(settings, frame_size=size)


def camera_zones(config: PipelineConfig) -> dict[str, tuple]:
    """Each camera's (exclusion polygons, include polygons or None), for the track stage and the video sink."""
    return {n: (c.mask, c.zones) for n, c in config.cameras.items()}


@dataclass
class RunResult:
    exit_code: int  # an `ExitStatus`
    message: str = ""
    camera_errors: dict[str, str] = field(default_factory=dict)
    summary: str = ""  # one line: frames, tracks, alerts by event, undelivered
    undelivered: dict[str, int] = field(default_factory=dict)  # sink -> alerts it could not deliver
    found: list[str] = field(default_factory=list)  # `found: ...` lines, one per alerted track


class _SinkRunner:
    """Feeds one sink from its channel until DONE."""

    def __init__(self, sink: Sink, channel: Channel) -> None:
        self.sink, self.channel = sink, channel
        self.closed = False

    def step(self) -> bool:
        record = self.channel.get(timeout=0.2)
        if record is DONE:
            self.sink.tick()
            return False
        if record is not None:
            self.sink.handle(record)
        self.sink.tick()
        return True

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.sink.close()


class Pipeline:
    def __init__(self, config: PipelineConfig, detector: Any = None,
                 tracker_factory: Callable[[tuple[int, int]], Any] | None = None,
                 extra_sinks: list[Sink] = (), metrics: Metrics | None = None, role: str | None = None) -> None:
        self.config = config
        self.role = role
        self.metrics = metrics or Metrics()
        self.health = Health(self.metrics)
        self.detector = detector
        self.tracker_factory = tracker_factory
        self.extra_sinks = list(extra_sinks)
        self.stop_event = threading.Event()
        self._fatal: str | None = None
        self._wake = threading.Event()
        self._stop_at: float | None = None
        self.camera_errors: dict[str, str] = {}
        self.metrics_port: int | None = None
        self.stats = RunStats()

    # ------------------------------------------------------------ control
    def stop(self, reason: str = "stop requested") -> None:
        """Stop reading and drain (idempotent; a second call while draining aborts)."""
        if self._stop_at is None:
            log.info("%s: stopping cameras, draining what was accepted", reason)
            self._stop_at = time.monotonic()
            self.stop_event.set()
        else:
            self.fail(f"{reason} again: aborting without draining")
        self._wake.set()

    def fail(self, message: str) -> None:
        if self._fatal is None:
            self._fatal = message
        self.stop_event.set()
        self._wake.set()

    # ------------------------------------------------------------ run
    def run(self, install_signals: bool = True) -> RunResult:
        cfg = self.config
        cameras = [n for n, c in cfg.cameras.items() if c.enabled]
        role = self.role
        if role is not None:
            from pipeline.distributed.roles import check_role
            problem = check_role(cfg, role)
            if problem:
                raise StartupError(problem)
        detector = None
        if role in (None, "ingest"):
            for name in cameras:
                problem = missing_input(cfg.cameras[name].source)
                if problem:
                    raise StartupError(f"camera {name}: {problem}")
        if role is None:
            detector = self.detector if self.detector is not None else load_detector(cfg)
        make_tracker, sinks = None, []
        if role in (None, "track"):
            make_tracker = self.tracker_factory or default_tracker_factory(cfg, detector)
            threshold = tracker_config(cfg, detector).high_score if _draws_pictures(cfg) else 0.0
            sinks = build_sinks(cfg, self.metrics, threshold) + self.extra_sinks
        for s in sinks:
            if hasattr(s, "on_status"):
                self.health.subscribe(s.on_status)
        if cfg.metrics.port is not None:
            self.metrics_port = self.metrics.serve(cfg.metrics.host, cfg.metrics.port)

        r = cfg.run
        mux = FrameMux(self.metrics)
        tracked = Channel("detected", r.queue_size, self.metrics)
        sink_channels = [Channel(f"sink:{s.name}", r.queue_size, self.metrics) for s in sinks]
        channels = [tracked, *sink_channels]

        # the track role gets detections without pixels (see pipeline.distributed.codec): no pictures there
        snapshotter = Snapshotter.for_run(cfg) if sinks and role is None else None

        def emit(record: Any) -> None:
            if record is not DONE:
                self.stats.count(record)
            for r in snapshotter(record) if snapshotter else (record,):
                for ch in sink_channels:
                    ch.put(r)
            if isinstance(record, StreamEnded) and record.error:
                self.camera_errors[record.camera] = record.error

        def worker(name: str, step, on_exit=None) -> Worker:
            def exited() -> None:  # wake `_wait` at once: a finished run returns without polling delay
                try:
                    if on_exit is not None:
                        on_exit()
                finally:
                    self._wake.set()
            return Worker(name, step, self.fail, r.max_restarts, r.restart_window_s, self.metrics, exited)

        batch = detector_batch_size(detector, cfg.detector) if role is None else 1
        motion = motion_input(cfg, detector) if role in (None, "ingest") else None
        readers = []
        for name in cameras if role in (None, "ingest") else []:
            cam = cfg.cameras[name]
            mux.add_camera(name, cam.live, max(cam.queue_size, batch))
            readers.append(CameraReader(name, cam, mux, self.health, self.metrics, self.stop_event,
                                        cfg.run.ingest_nice, motion))
        if role is None:
            n = detector_workers(detector, cfg.detector)
            turns = InTurn(tracked) if n > 1 else None
            stages = [("detect", DetectStage(detector, mux, tracked, batch, cfg.detector.batch_timeout_ms / 1000,
                                             self.metrics, turns).step) for _ in range(n)]
            track = TrackStage(make_tracker, tracked, emit, cameras, self.metrics, camera_zones(cfg))
            stages.append(("track", track.step))
        else:
            try:
                stages = self._role_stages(role, mux, make_tracker, emit, cameras, channels)
            except StartupError:
                for s in sinks:
                    s.close()
                self.metrics.close()
                raise
        runners = [_SinkRunner(s, ch) for s, ch in zip(sinks, sink_channels)]

        workers = [worker(f"source:{rd.name}", _once(rd.run)) for rd in readers]
        workers += [worker(name, step) for name, step in stages]
        sink_workers = [worker(f"sink:{rn.sink.name}", rn.step, rn.close) for rn in runners]
        workers += sink_workers

        previous = self._install_signals() if install_signals else None
        try:
            for w in reversed(workers):
                w.start()
            live = any(cfg.cameras[n].live for n in cameras)
            code, message = self._wait(workers, sink_workers, mux, channels, r.shutdown_timeout_s,
                                       r.status_interval_s if live else 0)
        finally:
            if previous:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)
            for rn in runners:  # after an abort: flush what the sinks hold
                try:
                    rn.close()
                except Exception as e:  # noqa: BLE001
                    log.error("sink %s failed while closing: %s", rn.sink.name, e)
            self.metrics.close()
        if code == ExitStatus.OK and self.camera_errors and self._stop_at is None:
            code = ExitStatus.FAILED
            message = "; ".join(f"camera {c}: {e}" for c, e in sorted(self.camera_errors.items()))
            if not any(c.frames for c in self.stats.cameras.values()) and role is None and not any(
                    cfg.cameras[c].live for c in self.camera_errors):
                code = ExitStatus.USAGE  # no readable input: nothing was processed
        never = [c for c in cameras if cfg.cameras[c].live and not getattr(self.stats.cameras.get(c), "frames", 0)]
        if code == ExitStatus.OK and never and self._stop_at is not None and role is None:
            code = ExitStatus.FAILED  # stopped (Ctrl-C) while a live camera had never delivered a frame
            message = "; ".join(f"camera {c}: {self.camera_errors.get(c, 'no frame before the stop')}" for c in never)
        undelivered = {s.name: s.undelivered for s in sinks if s.undelivered}
        if undelivered:
            spilled = "; ".join(f"{s.undelivered} alerts of sink {s.name} written to {s.spill_path}"
                                for s in sinks if s.undelivered)
            message = f"{message}; {spilled}" if message else f"alerts undelivered: {spilled}"
            code = code or ExitStatus.UNDELIVERED
        return RunResult(code, message, dict(self.camera_errors), self.stats.summary_line(undelivered), undelivered,
                         self.stats.found_lines())

    def _role_stages(self, role: str, mux: FrameMux, make_tracker, emit, cameras: list[str],
                     channels: list) -> list[tuple[str, Callable[[], bool]]]:
        """The stages of one role, joined to the others by Redis Streams; their abortable parts join `channels`."""
        from pipeline.distributed.roles import StreamsUnavailable, build_role

        def detector() -> Any:
            return self.detector if self.detector is not None else load_detector(self.config, one_worker=True)

        try:
            stages, abortable = build_role(role, self.config, mux=mux, detector_factory=detector,
                                           make_tracker=make_tracker, emit=emit, cameras=cameras,
                                           metrics=self.metrics, stop=self.stop_event)
        except StreamsUnavailable as e:
            raise StartupError(str(e)) from None
        channels.extend(abortable)
        return stages

    def _wait(self, workers: list[Worker], sink_workers: list[Worker], mux: FrameMux, channels: list[Channel],
              shutdown_timeout: float, status_interval: float = 0) -> tuple[int, str]:
        next_status = time.monotonic() + status_interval
        while True:
            if status_interval and time.monotonic() >= next_status:
                log.info("%s", self.stats.status_line())
                next_status += status_interval
            if not any(w.is_alive() for w in workers):
                break
            if self._fatal is not None:
                break
            if self._stop_at is not None and time.monotonic() - self._stop_at > shutdown_timeout:
                stuck = ", ".join(w.stage for w in workers if w.is_alive())
                self._fatal = f"shutdown took longer than {shutdown_timeout:.0f}s; still busy: {stuck}"
                break
            self._wake.wait(0.1)
            self._wake.clear()
        if self._fatal is None:
            return ExitStatus.OK, ""
        log.error("%s", self._fatal)
        self.stop_event.set()
        mux.abort()
        for ch in channels:
            ch.abort()
        deadline = time.monotonic() + 5
        for w in workers:
            w.join(max(0.0, deadline - time.monotonic()))
        return ExitStatus.FAILED, self._fatal

    def _install_signals(self) -> dict | None:
        if threading.current_thread() is not threading.main_thread():
            return None
        previous = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, lambda s, _f: self.stop(signal.Signals(s).name))
        return previous


def _once(fn: Callable[[], None]) -> Callable[[], bool]:
    def step() -> bool:
        fn()
        return False
    return step

