"""Tiny-target heatmap detector: centroid-aware asymmetric Gaussian encoding and GFKL loss."""
from .detections import Detections
from .errors import DetectorError
from .predict import Detector

__all__ = ["Detections", "Detector", "DetectorError"]
