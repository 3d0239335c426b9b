"""The detector's command line end to end: train (and resume), eval, predict; clear errors."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def _cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    res = subprocess.run([sys.executable, "-m", "detector", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
    if check:
        assert res.returncode == 0, res.stderr
    return res


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """A tiny mask-folder dataset; its test list names an image that does not exist, so reading it fails."""
    root = tmp_path_factory.mktemp("ds")
    (root / "images").mkdir()
    (root / "masks").mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        img = rng.normal(60, 5, (64, 80)).clip(0, 255).astype(np.uint8)
        x, y = 10 + 9 * i, 20 + 4 * i
        img[y - 1:y + 2, x - 1:x + 2] = 220
        Image.fromarray(img).save(root / "images" / f"f{i}.png")
        Image.fromarray(((img > 150) * 255).astype(np.uint8)).save(root / "masks" / f"f{i}.png")
    (root / "train.txt").write_text("f0\nf1\nf2\nf3")
    (root / "val.txt").write_text("f4\nf5")
    (root / "test.txt").write_text("does_not_exist")
    return root


@pytest.fixture(scope="module")
def trained(dataset, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run")
    common = ["train", "--variant", "fast", "--data", str(dataset), "--out", str(out), "--iters", "2", "--batch", "2",
              "--crop", "64", "--val-every", "1", "--backgrounds", ""]
    _cli(*common, "--epochs", "1")
    res = _cli(*common, "--epochs", "2", "--resume")
    assert "resumed from" in res.stdout and "best val F1" in res.stdout
    history = json.loads((out / "history.json").read_text())
    assert [r["epoch"] for r in history["history"]] == [1, 2]
    return out / "best.pt"


def test_training_never_reads_the_test_split(trained):
    assert trained.is_file()  # the test list names a missing image: training would have failed on it


def test_checkpoint_records_variant_preprocessing_and_threshold(trained):
    from detector.checkpoint import load_checkpoint

    _, meta = load_checkpoint(trained)
    assert meta["variant"] == "fast" and meta["stride"] == 2
    assert meta["preprocessing"]["mode"] == "standardize" and 0 < meta["threshold"] < 1
    assert "detector train" in meta["command"]


def test_predict_writes_one_json_line_per_image(trained, dataset, tmp_path):
    out = tmp_path / "preds.jsonl"
    _cli("predict", str(dataset / "images"), str(dataset / "images" / "f0.png"), "--weights", str(trained),
         "--out", str(out), "--threshold", "0.05")
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 7
    assert set(rows[0]) == {"image", "width", "height", "detections"}
    assert (rows[0]["width"], rows[0]["height"]) == (80, 64)
    for d in rows[0]["detections"]:
        assert set(d) == {"x", "y", "x1", "y1", "x2", "y2", "score"}
        assert d["x1"] <= d["x"] <= d["x2"] and d["y1"] <= d["y"] <= d["y2"]  # extents are non-negative


def test_eval_writes_json_and_pr_curve(trained, dataset, tmp_path):
    res = _cli("eval", "--weights", str(trained), "--data", str(dataset), "--split", "val", "--out", str(tmp_path))
    assert "point: P=" in res.stdout and "false per megapixel" in res.stdout and "Pd=" in res.stdout
    report = json.loads((tmp_path / "metrics.json").read_text())
    assert report["split"] == "val" and report["targets"] == 2
    assert {"point", "pd", "fa_e6", "ap50", "by_size", "pr_curve"} <= set(report)
    assert (tmp_path / "pr_curve.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("args, message", [
    (["predict", "nowhere.png"], "nowhere.png: no such file or folder"),
    (["predict", "README.md", "--weights", "missing.pt"], "missing.pt: no such weights file"),
    (["predict", "README.md", "--weights", "pyproject.toml"], "not a detector checkpoint"),
    (["eval", "--data", "nowhere", "--weights", "pyproject.toml"], "not a detector checkpoint"),
    (["train", "--data", "nowhere", "--out", "/tmp/x-itd"], "nowhere: no such file or folder"),
])
def test_user_mistakes_give_one_clear_line(args, message):
    res = _cli(*args, check=False)
    assert res.returncode == 2
    assert message in res.stderr
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1


class _Payload:
    """Unpickling this runs `touch <marker>`: what a hostile weights file would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        import os
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("command", [["predict", "README.md"], ["convert"]])
def test_weights_carrying_a_pickle_payload_are_refused_and_never_run(tmp_path, command):
    import torch

    marker = tmp_path / "payload-ran"
    hostile = tmp_path / "hostile.pt"
    torch.save({"format": "itd-detector/1", "variant": "fast", "state_dict": {}, "x": _Payload(marker)}, hostile)
    args = [*command, "--weights", str(hostile)] if command[0] == "predict" else [*command, str(hostile),
                                                                                    str(tmp_path / "out.safetensors")]
    res = _cli(*args, check=False)
    assert res.returncode == 2
    assert "hostile.pt: refused: the file asks to run code" in res.stderr
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert not marker.exists(), "the payload ran"
    assert not (tmp_path / "out.safetensors").exists()


def test_training_checkpoints_read_safely_and_convert_to_safetensors(trained, dataset, tmp_path):
    import torch

    from detector.checkpoint import read_state

    last = read_state(trained.parent / "last.pt")  # weights_only: the optimizer state for --resume reads too
    assert {"optimizer", "scheduler", "best", "history"} <= set(last)
    dst = tmp_path / "best.safetensors"
    assert f"wrote {dst}" in _cli("convert", str(trained), str(dst)).stdout
    assert dst.read_bytes()[8:9] == b"{"  # a JSON header, no pickle
    a, b = read_state(trained), read_state(dst)
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    assert b["threshold"] == a["threshold"] and "optimizer" not in b
    preds = [_cli("predict", str(dataset / "images" / "f0.png"), "--weights", str(w), "--threshold", "0.05").stdout
             for w in (trained, dst)]
    assert json.loads(preds[0])["detections"] == json.loads(preds[1])["detections"]
