"""Redis sink: alerts on pub/sub `<prefix>:<camera>` and the capped stream `<stream>` (XADD MAXLEN), camera
health as `<health_prefix>:<camera>` keys with a TTL heartbeat plus events on `<health_prefix>:status`.

Snapshots (`pipeline.snapshots`) are stored as `<snapshot_prefix>:<id>:frame|chip` with their TTL, in the
same order as the alerts, so an alert never arrives before its picture; while Redis is down they are skipped.

Redis being down never stops the run: alerts wait in a bounded buffer, the sink retries with capped backoff,
and it logs what it sent once Redis is back. Nothing is lost: an alert pushed out of the full buffer, or still
unsent at exit, is appended to `spill_path` (JSON lines), and the run's exit status says so.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from typing import Any

import redis
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.retry import Retry

from pipeline.alerts import Alert, CameraStatus
from pipeline.config import RedisSinkConfig, redact_url
from pipeline.frames import Snapshot, StatusEvent
from pipeline.sinks.base import Sink

log = logging.getLogger("pipeline.sinks.redis")

MAX_PER_FLUSH = 500
RETRY = ExponentialBackoff(cap=10.0, base=0.5)  # seconds before the next try after n failures in a row


def make_client(config: RedisSinkConfig) -> redis.Redis:
    """A client that fails fast (no hidden retries: the sink does its own)."""
    kwargs: dict[str, Any] = dict(socket_connect_timeout=config.connect_timeout_s,
                                  socket_timeout=config.connect_timeout_s, retry=Retry(NoBackoff(), 0))
    if config.password is not None:
        kwargs["password"] = config.password.get_secret_value()
    if config.url.startswith("rediss://"):
        kwargs["ssl_cert_reqs"] = "required" if config.tls_verify else "none"
        if config.tls_ca:
            kwargs["ssl_ca_certs"] = str(config.tls_ca)
    return redis.Redis.from_url(config.url, **kwargs)


def _reason(e: Exception) -> str:
    """The error's first line, with anything that looks like a URL's credentials removed."""
    return redact_url(str(e).splitlines()[0] if str(e) else type(e).__name__)


class RedisSink(Sink):
    name = "redis"

    def __init__(self, config: RedisSinkConfig, metrics=None, client: redis.Redis | None = None) -> None:
        super().__init__(config.events, metrics)
        self.config = config
        self.client = client or make_client(config)
        self.where = redact_url(config.url)
        self._buf: deque[tuple[str, Any]] = deque()
        self._lock = threading.Lock()
        self.dropped = 0
        self._dropped_reported = 0
        self.connected: bool | None = None
        self._retry_at = 0.0
        self._failures = 0
        self._status: dict[str, StatusEvent] = {}
        self._beat_at = 0.0

    # ------------------------------------------------------------ inputs
    def handle(self, record: Any) -> None:
        if isinstance(record, Snapshot):
            if self.connected is not False:  # not kept while Redis is down: pictures are not worth the memory
                with self._lock:
                    self._push(("snapshot", record))
        else:
            super().handle(record)

    def publish(self, alerts: list[Alert]) -> None:
        with self._lock:
            for a in alerts:
                self._push(("alert", a))
        self._flush()

    def on_status(self, event: StatusEvent) -> None:
        """Health listener (any thread): queue the status event and refresh the key at the next heartbeat."""
        with self._lock:
            self._status[event.camera] = event
            self._push(("status", event))
            self._beat_at = 0.0

    def _push(self, item: tuple[str, Any]) -> None:
        if len(self._buf) >= self.config.buffer_size:
            kind, payload = self._buf.popleft()
            if kind == "alert":
                self.dropped += 1
                self._spill([payload])
                if self.metrics:
                    self.metrics.sink_dropped.labels(self.name).inc()
        self._buf.append(item)

    def _spill(self, alerts: list[Alert]) -> None:
        """Append alerts Redis did not get to `spill_path`, so that none is lost."""
        if not alerts:
            return
        path = self.config.spill_path
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as f:
            f.writelines(a.to_json() + "\n" for a in alerts)
        self.spill_path = path

    def tick(self) -> None:
        self._flush()

    # ------------------------------------------------------------ sending
    def _flush(self) -> None:
        now = time.monotonic()
        with self._lock:
            if now < self._retry_at:
                return
            items = [self._buf[i] for i in range(min(len(self._buf), MAX_PER_FLUSH))]
            beat = now >= self._beat_at
            statuses = list(self._status.values()) if beat else []
        if not items and not statuses:
            return
        c = self.config
        t0 = time.perf_counter()
        try:
            pipe = self.client.pipeline(transaction=False)
            sent_alerts = []
            wall = time.time()
            for kind, payload in items:
                if kind == "alert":
                    a = payload.stamped(wall)
                    msg = a.to_json()
                    pipe.publish(f"{c.channel_prefix}:{a.camera}", msg)
                    if c.stream:
                        pipe.xadd(c.stream, {"camera": a.camera, "event": a.event, "alert": msg},
                                  maxlen=c.stream_maxlen, approximate=True)
                    sent_alerts.append(a)
                elif kind == "snapshot":
                    ttl, key = int(payload.ttl_s * 1000), f"{c.snapshot_prefix}:{payload.id}"
                    pipe.set(f"{key}:frame", payload.frame_jpeg, px=ttl)
                    pipe.set(f"{key}:chip", payload.chip_jpeg, px=ttl)
                else:
                    pipe.publish(f"{c.health_prefix}:status", CameraStatus.of(payload).to_json())
            for ev in statuses:
                pipe.set(f"{c.health_prefix}:{ev.camera}", CameraStatus.of(ev, wall).to_json(),
                         px=int(c.heartbeat_ttl_s * 1000))
            pipe.execute()
        except (redis.RedisError, OSError) as e:
            self._down(e)
            return
        with self._lock:
            for _ in items:
                self._buf.popleft()
            if beat:
                self._beat_at = now + c.heartbeat_s
            dropped = self.dropped - self._dropped_reported
            self._dropped_reported = self.dropped
            buffered = len(self._buf)
        if self.connected is not True:
            if self.connected is None:
                log.info("redis %s connected", self.where)
            else:
                log.warning("redis %s reachable again: sent %d buffered alerts; %d that overflowed the buffer "
                            "while it was down are in %s", self.where, len(sent_alerts) + buffered, dropped,
                            self.config.spill_path)
            self.connected = True
            self._failures = 0
        if self.metrics:
            self.metrics.sink_up.labels(self.name).set(1)
            self.metrics.sink_buffered.labels(self.name).set(buffered)
            if sent_alerts:
                self.metrics.observe("publish", time.perf_counter() - t0)
                for a in sent_alerts:
                    if a.captured_at:
                        self.metrics.end_to_end.labels(self.name).observe(max(0.0, wall - a.captured_at))
        if buffered:
            self._flush()

    def _down(self, e: Exception) -> None:
        with self._lock:
            self._retry_at = time.monotonic() + RETRY.compute(self._failures)
            self._failures += 1
            buffered = len(self._buf)
        if self.connected is not False:
            log.warning("redis %s unreachable (%s); buffering up to %d alerts and retrying", self.where,
                        _reason(e), self.config.buffer_size)
        self.connected = False
        if self.metrics:
            self.metrics.sink_up.labels(self.name).set(0)
            self.metrics.sink_buffered.labels(self.name).set(buffered)

    def close(self, deadline_s: float = 3.0) -> None:
        """Send what is buffered (trying up to `deadline_s`), then report anything that was lost."""
        end = time.monotonic() + deadline_s
        while True:
            with self._lock:
                pending = sum(k == "alert" for k, _ in self._buf)
                self._retry_at = min(self._retry_at, time.monotonic() + 0.2)
            if not pending or time.monotonic() > end:
                break
            self._flush()
            if self._buf:
                time.sleep(0.2)
        with self._lock:
            unsent = [payload for kind, payload in self._buf if kind == "alert"]
            self._buf.clear()
        self._spill(unsent)
        self.undelivered = self.dropped + len(unsent)
        if self.undelivered:
            log.error("redis %s: %d alerts could not be delivered (%d pushed out of the full buffer, %d unsent at "
                      "exit); written to %s", self.where, self.undelivered, self.dropped, len(unsent), self.spill_path)
        try:
            self.client.close()
        except Exception:  # noqa: BLE001
            pass
