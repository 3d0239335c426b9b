"""Model-only throughput of each variant and runtime, at 256x256 and 640x512, batch 1 and batched.

    python benchmarks/model_speed.py [--device auto|cpu|cuda] [--batch N] [--budget 40] [--json out.json]

"Model-only" is the forward pass on a frame already normalised in memory: what `detector.runtime` runs
(no decoding, no peak extraction). On a CPU it compares torch (BatchNorm folded, channels-last) with ONNX
Runtime in fp32 and, for a variant with a calibrated int8 model beside its weights, in int8; on CUDA, torch in fp32, fp16 and bf16, and reports how many 25 fps cameras one GPU sustains.
Every case of one (size, batch) is timed round-robin in one run. One JSON line per case, then a table.
"""
from __future__ import annotations

import argparse
from typing import Any

import common  # noqa: F401  (puts the repository on sys.path)
import torch
from common import cli, emit, interleaved, machine, median_ms, table, write_json

from detector.checkpoint import load_checkpoint, resolve_weights
from detector.complexity import count_macs, count_params
from detector.predict import pick_device
from detector.quantize import int8_path
from detector.runtime import make_runner

SIZES = ((256, 256), (640, 512))


def configurations(device: torch.device) -> list[tuple[str, str]]:
    """(runtime, precision) pairs worth comparing on this device."""
    if device.type == "cuda":
        return [("torch", "fp32"), ("torch", "fp16"), ("torch", "bf16")]
    return [("torch", "fp32"), ("onnxruntime", "fp32"), ("onnxruntime", "int8")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--variants", nargs="+", default=["fast", "hrnet"])
    ap.add_argument("--batch", type=int, default=None, help="the batched size (default: 4 on a CPU, 32 on CUDA)")
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--budget", type=float, default=40.0, help="seconds per (size, batch) group, >= 3 rounds")
    ap.add_argument("--json", default=None, help="also write all results here")
    args = ap.parse_args()
    device = pick_device(args.device)
    batched = args.batch or (32 if device.type == "cuda" else 4)
    info = machine()
    emit({"machine": info})

    models = {v: load_checkpoint(v)[0] for v in args.variants}
    runners: dict[tuple[str, str, str], Any] = {}
    for v, model in models.items():
        weights = resolve_weights(v)
        for runtime, precision in configurations(device):
            if precision == "int8" and not int8_path(weights).is_file():
                continue  # no calibrated int8 model for this variant (`python -m detector.quantize`)
            runners[(v, runtime, precision)] = make_runner(model, device, runtime, precision, weights=str(weights))[0]

    rows: list[dict[str, Any]] = []
    for w, h in SIZES:
        macs = {v: count_macs(m, (1, 1, h, w)) / 1e9 for v, m in models.items()}
        for batch in (1, batched):
            x = torch.randn(batch, 1, h, w)

            def case(runner: Any) -> Any:
                def fn() -> None:
                    runner(x)
                    if device.type == "cuda":
                        torch.cuda.synchronize(device)
                return fn

            times = interleaved({k: case(r) for k, r in runners.items()}, args.rounds, budget_s=args.budget)
            for (v, runtime, precision), t in times.items():
                ms = median_ms(t)
                row = {"variant": v, "runtime": runtime, "precision": precision, "device": device.type,
                       "size": f"{w}x{h}", "batch": batch, "ms_per_batch": round(ms, 2),
                       "fps": round(1000 * batch / ms, 1), "params": count_params(models[v]),
                       "gmacs_per_frame": round(macs[v], 3), "rounds": len(t)}
                if device.type == "cuda":
                    row["cameras_at_25fps"] = int(row["fps"] // 25)
                emit(row)
                rows.append(row)

    cols = [("variant", "variant"), ("runtime", "runtime"), ("precision", "prec"), ("size", "size"),
            ("batch", "batch"), ("ms_per_batch", "ms/batch"), ("fps", "frames/s"), ("params", "params"),
            ("gmacs_per_frame", "GMACs")]
    if device.type == "cuda":
        cols.append(("cameras_at_25fps", "cams@25"))
    print()
    print(f"{info['cpu']}, {info['cores']} cores, GPU: {info['gpu'] or 'none'}; median of round-robin rounds")
    print(table(rows, cols))
    write_json(args.json, {"machine": info, "results": rows})


if __name__ == "__main__":
    cli(main)
