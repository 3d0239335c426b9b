"""Writing frames as H.264 (libx264, yuv420p, MP4 or any container PyAV knows) — the one encoder set-up
used by the sequence writer, the pipeline's annotated-video sink and the tests' clips."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


class H264Writer:
    """Frames of one size in, H.264 out. Grey (H, W) uint8 or RGB (H, W, 3) uint8 frames; odd sizes are
    cropped to even (yuv420p). `full_range`: keep grey levels 0-255 (no 16-235 squeeze); `options`: extra
    libx264 options (e.g. {"g": "25", "bf": "0", "tune": "zerolatency"} for streaming)."""

    def __init__(self, path: str | Path, fps: float, crf: int = 23, preset: str = "medium",
                 full_range: bool = False, options: dict[str, str] | None = None) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.container = av.open(str(path), "w")
        self.fps, self.full_range = Fraction(fps).limit_denominator(1001), full_range
        self.options = {"crf": str(crf), "preset": preset, **(options or {})}
        self.stream = None

    def _open(self, height: int, width: int) -> None:
        self.stream = s = self.container.add_stream("libx264", rate=self.fps)
        s.height, s.width = height - height % 2, width - width % 2
        s.pix_fmt = "yuv420p"
        if self.full_range:
            s.codec_context.color_range = 2
        s.options = self.options

    def write(self, frame: np.ndarray) -> None:
        if self.stream is None:
            self._open(*frame.shape[:2])
        s = self.stream
        frame = np.ascontiguousarray(frame[: s.height, : s.width])
        vf = av.VideoFrame.from_ndarray(frame, format="gray" if frame.ndim == 2 else "rgb24")
        vf = vf.reformat(format="yuv420p", dst_color_range=2 if self.full_range else 1)
        for packet in s.encode(vf):
            self.container.mux(packet)

    def close(self) -> None:
        try:
            if self.stream is not None:
                for packet in self.stream.encode():
                    self.container.mux(packet)
        finally:
            self.container.close()

    def __enter__(self) -> "H264Writer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
