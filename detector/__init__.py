"""Tiny-target heatmap detector: centroid-aware asymmetric Gaussian encoding and GFKL loss.

`Detector` (and with it torch) is imported on first use, so that the torch-free parts (`detections`,
`imageio`, `checkpoint.read_meta`) serve processes without a model, such as the ingest role.
"""
from .detections import Detections
from .errors import DetectorError

__all__ = ["Detections", "Detector", "DetectorError"]


def __getattr__(name: str):
    if name == "Detector":
        from .predict import Detector

        return Detector
    raise AttributeError(f"module 'detector' has no attribute {name!r}")
