"""Acceptance of the distributed run: on loopback against a private redis-server, one ingest worker replays
the committed sample losslessly, two detect workers share the frames, one track worker tracks; one detect
worker is killed with SIGKILL mid-run. The run must finish, every frame must be tracked exactly once, and the
alerts must equal those of the single-process run of the same config.

The detector is the tests' `FakeDetector` (no trained weights on this machine yet: the subprocesses run through
tests/distributed_worker.py); ITD_TEST_WEIGHTS=path runs the real model instead (slower)."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import REPO, free_port, pipeline_env

SAMPLE = REPO / "samples" / "sample"
LAUNCHER = Path(__file__).with_name("distributed_worker.py")
WEIGHTS = os.environ.get("ITD_TEST_WEIGHTS")
FRAMES = 200

pytestmark = pytest.mark.skipif(not (SAMPLE / "video.mp4").is_file(), reason="samples/sample is not there")


def worker(args: list[str], env: dict, log: Path) -> subprocess.Popen:
    cmd = ["nice", "-n", "10", sys.executable, str(LAUNCHER), "run", "configs/distributed.yaml", *args]
    if WEIGHTS:
        cmd += ["--set", f"detector.weights={WEIGHTS}"]
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=open(log, "w"))


def alerts(path: Path) -> list[dict]:
    """The alerts less their per-run fields (id, captured_at, published_at)."""
    from pipeline.alerts import comparable
    return [comparable(json.loads(line)) for line in path.read_text().splitlines()]


def finish(proc: subprocess.Popen, timeout: float) -> int:
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return -999


@pytest.mark.timeout(175)
def test_distributed_run_survives_a_killed_detect_worker(tmp_path, redis_server):
    base = pipeline_env(REDIS_URL=redis_server.url, ITD_FAKE_DETECTOR="" if WEIGHTS else "1",
                        SEQUENCE=str(SAMPLE))
    r = redis_server.client()

    # the single-process reference (its own stream prefix, same Redis)
    ref = worker(["--set", "metrics.port=null"], {**base, "ALERTS_OUT": str(tmp_path / "ref.jsonl"),
                                                  "STREAMS_PREFIX": "ref"}, tmp_path / "ref.log")
    assert finish(ref, 80) == 0, (tmp_path / "ref.log").read_text()[-2000:]
    expected = alerts(tmp_path / "ref.jsonl")
    assert expected and r.xlen("ref:frames") == 0  # the reference run never touches the streams
    r.delete("itd:alerts")

    env = {**base, "ALERTS_OUT": str(tmp_path / "dist.jsonl")}
    ports = [free_port() for _ in range(3)]
    track = worker(["--role", "track", "--set", f"metrics.port={ports[0]}"], env, tmp_path / "track.log")
    victim = worker(["--role", "detect", "--set", f"metrics.port={ports[1]}"], env, tmp_path / "victim.log")
    survivor = worker(["--role", "detect", "--set", "detector.batch_size=2", "--set", f"metrics.port={ports[2]}"],
                      env, tmp_path / "survivor.log")
    procs = [track, victim, survivor]
    try:
        deadline = time.monotonic() + 60  # both detect workers up before the replay starts
        while time.monotonic() < deadline:
            groups = {g["name"] for g in r.xinfo_groups("itd:frames")} if r.exists("itd:frames") else set()
            if "detect" in groups and len(r.xinfo_consumers("itd:frames", "detect")) == 2:
                break
            time.sleep(0.2)
        ingest = worker(["--role", "ingest", "--set", "metrics.port=null"], env, tmp_path / "ingest.log")
        procs.append(ingest)

        # SIGKILL the victim while it holds frames it has not acknowledged, a third of the way in
        victim_name = f"detect-{os.uname().nodename}-{victim.pid}"
        deadline, killed_holding = time.monotonic() + 90, 0
        while time.monotonic() < deadline:
            if _progress(ports[0]) >= FRAMES // 3:
                victim.send_signal(signal.SIGSTOP)  # frozen: what it holds cannot change any more
                held = r.xpending_range("itd:frames", "detect", "-", "+", 100, consumername=victim_name)
                if held:
                    victim.send_signal(signal.SIGKILL)
                    killed_holding = len(held)
                    break
                victim.send_signal(signal.SIGCONT)
            time.sleep(0.01)
        assert killed_holding, "the victim never held frames mid-run"
        victim.wait(10)

        # metrics of a worker: the pipeline's own plus the streams'
        body = urllib.request.urlopen(f"http://127.0.0.1:{ports[2]}/metrics", timeout=5).read().decode()
        for name in ("itd_stream_lag{", "itd_stream_pending{", "itd_stream_length{", "itd_stream_hop_seconds_bucket",
                     "itd_stage_seconds_bucket", "itd_batch_size_bucket"):
            assert name in body, name

        assert finish(ingest, 90) == 0, (tmp_path / "ingest.log").read_text()[-2000:]
        assert finish(track, 60) == 0, (tmp_path / "track.log").read_text()[-2000:]
        survivor.send_signal(signal.SIGTERM)
        assert finish(survivor, 20) == 0, (tmp_path / "survivor.log").read_text()[-2000:]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()

    logs = {p: (tmp_path / f"{p}.log").read_text() for p in ("track", "survivor", "ingest")}
    for text in logs.values():
        assert "Traceback" not in text
    # the survivor took over what the victim held when it died
    claimed = sum(int(n) for n in re.findall(r"reclaimed (\d+) entries", logs["survivor"]))
    assert claimed >= killed_holding
    # every frame tracked exactly once, in order
    m = re.search(r"camera cam1 ended: (\d+) frames tracked in order \(frames (\d+)-(\d+)\), (\d+) duplicates "
                  r"dropped, (\d+) never arrived", logs["track"])
    assert m, logs["track"][-2000:]
    assert (int(m[1]), int(m[2]), int(m[3]), int(m[5])) == (FRAMES, 1, FRAMES, 0)
    # nothing left in flight
    for stream, group in (("itd:frames", "detect"), ("itd:detections", "track")):
        assert r.xlen(stream) == 0 and r.xpending(stream, group)["pending"] == 0
    # the same alerts as the single-process run, in the file and in Redis
    got = alerts(tmp_path / "dist.jsonl")
    assert got == expected
    published = [json.loads(f["alert"]) for _, f in r.xrange("itd:alerts")]
    assert [(a["event"], a["track_id"], a["frame_index"]) for a in published] == \
        [(a["event"], a["track_id"], a["frame_index"]) for a in expected]


def _progress(port: int) -> float:
    """Frames the track worker has tracked so far (its itd_stage_seconds_count{stage="track"})."""
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
    except OSError:
        return 0
    m = re.search(r'itd_stage_seconds_count\{stage="track"\} ([0-9.e+]+)', body)
    return float(m[1]) if m else 0
