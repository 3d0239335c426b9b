"""Multi-target point tracker: CV Kalman filters, chi-square gates, two-pass Hungarian association
(high- then low-score detections), M-of-N confirmation, coasting, deletion after misses, and `new` / `update`
/ `end` events. One `Tracker` per camera.

A confirmed track alerts when it moves consistently (on the sensor and against the background), or when it
appeared where the scene had nothing before (`SceneHistory`) and persists: so a hovering helicopter or an
aircraft flying at the camera alerts, while hot pixels, OSD text and static clutter, whose places always hold
detections, never do."""
from __future__ import annotations

from collections import deque
from functools import lru_cache
from typing import TYPE_CHECKING, Callable, Optional

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.stats import chi2, f

from . import kalman
from .config import TrackerConfig
from .events import EndReason, TrackEvent
from .tracks import Tracks

if TYPE_CHECKING:  # types only
    from detector.detections import Detections
    from .egomotion import SceneOffset

_BIG = 1e9
_CELL = 4.0  # px: grid of the scene history; a place is its cell and the 8 around it (~4-8 px)


class SceneHistory:
    """When a high-score detection last fell in each 4 px cell, on the sensor and in the scene (sensor
    position minus the cumulative background shift). A place is new when neither grid had a detection within
    a cell of it during the last `frames` frames, and the camera has been watched that long."""

    def __init__(self, frames: int) -> None:
        self.frames = frames
        self.sensor: dict[tuple[int, int], int] = {}
        self.scene: dict[tuple[int, int], int] = {}
        self.first: Optional[int] = None

    @staticmethod
    def _cells(xy: np.ndarray) -> np.ndarray:
        return np.floor(np.asarray(xy, float).reshape(-1, 2) / _CELL).astype(np.int64)

    def is_new(self, xy: np.ndarray, shift: np.ndarray, frame: int) -> bool:
        if self.frames == 0 or self.first is None or frame - self.first < self.frames:
            return False
        since = frame - self.frames
        for grid, p in ((self.sensor, xy), (self.scene, np.asarray(xy) - shift)):
            cx, cy = self._cells(p)[0]
            for dx in (-1, 0, 1):
                for dy in (-1, 0, 1):
                    if grid.get((int(cx + dx), int(cy + dy)), -1) >= since:
                        return False
        return True

    def restart(self) -> None:
        """The view jumped (a slew too fast to measure): what was seen says nothing about the new view."""
        self.sensor.clear()
        self.scene.clear()
        self.first = None

    def add(self, xy: np.ndarray, shift: np.ndarray, frame: int) -> None:
        if self.first is None:
            self.first = frame
        for grid, p in ((self.sensor, xy), (self.scene, np.asarray(xy) - shift)):
            for cx, cy in self._cells(p).tolist():
                grid[(cx, cy)] = frame
        if frame % 256 == 0:  # forget what is too old to matter: memory stays bounded on a slewing camera
            for grid in (self.sensor, self.scene):
                for k in [k for k, v in grid.items() if v < frame - self.frames]:
                    del grid[k]


class _Track:
    """Internal track: tentative until M-of-N hits and the motion check pass, then confirmed with a public id."""

    def __init__(self, z: np.ndarray, ltrb: np.ndarray, score: float, frame: int, shift: np.ndarray,
                 cfg: TrackerConfig) -> None:
        self.kf = kalman.make_filter(float(z[0]), float(z[1]), cfg.measurement_std, cfg.init_velocity_std)
        self.id: Optional[int] = None
        self.hit_window: deque[bool] = deque([True], maxlen=cfg.confirm_window)
        # (frame, x, y, cumulative background shift x, y) of the latest hits, for the motion check
        self.path: deque[tuple[float, float, float, float, float]] = deque(
            maxlen=max(cfg.motion_window, cfg.slow_motion_window))
        self.path.append((frame, float(z[0]), float(z[1]), float(shift[0]), float(shift[1])))
        self.scores: deque[float] = deque([float(score)], maxlen=cfg.motion_window)
        self.hits, self.misses = 1, 0
        self.first_frame = self.last_frame = frame
        self.score = self.top_score = float(score)
        self.ltrb = np.asarray(ltrb, float).copy()  # box extents about the centroid, smoothed over the hits
        self.last_event_frame = frame
        self.last_hit_state = self.kf.x.copy()
        self.new_to_scene = False  # set by the tracker from its `SceneHistory` when the track starts
        self.kf.R = np.eye(2) * self.measurement_var(cfg)
        self.kf.P[:2, :2] = self.kf.R

    @property
    def confirmed(self) -> bool:
        return self.id is not None

    @property
    def wh(self) -> np.ndarray:
        return self.ltrb[:2] + self.ltrb[2:]

    def hit(self, z: np.ndarray, ltrb: np.ndarray, score: float, frame: int, shift: np.ndarray,
            cfg: TrackerConfig) -> None:
        self.kf.update(np.asarray(z, float))
        self.hit_window.append(True)
        self.path.append((frame, float(z[0]), float(z[1]), float(shift[0]), float(shift[1])))
        self.scores.append(float(score))
        self.hits += 1
        self.misses = 0
        self.last_frame = frame
        self.score = float(score)
        self.top_score = max(self.top_score, self.score)
        a = cfg.box_smoothing
        self.ltrb = (1 - a) * self.ltrb + a * np.asarray(ltrb, float)
        self.kf.R = np.eye(2) * self.measurement_var(cfg)
        self.last_hit_state = self.kf.x.copy()

    def measurement_var(self, cfg: TrackerConfig) -> float:
        """Variance of this track's detections: an extended target's peak wanders over its extent."""
        return max(cfg.measurement_std, cfg.extent_std * float(max(self.wh))) ** 2

    def miss(self, n: int = 1) -> None:
        self.hit_window.extend([False] * n)
        self.misses += n

    def motion_ok(self, cfg: TrackerConfig, threshold: Callable[[int], float]) -> bool:
        """True when the latest `motion_window` hits (a fast target), or the latest `slow_motion_window` hits (a
        slow one: a distant aircraft, checked only while the view stayed still), move along a straight path, far enough and significantly, both on the
        sensor and against the background (hot pixels are static on the sensor, clutter in the scene)."""
        n = len(self.path)
        if n < max(3, cfg.min_motion_hits):
            return False
        p = np.asarray(self.path)
        spans = {min(n, cfg.motion_window)}
        slow = min(n, cfg.slow_motion_window)
        if float(np.hypot(*(p[-1, 3:5] - p[-slow, 3:5]))) < cfg.min_displacement:
            spans.add(slow)  # only on a still view: the error of a measured shift adds up over a long window
        limit = max(cfg.max_motion_residual, 2.0 * float(np.sqrt(self.measurement_var(cfg))))
        return any(m >= max(3, cfg.min_motion_hits) and _moves(p[-m:], cfg, limit, threshold) for m in spans)

    def speed_ok(self, cfg: TrackerConfig) -> bool:
        return float(np.hypot(*self.kf.x[2:])) <= cfg.max_speed


def _moves(p: np.ndarray, cfg: TrackerConfig, max_residual: float, threshold: Callable[[int], float]) -> bool:
    """The hits `p` (frame, x, y, background shift x, y) move along a straight path on the sensor and against
    the background, far enough and significantly.

    Far enough: the mean of the last k hits lies `min_displacement` px from the mean of the first k
    (k = n // 3, 1 to 3), which a detector's jumps between grid positions on static clutter do not reach.
    Straight: the RMS distance of the hits from the fitted constant-velocity path is at most `max_residual`.
    Significantly: for the fitted velocity v and the scatter s of the hits about the line,
    |v|^2 * sum((t - mean t)^2) / s^2 >= `threshold(n)` (2 x the F(2, 2(n-2)) quantile of
    1 - motion_alpha), so a static point whose detections merely jitter rarely passes."""
    n = len(p)
    t = p[:, 0] - p[:, 0].mean()
    stt = float(t @ t)
    k = min(3, max(1, n // 3))
    for xy in (p[:, 1:3], p[:, 1:3] - p[:, 3:5]):
        v = t @ (xy - xy.mean(axis=0)) / stt
        resid = xy - xy.mean(axis=0) - np.outer(t, v)
        rss = float(np.sum(resid**2))
        speed = float(np.hypot(*v))
        s2 = max(rss / (2 * (n - 2)), cfg.measurement_std**2)
        moved = float(np.hypot(*(xy[-k:].mean(axis=0) - xy[:k].mean(axis=0))))
        if (moved < cfg.min_displacement or speed > cfg.max_speed
                or np.sqrt(rss / n) > max_residual or speed**2 * stt / s2 < threshold(n)):
            return False
    return True


class Tracker:
    """Multi-target tracker of point detections for one camera.

    `update()` once per frame with that frame's `Detections`; it returns the events of that frame in a
    deterministic order (`end`, then `new`, then `update`; each by track id). Only confirmed tracks get ids
    (1, 2, ... never reused) and events. Dead tracks are dropped, so memory stays bounded.
    """

    def __init__(self, config: TrackerConfig | None = None, frame_size: tuple[int, int] | None = None) -> None:
        self.config = config or TrackerConfig()
        self.frame_size = frame_size
        self._gate = float(chi2.ppf(self.config.gate_probability, 2))
        self._low_gate = float(chi2.ppf(self.config.low_gate_probability, 2))
        self._tracks: list[_Track] = []
        self._next_id = 1
        self._last_frame: Optional[int] = None
        self._shift = np.zeros(2)  # cumulative background motion, px
        self._history = SceneHistory(self.config.novelty_frames)
        alpha = self.config.motion_alpha
        self._motion_threshold = lru_cache(maxsize=None)(lambda n: 2.0 * float(f.ppf(1.0 - alpha, 2, 2 * (n - 2))))

    # ---------------------------------------------------------------- public API
    def update(self, detections: Detections | None, frame_index: int, timestamp: float,
               scene: SceneOffset | None = None) -> list[TrackEvent]:
        """Feed one frame; return its events. `scene`: how far the background has moved since the camera's
        first frame (`tracking.egomotion.SceneMotion`), when the caller measures it; None: a still camera.
        While it is not `measured` (a slew too fast to measure) no track is confirmed, and what tentative
        tracks had seen of their motion and of the scene is forgotten."""
        cfg = self.config
        frame_index = int(frame_index)
        if self._last_frame is not None and frame_index <= self._last_frame:
            raise ValueError(f"frame_index must increase: got {frame_index} after {self._last_frame}")
        dt = 1 if self._last_frame is None else frame_index - self._last_frame
        self._last_frame = frame_index
        slewing = scene is not None and not scene.measured
        if scene is not None:
            self._shift = np.array([scene[0], scene[1]], float)
        if slewing:
            self._history.restart()
        if detections is None or len(detections) == 0:
            xy, ltrb, score = np.zeros((0, 2)), np.zeros((0, 4)), np.zeros(0)
        else:
            keep = np.asarray(detections.score) >= cfg.low_score
            xy = np.asarray(detections.xy, float)[keep]
            ltrb = np.asarray(detections.ltrb, float)[keep]
            score = np.asarray(detections.score, float)[keep]

        for tr in self._tracks:
            # frames skipped upstream (a live camera drops what the detector cannot keep up with) were never
            # observed: the filter predicts across them, but they are not misses
            kalman.predict(tr.kf, dt, cfg.process_std)

        high = np.flatnonzero(score >= cfg.high_score)
        low = np.flatnonzero(score < cfg.high_score)
        all_tracks = list(range(len(self._tracks)))
        m1 = self._associate(all_tracks, high, xy, self._gate)
        left = [i for i in all_tracks if i not in m1]
        m2 = self._associate(left, low, xy, self._low_gate)
        matches = {**m1, **m2}

        for i, tr in enumerate(self._tracks):
            if i in matches:
                j = matches[i]
                tr.hit(xy[j], ltrb[j], score[j], frame_index, self._shift, cfg)
            else:
                tr.miss()

        used = set(matches.values())
        fresh = [j for j in high if j not in used]
        fresh.sort(key=lambda j: (-score[j], xy[j, 0], xy[j, 1]))
        fresh = self._not_on_others(fresh, sorted(used), xy, ltrb)
        room = max(0, cfg.max_tracks - len(self._tracks))
        for j in fresh[:room]:
            tr = _Track(xy[j], ltrb[j], score[j], frame_index, self._shift, cfg)
            tr.new_to_scene = self._history.is_new(xy[j], self._shift, frame_index)
            self._tracks.append(tr)
        self._history.add(xy[score >= cfg.novelty_score], self._shift, frame_index)

        if slewing:
            for tr in self._tracks:
                if not tr.confirmed:
                    tr.path.clear()
                    tr.new_to_scene = False
        return self._lifecycle(frame_index, timestamp, hold=slewing)

    def finish(self, frame_index: int, timestamp: float) -> list[TrackEvent]:
        """End every live confirmed track with reason `stream_end`; drop all tracks."""
        events = [self._event("end", tr, frame_index, timestamp, "stream_end")
                  for tr in sorted((t for t in self._tracks if t.confirmed), key=lambda t: t.id)]
        self._tracks = []
        return events

    def active_tracks(self) -> Tracks:
        """Confirmed live tracks at the last frame (coasting ones too: `misses` > 0), by id."""
        frame = self._last_frame or 0
        live = sorted((t for t in self._tracks if t.confirmed), key=lambda t: t.id)
        if not live:
            return Tracks()
        return Tracks(xy=[t.kf.x[:2] for t in live], ltrb=[t.ltrb for t in live], score=[t.score for t in live],
                      track_id=[t.id for t in live], vxy=[t.kf.x[2:] for t in live],
                      top_score=[t.top_score for t in live], hits=[t.hits for t in live],
                      age=[frame - t.first_frame + 1 for t in live], misses=[t.misses for t in live],
                      first_frame=[t.first_frame for t in live], last_frame=[t.last_frame for t in live])

    # ---------------------------------------------------------------- internals
    def _associate(self, tracks: list[int], dets: np.ndarray, xy: np.ndarray, gate: float) -> dict[int, int]:
        """Hungarian assignment of `tracks` to `dets` on d^2 + ln|S| within the chi-square gate."""
        if not tracks or len(dets) == 0:
            return {}
        d2, logdet = kalman.gate_distances([self._tracks[i].kf for i in tracks], xy[dets])
        cost = np.where(d2 <= gate, d2 + logdet[:, None], _BIG)
        rows, cols = linear_sum_assignment(cost)
        return {tracks[r]: int(dets[c]) for r, c in zip(rows, cols) if cost[r, c] < _BIG}

    def _not_on_others(self, fresh: list[int], used: list[int], xy: np.ndarray, ltrb: np.ndarray) -> list[int]:
        """The fresh detections (best first) that lie on no other object: an extended target (a helicopter, a
        near drone) gives several peaks, of which the one a track took, or the best fresh one, stands for it;
        a detection no farther from such a one, on each axis, than the larger of their box extents facing each
        other (scaled by `duplicate_extent`) starts no track."""
        k = self.config.duplicate_extent
        if k == 0 or not fresh:
            return fresh
        kept = list(used)
        out = []
        for j in fresh:
            if kept:
                o = np.asarray(kept)
                d = xy[j] - xy[o]  # j right of / below o: o's right / bottom extent faces j's left / top one
                reach = np.where(d >= 0, np.maximum(ltrb[o, 2:], ltrb[j, :2]), np.maximum(ltrb[o, :2], ltrb[j, 2:]))
                if np.any(np.all(np.abs(d) <= k * reach, axis=1)):
                    continue
            kept.append(j)
            out.append(j)
        return out

    def _inside(self, x: float, y: float, margin: float) -> bool:
        if self.frame_size is None:
            return True
        w, h = self.frame_size
        return -0.5 + margin <= x <= w - 0.5 - margin and -0.5 + margin <= y <= h - 0.5 - margin

    def _lifecycle(self, frame: int, timestamp: float, hold: bool = False) -> list[TrackEvent]:
        cfg = self.config
        ends, news, updates, alive = [], [], [], []
        for tr in self._tracks:
            x, y = tr.kf.x[:2]
            if not tr.confirmed:
                window_misses = len(tr.hit_window) - sum(tr.hit_window)
                if window_misses > cfg.confirm_window - cfg.confirm_hits or not self._inside(x, y, 0.0):
                    continue  # tentative track that failed: dropped silently
                if not hold and tr.misses == 0 and sum(tr.hit_window) >= cfg.confirm_hits \
                        and float(np.mean(tr.scores)) >= cfg.confirm_score and (
                        (tr.new_to_scene and tr.hits >= cfg.novel_hits and tr.speed_ok(cfg))
                        or tr.motion_ok(cfg, self._motion_threshold)):
                    tr.id = self._next_id
                    self._next_id += 1
                    tr.last_event_frame = frame
                    news.append(self._event("new", tr, frame, timestamp))
                alive.append(tr)
                continue
            if tr.misses > 0 and not self._inside(x, y, 0.0):
                ends.append(self._event("end", tr, frame, timestamp, "left_view"))
                continue
            if tr.misses > cfg.max_misses:
                lx, ly = tr.last_hit_state[:2]
                reason: EndReason = "lost" if self._inside(lx, ly, cfg.edge_margin) else "left_view"
                ends.append(self._event("end", tr, frame, timestamp, reason))
                continue
            if (cfg.update_interval and tr.misses == 0
                    and frame - tr.last_event_frame >= cfg.update_interval):
                tr.last_event_frame = frame
                updates.append(self._event("update", tr, frame, timestamp))
            alive.append(tr)
        self._tracks = alive
        key = lambda e: e.track_id  # noqa: E731
        return sorted(ends, key=key) + sorted(news, key=key) + sorted(updates, key=key)

    @staticmethod
    def _event(kind: str, tr: _Track, frame: int, timestamp: float, reason: Optional[str] = None) -> TrackEvent:
        x, y, vx, vy = (float(v) for v in (tr.last_hit_state if kind == "end" else tr.kf.x))
        return TrackEvent(kind, int(tr.id), int(frame), float(timestamp), x, y, vx, vy, float(tr.wh[0]),
                          float(tr.wh[1]), tr.score, tr.top_score, tr.hits, frame - tr.first_frame + 1,
                          tr.first_frame, tr.last_frame, reason)  # type: ignore[arg-type]
