"""Live RTSP ingestion against a real GStreamer RTSP server and a private redis-server (fake detector, real
tracker): camera killed and restarted mid-stream, Redis restarted mid-run, an unreachable camera at start."""
from __future__ import annotations

import json
import threading
import time

import pytest

from conftest import FakeDetector, free_port, make_clip
from pipeline.config import parse_config
from pipeline.graph import Pipeline


@pytest.mark.timeout(120)
def test_camera_and_redis_outages_mid_run(tmp_path, rtsp_server_factory, redis_server):
    clip = make_clip(tmp_path / "clip", frames=150, size=(320, 256))
    rtsp = rtsp_server_factory(clip / "video.mp4")
    dead_port = free_port()
    cfg = parse_config(f"""
cameras:
  cam1:
    source: {{type: rtsp, url: "{rtsp.url}", open_timeout_s: 2}}
    fps: 25
    no_frame_timeout_min_s: 1
    reconnect: {{initial_s: 0.2, max_s: 1}}
  dead:
    source: {{type: rtsp, url: "rtsp://admin:hunter2@127.0.0.1:{dead_port}/x", open_timeout_s: 1}}
    reconnect: {{initial_s: 0.2, max_s: 1}}
sinks:
  redis: {{url: "{redis_server.url}", heartbeat_s: 0.5}}
metrics: {{port: 0}}
""")
    pipe = Pipeline(cfg, detector=FakeDetector())
    statuses: list[tuple[str, str]] = []
    pipe.health.subscribe(lambda e: statuses.append((e.camera, e.status)))
    alerts: list[tuple[float, dict]] = []
    marks: dict[str, float] = {}
    stop = threading.Event()

    def listen():
        while not stop.is_set():
            try:
                p = redis_server.client().pubsub()
                p.subscribe("itd:alerts:cam1")
                while not stop.is_set():
                    m = p.get_message(timeout=0.2)
                    if m and m["type"] == "message":
                        alerts.append((time.monotonic(), json.loads(m["data"])))
            except Exception:  # noqa: BLE001 - redis restarts under us
                time.sleep(0.2)

    def script():
        deadline = time.monotonic() + 30
        while not any(a["event"] == "new" for _, a in alerts) and time.monotonic() < deadline:
            time.sleep(0.1)
        marks["kill_camera"] = time.monotonic()
        rtsp.stop()
        time.sleep(1.5)
        rtsp.start()
        marks["camera_back"] = time.monotonic()
        time.sleep(2.0)
        redis_server.stop()
        time.sleep(1.0)
        redis_server.start()
        marks["redis_back"] = time.monotonic()
        time.sleep(2.5)
        pipe.stop("test over")

    threading.Thread(target=listen, daemon=True).start()
    threading.Thread(target=script, daemon=True).start()
    try:
        result = pipe.run(install_signals=False)
    finally:
        stop.set()
    assert result.exit_code == 1, result  # the dead camera never delivered a frame
    assert result.message.startswith("camera dead: ") and "cam1" not in result.message
    assert "kill_camera" in marks and "redis_back" in marks, "no alert before the camera was killed"
    cam1 = [s for c, s in statuses if c == "cam1"]
    assert cam1[:1] == ["online"] and "offline" in cam1 and "reconnecting" in cam1
    assert cam1[cam1.index("offline"):].count("online") >= 1  # reconnected
    assert ("dead", "offline") in statuses and ("dead", "online") not in statuses
    after_camera = [a for t, a in alerts if t > marks["camera_back"] and a["event"] == "new"]
    after_redis = [a for t, a in alerts if t > marks["redis_back"]]
    assert after_camera, "no new alerts after the camera came back"
    assert after_redis, "no alerts after Redis came back"
    assert pipe.metrics.reconnects.labels("cam1")._value.get() >= 1
    assert all("hunter2" not in json.dumps(a) for _, a in alerts)
