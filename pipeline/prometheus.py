"""Prometheus metrics of one pipeline run (own registry, so several runs can live in one process)."""
from __future__ import annotations

import logging
import threading
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

log = logging.getLogger("pipeline.prometheus")

STAGES = ("decode", "ego_motion", "queue_wait", "inference", "peaks", "track", "publish")
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    """All counters, gauges and histograms; names are listed in README (prefix `itd_`)."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.frames = Counter("itd_frames", "Frames decoded", ["camera"], registry=r)
        self.dropped = Counter("itd_frames_dropped", "Frames dropped (reason: stale = newer frame arrived, "
                               "size = wrong frame size, decode = undecodable)", ["camera", "reason"], registry=r)
        self.fps = Gauge("itd_camera_fps", "Frames per second received, over the last second", ["camera"], registry=r)
        self.reconnects = Counter("itd_reconnects", "Reconnection attempts", ["camera"], registry=r)
        self.camera_up = Gauge("itd_camera_online", "1 while the camera delivers frames", ["camera"], registry=r)
        self.queue_depth = Gauge("itd_queue_depth", "Records waiting in a queue", ["queue"], registry=r)
        self.latency = Histogram("itd_stage_seconds", "Per-stage latency", ["stage"], buckets=_BUCKETS, registry=r)
        self.batch = Histogram("itd_batch_size", "Frames per detector batch", buckets=(1, 2, 4, 8, 16, 32, 64),
                               registry=r)
        self.detections = Counter("itd_detections", "Detections", ["camera"], registry=r)
        self.alerts = Counter("itd_alerts", "Alerts produced", ["camera", "event"], registry=r)
        self.sink_dropped = Counter("itd_alerts_dropped", "Alerts a sink had to drop", ["sink"], registry=r)
        self.sink_buffered = Gauge("itd_alerts_buffered", "Alerts held by a sink waiting to be sent", ["sink"],
                                   registry=r)
        self.sink_up = Gauge("itd_sink_connected", "1 while a sink's backend is reachable", ["sink"], registry=r)
        self.restarts = Counter("itd_stage_restarts", "Stage restarts after a failure", ["stage"], registry=r)
        self.end_to_end = Histogram("itd_alert_latency_seconds", "Capture to publish time of alerts", ["sink"],
                                    buckets=_BUCKETS, registry=r)
        self._server = None
        self.endpoint: tuple[str, int] | None = None  # (host, port) of /metrics once served

    def observe(self, stage: str, seconds: float) -> None:
        self.latency.labels(stage).observe(max(0.0, seconds))

    def serve(self, host: str, port: int) -> int | None:
        """Start the /metrics endpoint; return the bound port, None (with a warning) when it cannot bind."""
        try:
            self._server, thread = start_http_server(port, addr=host, registry=self.registry)
        except OSError as e:
            log.warning("metrics endpoint %s:%d not started: %s", host, port, e.strerror or e)
            return None
        bound = self._server.server_address[1]
        self.endpoint = (host, bound)
        log.info("metrics on http://%s:%d/metrics", host, bound)
        return bound

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class RateMeter:
    """Frames per second over the last ~second, pushed to a gauge."""

    def __init__(self, gauge) -> None:
        self.gauge, self.count, self.since = gauge, 0, time.monotonic()
        self._lock = threading.Lock()

    def tick(self) -> None:
        with self._lock:
            self.count += 1
            now = time.monotonic()
            if now - self.since >= 1.0:
                self.gauge.set(self.count / (now - self.since))
                self.count, self.since = 0, now

    def reset(self) -> None:
        self.gauge.set(0)
        self.count, self.since = 0, time.monotonic()
