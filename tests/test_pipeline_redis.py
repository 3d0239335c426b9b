"""Redis sink against a private redis-server: pub/sub + capped stream + health keys, outages, passwords,
and the `subscribe` command."""
from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time

import pytest

from conftest import REPO, FakeDetector, RedisServer, make_clip, pipeline_env
from pipeline.config import parse_config
from pipeline.graph import Pipeline


def redis_config(source: str, url: str, extra: str = "", jsonl=None) -> object:
    sinks = f"  jsonl: {{path: {jsonl}}}\n" if jsonl else ""
    return parse_config(f"""cameras:
  cam: {{source: {source}}}
sinks:
  redis: {{url: "{url}", heartbeat_s: 0.5, heartbeat_ttl_s: 3 {extra}}}
{sinks}metrics: {{port: null}}
""")


def test_alerts_reach_pubsub_stream_and_health_keys(clip, redis_server):
    r = redis_server.client()
    pubsub = r.pubsub()
    pubsub.subscribe("itd:alerts:cam")
    status = r.pubsub()
    status.subscribe("itd:camera:status")
    time.sleep(0.2)
    cfg = redis_config(f"{{type: sequence, path: {clip}}}", redis_server.url)
    assert Pipeline(cfg, detector=FakeDetector()).run(install_signals=False).exit_code == 0
    got = []
    while (m := pubsub.get_message(timeout=0.5)) is not None:
        if m["type"] == "message":
            got.append(json.loads(m["data"]))
    assert [a["event"] for a in got if a["event"] != "update"] == ["new", "new", "end", "end"]
    entries = r.xrange("itd:alerts")
    assert len(entries) == len(got)
    assert json.loads(entries[0][1]["alert"]) == got[0] and entries[0][1]["camera"] == "cam"
    key = json.loads(r.get("itd:camera:cam"))
    assert key["status"] == "finished" and 0 < r.ttl("itd:camera:cam") <= 3
    statuses = []
    while (m := status.get_message(timeout=0.5)) is not None:
        if m["type"] == "message":
            statuses.append(json.loads(m["data"])["status"])
    assert statuses == ["online", "finished"]


@pytest.mark.timeout(60)
def test_redis_down_at_start_then_restarted_mid_run(tmp_path, caplog):
    """Alerts produced while Redis is down are buffered and delivered; a restart mid-run crashes nothing."""
    server = RedisServer(tmp_path)  # not started yet
    clip = make_clip(tmp_path / "c", frames=125)
    out = tmp_path / "a.jsonl"
    cfg = redis_config(f"{{type: file, path: {clip}/video.mp4, realtime: true}}", server.url, jsonl=out)
    pipe = Pipeline(cfg, detector=FakeDetector())
    received = []

    def outage():
        time.sleep(1.5)
        server.start()  # came up late
        time.sleep(1.2)
        server.stop()  # crashes mid-run ...
        time.sleep(0.8)
        server.start()  # ... and comes back empty
        r = server.client()
        p = r.pubsub()
        p.subscribe("itd:alerts:cam")
        while (m := p.get_message(timeout=2.0)) is not None:
            if m["type"] == "message":
                received.append(json.loads(m["data"]))

    t = threading.Thread(target=outage)
    t.start()
    try:
        with caplog.at_level(logging.INFO):
            result = pipe.run(install_signals=False)
        t.join(10)
        assert result.exit_code == 0
        assert "unreachable" in caplog.text and "reachable again" in caplog.text
        assert "alerts could not be delivered" not in caplog.text
        written = [json.loads(line) for line in open(out)]
        assert [a["event"] for a in received][-2:] == ["end", "end"]  # alerts resumed after the restart
        stream = server.client().xrange("itd:alerts")
        last = [json.loads(f["alert"]) for _, f in stream]
        assert last and last[-1]["track_id"] == written[-1]["track_id"] and last[-1]["event"] == "end"
    finally:
        server.stop()


def test_bounded_buffer_reports_drops_and_password_never_logged(tmp_path, clip, caplog):
    server = RedisServer(tmp_path, password="s3cr3t-pw")
    server.start()
    try:
        url = server.url.replace(str(server.port), "1")  # nothing listens on port 1
        cfg = redis_config(f"{{type: sequence, path: {clip}}}", url, ", buffer_size: 2, connect_timeout_s: 0.2")
        with caplog.at_level(logging.DEBUG):
            result = Pipeline(cfg, detector=FakeDetector()).run(install_signals=False)
        assert result.exit_code == 0
        assert "could not be delivered" in caplog.text and "s3cr3t" not in caplog.text
        assert "redis://127.0.0.1:1/0" in caplog.text

        caplog.clear()
        cfg = redis_config(f"{{type: sequence, path: {clip}}}", server.url)
        with caplog.at_level(logging.DEBUG):
            assert Pipeline(cfg, detector=FakeDetector()).run(install_signals=False).exit_code == 0
        stream = server.client().xrange("itd:alerts")
        assert stream and "s3cr3t" not in caplog.text and all("s3cr3t" not in f["alert"] for _, f in stream)
    finally:
        server.stop()


def _alert(camera: str, track_id: int) -> str:
    from pipeline.alerts import AlertNumbering
    from tracking.events import TrackEvent

    event = TrackEvent("new", track_id, 7, 0.3, 10, 20, 1, 0, 3, 3, 0.9, 0.9, 3, 3, 5, 7)
    return AlertNumbering().alerts([event], camera, 0.28, 100.0)[0].stamped(101.0).to_json()


def test_subscribe_prints_alerts_as_json_lines(redis_server):
    env = pipeline_env()
    cmd = [sys.executable, "-m", "pipeline", "subscribe", "--redis", redis_server.url, "--camera", "cam1",
           "--count", "2"]
    proc = subprocess.Popen(["nice", "-n", "10", *cmd], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    r = redis_server.client()
    deadline = time.monotonic() + 30
    while r.pubsub_numsub("itd:alerts:cam1")[0][1] == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    r.publish("itd:alerts:cam2", _alert("cam2", 9))
    r.publish("itd:alerts:cam1", _alert("cam1", 1))
    r.publish("itd:alerts:cam1", _alert("cam1", 2))
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert [json.loads(line)["track_id"] for line in out.splitlines()] == [1, 2]

    r.xadd("itd:alerts", {"camera": "cam1", "event": "new", "alert": _alert("cam1", 7)})
    res = subprocess.run(["nice", "-n", "10", sys.executable, "-m", "pipeline", "subscribe", "--redis",
                          redis_server.url, "--from-stream", "--count", "1"], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 0 and json.loads(res.stdout)["track_id"] == 7
