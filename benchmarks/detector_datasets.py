"""Detector accuracy across datasets: each shipped variant on SIRST test, IRSTD-1k test, MDvsFA-test and
halmstad-ir val (every 10th frame), at the threshold each checkpoint chose on val.

    python benchmarks/detector_datasets.py [--variants fast hrnet] [--data $ITD_DATA] [--out runs/datasets]

Prints one JSON line per (variant, dataset) and a table of P / R / F1 and false detections per megapixel;
writes each run's metrics.json and PR curve under --out, and one figure with every PR curve
(`pr_curves.png`). Gates: 3 px for mask targets, max(3 px, half the box diagonal) for box targets.
Datasets that are absent are skipped with a note.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from common import DATA, ROOT, cli, emit, machine, table, write_json

DATASETS = (  # (column name, folder under --data, split)
    ("SIRST test", "sirst", "test"),
    ("IRSTD-1k test", "IRSTD-1k", "test"),
    ("MDvsFA-test", "MDvsFA-test", "test"),
    ("halmstad-ir val", "halmstad-ir", "val"),
)


def plot_all(curves: dict[str, dict[str, list[dict]]], thresholds: dict[str, float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [d for d, _, _ in DATASETS if any(d in c for c in curves.values())]
    fig, axes = plt.subplots(1, len(names), figsize=(3.6 * len(names), 3.6), dpi=100, squeeze=False)
    for ax, name in zip(axes[0], names):
        for variant, by_data in curves.items():
            if name not in by_data:
                continue
            curve = by_data[name]
            line, = ax.plot([c["recall"] for c in curve], [c["precision"] for c in curve], lw=1.5, label=variant)
            op = min(curve, key=lambda c: abs(c["threshold"] - thresholds[variant]))
            ax.plot([op["recall"]], [op["precision"]], "o", color=line.get_color())
        ax.set(title=name, xlabel="recall", xlim=(0, 1.02), ylim=(0, 1.02))
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("precision")
    axes[0][0].legend(loc="lower left", title="dot: operating point")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def previous(path: Path, det) -> dict | None:
    """An earlier run's report for the same weights file and threshold, if there is one."""
    import json

    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    same = report.get("weights") == det.meta["path"] and report.get("threshold") == det.threshold
    return report if same else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", nargs="+", default=["fast", "hrnet"], help="shipped variants or checkpoint paths")
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--out", default="runs/datasets")
    ap.add_argument("--every", type=int, default=10, help="halmstad-ir: every n-th frame")
    ap.add_argument("--reuse", action="store_true",
                    help="take a (variant, dataset) pair's metrics.json from an earlier run into the same --out "
                         "instead of scoring it again (same weights only: the file records them)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    from detector.datasets import open_dataset
    from detector.evaluate import run_eval
    from detector.predict import Detector

    emit({"machine": machine()})
    data, out = Path(args.data), Path(args.out)
    rows, curves, thresholds, results = [], {}, {}, []
    for variant in args.variants:
        det = Detector.load(variant, device="cpu")
        label = Path(variant).stem if Path(variant).suffix else variant
        thresholds[label] = det.threshold
        row = {"variant": label, "threshold": det.threshold}
        for name, folder, split in DATASETS:
            if not (data / folder).is_dir():
                print(f"note: {data / folder} absent, {name} skipped", file=sys.stderr)
                continue
            report = previous(out / f"{label}-{folder}" / "metrics.json", det) if args.reuse else None
            if report is None:
                samples = open_dataset(data / folder, split, args.every, motion=det.takes_motion)
                report = run_eval(det, samples, str(data / folder), split, out / f"{label}-{folder}")
            p = report["point"]
            rec = {"variant": label, "dataset": name, "images": report["images"], "targets": report["targets"],
                   "threshold": det.threshold, **{k: p[k] for k in ("precision", "recall", "f1", "fp_per_mpx")},
                   "pd": report["pd"], "fa_e6": report["fa_e6"]}
            emit(rec)
            results.append(rec)
            curves.setdefault(label, {})[name] = report["pr_curve"]
            row[name] = f"{p['precision']:.3f} / {p['recall']:.3f} / {p['f1']:.3f} / {p['fp_per_mpx']:.2f}"
        rows.append(row)
    print("\nP / R / F1 / false detections per megapixel, at each checkpoint's val threshold")
    print(table(rows, [("variant", "variant"), ("threshold", "thr")] + [(d, d) for d, _, _ in DATASETS]))
    out.mkdir(parents=True, exist_ok=True)
    plot_all(curves, thresholds, out / "pr_curves.png")
    print(f"wrote {out / 'pr_curves.png'}")
    write_json(args.json, results)


if __name__ == "__main__":
    cli(main)
