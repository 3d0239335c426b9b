"""Labelled frames of videos, halmstad-ir layout: `videos/<name>.mp4`, `labels/<name>.csv`, `splits/<split>.txt`.

A labels csv has the header `frame,id,class,x,y,w,h`: `frame` 0-based in decode order, `x, y` the box's
top-left corner and `w, h` its size in pixels, so the centre is `(x + w/2, y + h/2)` in the pixel-centre
convention. Frames without a row hold no target (they are negatives).

Targets of a training split get the intensity centroid of the target inside its box (either polarity), which
is what the heatmap is encoded on; those of val/test keep the box centre, which is what they are scored
against, with a gate of max(3 px, half the box diagonal).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .datasets import Sample, box_gates, centroid_in_box
from .errors import DetectorError


def decode_every(path: Path, every: int, motion: bool = False
                 ) -> tuple[list[tuple[int, np.ndarray, np.ndarray | None]], int, tuple[int, int]]:
    """Every `every`-th frame of a video as grey (0-based index, frame, motion residual or None), the number of
    frames decoded and the frame size (width, height). `motion`: every frame goes through ego-motion and the
    motion background, in order, as in the pipeline's camera reader; the kept frames carry their residual."""
    import av

    from tracking.egomotion import SceneMotion
    from tracking.sequences import video_frame_to_grey

    from .motion import MotionBackground

    scene, background = (SceneMotion(), MotionBackground()) if motion else (None, None)
    kept, count, size = [], 0, (0, 0)
    try:
        with av.open(str(path)) as container:
            for frame in container.decode(video=0):
                grey = video_frame_to_grey(frame)
                residual = background.update(grey, scene.update(grey)) if background is not None else None
                if count % every == 0:
                    kept.append((count, grey, residual))
                size = (frame.width, frame.height)
                count += 1
    except (av.FFmpegError, IndexError) as exc:
        raise DetectorError(f"{path}: cannot decode the video after {count} frames ({exc.__class__.__name__})") from None
    return kept, count, size


def read_video_dataset(root: str | Path, split: str, every: int = 10, motion: bool = False) -> list[Sample]:
    """Every `every`-th frame of the split's videos, with their box targets (see the module docstring) and,
    with `motion`, their motion residuals.

    The layout, the split list and the labels are read by `tracking.sequences`, as `pipeline replay` reads them.
    """
    from tracking.sequences import SequenceError, halmstad_labels, sequence_paths

    root = Path(root)
    samples = []
    try:
        videos = sequence_paths(root, split)
        if not videos:
            raise DetectorError(f"{root}: the {split} split lists no sequence")
        for video in videos:
            label_file = root / "labels" / f"{video.stem}.csv"
            if not label_file.is_file():
                raise DetectorError(f"{label_file}: no labels for video {video.name}")
            frames, count, (width, height) = decode_every(video, every, motion)
            gt, _ = halmstad_labels(label_file, count, width, height)
            for index, image, residual in frames:
                at = gt.frame == index + 1  # MotRows frames are 1-based
                (cx, cy), (w, h) = gt.xy[at].T, gt.wh[at].T
                boxes = np.stack([cx - w / 2 + 0.5, cy - h / 2 + 0.5, cx + w / 2 - 0.5, cy + h / 2 - 0.5], 1)
                if split == "train":
                    cents = np.array([centroid_in_box(image, b) for b in boxes]).reshape(-1, 2)
                else:
                    cents = np.stack([cx, cy], 1)
                samples.append(Sample(f"{video.stem}#{index}", image, cents, boxes, box_gates(boxes), residual))
    except SequenceError as exc:
        raise DetectorError(str(exc)) from None
    return samples
