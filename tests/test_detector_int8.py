"""int8 on the CPU: a calibrated model beside the checkpoint, keyed by the checkpoint's hash; deterministic
calibration; clear errors for a missing or stale calibration; the shipped `fast` ships its int8 model."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from detector import Detector, DetectorError
from detector.checkpoint import WEIGHTS_DIR, save_checkpoint
from detector.models import create_model
from detector.quantize import int8_path, load_int8, quantize
from detector.runtime import resolve

ROOT = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")


def _frames(n: int = 3) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    frames = []
    for i in range(n):
        f = rng.normal(80, 6, (64, 96)).clip(0, 255).astype(np.uint8)
        f[20 + i:23 + i, 30:33] = 230
        frames.append(f)
    return frames


@pytest.fixture
def checkpoint(tmp_path) -> Path:
    torch.manual_seed(0)
    path = tmp_path / "tiny.pt"
    save_checkpoint(path, create_model("fast"), {"variant": "fast", "stride": 2, "threshold": 0.5,
                                                 "preprocessing": {"mode": "standardize", "pad_multiple": 32}})
    return path


def test_int8_resolves_to_onnxruntime_on_the_cpu_only():
    assert resolve("auto", "int8", CPU) == ("onnxruntime", "int8")
    with pytest.raises(DetectorError, match="int8 runs in runtime onnxruntime"):
        resolve("torch", "int8", CPU)
    with pytest.raises(DetectorError, match="int8 runs on the CPU .*use fp16 or bf16 on CUDA"):
        resolve("auto", "int8", torch.device("cuda"))


def test_calibration_is_written_beside_the_weights_deterministic_and_runs(checkpoint, tmp_path):
    path = quantize(checkpoint, _frames(), "(test)")
    assert path == int8_path(checkpoint) == checkpoint.with_name("tiny.int8.onnx")
    first = path.read_bytes()
    assert quantize(checkpoint, _frames(), "(test)").read_bytes() == first  # same frames, same model
    det = Detector.load(checkpoint, device="cpu", precision="int8", threshold=0.0)
    ref = Detector.load(checkpoint, device="cpu", precision="fp32", threshold=0.0)
    assert (det.runtime, det.precision) == ("onnxruntime", "int8")
    x = torch.from_numpy(np.random.default_rng(1).normal(0, 1, (1, 1, 64, 96)).astype(np.float32))
    a, b = det.runner(x)["heatmap"], ref.runner(x)["heatmap"]
    assert a.shape == b.shape and a.dtype == torch.float32
    assert (a.sigmoid() - b.sigmoid()).abs().max() < 0.1  # an untrained model: loose, but int8 of the same net


def test_missing_or_stale_calibration_is_one_clear_error(checkpoint):
    with pytest.raises(DetectorError, match=r"no calibrated model tiny.int8.onnx .*python -m detector.quantize"):
        Detector.load(checkpoint, device="cpu", precision="int8")
    quantize(checkpoint, _frames(1))
    torch.manual_seed(1)  # other weights under the same name: the calibration no longer belongs to them
    save_checkpoint(checkpoint, create_model("fast"), {"variant": "fast", "stride": 2})
    with pytest.raises(DetectorError, match="calibrated for other weights"):
        load_int8(checkpoint)
    int8_path(checkpoint).write_bytes(b"not onnx")
    with pytest.raises(DetectorError, match="not an ONNX model"):
        load_int8(checkpoint)


def test_shipped_fast_ships_its_int8_model():
    det = Detector.load("fast", device="cpu", precision="int8")
    assert det.precision == "int8" and (WEIGHTS_DIR / "fast.int8.onnx").is_file()
    frame = np.random.default_rng(2).normal(100, 5, (128, 160)).clip(0, 255).astype(np.uint8)
    frame[60:63, 80:83] = 250
    assert len(det.predict(frame)) >= 1


def test_quantize_command_and_eval_option(checkpoint, tmp_path):
    from PIL import Image

    folder = tmp_path / "frames"
    folder.mkdir()
    for i, f in enumerate(_frames()):
        Image.fromarray(f).save(folder / f"{i}.png")
    res = subprocess.run([sys.executable, "-m", "detector.quantize", "--weights", str(checkpoint), "--data", str(folder)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "calibrated on 3 frames" in res.stdout and int8_path(checkpoint).is_file()
    res = subprocess.run([sys.executable, "-m", "detector.quantize", "--weights", str(checkpoint), "--data",
                          str(tmp_path / "nowhere")], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 2 and res.stderr.strip().count("\n") == 0 and "no such file" in res.stderr
    # a mask-folder dataset scored with the int8 model
    (folder / "images").mkdir()
    (folder / "masks").mkdir()
    for i, f in enumerate(_frames()):
        Image.fromarray(f).save(folder / "images" / f"f{i}.png")
        Image.fromarray(((f > 150) * 255).astype(np.uint8)).save(folder / "masks" / f"f{i}.png")
    (folder / "val.txt").write_text("f0\nf1\nf2")
    res = subprocess.run([sys.executable, "-m", "detector", "eval", "--weights", str(checkpoint), "--data", str(folder),
                          "--split", "val", "--precision", "int8"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "(fast, int8)" in res.stdout and "F1=" in res.stdout
