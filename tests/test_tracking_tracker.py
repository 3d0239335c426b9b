"""Tracker behaviour on synthetic detections with known truth."""
from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from detector.detections import Detections
from tracking import Tracker, TrackerConfig, TrackEvent
from tracking.egomotion import SceneOffset

SIZE = (320, 256)


def dets(points, score=0.9) -> Detections:
    pts = np.asarray(points, float).reshape(-1, 2)
    return Detections.from_xywh(pts, np.full((len(pts), 2), 3.0), np.full(len(pts), score))


def run(frames, tracker=None):
    """frames: list of lists of (x, y[, score]). Returns (events, per-frame active ids->(x, y))."""
    tracker = tracker or Tracker(frame_size=SIZE)
    events, active = [], []
    for f, pts in enumerate(frames, start=1):
        pts = [p if len(p) == 3 else (*p, 0.9) for p in pts]
        d = Detections.from_xywh([p[:2] for p in pts], np.full((len(pts), 2), 3.0), [p[2] for p in pts]) if pts \
            else Detections.empty()
        events += tracker.update(d, f, f / 25.0)
        t = tracker.active_tracks()
        active.append(dict(zip(t.track_id.tolist(), map(tuple, t.xy.tolist()))))
    events += tracker.finish(len(frames), len(frames) / 25.0)
    return events, active


def news(events):
    return [e for e in events if e.event == "new"]


def test_keeps_id_through_3_frame_gap_with_clutter():
    rng = np.random.default_rng(0)
    frames = []
    for f in range(40):
        pts = [(50 + 2.0 * f + rng.normal(0, 0.3), 100 + 1.0 * f + rng.normal(0, 0.3))]
        if 20 <= f < 23:
            pts = []  # 3-frame gap
        pts += [tuple(rng.uniform([0, 0], SIZE)) for _ in range(3)]  # single-frame clutter
        frames.append(pts)
    events, active = run(frames)
    assert len(news(events)) == 1
    tid = news(events)[0].track_id
    for f in range(5, 40):
        assert tid in active[f], f
    end = [e for e in events if e.event == "end"]
    assert [(e.track_id, e.reason) for e in end] == [(tid, "stream_end")]


def test_single_frame_clutter_and_hot_pixel_never_confirm():
    rng = np.random.default_rng(1)
    frames = []
    for _ in range(60):
        pts = [(200 + rng.normal(0, 0.3), 40 + rng.normal(0, 0.3), 0.95)]  # static hot pixel
        pts += [(*rng.uniform([0, 0], SIZE), 0.9) for _ in range(5)]
        frames.append(pts)
    events, active = run(frames)
    assert news(events) == []
    assert all(a == {} for a in active)


def test_static_clutter_under_platform_drift_does_not_alert_when_shift_given():
    tracker = Tracker(frame_size=SIZE)
    events = []
    for f in range(1, 61):
        drift = np.array([0.8, 0.3]) * f
        pts = [(100 + drift[0], 100 + drift[1]), (150 + 2.5 * f, 60 + drift[1])]  # clutter, real target
        events += tracker.update(dets(pts), f, f / 25, SceneOffset(*drift))
    assert len(news(events)) == 1 and news(events)[0].x > 150


def test_track_that_leaves_view_ends_left_view():
    frames = [[(SIZE[0] - 40 + 3.0 * f, 100.0)] if SIZE[0] - 40 + 3.0 * f < SIZE[0] else [] for f in range(30)]
    events, _ = run(frames)
    ends = [e for e in events if e.event == "end"]
    assert len(news(events)) == 1 and len(ends) == 1
    assert ends[0].reason == "left_view" and ends[0].frame_index <= 16


def test_lost_track_ends_lost_after_max_misses():
    cfg = TrackerConfig(max_misses=4)
    frames = [[(100 + 1.5 * f, 100.0)] for f in range(15)] + [[] for _ in range(10)]
    events, _ = run(frames, Tracker(cfg, SIZE))
    end = [e for e in events if e.event == "end"]
    assert len(end) == 1 and end[0].reason == "lost" and end[0].frame_index == 15 + 5
    assert end[0].last_frame == 15 and end[0].hits == 15


def test_low_score_second_pass_keeps_dim_target_but_cannot_start_tracks():
    frames = [[(60 + 2.0 * f, 60.0, 0.9 if f < 8 else 0.2)] for f in range(30)]
    frames = [fr + [(200.0 + 3 * f, 200.0, 0.2)] for f, fr in enumerate(frames)]  # dim only: never starts
    events, active = run(frames)
    assert len(news(events)) == 1
    assert all(len(a) == 1 for a in active[8:])


def test_ids_unique_and_events_complete():
    rng = np.random.default_rng(3)
    cfg = TrackerConfig(update_interval=5)
    tracker = Tracker(cfg, SIZE)
    events = []
    for f in range(1, 101):
        pts = []
        for k in range(3):  # three targets that appear one after the other, each living 30 frames
            if 30 * k < f <= 30 * k + 30:
                pts.append((40 + 2 * (f - 30 * k) + 60 * k, 50 + 50 * k + rng.normal(0, 0.2)))
        events += tracker.update(dets(pts), f, f / 25)
    events += tracker.finish(100, 4.0)
    ids = [e.track_id for e in news(events)]
    assert ids == [1, 2, 3]
    for tid in ids:
        kinds = [e.event for e in events if e.track_id == tid]
        assert kinds[0] == "new" and kinds[-1] == "end" and kinds.count("end") == 1
        assert "update" in kinds
    assert isinstance(events[0], TrackEvent)


def test_memory_bounded_on_endless_stream():
    rng = np.random.default_rng(4)
    tracker = Tracker(TrackerConfig(max_tracks=50), SIZE)
    for f in range(1, 400):
        tracker.update(dets(rng.uniform([0, 0], SIZE, size=(20, 2))), f, f / 25)
        assert len(tracker._tracks) <= 50


def test_velocity_and_position_estimates():
    frames = [[(30 + 1.5 * f, 40 + 0.5 * f)] for f in range(20)]
    tracker = Tracker(frame_size=SIZE)
    for f, pts in enumerate(frames, start=1):
        tracker.update(dets(pts), f, 0.0)
    t = tracker.active_tracks()
    assert len(t) == 1
    assert t.vxy[0] == pytest.approx([1.5, 0.5], abs=0.05)
    assert t.xy[0, 0] == pytest.approx(30 + 1.5 * 19, abs=0.1)


def test_config_validation_and_frame_order():
    with pytest.raises(ValidationError):
        TrackerConfig(confirm_hits=6, confirm_window=5)
    with pytest.raises(ValidationError):
        TrackerConfig(bogus=1)
    with pytest.raises(ValidationError):
        TrackerConfig(gate_probability=1.5)
    assert TrackerConfig.model_fields["max_misses"].description
    tracker = Tracker()
    tracker.update(Detections.empty(), 5, 0.0)
    with pytest.raises(ValueError):
        tracker.update(Detections.empty(), 5, 0.0)


def test_event_order_and_update_rate():
    cfg = TrackerConfig(update_interval=4, max_misses=2)
    tracker = Tracker(cfg, SIZE)
    per_frame = []
    for f in range(1, 41):
        pts = []
        if f <= 20:
            pts.append((40 + 2.0 * f, 60.0))  # ends (lost) at frame 23
        if f >= 18:
            pts.append((40 + 2.0 * f, 180.0))  # confirmed around frame 22
        per_frame.append(tracker.update(dets(pts), f, f / 25))
    for evs in per_frame:
        kinds = [e.event for e in evs]
        assert kinds == sorted(kinds, key=["end", "new", "update"].index)
    updates = [e.frame_index for evs in per_frame for e in evs if e.event == "update" and e.track_id == 1]
    assert updates and all(b - a == 4 for a, b in zip(updates, updates[1:]))


def test_grid_quantised_static_clutter_under_drift_does_not_alert():
    """Detectors with a stride put static clutter on a 2 px grid: a staircase on the sensor, a sawtooth
    against the background. Neither may alert; a real target on the same grid still does."""
    def grid(v):
        return np.floor(np.asarray(v) / 2.0) * 2.0 + 0.5

    tracker = Tracker(frame_size=SIZE)
    events = []
    drift = np.array([-0.3, 0.2])
    for f in range(1, 151):
        clutter = [grid(np.array([150.0, 100.0]) + drift * f + off) for off in ([0, 0], [40.3, 7.1], [-60.2, 50.9])]
        target = grid(np.array([30.0, 200.0]) + np.array([1.0, -0.4]) * f)
        events += tracker.update(dets(clutter + [target]), f, f / 25, SceneOffset(*(drift * f)))
    new = news(events)
    assert len(new) == 1 and new[0].x < 100


def test_frames_dropped_upstream_are_not_misses():
    """A live camera whose detector keeps up with every 4th frame: the target is seen at frames 1, 5, 9, ...
    and still confirms, keeps one id and alerts once."""
    tracker = Tracker(TrackerConfig(), frame_size=(200, 200))
    events = []
    for k, frame in enumerate(range(1, 120, 4)):
        events += tracker.update(dets([(20 + 2.0 * frame * 0.5, 50 + 0.5 * frame)]), frame, frame / 25)
    new = news(events)
    assert len(new) == 1 and not [e for e in events if e.event == "end"]


def test_static_new_object_in_empty_sky_alerts_but_hot_pixels_and_static_clutter_never_do():
    """An aircraft flying at the camera stays put in the image: it alerts because it appeared where the scene
    had nothing. Hot pixels and static clutter, present since the stream began, never alert."""
    rng = np.random.default_rng(3)
    events, first = [], None
    tracker = Tracker(frame_size=SIZE)
    for f in range(1, 201):
        pts = [(200 + rng.normal(0, 0.3), 40 + rng.normal(0, 0.3)), (60.0, 180.0)]  # hot pixel, static clutter
        if f >= 80:
            pts.append((150 + rng.normal(0, 0.3), 120 + rng.normal(0, 0.3)))  # static new object from frame 80
        events += tracker.update(dets(pts), f, f / 25)
    new = news(events)
    assert len(new) == 1 and abs(new[0].x - 150) < 2 and new[0].frame_index - 80 < 10


def test_flickering_static_clutter_is_not_new_to_the_scene():
    """Clutter that comes and goes at one place (a sunlit cloud top) restarts tracks, but never as new."""
    rng = np.random.default_rng(4)
    events = []
    tracker = Tracker(frame_size=SIZE)
    for f in range(1, 301):
        on = (f // 12) % 2 == 0  # 12 frames on, 12 off
        pts = [(100 + rng.normal(0, 0.5), 100 + rng.normal(0, 0.5))] if on else []
        events += tracker.update(dets(pts), f, f / 25)
    assert news(events) == []


def _slewing_frames(speed: float, n: int, size=(256, 320)) -> tuple[list[np.ndarray], np.ndarray]:
    """Frames of a cloud-like texture seen by a camera panning right at `speed` px/frame; the scene offset
    (where scene content moved on the sensor) of each frame."""
    from scipy import ndimage

    rng = np.random.default_rng(7)
    h, w = size
    world = ndimage.gaussian_filter(rng.normal(0, 1, (h, w + int(speed * n) + 8)), 6)
    world = (world - world.min()) / np.ptp(world) * 150 + 50
    frames = [np.clip(world[:, int(speed * k):int(speed * k) + w] + rng.normal(0, 1.5, size), 0, 255).astype(np.uint8)
              for k in range(n)]
    return frames, np.array([[-speed * k, 0.0] for k in range(n)])


@pytest.mark.parametrize("speed", [45.0, 150.0])
def test_slewing_background_does_not_alert(speed):
    """A pan/tilt head slewing at 45 px/frame is measured (static scene clutter moves with it and cannot
    alert); at 150 px/frame it cannot be measured, and confirmations are held instead of alerting on the
    background."""
    from tracking.egomotion import SceneMotion

    frames, truth = _slewing_frames(speed, 40)
    motion, tracker, events, offsets = SceneMotion(), Tracker(frame_size=(320, 256)), [], []
    clutter = np.array([[600.0, 60.0], [900.0, 200.0], [1500.0, 120.0], [2400.0, 90.0], [3100.0, 150.0]])
    for f, (image, true) in enumerate(zip(frames, truth), start=1):
        scene = motion.update(image)
        offsets.append(scene)
        pts = clutter + true  # scene-fixed clutter on the sensor
        inside = (pts[:, 0] > 2) & (pts[:, 0] < 318)
        events += tracker.update(dets(pts[inside]), f, f / 25, scene)
    assert news(events) == []
    if speed < 64:
        assert all(o.measured for o in offsets[2:])  # a slew's first shift is confirmed by the second
        assert abs(offsets[-1].x - truth[-1, 0]) < 0.02 * abs(truth[-1, 0])  # 0.5 px/frame at 45
    else:
        assert not any(o.measured for o in offsets[2:])


def test_predicted_asymmetric_box_reaches_the_track_record():
    """A decoded detection keeps the model's ltrb extents (x - l, y - t, x + r, y + b), and the track reports them."""
    import torch

    from detector.encoding import to_map
    from detector.inference import decode

    stride, cells, extents = 2, (64, 64), np.array([1.0, 0.5, 2.5, 1.5])  # l, t, r, b in cells: off-centre

    def outputs(x: float, y: float) -> dict:
        cx, cy = to_map(x, stride), to_map(y, stride)
        u, v = round(cx), round(cy)
        heat, off, ltrb = torch.full((1, 1, *cells), -10.0), torch.zeros(1, 2, *cells), torch.zeros(1, 4, *cells)
        heat[0, 0, v, u] = 5.0
        off[0, :, v, u] = torch.tensor([cx - u, cy - v])
        ltrb[0, :, v, u] = torch.from_numpy(extents).float()
        return {"heatmap": heat, "offset": off, "ltrb": ltrb}

    l, t, r, b = extents * stride
    tracker = Tracker(frame_size=(128, 128))
    events = []
    for f in range(1, 21):
        x, y = 20.0 + 2.0 * f, 30.0 + 1.0 * f
        d = decode(outputs(x, y), [(128, 128)], stride, 0.5)[0]
        assert len(d) == 1 and np.allclose(d.xy, [[x, y]], atol=1e-4)
        assert np.allclose(d.xyxy, [[x - l, y - t, x + r, y + b]], atol=1e-4)
        assert np.allclose(d.wh, [[l + r, t + b]])
        events += tracker.update(d, f, f / 25.0)
    tracks = tracker.active_tracks()
    assert len(tracks) == 1 and news(events) and news(events)[0].track_id == tracks.track_id[0]
    (tx, ty), = tracks.xy
    assert np.allclose(tracks.ltrb, [[l, t, r, b]], atol=1e-4)
    assert np.allclose(tracks.xyxy, [[tx - l, ty - t, tx + r, ty + b]], atol=1e-4)
    assert (news(events)[0].w, news(events)[0].h) == pytest.approx((l + r, t + b), abs=1e-4)  # alerts: the box size
