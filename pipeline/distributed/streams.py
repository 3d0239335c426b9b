"""Redis Streams plumbing: a fail-fast connection, consumer groups, acknowledged group reads that reclaim a
dead worker's entries (XAUTOCLAIM), capped writes, and the stream gauges.

Acknowledged entries are also deleted (XACK + XDEL), so a stream's length is exactly the work still in
flight: what a lossless writer waits on, and what a live writer trims (MAXLEN, oldest first, counted).
A Redis outage after start never ends a worker: calls are retried with capped backoff until it is back
(a Redis that restarted empty gets its consumer groups recreated).
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import Any, Callable, TypeVar

import redis
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.retry import Retry

from pipeline.config import redact_url

log = logging.getLogger("pipeline.streams")

Entry = tuple[bytes, dict[bytes, bytes]]
T = TypeVar("T")
_HOP_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class StreamsUnavailable(Exception):
    """Redis cannot be used at start (one line for the user, no credentials)."""


def connect(url: str, timeout_s: float = 3.0) -> redis.Redis:
    """A client for `url` (bytes in, bytes out) that has answered PING; raises `StreamsUnavailable`."""
    where = redact_url(url)
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=max(timeout_s, 10.0),
                                      retry=Retry(NoBackoff(), 0))
        client.ping()
    except ValueError as e:
        raise StreamsUnavailable(f"bad Redis URL {where}: {e}") from None
    except (redis.RedisError, OSError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise StreamsUnavailable(f"redis {where} unreachable: {redact_url(first)}") from None
    return client


def consumer_name(role: str) -> str:
    """Unique per process: `<role>-<host>-<pid>`."""
    return f"{role}-{socket.gethostname()}-{os.getpid()}"


def ensure_group(client: redis.Redis, stream: str, group: str) -> None:
    """Create `group` on `stream` (and the stream) reading from its start, unless it exists."""
    try:
        client.xgroup_create(stream, group, id="0", mkstream=True)
    except redis.ResponseError as e:
        if "BUSYGROUP" not in str(e):
            raise


class StreamMetrics:
    """Stream gauges and counters, registered in the worker's own `Metrics` registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.length = Gauge("itd_stream_length", "Entries in a stream (unacknowledged work)", ["stream"], registry=r)
        self.lag = Gauge("itd_stream_lag", "Entries not yet delivered to the group", ["stream", "group"], registry=r)
        self.pending = Gauge("itd_stream_pending", "Entries delivered but not acknowledged", ["stream", "group"],
                             registry=r)
        self.hop = Histogram("itd_stream_hop_seconds", "XADD to read time of stream entries", ["hop"],
                             buckets=_HOP_BUCKETS, registry=r)
        self.claimed = Counter("itd_stream_claimed", "Entries reclaimed from idle consumers", ["stream"], registry=r)
        self.duplicates = Counter("itd_stream_duplicates", "Entries dropped as already seen (camera, frame_index)",
                                  ["camera"], registry=r)
        self.skipped = Counter("itd_stream_skipped", "Frames the tracker skipped: never arrived (stream trimmed or "
                               "lost)", ["camera"], registry=r)
        self.redis_up = Gauge("itd_stream_connected", "1 while Redis answers", registry=r)


class Backoff:
    """Retries a Redis call through outages (capped exponential backoff) until it succeeds or `stop` is set."""

    def __init__(self, where: str, stop: threading.Event, metrics: StreamMetrics | None = None,
                 on_reset: Callable[[], None] | None = None) -> None:
        self.where, self.stop, self.metrics, self.on_reset = where, stop, metrics, on_reset
        self.down = False

    DELAYS = ExponentialBackoff(cap=5.0, base=0.2)

    def call(self, fn: Callable[[], T]) -> T | None:
        failures = 0
        while True:
            try:
                out = fn()
            except (redis.ConnectionError, redis.TimeoutError, OSError) as e:
                if not self.down:
                    log.warning("redis %s unreachable (%s); retrying", self.where, redact_url(str(e).splitlines()[0]))
                    self.down = True
                    if self.metrics:
                        self.metrics.redis_up.set(0)
                if self.stop.wait(self.DELAYS.compute(failures)):
                    return None
                failures += 1
                continue
            except redis.ResponseError as e:
                if "NOGROUP" not in str(e) or self.on_reset is None:
                    raise
                log.warning("redis %s lost its consumer groups (restarted empty?); recreating them", self.where)
                self.on_reset()
                continue
            if self.down:
                log.warning("redis %s reachable again", self.where)
                self.down = False
            if self.metrics:
                self.metrics.redis_up.set(1)
            return out


class GroupReader:
    """One consumer of `group` on `stream`. `read()` first reclaims entries other consumers left pending for
    longer than `claim_idle_s` (a worker that died), then reads new ones; `ack()` acknowledges and deletes.
    Entries this reader still holds (read, not acknowledged, not `release`d) are never handed out again."""

    def __init__(self, client: redis.Redis, stream: str, group: str, consumer: str, stop: threading.Event,
                 claim_idle_s: float = 5.0, metrics: StreamMetrics | None = None, where: str = "") -> None:
        self.client, self.stream, self.group, self.consumer = client, stream, group, consumer
        self.claim_idle_ms = int(claim_idle_s * 1000)
        self.metrics = metrics
        self._claim_every = max(0.2, claim_idle_s / 4)
        self._next_claim = 0.0
        self.held: set[bytes] = set()
        self.retry = Backoff(where or stream, stop, metrics, self.setup)
        self.setup()

    def setup(self) -> None:
        ensure_group(self.client, self.stream, self.group)

    def read(self, count: int, block_s: float) -> list[Entry] | None:
        """Up to `count` entries (reclaimed ones first), waiting up to `block_s` for new ones; None if stopping."""
        now = time.monotonic()
        if now >= self._next_claim:
            self._next_claim = now + self._claim_every
            claimed = self.retry.call(lambda: self._claim(count))
            if claimed is None:
                return None
            if claimed:
                self.held.update(eid for eid, _ in claimed)
                return claimed
        resp = self.retry.call(lambda: self.client.xreadgroup(
            self.group, self.consumer, {self.stream: ">"}, count=count, block=max(1, int(block_s * 1000))))
        if resp is None:
            return None
        got = [(eid, f) for _, entries in resp or [] for eid, f in entries if f]
        self.held.update(eid for eid, _ in got)
        return got

    def _claim(self, count: int) -> list[Entry]:
        out: list[Entry] = []
        start = "0-0"
        while len(out) < count:
            resp = self.client.xautoclaim(self.stream, self.group, self.consumer, self.claim_idle_ms, start,
                                          count=count - len(out))
            start, entries = resp[0], resp[1]
            deleted = resp[2] if len(resp) > 2 else []
            if deleted:  # trimmed while pending: nothing left to process
                self.client.xack(self.stream, self.group, *deleted)
            out.extend((eid, f) for eid, f in entries if f and eid not in self.held)
            if start in (b"0-0", "0-0"):
                break
        if out:
            log.warning("%s: reclaimed %d entries left pending for %.0fs by a %s worker", self.stream, len(out),
                        self.claim_idle_ms / 1000, self.group)
            if self.metrics:
                self.metrics.claimed.labels(self.stream).inc(len(out))
        return out

    def release(self, ids: list[bytes]) -> None:
        """Give up entries without acknowledging them: any consumer (this one too) reclaims them once idle."""
        self.held.difference_update(ids)

    def ack(self, ids: list[bytes]) -> None:
        """Acknowledge and delete entries (their work is done)."""
        if not ids:
            return
        self.held.difference_update(ids)

        def run() -> None:
            pipe = self.client.pipeline(transaction=False)
            pipe.xack(self.stream, self.group, *ids)
            pipe.xdel(self.stream, *ids)
            pipe.execute()

        self.retry.call(run)


class StreamWriter:
    """Appends entries to `stream`. Lossless writes wait while the work in flight (the summed length of
    `window_streams`) has reached `window`, and never trim; live writes never wait: they trim the stream to
    `maxlen`, oldest entries first, and return how many were dropped."""

    def __init__(self, client: redis.Redis, stream: str, maxlen: int, stop: threading.Event,
                 window: int | None = None, window_streams: list[str] | None = None,
                 metrics: StreamMetrics | None = None, where: str = "") -> None:
        self.client, self.stream, self.maxlen, self.stop = client, stream, maxlen, stop
        self.window = window or maxlen
        self.window_streams = window_streams or [stream]
        self.retry = Backoff(where or stream, stop, metrics)

    def in_flight(self) -> int | None:
        def run() -> int:
            pipe = self.client.pipeline(transaction=False)
            for s in self.window_streams:
                pipe.xlen(s)
            return sum(pipe.execute())
        return self.retry.call(run)

    def add(self, fields: dict[bytes, bytes], live: bool) -> int | None:
        """Append one entry; returns the number of entries trimmed (live), or None when stopped first."""
        if live:
            return self.retry.call(lambda: self._add_trimmed(fields))
        delay = 0.002
        while True:
            n = self.in_flight()
            if n is None:
                return None
            if n < self.window:
                break
            if self.stop.wait(delay):
                return None
            delay = min(delay * 2, 0.05)
        added = self.retry.call(lambda: self.client.xadd(self.stream, fields))  # bounded by the window, never trimmed
        return None if added is None else 0

    def _add_trimmed(self, fields: dict[bytes, bytes]) -> int:
        pipe = self.client.pipeline(transaction=True)  # MULTI: nobody else trims between the two calls
        pipe.xlen(self.stream)
        pipe.xadd(self.stream, fields, maxlen=self.maxlen, approximate=False)
        before, _ = pipe.execute()
        return max(0, before + 1 - self.maxlen)


def group_stats(client: redis.Redis, stream: str) -> dict[str, Any]:
    """{'length': XLEN, 'groups': {name: {'lag': .., 'pending': .., 'consumers': ..}}}."""
    pipe = client.pipeline(transaction=False)
    pipe.xlen(stream)
    pipe.xinfo_groups(stream)
    try:
        length, groups = pipe.execute()
    except redis.ResponseError:  # no such stream yet
        return {"length": 0, "groups": {}}
    out = {}
    for g in groups:
        name = g["name"].decode() if isinstance(g["name"], bytes) else g["name"]
        out[name] = {"lag": g.get("lag") or 0, "pending": g.get("pending", 0), "consumers": g.get("consumers", 0)}
    return {"length": length, "groups": out}


class StatsPoller:
    """Pushes the length, lag and pending counts of some streams to the gauges every `period_s`."""

    def __init__(self, client: redis.Redis, streams: list[str], metrics: StreamMetrics, period_s: float = 1.0) -> None:
        self.client, self.streams, self.metrics, self.period_s = client, streams, metrics, period_s
        self._next = 0.0

    def tick(self) -> None:
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + self.period_s
        for s in self.streams:
            try:
                st = group_stats(self.client, s)
            except (redis.RedisError, OSError):
                return
            self.metrics.length.labels(s).set(st["length"])
            for g, v in st["groups"].items():
                self.metrics.lag.labels(s, g).set(v["lag"])
                self.metrics.pending.labels(s, g).set(v["pending"])
