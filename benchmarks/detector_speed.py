"""Detector variants compared in one run: latency at 640x512 on this machine, and test-split accuracy.

    python benchmarks/detector_speed.py [--size 640x512] [--repeats 20] [--threads N] [--data $ITD_DATA/sirst]

Speed is reported as the ratio hrnet / fast, timed interleaved in one process (the machines are shared and
noisy: compare ratios, not absolute times). Accuracy uses each variant's shipped weights and val-chosen
threshold on the `test` split (skipped, with a note, when the data folder is absent).
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from common import DATA
from detector import Detector
from detector.complexity import count_macs, count_params

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = DATA / "sirst"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="640x512")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--json", default=None, help="also write the figures here")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    w, h = map(int, args.size.lower().split("x"))
    frame = (np.random.default_rng(0).normal(100, 10, (h, w))).clip(0, 255).astype(np.uint8)
    dets = {v: Detector.load(v, device="cpu") for v in ("hrnet", "fast")}
    times: dict[str, list[float]] = {v: [] for v in dets}
    for det in dets.values():  # warm-up
        det.predict(frame)
    for _ in range(args.repeats):  # interleaved, so both see the same machine load
        for v, det in dets.items():
            t0 = time.perf_counter()
            det.predict(frame)
            times[v].append(time.perf_counter() - t0)
    result = {"size": args.size, "threads": torch.get_num_threads(), "repeats": args.repeats}
    for v, det in dets.items():
        result[v] = {"median_ms": 1000 * statistics.median(times[v]), "params": count_params(det.model),
                     "gmacs": count_macs(det.model, (1, 1, h, w)) / 1e9}
    result["speedup_fast_vs_hrnet"] = result["hrnet"]["median_ms"] / result["fast"]["median_ms"]

    if Path(args.data).is_dir():
        from detector.datasets import open_dataset
        from detector.evaluate import collect
        from detector.metrics import evaluate

        samples = open_dataset(args.data, "test")
        for v, det in dets.items():
            rep = evaluate(collect(det.model, samples, det.stride, det.multiple, det.device), det.threshold)
            result[v].update({"test_f1": rep["point"]["f1"], "test_precision": rep["point"]["precision"],
                              "test_recall": rep["point"]["recall"], "threshold": det.threshold})
        result["f1_gap_hrnet_minus_fast"] = result["hrnet"]["test_f1"] - result["fast"]["test_f1"]
    else:
        print(f"note: {args.data} not found; accuracy skipped")

    print(f"{'variant':8} {'params':>9} {'GMACs':>7} {'ms/frame':>9} {'test F1':>8}")
    for v in ("hrnet", "fast"):
        r = result[v]
        print(f"{v:8} {r['params']:>9,} {r['gmacs']:>7.2f} {r['median_ms']:>9.1f} {r.get('test_f1', float('nan')):>8.3f}")
    print(f"fast is {result['speedup_fast_vs_hrnet']:.1f}x faster than hrnet at {args.size} "
          f"({result['threads']} threads, median of {args.repeats}, interleaved)")
    if "f1_gap_hrnet_minus_fast" in result:
        print(f"test F1 gap hrnet - fast: {result['f1_gap_hrnet_minus_fast']:+.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
