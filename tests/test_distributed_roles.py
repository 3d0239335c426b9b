"""The roles in one test process (threads instead of processes): a live camera whose frames nobody detects
is trimmed from the frames stream (counted), never grown without bound; the tracker skips what was trimmed
(counted) and still ends the camera's tracks."""
from __future__ import annotations

import threading

import pytest

from conftest import FakeDetector, make_clip
from pipeline.config import parse_config
from pipeline.graph import Pipeline, StartupError
from pipeline.prometheus import Metrics


def config(source: str, url: str, extra: str = "") -> object:
    return parse_config(f"""cameras:
  cam: {{source: {source}}}
streams: {{url: "{url}", frames_maxlen: 5, gap_timeout_s: 0.5 {extra}}}
metrics: {{port: null}}
""")


@pytest.mark.timeout(90)
def test_live_camera_is_trimmed_not_queued_and_the_tracker_skips_the_gap(tmp_path, redis_server):
    clip = make_clip(tmp_path / "c", frames=40, images=False)
    cfg = config(f"{{type: file, path: {clip}/video.mp4, realtime: true}}", redis_server.url)
    r = redis_server.client()
    ingest_metrics = Metrics()
    result = Pipeline(cfg, role="ingest", metrics=ingest_metrics).run(install_signals=False)
    assert result.exit_code == 0
    assert r.xlen("itd:frames") == 5  # capped: the end and the 4 newest frames
    trimmed = ingest_metrics.dropped.labels("cam", "stream")._value.get()
    assert trimmed == 40 + 1 - 5

    detect = Pipeline(cfg, detector=FakeDetector(), role="detect")
    t = threading.Thread(target=lambda: detect.run(install_signals=False))
    t.start()
    try:
        track_metrics = Metrics()
        assert Pipeline(cfg, role="track", metrics=track_metrics).run(install_signals=False).exit_code == 0
    finally:
        detect.stop()
        t.join(30)
    skipped = track_metrics.registry.get_sample_value("itd_stream_skipped_total", {"camera": "cam"})
    assert skipped == trimmed
    assert r.xlen("itd:frames") == 0 and r.xlen("itd:detections") == 0


def test_mixed_live_and_lossless_cameras_are_refused(tmp_path, redis_server):
    cfg = parse_config(f"""cameras:
  a: {{source: {{type: rtsp, url: "rtsp://127.0.0.1:1/x"}}}}
  b: {{source: {{type: sequence, path: {tmp_path}}}}}
streams: {{url: "{redis_server.url}"}}
metrics: {{port: null}}
""")
    with pytest.raises(StartupError, match="all live or all lossless"):
        Pipeline(cfg, role="ingest").run(install_signals=False)
