"""The stage graph with a fake detector and the real tracker: lossless sources, determinism, live drops,
failures that are reported (bad file, wrong frame size, failing stage) while other cameras keep working,
and clean shutdown on a signal."""
from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time

import numpy as np
import pytest

from conftest import FakeDetector, faststart_copy, make_clip, truncate_file
from pipeline.alerts import comparable
from pipeline.config import parse_config
from pipeline.frames import EndOfStream, Frame
from pipeline.graph import Pipeline, StartupError
from pipeline.prometheus import Metrics
from pipeline.mux import FrameMux


def config(cameras: str, extra: str = "", jsonl=None) -> object:
    sinks = f"sinks:\n  jsonl: {{path: {jsonl}}}\n" if jsonl else ""
    return parse_config(f"cameras:\n{cameras}\nmetrics: {{port: null}}\n{sinks}{extra}")


def alerts_of(path) -> list[dict]:
    return [json.loads(line) for line in open(path)]


def test_file_images_and_sequence_sources_give_the_same_alerts(clip, tmp_path):
    out = tmp_path / "a.jsonl"
    cfg = config(f"""  f: {{source: {{type: file, path: {clip}/video.mp4}}}}
  i: {{source: {{type: images, path: {clip}/img1}}}}
  s: {{source: {{type: sequence, path: {clip}}}}}""", jsonl=out)
    result = Pipeline(cfg, detector=FakeDetector()).run(install_signals=False)
    assert result.exit_code == 0, result
    alerts = alerts_of(out)
    required = {"schema", "event", "camera", "track_id", "frame_index", "pts", "x", "y", "w", "h", "score", "vx",
                "vy", "captured_at", "published_at"}
    assert all(required <= a.keys() for a in alerts)
    for cam in "fis":
        mine = [a for a in alerts if a["camera"] == cam]
        assert [a["event"] for a in mine if a["event"] != "update"] == ["new", "new", "end", "end"], mine
        assert all(a["published_at"] >= a["captured_at"] for a in mine)
    news = [(a["x"], a["y"]) for a in alerts if a["event"] == "new" and a["camera"] == "i"]
    assert min(abs(x - 23) + abs(y - 31.5) for x, y in news) < 2  # target 1 near its frame-5 position


def test_lossless_replay_is_deterministic(clip, tmp_path):
    runs = []
    for k in range(2):
        out = tmp_path / f"run{k}.jsonl"
        cfg = config(f"  s: {{source: {{type: sequence, path: {clip}}}}}", "detector: {batch_size: 4}", jsonl=out)
        assert Pipeline(cfg, detector=FakeDetector()).run(install_signals=False).exit_code == 0
        runs.append([comparable(a) for a in alerts_of(out)])
    assert runs[0] == runs[1] and len(runs[0]) > 4


def test_detect_workers_give_the_same_alerts_as_one(clip, tmp_path):
    class Slow(FakeDetector):  # every other batch takes longer: the workers finish out of order
        def predict_batch(self, frames, timings=None):
            time.sleep(0.01 if self.calls % 2 else 0.0)  # `calls`: the batches before this one
            return super().predict_batch(frames, timings)

    runs = []
    for workers in (1, 3):
        out = tmp_path / f"w{workers}.jsonl"
        cameras = "".join(f"  {c}: {{source: {{type: sequence, path: {clip}}}}}\n" for c in "ab")
        cfg = config(cameras, f"detector: {{workers: {workers}}}", jsonl=out)
        assert Pipeline(cfg, detector=Slow()).run(install_signals=False).exit_code == 0
        runs.append(sorted((comparable(a) for a in alerts_of(out)), key=lambda a: (a["camera"], a["seq"])))
    assert runs[0] == runs[1] and len(runs[0]) > 4  # each camera's alerts (their order across cameras is timing)


def test_in_turn_sends_outputs_in_the_order_inputs_were_taken():
    from pipeline.workers import Channel, InTurn

    out = Channel("out", 100)
    turns = InTurn(out)
    inputs = iter(range(20))
    taken = [turns.take(lambda: next(inputs)) for _ in range(20)]
    assert [n for n, _ in taken] == list(range(20))
    assert turns.take(lambda: None) == (-1, None)

    def work(numbers):
        for n in numbers:
            time.sleep(0.001 * (n % 3))
            turns.put(n, [] if n == 7 else [n, n])  # an input may have no outputs

    threads = [threading.Thread(target=work, args=(list(range(20))[k::3],)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = []
    while (item := out.get(timeout=0)) is not None:
        got.append(item)
    assert got == [n for n in range(20) if n != 7 for _ in range(2)]


def test_live_mux_keeps_newest_and_counts_drops():
    m = Metrics()
    mux = FrameMux(m)
    mux.add_camera("live", live=True, capacity=8)
    img = np.zeros((4, 4), np.uint8)
    for i in range(1, 6):
        mux.put(Frame("live", i, None, 0.0, 0.0, img))
    mux.put(EndOfStream("live", 5))
    batch = mux.get_batch(4, 0.01)
    assert [getattr(x, "index", "end") for x, _ in batch] == [5, "end"]
    assert m.dropped.labels("live", "stale")._value.get() == 4
    assert mux.get_batch(4, 0.01) is None


def test_corrupt_file_and_wrong_size_are_reported_and_other_cameras_work(clip, tmp_path, caplog):
    # opens (its index first) but breaks half-way: the camera fails, the others go on
    corrupt = truncate_file(faststart_copy(clip / "video.mp4", tmp_path / "whole.mp4"), tmp_path / "corrupt.mp4")
    small = make_clip(tmp_path / "small", frames=10, size=(80, 64), images=True, video=False)
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for k, f in enumerate(sorted((clip / "img1").glob("*.png"))[:20]):
        (mixed / f"{k:06d}.png").symlink_to(f)
    (mixed / "000010.png").unlink()
    (mixed / "000010.png").symlink_to(small / "img1" / "000001.png")  # one frame of the wrong size
    out = tmp_path / "a.jsonl"
    cfg = config(f"""  good: {{source: {{type: file, path: {clip}/video.mp4}}}}
  bad: {{source: {{type: file, path: {corrupt}}}}}
  mixed: {{source: {{type: images, path: {mixed}}}}}""", jsonl=out)
    pipe = Pipeline(cfg, detector=FakeDetector())
    with caplog.at_level(logging.INFO):
        result = pipe.run(install_signals=False)
    assert result.exit_code == 1
    assert set(result.camera_errors) == {"bad"}
    assert "corrupt or truncated" in result.camera_errors["bad"] and str(corrupt) in result.camera_errors["bad"]
    assert "frame 11 is 80x64, expected 160x128" in caplog.text
    assert pipe.metrics.dropped.labels("mixed", "size")._value.get() == 1
    cams = {a["camera"] for a in alerts_of(out) if a["event"] == "new"}
    assert {"good", "mixed"} <= cams


def test_a_missing_source_path_stops_the_run_before_it_starts(clip, tmp_path):
    cfg = config(f"""  good: {{source: {{type: file, path: {clip}/video.mp4}}}}
  missing: {{source: {{type: images, path: {tmp_path}/nowhere}}}}""")
    detector = FakeDetector()
    with pytest.raises(StartupError, match=f"camera missing: no such folder: {tmp_path}/nowhere"):
        Pipeline(cfg, detector=detector).run(install_signals=False)
    assert detector.calls == 0


def test_failing_detector_is_restarted_then_stops_the_run(clip, tmp_path, caplog):
    cfg = config(f"  s: {{source: {{type: sequence, path: {clip}}}}}", "detector: {batch_size: 2}\n"
                 "run: {max_restarts: 2}", jsonl=tmp_path / "a.jsonl")
    det = FakeDetector(fail_on=3)
    with caplog.at_level(logging.INFO):
        result = Pipeline(cfg, detector=det).run(install_signals=False)
    assert result.exit_code == 0
    assert "stage detect failed (RuntimeError: simulated detector failure); restarting (1/2)" in caplog.text

    class Broken(FakeDetector):
        def predict_batch(self, frames, timings=None):
            raise RuntimeError("out of memory")

    t0 = time.monotonic()
    result = Pipeline(cfg, detector=Broken()).run(install_signals=False)
    assert result.exit_code == 1 and "stage detect keeps failing: RuntimeError: out of memory" in result.message
    assert time.monotonic() - t0 < 20


@pytest.mark.timeout(60)
def test_sigterm_drains_and_ends_live_tracks(tmp_path):
    """A paced (live-like) file stopped by SIGTERM: exit 0, every `new` track gets its `end`."""
    clip = make_clip(tmp_path / "long", frames=150)
    out = tmp_path / "a.jsonl"
    cfg = config(f"  cam: {{source: {{type: file, path: {clip}/video.mp4, realtime: true}}}}", jsonl=out)
    pipe = Pipeline(cfg, detector=FakeDetector())
    threading.Timer(2.0, lambda: os.kill(os.getpid(), signal.SIGTERM)).start()
    t0 = time.monotonic()
    result = pipe.run()
    assert result.exit_code == 0 and time.monotonic() - t0 < 5
    alerts = alerts_of(out)
    new = {a["track_id"] for a in alerts if a["event"] == "new"}
    end = {a["track_id"] for a in alerts if a["event"] == "end"}
    assert new and new == end
    assert max(a["frame_index"] for a in alerts) < 150
    assert pipe.health.get("cam") == "finished"


def test_16bit_frames_reach_the_detector_as_uint16_and_metrics_are_exported(tmp_path):
    from prometheus_client import generate_latest

    clip = make_clip(tmp_path / "deep", frames=20, images=True, video=False, dtype=np.uint16)
    seen = []

    class Recording(FakeDetector):
        def predict_batch(self, frames, timings=None):
            seen.extend(f.dtype for f in frames)
            return super().predict_batch(frames, timings)

    cfg = config(f"  d: {{source: {{type: images, path: {clip}/img1}}}}", jsonl=tmp_path / "a.jsonl")
    pipe = Pipeline(cfg, detector=Recording())
    assert pipe.run(install_signals=False).exit_code == 0
    assert seen and set(seen) == {np.dtype(np.uint16)}
    text = generate_latest(pipe.metrics.registry).decode()
    for name in ("itd_frames_total", "itd_frames_dropped_total", "itd_camera_fps", "itd_reconnects_total",
                 "itd_queue_depth", "itd_batch_size_bucket", "itd_detections_total", "itd_alerts_total"):
        assert name in text, name
    for stage in ("decode", "queue_wait", "inference", "peaks", "track", "publish"):
        if stage != "decode":  # images are read by PIL, not decoded by PyAV
            assert f'itd_stage_seconds_count{{stage="{stage}"}}' in text, stage


def test_each_frame_carries_its_stage_timings(clip):
    from pipeline.replay import RecordingSink

    class Timings(RecordingSink):
        seen: list = []

        def on_frame(self, record) -> None:
            self.seen.append(dict(record.timings))

    sink = Timings()
    cfg = config(f"  s: {{source: {{type: sequence, path: {clip}}}, ego_motion: true}}")
    assert Pipeline(cfg, detector=FakeDetector(), extra_sinks=[sink]).run(install_signals=False).exit_code == 0
    assert sink.seen and all({"decode", "ego_motion", "queue_wait", "track"} <= t.keys() for t in sink.seen)
    assert all(v >= 0 for t in sink.seen for v in t.values())


def test_batch_size_follows_the_device_unless_set():
    cfg = config("  s: {source: {type: sequence, path: x}}")
    assert cfg.detector.batch_for("cpu") == 1 and cfg.detector.batch_for("cuda") == 16
    cfg = config("  s: {source: {type: sequence, path: x}}", "detector: {batch_size: 3}")
    assert cfg.detector.batch_for("cpu") == cfg.detector.batch_for("cuda") == 3


def test_detect_workers_and_their_threads_follow_the_device_unless_set(monkeypatch):
    import pipeline.config

    monkeypatch.setattr(pipeline.config, "cpu_cores", lambda: 4)
    d = config("  s: {source: {type: sequence, path: x}}").detector
    assert (d.workers_for("cpu"), d.threads_for("cpu")) == (4, 1)  # one frame per core
    assert (d.workers_for("cuda"), d.threads_for("cuda")) == (1, None)
    d = config("  s: {source: {type: sequence, path: x}}", "detector: {workers: 2}").detector
    assert (d.workers_for("cpu"), d.threads_for("cpu")) == (2, 2)
    d = config("  s: {source: {type: sequence, path: x}}", "detector: {workers: 1}").detector
    assert d.threads_for("cpu") is None  # the runtime's default: one per core
    d = config("  s: {source: {type: sequence, path: x}}", "detector: {workers: 2, threads: 3}").detector
    assert d.threads_for("cpu") == 3


def test_video_sink_writes_an_annotated_h264_per_camera(clip, tmp_path):
    import av

    cfg = config(f"  s: {{source: {{type: sequence, path: {clip}}}}}",
                 f"sinks:\n  video: {{path: '{tmp_path}/{{camera}}.mp4'}}\n")
    assert Pipeline(cfg, detector=FakeDetector()).run(install_signals=False).exit_code == 0
    with av.open(str(tmp_path / "s.mp4")) as c:
        s = c.streams.video[0]
        assert s.codec_context.name == "h264" and (s.codec_context.width, s.codec_context.height) == (160, 128)
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == 60
    green = [int(((f[..., 1].astype(int) - f[..., 0]) > 60).sum()) for f in frames]  # the legend's, then rings
    assert min(green[10:]) > green[0] + 20, f"track rings (green) missing: {green}"


def test_the_checkpoint_is_read_once_per_run(clip, tmp_path, monkeypatch):
    """The detector's weights and the tracker's threshold come from one read of the checkpoint."""
    import detector.checkpoint as checkpoint

    reads = []
    read_state = checkpoint.read_state
    monkeypatch.setattr(checkpoint, "read_state", lambda path: reads.append(path) or read_state(path))
    monkeypatch.setattr(checkpoint, "read_meta", lambda w: pytest.fail("checkpoint meta read a second time"))
    cfg = config(f"  s: {{source: {{type: sequence, path: {clip}}}}}", "detector: {runtime: torch}")
    assert Pipeline(cfg).run(install_signals=False).exit_code == 0
    assert len(reads) == 1
