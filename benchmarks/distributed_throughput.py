"""Distributed run on this machine: throughput with 1, 2 and 3 detect worker processes (ratios in one run),
and the latency each Redis Streams hop adds (p50 / p99).

    python benchmarks/distributed_throughput.py [--frames 60] [--workers 1,2,3] [--weights PATH] [--json out.json]
        [--parts throughput,single,ingest,hops]

Throughput: a private redis-server on loopback, `python -m pipeline run configs/distributed.yaml` as one ingest,
N detect and one track process replaying the first `--frames` frames of samples/sample losslessly; timed from the
first frame a detect worker reads to the last record the track worker acknowledges (process start-up and model
loading excluded). Each detect worker gets one inference thread (detector.threads=1) so N
workers use N cores. The detector is the shipped `fast` model, or (no trained weights yet) the same
architecture with untrained weights: identical compute, no detections.

Ingest: one ingest worker alone (nothing downstream, window wide open) publishing the whole 200-frame sample
video: decode + compress + XADD frames per second, i.e. how many cameras one ingest worker carries.

Hop latency: frames (640x512 uint8 from the sample) and detection records sent through the transport itself
(codec + `StreamWriter` -> `GroupReader` in another process) at 25 per second, unloaded: encode (zlib) +
XADD + XREADGROUP + decode, measured from the encoder's `sent_at` stamp to the decoded record.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SAMPLE = ROOT / "samples" / "sample"

from common import start_redis  # noqa: E402


def sample_frames(n: int) -> list[np.ndarray]:
    from tracking.sequences import open_sequence
    out = []
    for _, image in open_sequence(SAMPLE).frames():
        out.append(np.ascontiguousarray(image))
        if len(out) == n:
            break
    return out


def short_sequence(folder: Path, frames: list[np.ndarray]) -> Path:
    """The first frames of the sample as a MOTChallenge folder (lossless PNGs)."""
    from PIL import Image
    (folder / "img1").mkdir(parents=True)
    for i, a in enumerate(frames, start=1):
        Image.fromarray(a).save(folder / "img1" / f"{i:06d}.png")
    h, w = frames[0].shape
    (folder / "seqinfo.ini").write_text(f"[Sequence]\nname=bench\nimDir=img1\nframeRate=25\nseqLength={len(frames)}\n"
                                        f"imWidth={w}\nimHeight={h}\nimExt=.png\n")
    return folder


def weights_path(tmp: Path, given: str | None) -> tuple[str, str]:
    from detector import Detector, DetectorError
    if given:
        return given, given
    try:
        Detector.load("fast", device="cpu")
        return "fast", "shipped fast"
    except DetectorError:
        import torch
        from detector.checkpoint import save_checkpoint
        from detector.imageio import PREPROCESSING
        from detector.models import create_model
        torch.manual_seed(0)
        m = create_model("fast")
        path = tmp / "untrained-fast.pt"
        save_checkpoint(path, m, {"variant": "fast", "model_kwargs": {}, "stride": m.stride,
                                  "preprocessing": PREPROCESSING, "threshold": 0.5})
        return str(path), "fast architecture, untrained weights (no trained weights on this machine)"


def pipeline(role: str | None, env: dict, log: Path, extra: list[str] = ()) -> subprocess.Popen:
    cmd = ["nice", "-n", "10", sys.executable, "-m", "pipeline", "run", "configs/distributed.yaml",
           "--set", "metrics.port=null", *extra]
    if role:
        cmd += ["--role", role]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=open(log, "w"))


def run_distributed(n: int, url: str, env: dict, tmp: Path, frames: int) -> dict:
    import redis
    r = redis.Redis.from_url(url)
    r.flushall()
    prefix = f"bench{n}"
    env = {**env, "STREAMS_PREFIX": prefix, "ALERTS_OUT": str(tmp / f"alerts{n}.jsonl")}
    track = pipeline("track", env, tmp / f"track{n}.log")
    detects = [pipeline("detect", {**env, "OMP_NUM_THREADS": "1"}, tmp / f"detect{n}-{k}.log",
                        ["--set", "detector.threads=1"]) for k in range(n)]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # all workers loaded and waiting before the clock starts
        try:
            if len(r.xinfo_consumers(f"{prefix}:frames", "detect")) == n and r.exists(f"{prefix}:detections"):
                break
        except redis.ResponseError:
            pass
        time.sleep(0.2)
    ingest = pipeline("ingest", env, tmp / f"ingest{n}.log")
    # the clock runs from the first frame a detect worker reads to the last record the tracker acknowledges
    # (process start-up, model loading and the sequence's decoding start are outside it)
    t0 = t1 = None
    while track.poll() is None and t1 is None:
        read = _entries_read(r, f"{prefix}:frames", "detect")
        if t0 is None and read > 0:
            t0 = time.perf_counter()
        if t0 is not None and _entries_read(r, f"{prefix}:detections", "track") >= frames + 1 and \
                r.xlen(f"{prefix}:detections") == 0 and r.xlen(f"{prefix}:frames") == 0:
            t1 = time.perf_counter()
        time.sleep(0.01)
    code = track.wait(900)
    elapsed = (t1 or time.perf_counter()) - (t0 or 0)
    ingest.wait(30)
    for p in detects:
        p.terminate()
    for p in detects:
        p.wait(30)
    if code != 0:
        raise SystemExit(f"track worker failed:\n{(tmp / f'track{n}.log').read_text()[-2000:]}")
    return {"detect_workers": n, "frames": frames, "elapsed_s": round(elapsed, 2), "fps": round(frames / elapsed, 2)}


def _entries_read(r, stream: str, group: str) -> int:
    try:
        groups = r.xinfo_groups(stream)
    except Exception:  # noqa: BLE001 - not created yet
        return 0
    for g in groups:
        if g["name"] in (group, group.encode()):
            return int(g.get("entries-read") or 0)
    return 0


def run_single(env: dict, tmp: Path, frames: int) -> dict:
    """The same replay in one process (one inference thread), timed with its start-up (for orientation only)."""
    t0 = time.perf_counter()
    p = pipeline(None, {**env, "OMP_NUM_THREADS": "1", "ALERTS_OUT": str(tmp / "alerts_single.jsonl")},
                 tmp / "single.log", ["--set", "detector.threads=1"])
    if p.wait(900) != 0:
        raise SystemExit(f"single-process run failed:\n{(tmp / 'single.log').read_text()[-2000:]}")
    elapsed = time.perf_counter() - t0  # includes process start and model load, unlike the distributed runs
    return {"frames": frames, "elapsed_s_with_startup": round(elapsed, 2), "fps_with_startup": round(frames / elapsed, 2)}


def run_ingest(url: str, env: dict, tmp: Path) -> dict:
    import redis
    from tracking.sequences import open_sequence
    r = redis.Redis.from_url(url)
    frames = open_sequence(SAMPLE).length
    env = {**env, "SEQUENCE": str(SAMPLE), "STREAMS_PREFIX": "ingest"}
    p = pipeline("ingest", env, tmp / "ingest_only.log", ["--set", "streams.in_flight=1000",
                                                          "--set", "streams.detections_maxlen=2000"])
    t0 = None
    while p.poll() is None:
        n = r.xlen("ingest:frames")
        if t0 is None and n > 0:
            t0, n0 = time.perf_counter(), n
        time.sleep(0.005)
    elapsed = time.perf_counter() - t0
    assert r.xlen("ingest:frames") == frames + 1, (tmp / "ingest_only.log").read_text()[-2000:]
    return {"frames": frames, "source": "samples/sample/video.mp4 (H.264)", "elapsed_s": round(elapsed, 2),
            "fps": round((frames - n0) / elapsed, 1)}


# ---------------------------------------------------------------- hop latency

def _consume(url: str, stream: str, n: int, out) -> None:
    from pipeline.distributed.codec import decode
    from pipeline.distributed.streams import GroupReader, connect
    reader = GroupReader(connect(url), stream, "bench", "c", threading.Event())
    out.put("ready")
    lat: list[float] = []
    while len(lat) < n:
        for eid, fields in reader.read(16, 0.5) or []:
            _, env = decode(fields)
            lat.append(time.time() - env.sent_at)
            reader.ack([eid])
    out.put(lat)


def hop_latency(url: str, kind: str, images: list[np.ndarray], n: int, rate: float = 25.0) -> dict:
    from detector.detections import Detections
    from pipeline.distributed.codec import Envelope, encode_detected, encode_frame
    from pipeline.distributed.streams import GroupReader, StreamWriter, connect
    from pipeline.frames import DetectedFrame, Frame

    client = connect(url)
    stream = f"hop:{kind}"
    GroupReader(client, stream, "bench", "setup", threading.Event())
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    proc = ctx.Process(target=_consume, args=(url, stream, n, q))
    proc.start()
    assert q.get(timeout=300) == "ready"
    writer = StreamWriter(client, stream, 10_000, threading.Event())
    dets = Detections.from_xywh(np.random.default_rng(0).uniform(0, 500, (4, 2)), np.full((4, 2), 3.0), np.full(4, 0.8))
    encode_s = []
    for i in range(n):
        t_next = time.perf_counter() + 1 / rate
        img = images[i % len(images)]
        f = Frame("cam", i + 1, i / rate, time.time(), i / rate, img)
        env = Envelope("cam", 1, i + 1, False)
        t = time.perf_counter()
        fields = encode_frame(f, env) if kind == "frames" else encode_detected(DetectedFrame(f, dets), env)
        encode_s.append(time.perf_counter() - t)
        writer.add(fields, live=False)
        time.sleep(max(0.0, t_next - time.perf_counter()))
    lat = sorted(q.get(timeout=60))
    proc.join(10)
    ms = [1000 * x for x in lat]
    size = len(fields.get(b"image", b"")) if kind == "frames" else sum(len(v) for v in fields.values())
    return {"hop": kind, "entries": n, "p50_ms": round(statistics.median(ms), 2),
            "p99_ms": round(ms[min(len(ms) - 1, int(0.99 * len(ms)))], 2), "max_ms": round(ms[-1], 2),
            "encode_p50_ms": round(1000 * statistics.median(encode_s), 2), "entry_bytes": size}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=60, help="frames of the sample to replay (default 60)")
    ap.add_argument("--workers", default="1,2,3")
    ap.add_argument("--weights", help="detector checkpoint (default: shipped fast, else untrained fast)")
    ap.add_argument("--hop-entries", type=int, default=200)
    ap.add_argument("--parts", default="throughput,single,ingest,hops", help="what to measure")
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args()
    if shutil.which("redis-server") is None:
        raise SystemExit("error: redis-server is not installed")
    tmp = Path(tempfile.mkdtemp(prefix="itd-dist-bench-"))
    redis_proc, url = start_redis(tmp)
    try:
        images = sample_frames(args.frames)
        seq = short_sequence(tmp / "seq", images)
        weights, what = weights_path(tmp, args.weights)
        env = {**os.environ, "PYTHONPATH": str(ROOT), "REDIS_URL": url, "SEQUENCE": str(seq), "WEIGHTS": weights,
               "DEVICE": "cpu"}
        result: dict = {"machine": f"{os.cpu_count()} CPU cores, shared (load average "
                                   f"{os.getloadavg()[0]:.1f} at start)", "detector": what,
                        "frame_size": f"{images[0].shape[1]}x{images[0].shape[0]}", "throughput": []}
        parts = set(args.parts.split(","))
        if "throughput" in parts:
            for n in [int(x) for x in args.workers.split(",")]:
                result["throughput"].append(run_distributed(n, url, env, tmp, len(images)))
                print(json.dumps(result["throughput"][-1]), flush=True)
            base = result["throughput"][0]["fps"]
            for row in result["throughput"]:
                row["ratio_vs_first"] = round(row["fps"] / base, 2)
        if "single" in parts:
            result["single_process"] = run_single(env, tmp, len(images))
        if "ingest" in parts:
            result["ingest_worker"] = run_ingest(url, env, tmp)
        if "hops" in parts:
            result["hops"] = [hop_latency(url, "frames", images, args.hop_entries),
                              hop_latency(url, "detections", images, args.hop_entries)]
        result["load_average_end"] = round(os.getloadavg()[0], 1)
    finally:
        redis_proc.kill()
        redis_proc.wait()
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
