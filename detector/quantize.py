"""int8 on the CPU: ONNX Runtime static quantization (QDQ, per-channel weights) calibrated on training frames.

    python -m detector.quantize --weights fast --data ../shared/data/sirst --data ../shared/data/halmstad-ir

writes `<weights>.int8.onnx` next to the checkpoint (`detector/weights/fast.int8.onnx` for the shipped
`fast`, which ships with it). The file records the SHA-256 of the checkpoint it was calibrated for;
`precision: int8` loads it and refuses one made for other weights, so nothing is calibrated at run time
and no dataset is needed to run. Calibration is deterministic: the same frames in the same order, min/max
ranges (moving average over frames, so that one extreme frame does not coarsen every other frame's steps).
Only convolutions are quantized; the first block (full-resolution input: tiny targets are a few grey levels)
and the detection head stay in fp32 (`FP32_NODES`): 67 % of the multiply-adds run in int8. Chosen on the
val splits of SIRST and halmstad-ir (F1 of fp32 vs int8; quantizing the first block or the decoder's
additions too cost 0.01-0.2 F1).
"""
from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

import numpy as np

from .errors import DetectorError

if TYPE_CHECKING:
    import onnx

SUFFIX = ".int8.onnx"
FP32_NODES = ("/enc2/", "/head/")  # ONNX node names containing these stay in fp32
HASH_KEY = "itd.weights_sha256"
CALIBRATION_KEY = "itd.calibration"


def int8_path(weights: Path) -> Path:
    """Where the int8 model of a checkpoint lives: beside it, `<name>.int8.onnx`."""
    return weights.with_name(weights.stem + SUFFIX)


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_int8(weights: Path) -> bytes:
    """The int8 ONNX model calibrated for the checkpoint at `weights`; `DetectorError` if absent or stale."""
    import onnx

    path = int8_path(Path(weights))
    fix = f"calibrate it: python -m detector.quantize --weights {weights} --data <training frames>"
    if not path.is_file():
        raise DetectorError(f"precision int8: no calibrated model {path.name} beside {weights}; {fix}")
    data = path.read_bytes()
    try:
        props = {p.key: p.value for p in onnx.load_from_string(data).metadata_props}
    except Exception as e:  # noqa: BLE001 - a damaged or foreign file is the user's input problem
        raise DetectorError(f"{path}: not an ONNX model ({type(e).__name__})") from None
    if props.get(HASH_KEY) != sha256(Path(weights)):
        raise DetectorError(f"{path}: calibrated for other weights than {weights}; {fix}")
    return data


Calibration = list  # of grey frames, or of (frame, motion residual or None) pairs for a motion model


class _Frames:
    """ONNX Runtime's calibration reader: one model input (normalised, padded) per run."""

    def __init__(self, frames: Calibration, multiple: int, noise_floor: float, channels: int = 1) -> None:
        self.frames, self.multiple, self.noise_floor, self.channels = frames, multiple, noise_floor, channels
        self.i = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        from .inference import to_batch

        if self.i >= len(self.frames):
            return None
        item = self.frames[self.i]
        image, motion = item if isinstance(item, tuple) else (item, None)
        batch, _ = to_batch([image], self.multiple, self.noise_floor, [motion], self.channels)
        self.i += 1
        return {"image": batch.numpy()}

    def rewind(self) -> None:
        self.i = 0


def quantize_model(model, meta: dict, frames: list[np.ndarray], fp32_nodes: tuple[str, ...] = FP32_NODES,
                   op_types: tuple[str, ...] = ("Conv",), moving_average: bool = True) -> "onnx.ModelProto":
    """The int8 QDQ model of `model` (a checkpoint's module and meta) calibrated on `frames`; ONNX nodes whose
    names contain one of `fp32_nodes` stay in fp32."""
    import logging

    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    from .imageio import checkpoint_noise_floor
    from .runtime import export_onnx

    if not frames:
        raise DetectorError("no calibration frames")
    fp32 = onnx.load_from_string(export_onnx(model))
    exclude = [n.name for n in fp32.graph.node if any(s in n.name for s in fp32_nodes)]
    pre = meta.get("preprocessing", {})
    reader = _Frames(frames, int(pre.get("pad_multiple", 32)), checkpoint_noise_floor(meta), int(pre.get("channels", 1)))
    root = logging.getLogger()
    level, root.level = root.level, logging.ERROR  # ONNX Runtime's advice to pre-process (shape inference)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "int8.onnx"
            quantize_static(fp32, out, reader, quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, nodes_to_exclude=exclude,
                            op_types_to_quantize=list(op_types),
                            calibrate_method=CalibrationMethod.MinMax,
                            extra_options={"ActivationSymmetric": False, "WeightSymmetric": True,
                                           "CalibMovingAverage": moving_average})
            return onnx.load(out)
    finally:
        root.level = level


def quantize(weights: str | Path | None, frames: list[np.ndarray], note: str = "") -> Path:
    """Calibrate on `frames` (grey, any sizes), write `<weights>.int8.onnx` and return its path."""
    import onnx

    from .checkpoint import load_checkpoint, resolve_weights

    path = resolve_weights(weights)
    model, meta = load_checkpoint(path)
    q = quantize_model(model, meta, frames)
    onnx.helper.set_model_props(q, {HASH_KEY: sha256(path), CALIBRATION_KEY: f"{len(frames)} frames {note}".strip()})
    target = int8_path(path)
    tmp_target = target.with_name(target.name + ".tmp")
    tmp_target.write_bytes(q.SerializeToString())
    tmp_target.replace(target)
    return target


def calibration_frames(paths: Iterable[str | Path], every: int, limit: int | None, motion: bool = False
                       ) -> Calibration:
    """Training frames: the `train` split of each dataset (video datasets: every `every`-th frame), or the
    images of a plain folder; at most `limit` per source, evenly spaced, in a fixed order. `motion`: (frame,
    motion residual) pairs (video frames carry theirs; still images None)."""
    from .datasets import open_dataset
    from .imageio import IMAGE_SUFFIXES, load_grey

    frames: list[np.ndarray] = []
    for p in map(Path, paths):
        try:
            images = [(s.image, s.motion) if motion else s.image for s in open_dataset(p, "train", every, motion)]
        except DetectorError:
            if not p.is_dir():
                raise
            images = [(load_grey(f), None) if motion else load_grey(f)
                      for f in sorted(p.iterdir()) if f.suffix.lower() in IMAGE_SUFFIXES]
            if not images:
                raise DetectorError(f"{p}: neither a dataset with a train split nor a folder of images") from None
        if limit and len(images) > limit:
            images = [images[i] for i in np.linspace(0, len(images) - 1, limit).round().astype(int)]
        frames += images
    return frames


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m detector.quantize", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default=None, help="checkpoint, or a shipped variant name (default: fast)")
    ap.add_argument("--data", action="append", required=True,
                    help="training frames: a dataset (its train split) or a folder of images; repeatable")
    ap.add_argument("--every", type=int, default=150, help="video datasets: every n-th frame (default 150)")
    ap.add_argument("--limit", type=int, default=300, help="at most this many frames per --data (default 300)")
    args = ap.parse_args(argv)
    try:
        from .checkpoint import read_meta

        takes_motion = int(read_meta(args.weights).get("preprocessing", {}).get("channels", 1)) > 1
        frames = calibration_frames(args.data, args.every, args.limit, takes_motion)
        names = ", ".join(Path(d).name for d in args.data)
        path = quantize(args.weights, frames, f"(train: {names})")
    except DetectorError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"calibrated on {len(frames)} frames -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
