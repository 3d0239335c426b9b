"""The records that flow one way through the graph: Frame -> DetectedFrame -> TrackedFrame, plus markers."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from detector.detections import Detections
from pipeline.alerts import Alert
from tracking.egomotion import SceneOffset
from tracking.tracks import Tracks


@dataclass(frozen=True, eq=False)
class Frame:
    """One decoded grey frame (uint8 or uint16, 2-D) with its provenance.

    `index` counts every frame the camera delivered in this run, from 1 (gaps mean frames were dropped);
    `pts` is the stream timestamp in seconds (None when the source has none); `captured_at` the wall-clock
    Unix time it was received; `timestamp` the monotonic time the tracker sees (pts for lossless sources,
    `captured_at` for live ones, whose pts resets on reconnect). `timings` collects the seconds each stage
    spent on this frame (decode, ego_motion, motion, queue_wait, inference, peaks, track), carried downstream.
    `motion` is computed by the camera's reader when the detector's weights take the motion input: the reader
    sees every frame of its camera in order, so the residual is the same whichever frames are later dropped
    and whichever detect worker (or machine) runs the model.
    """

    camera: str
    index: int
    pts: float | None
    captured_at: float
    timestamp: float
    image: np.ndarray
    scene: SceneOffset | None = None  # ego-motion: scene offset since the camera's first frame, px
    timings: dict[str, float] = field(default_factory=dict)
    motion: np.ndarray | None = None  # the detector's motion residual (`detector.motion`), int16; None: none

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)."""
        return int(self.image.shape[1]), int(self.image.shape[0])


@dataclass(frozen=True, eq=False)
class DetectedFrame:
    frame: Frame
    detections: Detections
    timings: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class TrackedFrame:
    """A frame after tracking: its detections, the alerts it produced and the confirmed live tracks."""

    frame: Frame
    detections: Detections
    alerts: list[Alert]
    tracks: Tracks
    timings: dict[str, float] = field(default_factory=dict)  # per stage, seconds (see `Frame`)


@dataclass(frozen=True)
class EndOfStream:
    """The camera will send no more frames (finished, stopped or failed)."""

    camera: str
    last_index: int = 0
    timestamp: float = 0.0
    error: str | None = None


@dataclass(frozen=True)
class StatusEvent:
    """A camera changed status: online, offline, reconnecting, finished or failed."""

    camera: str
    status: str
    reason: str
    at: float


@dataclass(frozen=True)
class Snapshot:
    """The pictures of one alert (`pipeline.snapshots`): reduced frame with the box and the target's chip, JPEG.
    Sent to the sinks ahead of the record whose alerts carry its `snapshot_url`; `id` is unique across runs."""

    id: str
    camera: str
    frame_jpeg: bytes
    chip_jpeg: bytes
    ttl_s: float
