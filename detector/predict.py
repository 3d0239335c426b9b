"""The Python API: load a detector once, call it on frames, get sub-pixel points with box and score."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from .checkpoint import load_checkpoint
from .detections import Detections
from .errors import DetectorError
from .imageio import checkpoint_noise_floor
from .inference import run
from .runtime import make_runner

if TYPE_CHECKING:
    from .motion import MotionBackground


def pick_device(device: str = "auto") -> torch.device:
    """'auto' -> CUDA when present, else CPU; 'cpu', 'cuda', 'cuda:N' as given."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise DetectorError(f"unknown device {device!r}; use auto, cpu or cuda[:N]") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DetectorError(f"device {device!r} asked for, but CUDA is not available here")
    return dev


class Detector:
    """A loaded model with its preprocessing and operating threshold.

    >>> det = Detector.load()            # shipped default weights (variant 'fast')
    >>> dets = det.predict(frame)        # Detections: xy centroids, ltrb box extents, score

    `runtime` ('auto': ONNX Runtime on a CPU, torch on CUDA) and `precision` ('auto': fp32 on a CPU, fp16
    on CUDA; 'int8': the checkpoint's calibrated int8 model, `detector.quantize`) choose how the model runs; `model` stays the trained torch module (training, evaluation).
    """

    def __init__(self, model: torch.nn.Module, meta: dict, device: torch.device, threshold: float | None = None,
                 top_k: int = 100, runtime: str = "auto", precision: str = "auto", threads: int | None = None
                 ) -> None:
        self.model = model.to(device).eval()
        self.runner, self.runtime, self.precision = make_runner(self.model, device, runtime, precision, threads,
                                                                meta.get("path"))
        self.meta = meta
        self.device = device
        self.variant: str = meta["variant"]
        self.stride: int = int(meta.get("stride", 2))
        self.multiple: int = int(meta.get("preprocessing", {}).get("pad_multiple", 32))
        self.noise_floor: float = checkpoint_noise_floor(meta)
        self.operating_threshold: float = float(meta.get("threshold", 0.5))  # chosen on val, in the checkpoint
        self.threshold: float = self.operating_threshold if threshold is None else float(threshold)
        self.top_k = top_k
        self.channels: int = int(meta.get("preprocessing", {}).get("channels", 1))
        self.motion_params: dict | None = meta.get("preprocessing", {}).get("motion") if self.channels > 1 else None

    @property
    def takes_motion(self) -> bool:
        """Whether the weights take the motion input (frame + residual) besides the frame."""
        return self.motion_params is not None

    def motion_background(self) -> "MotionBackground | None":
        """A fresh per-camera background for this detector's motion input (None: frame-only weights)."""
        from .motion import MotionBackground

        return MotionBackground.from_meta(self.motion_params) if self.takes_motion else None

    @classmethod
    def load(cls, weights: str | Path | None = None, device: str = "auto", threshold: float | None = None,
             runtime: str = "auto", precision: str = "auto", threads: int | None = None) -> "Detector":
        """weights: a checkpoint path, a shipped variant name ('fast', 'hrnet'), or None for the default."""
        model, meta = load_checkpoint(weights)
        return cls(model, meta, pick_device(device), threshold, runtime=runtime, precision=precision,
                   threads=threads)

    def predict(self, frame: np.ndarray) -> Detections:
        return self.predict_batch([frame])[0]

    def predict_batch(self, frames: list[np.ndarray], timings: dict | None = None, threshold: float | None = None,
                      motion: list[np.ndarray | None] | None = None) -> list[Detections]:
        """Detect in several frames (any sizes, 8/16-bit grey or colour) in one forward pass; `threshold`
        overrides the operating one (a tracker's `low_score`); `motion`: each frame's residual from its
        camera's `motion_background()` (None, or a None entry: no motion input for that frame)."""
        if not frames:
            return []
        thr = self.threshold if threshold is None else threshold
        return run(self.runner, list(frames), self.stride, self.multiple, thr, self.device, self.top_k, timings,
                   self.noise_floor, suppress_from=self.operating_threshold, motion=motion, channels=self.channels)
