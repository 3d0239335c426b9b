"""Acceptance: the real command line, the real detector and tracker, the committed sample sequence, a real
GStreamer RTSP server and a private redis-server. Skipped (with the reason) until weights and sample exist."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from functools import lru_cache

import numpy as np
import pytest

from conftest import REPO, free_port, pipeline_env, run_cli

SAMPLE = REPO / "samples" / "sample"
# ITD_TEST_WEIGHTS=path/to/checkpoint.pt runs these tests with weights other than the shipped default.
WEIGHTS = os.environ.get("ITD_TEST_WEIGHTS")
SET_WEIGHTS = ["--set", f"detector.weights={WEIGHTS}"] if WEIGHTS else []


@lru_cache(maxsize=1)
def _missing() -> str | None:
    if not (SAMPLE / "video.mp4").is_file() or not (SAMPLE / "gt" / "gt.txt").is_file():
        return "the sample sequence samples/sample (video.mp4, gt/gt.txt) is not there yet"
    try:
        from detector import Detector, DetectorError
        Detector.load(WEIGHTS)
    except (ImportError, DetectorError) as e:
        return f"detector with default weights unavailable: {e}"
    return None


@pytest.fixture
def real():
    reason = _missing()
    if reason:
        pytest.skip(reason)


class Alerts:
    """Collects pub/sub messages from a Redis that may restart under it."""

    def __init__(self, server, channels: list[str]) -> None:
        self.server, self.channels, self.items = server, channels, []
        self._p = None

    def poll(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                if self._p is None:
                    self._p = self.server.client().pubsub()
                    self._p.subscribe(*self.channels)
                m = self._p.get_message(timeout=0.2)
                if m and m["type"] == "message":
                    self.items.append((time.monotonic(), m["channel"], json.loads(m["data"])))
            except Exception:  # noqa: BLE001 - redis restarting
                self._p = None
                time.sleep(0.2)

    def wait_for(self, pred, timeout: float, since: float = 0.0) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if any(t >= since and pred(ch, a) for t, ch, a in self.items):
                return True
            self.poll(0.5)
        return False


@pytest.mark.timeout(240)
def test_rtsp_run_publishes_and_survives_outages(real, tmp_path, rtsp_server_factory, redis_server):
    rtsp = rtsp_server_factory(SAMPLE / "video.mp4")
    metrics_port = free_port()
    env = pipeline_env(RTSP_URL=rtsp.url, REDIS_URL=redis_server.url, METRICS_PORT=str(metrics_port))
    alerts = Alerts(redis_server, ["itd:alerts:cam1", "itd:camera:status"])
    alerts.poll(0.3)
    proc = subprocess.Popen(["nice", "-n", "10", sys.executable, "-m", "pipeline", "run", "configs/rtsp.yaml",
                             *SET_WEIGHTS],
                            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        is_new = lambda ch, a: ch.endswith("cam1") and a["event"] == "new"  # noqa: E731
        assert alerts.wait_for(is_new, 90), "no new alert"
        body = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
        for name in ("itd_camera_fps", "itd_stage_seconds_bucket{le=\"0.1\",stage=\"inference\"}",
                     "itd_queue_depth", "itd_frames_total"):
            assert name in body, name

        rtsp.stop()  # the camera goes away mid-stream ...
        t_kill = time.monotonic()
        assert alerts.wait_for(lambda ch, a: a.get("status") == "offline", 30, t_kill), "offline not reported"
        rtsp.start()  # ... and comes back
        t_back = time.monotonic()
        assert alerts.wait_for(lambda ch, a: a.get("status") == "online", 30, t_back), "not back online"
        assert alerts.wait_for(is_new, 60, t_back), "alerts did not resume after reconnecting"

        redis_server.stop()
        time.sleep(1.0)
        redis_server.start()
        t_redis = time.monotonic()
        assert alerts.wait_for(lambda ch, a: ch.endswith("cam1"), 60, t_redis), "alerts did not resume after Redis"
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    assert proc.returncode == 0, err[-2000:]
    assert "Traceback" not in err


@pytest.mark.timeout(240)
def test_demo_runs_without_redis_or_camera(real, tmp_path):
    """From outside the repository: the demo finds its real clip, alerts its drone, ends with what it found, where
    the video is and a summary, and writes the annotated MP4."""
    out = tmp_path / "alerts.jsonl"
    r = run_cli("run", str(REPO / "configs" / "demo.yaml"), *SET_WEIGHTS, cwd=tmp_path,
                env=pipeline_env(ALERTS_OUT=str(out), REDIS_URL="redis://127.0.0.1:1/0"), timeout=230)
    assert r.returncode == 0, r.stderr[-2000:]
    events = [json.loads(line)["event"] for line in out.read_text().splitlines()]
    assert "Traceback" not in r.stderr
    closing = r.stderr.strip().splitlines()[-4:]
    assert closing[-1].startswith("summary: 325 frames (drone 325), 0 dropped, ")
    assert closing[1:3] == ["video: runs/demo/drone.mp4", f"alerts: {out}"]
    if not WEIGHTS:  # the shipped weights alert the real clip's drone, and nothing else
        assert events.count("new") == 1
        assert closing[0].startswith("found: drone track 1 alerted at frame ")
    import av

    with av.open(str(tmp_path / "runs" / "demo" / "drone.mp4")) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == 325 and frames[0].shape == (256, 320, 3)
    assert not np.array_equal(frames[0][:20], frames[1][:20])  # the header's frame number and time move on


@pytest.mark.timeout(300)
def test_replay_twice_gives_identical_alerts(real, tmp_path):
    reports = []
    for k in range(2):
        r = run_cli("replay", str(SAMPLE), "--config", "configs/replay.yaml", "--report", str(tmp_path / f"r{k}.json"),
                    "--tracks-out", str(tmp_path / f"t{k}.txt"), "--no-progress", *SET_WEIGHTS,
                    env=pipeline_env(ALERTS_OUT=str(tmp_path / f"a{k}.jsonl")), timeout=140)
        assert r.returncode == 0, r.stderr[-2000:]
        reports.append(json.loads((tmp_path / f"r{k}.json").read_text()))
    assert reports[0]["alerts_sha256"] == reports[1]["alerts_sha256"]
    assert reports[0]["frames"] == 200 and reports[0]["metrics"]["HOTA"] is not None
    assert (tmp_path / "t0.txt").read_text() == (tmp_path / "t1.txt").read_text()
