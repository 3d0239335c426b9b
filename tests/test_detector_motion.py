"""The detector's motion input: the aligned background, its resets, and the shipped frame + motion weights."""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from detector.motion import MotionBackground, shift_whole
from detector.synthetic import BENCHMARK_SCENES, render_spot, split_backgrounds
from tracking.egomotion import SceneOffset

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
BACKGROUNDS = DATA / "ir-backgrounds"


def _texture(shape=(128, 160), seed=0) -> np.ndarray:
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    return (100 + 40 * ndimage.gaussian_filter(rng.standard_normal(shape), 3) / 0.1).clip(0, 255).astype(np.float32)


def _frames(n, shape=(128, 160), spot=None, hot=None, drift=(0, 0), noise=1.0, seed=0):
    """n uint8 frames of a textured scene drifting by whole px/frame; `spot(k)` -> (x, y, amplitude) or None."""
    rng = np.random.default_rng(seed + 1)
    big = _texture((shape[0] + 64, shape[1] + 64), seed)
    out = []
    for k in range(n):
        ox, oy = 32 - k * drift[0], 32 - k * drift[1]
        img = big[oy:oy + shape[0], ox:ox + shape[1]].copy() + rng.normal(0, noise, shape)
        if spot is not None and (s := spot(k)) is not None:
            patch, where = render_spot(shape, s[0], s[1], 1.0, 1.0)
            img[where] += s[2] * patch
        if hot is not None:
            img[hot[1], hot[0]] = 250
        out.append(np.clip(np.rint(img), 0, 255).astype(np.uint8))
    return out


def _run(frames, drift=(0, 0), measured=None):
    bg = MotionBackground()
    out = []
    for k, f in enumerate(frames):
        scene = SceneOffset(k * drift[0], k * drift[1], True if measured is None else measured(k))
        out.append(bg.update(f, scene))
    return bg, out


def test_shift_whole_moves_content_and_fills_uncovered_pixels_from_the_frame():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    fill = np.full((3, 4), 99, np.uint8)
    s = shift_whole(a, 1, -1, fill)
    assert s[0, 1] == a[1, 0] and s[1, 3] == a[2, 2]
    assert (s[:, 0] == 99).all() and (s[2] == 99).all()


def test_static_scene_and_hot_pixel_cancel_moving_spot_stands_out():
    frames = _frames(30, spot=lambda k: (40 + 0.8 * k, 60, 12.0), hot=(100, 30))
    _, res = _run(frames)
    assert all(r is None for r in res[:6]) and all(r is not None for r in res[6:])
    r = res[-1] / 8.0  # eighths of a grey level
    x = int(round(40 + 0.8 * 29))
    assert r[60, x] > 6.0  # the moving spot
    assert abs(r[30, 100]) < 4.0  # the hot pixel, static on the sensor
    assert np.abs(r[:, 120:]).mean() < 1.5  # the textured scene: noise only


def test_background_is_aligned_by_the_scene_offset():
    frames = _frames(30, drift=(1, -1))
    _, aligned = _run(frames, drift=(1, -1))
    _, unaligned = _run(frames)
    inner = (slice(20, -20), slice(20, -20))
    assert np.abs(aligned[-1][inner]).mean() < 1.5 * 8
    assert np.abs(unaligned[-1][inner]).mean() > 3 * np.abs(aligned[-1][inner]).mean()


def test_unmeasured_slew_and_size_change_reset_the_background():
    frames = _frames(30)
    bg, res = _run(frames, measured=lambda k: k != 15)
    assert res[15] is None and all(r is None for r in res[16:21]) and res[-1] is not None
    assert bg.update(np.zeros((64, 64), np.uint8)) is None  # another frame size: starts again
    bg.reset()
    assert bg.background is None and bg.count == 0


class _Mux:
    def __init__(self):
        self.frames = []

    def put(self, frame, stop=None):
        self.frames.append(frame)
        return True


def test_camera_reader_computes_the_residual_and_resets_on_a_reconnect():
    from pipeline.config import CameraConfig
    from pipeline.health import Health

    cam = CameraConfig.model_validate({"source": {"type": "file", "path": "x.mp4"}})
    mux = _Mux()
    from detector.motion import MOTION_DEFAULTS
    from pipeline.sources import CameraReader

    reader = CameraReader("cam", cam, mux, Health(), None, threading.Event(), motion=MOTION_DEFAULTS)
    frames = _frames(20)
    for f in frames[:10]:
        reader._emit(f, None, 25.0)
    assert mux.frames[-1].motion is not None and mux.frames[-1].motion.dtype == np.int16
    reader.after_gap()
    for f in frames[10:13]:
        reader._emit(f, None, 25.0)
    assert all(fr.motion is None for fr in mux.frames[-3:])


def test_benchmark_backgrounds_are_not_training_backgrounds():
    from detector.augment import background_files

    if not BACKGROUNDS.is_dir():
        pytest.skip(f"{BACKGROUNDS} absent")
    train, bench = split_backgrounds(BACKGROUNDS.iterdir())
    assert bench and train and not set(train) & set(bench)
    assert {p.name.split("_")[0] for p in bench} == set(BENCHMARK_SCENES)
    assert set(background_files(BACKGROUNDS)) == set(train)
    from tracking.synth import background_files as synth_backgrounds

    assert set(synth_backgrounds(None)) == set(bench)


# ---------------------------------------------------------------- the shipped weights


@pytest.fixture(scope="module")
def detector():
    from detector import Detector

    det = Detector.load()
    if not det.takes_motion:
        pytest.skip("the shipped weights are frame-only")
    return det


def _real_background() -> np.ndarray:
    """A benchmark background (never trained on), 8-bit, cropped to 256 x 320."""
    from detector.imageio import load_grey

    if not BACKGROUNDS.is_dir():
        pytest.skip(f"{BACKGROUNDS} absent")
    bench = split_backgrounds(BACKGROUNDS.iterdir())[1]
    img = load_grey(sorted(bench)[0]).astype(np.float32)
    img = img * (255.0 / img.max()) if img.max() > 255 else img
    return img[100:356, 100:420]


def _sequence(bg, n, spot, hot=None, noise=1.5, seed=0):
    rng = np.random.default_rng(seed)
    frames = []
    for k in range(n):
        img = bg + rng.normal(0, noise, bg.shape)
        if spot and (s := spot(k)) is not None:
            patch, where = render_spot(bg.shape, s[0], s[1], 0.9, 0.9)
            img[where] += s[2] * patch
        if hot is not None:
            img[hot[1], hot[0]] = min(255, img[hot[1], hot[0]] + 90)
        frames.append(np.clip(np.rint(img), 0, 255).astype(np.uint8))
    return frames


def _hits(det, frames, xy_at, with_motion=True, last=10):
    """How many of the last `last` frames have a detection within 3 px of `xy_at(k)`."""
    bg = det.motion_background()
    hits = 0
    for k, f in enumerate(frames):
        m = bg.update(f, None)
        (d,) = det.predict_batch([f], motion=[m if with_motion else None])
        if k >= len(frames) - last:
            x, y = xy_at(k)
            hits += bool(len(d) and (np.hypot(d.xy[:, 0] - x, d.xy[:, 1] - y) <= 3).any())
    return hits


def test_dim_moving_spot_is_found_with_the_motion_input_and_not_without(detector):
    bg = _real_background()
    path = lambda k: (60 + 1.0 * k, 128 + 0.4 * k)  # noqa: E731
    frames = _sequence(bg, 40, lambda k: (*path(k), 7.0))
    with_motion = _hits(detector, frames, path, True)
    without = _hits(detector, frames, path, False)
    assert with_motion >= 8, with_motion
    assert without <= 3, without


def test_a_hot_pixel_gives_no_detection(detector):
    bg = _real_background()
    hot = (200, 60)
    frames = _sequence(bg, 30, None, hot=hot)
    assert _hits(detector, frames, lambda k: hot, True, last=20) == 0


def test_a_target_that_stops_is_still_found(detector):
    bg = _real_background()
    path = lambda k: (80 + 1.5 * min(k, 15), 100.0)  # noqa: E731  moves for 15 frames, then hovers
    frames = _sequence(bg, 60, lambda k: (*path(k), 30.0))
    assert _hits(detector, frames, path, True, last=20) >= 18


def test_frame_only_weights_still_load_and_say_so():
    from detector import Detector
    from detector.checkpoint import WEIGHTS_DIR

    frame_only = WEIGHTS_DIR / "fast-frame.safetensors"
    if not frame_only.is_file():
        pytest.skip("no frame-only weights shipped")
    det = Detector.load(str(frame_only))
    assert not det.takes_motion and det.motion_background() is None
    flat = np.random.default_rng(0).normal(100, 2, (256, 320)).clip(0, 255).astype(np.uint8)
    assert len(det.predict(flat)) == 0
