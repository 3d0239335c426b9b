"""`TrackerConfig`: every tracker parameter in one validated pydantic model (YAML key `tracker:`)."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class TrackerConfig(BaseModel):
    """Parameters of the multi-target point tracker. Units: pixels and frames."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Detections
    high_score: float = Field(0.5, ge=0.0, le=1.0,
                              description="Detections scoring at least this are associated first and may start tracks.")
    low_score: float = Field(0.1, ge=0.0, le=1.0,
                             description="Detections between low_score and high_score only extend existing tracks "
                                         "(second pass, dim targets); lower scores are ignored.")
    # Kalman filter (constant velocity, white-noise acceleration)
    measurement_std: float = Field(0.5, gt=0.0, le=20.0, description="Std of a point target's centroid, px.")
    extent_std: float = Field(0.2, ge=0.0, le=2.0,
                              description="Std of an extended target's detections as a share of its (smoothed) box "
                                          "size: the detector's peak wanders over a helicopter or a near drone.")
    duplicate_extent: float = Field(2.0, ge=0.0, le=10.0,
                                    description="A high-score detection within this many box extents (centroid "
                                                "to edge, the larger of the two facing each other) of one that a "
                                                "track took (or of a better new one) is a second peak on the same "
                                                "object and starts no track (0: off).")
    process_std: float = Field(0.3, gt=0.0, le=20.0, description="Std of the random acceleration, px/frame^2.")
    init_velocity_std: float = Field(4.0, gt=0.0, le=100.0,
                                     description="Std of the unknown velocity of a new track, px/frame.")
    # Gating and association
    gate_probability: float = Field(0.99, gt=0.5, lt=1.0,
                                    description="Chi-square (2 dof) probability of the gate for high-score "
                                                "detections (0.99 -> squared Mahalanobis 9.21).")
    low_gate_probability: float = Field(0.95, gt=0.5, lt=1.0,
                                        description="Chi-square probability of the tighter gate of the low-score pass.")
    max_speed: float = Field(10.0, gt=0.0, le=200.0,
                             description="Fastest plausible target, px/frame; faster tracks may not alert.")
    # Track life
    confirm_hits: int = Field(3, ge=1, le=50,
                              description="M of M-of-N: hits needed within the last confirm_window frames.")
    confirm_window: int = Field(5, ge=1, le=50,
                                description="N of M-of-N: the window of processed frames in which confirm_hits are "
                                            "counted (frames dropped before detection do not count).")
    confirm_score: float = Field(0.6, ge=0.0, le=1.0,
                                 description="Mean detection score over the track's latest motion_window hits "
                                             "needed to confirm: weak clutter that the low-score pass keeps alive "
                                             "does not alert.")
    max_misses: int = Field(5, ge=0, le=1000,
                            description="A confirmed track coasts this many consecutive processed frames without a "
                                        "detection, then ends.")
    max_tracks: int = Field(500, ge=1, le=100000,
                            description="Cap on live tracks (tentative included); extra new detections are ignored.")
    edge_margin: float = Field(3.0, ge=0.0, le=100.0,
                               description="A track lost within this many px of the frame edge ends as 'left_view' "
                                           "(else 'lost').")
    # Motion check before alerting
    min_displacement: float = Field(2.0, ge=0.0, le=1000.0,
                                    description="Net motion (px) over the motion window needed before a track may "
                                                "alert; rejects hot pixels and static clutter.")
    motion_window: int = Field(15, ge=2, le=500,
                               description="Number of latest hits used for the motion check (a fast target).")
    slow_motion_window: int = Field(90, ge=2, le=5000,
                                    description="A second, longer window of latest hits for the motion check: a "
                                                "slow target (a distant aircraft, 0.05-0.2 px/frame) moves "
                                                "min_displacement only over many frames.")
    min_motion_hits: int = Field(4, ge=2, le=500,
                                 description="Hits needed in the motion window before the motion check can pass.")
    max_motion_residual: float = Field(1.0, gt=0.0, le=100.0,
                                       description="RMS distance (px) of the hits from a straight constant-velocity "
                                                   "path allowed for the motion check (an extended target: twice "
                                                   "its measurement std, if more).")
    motion_alpha: float = Field(1e-3, gt=0.0, lt=0.5,
                                description="Chance that a static point with jittering detections passes the "
                                            "motion-significance test at one check.")
    # Confirmation without image-plane motion: a new object where the scene had nothing
    novelty_frames: int = Field(30, ge=0, le=100000,
                                description="A track is new to the scene when no high-score detection came within "
                                            "~6 px of where it started, on the sensor and in the scene, during the "
                                            "camera's previous novelty_frames frames (and the camera had been "
                                            "watched that long). 0: every track must move to alert.")
    novelty_score: float = Field(0.3, ge=0.0, le=1.0,
                                 description="Detections scoring at least this mark their place as seen: static "
                                             "clutter whose score hovers about high_score is not new when it "
                                             "crosses it.")
    novel_hits: int = Field(10, ge=1, le=500,
                            description="Hits a track new to the scene needs (and confirm_hits of the last "
                                        "confirm_window) to alert without moving; places where detections are "
                                        "always present (hot pixels, static clutter, OSD text) are never new.")
    # Events
    update_interval: int = Field(10, ge=0, le=100000,
                                 description="Frames between 'update' events of a track (0: no update events).")
    box_smoothing: float = Field(0.3, gt=0.0, le=1.0,
                                 description="Weight of a new detection in the exponential average of the box "
                                             "extents (centroid to each edge).")

    def fed_by(self, detector_threshold: float) -> "TrackerConfig":
        """This config fed by a detector whose operating threshold is `detector_threshold` (ByteTrack style).

        The detector reports everything down to `low_score`; unless `high_score` was set explicitly, the
        detector's own threshold becomes `high_score`, so only what the detector would report starts tracks.
        """
        if "high_score" in self.model_fields_set:
            return self
        return self.model_copy(update={"high_score": max(self.low_score, min(1.0, float(detector_threshold)))})

    @model_validator(mode="after")
    def _check(self) -> "TrackerConfig":
        if self.low_score > self.high_score:
            raise ValueError(f"low_score ({self.low_score}) must not exceed high_score ({self.high_score})")
        if self.confirm_hits > self.confirm_window:
            raise ValueError(f"confirm_hits ({self.confirm_hits}) must not exceed confirm_window "
                             f"({self.confirm_window})")
        if self.min_motion_hits > self.motion_window:
            raise ValueError("min_motion_hits must not exceed motion_window")
        if self.low_gate_probability > self.gate_probability:
            raise ValueError("low_gate_probability must not exceed gate_probability")
        return self


def config_error_line(exc: Exception) -> str:
    """One line describing a pydantic `ValidationError` (for CLIs)."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        parts = []
        for e in errors():
            loc = ".".join(str(p) for p in e.get("loc", ())) or "tracker"
            parts.append(f"{loc}: {e.get('msg', '')}")
        return "invalid tracker config: " + "; ".join(parts)
    return f"invalid tracker config: {exc}"
