"""Metrics: in-memory figures agree with TrackEval's own evaluator run on MOTChallenge files."""
from __future__ import annotations

import numpy as np
import pytest
import trackeval
from trackeval.datasets import MotChallenge2DBox

from tracking import TrackEvent
from tracking.mot_scores import alert_metrics, detection_prf, evaluate, point_similarity, tracking_metrics
from tracking.motchallenge import MotRows, read_rows, write_gt, write_seqinfo, write_tracks
from tracking.tracks import Tracks

N_FRAMES = 60


class PointMot(MotChallenge2DBox):
    """TrackEval's MOTChallenge reader with the point similarity max(0, 1 - d / 6 px) between box centres."""

    def _calculate_similarities(self, gt_dets_t, tracker_dets_t):
        g = gt_dets_t[:, :2] + gt_dets_t[:, 2:4] / 2
        t = tracker_dets_t[:, :2] + tracker_dets_t[:, 2:4] / 2
        return point_similarity(g, t)


def scenario() -> tuple[MotRows, MotRows]:
    """3 targets; tracker output with noise, gaps, an id switch, a fragmented track and false tracks."""
    rng = np.random.default_rng(7)
    g, t = [], []
    for f in range(1, N_FRAMES + 1):
        for k, (x0, y0, vx, vy, s, e) in enumerate([(20, 30, 1.5, 0.4, 1, 60), (200, 40, -1.0, 1.2, 10, 50),
                                                     (100, 150, 0.6, -0.8, 1, 45)], start=1):
            if not s <= f <= e:
                continue
            x, y = x0 + vx * f, y0 + vy * f
            g.append((f, k, x, y, 3.0, 3.0, 5.0 + k))
            if k == 2 and 25 <= f <= 28:
                continue  # missed
            tid = {1: 1, 2: 2 if f < 35 else 7, 3: 3 if f < 20 else 4}[k]  # id switch, fragmentation
            noise = rng.normal(0, 1.2 if k == 3 else 0.4, 2)
            t.append((f, tid, x + noise[0], y + noise[1], 3.0, 3.0, 0.9))
        if f % 7 == 0:
            t.append((f, 20 + f // 20, *rng.uniform(0, 250, 2), 3.0, 3.0, 0.5))  # false tracks
    g, t = np.array(g), np.array(t)
    return (MotRows(g[:, 0], g[:, 1], g[:, 2:4], g[:, 4:6], None, g[:, 6]),
            MotRows(t[:, 0], t[:, 1], t[:, 2:4], t[:, 4:6], t[:, 6]))


def run_trackeval(tmp_path, gt: MotRows, tr: MotRows) -> dict:
    seq = "synth-test"
    (tmp_path / "gt" / seq / "gt").mkdir(parents=True)
    (tmp_path / "trk" / "mine" / "data").mkdir(parents=True)
    write_gt(tmp_path / "gt" / seq / "gt" / "gt.txt", gt)
    write_seqinfo(tmp_path / "gt" / seq / "seqinfo.ini", seq, N_FRAMES, 320, 256, 25.0)
    write_tracks(tmp_path / "trk" / "mine" / "data" / f"{seq}.txt", tr)
    ds = PointMot({"GT_FOLDER": str(tmp_path / "gt"), "TRACKERS_FOLDER": str(tmp_path / "trk"),
                   "SKIP_SPLIT_FOL": True, "SEQ_INFO": {seq: N_FRAMES}, "TRACKERS_TO_EVAL": ["mine"],
                   "PRINT_CONFIG": False, "OUTPUT_FOLDER": str(tmp_path / "out")})
    ev = trackeval.Evaluator({"USE_PARALLEL": False, "PRINT_RESULTS": False, "PRINT_CONFIG": False,
                              "TIME_PROGRESS": False, "OUTPUT_SUMMARY": False, "OUTPUT_DETAILED": False,
                              "PLOT_CURVES": False, "DISPLAY_LESS_PROGRESS": True, "OUTPUT_EMPTY_CLASSES": False})
    metrics = [trackeval.metrics.HOTA(), trackeval.metrics.CLEAR({"THRESHOLD": 0.5, "PRINT_CONFIG": False}),
               trackeval.metrics.Identity({"THRESHOLD": 0.5, "PRINT_CONFIG": False})]
    res, _ = ev.evaluate([ds], metrics)
    r = res["PointMot"]["mine"][seq]["pedestrian"]
    return {"HOTA": np.mean(r["HOTA"]["HOTA"]), "DetA": np.mean(r["HOTA"]["DetA"]),
            "AssA": np.mean(r["HOTA"]["AssA"]), "MOTA": r["CLEAR"]["MOTA"], "IDSW": r["CLEAR"]["IDSW"],
            "IDF1": r["Identity"]["IDF1"]}


def test_metrics_agree_with_trackeval_on_motchallenge_files(tmp_path):
    gt, tr = scenario()
    ref = run_trackeval(tmp_path, gt, tr)
    back_gt = read_rows(tmp_path / "gt" / "synth-test" / "gt" / "gt.txt", gt=True)
    back_tr = read_rows(tmp_path / "trk" / "mine" / "data" / "synth-test.txt")
    mine_files = tracking_metrics(back_gt, back_tr, N_FRAMES)
    mine_memory = tracking_metrics(gt, tr, N_FRAMES)
    assert 0.3 < ref["HOTA"] < 0.95 and ref["IDSW"] >= 1  # a non-trivial case
    for k, v in ref.items():
        assert mine_files[k] == pytest.approx(v, abs=1e-9), k
        assert mine_memory[k] == pytest.approx(v, abs=2e-3), k


def test_mot_roundtrip_keeps_positions_and_scr(tmp_path):
    gt, tr = scenario()
    write_gt(tmp_path / "gt.txt", gt)
    back = read_rows(tmp_path / "gt.txt", gt=True)
    order = np.lexsort((gt.id, gt.frame))
    assert np.allclose(back.xy, gt.xy[order], atol=1e-3) and np.allclose(back.scr, gt.scr[order], atol=1e-3)
    assert back.target_scr() == pytest.approx({1: 6.0, 2: 7.0, 3: 8.0})


def test_perfect_output_and_detection_prf():
    gt, _ = scenario()
    r = evaluate(gt, gt, N_FRAMES)
    assert r["HOTA"] == pytest.approx(1.0) and r["IDF1"] == 1.0 and r["MOTA"] == 1.0 and r["det_F1"] == 1.0
    assert set(r["by_scr"]) == {"5-7", "7-10"}
    shifted = MotRows(gt.frame, gt.id, gt.xy + [3.5, 0], gt.wh)  # beyond the 3 px rule
    assert detection_prf(gt, shifted, N_FRAMES)["det_R"] == 0.0
    per_frame = [gt.xy[gt.at(f)] + [2.5, 0] for f in range(1, N_FRAMES + 1)]  # within it, list input
    assert detection_prf(gt, per_frame, N_FRAMES)["det_F1"] == 1.0
    def tracks(f: int) -> Tracks:  # what `Tracker.active_tracks()` gives
        i = gt.at(f)
        ones = np.ones(len(i))
        return Tracks(xy=gt.xy[i], ltrb=np.tile(gt.wh[i] / 2, 2), score=ones, track_id=gt.id[i],
                      vxy=np.zeros((len(i), 2)), top_score=ones, hits=ones, age=ones, misses=0 * ones,
                      first_frame=ones, last_frame=f * ones)

    per_frame_tracks = [(f, tracks(f)) for f in range(1, N_FRAMES + 1)]
    assert tracking_metrics(gt, per_frame_tracks, N_FRAMES)["IDF1"] == 1.0
    rows = MotRows.from_tracks(per_frame_tracks)
    assert len(rows) == len(gt) and np.allclose(rows.wh, gt.wh[np.lexsort((gt.id, gt.frame))])


def test_alert_metrics():
    gt, _ = scenario()

    def new(tid, f, x, y):
        return TrackEvent("new", tid, f, f / 25, x, y, 0, 0, 3, 3, 0.9, 0.9, 5, 5, f - 4, f)

    events = [new(1, 6, 29.0, 32.4), new(2, 15, 185.0, 58.0), new(9, 30, 5.0, 5.0),  # true, true, false
              new(5, 40, 20 + 1.5 * 40, 30 + 0.4 * 40)]  # second alert of target 1
    a = alert_metrics(gt, events, N_FRAMES, fps=25.0)
    assert a["targets"] == 3 and a["targets_alerted"] == 2 and a["alert_share"] == pytest.approx(2 / 3)
    assert a["latency_frames_median"] == pytest.approx(5.0)  # target 1: 6-1, target 2: 15-10
    assert a["new_false"] == 1 and a["false_new_per_hour"] == pytest.approx(1 / (60 / 25 / 3600))
    assert a["new_per_target"] == pytest.approx(1.5)
