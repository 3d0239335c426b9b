"""Overlay labels (annotated video, console live view, snapshots) are readable: every label is rendered and its dark
outline must hug its letters. With OpenCV 5.0 a thick outline drawn by a second `putText` drifts away from the
thin letters (their advance differs with thickness: `traill`, `scoree`); the extents below catch that."""
from __future__ import annotations

import time

import numpy as np
import pytest

from detector.detections import Detections
from pipeline.frames import Frame, TrackedFrame
from pipeline.sinks import video
from pipeline import snapshots
from conftest import one_track

GREY = 128


def _record(width: int, height: int, live: bool = False) -> TrackedFrame:
    now = time.time()
    image = np.full((height, width), 60, np.uint8)
    frame = Frame("cam-1", 126, 4.17, now, now if live else 4.17, image)
    dets = Detections.from_xywh(np.array([[50.0, 60.0], [90.0, 40.0]], np.float32), np.full((2, 2), 3.0),
                                np.array([0.9, 0.2], np.float32))
    return TrackedFrame(frame, dets, [], one_track(12, width / 2, height / 2, 0.87))


def _labels(monkeypatch, width: int, height: int, live: bool = False) -> list[tuple]:
    """Every (text, colour, scale) the annotator and the snapshot draw, in order."""
    calls: list[tuple] = []

    def record(rgb, text, org, color=video.TEXT, scale=0.4):
        calls.append((text, tuple(color), scale))

    monkeypatch.setattr(video, "draw_text", record)
    monkeypatch.setattr(snapshots, "draw_text", record)
    video.Annotator(30, min_score=0.5).draw(_record(width, height, live))
    snapshots.reduced_frame(np.full((height, width), 60, np.uint8), width / 2, height / 2, 4, 4, 480, "#12")
    monkeypatch.undo()
    return calls


def _extents(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    return xs.min(), xs.max(), ys.min(), ys.max()


def outline_offsets(text: str, color: tuple, scale: float) -> tuple[int, ...]:
    """How far the outline reaches beyond the letters on each side (left, right, top, bottom), in px."""
    canvas = np.full((60, 40 + 12 * len(text), 3), GREY, np.uint8)
    video.draw_text(canvas, text, (20, 40), color, scale)
    brightest = canvas.max(axis=2)  # every label colour has a channel at 255; the grey is 128, the outline 0
    dark, letters = brightest < 50, brightest > 170
    if not dark.any() or not letters.any():
        return (-99,) * 4  # no outline (or no letters) at all
    lx0, lx1, ly0, ly1 = _extents(letters)
    ox0, ox1, oy0, oy1 = _extents(dark)
    return lx0 - ox0, ox1 - lx1, ly0 - oy0, oy1 - ly1


@pytest.mark.parametrize("size", [(320, 256), (640, 512)])
def test_every_overlay_label_has_its_outline_on_its_letters(monkeypatch, size):
    labels = _labels(monkeypatch, *size, live=True) + _labels(monkeypatch, *size)
    texts = {t for t, _, _ in labels}
    assert {"candidate", "track id score", "trail", "12 0.87", "#12", "1 candidate  1 track"} <= texts
    assert any(t.startswith("cam-1  frame 126  t 4.17 s") for t in texts)
    for text, color, scale in labels:
        offsets = outline_offsets(text, color, scale)
        assert all(0 <= o <= 2 for o in offsets), f"{text!r}: outline off its letters by {offsets} px (l, r, t, b)"


def test_the_check_catches_an_outline_that_drifts():
    """A thick outline advanced 3 px further than its letters (what OpenCV 5.0 did) fails the check."""
    import cv2

    def drifting(rgb, text, org, color=video.TEXT, scale=0.4):
        cv2.putText(rgb, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale * 1.15, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(rgb, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, color, 1, cv2.LINE_AA)

    real = video.draw_text
    video.draw_text = drifting
    try:
        offsets = outline_offsets("frame 126  t 4.17 s", video.TEXT, 0.4)
    finally:
        video.draw_text = real
    assert not all(0 <= o <= 2 for o in offsets)


def test_header_and_legend_stay_small_at_320x256(monkeypatch):
    import cv2

    labels = _labels(monkeypatch, 320, 256, live=True)
    rgb = video.Annotator(30, min_score=0.5).draw(_record(320, 256, live=True))
    assert rgb.shape == (256, 320, 3)
    scales = {s for _, _, s in labels}
    assert scales == {video.text_scale(320)}
    header = next(t for t, _, _ in labels if t.startswith("cam-1"))
    (w, h), _ = cv2.getTextSize(header, cv2.FONT_HERSHEY_SIMPLEX, video.text_scale(320), 1)
    assert w <= 320 - 8 and h <= 8
    # header (two lines) and legend (one line) cover under a fifth of the frame's height
    changed = np.abs(rgb.astype(int) - 60).max(axis=2) > 0
    rows = np.flatnonzero(changed.any(axis=1))
    top = rows[rows < 50].max() + 1  # the candidate at y 60 and the track at y 128 lie below
    bottom = 256 - rows[rows >= 200].min()
    assert top + bottom < 256 / 5, (top, bottom)


def test_only_candidates_at_the_threshold_are_drawn_unless_asked():
    rec = _record(320, 256)
    strong = video.Annotator(0, min_score=0.5).draw(rec)
    every = video.Annotator(0, min_score=0.0).draw(rec)
    red = lambda rgb, x, y: tuple(rgb[y, x + 2])  # noqa: E731  (the ring's right edge)
    assert red(strong, 50, 60) == video.DETECTION and red(every, 50, 60) == video.DETECTION
    assert red(strong, 90, 40) != video.DETECTION and red(every, 90, 40) == video.DETECTION
