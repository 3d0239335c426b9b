"""Labelled frames of videos, halmstad-ir layout: `videos/<name>.mp4`, `labels/<name>.csv`, `splits/<split>.txt`.

A labels csv has the header `frame,id,class,x,y,w,h`: `frame` 0-based in decode order, `x, y` the box's
top-left corner and `w, h` its size in pixels, so the centre is `(x + w/2, y + h/2)` in the pixel-centre
convention. Frames without a row hold no target (they are negatives).

Targets of a training split get the intensity centroid of the target inside its box (either polarity), which
is what the heatmap is encoded on; those of val/test keep the box centre, which is what they are scored
against, with a gate of max(3 px, half the box diagonal).
"""
from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import numpy as np

from .datasets import Sample, _read_split, box_gates, centroid_in_box
from .errors import DetectorError

VIDEO_SUFFIXES = (".mp4", ".mkv", ".avi", ".mov")
LABEL_COLUMNS = ("frame", "id", "class", "x", "y", "w", "h")


def read_labels(path: Path) -> dict[int, np.ndarray]:
    """frame -> (N, 4) inclusive boxes, from a `frame,id,class,x,y,w,h` csv."""
    rows: dict[int, list[list[float]]] = defaultdict(list)
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            missing = [c for c in LABEL_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise DetectorError(f"{path}: not a labels csv (missing columns {', '.join(missing)}; "
                                    f"expected header {','.join(LABEL_COLUMNS)})")
            for line_no, r in enumerate(reader, start=2):
                try:
                    frame = int(r["frame"])
                    x, y, w, h = (float(r[k]) for k in ("x", "y", "w", "h"))
                except (TypeError, ValueError):
                    raise DetectorError(f"{path}:{line_no}: not a number in {dict(r)}") from None
                rows[frame].append([x + 0.5, y + 0.5, x + w - 0.5, y + h - 0.5])
    except OSError as exc:
        raise DetectorError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return {k: np.asarray(v, float).reshape(-1, 4) for k, v in rows.items()}


def _video_for(root: Path, name: str) -> Path:
    for suffix in VIDEO_SUFFIXES:
        p = root / "videos" / f"{name}{suffix}"
        if p.is_file():
            return p
    raise DetectorError(f"{root}/videos: no video named {name!r} (listed in the split file)")


def decode_every(path: Path, every: int) -> tuple[list[tuple[int, np.ndarray]], int]:
    """Every `every`-th frame of a video as grey (0-based index, frame), and the number of frames decoded."""
    import av

    from tracking.sequences import video_frame_to_grey

    kept, n = [], 0
    try:
        with av.open(str(path)) as container:
            for n, frame in enumerate(container.decode(video=0)):
                if n % every == 0:
                    kept.append((n, video_frame_to_grey(frame)))
            n += 1
    except (av.FFmpegError, IndexError) as exc:
        raise DetectorError(f"{path}: cannot decode the video after {n} frames ({exc.__class__.__name__})") from None
    return kept, n


def read_video_dataset(root: str | Path, split: str, every: int = 10) -> list[Sample]:
    """Every `every`-th frame of the split's videos, with their box targets (see the module docstring)."""
    root = Path(root)
    names = _read_split(root, split)
    if not names:
        raise DetectorError(f"{root}: the {split} split lists no sequence")
    samples = []
    for name in names:
        video, label_file = _video_for(root, name), root / "labels" / f"{name}.csv"
        if not label_file.is_file():
            raise DetectorError(f"{label_file}: no labels for video {video.name}")
        labels = read_labels(label_file)
        frames, count = decode_every(video, every)
        if labels and max(labels) >= count:
            raise DetectorError(f"{label_file}: labels run to frame {max(labels)} but {video.name} has {count} "
                                f"frames (frame numbers are 0-based): the labels do not match the video")
        for index, image in frames:
            boxes = labels.get(index, np.zeros((0, 4)))
            if split == "train":
                cents = np.array([centroid_in_box(image, b) for b in boxes]).reshape(-1, 2)
            else:
                cents = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], 1)
            samples.append(Sample(f"{name}#{index}", image, cents, boxes, box_gates(boxes)))
    return samples
