"""What the console reads from Redis: the alert stream, camera health and figures, live frames and snapshots.

Key names are the Redis sink's defaults (`RedisSinkConfig`), the one place they are defined.
"""
from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from pipeline.config import LiveViewConfig, RedisSinkConfig

SNAPSHOT_ID = re.compile(r"^[A-Za-z0-9_.-]{1,200}$")
CAMERA = re.compile(r"^[A-Za-z0-9_.-]{1,200}$")
FORGET_AFTER_S = 300.0  # a finished, failed or gone camera leaves the list this long after it ended
ENDED = ("finished", "failed", "gone")


@dataclass(frozen=True)
class StreamAlert:
    """One alert of the capped stream with its stream id (the SSE event id)."""

    id: str
    alert: dict[str, Any]


def _decode(entry_id: bytes | str, fields: dict) -> StreamAlert | None:
    raw = fields.get(b"alert") or fields.get("alert")
    try:
        alert = json.loads(raw)
    except (TypeError, ValueError):
        return None
    return StreamAlert(entry_id.decode() if isinstance(entry_id, bytes) else entry_id, alert)


class ConsoleStore:
    """Async reads of the pipeline's Redis keys (no writes)."""

    def __init__(self, client: aioredis.Redis, names: RedisSinkConfig | None = None,
                 forget_after_s: float = FORGET_AFTER_S) -> None:
        self.client = client
        self.names = names or RedisSinkConfig()
        self.live: LiveViewConfig = self.names.live or LiveViewConfig()
        self.seen: set[str] = set()  # cameras met since start: a camera whose keys expired shows as gone
        self.forget_after_s = forget_after_s
        self.last: dict[str, dict[str, Any]] = {}  # each camera's last health message
        self.ended: dict[str, float] = {}  # camera -> when it ended (its status' time, else when seen gone)

    async def ping(self) -> None:
        await self.client.ping()

    async def recent(self, limit: int, camera: str | None = None, event: str | None = None) -> list[StreamAlert]:
        """Newest first, at most `limit`, filtered by camera and event."""
        out: list[StreamAlert] = []
        last = "+"
        while len(out) < limit:
            batch = await self.client.xrevrange(self.names.stream, max=last, min="-", count=max(limit, 100))
            if not batch:
                break
            for entry_id, fields in batch:
                a = _decode(entry_id, fields)
                if a and (camera is None or a.alert.get("camera") == camera) and (
                        event is None or a.alert.get("event") == event):
                    out.append(a)
                    if len(out) >= limit:
                        break
            if len(batch) < max(limit, 100):
                break
            last_id = batch[-1][0].decode() if isinstance(batch[-1][0], bytes) else batch[-1][0]
            last = "(" + last_id
        return out

    async def follow(self, cursor: str, block_ms: int) -> list[StreamAlert]:
        """Alerts after stream id `cursor` (waits up to `block_ms` for the first)."""
        resp = await self.client.xread({self.names.stream: cursor}, block=block_ms, count=200)
        out = []
        for _, entries in resp or []:
            for entry_id, fields in entries:
                a = _decode(entry_id, fields)
                out.append(a if a is not None else StreamAlert(
                    entry_id.decode() if isinstance(entry_id, bytes) else entry_id, {}))
        return out

    async def cameras(self) -> list[dict[str, Any]]:
        """Every camera with a health key or live figures, plus those seen before whose keys expired."""
        health_prefix, live_prefix = self.names.health_prefix, self.live.prefix
        names = set(self.seen)
        async for key in self.client.scan_iter(match=f"{health_prefix}:*", count=200):
            name = key.decode()[len(health_prefix) + 1:]
            if CAMERA.match(name):
                names.add(name)
        async for key in self.client.scan_iter(match=f"{live_prefix}:*:info", count=200):
            name = key.decode()[len(live_prefix) + 1:-len(":info")]
            if CAMERA.match(name):
                names.add(name)
        self.seen |= names
        ordered = sorted(names)
        if not ordered:
            return []
        pipe = self.client.pipeline(transaction=False)
        for name in ordered:
            pipe.get(f"{health_prefix}:{name}")
            pipe.get(f"{live_prefix}:{name}:info")
            pipe.exists(f"{live_prefix}:{name}")
        values = await pipe.execute()
        out, now = [], time.time()
        for i, name in enumerate(ordered):
            health, info, live = values[3 * i: 3 * i + 3]
            health = _json(health)
            info = _json(info)
            if health:
                self.last[name] = health
            elif self.last.get(name, {}).get("status") in ("finished", "failed"):
                health = self.last[name]  # its heartbeat key expired after the run ended: still finished
            status = health.get("status", "gone")
            if status in ENDED:
                ended = self.ended.setdefault(name, min(now, float(health.get("at") or now)))
                if now - ended > self.forget_after_s:
                    self.seen.discard(name)
                    continue
            else:
                self.ended.pop(name, None)
            out.append({
                "camera": name,
                "status": status,
                "reason": health.get("reason") or ("" if health else "no heartbeat from the pipeline"),
                "since": health.get("at"),
                "fps": info.get("fps"),
                "dropped": info.get("dropped"),
                "frame_index": info.get("frame_index"),
                "live_frame_index": info.get("live_frame_index"),  # the frame the live image shows
                "live": bool(live),
                "live_fps": info.get("live_fps") or self.live.fps,
                "metrics": info.get("metrics"),
                "updated_at": info.get("published_at") or health.get("updated_at"),
            })
        return out

    async def live_frame(self, camera: str) -> tuple[bytes | None, int | None]:
        """The camera's latest live JPEG and the frame number it shows (written together by the live sink)."""
        jpeg, info = await self.client.mget(f"{self.live.prefix}:{camera}", f"{self.live.prefix}:{camera}:info")
        return jpeg, _json(info).get("live_frame_index")

    async def snapshot(self, snapshot_id: str, part: str) -> bytes | None:
        """`part` is 'frame' or 'chip'."""
        return await self.client.get(f"{self.names.snapshot_prefix}:{snapshot_id}:{part}")


def _json(raw: bytes | None) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
