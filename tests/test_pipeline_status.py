"""What a run tells its operator: periodic status lines for live runs, a closing summary for every run, and the
annotated video's header, track labels and legend."""
from __future__ import annotations

import json
import logging

import numpy as np

from conftest import FakeDetector, make_clip, one_track
from detector.detections import Detections
from pipeline.config import parse_config
from pipeline.frames import Frame, TrackedFrame
from pipeline.graph import Pipeline
from pipeline.sinks.video import annotate


def test_live_run_logs_status_lines_and_every_run_ends_with_a_summary(tmp_path, caplog):
    clip = make_clip(tmp_path / "clip", frames=60)
    out = tmp_path / "a.jsonl"
    cfg = parse_config(f"cameras:\n  cam: {{source: {{type: file, path: {clip}/video.mp4, realtime: true}}}}\n"
                       f"metrics: {{port: null}}\nsinks:\n  jsonl: {{path: {out}}}\nrun: {{status_interval_s: 0.5}}\n")
    with caplog.at_level(logging.INFO, logger="pipeline"):
        result = Pipeline(cfg, detector=FakeDetector()).run()
    assert result.exit_code == 0
    status = [r.getMessage() for r in caplog.records if r.getMessage().startswith("status: ")]
    assert status and all("cam " in s and " fps, " in s and " dropped, " in s and " tracks" in s for s in status)
    events = [json.loads(line)["event"] for line in out.read_text().splitlines()]
    counts = {e: events.count(e) for e in ("new", "update", "end") if e in events}
    assert result.summary.startswith("summary: 60 frames (cam 60), 0 dropped, ")
    assert f"{counts['new']} tracks" in result.summary and "0 undelivered" in result.summary
    assert "alerts " + " ".join(f"{e} {n}" for e, n in counts.items()) in result.summary


def test_lossless_run_logs_no_status_lines(clip, caplog):
    cfg = parse_config(f"cameras:\n  cam: {{source: {{type: file, path: {clip}/video.mp4}}}}\nmetrics: {{port: null}}\n"
                       "run: {status_interval_s: 0.01}\n")
    with caplog.at_level(logging.INFO, logger="pipeline"):
        result = Pipeline(cfg, detector=FakeDetector()).run()
    assert result.exit_code == 0 and "summary: 60 frames" in result.summary
    assert not [r for r in caplog.records if r.getMessage().startswith("status: ")]


def _record(index: int, captured_at: float = 1e9, timestamp: float = 0.0) -> TrackedFrame:
    image = np.zeros((512, 640), np.uint8)
    frame = Frame("cam", index, (index - 1) / 25, captured_at, timestamp, image)
    return TrackedFrame(frame, Detections.empty(), [], one_track(7, 80.0, 64.0, 0.81, index))


def _drawn(rgb: np.ndarray, rows: slice, cols: slice) -> int:
    return int((rgb[rows, cols].max(axis=2) > 128).sum())


def test_annotated_frame_shows_frame_number_time_track_score_and_legend():
    a, b = np.zeros((512, 640, 3), np.uint8), np.zeros((512, 640, 3), np.uint8)
    annotate(a, _record(7))
    annotate(b, _record(8))
    header = (slice(0, 20), slice(0, 640))
    assert _drawn(a, *header) > 30  # camera, frame number, stream time
    assert not np.array_equal(a[header], b[header])  # the frame number and time change from frame to frame
    assert _drawn(a, slice(50, 62), slice(85, 140)) > 10  # "7 0.81" beside the track
    assert _drawn(a, slice(450, 512), slice(0, 150)) > 30  # the legend, bottom left
    live = np.zeros((512, 640, 3), np.uint8)
    annotate(live, _record(7, captured_at=1e9, timestamp=1e9))  # live: the clock time is added to the header
    assert _drawn(live, slice(0, 20), slice(220, 640)) > 30 and _drawn(a, slice(0, 20), slice(220, 640)) == 0
