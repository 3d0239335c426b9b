"""Semi-synthetic generator and sequence readers (MOTChallenge folder, video + gt, ITT COCO json)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from tracking import synth
from tracking.sequences import SequenceError, open_sequence
from tracking.synth import SynthConfig, render, write_sequence


@pytest.fixture(scope="module")
def background(tmp_path_factory):
    """A cloud-like 8-bit background (so the tests do not need the shared data folder)."""
    rng = np.random.default_rng(0)
    small = rng.normal(100, 25, (12, 16))
    img = np.asarray(Image.fromarray(small.astype(np.float32)).resize((240, 180), Image.BICUBIC))
    path = tmp_path_factory.mktemp("bg") / "bg.png"
    Image.fromarray(np.clip(img + rng.normal(0, 2, img.shape), 0, 255).astype(np.uint8)).save(path)
    return str(path)


def small(background, **kw) -> SynthConfig:
    return SynthConfig(**{"seed": 3, "frames": 30, "targets": 3, "width": 160, "height": 128,
                          "background": background, "speed_min": 1.0, "speed_max": 2.0, **kw})


def test_render_is_seeded_and_records_scr(background):
    a, info = render(small(background))
    b, _ = render(small(background))
    c, _ = render(small(background, seed=4))
    assert np.array_equal(a._frames, b._frames) and np.array_equal(a.gt.xy, b.gt.xy)
    assert not np.array_equal(a._frames, c._frames)
    assert a._frames.shape == (30, 128, 160) and a._frames.dtype == np.uint8
    assert len(np.unique(a.gt.id)) == 3 and info["background"] == "bg.png"
    scr = a.gt.target_scr()
    assert all(1.5 < s < 15 for s in scr.values()), scr
    inside = (a.gt.xy >= -0.5).all(1) & (a.gt.xy[:, 0] <= 159.5) & (a.gt.xy[:, 1] <= 127.5)
    assert inside.all()


def test_targets_are_visible_at_their_gt_position(background):
    seq, _ = render(small(background, scr_min=8, scr_max=10, noise=0.5, hot_pixels=0, drift=0.0))
    frames = seq._frames.astype(float)
    for k in range(len(seq.gt)):
        f, (x, y) = seq.gt.frame[k], np.round(seq.gt.xy[k]).astype(int)
        if 4 <= x < 156 and 4 <= y < 124:
            patch = frames[f - 1, y - 4:y + 5, x - 4:x + 5]
            assert patch[3:6, 3:6].max() > np.median(patch) + 5


def test_write_and_read_back_all_layouts(background, tmp_path):
    seq, info = render(small(background))
    out = write_sequence(seq, info, tmp_path / "seqA", crf=12)
    assert (out / "img1" / "000001.png").is_file() and (out / "gt" / "gt.txt").is_file()
    mot = open_sequence(out)
    assert (mot.name, mot.width, mot.height, mot.length, mot.fps) == ("seqA", 160, 128, 30, 25.0)
    frames = dict(mot.frames())
    assert min(frames) == 1 and np.array_equal(frames[1], seq._frames[0])
    assert np.allclose(mot.gt.xy, seq.gt.xy, atol=2e-3) and np.allclose(mot.gt.scr, seq.gt.scr, atol=2e-3)
    vid = open_sequence(out / "video.mp4")
    assert vid.gt is not None and vid.length == 30 and vid.fps == 25.0
    decoded = [f for _, f in vid.frames()]
    assert len(decoded) == 30 and decoded[0].shape == (128, 160)
    assert np.abs(decoded[5].astype(float) - seq._frames[5]).mean() < 2.0
    # a folder without img1/ falls back to its video (the committed sample's layout)
    for p in (out / "img1").iterdir():
        p.unlink()
    (out / "img1").rmdir()
    assert open_sequence(out).length == 30


def test_cli_and_clear_errors(background, tmp_path, capsys, monkeypatch):
    rc = synth.main(["--out", str(tmp_path / "s"), "--frames", "5", "--size", "96x80", "--background", background,
                     "--no-video"])
    assert rc == 0 and len(list((tmp_path / "s" / "img1").iterdir())) == 5
    rc = synth.main(["--out", str(tmp_path / "t"), "--background", str(tmp_path / "nope")])
    err = capsys.readouterr().err
    assert rc == 2 and "nope" in err and err.count("\n") == 1 and "Traceback" not in err
    rc = synth.main(["--out", str(tmp_path / "t"), "--scr-min", "9", "--scr-max", "3", "--background", background])
    assert rc == 2 and "scr_min" in capsys.readouterr().err
    monkeypatch.setattr(synth, "DEFAULT_BACKGROUNDS", tmp_path / "absent")
    with pytest.raises(SequenceError, match="--background"):
        render(SynthConfig(frames=2))


def test_open_sequence_errors(tmp_path):
    with pytest.raises(SequenceError, match="no such file"):
        open_sequence(tmp_path / "missing")
    with pytest.raises(ValueError, match="not a MOTChallenge sequence folder"):
        open_sequence(tmp_path)
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(SequenceError, match="unknown sequence type"):
        open_sequence(tmp_path / "x.txt")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(SequenceError, match="bad.json"):
        open_sequence(tmp_path / "bad.json")


def test_itt_coco_json(tmp_path):
    (tmp_path / "images").mkdir()
    images, anns = [], []
    for scene, n in (("data07", 2), ("sky_a", 1)):
        for f in range(1, 6):
            name = f"{scene}_{n}_{f:04d}.jpg"
            Image.fromarray(np.full((40, 50), 30, np.uint8)).save(tmp_path / "images" / name)
            iid = len(images) + 1
            images.append({"id": iid, "file_name": name, "width": 50, "height": 40})
            for k in range(n):
                anns.append({"id": len(anns) + 1, "image_id": iid, "category_id": 1,
                             "bbox": [5 + 2 * f + 20 * k, 10 + 10 * k, 3, 3]})
    (tmp_path / "test.json").write_text(json.dumps({"images": images, "annotations": anns,
                                                    "categories": [{"id": 1, "name": "target"}]}))
    with pytest.raises(SequenceError, match="2 scenes"):
        open_sequence(tmp_path / "test.json")
    seq = open_sequence(f"{tmp_path / 'test.json'}#data07")
    assert (seq.name, seq.length, seq.width, seq.height) == ("data07", 5, 50, 40)
    assert sorted(np.unique(seq.gt.id)) == [1, 2] and len(seq.gt) == 10
    first = seq.gt.at(1)
    assert np.allclose(sorted(seq.gt.xy[first, 0]), [5 + 2 + 1.5 - 0.5, 25 + 2 + 1.5 - 0.5])
    i, frame = next(seq.frames())
    assert i == 1 and frame.shape == (40, 50) and frame.dtype == np.uint8
    with pytest.raises(SequenceError, match="no scene"):
        open_sequence(f"{tmp_path / 'test.json'}#other")


@pytest.mark.skipif(not synth.DEFAULT_BACKGROUNDS.is_dir(), reason=f"{synth.DEFAULT_BACKGROUNDS} is absent (set ITD_DATA)")
def test_shared_backgrounds_default():
    seq, info = render(SynthConfig(seed=5, frames=3, targets=2))
    assert (seq.width, seq.height) == (640, 512) and info["background"].endswith(".png")


def test_estimate_shift_follows_platform_drift(background):
    from tracking.egomotion import estimate_shift

    seq, _ = render(small(background, frames=25, drift=1.5, hot_pixels=3))
    true = np.diff(seq.scene_motion, axis=0)
    est = np.array([estimate_shift(seq._frames[i - 1], seq._frames[i]) for i in range(1, 25)])
    assert np.abs(true).max() > 0.3
    assert np.sqrt(np.mean((est - true) ** 2)) < 0.1


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("shape", [(37, 53), (5, 2), (1, 9)])  # also smaller than the 7 px window
def test_fast_grey_opening_equals_scipys(dtype, shape):
    from scipy import ndimage

    from tracking.egomotion import _background

    img = (np.random.default_rng(3).random(shape) * 200).astype(dtype)
    ref = ndimage.maximum_filter(ndimage.minimum_filter(img.astype(np.float32), size=7), size=7)
    assert np.array_equal(_background(img), ref)


def test_scene_motion_matches_pairwise_estimates(background):
    from tracking.egomotion import SceneMotion, estimate_shift

    seq, _ = render(small(background, frames=8, drift=1.0, hot_pixels=0))
    frames = seq._frames
    motion = SceneMotion()
    offsets = [motion.update(f) for f in frames]
    pairs = [estimate_shift(frames[i - 1], frames[i]) for i in range(1, len(frames))]
    assert all(p is not None for p in pairs)
    assert np.allclose(offsets[-1][:2], np.sum(pairs, axis=0), atol=1e-6) and offsets[-1].measured  # the first counts once the second confirms it
