"""What real infrared scenes ask of the shipped detector: a plain noisy sky is not a target (8- and 16-bit), a dark
target on a bright sky is found, a near 40x30 px target is found once at its centre; and the dataset readers
(IRSTD-1k, MDvsFA, halmstad-ir videos) turn a user's mistake into one line and a non-zero exit."""
from pathlib import Path

import numpy as np
import pytest

from detector import Detector
from detector.cli import main as detector_cli
from detector.datasets import box_gates, open_dataset
from detector.imageio import normalize
from detector.synthetic import render_blob, render_spot

from conftest import DATA, write_mp4



@pytest.fixture(scope="module")
def det():
    return Detector.load("fast", device="cpu")


def _flat(seed: int, bits: int) -> np.ndarray:
    frame = np.random.default_rng(seed).normal(77, 3, (512, 512))
    frame = np.clip(np.rint(frame), 0, 255)
    return frame.astype(np.uint8) if bits == 8 else (frame * 257).astype(np.uint16)


@pytest.mark.parametrize("bits", [8, 16])
def test_a_flat_noisy_frame_gives_no_detection(det, bits):
    for seed in range(3):
        assert len(det.predict(_flat(seed, bits))) == 0


def test_8_and_16_bit_frames_of_one_scene_give_the_same_detections(det):
    frame = _flat(7, 8).astype(np.float64)
    patch, where = render_spot(frame.shape, 200.4, 300.7, 1.2, 1.0)
    frame[where] += 30 * patch
    f8 = np.clip(frame, 0, 255).astype(np.uint8)
    a, b = det.predict(f8), det.predict(f8.astype(np.uint16) * 257)
    assert np.allclose(normalize(f8), normalize(f8.astype(np.uint16) * 257), atol=1e-5)
    assert len(a) == len(b) >= 1 and np.allclose(a.xy, b.xy, atol=1e-3)


def test_a_dark_target_on_a_bright_sky_is_found(det):
    rng = np.random.default_rng(3)
    frame = rng.normal(190, 2.5, (256, 320))
    patch, where = render_spot(frame.shape, 150.3, 100.6, 1.3, 1.1)
    frame[where] -= 45 * patch
    dets = det.predict(np.clip(frame, 0, 255).astype(np.uint8))
    assert len(dets) >= 1
    d = np.hypot(dets.xy[:, 0] - 150.3, dets.xy[:, 1] - 100.6)
    assert d.min() <= 3.0


def test_a_40x30_target_is_found_once_near_its_centre(det):
    rng = np.random.default_rng(5)
    frame = rng.normal(80, 2.5, (256, 320))
    patch, where = render_blob(frame.shape, 160.0, 128.0, 20.0, 15.0, 0.0, np.random.default_rng(0))
    frame[where] += 50 * patch / patch.max()
    dets = det.predict(np.clip(frame, 0, 255).astype(np.uint8))
    near = np.hypot(dets.xy[:, 0] - 160.0, dets.xy[:, 1] - 128.0) <= 25.0
    assert near.sum() == 1, dets.xy
    assert np.hypot(*(dets.xy[near][0] - [160.0, 128.0])) <= 5.0


def test_box_targets_are_matched_within_half_their_diagonal():
    assert box_gates(np.array([[0, 0, 1, 1], [10, 10, 49, 39]])).tolist() == [3.0, 25.0]


# ---------------------------------------------------------------- readers and a user's mistakes

def _video_dataset(root: Path, frames: int = 10, label_frames: range = range(10)) -> Path:
    (root / "videos").mkdir(parents=True)
    (root / "labels").mkdir()
    (root / "splits").mkdir()
    rng = np.random.default_rng(0)
    images = []
    for i in range(frames):
        a = rng.normal(60, 2, (64, 80))
        patch, where = render_spot(a.shape, 20 + i, 30, 1.5, 1.5)
        a[where] += 80 * patch
        images.append(np.clip(a, 0, 255).astype(np.uint8))
    write_mp4(root / "videos" / "IR_DRONE_001.mp4", images)
    rows = ["frame,id,class,x,y,w,h"] + [f"{i},1,DRONE,{17 + i},27,6,6" for i in label_frames]
    (root / "labels" / "IR_DRONE_001.csv").write_text("\n".join(rows) + "\n")
    (root / "splits" / "val.txt").write_text("IR_DRONE_001\n")
    return root


def test_a_video_dataset_reads_box_targets_at_their_centres(tmp_path):
    samples = open_dataset(_video_dataset(tmp_path / "ds"), "val", every=3)
    assert [s.name for s in samples] == ["IR_DRONE_001#0", "IR_DRONE_001#3", "IR_DRONE_001#6", "IR_DRONE_001#9"]
    assert samples[1].centroids.tolist() == [[20 + 3, 30]]  # x + w/2, y + h/2
    assert samples[1].gates.tolist() == pytest.approx([max(3.0, 0.5 * np.hypot(6, 6))])


def _one_error_line(capsys, argv: list[str]) -> str:
    code = detector_cli(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: "), (code, err)
    assert "Traceback" not in err[0]
    return err[0]


def test_labels_that_do_not_match_the_video_are_one_line(tmp_path, capsys):
    root = _video_dataset(tmp_path / "ds", label_frames=range(0, 40, 4))
    line = _one_error_line(capsys, ["eval", "--data", str(root), "--split", "val"])
    assert "labels and video do not match" in line


def test_a_missing_split_file_is_one_line(tmp_path, capsys):
    root = _video_dataset(tmp_path / "ds")
    line = _one_error_line(capsys, ["eval", "--data", str(root), "--split", "test"])
    assert "no split 'test'" in line


def test_an_empty_folder_is_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    line = _one_error_line(capsys, ["eval", "--data", str(tmp_path / "empty"), "--split", "test"])
    assert "not a dataset" in line


def test_mdvsfa_is_a_test_set_only(tmp_path, capsys):
    root = tmp_path / "MDvsFA-test"
    (root / "test_org").mkdir(parents=True)
    (root / "test_gt").mkdir()
    line = _one_error_line(capsys, ["train", "--data", str(root), "--out", str(tmp_path / "run"), "--epochs", "1"])
    assert "test split only" in line


@pytest.mark.skipif(not (DATA / "IRSTD-1k").is_dir(), reason=f"{DATA / 'IRSTD-1k'} is absent (set ITD_DATA)")
def test_irstd1k_splits_are_the_authors_with_our_val_inside_trainval():
    train, val = open_dataset(DATA / "IRSTD-1k", "train"), open_dataset(DATA / "IRSTD-1k", "val")
    test = open_dataset(DATA / "IRSTD-1k", "test")
    names = [{s.name for s in x} for x in (train, val, test)]
    assert (len(train), len(val), len(test)) == (640, 160, 201)
    assert not (names[0] & names[1]) and not (names[0] & names[2]) and not (names[1] & names[2])
