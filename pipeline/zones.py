"""Per-camera masks and zones: exclusion polygons (OSD text, a reticle, a flag pole) and optional include
zones, in pixel coordinates of the camera's frames. Detections inside an exclusion polygon, or outside every
include zone, are dropped before tracking."""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from detector.detections import Detections

Polygon = list[tuple[float, float]]


def polygon_problems(camera: str, kind: str, polygons: list[Polygon], size: tuple[int, int] | None) -> list[str]:
    """One line per bad polygon: fewer than 3 points, or (when the frame size is known) a point outside it."""
    problems = []
    for k, poly in enumerate(polygons):
        where = f"camera {camera}: {kind}[{k}]"
        if len(poly) < 3:
            problems.append(f"{where} has {len(poly)} point(s); a polygon needs at least 3")
        elif size is not None:
            w, h = size
            bad = [(x, y) for x, y in poly if not (0 <= x <= w and 0 <= y <= h)]
            if bad:
                problems.append(f"{where}: point ({bad[0][0]:g}, {bad[0][1]:g}) lies outside the {w}x{h} frame")
    return problems


class ZoneFilter:
    """Which pixels of one camera's frames may hold a target: a boolean raster of the polygons."""

    def __init__(self, exclude: list[Polygon], include: list[Polygon] | None, size: tuple[int, int]) -> None:
        w, h = size
        keep = Image.new("1", (w, h), 0 if include else 1)
        draw = ImageDraw.Draw(keep)
        for poly in include or []:
            draw.polygon([(float(x), float(y)) for x, y in poly], fill=1, outline=1)
        for poly in exclude:
            draw.polygon([(float(x), float(y)) for x, y in poly], fill=0, outline=0)
        self.keep = np.asarray(keep, bool)

    def __call__(self, dets: Detections) -> Detections:
        if len(dets) == 0:
            return dets
        h, w = self.keep.shape
        col = np.clip(np.rint(dets.xy[:, 0]).astype(int), 0, w - 1)
        row = np.clip(np.rint(dets.xy[:, 1]).astype(int), 0, h - 1)
        inside = self.keep[row, col]
        return dets if inside.all() else dets[inside]
