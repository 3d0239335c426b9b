"""`python -m detector eval`: score a checkpoint on a split; JSON report and a precision-recall PNG."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from .datasets import Sample
from .imageio import NOISE_FLOOR
from .inference import run
from .metrics import ImageResult, evaluate, pr_curve

LOW_THRESHOLD = 0.05  # keep every plausible peak; thresholds are applied afterwards


def collect(model: nn.Module | Callable, samples: list[Sample], stride: int, multiple: int, device: torch.device,
            batch: int = 1, noise_floor: float = NOISE_FLOOR, suppress_from: float = 0.5,
            progress: bool = False, channels: int | None = None) -> list[ImageResult]:
    """Predictions (all peaks above LOW_THRESHOLD) paired with the truth, per image; peaks inside the box of a
    stronger one scoring `suppress_from` or more are dropped, as `Detector` does at its operating threshold.
    `progress`: a bar on stderr when it is a terminal. `channels`: the model's input channels (default: read
    from a module's first convolution); a motion model gets each sample's motion residual."""
    from tqdm import tqdm

    if isinstance(model, nn.Module):
        model.eval()
    if channels is None:
        channels = input_channels(model) if isinstance(model, nn.Module) else 1
    out = []
    for i in tqdm(range(0, len(samples), batch), "eval", unit="batch", leave=False, disable=None if progress else True):
        chunk = samples[i:i + batch]
        dets = run(model, [s.image for s in chunk], stride, multiple, LOW_THRESHOLD, device, noise_floor=noise_floor,
                   suppress_from=suppress_from, channels=channels,
                   motion=[s.motion for s in chunk])
        for s, d in zip(chunk, dets):
            out.append(ImageResult(d.xy.astype(float), d.score, d.xyxy, s.centroids, s.boxes, s.image.shape, s.gates))
    return out


def input_channels(model: nn.Module) -> int:
    """How many input channels a model takes (its first convolution's)."""
    return next(m for m in model.modules() if isinstance(m, nn.Conv2d)).in_channels


def plot_pr(curve: list[dict], threshold: float, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r = [c["recall"] for c in curve]
    p = [c["precision"] for c in curve]
    op = min(curve, key=lambda c: abs(c["threshold"] - threshold))
    fig, ax = plt.subplots(figsize=(5, 4), dpi=100)
    ax.plot(r, p, "-", lw=1.5)
    ax.plot([op["recall"]], [op["precision"]], "o", label=f"operating threshold {threshold:.2f}")
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1.02), ylim=(0, 1.02), title=title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def format_report(report: dict) -> str:
    p = report["point"]
    lines = [
        f"{report['weights']} ({report['variant']}, {report.get('precision', 'fp32')}) on {report['data']} "
        f"split={report['split']} "
        f"threshold={report['threshold']:.2f} (chosen on val)",
        f"  point: P={p['precision']:.3f} R={p['recall']:.3f} F1={p['f1']:.3f} "
        f"(TP {p['tp']}, FP {p['fp']}, FN {p['fn']}; {p['fp_per_mpx']:.2f} false per megapixel)",
        f"  Pd={report['pd']:.3f}  Fa={report['fa_e6']:.2f}e-6  box AP50={report['ap50']:.3f}",
        "  recall by size: " + ", ".join(
            f"{k} {v['recall']:.2f} ({v['targets']})" for k, v in report["by_size"].items() if v["targets"]),
    ]
    return "\n".join(lines)


def run_eval(detector, samples: list[Sample], data: str, split: str, out: Path | None) -> dict:
    # the detector's runner: what `predict` and the pipeline run (ONNX Runtime fp32 or int8 on a CPU)
    images = collect(detector.runner, samples, detector.stride, detector.multiple, detector.device,
                     noise_floor=detector.noise_floor, suppress_from=detector.threshold, progress=True,
                     channels=detector.channels)
    report = {"weights": detector.meta["path"], "variant": detector.variant, "runtime": detector.runtime,
              "precision": detector.precision, "data": data, "split": split,
              **evaluate(images, detector.threshold)}
    report["pr_curve"] = pr_curve(images)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps(report, indent=2, default=_json))
        plot_pr(report["pr_curve"], detector.threshold, out / "pr_curve.png",
                f"{detector.variant} on {Path(data).name} {split}")
    return report


def _json(o):  # numpy scalars in the report
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    raise TypeError(type(o))
