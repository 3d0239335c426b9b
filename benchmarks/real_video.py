"""Alerts on real infrared video: replays the halmstad-ir val sequences through the pipeline and prints, per
sequence and per class, the share of targets alerted, frames to alert, false `new` per hour, HOTA and IDF1.

    python benchmarks/real_video.py                        # all 53 val sequences, shipped weights
    python benchmarks/real_video.py --limit 10 --set tracker.confirm_hits=4
    python benchmarks/real_video.py --config configs/replay.yaml --json runs/real_video.json
    python benchmarks/real_video.py --false-alerts runs/false_alerts.png   # a picture of every false `new`

Each sequence runs through `pipeline.replay` (the same graph as `python -m pipeline replay`). The detector's
output per frame is kept on disk (`--cache`, one file per sequence and weights file, keyed by the weights'
SHA-256 with the detector's decoding code, and by each frame's content), so tuning the tracker re-runs only ego-motion and tracking.

Acceptance (issue 12): >= 95 % of targets alerted, <= 20 false `new` per hour, median frames to alert <= 10,
mean HOTA >= 0.65.
"""
from __future__ import annotations

import argparse
import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from common import DATA, ROOT, cli, emit, table, write_json

from detector.detections import Detections

HALMSTAD = DATA / "halmstad-ir"
CACHE = ROOT / "runs" / "cache" / "real_video"
CACHE_FLOOR = 0.05  # detections are cached down to this score; the tracker's low_score filters them further
TARGET = {"alert_share": 0.95, "false_new_per_hour": 20.0, "latency_frames_median": 10.0, "HOTA": 0.65}


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def detector_digest(weights: Path) -> str:
    """What the cached detections depend on: the weights and the detector's decoding code (peaks, boxes,
    suppression), so that a change to either recomputes them."""
    import detector

    code = Path(detector.__file__).parent
    h = hashlib.sha256(file_sha256(weights).encode())
    for name in ("inference.py", "predict.py", "detections.py", "motion.py"):
        h.update((code / name).read_bytes())
    return h.hexdigest()[:16]


class CachedDetector:
    """The detections of each frame, read from `path` when seen before (by the frame's content hash), else
    computed by the real detector (loaded on first need) and kept; `save()` writes the new ones back."""

    device, variant = "cpu", "cached"

    def __init__(self, load, path: Path, low_score: float, motion_params: dict | None = None) -> None:
        self.load, self.path, self.low_score = load, path, low_score
        self.motion_params = motion_params  # the camera readers compute the residuals these weights take
        self.real = None
        self.entries: dict[bytes, Detections] = {}
        self.dirty = False
        if path.is_file():
            with np.load(path) as z:
                ends = np.cumsum(z["counts"])
                for key, end, n in zip(z["keys"], ends, z["counts"]):
                    s = slice(end - n, end)
                    self.entries[bytes(key)] = Detections(z["xy"][s], z["ltrb"][s], z["score"][s])

    @staticmethod
    def key(image: np.ndarray, motion: np.ndarray | None = None) -> bytes:
        h = hashlib.blake2b(np.ascontiguousarray(image).tobytes(), digest_size=16)
        if motion is not None:
            h.update(np.ascontiguousarray(motion).tobytes())
        return h.digest()

    def predict_batch(self, frames: list[np.ndarray], timings: dict | None = None,
                      motion: list[np.ndarray | None] | None = None) -> list[Detections]:
        motion = motion if motion is not None else [None] * len(frames)
        keys = [self.key(f, m) for f, m in zip(frames, motion)]
        todo = [i for i, k in enumerate(keys) if k not in self.entries]
        if todo:
            self.real = self.real or self.load()
            for i, d in zip(todo, self.real.predict_batch([frames[i] for i in todo], timings,
                                                          motion=[motion[i] for i in todo])):
                self.entries[keys[i]] = d
            self.dirty = True
        return [(d := self.entries[k])[d.score >= self.low_score] for k in keys]

    def save(self) -> None:
        if not self.dirty:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        dets = list(self.entries.values())
        tmp = self.path.with_suffix(".tmp.npz")
        np.savez(tmp, keys=np.array([np.frombuffer(k, np.uint8) for k in self.entries]),
                 counts=np.array([len(d) for d in dets], np.int64),
                 xy=np.concatenate([d.xy for d in dets]), ltrb=np.concatenate([d.ltrb for d in dets]),
                 score=np.concatenate([d.score for d in dets]))
        tmp.replace(self.path)
        self.dirty = False


COLUMNS = [("sequence", "sequence"), ("class", "class"), ("frames", "frames"), ("targets", "targets"),
           ("targets_alerted", "alerted"), ("latency_frames_median", "frames to alert"),
           ("new_false", "false new"), ("false_new_per_hour", "false/h"), ("HOTA", "HOTA"), ("IDF1", "IDF1")]


def sequence_row(report: dict) -> dict[str, Any]:
    from pipeline.replay import sequence_class

    m = report.get("metrics") or {}
    return {"sequence": report["sequence"], "class": sequence_class(report), "frames": report["frames"],
            **{k: m.get(k) for k, _ in COLUMNS[3:]}, "error": report.get("error")}


def write_false_alerts(png: str, alerts: list[tuple[str, str, int, float, float]], half: int = 32,
                       zoom: int = 3, columns: int = 4) -> None:
    """One tile per false `new` (sequence path, name, frame, x, y): the 2*half px around it, zoomed, a red
    ring where it alerted, green boxes on the labelled targets, the sequence and frame written below."""
    import cv2

    from tracking.sequences import open_sequence

    tiles = []
    for path, name, frame, x, y in alerts:
        seq = open_sequence(path)
        grey = next(img for i, img in seq.frames() if i == frame)
        h, w = grey.shape
        x0, y0 = int(np.clip(round(x) - half, 0, max(0, w - 2 * half))), int(np.clip(round(y) - half, 0, max(0, h - 2 * half)))
        crop = np.zeros((2 * half, 2 * half), grey.dtype)
        part = grey[y0:y0 + 2 * half, x0:x0 + 2 * half]
        crop[:part.shape[0], :part.shape[1]] = part
        tile = cv2.cvtColor(cv2.resize(crop, None, fx=zoom, fy=zoom,
                                       interpolation=cv2.INTER_NEAREST), cv2.COLOR_GRAY2BGR)
        to_tile = lambda px, py: (int(round((px - x0 + 0.5) * zoom)), int(round((py - y0 + 0.5) * zoom)))  # noqa: E731
        cv2.circle(tile, to_tile(x, y), 4 * zoom, (0, 0, 255), 1)
        if seq.gt is not None:
            for j in seq.gt.at(frame):
                (cx, cy), (bw, bh) = seq.gt.xy[j], seq.gt.wh[j]
                cv2.rectangle(tile, to_tile(cx - bw / 2, cy - bh / 2), to_tile(cx + bw / 2, cy + bh / 2), (0, 255, 0), 1)
        label = np.zeros((18, tile.shape[1], 3), np.uint8)
        cv2.putText(label, f"{name} f{frame}", (3, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1)
        tiles.append(np.vstack([tile, label]))
    if not tiles:
        return
    blank = np.zeros_like(tiles[0])
    tiles += [blank] * (-len(tiles) % columns)
    sheet = np.vstack([np.hstack(tiles[i:i + columns]) for i in range(0, len(tiles), columns)])
    Path(png).parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(png, sheet)
    print(f"{len(alerts)} false `new` pictured in {png}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(HALMSTAD), help="halmstad-ir folder (default: $ITD_DATA/halmstad-ir)")
    ap.add_argument("--split", default="val")
    ap.add_argument("--limit", type=int, help="only the first N sequences of the split")
    ap.add_argument("--config", help="pipeline config whose detector / tracker / cameras settings to use")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override (repeatable)")
    ap.add_argument("--weights", help="detector weights (default: the config's, else shipped)")
    ap.add_argument("--cache", default=str(CACHE), help="folder for cached detections ('' : no cache)")
    ap.add_argument("--json", help="write all figures to this JSON file")
    ap.add_argument("--false-alerts", metavar="PNG", help="write a picture of every false `new`: the frame "
                    "around it (red ring) with the labelled targets (green boxes)")
    a = ap.parse_args()
    from detector import Detector
    from detector.checkpoint import read_meta, resolve_weights
    from pipeline.graph import tracker_config
    from pipeline.replay import replay_folder
    from tracking.sequences import SequenceError

    overrides = list(a.set) + ([f"detector.weights={a.weights}"] if a.weights else [])
    if not Path(a.data).is_dir():
        raise SequenceError(f"{a.data}: no such folder (the halmstad-ir data set)")
    cached: list[CachedDetector] = []

    def detector_for(path: Path, config) -> Any:
        d = config.detector
        low = tracker_config(config).low_score
        if low < CACHE_FLOOR and a.cache:
            raise SystemExit(f"error: tracker.low_score {low} is below the cached floor {CACHE_FLOOR}")
        weights = resolve_weights(d.weights)
        digest = detector_digest(weights)
        load = lambda: Detector.load(d.weights, device=d.device, threshold=CACHE_FLOOR if a.cache else low,  # noqa: E731
                                     runtime=d.runtime, precision=d.precision, threads=d.threads)
        if not a.cache:
            return load()
        pre = read_meta(weights).get("preprocessing", {})
        det = CachedDetector(load, Path(a.cache) / f"{weights.stem}-{digest}" / f"{path.stem}.npz", low,
                             pre.get("motion") if int(pre.get("channels", 1)) > 1 else None)
        cached.append(det)
        return det

    rows, false_alerts = [], []

    def on_report(report: dict) -> None:
        for frame, x, y in (report.get("metrics") or {}).get("false_new_at", []):
            false_alerts.append((report["path"], report["sequence"], frame, x, y))
        while cached:
            cached.pop().save()
        row = sequence_row(report)
        rows.append(row)
        emit(row)

    out, code = replay_folder(a.data, a.split, a.config, overrides, progress=False, on_report=on_report,
                              limit=a.limit, detector_for=detector_for)
    print()
    print(table(rows, COLUMNS))
    per_class = [{"class": c, **s} for c, s in out["by_class"].items()] + [{"class": "all", **out["summary"]}]
    print()
    print(table(per_class, [("class", "class"), ("sequences", "sequences"), ("targets", "targets"),
                            ("alert_share", "alerted"), ("latency_frames_median", "median frames to alert"),
                            ("new_false", "false new"), ("false_new_per_hour", "false/h"), ("HOTA", "mean HOTA"),
                            ("IDF1", "mean IDF1")]))
    s = out["summary"]
    checks = {"alert_share": s["alert_share"] >= TARGET["alert_share"],
              "false_new_per_hour": s["false_new_per_hour"] <= TARGET["false_new_per_hour"],
              "latency_frames_median": s["latency_frames_median"] <= TARGET["latency_frames_median"],
              "HOTA": s["HOTA"] >= TARGET["HOTA"]}
    print(f"\nacceptance (alerted >= 95 %, false/h <= 20, median frames to alert <= 10, mean HOTA >= 0.65): "
          f"{'PASS' if all(checks.values()) else 'FAIL'} " + " ".join(f"{k}={'ok' if v else 'no'}" for k, v in checks.items()))
    emit({"summary": s, "by_class": out["by_class"], "pass": all(checks.values())})
    if a.false_alerts:
        write_false_alerts(a.false_alerts, false_alerts)
    write_json(a.json, {"summary": s, "by_class": out["by_class"], "sequences": rows, "pass": all(checks.values()),
                        "overrides": overrides})
    if code:
        raise SystemExit(1)


if __name__ == "__main__":
    cli(main)
