"""Shared fixtures: a private `redis-server` on a free port, a GStreamer RTSP server, short synthetic clips and
a fake detector (bright local maxima) for tests that must not depend on trained weights; `DATA`, the shared
data sets (`$ITD_DATA`, default ../shared/data: `detector.data_root`), which the tests that need skip without."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from common import DATA, free_port, wait_port  # noqa: E402,F401  (one helper for the tests and the benchmarks)
SYSTEM_PYTHON = "/usr/bin/python3"
RTSP_HELPER = Path(__file__).with_name("rtsp_server.py")


# ---------------------------------------------------------------- redis

class RedisServer:
    """A throw-away `redis-server` (no persistence) that tests may stop and start again on the same port."""

    def __init__(self, workdir: Path, password: str | None = None) -> None:
        self.port, self.workdir, self.password = free_port(), workdir, password
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> None:
        cmd = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
               "--dir", str(self.workdir)]
        if self.password:
            cmd += ["--requirepass", self.password]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not wait_port(self.port):
            self.stop()
            raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(5)
            self.proc = None

    def client(self):
        import redis
        return redis.Redis.from_url(self.url, decode_responses=True)


@pytest.fixture
def redis_server(tmp_path):
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (apt: redis-server)")
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


# ---------------------------------------------------------------- RTSP

def rtsp_available() -> str | None:
    """None when the GStreamer RTSP server can run, else the reason it cannot."""
    if not Path(SYSTEM_PYTHON).exists():
        return f"{SYSTEM_PYTHON} not found"
    r = subprocess.run([SYSTEM_PYTHON, "-c", "import gi; gi.require_version('GstRtspServer', '1.0'); "
                        "from gi.repository import GstRtspServer"], capture_output=True)
    if r.returncode:
        return "GStreamer RTSP bindings missing (apt: python3-gi gir1.2-gst-rtsp-server-1.0)"
    return None


class RtspServer:
    """`tests/rtsp_server.py` under the system python, serving an MP4 at rtsp://127.0.0.1:PORT/cam1."""

    def __init__(self, video: Path, port: int | None = None) -> None:
        self.video, self.port = video, port or free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/cam1"

    def start(self) -> None:
        self.proc = subprocess.Popen([SYSTEM_PYTHON, str(RTSP_HELPER), str(self.video), "--port", str(self.port)],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        line = self.proc.stdout.readline()
        if "ready" not in line:
            self.stop()
            raise RuntimeError(f"RTSP server did not start: {line.strip()}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(5)
            self.proc = None


@pytest.fixture
def rtsp_server_factory():
    reason = rtsp_available()
    if reason:
        pytest.skip(reason)
    servers = []

    def make(video: Path, port: int | None = None) -> RtspServer:
        s = RtspServer(video, port)
        s.start()
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.stop()


# ---------------------------------------------------------------- data

def _bounce(v: float, size: int, margin: int = 4) -> int:
    """Reflect a coordinate at the frame's margins, so targets stay inside for any clip length."""
    span = size - 1 - 2 * margin
    t = (v - margin) % (2 * span)
    return round(margin + (t if t <= span else 2 * span - t))


def make_clip(folder: Path, frames: int = 60, size: tuple[int, int] = (160, 128), fps: float = 25.0,
              seed: int = 0, video: bool = True, images: bool = False, dtype=np.uint8) -> Path:
    """A MOTChallenge sequence with two bright 3x3 targets moving ~1 px/frame over a noisy background."""
    from PIL import Image

    w, h = size
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "gt").mkdir(exist_ok=True)
    starts = [(20.0, 30.0, 1.0, 0.5), (w - 30.0, h - 30.0, -0.8, -0.4)]
    rows, stack = [], []
    peak = 220 if dtype == np.uint8 else 50000
    base = 40 if dtype == np.uint8 else 10000
    noise = 4 if dtype == np.uint8 else 800
    for f in range(1, frames + 1):
        img = base + rng.normal(0, noise, (h, w))
        for tid, (x0, y0, vx, vy) in enumerate(starts, start=1):
            x, y = _bounce(x0 + vx * (f - 1), w), _bounce(y0 + vy * (f - 1), h)
            img[y - 1:y + 2, x - 1:x + 2] = peak * 0.8
            img[y, x] = peak
            rows.append(f"{f},{tid},{x - 1.5 + 1:.3f},{y - 1.5 + 1:.3f},3.000,3.000,1,1,1,nan\n")
        stack.append(np.clip(img, 0, np.iinfo(dtype).max).astype(dtype))
    (folder / "gt" / "gt.txt").write_text("".join(rows))
    (folder / "seqinfo.ini").write_text(
        f"[Sequence]\nname={folder.name}\nimDir=img1\nframeRate={fps:g}\nseqLength={frames}\n"
        f"imWidth={w}\nimHeight={h}\nimExt=.png\n")
    if images:
        (folder / "img1").mkdir(exist_ok=True)
        for i, a in enumerate(stack, start=1):
            Image.fromarray(a).save(folder / "img1" / f"{i:06d}.png")
    if video:
        write_mp4(folder / "video.mp4", stack, fps)
    return folder


def write_mp4(path: Path, frames: list[np.ndarray], fps: float = 25.0) -> Path:
    """H.264 (near-lossless) grey video with a keyframe every second."""
    from tracking.h264 import H264Writer

    with H264Writer(path, fps, crf=12, options={"g": str(round(fps)), "bf": "0", "tune": "zerolatency"}) as w:
        for a in frames:
            w.write(a.astype(np.uint8))
    return path


@pytest.fixture
def clip(tmp_path) -> Path:
    """A 60-frame 160x128 MOT sequence with video.mp4 and PNGs."""
    return make_clip(tmp_path / "clip", frames=60, images=True)


class FakeDetector:
    """Bright 3x3 local maxima above `threshold` (stands in for the trained model in unit tests)."""

    device, variant = "cpu", "fake"

    def __init__(self, threshold: float = 150, fail_on: int | None = None) -> None:
        self.threshold, self.fail_on, self.calls = threshold, fail_on, 0

    def predict_batch(self, frames, timings=None):
        from scipy.ndimage import maximum_filter

        from detector.detections import Detections

        self.calls += 1
        if self.fail_on is not None and self.calls == self.fail_on:
            raise RuntimeError("simulated detector failure")
        t0 = time.perf_counter()
        out = []
        for f in frames:
            a = f.astype(np.float32) * (1.0 if f.dtype == np.uint8 else 255.0 / 65535.0)
            peaks = (a == maximum_filter(a, size=5)) & (a > self.threshold)
            ys, xs = np.nonzero(peaks)
            out.append(Detections.from_xywh(np.stack([xs, ys], 1).astype(np.float32), np.full((len(xs), 2), 3.0),
                                            np.clip(a[ys, xs] / 255.0, 0, 1)))
        if timings is not None:
            timings["inference"] = time.perf_counter() - t0
            timings["peaks"] = 0.0
        return out


def one_track(track_id: int, x: float, y: float, score: float, last_frame: int = 1):
    """`Tracker.active_tracks()` holding one confirmed 3x3 px track seen at `last_frame`."""
    from tracking.tracks import Tracks

    return Tracks(xy=[[x, y]], ltrb=[[1.5] * 4], score=[score], track_id=[track_id], vxy=[[1.0, 0.0]],
                  top_score=[score], hits=[last_frame], age=[last_frame], misses=[0], first_frame=[1],
                  last_frame=[last_frame])


@pytest.fixture
def fake_detector():
    return FakeDetector()


def pipeline_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def truncate_file(src, dst, keep: float = 0.5):
    """`head -c` of a file: the first `keep` of its bytes."""
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * keep)])
    return dst


def faststart_copy(src, dst):
    """Remux with the MP4 index first (`-movflags +faststart`, as streaming tools write), so that a truncated
    copy still opens."""
    import av

    with av.open(str(src)) as i, av.open(str(dst), "w", options={"movflags": "+faststart"}) as o:
        out = o.add_stream_from_template(i.streams.video[0])
        for packet in i.demux(i.streams.video[0]):
            if packet.dts is not None:
                packet.stream = out
                o.mux(packet)
    return dst


def run_cli(*args: str, env: dict | None = None, timeout: float = 120, cwd: Path = REPO
            ) -> subprocess.CompletedProcess:
    return subprocess.run(["nice", "-n", "10", sys.executable, "-m", "pipeline", *args], cwd=cwd,
                          env=env or pipeline_env(), capture_output=True, text=True, timeout=timeout)
