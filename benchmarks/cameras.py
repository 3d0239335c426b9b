"""Cameras per machine: N live 640x512 cameras at 25 fps, alerts to a real redis-server; for each N, frames
decoded / detected / dropped, capture-to-publish p50 / p99, CPU use, and the largest N that keeps up.

    python benchmarks/cameras.py [--cameras 1 2 3 4] [--seconds 40] [--source file|rtsp] [--set key=value ...]

Each camera plays the 640x512 sample recording, looped to `--seconds`, live: a file paced in real time
(`realtime: true`: the reader keeps only the newest frame, as with a camera) or, with `--source rtsp`, one
GStreamer RTSP server per camera. Alerts go to a private redis-server (pub/sub and the capped stream);
`tracker.update_interval=1`, so every tracked frame with a live track publishes. One detector is loaded
once and shared by the runs (the pipeline shares it across cameras).

Per N: `decoded` frames the readers delivered, `detected` frames that reached the sinks, `dropped` frames
the readers replaced with a newer one (the detector busy); `publish` p50 / p99: per tracked frame, decode
time + (time at the sinks - capture); `alert` p50 / p99: per alert, decode + (arrival at a Redis
subscriber - capture); `cpu`: this process's CPU seconds / wall seconds (2.0 = two cores busy). A camera
count "fits" when <= 2 % of frames are dropped and the alert p99 (the frames' p99 when nothing alerted)
is <= 150 ms. The first second of each run (warm-up, the streams' start) is left out of the latencies.
"""
from __future__ import annotations

import argparse
import resource
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

import common
from common import cli, emit, machine, percentile, start_redis, start_rtsp, table, write_json
from latency_rtsp import FrameTimings, loop_video, subscribe

from pipeline.config import PipelineConfig, parse_config
from pipeline.graph import Pipeline, load_detector

MAX_DROPPED = 0.02
MAX_P99_MS = 150.0
FPS = 25


class CameraTimings(FrameTimings):
    """`FrameTimings` that also counts tracked frames per camera."""

    def __init__(self) -> None:
        super().__init__()
        self.per_camera: dict[str, int] = {}

    def on_frame(self, record: Any) -> None:
        super().on_frame(record)
        self.per_camera[record.frame.camera] = self.per_camera.get(record.frame.camera, 0) + 1


def live_config(urls: list[str], redis_url: str, overrides: list[str] = ()) -> PipelineConfig:
    """A config with one live camera per URL (a path: a file paced in real time; rtsp://...), Redis alerts."""
    cams = []
    for i, url in enumerate(urls, start=1):
        source = (f"{{type: rtsp, url: '{url}'}}" if url.startswith("rtsp://")
                  else f"{{type: file, path: '{url}', realtime: true}}")
        cams.append(f"  cam{i}:\n    source: {source}\n    fps: {FPS}")
    text = "\n".join(["cameras:", *cams,
                      "sinks:", "  redis:", f"    url: '{redis_url}'", "    channel_prefix: itd:alerts",
                      "    stream: itd:alerts", "    stream_maxlen: 1000000", "  console: null",
                      "metrics:", "  port: null"])
    return parse_config(text, ["tracker.update_interval=1", *overrides], source="benchmarks/cameras.py")


def counter(pipe: Pipeline, name: str, **labels: str) -> int:
    """Sum of a Prometheus sample over the label values not given in `labels`."""
    return int(sum(s.value for m in pipe.metrics.registry.collect() for s in m.samples
                   if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())))


def run_cameras(n: int, live: Path, stream_s: float, source: str, overrides: list[str], detector: Any,
                tmp: Path) -> dict[str, Any]:
    """One run with `n` live cameras playing `live` (`stream_s` seconds long); the figures of the module docstring."""
    redis_proc, redis_url = start_redis(tmp)
    servers, urls = [], [str(live)] * n
    try:
        if source == "rtsp":
            urls = []
            for _ in range(n):
                proc, url = start_rtsp(live)
                servers.append(proc)
                urls.append(url)
        config = live_config(urls, redis_url, overrides)
        timings = CameraTimings()
        pipe = Pipeline(config, detector=detector, extra_sinks=[timings])
        got: list[tuple[float, dict]] = []
        stop = threading.Event()
        sub = subscribe(redis_url, f"{config.sinks.redis.channel_prefix}:*", stop, got)
        cpu0, t0, wall0 = _cpu_seconds(), time.monotonic(), time.time()
        done = threading.Event()
        if source == "rtsp":  # an RTSP stream never ends by itself (the reader reconnects): stop once it has played
            threading.Thread(target=_stop_when_played, args=(pipe, n * round(stream_s * FPS), stream_s + 5, done),
                             daemon=True).start()
        try:
            result = pipe.run(install_signals=False)
        finally:
            done.set()
        wall, cpu = time.monotonic() - t0, _cpu_seconds() - cpu0
        time.sleep(0.5)
        stop.set()
        sub.join(5)
        import redis
        in_stream = redis.Redis.from_url(redis_url).xlen(config.sinks.redis.stream)
    finally:
        for proc in servers:
            proc.kill()
        redis_proc.kill()
    if result.exit_code:
        raise SystemExit(f"error: the run with {n} cameras failed: {result.message}")
    decoded = counter(pipe, "itd_frames_total")
    dropped = counter(pipe, "itd_frames_dropped_total")
    rows = timings.rows[FPS * n:]
    decode_p50 = percentile([r.get("decode", 0.0) for r in rows], 50) if rows else 0.0
    frame_ms = [1000 * r["capture_to_sink"] for r in rows]
    alert_ms = [1000 * (recv - a["captured_at"] + decode_p50) for recv, a in got
                if a.get("captured_at") and a["captured_at"] - wall0 > 1.0]
    worst = alert_ms or frame_ms
    row = {"cameras": n, "source": source, "seconds": round(wall, 1), "decoded": decoded,
           "detected": len(timings.rows), "dropped": dropped,
           "dropped_pct": round(100 * dropped / decoded, 2) if decoded else None,
           "publish_p50_ms": round(percentile(frame_ms, 50), 1), "publish_p99_ms": round(percentile(frame_ms, 99), 1),
           "alerts": len(got), "alerts_in_stream": in_stream,
           "alert_p50_ms": round(percentile(alert_ms, 50), 1) if alert_ms else None,
           "alert_p99_ms": round(percentile(alert_ms, 99), 1) if alert_ms else None,
           "cpu": round(cpu / wall, 2), "per_camera_detected": timings.per_camera}
    row["fits"] = bool(decoded and dropped <= MAX_DROPPED * decoded and worst and percentile(worst, 99) <= MAX_P99_MS)
    return row


def _stop_when_played(pipe: Pipeline, frames: int, timeout_s: float, done: threading.Event) -> None:
    """Stop `pipe` once its cameras delivered `frames` in all, or after `timeout_s` (frames lost on the way)."""
    end = time.monotonic() + timeout_s
    while not done.wait(0.1):
        if counter(pipe, "itd_frames_total") >= frames or time.monotonic() > end:
            pipe.stop("benchmark over")
            return


def _cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cameras", type=int, nargs="+", default=[1, 2, 3, 4], help="camera counts to run")
    ap.add_argument("--seconds", type=float, default=40.0, help="length of each run")
    ap.add_argument("--source", choices=["file", "rtsp"], default="file",
                    help="file: the recording paced in real time; rtsp: GStreamer's RTSP server per camera")
    ap.add_argument("--video", default=str(common.ROOT / "samples" / "sample" / "video.mp4"))
    ap.add_argument("--set", action="append", default=[], help="config overrides, e.g. detector.precision=int8")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    if any(n < 1 for n in args.cameras):
        raise SystemExit("error: --cameras takes counts of 1 or more")
    info = machine()
    emit({"machine": info})
    rows = []
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        detector = load_detector(live_config([str(args.video)], "redis://127.0.0.1:1/0", args.set))
        detector.predict(np.zeros((512, 640), np.uint8))  # warm-up
        stream_s = loop_video(Path(args.video), tmp / "live.mp4", args.seconds) / FPS
        for n in args.cameras:
            row = {"variant": detector.variant, "runtime": detector.runtime, "precision": detector.precision,
                   **run_cameras(n, tmp / "live.mp4", stream_s, args.source, args.set, detector, tmp)}
            emit(row)
            rows.append(row)
    fitting = [r["cameras"] for r in rows if r["fits"]]
    summary = {"summary": True, "max_cameras": max(fitting) if fitting else 0, "fps": FPS,
               "criteria": f"dropped <= {100 * MAX_DROPPED:.0f} %, p99 <= {MAX_P99_MS:.0f} ms"}
    emit(summary)
    print()
    print(f"{info['cpu']}, {info['cores']} cores, GPU: {info['gpu'] or 'none'}; {args.source} cameras at {FPS} fps, "
          f"{args.seconds:.0f} s each; {rows[0]['variant']} {rows[0]['runtime']} {rows[0]['precision']}")
    print(table(rows, [("cameras", "cameras"), ("decoded", "decoded"), ("detected", "detected"), ("dropped", "dropped"),
                       ("dropped_pct", "dropped %"), ("publish_p50_ms", "p50 ms"), ("publish_p99_ms", "p99 ms"),
                       ("alert_p50_ms", "alert p50"), ("alert_p99_ms", "alert p99"), ("cpu", "cpu cores"),
                       ("fits", "fits")]))
    print(f"largest camera count that fits ({summary['criteria']}): {summary['max_cameras']}")
    write_json(args.json, {"machine": info, "runs": rows, "summary": summary})


if __name__ == "__main__":
    cli(main)
