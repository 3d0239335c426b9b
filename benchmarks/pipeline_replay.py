"""Throughput and per-stage latency of the pipeline on a recording (lossless replay through the full graph).

    python benchmarks/pipeline_replay.py samples/sample [--set detector.device=cuda --set detector.batch_size=8]
Prints one JSON line: frames/s and p50/p99 per stage from the run's Prometheus histograms.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.graph import Pipeline  # noqa: E402
from pipeline.replay import RecordingSink, replay_config  # noqa: E402


def quantile(hist, q: float) -> float | None:
    """Upper bucket bound holding quantile q of a prometheus Histogram child."""
    buckets = [(float(s.labels["le"]), s.value) for s in hist.collect()[0].samples if s.name.endswith("_bucket")]
    total = buckets[-1][1] if buckets else 0
    for le, count in buckets:
        if total and count >= q * total:
            return le
    return None


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("seq")
    p.add_argument("--config")
    p.add_argument("--set", action="append", default=[])
    args = p.parse_args()
    config = replay_config(args.seq, args.config, args.set)
    rec = RecordingSink()
    pipe = Pipeline(config, extra_sinks=[rec])
    t0 = time.perf_counter()
    result = pipe.run()
    elapsed = time.perf_counter() - t0
    out = {"frames": rec.frames, "seconds": round(elapsed, 2), "fps": round(rec.frames / elapsed, 2),
           "batch_size": config.detector.batch_size, "exit_code": result.exit_code}
    for stage in ("decode", "queue_wait", "inference", "peaks", "track", "publish"):
        h = pipe.metrics.latency.labels(stage)
        out[stage] = {"p50_le": quantile(h, 0.5), "p99_le": quantile(h, 0.99)}
    print(json.dumps(out))
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main())
