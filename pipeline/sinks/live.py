"""Live view for the console: each camera's annotated frame as a JPEG in Redis at `live.fps`, and its figures.

Keys (both with a TTL of `live.ttl_s`, so a camera whose pipeline is gone vanishes):
`<prefix>:<camera>` = JPEG bytes; `<prefix>:<camera>:info` = JSON `{"camera", "fps", "dropped", "frame_index",
"live_frame_index" (the frame the JPEG shows), "width", "height", "published_at", "metrics"}`: frames per second reaching the sinks, frames the camera delivered
that were never processed (gaps in `frame_index`), and where the run's Prometheus endpoint is.

Under `run --role track` the frames carry no pixels (the detections stream has none): figures only.
Redis down: frames are skipped (a live view has no use late), retried with capped backoff, logged once.
"""
from __future__ import annotations

import json
import logging
import time

import cv2
import numpy as np
import redis

from pipeline.config import LiveViewConfig, RedisSinkConfig, redact_url
from pipeline.frames import TrackedFrame
from pipeline.sinks.base import Sink
from pipeline.sinks.redis_sink import RETRY, make_client
from pipeline.sinks.video import Annotator

log = logging.getLogger("pipeline.sinks.live")

TRAIL = 30  # frames of trail behind each track, as in the video sink's default


class _CameraFigures:
    """Frames per second at the sink (over about a second) and frames never processed (index gaps)."""

    def __init__(self) -> None:
        self.fps, self.dropped, self.last_index = 0.0, 0, 0
        self._count, self._since = 0, time.monotonic()
        self.next_frame_at = 0.0
        self.next_info_at = 0.0
        self.last_record: TrackedFrame | None = None
        self.live_index: int | None = None  # the frame the last published JPEG shows

    def add(self, index: int) -> None:
        if self.last_index and index > self.last_index + 1:
            self.dropped += index - self.last_index - 1
        self.last_index = index
        self._count += 1
        now = time.monotonic()
        if now - self._since >= 1.0:
            self.fps = self._count / (now - self._since)
            self._count, self._since = 0, now


class LiveViewSink(Sink):
    name = "live"

    def __init__(self, config: RedisSinkConfig, metrics=None, client: redis.Redis | None = None,
                 zones: dict[str, tuple] | None = None, threshold: float = 0.0) -> None:
        super().__init__([], metrics)
        self.live: LiveViewConfig = config.live or LiveViewConfig()
        self.client = client or make_client(config)
        self.where = redact_url(config.url)
        self.annotator = Annotator(TRAIL, zones, threshold)
        self.cameras: dict[str, _CameraFigures] = {}
        self._retry_at, self._failures, self._up = 0.0, 0, None

    def on_frame(self, record: TrackedFrame) -> None:
        cam = record.frame.camera
        fig = self.cameras.get(cam)
        if fig is None:
            fig = self.cameras[cam] = _CameraFigures()
        fig.add(record.frame.index)
        fig.last_record = record
        self.annotator.follow(record)
        now = time.monotonic()
        if now < self._retry_at:
            return
        has_pixels = record.frame.image.strides[0] != 0  # the track role of `--role` gets detections only
        frame_due = self.live.fps > 0 and has_pixels and now >= fig.next_frame_at
        if not frame_due and now < fig.next_info_at:
            return
        jpeg = None
        if frame_due:
            fig.next_frame_at = max(fig.next_frame_at + 1.0 / self.live.fps, now)
            jpeg = self._encode(self.annotator.draw(record, follow=False))
            fig.live_index = record.frame.index
        fig.next_info_at = now + 1.0
        self._send(cam, jpeg, self._info(cam, fig, record))

    def _info(self, cam: str, fig: _CameraFigures, record: TrackedFrame) -> dict:
        h, w = record.frame.image.shape[:2]
        return {"camera": cam, "fps": round(fig.fps, 2), "dropped": fig.dropped, "frame_index": fig.last_index,
                "live_frame_index": fig.live_index,
                "width": w, "height": h, "live_fps": self.live.fps, "published_at": round(time.time(), 3),
                "metrics": self._metrics_endpoint()}

    def on_end(self, camera: str) -> None:
        """The camera's last figures (those of its last frames may not have been sent, being rate-limited)."""
        self.annotator.forget(camera)
        fig = self.cameras.pop(camera, None)
        if fig is not None and fig.last_record is not None and time.monotonic() >= self._retry_at:
            self._send(camera, None, self._info(camera, fig, fig.last_record))

    def _encode(self, rgb: np.ndarray) -> bytes:
        h, w = rgb.shape[:2]
        if w > self.live.width:
            rgb = cv2.resize(rgb, (self.live.width, round(h * self.live.width / w)), interpolation=cv2.INTER_AREA)
        _, jpeg = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                               [cv2.IMWRITE_JPEG_QUALITY, self.live.quality])
        return jpeg.tobytes()

    def _metrics_endpoint(self) -> dict | None:
        endpoint = getattr(self.metrics, "endpoint", None)
        return None if endpoint is None else {"host": endpoint[0], "port": endpoint[1]}

    def _send(self, cam: str, jpeg: bytes | None, info: dict) -> None:
        ttl = int(self.live.ttl_s * 1000)
        try:
            pipe = self.client.pipeline(transaction=True)  # the JPEG and its frame number change together
            if jpeg is not None:
                pipe.set(f"{self.live.prefix}:{cam}", jpeg, px=ttl)
            pipe.set(f"{self.live.prefix}:{cam}:info", json.dumps(info), px=ttl)
            pipe.execute()
        except (redis.RedisError, OSError) as e:
            self._retry_at = time.monotonic() + RETRY.compute(self._failures)
            self._failures += 1
            if self._up is not False:
                log.warning("live view: redis %s unreachable (%s); skipping frames until it is back", self.where,
                            redact_url(str(e).splitlines()[0] if str(e) else type(e).__name__))
            self._up = False
            return
        if self._up is False:
            log.info("live view: redis %s reachable again", self.where)
        self._up, self._failures = True, 0

    def close(self) -> None:
        try:
            self.client.close()
        except Exception:  # noqa: BLE001
            pass
