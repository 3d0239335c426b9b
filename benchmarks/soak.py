"""Soak: two live cameras for an hour, alerts to a real redis-server; memory growth and alerts not lost.

    python benchmarks/soak.py [--minutes 60] [--cameras 2] [--sample-s 10] [--set key=value ...]

Two 640x512 cameras at 25 fps (the sample recording looped to the run's length, each a file paced in real
time, as in `benchmarks/cameras.py`), the Redis sink (pub/sub and the stream), and a subscriber counting
what arrives. The process's RSS is sampled every `--sample-s` seconds (one JSON line each); after a
warm-up (a quarter of the run, at most 5 minutes) a least-squares line through the samples gives the
growth in MB/h. At the end: alerts produced by the tracker, published by the sink, received by the
subscriber, and in the stream (XLEN; the stream is not capped here); `lost` = published - in the stream.
"""
from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

import common
from cameras import counter, live_config
from common import cli, emit, machine, start_redis, table, write_json
from latency_rtsp import loop_video

from pipeline.graph import Pipeline

MAX_GROWTH_MB_H = 5.0


def rss_mb() -> float:
    """This process's resident memory in MB (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise OSError("no VmRSS in /proc/self/status")


def growth_mb_per_h(samples: list[tuple[float, float]], warmup_s: float) -> float | None:
    """Slope of a least-squares line through the (seconds, MB) samples after `warmup_s`, in MB per hour."""
    kept = [(t, m) for t, m in samples if t >= warmup_s]
    if len(kept) < 3:
        return None
    t, m = np.array(kept).T
    return float(np.polyfit(t / 3600, m, 1)[0])


class Counting:
    """A Redis pub/sub subscriber thread that counts alerts (keeps nothing else)."""

    def __init__(self, url: str, pattern: str) -> None:
        import redis

        self.count, self.stop = 0, threading.Event()
        self.pubsub = redis.Redis.from_url(url).pubsub(ignore_subscribe_messages=True)
        self.pubsub.psubscribe(pattern)
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self.stop.is_set():
            if self.pubsub.get_message(timeout=0.2):
                self.count += 1

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.pubsub.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--cameras", type=int, default=2)
    ap.add_argument("--sample-s", type=float, default=10.0, help="seconds between RSS samples")
    ap.add_argument("--video", default=str(common.ROOT / "samples" / "sample" / "video.mp4"))
    ap.add_argument("--set", action="append", default=[], help="config overrides, e.g. detector.precision=int8")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    if args.minutes <= 0 or args.cameras < 1 or args.sample_s <= 0:
        raise SystemExit("error: --minutes, --cameras and --sample-s must be positive")
    info = machine()
    emit({"machine": info})
    seconds = 60 * args.minutes
    warmup_s = min(300.0, seconds / 4)
    samples: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        loop_video(Path(args.video), tmp / "live.mp4", seconds)
        redis_proc, redis_url = start_redis(tmp)
        try:
            config = live_config([str(tmp / "live.mp4")] * args.cameras, redis_url,
                                 ["sinks.redis.stream_maxlen=100000000", "tracker.update_interval=10", *args.set])
            pipe = Pipeline(config)
            sub = Counting(redis_url, f"{config.sinks.redis.channel_prefix}:*")
            result_box: list[Any] = []
            runner = threading.Thread(target=lambda: result_box.append(pipe.run(install_signals=False)), daemon=True)
            t0 = time.monotonic()
            runner.start()
            while True:
                runner.join(args.sample_s)
                if not runner.is_alive():  # sinks closed, buffers freed: not the running process any more
                    break
                t = time.monotonic() - t0
                samples.append((t, rss_mb()))
                emit({"t_s": round(t, 1), "rss_mb": round(samples[-1][1], 1),
                      "frames": counter(pipe, "itd_frames_total"), "dropped": counter(pipe, "itd_frames_dropped_total"),
                      "received": sub.count})
            time.sleep(0.5)
            sub.close()
            import redis
            in_stream = redis.Redis.from_url(redis_url).xlen(config.sinks.redis.stream)
        finally:
            redis_proc.kill()
    result = result_box[0] if result_box else None
    if result is None or result.exit_code:
        raise SystemExit(f"error: the soak run failed: {result.message if result else 'no result'}")
    if not samples:
        raise SystemExit("error: the run ended before the first RSS sample; use a longer --minutes")
    growth = growth_mb_per_h(samples, warmup_s)
    after = [m for t, m in samples if t >= warmup_s]
    published = counter(pipe, "itd_alert_latency_seconds_count", sink="redis")
    summary = {"summary": True, "minutes": args.minutes, "cameras": args.cameras, "samples": len(samples),
               "warmup_s": round(warmup_s, 1), "rss_start_mb": round(samples[0][1], 1), "rss_end_mb": round(samples[-1][1], 1),
               "rss_after_warmup_min_mb": round(min(after), 1) if after else None,
               "rss_after_warmup_max_mb": round(max(after), 1) if after else None,
               "growth_mb_per_h": round(growth, 2) if growth is not None else None,
               "frames": counter(pipe, "itd_frames_total"), "frames_dropped": counter(pipe, "itd_frames_dropped_total"),
               "alerts_produced": counter(pipe, "itd_alerts_total"), "alerts_published": published,
               "alerts_received": sub.count, "alerts_in_stream": in_stream,
               "alerts_sink_dropped": counter(pipe, "itd_alerts_dropped_total"),
               "lost": published - in_stream}
    summary["ok"] = bool(growth is not None and growth <= MAX_GROWTH_MB_H and summary["lost"] == 0)
    emit(summary)
    print()
    print(f"{info['cpu']}, {info['cores']} cores; {args.cameras} live cameras at 25 fps for {args.minutes:g} min, "
          f"RSS every {args.sample_s:g} s, warm-up {warmup_s:.0f} s")
    print(table([summary], [("rss_start_mb", "RSS start MB"), ("rss_end_mb", "RSS end MB"),
                            ("growth_mb_per_h", "growth MB/h"), ("alerts_published", "published"),
                            ("alerts_received", "received"), ("alerts_in_stream", "in stream"), ("lost", "lost"),
                            ("ok", f"<= {MAX_GROWTH_MB_H:g} MB/h, none lost")]))
    write_json(args.json, {"machine": info, "samples": samples, "summary": summary})


if __name__ == "__main__":
    cli(main)
