"""Config loading: interpolation, overrides, every problem reported with its path and line, shipped configs."""
from __future__ import annotations

import pytest

from conftest import REPO, run_cli
from pipeline.config import ConfigError, RtspSource, interpolate, load_config, parse_config, redact_url

MINIMAL = """
cameras:
  cam1:
    source:
      type: rtsp
      url: ${RTSP_URL:-rtsp://127.0.0.1:8554/cam1}
"""


def test_interpolation_defaults_and_env(monkeypatch):
    monkeypatch.delenv("RTSP_URL", raising=False)
    assert parse_config(MINIMAL).cameras["cam1"].source.url == "rtsp://127.0.0.1:8554/cam1"
    monkeypatch.setenv("RTSP_URL", "rtsp://cam.local/live")
    assert parse_config(MINIMAL).cameras["cam1"].source.url == "rtsp://cam.local/live"
    env = {"A": "", "B": "x"}
    assert interpolate("${A:-d} ${A-d} ${B:-d} $${B}", env) == "d  x ${B}"


def test_overrides_are_typed_and_validated():
    c = parse_config(MINIMAL, ["cameras.cam1.fps=30", "detector.batch_size=2", "sinks.console.events=[new]"])
    assert c.cameras["cam1"].fps == 30 and c.detector.batch_size == 2 and c.sinks.console.events == ["new"]
    with pytest.raises(ConfigError) as e:
        parse_config(MINIMAL, ["detector.batch_size=zero"])
    assert e.value.problems == ["--set detector.batch_size: Input should be a valid integer, unable to parse "
                                "string as an integer"]


def test_every_problem_is_reported_with_path_and_line(monkeypatch):
    monkeypatch.delenv("NOPE", raising=False)
    text = """cameras:
  cam1:
    source: {type: rtsp, url: http://x, colour: red}
    fps: -3
  cam2:
    source: {type: webcam}
detector: {device: gpu, batchsize: 3}
sinks:
  redis:
    url: ${NOPE}
"""
    with pytest.raises(ConfigError) as e:
        parse_config(text, source="bad.yaml")
    problems = e.value.problems
    expected = [
        "bad.yaml:10: sinks.redis.url: environment variable NOPE is not set",
        "bad.yaml:3: cameras.cam1.source.url: must start with rtsp:// or rtsps://",
        "bad.yaml:3: cameras.cam1.source.colour: unknown key",
        "bad.yaml:4: cameras.cam1.fps: Input should be greater than 0",
        "bad.yaml:6: cameras.cam2.source: unknown type 'webcam'",
        "bad.yaml:7: detector.device:",
        "bad.yaml:7: detector.batchsize: unknown key",
    ]
    assert len(problems) == len(expected), problems
    for want in expected:
        assert any(p.startswith(want) for p in problems), (want, problems)


def test_tracker_section_is_the_trackers_own_model():
    c = parse_config(MINIMAL + "tracker: {confirm_hits: 2, confirm_window: 4}\n")
    assert c.tracker.confirm_hits == 2
    with pytest.raises(ConfigError) as e:
        parse_config(MINIMAL + "tracker: {confirm_hits: 9, gate: 3}\n", source="t.yaml")
    assert any("tracker.gate: unknown key" in p for p in e.value.problems)


@pytest.mark.parametrize("name", ["rtsp.yaml", "demo.yaml", "replay.yaml"])
def test_shipped_configs_validate(name):
    load_config(REPO / "configs" / name)


def test_rtsp_config_reads_both_urls(monkeypatch):
    monkeypatch.setenv("RTSP_URL", "rtsp://user:pw@10.0.0.5/s1")
    monkeypatch.setenv("REDIS_URL", "rediss://:secret@redis.example:6380/2")
    c = load_config(REPO / "configs" / "rtsp.yaml")
    assert isinstance(c.cameras["cam1"].source, RtspSource)
    assert c.cameras["cam1"].source.url == "rtsp://user:pw@10.0.0.5/s1"
    assert c.sinks.redis.url == "rediss://:secret@redis.example:6380/2"
    assert redact_url(c.sinks.redis.url) == "rediss://redis.example:6380/2"
    assert redact_url("rtsp://user:pw@10.0.0.5/s1") == "rtsp://10.0.0.5/s1"


def test_validate_cli_reports_problems_without_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("cameras:\n  cam1:\n    source: {type: file}\n    colour: red\n")
    r = run_cli("validate", str(bad), timeout=60)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert lines == [f"error: {bad}:3: cameras.cam1.source.path: Field required",
                     f"error: {bad}:4: cameras.cam1.colour: unknown key"]
    r = run_cli("validate", str(REPO / "configs" / "rtsp.yaml"), timeout=60)
    assert r.returncode == 0 and "ok" in r.stdout
    r = run_cli("run", str(tmp_path / "missing.yaml"), timeout=60)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "cannot read config" in r.stderr


def test_detector_threshold_points_to_the_tracker_setting_it_was():
    with pytest.raises(ConfigError) as e:
        parse_config("cameras:\n  c: {source: {type: sequence, path: .}}\ndetector: {threshold: 0.4}\n")
    assert "tracker.high_score" in "\n".join(e.value.problems)
