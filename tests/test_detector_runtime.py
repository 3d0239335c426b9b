"""Inference runtimes: ONNX Runtime and torch (BatchNorm folded, channels-last, fp32/bf16/fp16) give the
trained model's outputs; bad choices are one-line errors."""
import numpy as np
import pytest
import torch

from detector import Detector, DetectorError
from detector.models import create_model
from detector.runtime import OnnxRunner, TorchRunner, fold_batchnorm, make_runner, resolve

CPU = torch.device("cpu")


def _model(variant: str) -> torch.nn.Module:
    torch.manual_seed(0)
    model = create_model(variant)
    with torch.no_grad():  # non-trivial BatchNorm statistics, so that folding them is actually tested
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
    return model.eval()


def _reference(model, x):
    with torch.no_grad():
        return model(x)


@pytest.mark.parametrize("variant", ["fast", "hrnet"])
def test_onnxruntime_and_torch_runners_match_the_model(variant):
    model = _model(variant)
    x = torch.randn(2, 1, 96, 160)
    ref = _reference(model, x)
    for runner in (OnnxRunner(model, threads=1), TorchRunner(model, CPU, "fp32")):
        out = runner(x)
        for k in ("heatmap", "ltrb", "offset"):
            assert out[k].dtype == torch.float32 and out[k].shape == ref[k].shape
            assert torch.allclose(out[k], ref[k], atol=2e-4, rtol=1e-4), (type(runner).__name__, k)
    # the ONNX graph takes any frame size and batch
    assert OnnxRunner(model, threads=1)(torch.randn(1, 1, 64, 320))["heatmap"].shape == (1, 1, 32, 160)


def test_fold_batchnorm_keeps_outputs_and_leaves_the_model_alone():
    model = _model("fast")
    folded = fold_batchnorm(model)
    x = torch.randn(1, 1, 64, 64)
    assert torch.allclose(_reference(folded, x)["heatmap"], _reference(model, x)["heatmap"], atol=1e-4)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())


def test_bf16_on_the_cpu_is_close():
    model = _model("fast")
    x = torch.randn(1, 1, 64, 96)
    out = TorchRunner(model, CPU, "bf16")(x)
    ref = torch.sigmoid(_reference(model, x)["heatmap"])
    assert out["heatmap"].dtype == torch.float32
    assert (torch.sigmoid(out["heatmap"]) - ref).abs().max() < 0.05


def test_auto_choices_and_refusals():
    assert resolve("auto", "auto", CPU) == ("onnxruntime", "fp32")
    assert resolve("torch", "auto", CPU) == ("torch", "fp32")
    assert resolve("auto", "auto", torch.device("cuda")) == ("torch", "fp16")
    assert resolve("auto", "bf16", CPU) == ("torch", "bf16")  # asking for bf16 picks the runtime that has it
    for runtime in ("torch", "auto"):
        with pytest.raises(DetectorError, match="fp16 needs a CUDA device"):
            resolve(runtime, "fp16", CPU)
    with pytest.raises(DetectorError, match="unknown runtime 'tensorrt'"):
        resolve("tensorrt", "auto", CPU)
    with pytest.raises(DetectorError, match="onnxruntime runs in fp32"):
        resolve("onnxruntime", "bf16", CPU)
    assert make_runner(_model("fast"), CPU)[1:] == ("onnxruntime", "fp32")


def test_detector_predicts_the_same_with_either_runtime():
    frame = np.random.default_rng(1).normal(100, 5, (120, 200)).clip(0, 255).astype(np.uint8)
    frame[60:63, 100:103] = 250
    a = Detector.load("fast", device="cpu", runtime="onnxruntime", threshold=0.05)
    b = Detector.load("fast", device="cpu", runtime="torch", threshold=0.05)
    assert a.runtime == "onnxruntime" and b.runtime == "torch"
    da, db = a.predict(frame), b.predict(frame)
    assert len(da) == len(db) > 0
    assert np.allclose(da.xy, db.xy, atol=1e-3) and np.allclose(da.score, db.score, atol=1e-4)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (half-precision inference on the GPU)")
@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_half_precision_on_the_gpu_matches_fp32(precision):
    model = _model("fast")
    x = torch.randn(4, 1, 256, 320)
    ref = torch.sigmoid(_reference(model, x)["heatmap"])
    out = TorchRunner(model, torch.device("cuda"), precision)(x)
    assert out["heatmap"].device.type == "cuda" and out["heatmap"].dtype == torch.float32
    assert (torch.sigmoid(out["heatmap"]).cpu() - ref).abs().max() < 0.02
