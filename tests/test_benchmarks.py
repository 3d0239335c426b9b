"""Each performance benchmark runs with one command on a fresh checkout and prints its JSON lines (tiny
settings here: this checks that they work, not the figures, which are never asserted on timing)."""
import json
import shutil
import subprocess
import sys

import pytest

from conftest import REPO, make_clip, rtsp_available

pytestmark = pytest.mark.slow  # minutes of CPU: run by .ci/run, left out of the README's quick command


def run_benchmark(script: str, *args: str, timeout: int = 300) -> list[dict]:
    proc = subprocess.run([sys.executable, f"benchmarks/{script}", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines and "machine" in lines[0], proc.stdout
    return lines[1:]


def test_model_speed():
    rows = run_benchmark("model_speed.py", "--variants", "fast", "--rounds", "3", "--budget", "0.1")
    seen = {(r["runtime"], r["size"], r["batch"]) for r in rows}
    assert seen == {(rt, s, b) for rt in ("torch", "onnxruntime") for s in ("256x256", "640x512") for b in (1, 4)}
    assert {(r["precision"], r["size"], r["batch"]) for r in rows if r["precision"] == "int8"} == {
        ("int8", s, b) for s in ("256x256", "640x512") for b in (1, 4)}  # the shipped fast has its int8 model
    assert all(r["fps"] > 0 and r["params"] > 0 and r["gmacs_per_frame"] > 0 for r in rows)


def test_peaks_speed():
    rows = run_benchmark("peaks_speed.py", "--rounds", "5")
    assert {(r["frame"], r["path"]) for r in rows} >= {(f, p) for f in ("640x512", "1280x1024") for p in ("torch", "numpy")}
    assert all(r["same_peaks"] for r in rows)


def test_pipeline_speed():
    rows = run_benchmark("pipeline_speed.py", "--rounds", "1")
    summary = rows[-1]
    assert summary["summary"] and summary["frames"] == 200 and summary["size"] == "640x512"
    assert summary["model_only_fps"] > 0 and summary["pipeline_fps"] > 0 and summary["naive_fps"] > 0
    assert rows[0]["pipeline_alerts"] > 0 and rows[0]["naive_alerts"] > 0


def test_pipeline_speed_live_view_cost(tmp_path):
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server not installed")
    clip = make_clip(tmp_path / "clip", frames=30, size=(320, 256))
    (row, summary) = run_benchmark("pipeline_speed.py", str(clip), "--rounds", "1", "--live-view")
    assert row["two_cam_fps"] > 0 and row["two_cam_live_fps"] > 0
    # the summary's cost comes from the unrounded rates, the row shows them rounded
    assert summary["live_view_cost"] == pytest.approx(1 - row["two_cam_live_fps"] / row["two_cam_fps"], abs=0.005)
    assert 0 < row["live_view_cpu_share"] < 1


def test_latency_rtsp():
    reason = rtsp_available() or (None if shutil.which("redis-server") else "redis-server not installed")
    if reason:
        pytest.skip(reason)
    (result,) = run_benchmark("latency_rtsp.py", "--seconds", "10")
    stages = {s["stage"]: s for s in result["stages"]}
    assert {"decode", "inference", "track", "capture_to_alert"} <= stages.keys()
    # how many frames a loaded machine keeps up with is not this test's business (stale frames are dropped
    # on purpose); that the live path runs end to end and alerts reach a subscriber is
    assert result["frames_tracked"] > 0 and result["alerts_received"] > 0


def test_cameras():
    if not shutil.which("redis-server"):
        pytest.skip("redis-server not installed")
    *runs, summary = run_benchmark("cameras.py", "--cameras", "1", "2", "--seconds", "4",
                                   "--set", "detector.precision=int8")
    assert [r["cameras"] for r in runs] == [1, 2] and all(r["precision"] == "int8" for r in runs)
    for r in runs:
        assert r["decoded"] >= 200 * r["cameras"] and 0 < r["detected"] <= r["decoded"]
        assert r["detected"] + r["dropped"] == r["decoded"]  # every frame read is detected or counted dropped
        assert len(r["per_camera_detected"]) == r["cameras"] and r["publish_p99_ms"] > 0 and r["cpu"] > 0
        assert r["alerts"] > 0 and r["alerts"] == r["alerts_in_stream"]
    assert summary["summary"] and 0 <= summary["max_cameras"] <= 2


def test_soak():
    """The 20-second version of the one-hour soak."""
    if not shutil.which("redis-server"):
        pytest.skip("redis-server not installed")
    *samples, summary = run_benchmark("soak.py", "--minutes", "0.34", "--sample-s", "2")
    assert len(samples) >= 5 and all(s["rss_mb"] > 0 for s in samples)
    assert summary["growth_mb_per_h"] is not None and summary["alerts_published"] > 0
    assert summary["alerts_published"] == summary["alerts_received"] == summary["alerts_in_stream"]
    assert summary["lost"] == 0 and summary["alerts_sink_dropped"] == 0


def test_profile_pipeline():
    rows = run_benchmark("profile_pipeline.py", "--top", "5")
    stages = {r["stage"] for r in rows}
    assert {"detect", "track"} <= stages and any(s.startswith("source:") for s in stages)
    assert all(r["tottime_s"] >= 0 and r["calls"] > 0 for r in rows)


def test_cameras_over_rtsp():
    reason = rtsp_available() or (None if shutil.which("redis-server") else "redis-server not installed")
    if reason:
        pytest.skip(reason)
    run, summary = run_benchmark("cameras.py", "--cameras", "1", "--seconds", "4", "--source", "rtsp")
    assert run["source"] == "rtsp" and run["decoded"] == 200  # stopped once the stream has played, no replay
    assert run["detected"] + run["dropped"] == run["decoded"] and run["alerts"] == run["alerts_in_stream"] > 0
