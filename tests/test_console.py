"""Snapshots (Redis with a TTL, a folder, off), the live view keys, and the console server's API, authentication
and bad input, against a real redis-server and a real `python -m pipeline ui` (the page itself:
test_console_browser.py)."""
from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
import uuid
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from common import free_port, wait_port
from conftest import REPO, FakeDetector, one_track, pipeline_env
from pipeline.alerts import Alert
from pipeline.config import SnapshotConfig, parse_config
from pipeline.frames import Frame, Snapshot, TrackedFrame
from pipeline.graph import Pipeline
from pipeline.snapshots import Snapshotter
from pipeline.sinks.snapshot_folder import SnapshotFolderSink


def jpeg_size(data: bytes) -> tuple[int, int]:
    import io
    return Image.open(io.BytesIO(data)).size


def config(clip: Path, sinks: str, extra: str = ""):
    return parse_config(f"""cameras:
  cam: {{source: {{type: sequence, path: {clip}}}}}
sinks:
{sinks}
metrics: {{port: null}}
{extra}""")


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# ---------------------------------------------------------------- snapshots

def _frame(index: int, x: float, y: float) -> Frame:
    image = np.full((128, 160), 40, np.uint8)
    image[int(y) - 1:int(y) + 2, int(x) - 1:int(x) + 2] = 200
    return Frame("cam", index, index / 25, time.time(), index / 25, image)


def _record(index, x, y, score, alerts):
    from detector.detections import Detections
    return TrackedFrame(_frame(index, x, y), Detections.empty(), alerts, one_track(7, x, y, score))


def _alert(event, index, x, y, score):
    return Alert(id=uuid.uuid4().hex, seq=index, event=event, camera="cam", track_id=7, frame_index=index, pts=None,
                 x=x, y=y, w=3.0, h=3.0, score=score, vx=0.0, vy=0.0, top_score=score, hits=index, age=index,
                 first_frame=1, last_frame=index, reason="lost" if event == "end" else None, captured_at=None)


def test_new_gets_chip_and_frame_and_end_points_to_the_best_moment():
    snap = Snapshotter(SnapshotConfig(), lambda sid: f"/snapshots/{sid}")
    out = snap(_record(5, 50, 60, 0.6, [_alert("new", 5, 50, 60, 0.6)]))
    pictures, record = out[:-1], out[-1]
    assert len(pictures) == 1 and isinstance(pictures[0], Snapshot)
    assert jpeg_size(pictures[0].chip_jpeg) == (96, 96)
    assert jpeg_size(pictures[0].frame_jpeg) == (160, 128)  # already under frame_width: not enlarged
    new_url = record.alerts[0].snapshot_url
    assert new_url == f"/snapshots/{pictures[0].id}"
    snap(_record(6, 52, 61, 0.95, []))  # the track's best moment
    out = snap(_record(7, 54, 62, 0.7, [_alert("update", 7, 54, 62, 0.7)]))
    assert out[-1].alerts[0].snapshot_url == new_url  # updates point to the stored picture
    out = snap(_record(8, 56, 63, 0.5, [_alert("end", 8, 56, 63, 0.5)]))
    assert len(out) == 2 and out[0].id.startswith("cam-7-6-")  # taken from frame 6
    assert out[-1].alerts[0].snapshot_url == f"/snapshots/{out[0].id}"


def test_snapshots_in_redis_with_ttl_and_live_view_keys(clip, redis_server, tmp_path):
    cfg = config(clip, f'  redis: {{url: "{redis_server.url}", live: {{fps: 100, ttl_s: 30}}}}\n'
                       f'  jsonl: {{path: {tmp_path}/a.jsonl}}', "snapshots: {ttl_s: 60, frame_width: 100}")
    assert Pipeline(cfg, detector=FakeDetector()).run(install_signals=False).exit_code == 0
    alerts = read_jsonl(tmp_path / "a.jsonl")
    r = redis_server.client()
    raw = redis_server.client()
    raw.connection_pool.connection_kwargs["decode_responses"] = False
    for a in alerts:
        assert a["snapshot_url"].startswith("/snapshots/"), a
        sid = a["snapshot_url"].removeprefix("/snapshots/")
        for part, size in (("frame", (100, 80)), ("chip", (96, 96))):
            key = f"itd:snapshot:{sid}:{part}"
            assert 0 < r.pttl(key) <= 60_000
            assert jpeg_size(raw.get(key)) == size
    info = json.loads(r.get("itd:live:cam:info"))
    assert info["camera"] == "cam" and info["frame_index"] == 60 and info["dropped"] == 0
    assert jpeg_size(raw.get("itd:live:cam")) == (160, 128) and 0 < r.pttl("itd:live:cam") <= 30_000


def test_snapshots_in_a_folder_without_redis(clip, tmp_path):
    folder = tmp_path / "snaps"
    cfg = config(clip, f"  jsonl: {{path: {tmp_path}/a.jsonl}}", f"snapshots: {{folder: {folder}}}")
    assert Pipeline(cfg, detector=FakeDetector()).run(install_signals=False).exit_code == 0
    news = [a for a in read_jsonl(tmp_path / "a.jsonl") if a["event"] == "new"]
    assert len(news) == 2
    for a in news:
        path = Path(a["snapshot_url"].removeprefix("file://"))
        assert path.parent == folder.resolve() and path.exists()
        assert path.with_name(path.stem + "-chip.jpg").exists()


def test_snapshot_folder_deletes_expired_files(tmp_path):
    sink = SnapshotFolderSink(tmp_path, ttl_s=100)
    old = tmp_path / "old.jpg"
    old.write_bytes(b"x")
    os.utime(old, (time.time() - 1000, time.time() - 1000))
    sink.handle(Snapshot("fresh", "cam", b"f", b"c", 100))
    sink.tick()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fresh-chip.jpg", "fresh.jpg"]


def test_snapshots_off(clip, tmp_path):
    cfg = config(clip, f"  jsonl: {{path: {tmp_path}/a.jsonl}}",
                 f"snapshots: {{enabled: false, folder: {tmp_path}/s}}")
    assert Pipeline(cfg, detector=FakeDetector()).run(install_signals=False).exit_code == 0
    assert all(a["snapshot_url"] is None for a in read_jsonl(tmp_path / "a.jsonl"))
    assert not (tmp_path / "s").exists()


def test_live_view_with_redis_down_skips_frames_and_the_run_finishes(clip, tmp_path, caplog):
    from detector.exit_status import ExitStatus

    port = free_port()  # nothing listens there
    cfg = config(clip, f'  redis: {{url: "redis://127.0.0.1:{port}/0", connect_timeout_s: 0.2, '
                       f'spill_path: {tmp_path}/spill.jsonl}}\n  jsonl: {{path: {tmp_path}/a.jsonl}}')
    with caplog.at_level("WARNING"):
        result = Pipeline(cfg, detector=FakeDetector()).run(install_signals=False)
    assert result.exit_code == ExitStatus.UNDELIVERED  # the alerts' own outcome; the live view adds no failure
    assert len([r for r in caplog.records if r.name == "pipeline.sinks.live"]) == 1


# ---------------------------------------------------------------- the console server

def start_console(*args: str, env: dict | None = None) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "ui", *args, "--port", str(port)], cwd=REPO,
                            env=env or pipeline_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if not wait_port(port, timeout=30):
        proc.kill()
        pytest.fail(f"console did not start: {proc.communicate()[1]}")
    return proc, port


def stop(proc: subprocess.Popen) -> str:
    proc.terminate()
    return proc.communicate(timeout=10)[1]


def get(port: int, path: str, headers: dict | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def run_ui(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", "ui", *args], cwd=REPO, env=env or pipeline_env(),
                          capture_output=True, text=True, timeout=60)


def test_bad_input_is_one_line():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        r = run_ui("--redis", "redis://127.0.0.1:6379/0", "--port", str(busy.getsockname()[1]))
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0
    assert "cannot listen on 127.0.0.1" in r.stderr and "in use" in r.stderr
    r = run_ui("--redis", "http://user:secret@host/0")
    assert r.returncode == 2 and r.stderr.startswith("error: bad Redis URL") and "secret" not in r.stderr
    r = run_ui("--redis", "redis://127.0.0.1:notaport/0")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    r = run_ui("--port", "70000")
    assert r.returncode == 2 and r.stderr == "error: --port 70000: must be from 0 to 65535\n"
    r = run_ui("--host", "no-such-host.invalid", "--port", "0", env=pipeline_env(ITD_UI_TOKEN="t"))
    assert r.returncode == 2 and r.stderr.startswith("error: cannot listen on no-such-host.invalid:0: ")
    assert r.stderr.count("\n") == 1
    env = pipeline_env()
    env.pop("ITD_UI_TOKEN", None)
    r = run_ui("--host", "0.0.0.0", env=env)
    assert r.returncode == 2 and "ITD_UI_TOKEN" in r.stderr and r.stderr.count("\n") == 1


def test_redis_unreachable_at_start_warns_and_api_says_so():
    proc, port = start_console("--redis", f"redis://:hunter2@127.0.0.1:{free_port()}/0")
    try:
        status, body = get(port, "/api/alerts?limit=3")
        assert status == 503 and json.loads(body)["error"].startswith("redis unreachable")
        status, body = get(port, "/api/cameras")
        assert status == 503
        status, body = get(port, "/")
        assert status == 200 and b"ITD console" in body
        status, body = get(port, "/snapshots/cam-1-2-abc/chip")
        assert status == 503 and b"Redis unreachable" in body
        status, body = get(port, "/api/alerts?limit=0")
        assert status == 400
    finally:
        err = stop(proc)
    assert "warning: redis" in err and "unreachable" in err and "hunter2" not in err and "Traceback" not in err


def test_token_protects_everything_and_never_reaches_the_page(redis_server):
    token = "s3cret-token"
    proc, port = start_console("--redis", redis_server.url, env=pipeline_env(ITD_UI_TOKEN=token))
    try:
        for path in ("/", "/api/alerts", "/api/cameras", "/live/cam.jpg", "/static/console.js"):
            status, _ = get(port, path)
            assert status == 401, path
        assert get(port, "/", {"Authorization": "Bearer wrong"})[0] == 401
        status, page = get(port, "/", {"Authorization": f"Bearer {token}"})
        assert status == 200 and token.encode() not in page
        basic = base64.b64encode(f"officer:{token}".encode()).decode()
        status, js = get(port, "/static/console.js", {"Authorization": f"Basic {basic}"})
        assert status == 200 and token.encode() not in js
        assert get(port, "/api/alerts?limit=1", {"Authorization": f"Basic {basic}"})[0] == 200
    finally:
        stop(proc)


def test_api_alerts_filters_and_missing_pictures(redis_server):
    r = redis_server.client()
    for i, (cam, event) in enumerate([("a", "new"), ("b", "new"), ("a", "end")]):
        alert = {"event": event, "camera": cam, "track_id": i, "snapshot_url": f"/snapshots/{cam}-{i}-x"}
        r.xadd("itd:alerts", {"camera": cam, "event": event, "alert": json.dumps(alert)})
    r.set("itd:camera:a", json.dumps({"status": "online", "reason": "", "at": 1.0}))
    proc, port = start_console("--redis", redis_server.url)
    try:
        status, body = get(port, "/api/alerts?limit=10")
        assert status == 200 and [a["track_id"] for a in json.loads(body)] == [2, 1, 0]
        assert [a["track_id"] for a in json.loads(get(port, "/api/alerts?limit=1&camera=a")[1])] == [2]
        assert [a["track_id"] for a in json.loads(get(port, "/api/alerts?event=new")[1])] == [1, 0]
        cams = json.loads(get(port, "/api/cameras")[1])
        assert [(c["camera"], c["status"], c["live"]) for c in cams] == [("a", "online", False)]
        status, body = get(port, "/snapshots/a-0-x")
        assert status == 404 and b"snapshot expired or missing" in body
        status, body = get(port, "/live/a.jpg")
        assert status == 404 and b"no live view" in body
        assert get(port, "/snapshots/..%2F..%2Fetc")[0] == 404
    finally:
        stop(proc)
