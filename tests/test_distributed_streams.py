"""The Redis Streams transport of the distributed run, against a private redis-server: lossless frame codec,
consumer groups with reclaim of a dead worker's entries, duplicates and ordering in front of the tracker,
live trimming versus lossless back-pressure, gauges, and one-line startup errors."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from conftest import run_cli
from detector.detections import Detections
from pipeline.distributed.codec import Envelope, decode, encode_detected, encode_frame
from pipeline.distributed.reorder import Reorderer
from pipeline.distributed.roles import OrderedDetections
from pipeline.distributed.streams import (GroupReader, StatsPoller, StreamMetrics, StreamsUnavailable, StreamWriter,
                                          connect)
from pipeline.frames import DetectedFrame, EndOfStream, Frame
from pipeline.prometheus import Metrics


def frame(i: int, cam: str = "c", dtype=np.uint16, shape=(37, 53)) -> Frame:
    rng = np.random.default_rng(i)
    img = rng.integers(0, np.iinfo(dtype).max, shape, dtype=dtype)
    return Frame(cam, i, i / 25, 1.7e9 + i, i / 25, img)


def det(i: int, cam: str = "c") -> DetectedFrame:
    return DetectedFrame(frame(i, cam, np.uint8, (4, 6)), Detections([[i, 2.5]], [[1.0, 2.0, 1.5, 0.5]], [0.75]))


def env(seq: int, cam: str = "c", run: int = 1, live: bool = False) -> Envelope:
    return Envelope(cam, run, seq, live)


def test_frame_codec_is_lossless_for_8_and_16_bit():
    for dtype in (np.uint8, np.uint16):
        f = frame(7, dtype=dtype)
        fields = encode_frame(f, env(3), level=6)
        assert len(fields[b"image"]) < f.image.nbytes * 1.01
        back, e = decode(fields)
        assert back.image.dtype == dtype and back.image.shape == f.image.shape and np.array_equal(back.image, f.image)
        assert (back.camera, back.index, back.pts, back.captured_at, back.timestamp) == \
            (f.camera, f.index, f.pts, f.captured_at, f.timestamp)
        assert (e.camera, e.run, e.seq, e.live) == ("c", 1, 3, False) and e.sent_at > 0


def test_detections_and_end_codec():
    d = det(4)
    back, _ = decode(encode_detected(d, env(1)))
    assert isinstance(back, DetectedFrame) and back.frame.size == (6, 4) and back.frame.index == 4
    assert np.array_equal(back.detections.xy, d.detections.xy) and np.array_equal(back.detections.score, [0.75])
    assert np.array_equal(back.detections.ltrb, [[1.0, 2.0, 1.5, 0.5]])  # the asymmetric box, as predicted
    fields = encode_detected(d, env(1))
    fields[b"wh"] = np.array([[3, 2]], "<f4").tobytes()  # an entry of a worker from before the ltrb field
    del fields[b"ltrb"]
    old, _ = decode(fields)
    assert np.array_equal(old.detections.xyxy, [[2.5, 1.5, 5.5, 3.5]])
    end, _ = decode(encode_detected(EndOfStream("c", 9, 0.36, "boom"), env(10)))
    assert end == EndOfStream("c", 9, 0.36, "boom")
    empty, _ = decode(encode_detected(DetectedFrame(d.frame, Detections()), env(2)))
    assert len(empty.detections) == 0


def test_reorder_restores_order_and_drops_duplicates_by_camera_and_frame_index():
    r: Reorderer[str] = Reorderer()
    for seq in (2, 3, 1):
        assert r.push(det(seq), env(seq), f"id{seq}")
    assert not r.push(det(2), env(2), "dup")  # buffered already
    out = [r.pop().record.frame.index for _ in range(3)]
    assert out == [1, 2, 3] and r.pop() is None
    assert not r.push(det(3), env(3), "late duplicate")  # released already
    assert r.push(det(1, "other"), env(1, "other"), "x")  # cameras are independent
    assert r.pop().record.frame.camera == "other"
    assert r.push(EndOfStream("c", 3), env(4), "end") and isinstance(r.pop().record, EndOfStream)
    assert not r.push(det(4), env(5), "after end")


def test_reorder_skips_live_gaps_but_waits_for_lossless_ones():
    now = [0.0]
    r: Reorderer[int] = Reorderer(window=3, gap_timeout_s=1.0, lossless_gap_timeout_s=30.0, clock=lambda: now[0])
    for seq in (2, 3):  # live camera, frame 1 trimmed from the stream
        r.push(det(seq, "live"), env(seq, "live", live=True), seq)
        r.push(det(seq, "replay"), env(seq, "replay"), seq)
    assert r.pop() is None
    r.push(det(4, "live"), env(4, "live", live=True), 4)  # window reached: skip the gap
    got = r.pop()
    assert got.record.frame.camera == "live" and got.record.frame.index == 2 and got.skipped == 1
    now[0] = 10.0
    assert [r.pop().record.frame.camera for _ in range(2)] == ["live", "live"] and r.pop() is None
    r.push(det(1, "replay"), env(1, "replay"), 1)  # the late frame of the replay arrives: nothing was lost
    assert [(x.record.frame.index, x.skipped) for x in (r.pop(), r.pop(), r.pop())] == [(1, 0), (2, 0), (3, 0)]


def test_reorder_new_ingest_run_resets_the_camera():
    r: Reorderer[int] = Reorderer()
    r.push(det(5), env(1, run=1), 0)
    assert r.pop().record.frame.index == 5
    assert r.push(det(1), env(1, run=2), 1) and r.restarted == ["c"]
    assert r.pop().record.frame.index == 1
    assert not r.push(det(6), env(2, run=1), 2)  # stale: from the old run
    late: Reorderer[int] = Reorderer(join_after=100)  # a track worker that started mid-run
    assert late.push(det(500), env(500), 0) and late.pop().record.frame.index == 500


def test_dead_consumer_entries_are_reclaimed_and_acked_entries_deleted(redis_server):
    client = connect(redis_server.url)
    stop = threading.Event()
    m = StreamMetrics(Metrics().registry)
    a = GroupReader(client, "s", "g", "a", stop, claim_idle_s=0.3, metrics=m)
    b = GroupReader(client, "s", "g", "b", stop, claim_idle_s=0.3, metrics=m)
    w = StreamWriter(client, "s", 100, stop)
    for i in range(1, 5):
        w.add(encode_frame(frame(i), env(i)), live=False)
    got_a = a.read(2, 0.1)  # `a` takes two and dies
    assert len(got_a) == 2
    got_b = b.read(10, 0.1)
    assert len(got_b) == 2  # the other two; a's are not idle yet
    b.ack([eid for eid, _ in got_b])
    time.sleep(0.4)
    b._next_claim = 0
    claimed = b.read(10, 0.1)
    assert [e for e, _ in claimed] == [e for e, _ in got_a]
    assert m.claimed.labels("s")._value.get() == 2
    w.add(encode_frame(frame(5), env(5)), live=False)
    (slow,) = b.read(10, 0.1)  # b works on it for longer than claim_idle_s ...
    time.sleep(0.4)
    b._next_claim = 0
    assert b.read(10, 0.05) == []  # ... and does not hand it out to itself again
    b.release([slow[0]])  # gave up on it (detection failed): retried once idle
    time.sleep(0.4)
    b._next_claim = 0
    assert [e for e, _ in b.read(10, 0.05)] == [slow[0]]
    b.ack([eid for eid, _ in claimed] + [slow[0]])
    assert client.xlen("s") == 0 and client.xpending("s", "g")["pending"] == 0 and not b.held


def test_duplicate_detections_reach_the_tracker_once(redis_server):
    """A worker that published and died before acknowledging: its frame is detected again elsewhere."""
    client = connect(redis_server.url)
    stop = threading.Event()
    m = StreamMetrics(Metrics().registry)
    w = StreamWriter(client, "d", 100, stop)
    for seq in (2, 1, 1, 3, 2):
        w.add(encode_detected(det(seq), env(seq)), live=False)
    w.add(encode_detected(EndOfStream("c", 3), env(4)), live=False)
    reader = GroupReader(client, "d", "track", "t", stop, metrics=m)
    inp = OrderedDetections(reader, Reorderer(), threading.Event(), ["c"], m, StatsPoller(client, ["d"], m))
    seen = []
    for _ in range(20):
        rec = inp.get(0.05)
        inp.ack_done()
        if rec is not None:
            seen.append("end" if isinstance(rec, EndOfStream) else rec.frame.index)
        if "end" in seen:
            break
    assert seen == [1, 2, 3, "end"]
    assert m.duplicates.labels("c")._value.get() == 2
    assert client.xlen("d") == 0 and client.xpending("d", "track")["pending"] == 0


def test_live_writes_trim_oldest_and_count_lossless_writes_wait(redis_server):
    client = connect(redis_server.url)
    stop = threading.Event()
    live = StreamWriter(client, "live", 3, stop)
    assert [live.add({b"n": str(i).encode()}, live=True) for i in range(5)] == [0, 0, 0, 1, 1]
    assert [f[b"n"] for _, f in client.xrange("live")] == [b"2", b"3", b"4"]

    w = StreamWriter(client, "lossless", 1000, stop, window=2, window_streams=["lossless", "downstream"])
    w.add({b"n": b"1"}, live=False)
    client.xadd("downstream", {b"n": b"0"})  # one record still on the next hop: the window is full
    done = threading.Event()
    t = threading.Thread(target=lambda: (w.add({b"n": b"2"}, live=False), done.set()))
    t.start()
    assert not done.wait(0.3)  # blocked, nothing trimmed
    client.delete("downstream")  # the tracker caught up
    assert done.wait(2)
    t.join()
    assert client.xlen("lossless") == 2
    stop.set()
    client.xadd("downstream", {b"n": b"0"})
    assert w.add({b"n": b"3"}, live=False) is None  # a stopping worker does not wait for ever


def test_gauges_report_length_lag_and_pending(redis_server):
    client = connect(redis_server.url)
    stop = threading.Event()
    m = StreamMetrics(Metrics().registry)
    reader = GroupReader(client, "s", "g", "a", stop)
    for i in range(5):
        client.xadd("s", {b"n": str(i).encode()})
    reader.read(2, 0.1)
    StatsPoller(client, ["s"], m).tick()
    assert m.length.labels("s")._value.get() == 5
    assert m.lag.labels("s", "g")._value.get() == 3 and m.pending.labels("s", "g")._value.get() == 2


def test_unreachable_redis_and_bad_role_are_one_line_errors():
    with pytest.raises(StreamsUnavailable, match="unreachable"):
        connect("redis://:pw@127.0.0.1:1/0", timeout_s=0.5)
    for args, msg in ((["--role", "collect"], "--role must be one of ingest, detect, track"),
                      (["--role", "detect", "--set", "streams.url=redis://127.0.0.1:1/0"], "unreachable")):
        r = run_cli("run", "configs/distributed.yaml", "--set", "metrics.port=null", *args, timeout=60)
        lines = [ln for ln in r.stderr.splitlines() if " INFO " not in ln]
        assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: ") and msg in lines[0], r.stderr
        assert "Traceback" not in r.stderr


@pytest.mark.timeout(60)
def test_workers_ride_out_a_redis_restart_and_recreate_their_groups(redis_server, caplog):
    client = connect(redis_server.url, timeout_s=0.5)
    stop = threading.Event()
    m = StreamMetrics(Metrics().registry)
    reader = GroupReader(client, "s", "g", "a", stop, metrics=m)
    writer = StreamWriter(client, "s", 100, stop, metrics=m)
    redis_server.stop()
    got: list = []
    t = threading.Thread(target=lambda: got.append(reader.read(5, 0.1)))
    t.start()
    time.sleep(0.8)
    assert t.is_alive() and m.redis_up._value.get() == 0  # waiting, not failing
    redis_server.start()  # back, empty: no stream, no group
    t.join(15)
    assert got == [[]] and m.redis_up._value.get() == 1
    writer.add(encode_frame(frame(1), env(1)), live=False)
    (entry,) = reader.read(5, 0.5)
    reader.ack([entry[0]])
    assert "unreachable" in caplog.text and "reachable again" in caplog.text and "recreating them" in caplog.text
