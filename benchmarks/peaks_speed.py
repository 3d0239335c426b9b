"""Peak extraction: torch vs NumPy on the CPU, and (on a GPU) the CuPy kernel vs torch on the device.

    python benchmarks/peaks_speed.py [--device auto|cpu|cuda] [--threshold 0.1] [--targets 20] [--rounds 200]
                                     [--json out.json]

Heatmaps are those of 640x512 and 1280x1024 frames at the detectors' stride 2 (320x256 and 640x512 cells):
a smooth low background (as the trained models produce) with `targets` Gaussian peaks, plus a flat
saturated patch (ties). Each path returns the same peaks (checked here); times are medians of round-robin
rounds, each call ending with the peaks on the host. One JSON line per case, then a table.
"""
from __future__ import annotations

import argparse
from typing import Any

import common  # noqa: F401  (puts the repository on sys.path)
import numpy as np
import torch
from common import cli, emit, interleaved, machine, median_ms, table, write_json

from detector.peaks import extract_peaks, extract_peaks_cupy, extract_peaks_numpy
from detector.predict import pick_device

FRAMES = ((640, 512), (1280, 1024))
STRIDE = 2


def heatmap(w: int, h: int, targets: int, seed: int = 0) -> np.ndarray:
    """(1, 1, h, w) float32 probabilities shaped like a model's output on a quiet infrared frame."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    heat = 0.02 + 0.03 * rng.random((h, w), dtype=np.float32)
    for _ in range(targets):
        cy, cx, s = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(0.7, 2.0)
        heat = np.maximum(heat, rng.uniform(0.15, 0.99) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s * s)))
    heat[10:13, 10:13] = 0.9  # a plateau: ties resolved the same way by every path
    return heat[None, None].astype(np.float32)


def same(a: list[tuple[np.ndarray, np.ndarray]], b: list[tuple[np.ndarray, np.ndarray]]) -> bool:
    """Same set of (cell, score) peaks per image (order among equal scores may differ)."""
    def key(cells: np.ndarray, scores: np.ndarray) -> set:
        return {(int(r), int(c), round(float(s), 6)) for (r, c), s in zip(cells, scores)}
    return all(key(*x) == key(*y) for x, y in zip(a, b))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                    help="the CPU paths always; auto: the GPU paths too where CUDA is; cuda: insist on CUDA and CuPy")
    ap.add_argument("--threshold", type=float, default=0.1, help="the tracker's low_score, what the pipeline uses")
    ap.add_argument("--targets", type=int, default=20)
    ap.add_argument("--top-k", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    cuda = pick_device(args.device).type == "cuda"  # --device cuda without CUDA: one `error:` line
    try:
        import cupy  # noqa: F401
        have_cupy = cuda
    except ImportError:
        if args.device == "cuda":
            raise SystemExit("error: --device cuda measures the CuPy kernel, but CuPy is not installed "
                             "(pip install '.[gpu]'; cupy-cuda13x on CUDA 13)") from None
        have_cupy = False
    info = machine()
    emit({"machine": info})
    thr, k = args.threshold, args.top_k
    rows: list[dict[str, Any]] = []
    for fw, fh in FRAMES:
        heat = heatmap(fw // STRIDE, fh // STRIDE, args.targets)
        cpu = torch.from_numpy(heat)
        reference = extract_peaks(cpu, thr, k)
        cases: dict[tuple[str, str], Any] = {
            ("cpu", "torch"): lambda: extract_peaks(cpu, thr, k),
            ("cpu", "numpy"): lambda: extract_peaks_numpy(heat, thr, k),
        }
        if cuda:
            dev = cpu.cuda()
            cases[("cuda", "torch")] = lambda: extract_peaks(dev, thr, k)
            if have_cupy:
                cases[("cuda", "cupy")] = lambda: extract_peaks_cupy(dev, thr, k)
        agree = {name: same(fn(), reference) for name, fn in cases.items()}
        times = interleaved(cases, args.rounds, warmup=5)
        base = {d: median_ms(times[(d, "torch")]) for d in ("cpu", "cuda") if (d, "torch") in times}
        for (device, path), t in times.items():
            ms = median_ms(t)
            row = {"frame": f"{fw}x{fh}", "heatmap": f"{fw // STRIDE}x{fh // STRIDE}", "device": device,
                   "path": path, "ms": round(ms, 4), "speedup_vs_torch": round(base[device] / ms, 2),
                   "peaks": len(reference[0][1]), "same_peaks": agree[(device, path)]}
            emit(row)
            rows.append(row)
    print()
    print(f"{info['cpu']}, {info['cores']} cores, GPU: {info['gpu'] or 'none'}; threshold {thr}; "
          f"median of {args.rounds} round-robin rounds")
    print(table(rows, [("frame", "frame"), ("heatmap", "heatmap"), ("device", "device"), ("path", "path"),
                       ("ms", "ms"), ("speedup_vs_torch", "x torch"), ("peaks", "peaks"), ("same_peaks", "same")]))
    if not cuda:
        print("no CUDA device here: the CuPy kernel and torch-on-GPU figures are not measured")
    write_json(args.json, {"machine": info, "results": rows})


if __name__ == "__main__":
    cli(main)
