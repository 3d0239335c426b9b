"""MOTChallenge files: `gt/gt.txt`, tracker results and `seqinfo.ini`.

Rows are `frame,id,left,top,width,height,conf,...`. Boxes follow MOTChallenge's 1-based pixel convention:
left = x - w/2 + 1 where (x, y) is the centroid in the project's convention (pixel (i, j) centred at (i, j)).
Ground truth written here has 10 columns: `frame,id,left,top,width,height,1,1,1,scr`; the 7th-9th are
MOTChallenge's "consider", class (1) and visibility, and the 10th is this project's extension: the target's
signal-to-clutter ratio in that frame (NaN when unknown). Tracker results have
`frame,id,left,top,width,height,conf,-1,-1,-1`.
"""
from __future__ import annotations

import configparser
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Optional

import numpy as np

if TYPE_CHECKING:
    from .tracks import Tracks


@dataclass
class MotRows:
    """Per-row arrays of ground truth or tracker output: frame (M,), id (M,), xy centroid (M, 2), wh (M, 2),
    conf (M,), scr (M,) (NaN where unknown). Frames are 1-based."""

    frame: np.ndarray
    id: np.ndarray
    xy: np.ndarray
    wh: np.ndarray
    conf: np.ndarray = field(default=None)  # type: ignore[assignment]
    scr: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        self.frame = np.asarray(self.frame, np.int64).reshape(-1)
        n = len(self.frame)
        self.id = np.asarray(self.id, np.int64).reshape(n)
        self.xy = np.asarray(self.xy, np.float64).reshape(n, 2)
        self.wh = np.asarray(self.wh, np.float64).reshape(n, 2)
        self.conf = np.ones(n) if self.conf is None else np.asarray(self.conf, np.float64).reshape(n)
        self.scr = np.full(n, np.nan) if self.scr is None else np.asarray(self.scr, np.float64).reshape(n)
        self._index: Optional[dict[int, np.ndarray]] = None

    def __len__(self) -> int:
        return len(self.frame)

    @classmethod
    def empty(cls) -> "MotRows":
        return cls(np.zeros(0), np.zeros(0), np.zeros((0, 2)), np.zeros((0, 2)))

    @classmethod
    def from_tracks(cls, per_frame: Iterable[tuple[int, Tracks]]) -> "MotRows":
        """From `(frame_index, tracks)` pairs, `tracks` being `Tracker.active_tracks()` of that frame."""
        pairs = [(frame, t) for frame, t in per_frame if len(t)]
        if not pairs:
            return cls.empty()
        return cls(np.concatenate([np.full(len(t), frame) for frame, t in pairs]),
                   np.concatenate([t.track_id for _, t in pairs]), np.concatenate([t.xy for _, t in pairs]),
                   np.concatenate([t.wh for _, t in pairs]), np.concatenate([t.score for _, t in pairs]))

    def at(self, frame: int) -> np.ndarray:
        """Row indices of `frame`."""
        if self._index is None:
            order = np.argsort(self.frame, kind="stable")
            frames, starts = np.unique(self.frame[order], return_index=True)
            self._index = dict(zip(frames.tolist(), np.split(order, starts[1:])))
        return self._index.get(int(frame), np.zeros(0, np.int64))

    def select(self, mask: np.ndarray) -> "MotRows":
        return MotRows(self.frame[mask], self.id[mask], self.xy[mask], self.wh[mask], self.conf[mask],
                       self.scr[mask])

    def target_scr(self) -> dict[int, float]:
        """Median SCR of each id (NaN when not recorded)."""
        out = {}
        for i in np.unique(self.id):
            v = self.scr[self.id == i]
            v = v[np.isfinite(v)]
            out[int(i)] = float(np.median(v)) if len(v) else float("nan")
        return out


def _box_cols(rows: MotRows) -> np.ndarray:
    return np.column_stack([rows.xy - rows.wh / 2 + 1.0, rows.wh])


def write_gt(path: str | Path, rows: MotRows) -> None:
    """Write ground truth (10 columns, SCR last) sorted by frame then id."""
    order = np.lexsort((rows.id, rows.frame))
    box = _box_cols(rows)
    with open(path, "w") as f:
        for k in order:
            scr = "nan" if not np.isfinite(rows.scr[k]) else f"{rows.scr[k]:.3f}"
            f.write(f"{rows.frame[k]},{rows.id[k]},{box[k, 0]:.3f},{box[k, 1]:.3f},{box[k, 2]:.3f},"
                    f"{box[k, 3]:.3f},1,1,1,{scr}\n")


def write_tracks(path: str | Path, rows: MotRows) -> None:
    """Write tracker results `frame,id,left,top,width,height,conf,-1,-1,-1` sorted by frame then id."""
    order = np.lexsort((rows.id, rows.frame))
    box = _box_cols(rows)
    with open(path, "w") as f:
        for k in order:
            f.write(f"{rows.frame[k]},{rows.id[k]},{box[k, 0]:.3f},{box[k, 1]:.3f},{box[k, 2]:.3f},"
                    f"{box[k, 3]:.3f},{rows.conf[k]:.4f},-1,-1,-1\n")


def read_rows(path: str | Path, gt: bool = False) -> MotRows:
    """Read a MOTChallenge gt or tracker file. For gt, rows whose 7th column ("consider") is 0 or whose class
    (8th) is neither 1 (pedestrian, MOTChallenge's target class) nor -1 ("not given", as many tools write) are
    dropped; a 10th column is read as SCR when the file is ground truth."""
    text = Path(path).read_text().strip()
    if not text:
        return MotRows.empty()
    a = np.asarray([[float(v) for v in line.split(",")] for line in text.splitlines() if line.strip()])
    if a.ndim != 2 or a.shape[1] < 6:
        raise ValueError(f"{path}: not a MOTChallenge file (need at least 6 comma-separated columns)")
    if gt and a.shape[1] >= 8:
        a = a[(a[:, 6] != 0) & np.isin(a[:, 7], (1, -1))]
    wh = a[:, 4:6]
    xy = a[:, 2:4] + wh / 2 - 1.0
    conf = a[:, 6] if a.shape[1] > 6 else None
    scr = a[:, 9] if gt and a.shape[1] >= 10 else None
    return MotRows(a[:, 0], a[:, 1], xy, wh, None if gt else conf, scr)


def write_seqinfo(path: str | Path, name: str, length: int, width: int, height: int, fps: float,
                  im_dir: str = "img1", im_ext: str = ".png", extra: dict[str, str] | None = None) -> None:
    """Write `seqinfo.ini` ([Sequence] section as in MOTChallenge, plus optional extra keys)."""
    cp = configparser.ConfigParser()
    cp.optionxform = str  # keep MOTChallenge's camelCase keys
    cp["Sequence"] = {"name": name, "imDir": im_dir, "frameRate": f"{fps:g}", "seqLength": str(length),
                      "imWidth": str(width), "imHeight": str(height), "imExt": im_ext, **(extra or {})}
    with open(path, "w") as f:
        cp.write(f)


def read_seqinfo(path: str | Path) -> dict[str, str]:
    """The [Sequence] section of a `seqinfo.ini` as a dict."""
    cp = configparser.ConfigParser()
    cp.optionxform = str
    cp.read(path)
    if "Sequence" not in cp:
        raise ValueError(f"{path}: no [Sequence] section")
    return dict(cp["Sequence"])
