"""Where the pipeline's per-frame time goes: a replay with every worker thread under cProfile.

    python benchmarks/profile_pipeline.py [samples/sample] [--top 25] [--set key=value ...]

Replays the recording losslessly (as `benchmarks/pipeline_speed.py` does) with each stage's thread
(sources, each detect worker, track, sinks) profiled, then prints per thread the functions with the most own time
(tottime), and a JSON line per function. Profiling slows Python code far more than native code (the
model, decoding), so read it as where Python time goes, not as a timing.
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import threading
from pathlib import Path

import common
from common import cli, emit, machine

from pipeline.graph import Pipeline, load_detector
from pipeline.replay import replay_config
from pipeline.workers import Worker


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("seq", nargs="?", default=str(common.ROOT / "samples" / "sample"))
    ap.add_argument("--config", default=None)
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args()
    emit({"machine": machine()})
    config = replay_config(args.seq, args.config, args.set)
    det = load_detector(config)
    profiles: dict[str, cProfile.Profile] = {}
    lock = threading.Lock()
    plain_run = Worker.run

    def profiled_run(self: Worker) -> None:
        prof = cProfile.Profile()
        with lock:  # several detect workers: detect, detect 2, ...
            n = sum(k == self.stage or k.startswith(f"{self.stage} ") for k in profiles)
            profiles[f"{self.stage} {n + 1}" if n else self.stage] = prof
        prof.runcall(plain_run, self)

    Worker.run = profiled_run
    try:
        result = Pipeline(config, detector=det).run(install_signals=False)
    finally:
        Worker.run = plain_run
    if result.exit_code:
        raise SystemExit(f"error: replay failed: {result.message}")
    for stage, prof in sorted(profiles.items()):
        stats = pstats.Stats(prof)
        total = stats.total_tt
        rows = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[: args.top]
        print(f"\n== {stage}: {total:.2f} s profiled")
        for (file, line, fn), (cc, nc, tt, ct, _) in rows:
            where = f"{Path(file).name}:{line}:{fn}" if line else fn
            emit({"stage": stage, "function": where, "calls": nc, "tottime_s": round(tt, 3),
                  "cumtime_s": round(ct, 3), "share": round(tt / total, 3) if total else None})


if __name__ == "__main__":
    cli(main)
