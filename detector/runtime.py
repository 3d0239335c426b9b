"""Runtimes that execute a trained model for inference: ONNX Runtime on a CPU, torch on a GPU (or anywhere).

A runner is a callable: (B, 1, H, W) float32 batch -> the model's outputs (`heatmap` logits, `ltrb`,
`offset`) as float32 torch tensors on the runner's device. `int8` runs the checkpoint's calibrated int8 ONNX
model (`detector.quantize`) in ONNX Runtime on the CPU. What each choice won on this project's machines
is measured by `benchmarks/model_speed.py` (README, "Performance").
"""
from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from .errors import DetectorError

RUNTIMES = ("auto", "onnxruntime", "torch")
PRECISIONS = ("auto", "fp32", "fp16", "bf16", "int8")
OUTPUTS = ("heatmap", "ltrb", "offset")
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}

Runner = Callable[[torch.Tensor], dict[str, torch.Tensor]]


def resolve(runtime: str, precision: str, device: torch.device) -> tuple[str, str]:
    """'auto' -> ONNX Runtime in fp32 on a CPU, torch in fp16 on CUDA; refuses combinations that cannot run.

    (`make_runner` still falls back from an 'auto' ONNX Runtime to torch for a model that does not export.)"""
    if runtime not in RUNTIMES:
        raise DetectorError(f"unknown runtime {runtime!r}; choose one of {', '.join(RUNTIMES)}")
    if precision not in PRECISIONS:
        raise DetectorError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if precision == "int8" and device.type != "cpu":
        raise DetectorError("precision int8 runs on the CPU (ONNX Runtime); use fp16 or bf16 on CUDA")
    if runtime == "auto":  # ONNX Runtime where it applies: a CPU, in fp32 or int8
        cpu_ort = device.type == "cpu" and precision in ("auto", "fp32", "int8")
        runtime = "onnxruntime" if cpu_ort else "torch"
    if precision == "auto":
        precision = "fp16" if device.type == "cuda" else "fp32"
    if runtime == "onnxruntime":
        if device.type != "cpu":
            raise DetectorError("runtime onnxruntime runs on the CPU here; use runtime torch on CUDA")
        if precision not in ("fp32", "int8"):
            raise DetectorError("runtime onnxruntime runs in fp32 or int8; use runtime torch for fp16/bf16")
    if precision == "int8" and runtime != "onnxruntime":
        raise DetectorError("precision int8 runs in runtime onnxruntime on the CPU")
    if precision == "fp16" and device.type != "cuda":
        raise DetectorError("precision fp16 needs a CUDA device; use fp32 or bf16 on a CPU")
    return runtime, precision


def make_runner(model: nn.Module, device: torch.device, runtime: str = "auto", precision: str = "auto",
                threads: int | None = None, weights: str | None = None) -> tuple[Runner, str, str]:
    """The fastest way to run `model` here, with the runtime and precision it resolved to; int8 loads the
    model calibrated for the checkpoint file `weights` (`detector.quantize`)."""
    asked = runtime
    runtime, precision = resolve(runtime, precision, device)
    if precision == "int8":
        from .quantize import load_int8

        if weights is None:
            raise DetectorError("precision int8 needs the checkpoint file its calibrated model belongs to")
        return OnnxRunner(load_int8(Path(weights)), threads), runtime, precision
    if runtime == "onnxruntime":
        try:
            return OnnxRunner(model, threads), runtime, precision
        except Exception as e:  # noqa: BLE001 - export failures come in many types
            if asked != "auto":  # e.g. hrnet: its adaptive pooling has no ONNX form for every frame size
                raise DetectorError(f"this model does not run in onnxruntime ({type(e).__name__}); "
                                    "use runtime torch") from None
            runtime = "torch"
    if threads:
        torch.set_num_threads(threads)
    return TorchRunner(model, device, precision), runtime, precision


class TorchRunner:
    """Eager torch with BatchNorm folded into the convolutions, channels-last, in fp32, fp16 or bf16."""

    def __init__(self, model: nn.Module, device: torch.device, precision: str = "fp32") -> None:
        self.device, self.dtype = device, DTYPES[precision]
        self.model = fold_batchnorm(model).to(device=device, dtype=self.dtype,
                                               memory_format=torch.channels_last).eval()

    def __call__(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        x = batch.to(self.device, self.dtype, non_blocking=True).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            out = self.model(x)
        return {k: out[k].float().contiguous() for k in OUTPUTS}


class OnnxRunner:
    """The model exported to ONNX in memory (BatchNorm folded, ReLU fused by the runtime), or ONNX bytes
    (the int8 model), run by ONNX Runtime on the CPU; `threads` intra-op threads (None: one per core)."""

    def __init__(self, model: nn.Module | bytes, threads: int | None = None) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = threads or 0  # 0: ONNX Runtime's default, one per physical core
        opts.inter_op_num_threads = 1
        # no busy-waiting between operators and runs: the pipeline's other threads need those cycles
        # (pipeline 39 vs 30 frames/s with spinning on this 2-core machine)
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        onnx_bytes = model if isinstance(model, bytes) else export_onnx(model)
        self.session = ort.InferenceSession(onnx_bytes, opts, providers=["CPUExecutionProvider"])

    def __call__(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        outs = self.session.run(list(OUTPUTS), {"image": batch.detach().cpu().float().numpy()})
        return {k: torch.from_numpy(v) for k, v in zip(OUTPUTS, outs)}


class _Outputs(nn.Module):
    """The model with its output dict as a tuple, in `OUTPUTS` order (what the ONNX exporter takes)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(x)
        return tuple(out[k] for k in OUTPUTS)


def export_onnx(model: nn.Module) -> bytes:
    """ONNX bytes of `model` (any batch size and frame size)."""
    buf = io.BytesIO()
    wrapped = _Outputs(fold_batchnorm(model).cpu().float().eval())
    chans = next(m for m in model.modules() if isinstance(m, nn.Conv2d)).in_channels
    with warnings.catch_warnings(), torch.no_grad():
        # torch's TorchScript-based exporter: deprecated upstream, but it needs no extra package and
        # handles these models fully; torch is pinned (pyproject.toml), so it stays available.
        warnings.simplefilter("ignore")
        torch.onnx.export(wrapped, torch.zeros(1, chans, 64, 64), buf, input_names=["image"], output_names=list(OUTPUTS),
                          opset_version=17, dynamo=False,
                          dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"},
                                        **{k: {0: "batch", 2: "rows", 3: "cols"} for k in OUTPUTS}})
    return buf.getvalue()


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A copy of `model` (eval mode) where every Conv2d directly followed by a BatchNorm2d in the same
    `nn.Sequential` absorbs it; the outputs are unchanged up to rounding."""
    import copy

    from torch.nn.utils.fusion import fuse_conv_bn_eval

    model = copy.deepcopy(model).eval()
    for seq in [m for m in model.modules() if isinstance(m, nn.Sequential)]:
        names = list(seq._modules)
        for a, b in zip(names, names[1:]):
            conv, bn = seq._modules[a], seq._modules[b]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                seq._modules[a] = fuse_conv_bn_eval(conv, bn)
                seq._modules[b] = nn.Identity()
    return model
