"""Follow tiny point detections from frame to frame, decide which are real targets, and measure it."""
from .config import TrackerConfig
from .events import TrackEvent
from .tracker import Tracker
from .tracks import Tracks

__all__ = ["Tracker", "TrackerConfig", "TrackEvent", "Tracks"]
