"""Annotated MP4 per camera (H.264 via PyAV): detections as red points, tracks as green rings with ids and trails,
mask polygons in grey and include zones in blue.

Drawn with OpenCV: 3.8x faster than the PIL drawing it replaced (0.44 vs 1.67 ms per 640x512 frame with 20
detections and 5 tracks with 30-point trails, medians of 200 interleaved runs, in one run on a shared
2-core CPU)."""
from __future__ import annotations

import logging
from collections import defaultdict, deque
from pathlib import Path

import cv2
import numpy as np

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
        canvas = cv2.cvtColor(to_display(image), cv2.COLOR_GRAY2RGB)
        exclude, include = self.zones.get(cam, ([], None))
        for polys, colour in ((include or [], (60, 140, 255)), (exclude, (150, 150, 150))):  # include blue, masks grey
            if polys:
                cv2.polylines(canvas, [np.rint(np.asarray(p, float)).astype(np.int32) for p in polys], True, colour, 1)
        for x, y in np.rint(record.detections.xy).astype(int):
            cv2.circle(canvas, (int(x), int(y)), 2, (255, 40, 40), 1)
        trails = self.trails[cam]
        live = set()
        for t in record.tracks:
            live.add(t.id)
            trail = trails.setdefault(t.id, deque(maxlen=max(1, self.config.trail)))
            trail.append((float(t.x), float(t.y)))
            if self.config.trail and len(trail) > 1:
                cv2.polylines(canvas, [np.rint(np.array(trail)).astype(np.int32)], False, (255, 200, 0), 1)
            x, y = round(t.x), round(t.y)
            cv2.circle(canvas, (x, y), 5, (40, 255, 40), 1)
            cv2.putText(canvas, str(t.id), (x + 7, y + 4), cv2.FONT_HERSHEY_PLAIN, 0.8, (40, 255, 40), 1)
        for tid in [k for k in trails if k not in live]:
            del trails[tid]
        writer.write(canvas)

    def on_end(self, camera: str) -> None:
        writer = self.writers.pop(camera, None)
        if writer is not None:
            writer.close()
        self.trails.pop(camera, None)

    def close(self) -> None:
        for cam in list(self.writers):
            self.on_end(cam)
