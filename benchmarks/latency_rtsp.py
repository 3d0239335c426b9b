"""Capture-to-alert latency on a live RTSP camera at 25 fps: p50 / p99 per stage and end to end.

    python benchmarks/latency_rtsp.py [--seconds 40] [--config configs/rtsp.yaml] [--set key=value ...]

Starts GStreamer's RTSP server (Debian packages) serving the 640x512 sample recording looped to `--seconds`
in real time (25 fps), a private redis-server, and `configs/rtsp.yaml` as a user runs it (alerts on Redis
pub/sub; `tracker.update_interval=1` so that every tracked frame yields alerts to time). A subscriber
timestamps each alert on arrival.

Per frame (every frame that reached the tracker): decode, ego_motion, queue_wait, inference, peaks, track,
and `handoff` (the rest: queues between threads, the sink's turn). `capture_to_alert` is, per alert
received by the subscriber, decode time + (arrival - the frame's `captured_at`): from the moment the
decoder started on the frame's packet to the alert in a subscriber's hands. Frames the live camera reader
dropped (the detector busy) are counted.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import common
from common import cli, emit, machine, percentile, start_redis, start_rtsp, table, write_json

from pipeline.config import load_config
from pipeline.graph import Pipeline
from pipeline.sinks.base import Sink

STAGES = ("decode", "ego_motion", "queue_wait", "inference", "peaks", "track", "handoff")


def loop_video(src: Path, dst: Path, seconds: float) -> int:
    """Remux `src` (H.264 MP4) end to end until `seconds` long (no re-encoding); returns the frame count."""
    import av

    with av.open(str(src)) as inp:
        stream = inp.streams.video[0]
        packets = list(inp.demux(stream))
        packets = [p for p in packets if p.size]
        span = max(p.pts for p in packets) - min(p.pts for p in packets) + (packets[1].pts - packets[0].pts
                                                                              if len(packets) > 1 else 1)
        fps = float(stream.average_rate or 25)
        loops = max(1, int(round(seconds * fps / len(packets))))
        with av.open(str(dst), "w") as out:
            o = out.add_stream_from_template(stream)
            for k in range(loops):
                for p in packets:
                    q = av.Packet(bytes(p))
                    q.pts, q.dts = p.pts + k * span, p.dts + k * span
                    q.is_keyframe, q.time_base, q.stream = p.is_keyframe, p.time_base, o
                    out.mux(q)
    return loops * len(packets)


class FrameTimings(Sink):
    """Records each tracked frame's stage timings and how long it took to reach a sink."""

    name = "timings"

    def __init__(self) -> None:
        super().__init__([])
        self.rows: list[dict[str, float]] = []

    def on_frame(self, record: Any) -> None:
        now = time.time()
        t = dict(record.timings)
        since_capture = now - record.frame.captured_at
        t["handoff"] = max(0.0, since_capture - sum(t.get(k, 0.0) for k in STAGES if k not in ("decode", "handoff")))
        t["capture_to_sink"] = t.get("decode", 0.0) + since_capture
        self.rows.append(t)


def subscribe(url: str, pattern: str, stop: threading.Event, got: list[tuple[float, dict]]) -> threading.Thread:
    """A subscriber thread timestamping each alert on arrival; returns once it is subscribed."""
    import redis

    ready = threading.Event()

    def loop() -> None:
        ps = redis.Redis.from_url(url).pubsub()
        try:
            ps.psubscribe(pattern)
            while not stop.is_set():
                msg = ps.get_message(timeout=0.1)
                if msg and msg["type"] == "psubscribe":
                    ready.set()
                elif msg and msg["type"] == "pmessage":
                    got.append((time.time(), json.loads(msg["data"])))
        except (redis.ConnectionError, OSError, ValueError) as e:  # the benchmark's redis-server went away
            print(f"subscriber stopped: {type(e).__name__}: {e}")
        finally:
            ready.set()
            ps.close()

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    ready.wait(10)
    return t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=40.0, help="length of the live stream")
    ap.add_argument("--video", default=str(common.ROOT / "samples" / "sample" / "video.mp4"))
    ap.add_argument("--config", default=str(common.ROOT / "configs" / "rtsp.yaml"))
    ap.add_argument("--set", action="append", default=[], help="config overrides, e.g. detector.batch_size=4")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    info = machine()
    emit({"machine": info})
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        n_frames = loop_video(Path(args.video), tmp / "live.mp4", args.seconds)
        redis_proc, redis_url = start_redis(tmp)
        rtsp_proc = None
        try:
            import os
            os.environ["REDIS_URL"] = redis_url
            rtsp_proc, rtsp_url = start_rtsp(tmp / "live.mp4")
            os.environ["RTSP_URL"] = rtsp_url
            config = load_config(args.config, ["metrics.port=null", "sinks.console=null", "tracker.update_interval=1",
                                               *args.set])
            camera = next(iter(config.cameras))
            timings = FrameTimings()
            pipe = Pipeline(config, extra_sinks=[timings])
            got: list[tuple[float, dict]] = []
            stop = threading.Event()
            sub = subscribe(redis_url, f"{config.sinks.redis.channel_prefix}:*", stop, got)
            runner = threading.Thread(target=lambda: pipe.run(install_signals=False), daemon=True)
            t0 = time.monotonic()
            runner.start()
            # the stream plays in real time; stop once it is over (the reader would reconnect and replay it)
            while time.monotonic() - t0 < n_frames / 25 + 1 and not (
                    timings.rows and time.monotonic() - t0 > 5 and _frames_done(pipe, camera) >= n_frames):
                time.sleep(0.5)
            pipe.stop("benchmark over")
            runner.join(30)
            time.sleep(0.5)
            stop.set()
            sub.join(5)
            received = _counter(pipe, "itd_frames_total", camera)
            dropped = _counter(pipe, "itd_frames_dropped_total", camera)
        finally:
            if rtsp_proc is not None:
                rtsp_proc.kill()
            redis_proc.kill()

    rows = timings.rows[25:]  # the first second includes warm-up and the stream's start
    alerts = [recv - a["captured_at"] for recv, a in got if a.get("captured_at")]
    result: dict[str, Any] = {"camera_fps": 25, "stream_frames": n_frames, "frames_received": received,
                              "frames_dropped": dropped, "frames_tracked": len(timings.rows),
                              "alerts_received": len(alerts),
                              "config": {"detector": config.detector.model_dump(mode="json"),
                                         "ego_motion": config.cameras[camera].ego_motion}}
    table_rows = []
    for stage in (*STAGES, "capture_to_sink"):
        vals = [1000 * r.get(stage, 0.0) for r in rows]
        table_rows.append({"stage": stage, "p50_ms": round(percentile(vals, 50), 2),
                           "p99_ms": round(percentile(vals, 99), 2), "max_ms": round(max(vals, default=0), 2)})
    decode_p = {r["stage"]: r for r in table_rows}["decode"]
    # per alert: decode time is not on the alert, so add the frames' median decode (a ~1 ms term)
    e2e = [1000 * x + decode_p["p50_ms"] for x in alerts[10:]]
    table_rows.append({"stage": "capture_to_alert", "p50_ms": round(percentile(e2e, 50), 2),
                       "p99_ms": round(percentile(e2e, 99), 2), "max_ms": round(max(e2e, default=0), 2)})
    result["stages"] = table_rows
    emit(result)
    print()
    print(f"{info['cpu']}, {info['cores']} cores, GPU: {info['gpu'] or 'none'}; live RTSP at 25 fps, "
          f"{len(rows)} frames timed, {len(e2e)} alerts; received {received}, dropped {dropped}")
    print(table(table_rows, [("stage", "stage"), ("p50_ms", "p50 ms"), ("p99_ms", "p99 ms"), ("max_ms", "max ms")]))
    write_json(args.json, {"machine": info, **result})


def _counter(pipe: Pipeline, name: str, camera: str) -> int:
    total = 0.0
    for metric in pipe.metrics.registry.collect():
        for s in metric.samples:
            if s.name == name and s.labels.get("camera") == camera:
                total += s.value
    return int(total)


def _frames_done(pipe: Pipeline, camera: str) -> int:
    return _counter(pipe, "itd_frames_total", camera)


if __name__ == "__main__":
    cli(main)
