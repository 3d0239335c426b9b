"""Real-video layout (halmstad-ir: videos/IR_*.mp4 + labels/IR_*.csv) in replay and scoring."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import DATA, FakeDetector, make_clip
from pipeline.replay import replay_folder
from tracking.mot_scores import alert_metrics, match_gate, point_similarity
from tracking.motchallenge import MotRows, read_rows
from tracking.sequences import SequenceError, open_sequence, sequence_paths

ROOT = Path(__file__).resolve().parents[1]
HALMSTAD = DATA / "halmstad-ir"


def halmstad_folder(tmp_path: Path, names=("IR_DRONE_001", "IR_BIRD_002"), frames: int = 40) -> Path:
    """A halmstad-ir style folder made from test clips: labels as `frame,id,class,x,y,w,h` (0-based frames)."""
    root = tmp_path / "ds"
    for sub in ("videos", "labels", "splits"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for k, name in enumerate(names):
        clip = make_clip(tmp_path / f"clip{k}", frames=frames, seed=k)
        (clip / "video.mp4").rename(root / "videos" / f"{name}.mp4")
        gt = read_rows(clip / "gt" / "gt.txt", gt=True)
        cls = name.split("_")[1]
        lines = ["frame,id,class,x,y,w,h"] + [
            f"{f - 1},{i},{cls},{x - w / 2:.3f},{y - h / 2:.3f},{w:.3f},{h:.3f}"
            for f, i, (x, y), (w, h) in zip(gt.frame, gt.id, gt.xy, gt.wh)]
        (root / "labels" / f"{name}.csv").write_text("\n".join(lines) + "\n")
    (root / "splits" / "val.txt").write_text(names[0] + "\n")
    return root


def test_halmstad_video_reads_its_labels(tmp_path):
    root = halmstad_folder(tmp_path)
    seq = open_sequence(root / "videos" / "IR_DRONE_001.mp4")
    assert seq.length == 40 and seq.gt is not None and seq.classes == {1: "DRONE", 2: "DRONE"}
    assert seq.gt.frame.min() == 1 and seq.gt.frame.max() == 40  # 0-based labels -> 1-based frames
    clip_gt = read_rows(tmp_path / "clip0" / "gt" / "gt.txt", gt=True)
    assert np.allclose(seq.gt.xy, clip_gt.xy, atol=1e-3)  # same centres through both conventions
    assert [p.stem for p in sequence_paths(root, "val")] == ["IR_DRONE_001"]
    assert len(sequence_paths(root)) == 2


def test_labels_that_do_not_match_the_video_are_one_clear_line(tmp_path):
    root = halmstad_folder(tmp_path)
    csv = root / "labels" / "IR_DRONE_001.csv"
    csv.write_text(csv.read_text() + "40,1,DRONE,10,10,3,3\n")
    with pytest.raises(SequenceError, match="labels frame 40, but the video has 40 frames"):
        open_sequence(root / "videos" / "IR_DRONE_001.mp4")
    csv.write_text("frame,id,class,x,y,w,h\n0,1,DRONE,900,10,3,3\n")
    with pytest.raises(SequenceError, match="does not fit the 160x128 video"):
        open_sequence(root / "videos" / "IR_DRONE_001.mp4")
    r = subprocess.run([sys.executable, "-m", "pipeline", "replay", str(root / "videos" / "IR_DRONE_001.mp4"),
                        "--report", str(tmp_path / "r.json")], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "labels and video do not match" in r.stderr
    with pytest.raises(SequenceError, match="no split 'test'"):
        sequence_paths(root, "test")


def test_replay_folder_with_split(tmp_path):
    root = halmstad_folder(tmp_path)
    seen = []
    out, code = replay_folder(str(root), None, None, [], tmp_path / "report.json", progress=False,
                              detector=FakeDetector(), on_report=seen.append)
    assert code == 0 and [r["sequence"] for r in seen] == ["IR_BIRD_002", "IR_DRONE_001"]
    s = out["summary"]
    assert s["targets"] == 4 and s["alert_share"] == 1.0 and s["new_false"] == 0
    assert set(out["by_class"]) == {"BIRD", "DRONE"}
    assert json.loads((tmp_path / "report.json").read_text())["summary"]["targets"] == 4
    out, code = replay_folder(str(root), "val", None, [], progress=False, detector=FakeDetector())
    assert [r["sequence"] for r in out["sequences"]] == ["IR_DRONE_001"]


def test_motchallenge_class_minus_one_means_not_given(tmp_path):
    gt = tmp_path / "gt.txt"
    gt.write_text("1,1,10,10,3,3,1,-1,1\n1,2,20,20,3,3,1,1,1\n1,3,30,30,3,3,1,2,1\n1,4,40,40,3,3,0,-1,1\n")
    rows = read_rows(gt, gt=True)
    assert sorted(rows.id.tolist()) == [1, 2]  # class 2 is another class, consider=0 is ignored


def test_match_gate_is_half_the_box_diagonal_at_least_3px():
    assert match_gate(np.array([[3, 3], [30, 40]])).tolist() == [3.0, 25.0]
    sim = point_similarity(np.array([[0.0, 0.0], [100.0, 0.0]]), np.array([[20.0, 0.0], [102.0, 0.0]]),
                           match_gate(np.array([[30, 40], [3, 3]])))
    assert sim[0, 0] == pytest.approx(0.6) and sim[1, 1] == pytest.approx(1 - 2 / 6)
    gt = MotRows([5], [1], [[50.0, 50.0]], [[30.0, 40.0]])
    new = lambda x: type("E", (), {"event": "new", "frame_index": 5, "x": x, "y": 50.0})()  # noqa: E731
    a = alert_metrics(gt, [new(70.0), new(90.0)], 10, 30.0)
    assert a["targets_alerted"] == 1 and a["new_false"] == 1  # 20 px inside the 25 px gate, 40 px outside


@pytest.mark.skipif(not (HALMSTAD / "videos").is_dir(), reason=f"{HALMSTAD} is absent (set ITD_DATA)")
def test_real_halmstad_labels_fit_their_videos():
    for path in sequence_paths(HALMSTAD, "val")[:3]:
        seq = open_sequence(path)
        assert seq.gt is not None and len(seq.gt) > 0 and seq.width == 320 and seq.height == 256
