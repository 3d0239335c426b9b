"""`replay`: run a recording through the live graph losslessly, then score it against its ground truth."""
from __future__ import annotations

import hashlib
import json
import math
import time
from pathlib import Path
from typing import Any

from pipeline.alerts import Alert, comparable
from pipeline.config import ConfigError, PipelineConfig, SequenceSource, load_config
from pipeline.frames import TrackedFrame
from pipeline.graph import Pipeline
from pipeline.sinks.base import Sink
from tracking.tracks import Tracks

BUILTIN = {"cameras": {"replay": {"source": {"type": "sequence", "path": "."}}}, "metrics": {"port": None}}


class RecordingSink(Sink):
    """Keeps the run's alerts and per-frame track positions, and drives an optional progress bar."""

    name = "recording"

    def __init__(self, progress=None) -> None:
        super().__init__(None)
        self.alerts: list[Alert] = []
        self.rows: list[tuple[int, Tracks]] = []
        self.frames = 0
        self.progress = progress

    def publish(self, alerts: list[Alert]) -> None:
        self.alerts.extend(alerts)

    def on_frame(self, record: TrackedFrame) -> None:
        self.frames += 1
        self.rows.append((record.frame.index, record.tracks))
        if self.progress is not None:
            self.progress.update(1)


def _clean(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    if hasattr(v, "item"):
        return _clean(v.item())
    return v


def replay_config(seq_path: str, config_path: str | None, overrides: list[str]) -> PipelineConfig:
    """The config with its single camera reading `seq_path` (the built-in one when no file is given)."""
    if config_path:
        config = load_config(config_path, overrides)
    else:
        from pipeline.config import parse_config
        import yaml
        config = parse_config(yaml.safe_dump(BUILTIN), overrides, source="<built-in replay config>")
    enabled = [n for n, c in config.cameras.items() if c.enabled]
    if len(enabled) != 1:
        raise ConfigError([f"{config_path}: replay needs exactly one enabled camera, found {len(enabled)}"])
    cam = config.cameras[enabled[0]]
    cameras = {enabled[0]: cam.model_copy(update={"source": SequenceSource(type="sequence", path=Path(seq_path))})}
    return config.model_copy(update={"cameras": cameras})


def sequence_class(report: dict) -> str:
    """The class of a replayed sequence's targets ('mixed' for several, '-' when the labels give none)."""
    classes = report.get("classes") or []
    return classes[0] if len(classes) == 1 else ("mixed" if classes else "-")


def replay_folder(folder: str, split: str | None, config_path: str | None, overrides: list[str],
                  report_path: str | Path | None = None, tracks_dir: str | Path | None = None,
                  progress: bool = True, detector: Any = None, on_report=None, limit: int | None = None,
                  detector_for=None) -> tuple[dict, int]:
    """Replay every sequence of a dataset folder (halmstad-ir layout, optionally one split, the first `limit`)
    with one detector (`detector`, else the config's, loaded once; `detector_for(path, config)` picks one per
    sequence instead); returns ({"summary", "by_class", "sequences": [reports]}, exit code).
    `on_report(report)` is called after each sequence."""
    from tracking.mot_scores import summarize
    from tracking.sequences import SequenceError, sequence_paths
    from pipeline.graph import load_detector
    from pipeline.sources import SourceError

    try:
        paths = sequence_paths(folder, split)[:limit]
    except SequenceError as e:
        raise SourceError(str(e)) from None
    reports, code = [], 0
    for path in paths:
        config = replay_config(str(path), config_path, overrides)
        if detector_for is not None:
            det = detector_for(path, config)
        else:
            det = detector = detector if detector is not None else load_detector(config)
        tracks = Path(tracks_dir) / f"{path.stem}.txt" if tracks_dir else None
        report, c = replay(str(path), config, None, tracks, progress, det)
        reports.append(report)
        code = code or c
        if on_report is not None:
            on_report(report)
    scored = [r for r in reports if r.get("metrics")]
    by_class: dict[str, list] = {}
    for r in scored:
        by_class.setdefault(sequence_class(r), []).append(r["metrics"])
    out = _clean({"folder": str(folder), "split": split,
                  "summary": summarize([r["metrics"] for r in scored]) if scored else None,
                  "by_class": {k: summarize(v) for k, v in sorted(by_class.items())},
                  "sequences": reports})
    if report_path:
        Path(report_path).parent.mkdir(parents=True, exist_ok=True)
        Path(report_path).write_text(json.dumps(out, indent=2) + "\n")
    return out, code


def replay(seq_path: str, config: PipelineConfig, report_path: str | Path | None = None,
           tracks_out: str | Path | None = None, progress: bool = True, detector: Any = None) -> tuple[dict, int]:
    """Run and score one recording; returns (report, exit code). Raises `SourceError` for unreadable input."""
    from tracking.motchallenge import MotRows, write_tracks
    from pipeline.sources import open_sequence_checked

    seq = open_sequence_checked(Path(seq_path))
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=getattr(seq, "length", None), unit="frame", desc=f"replay {seq.name}", leave=False)
    recorder = RecordingSink(bar)
    pipe = Pipeline(config, detector=detector, extra_sinks=[recorder])
    t0 = time.perf_counter()
    try:
        result = pipe.run()
    finally:
        if bar is not None:
            bar.close()
    elapsed = time.perf_counter() - t0
    stable = [json.dumps(comparable(a.model_dump()), separators=(",", ":")) for a in recorder.alerts]
    counts: dict[str, int] = {}
    for a in recorder.alerts:
        counts[a.event] = counts.get(a.event, 0) + 1
    rows = MotRows.from_tracks(recorder.rows)
    report: dict[str, Any] = {
        "sequence": seq.name, "path": str(seq_path), "frames": recorder.frames,
        "width": seq.width, "height": seq.height, "fps": seq.fps,
        "classes": sorted(set(getattr(seq, "classes", {}).values())),
        "elapsed_s": round(elapsed, 3), "processing_fps": round(recorder.frames / elapsed, 2) if elapsed else None,
        "alerts": counts, "tracks": len(set(int(i) for i in rows.id)),
        "alerts_sha256": hashlib.sha256("\n".join(stable).encode()).hexdigest(),
        "exit_code": result.exit_code, "error": result.message or None,
    }
    if seq.gt is not None and result.exit_code == 0:
        from tracking.mot_scores import evaluate
        report["metrics"] = evaluate(seq.gt, rows, seq.length, seq.fps, recorder.alerts)
    else:
        report["metrics"] = None
    report = _clean(report)
    if report_path:
        Path(report_path).parent.mkdir(parents=True, exist_ok=True)
        Path(report_path).write_text(json.dumps(report, indent=2) + "\n")
    if tracks_out:
        Path(tracks_out).parent.mkdir(parents=True, exist_ok=True)
        write_tracks(tracks_out, rows)
    return report, result.exit_code
