"""Snapshots: a picture for each `new` alert (a chip around the target, enlarged and contrast-stretched, and the
reduced frame with the box) and, for each `end`, the track's best-scoring moment.

The `Snapshotter` sits between the track stage and the sinks: it sets `snapshot_url` on the alerts and sends a
`Snapshot` record ahead of the frame whose alerts point to it, so a sink stores the picture before it publishes
the alert (the Redis sink under `<snapshot_prefix>:<id>:frame|chip` with a TTL, the folder sink as files).
"""
from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

from pipeline.alerts import Alert
from pipeline.config import PipelineConfig, SnapshotConfig
from pipeline.frames import Frame, Snapshot, TrackedFrame
from pipeline.sinks.video import draw_text, text_scale, to_display
from pipeline.stages import StreamEnded

log = logging.getLogger("pipeline.snapshots")

BETTER_BY = 0.02  # an `end` gets a new picture only when the track's best score beat its `new` one by this


def _jpeg(rgb: np.ndarray, quality: int) -> bytes:
    _, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    return data.tobytes()


def stretch(a: np.ndarray) -> np.ndarray:
    """uint8 view of `a` stretched between its 1st and 99.8th percentiles (a flat area stays mid-grey)."""
    lo, hi = np.percentile(a, (1, 99.8))
    if hi - lo < 1e-6:
        return np.full(a.shape, 128, np.uint8)
    return np.clip((a.astype(np.float32) - lo) * (255.0 / (hi - lo)), 0, 255).astype(np.uint8)


def chip(image: np.ndarray, x: float, y: float, crop: int, size: int) -> np.ndarray:
    """The `crop` x `crop` area centred on (x, y) (edges replicated past the border), stretched, enlarged to
    `size` x `size` with visible pixels (RGB)."""
    h, w = image.shape[:2]
    x0, y0 = int(round(x)) - crop // 2, int(round(y)) - crop // 2
    ys = np.clip(np.arange(y0, y0 + crop), 0, h - 1)
    xs = np.clip(np.arange(x0, x0 + crop), 0, w - 1)
    big = cv2.resize(stretch(image[np.ix_(ys, xs)]), (size, size), interpolation=cv2.INTER_NEAREST)
    return cv2.cvtColor(big, cv2.COLOR_GRAY2RGB)


def reduced_frame(image: np.ndarray, x: float, y: float, bw: float, bh: float, width: int, label: str
                  ) -> np.ndarray:
    """The frame reduced to at most `width` px wide (RGB), with a box around the target and its label."""
    pic = to_display(image)
    scale = min(1.0, width / pic.shape[1])
    if scale < 1.0:
        pic = cv2.resize(pic, (round(pic.shape[1] * scale), round(pic.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    pic = cv2.cvtColor(pic, cv2.COLOR_GRAY2RGB)
    half_w = max((bw or 0) * scale / 2 + 4, 7)
    half_h = max((bh or 0) * scale / 2 + 4, 7)
    cx, cy = x * scale, y * scale
    cv2.rectangle(pic, (round(cx - half_w), round(cy - half_h)), (round(cx + half_w), round(cy + half_h)),
                  (255, 220, 0), 2)
    draw_text(pic, label, (round(cx + half_w + 3), round(cy - half_h + 8)), (255, 220, 0), text_scale(pic.shape[1]))
    return pic


def with_snapshot(alert: Alert, url: str | None) -> Alert:
    return alert.model_copy(update={"snapshot_url": url})


@dataclass
class _Moment:
    """Where a track was seen best: its score, frame and box."""

    score: float
    frame: Frame
    x: float
    y: float
    w: float
    h: float


class Snapshotter:
    """Turns each record for the sinks into `[Snapshot..., record with snapshot_url on its alerts]`."""

    def __init__(self, config: SnapshotConfig, url_of: Callable[[str], str]) -> None:
        self.config, self.url_of = config, url_of
        self.run = secrets.token_hex(3)
        self.stored: dict[tuple[str, int], tuple[str, float]] = {}  # (camera, track) -> (url, score) of its picture
        self.best: dict[tuple[str, int], _Moment] = {}

    @classmethod
    def for_run(cls, config: PipelineConfig) -> "Snapshotter | None":
        """The run's snapshotter: Redis when the Redis sink is on, else `snapshots.folder`; None when off."""
        s = config.snapshots
        if not s.enabled:
            return None
        if config.sinks.redis is not None:
            return cls(s, lambda sid: f"/snapshots/{sid}")
        if s.folder is not None:
            folder = Path(s.folder).resolve()
            return cls(s, lambda sid: (folder / f"{sid}.jpg").as_uri())
        log.info("snapshots: no Redis sink and no snapshots.folder, so none are taken")
        return None

    def __call__(self, record: Any) -> list[Any]:
        if isinstance(record, TrackedFrame):
            return self._frame(record)
        if isinstance(record, StreamEnded):
            out = self._alerts(record.camera, record.alerts, None)
            for key in [k for k in (*self.best, *self.stored) if k[0] == record.camera]:
                self.best.pop(key, None)
                self.stored.pop(key, None)
            return [*out[0], StreamEnded(record.camera, out[1], record.error)]
        return [record]

    def _frame(self, record: TrackedFrame) -> list[Any]:
        cam = record.frame.camera
        seen = record.tracks[record.tracks.misses == 0]
        for tid, score, (x, y), (w, h) in zip(seen.track_id.tolist(), seen.score.tolist(), seen.xy.tolist(),
                                              seen.wh.tolist()):
            best = self.best.get((cam, tid))
            if best is None or score > best.score:
                self.best[(cam, tid)] = _Moment(score, record.frame, x, y, w, h)
        if not record.alerts:
            return [record]
        snaps, alerts = self._alerts(cam, record.alerts, record.frame)
        return [*snaps, replace(record, alerts=alerts)]

    def _alerts(self, cam: str, alerts: list[Alert], frame: Frame | None) -> tuple[list[Snapshot], list[Alert]]:
        snaps, out = [], []
        for a in alerts:
            key, event, url = (cam, a.track_id), a.event, None
            if event == "new" and frame is not None:
                snap = self.take(frame, a.x, a.y, a.w, a.h, a.track_id)
                snaps.append(snap)
                url = self.url_of(snap.id)
                self.stored[key] = (url, a.score)
            elif event == "end":
                best, stored = self.best.pop(key, None), self.stored.pop(key, None)
                if best is not None and (stored is None or best.score > stored[1] + BETTER_BY):
                    snap = self.take(best.frame, best.x, best.y, best.w, best.h, a.track_id)
                    snaps.append(snap)
                    url = self.url_of(snap.id)
                elif stored is not None:
                    url = stored[0]
            else:
                url = self.stored.get(key, (None,))[0]
            out.append(with_snapshot(a, url))
        return snaps, out

    def take(self, frame: Frame, x: float, y: float, w: float | None, h: float | None, track_id: int) -> Snapshot:
        """Encode the snapshot of track `track_id` at (x, y) in `frame`."""
        c = self.config
        crop = max(c.chip_crop, int(2 * max(w or 0, h or 0)) + 8)
        sid = f"{frame.camera}-{track_id}-{frame.index}-{self.run}"
        return Snapshot(
            id=sid, camera=frame.camera, ttl_s=c.ttl_s,
            frame_jpeg=_jpeg(reduced_frame(frame.image, x, y, w or 0, h or 0, c.frame_width, f"#{track_id}"),
                             c.quality),
            chip_jpeg=_jpeg(chip(frame.image, x, y, crop, c.chip_size), c.quality))
