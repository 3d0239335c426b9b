"""Pipeline throughput on a replayed 640x512 recording vs. model-only throughput and a naive loop.

    python benchmarks/pipeline_speed.py [samples/sample] [--rounds 5] [--batch 1] [--json out.json]

In each round, on the same frames and the same model:
- model-only: the detector's forward pass on frames already decoded and normalised in memory, one at a time,
  on all the cores (the detector as `Detector.load` gives it);
- model-only on the workers: the same forward passes run by the pipeline's detect workers (`detector.workers`,
  by default one per core on a CPU, each inferring on its own core), without the rest of the pipeline;
- pipeline: `Pipeline.run()` replaying the recording losslessly (decode, ego-motion, detect, track, alerts:
  the threaded graph of `python -m pipeline run`): sustained frames per second (from the first frame at
  the sinks to the last), and frames per second of the whole run including start-up and shutdown;
- naive: one loop doing decode, ego-motion, detect, track, alerts for one frame after another.
Prints one JSON line per round and a summary with the pipeline's ratio to model-only (pipeline / model-only)
and to model-only on the workers (what the rest of the pipeline costs).

`--live-view` adds, in each round, the cost of publishing the console's live view: two cameras replaying the
recording with a Redis sink (private redis-server), without, with and again without the live view (annotated
JPEG per camera at `live.fps`, default 4 a second; `--set sinks.redis.live.fps=N` changes it):
`live_view_cost` = 1 - (fps with) / (mean fps without), and `live_view_cpu_share` = CPU seconds of the live
view's thread / CPU seconds of the whole run with it.
"""
from __future__ import annotations

import argparse
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import common
from common import cli, emit, machine, progress, table, write_json

from detector import Detector
from detector.inference import to_batch
from pipeline.alerts import AlertNumbering
from pipeline.config import LiveViewConfig, RedisSinkConfig
from pipeline.graph import Pipeline, default_tracker_factory
from pipeline.replay import RecordingSink, replay_config
from pipeline.sinks.live import LiveViewSink
from tracking.egomotion import SceneMotion
from tracking.sequences import open_sequence


def model_only(det: Detector, batches: list[Any], workers: int = 1) -> float:
    """Frames per second of the forward pass alone, one at a time in each of `workers` threads."""
    def run(part: list[Any]) -> None:
        for x in part:
            det.runner(x)

    threads = [threading.Thread(target=run, args=(batches[i::workers],)) for i in range(workers)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(batches) / (time.perf_counter() - t0)


class Arrivals(RecordingSink):
    """Records when each tracked frame reaches the sinks."""

    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def on_frame(self, record: Any) -> None:
        super().on_frame(record)
        self.times.append(time.perf_counter())


def pipeline(config: Any, det: Detector, extra_sinks: list[Any] = ()) -> tuple[float, float, int]:
    """(sustained frames/s: first to last frame at the sinks; frames/s of the whole run with start-up and
    shutdown; alerts)."""
    rec = Arrivals()
    pipe = Pipeline(config, detector=det, extra_sinks=[rec, *extra_sinks])
    t0 = time.perf_counter()
    result = pipe.run(install_signals=False)
    elapsed = time.perf_counter() - t0
    if result.exit_code:
        raise SystemExit(f"pipeline run failed: {result.message}")
    sustained = (len(rec.times) - 1) / (rec.times[-1] - rec.times[0])
    return sustained, rec.frames / elapsed, len(rec.alerts)


class TimedLiveView(LiveViewSink):
    """The live view sink, counting the CPU seconds its thread spends on frames."""

    cpu_s = 0.0

    def on_frame(self, record: Any) -> None:
        t0 = time.thread_time()
        super().on_frame(record)
        self.cpu_s += time.thread_time() - t0


def two_cameras(config: Any, redis_url: str) -> Any:
    """`config` with its camera twice (cam1, cam2) and a Redis sink without live view (added as `TimedLiveView`)."""
    cam = next(iter(config.cameras.values()))
    redis = (config.sinks.redis or RedisSinkConfig()).model_copy(update={"url": redis_url, "live": None})
    return config.model_copy(update={"cameras": {"cam1": cam, "cam2": cam},
                                     "sinks": config.sinks.model_copy(update={"redis": redis})})


def live_view_cost(config: Any, det: Detector, redis_url: str, live: LiveViewConfig) -> dict[str, float]:
    """Two cameras without, with, and again without the live view (so that a drift in the machine's load weighs
    on both sides): frames/s without (mean of the two) and with, the throughput lost, and the live view's share of
    the CPU time its run used (less sensitive to other tenants than the throughput ratio)."""
    two = two_cameras(config, redis_url)
    before = pipeline(two, det)[0]
    sink = TimedLiveView(two.sinks.redis.model_copy(update={"live": live}))
    cpu0 = time.process_time()
    with_live = pipeline(two, det, [sink])[0]
    cpu = time.process_time() - cpu0
    without = (before + pipeline(two, det)[0]) / 2
    return {"two_cam_fps": round(without, 2), "two_cam_live_fps": round(with_live, 2),
            "live_view_cost": round(1 - with_live / without, 3), "live_view_cpu_share": round(sink.cpu_s / cpu, 4)}


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
    ap.add_argument("--live-view", action="store_true",
                    help="also measure the live view's cost: two cameras with and without it (starts a redis-server)")
    args = ap.parse_args()
    info = machine()
    emit({"machine": info})
    config = replay_config(args.seq, args.config, [f"detector.batch_size={args.batch}", *args.set])
    from pipeline.graph import load_detector
    from pipeline.stages import detector_workers
    det = load_detector(config)  # with the inference threads of each detect worker
    workers = detector_workers(det, config.detector)
    alone = load_detector(config, one_worker=True) if workers > 1 else det  # on all the cores
    seq = open_sequence(Path(args.seq))
    frames = [image for _, image in seq.frames()]
    batches = [to_batch([f], det.multiple)[0] for f in frames]
    rows = []
    redis_proc = None
    if args.live_view:
        import tempfile
        redis_proc, redis_url = common.start_redis(Path(tempfile.mkdtemp(prefix="itd-bench-")))
    try:
        for r in progress(range(args.rounds), "rounds"):
            rows.append(one_round(r, args, config, det, alone, workers, batches, frames, seq,
                                  redis_url if redis_proc else None))
    finally:
        if redis_proc is not None:
            redis_proc.kill()
            redis_proc.wait()
    summary = {"summary": True, **{k: rows[0][k] for k in ("frames", "size", "variant", "runtime", "batch",
                                                           "workers", "threads")}}
    keys = ["model_only_fps", "model_only_workers_fps", "pipeline_fps", "pipeline_fps_with_startup", "naive_fps",
            "pipeline_vs_model", "pipeline_vs_model_workers", "pipeline_vs_naive"]
    if args.live_view:
        keys += ["two_cam_fps", "two_cam_live_fps", "live_view_cost", "live_view_cpu_share"]
    for k in keys:
        summary[k] = round(statistics.median(r[k] for r in rows), 3)
    emit(summary)
    print()
    print(f"{info['cpu']}, {info['cores']} cores, GPU: {info['gpu'] or 'none'}; {args.seq}")
    columns = [("round", "round"), ("model_only_fps", "model-only fps"), ("model_only_workers_fps", "on the workers"),
               ("pipeline_fps", "pipeline fps"), ("pipeline_fps_with_startup", "(with start-up)"),
               ("naive_fps", "naive fps"), ("pipeline_vs_model", "pipeline/model"),
               ("pipeline_vs_model_workers", "/model on the workers"), ("pipeline_vs_naive", "pipeline/naive")]
    if args.live_view:
        columns += [("two_cam_fps", "2 cams fps"), ("two_cam_live_fps", "2 cams + live fps"),
                    ("live_view_cost", "live view cost"), ("live_view_cpu_share", "its CPU share")]
    print(table(rows + [{**summary, "round": "median"}], columns))
    write_json(args.json, {"machine": info, "rounds": rows, "summary": summary})


def one_round(r: int, args: Any, config: Any, det: Detector, alone: Detector, workers: int, batches: list[Any],
              frames: list[Any], seq: Any, redis_url: str | None) -> dict[str, Any]:
    """One round: model-only (one frame at a time on all the cores, and on the pipeline's workers), pipeline
    and naive frames per second (and the live view's cost). `det` is the pipeline's detector (the inference
    threads of one of its `workers`), `alone` the detector on all the cores (model-only, naive)."""
    row = {"round": r + 1, "frames": len(frames), "size": f"{seq.width}x{seq.height}",
           "variant": det.variant, "runtime": det.runtime, "batch": args.batch, "workers": workers,
           "threads": config.detector.threads_for(det.device.type)}
    row["model_only_fps"] = round(model_only(alone, batches), 2)
    row["model_only_workers_fps"] = round(model_only(det, batches, workers), 2)
    row["pipeline_fps"], row["pipeline_fps_with_startup"], row["pipeline_alerts"] = pipeline(config, det)
    row["naive_fps"], row["naive_alerts"] = naive(Path(args.seq), config, alone)
    for k in ("pipeline_fps", "pipeline_fps_with_startup", "naive_fps"):
        row[k] = round(row[k], 2)
    row["pipeline_vs_model"] = round(row["pipeline_fps"] / row["model_only_fps"], 3)
    row["pipeline_vs_model_workers"] = round(row["pipeline_fps"] / row["model_only_workers_fps"], 3)
    row["pipeline_vs_naive"] = round(row["pipeline_fps"] / row["naive_fps"], 3)
    if redis_url is not None:
        row.update(live_view_cost(config, det, redis_url, (config.sinks.redis and config.sinks.redis.live)
                                  or LiveViewConfig()))
    emit(row)
    return row


if __name__ == "__main__":
    cli(main)
