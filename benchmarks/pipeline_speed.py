"""Pipeline throughput on a replayed 640x512 recording vs. model-only throughput and a naive loop.

    python benchmarks/pipeline_speed.py [samples/sample] [--rounds 5] [--batch 1] [--json out.json]

In each round, on the same frames and the same loaded detector:
- model-only: the detector's forward pass on frames already decoded and normalised in memory, one at a time;
- pipeline: `Pipeline.run()` replaying the recording losslessly (decode, ego-motion, detect, track, alerts:
  the threaded graph of `python -m pipeline run`): sustained frames per second (from the first frame at
  the sinks to the last), and frames per second of the whole run including start-up and shutdown;
- naive: one loop doing decode, ego-motion, detect, track, alerts for one frame after another.
Prints one JSON line per round and a summary with the pipeline's overhead ratio (pipeline / model-only).
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import common
from common import cli, emit, machine, table, write_json

from detector import Detector
from detector.inference import to_batch
from pipeline.alerts import AlertNumbering
from pipeline.graph import Pipeline, default_tracker_factory
from pipeline.replay import RecordingSink, replay_config
from tracking.egomotion import SceneMotion
from tracking.sequences import open_sequence


def model_only(det: Detector, batches: list[Any]) -> float:
    """Frames per second of the forward pass alone."""
    t0 = time.perf_counter()
    for x in batches:
        det.runner(x)
    return len(batches) / (time.perf_counter() - t0)


class Arrivals(RecordingSink):
    """Records when each tracked frame reaches the sinks."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def on_frame(self, record: Any) -> None:
        super().on_frame(record)
        self.times.append(time.perf_counter())


def pipeline(config: Any, det: Detector) -> tuple[float, float, int]:
    """(sustained frames/s: first to last frame at the sinks; frames/s of the whole run with start-up and
    shutdown; alerts)."""
    rec = Arrivals()
    pipe = Pipeline(config, detector=det, extra_sinks=[rec])
    t0 = time.perf_counter()
    result = pipe.run(install_signals=False)
    elapsed = time.perf_counter() - t0
    if result.exit_code:
        raise SystemExit(f"pipeline run failed: {result.message}")
    sustained = (len(rec.times) - 1) / (rec.times[-1] - rec.times[0])
    return sustained, rec.frames / elapsed, len(rec.alerts)


def naive(seq_path: Path, config: Any, det: Detector) -> tuple[float, int]:
    """Decode -> (ego-motion, when the camera has it) -> detect -> track -> alerts, one frame at a time, in one
    thread: the same work as the pipeline's."""
    seq = open_sequence(seq_path)
    tracker = default_tracker_factory(config)((seq.width, seq.height))
    scene = SceneMotion() if next(iter(config.cameras.values())).ego_motion else None
    alerts, n, numbering = 0, 0, AlertNumbering()
    t0 = time.perf_counter()
    for index, image in seq.frames():
        offset = scene.update(image) if scene is not None else None
        dets = det.predict(image)
        events = tracker.update(dets, index, index / seq.fps, offset)
        alerts += len(numbering.alerts(events, "naive", index / seq.fps, time.time()))
        n += 1
    alerts += len(tracker.finish(n, n / seq.fps))
    return n / (time.perf_counter() - t0), alerts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("seq", nargs="?", default=str(common.ROOT / "samples" / "sample"))
    ap.add_argument("--config", default=None, help="a pipeline config (default: the built-in replay config)")
    ap.add_argument("--set", action="append", default=[], help="config overrides, e.g. detector.runtime=torch")
    ap.add_argument("--batch", type=int, default=1, help="detector.batch_size of the pipeline run")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    info = machine()
    emit({"machine": info})
    config = replay_config(args.seq, args.config, [f"detector.batch_size={args.batch}", *args.set])
    from pipeline.graph import load_detector
    det = load_detector(config)
    seq = open_sequence(Path(args.seq))
    frames = [image for _, image in seq.frames()]
    batches = [to_batch([f], det.multiple)[0] for f in frames]
    rows = []
    for r in range(args.rounds):
        row = {"round": r + 1, "frames": len(frames), "size": f"{seq.width}x{seq.height}",
               "variant": det.variant, "runtime": det.runtime, "batch": args.batch}
        row["model_only_fps"] = round(model_only(det, batches), 2)
        row["pipeline_fps"], row["pipeline_fps_with_startup"], row["pipeline_alerts"] = pipeline(config, det)
        row["naive_fps"], row["naive_alerts"] = naive(Path(args.seq), config, det)
        for k in ("pipeline_fps", "pipeline_fps_with_startup", "naive_fps"):
            row[k] = round(row[k], 2)
        row["pipeline_vs_model"] = round(row["pipeline_fps"] / row["model_only_fps"], 3)
        row["pipeline_vs_naive"] = round(row["pipeline_fps"] / row["naive_fps"], 3)
        emit(row)
        rows.append(row)
    summary = {"summary": True, **{k: rows[0][k] for k in ("frames", "size", "variant", "runtime", "batch")}}
    for k in ("model_only_fps", "pipeline_fps", "pipeline_fps_with_startup", "naive_fps", "pipeline_vs_model",
              "pipeline_vs_naive"):
        summary[k] = round(statistics.median(r[k] for r in rows), 3)
    emit(summary)
    print()
    print(f"{info['cpu']}, {info['cores']} cores, GPU: {info['gpu'] or 'none'}; {args.seq}")
    print(table(rows + [{**summary, "round": "median"}],
                [("round", "round"), ("model_only_fps", "model-only fps"), ("pipeline_fps", "pipeline fps"),
                 ("pipeline_fps_with_startup", "(with start-up)"), ("naive_fps", "naive fps"), ("pipeline_vs_model", "pipeline/model"),
                 ("pipeline_vs_naive", "pipeline/naive")]))
    write_json(args.json, {"machine": info, "rounds": rows, "summary": summary})


if __name__ == "__main__":
    cli(main)
