"""Annotated MP4 per camera (H.264 via PyAV): detections as red points, tracks as green rings with ids and trails,
mask polygons in grey and include zones in blue."""
from __future__ import annotations

import logging
from collections import defaultdict, deque
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from pipeline.config import VideoSinkConfig
from pipeline.frames import TrackedFrame
from pipeline.sinks.base import Sink
from tracking.h264 import H264Writer

log = logging.getLogger("pipeline.sinks.video")


def to_display(image: np.ndarray) -> np.ndarray:
    """8-bit view of a grey frame (16-bit frames stretched between their 1st and 99.9th percentiles)."""
    if image.dtype == np.uint8:
        return image
    lo, hi = np.percentile(image, (1, 99.9))
    scale = 255.0 / max(float(hi - lo), 1.0)
    return np.clip((image.astype(np.float32) - lo) * scale, 0, 255).astype(np.uint8)


class VideoSink(Sink):
    name = "video"

    def __init__(self, config: VideoSinkConfig, camera_fps: dict[str, float | None], metrics=None,
                 zones: dict[str, tuple] | None = None) -> None:
        super().__init__([], metrics)
        self.config, self.camera_fps = config, camera_fps
        self.zones = zones or {}  # camera -> (exclusion polygons, include polygons or None)
        self.writers: dict[str, H264Writer] = {}
        self.trails: dict[str, dict[int, deque]] = defaultdict(dict)

    def on_frame(self, record: TrackedFrame) -> None:
        cam = record.frame.camera
        if self.config.cameras is not None and cam not in self.config.cameras:
            return
        image = record.frame.image
        writer = self.writers.get(cam)
        if writer is None:
            path = Path(self.config.path.replace("{camera}", cam))
            fps = self.config.fps or self.camera_fps.get(cam) or 25.0
            writer = self.writers[cam] = H264Writer(path, fps, crf=23, preset="veryfast")
            log.info("camera %s: writing annotated video to %s", cam, path)
        canvas = Image.fromarray(to_display(image)).convert("RGB")
        draw = ImageDraw.Draw(canvas)
        exclude, include = self.zones.get(cam, ([], None))
        for poly in include or []:  # include zones in blue, masks in grey
            draw.polygon([tuple(p) for p in poly], outline=(60, 140, 255))
        for poly in exclude:
            draw.polygon([tuple(p) for p in poly], outline=(150, 150, 150))
        for x, y in record.detections.xy:
            draw.ellipse((x - 1.5, y - 1.5, x + 1.5, y + 1.5), outline=(255, 40, 40))
        trails = self.trails[cam]
        live = set()
        for t in record.tracks:
            live.add(t.id)
            trail = trails.setdefault(t.id, deque(maxlen=max(1, self.config.trail)))
            trail.append((float(t.x), float(t.y)))
            if self.config.trail and len(trail) > 1:
                draw.line(list(trail), fill=(255, 200, 0), width=1)
            draw.ellipse((t.x - 5, t.y - 5, t.x + 5, t.y + 5), outline=(40, 255, 40))
            draw.text((t.x + 7, t.y - 7), str(t.id), fill=(40, 255, 40))
        for tid in [k for k in trails if k not in live]:
            del trails[tid]
        writer.write(np.asarray(canvas))

    def on_end(self, camera: str) -> None:
        writer = self.writers.pop(camera, None)
        if writer is not None:
            writer.close()
        self.trails.pop(camera, None)

    def close(self) -> None:
        for cam in list(self.writers):
            self.on_end(cam)
