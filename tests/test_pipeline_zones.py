"""Per-camera masks and include zones: validated against the frame size, applied before tracking, drawn."""
from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import FakeDetector, make_clip
from detector.detections import Detections
from pipeline.config import ConfigError, parse_config
from pipeline.graph import Pipeline
from pipeline.zones import ZoneFilter


def cfg(camera: str, extra: str = "") -> str:
    return f"cameras:\n  cam1: {{{camera}}}\nmetrics: {{port: null}}\n{extra}"


def test_bad_polygons_are_one_line_naming_the_camera(tmp_path):
    src = "source: {type: file, path: x.mp4}, width: 160, height: 128"
    with pytest.raises(ConfigError) as e:
        parse_config(cfg(src + ", mask: [[[0, 0], [10, 0]]]"))
    assert any("camera cam1: mask[0] has 2 point(s); a polygon needs at least 3" in p for p in e.value.problems)
    with pytest.raises(ConfigError) as e:
        parse_config(cfg(src + ", zones: [[[0, 0], [500, 0], [0, 50]]]"))
    assert any("camera cam1: zones[0]: point (500, 0) lies outside the 160x128 frame" in p for p in e.value.problems)
    ok = parse_config(cfg(src + ", mask: [[[0, 0], [40, 0], [40, 10], [0, 10]]]"))
    assert ok.cameras["cam1"].mask[0][2] == (40, 10)


def test_zone_filter_drops_masked_and_outside_zone_detections():
    d = Detections.from_xywh([[5, 5], [50, 50], [100, 20]], np.full((3, 2), 3.0), [0.9, 0.9, 0.9])
    mask = [[(0, 0), (20, 0), (20, 20), (0, 20)]]
    assert ZoneFilter(mask, None, (160, 128))(d).xy.tolist() == [[50, 50], [100, 20]]
    zone = [[(30, 30), (159, 30), (159, 127), (30, 127)]]
    assert ZoneFilter(mask, zone, (160, 128))(d).xy.tolist() == [[50, 50]]


def test_masked_target_never_alerts_and_mask_is_drawn(tmp_path):
    clip = make_clip(tmp_path / "seq", frames=40)
    out, video = tmp_path / "a.jsonl", tmp_path / "v.mp4"
    # target 1 starts at (20, 30) and moves ~(+1, +0.5) px/frame: mask its whole path
    config = parse_config(cfg(f"source: {{type: file, path: {clip}/video.mp4}}, "
                              "mask: [[[0, 0], [80, 0], [80, 70], [0, 70]]]",
                              f"sinks:\n  jsonl: {{path: {out}}}\n  video: {{path: {video}}}\n"))
    assert Pipeline(config, detector=FakeDetector()).run(install_signals=False).exit_code == 0
    news = [a for a in map(json.loads, open(out)) if a["event"] == "new"]
    assert len(news) == 1 and news[0]["x"] > 80  # only target 2, outside the mask
    import av
    with av.open(str(video)) as c:
        rgb = next(c.decode(video=0)).to_ndarray(format="rgb24").astype(int)
    grey_edge = rgb[2:68, 79:82]  # the mask's right edge is drawn in grey
    assert (np.abs(grey_edge - 150).max(axis=2) < 40).any()


def test_polygon_outside_the_first_frame_fails_that_camera_in_one_line(tmp_path, caplog):
    """Without width/height in the config the frame size is known at the first frame: a mask outside it fails
    that camera (one line naming it), not the track stage."""
    clip = make_clip(tmp_path / "seq", frames=10)
    config = parse_config(cfg(f"source: {{type: file, path: {clip}/video.mp4}}, "
                              "mask: [[[0, 0], [500, 0], [0, 50]]]"))
    result = Pipeline(config, detector=FakeDetector()).run(install_signals=False)
    assert result.exit_code != 0
    assert result.camera_errors == {"cam1": "mask[0]: point (500, 0) lies outside the 160x128 frame"}
    assert "camera cam1: mask[0]: point (500, 0) lies outside" in result.message
    assert "Traceback" not in caplog.text
