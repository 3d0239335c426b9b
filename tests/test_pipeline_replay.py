"""`replay`: a recording through the same graph, losslessly, scored against its ground truth."""
from __future__ import annotations

import json

from conftest import FakeDetector, make_clip
from pipeline.replay import replay, replay_config


def test_replay_scores_and_writes_mot_rows(tmp_path):
    clip = make_clip(tmp_path / "seq", frames=40, images=True, video=False)
    config = replay_config(str(clip), None, ["sinks.jsonl.path=" + str(tmp_path / "alerts.jsonl")])
    reports = []
    for k in range(2):
        report, code = replay(str(clip), config, tmp_path / f"report{k}.json", tmp_path / "tracks.txt",
                              progress=False, detector=FakeDetector())
        assert code == 0
        reports.append(json.loads((tmp_path / f"report{k}.json").read_text()))
    r = reports[0]
    assert r["frames"] == 40 and r["alerts"]["new"] == 2 and r["alerts"]["end"] == 2
    assert r["alerts_sha256"] == reports[1]["alerts_sha256"]
    m = r["metrics"]
    assert m["alert_share"] == 1.0 and m["IDF1"] > 0.8 and m["MOTA"] > 0.8
    rows = (tmp_path / "tracks.txt").read_text().splitlines()
    assert rows and all(len(line.split(",")) == 10 for line in rows)
    frame, tid, left, top, w, h = (float(v) for v in rows[0].split(",")[:6])
    assert frame >= 1 and tid == 1 and w == 3 and h == 3
