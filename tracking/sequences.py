"""Sequence readers: MOTChallenge folders, COCO-json recordings (ITT layout), video files with a
MOTChallenge `gt.txt` beside them, and the halmstad-ir layout (`videos/IR_*.mp4` + `labels/IR_*.csv`).
`open_sequence(path)` picks the reader from the path; `sequence_paths(folder, split)` lists a dataset's."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Optional

import numpy as np
from PIL import Image
from detector.imageio import IMAGE_SUFFIXES, image_to_grey
from detector.metrics import match_points

if TYPE_CHECKING:
    import av
from .motchallenge import MotRows, read_rows, read_seqinfo

VIDEO_EXTS = (".mp4", ".mkv", ".avi", ".mov", ".ts", ".h264", ".264", ".webm")


class SequenceError(ValueError):
    """A sequence path that cannot be read; the message is one line naming the path and the problem."""


class Sequence:
    """A video sequence: `name`, `width`, `height`, `fps`, `length`, `frames()` yielding
    `(frame_index, grey ndarray)` with 1-based frame indices, `gt` (`MotRows`) or None, and `classes`:
    the class name of each gt id where the labels give one."""

    name: str
    width: int
    height: int
    fps: float
    length: int
    gt: Optional[MotRows]
    classes: dict[int, str] = {}

    def frames(self) -> Iterator[tuple[int, np.ndarray]]:
        raise NotImplementedError

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name={self.name!r}, {self.width}x{self.height}, fps={self.fps:g}, "
                f"length={self.length}, gt={'yes' if self.gt is not None else 'no'})")


class ArraySequence(Sequence):
    """An in-memory sequence (frames as a (T, H, W) array), e.g. freshly generated."""

    def __init__(self, name: str, frames: np.ndarray, fps: float, gt: Optional[MotRows]) -> None:
        self.name, self._frames, self.fps, self.gt = name, frames, float(fps), gt
        self.length, self.height, self.width = frames.shape

    def frames(self) -> Iterator[tuple[int, np.ndarray]]:
        for i, f in enumerate(self._frames, start=1):
            yield i, f


class ImageListSequence(Sequence):
    """Frames from a list of image files (MOTChallenge `img1/` or COCO-json file names)."""

    def __init__(self, name: str, files: list[Path], fps: float, gt: Optional[MotRows],
                 size: Optional[tuple[int, int]] = None) -> None:
        self.name, self.files, self.fps, self.gt, self.length = name, files, float(fps), gt, len(files)
        if size is None:
            with Image.open(files[0]) as im:
                size = im.size
        self.width, self.height = size

    def frames(self) -> Iterator[tuple[int, np.ndarray]]:
        for i, f in enumerate(self.files, start=1):
            with Image.open(f) as im:
                yield i, image_to_grey(im)


# PyAV's decoder threading for every video read here and by the pipeline's cameras: none, decoded in the
# reader's own thread. Frame threads ("AUTO", "FRAME") hold back one frame per extra thread (3 threads: a live
# 25 fps camera's frames come out 80 ms late); slice threads gain nothing on one-slice frames (0.9 ms a
# 640x512 frame either way) and take turns on the cores the detect workers use.
DECODE_THREADS = "NONE"


def video_frame_to_grey(frame: "av.VideoFrame") -> np.ndarray:
    """The frame's luma as a 2-D array: uint16 for formats deeper than 8 bits, else uint8.

    8-bit YUV (what H.264/H.265 cameras send) is copied straight from the luma plane, values as coded
    (limited-range video keeps 16-235; the detector standardises each frame): 5x cheaper than a conversion.
    """
    fmt = frame.format
    deep = any(c.bits > 8 for c in fmt.components)
    if not deep and fmt.name.startswith(("yuv", "nv12", "nv21", "gray")):
        plane = frame.planes[0]
        rows = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
        return rows[:, : plane.width].copy()
    return frame.to_ndarray(format="gray16le" if deep else "gray")


class VideoSequence(Sequence):
    """Frames decoded from a video file (PyAV) as grey."""

    def __init__(self, path: Path, name: str, fps: Optional[float], gt: Optional[MotRows]) -> None:
        import av

        self.path, self.name, self.gt = path, name, gt
        try:
            with av.open(str(path)) as c:
                s = c.streams.video[0]
                self.width, self.height = s.codec_context.width, s.codec_context.height
                self.fps = float(fps or s.average_rate or 25.0)
                self.length = int(s.frames) or sum(1 for _ in c.decode(video=0))
        except (av.FFmpegError, IndexError) as e:
            why = getattr(e, "strerror", None) or e
            raise SequenceError(unreadable_video(path, why)) from None

    def frames(self) -> Iterator[tuple[int, np.ndarray]]:
        """Every frame; raises `SequenceError` when the file ends early or a packet does not decode."""
        import av

        i = 0
        with av.open(str(self.path)) as c:
            c.streams.video[0].thread_type = DECODE_THREADS
            try:
                for i, fr in enumerate(c.decode(video=0), start=1):
                    yield i, video_frame_to_grey(fr)
            except av.FFmpegError as e:
                raise SequenceError(video_ended_early(self.path, i, self.length, e)) from None
        if i < self.length:
            raise SequenceError(video_ended_early(self.path, i, self.length))


def unreadable_video(path: Path | str, why: object) -> str:
    """The one-line message for a video that does not open (nothing of it can be read)."""
    return f"cannot read {path}: corrupt or truncated ({why})"


def video_ended_early(path: Path | str, decoded: int, total: int | None, error: Exception | None = None) -> str:
    """The one-line message for a video that stops decoding after `decoded` (the frames delivered) of `total`."""
    of = f" of {total}" if total else ""
    why = f" ({getattr(error, 'strerror', None) or error})" if error is not None else ""
    if decoded == 0:
        return f"cannot read {path}: no frame{of} decodes, corrupt or truncated{why}"
    return f"cannot read {path} past frame {decoded}{of}: corrupt or truncated{why}"


def _mot_folder(path: Path) -> Sequence:
    info = read_seqinfo(path / "seqinfo.ini") if (path / "seqinfo.ini").is_file() else {}
    gt_file = path / "gt" / "gt.txt"
    gt = read_rows(gt_file, gt=True) if gt_file.is_file() else None
    fps = float(info.get("frameRate", 25))
    name = info.get("name", path.name)
    img_dir = path / info.get("imDir", "img1")
    files = sorted(p for p in img_dir.glob("*") if p.suffix.lower() in IMAGE_SUFFIXES) if img_dir.is_dir() else []
    if files:
        size = (int(info["imWidth"]), int(info["imHeight"])) if "imWidth" in info and "imHeight" in info else None
        return ImageListSequence(name, files, fps, gt, size)
    videos = sorted(p for p in path.glob("*") if p.suffix.lower() in VIDEO_EXTS)
    if videos:
        return VideoSequence(videos[0], name, fps if info else None, gt)
    raise SequenceError(f"{path}: no frames (neither {img_dir.name}/ images nor a video file)")


def _video_file(path: Path) -> Sequence:
    gt = None
    for cand in (path.with_suffix(".txt"), path.parent / "gt.txt", path.parent / "gt" / "gt.txt"):
        if cand.is_file():
            gt = read_rows(cand, gt=True)
            break
    ini = path.parent / "seqinfo.ini"
    info = read_seqinfo(ini) if ini.is_file() else {}
    fps = float(info["frameRate"]) if "frameRate" in info else None
    return VideoSequence(path, info.get("name", path.stem), fps, gt)


_ITT_NAME = re.compile(r"^(?P<scene>.+)_(?P<targets>\d+)_(?P<frame>\d+)$")


def _coco_json(path: Path, scene: Optional[str], fps: float) -> Sequence:
    """One scene of an ITT-style COCO json: images named `<scene>_<targets>_<frame>.jpg`, boxes
    `[x, y, w, h]` (COCO: top-left corner of the top-left pixel at 0). Ids come from `track_id` /
    `instance_id` when present, otherwise from linking boxes frame to frame (Hungarian, 10 px)."""
    try:
        data = json.loads(path.read_text())
        images, anns = data["images"], data.get("annotations", [])
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise SequenceError(f"{path}: not a COCO json with an 'images' list ({e})") from None
    scenes: dict[str, list[tuple[int, dict]]] = {}
    for im in images:
        m = _ITT_NAME.match(Path(im["file_name"]).stem)
        if m:
            scenes.setdefault(m["scene"], []).append((int(m["frame"]), im))
    if not scenes:
        raise SequenceError(f"{path}: no image named <scene>_<targets>_<frame>.jpg")
    if scene is None:
        if len(scenes) > 1:
            raise SequenceError(f"{path}: {len(scenes)} scenes ({', '.join(sorted(scenes)[:5])}...); "
                                f"open '{path}#SCENE' to pick one")
        scene = next(iter(scenes))
    if scene not in scenes:
        raise SequenceError(f"{path}: no scene {scene!r} (have {', '.join(sorted(scenes)[:8])})")
    items = sorted(scenes[scene], key=lambda t: t[0])
    frame_of = {im["id"]: k for k, (_, im) in enumerate(items, start=1)}
    rows = []
    for a in anns:
        k = frame_of.get(a.get("image_id"))
        if k is not None:
            x, y, w, h = (float(v) for v in a["bbox"])
            rows.append((k, a.get("track_id", a.get("instance_id", -1)), x + w / 2 - 0.5, y + h / 2 - 0.5, w, h))
    gt = _link_rows(rows) if rows else MotRows.empty()
    files = [_find_image(path, im["file_name"]) for _, im in items]
    size = (int(items[0][1]["width"]), int(items[0][1]["height"])) if "width" in items[0][1] else None
    return ImageListSequence(scene, files, fps, gt, size)


def _find_image(json_path: Path, file_name: str) -> Path:
    base = json_path.parent
    for cand in (base / file_name, base / "images" / file_name, base.parent / "images" / file_name,
                 base.parent / json_path.stem / file_name, base.parent / file_name):
        if cand.is_file():
            return cand
    raise SequenceError(f"{json_path}: image {file_name} not found beside the json or in images/")


def _link_rows(rows: list[tuple]) -> MotRows:
    """Assign ids to boxes without track ids by frame-to-frame Hungarian linking within 10 px."""
    a = np.asarray(rows, float)
    if np.all(a[:, 1] >= 0):
        return MotRows(a[:, 0], a[:, 1], a[:, 2:4], a[:, 4:6])
    ids = np.zeros(len(a), np.int64)
    next_id, prev = 1, (np.zeros(0, int), np.zeros((0, 2)))
    for f in np.unique(a[:, 0]):
        idx = np.flatnonzero(a[:, 0] == f)
        cur = a[idx, 2:4]
        for ri, ci in match_points(prev[1], cur, gate=10.0):
            ids[idx[ci]] = prev[0][ri]
        for k in idx:
            if ids[k] == 0:
                ids[k], next_id = next_id, next_id + 1
        prev = (ids[idx], cur)
    return MotRows(a[:, 0], ids, a[:, 2:4], a[:, 4:6])


HALMSTAD_HEADER = "frame,id,class,x,y,w,h"


def halmstad_labels(csv: Path, length: int, width: int, height: int) -> tuple[MotRows, dict[int, str]]:
    """Labels of one halmstad-ir video (`frame,id,class,x,y,w,h`: 0-based frame, box top-left corner and size
    in px, centre at (x + w/2, y + h/2) in the pixel-centre convention) as `MotRows` with 1-based frames,
    plus each id's class. Raises `SequenceError` naming the file when it does not fit the video."""
    lines = csv.read_text().splitlines()
    if not lines or lines[0].strip().replace(" ", "") != HALMSTAD_HEADER:
        raise SequenceError(f"{csv}: not a halmstad-ir labels file (first line must be '{HALMSTAD_HEADER}')")
    rows, classes = [], {}
    for n, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        parts = line.split(",")
        try:
            frame, tid, cls, x, y, w, h = int(parts[0]), int(parts[1]), parts[2].strip(), *map(float, parts[3:7])
            if len(parts) != 7:
                raise ValueError
        except (ValueError, IndexError):
            raise SequenceError(f"{csv}: line {n} is not 'frame,id,class,x,y,w,h': {line[:60]!r}") from None
        cx, cy = x + w / 2, y + h / 2
        if not 0 <= frame < length:
            raise SequenceError(f"{csv}: line {n} labels frame {frame}, but the video has {length} frames "
                                f"(0-{length - 1}): labels and video do not match")
        if not (-0.5 <= cx <= width - 0.5 and -0.5 <= cy <= height - 0.5) or w <= 0 or h <= 0:
            raise SequenceError(f"{csv}: line {n}: box centre ({cx:.1f}, {cy:.1f}) size {w:g}x{h:g} does not fit "
                                f"the {width}x{height} video: labels and video do not match")
        rows.append((frame + 1, tid, cx, cy, w, h))
        classes.setdefault(tid, cls)
    if not rows:
        return MotRows.empty(), {}
    a = np.asarray(rows, float)
    return MotRows(a[:, 0], a[:, 1], a[:, 2:4], a[:, 4:6]), classes


def _halmstad_video(path: Path, labels: Path) -> Sequence:
    seq = VideoSequence(path, path.stem, None, None)
    seq.gt, seq.classes = halmstad_labels(labels, seq.length, seq.width, seq.height)
    return seq


def _halmstad_labels_for(video: Path) -> Optional[Path]:
    """`<root>/labels/<stem>.csv` for `<root>/videos/<stem>.mp4`, when it exists."""
    cand = video.parent.parent / "labels" / f"{video.stem}.csv"
    return cand if video.parent.name == "videos" and cand.is_file() else None


def is_dataset_folder(path: str | Path) -> bool:
    """A folder laid out as halmstad-ir: `videos/` and `labels/`."""
    p = Path(path)
    return (p / "videos").is_dir() and (p / "labels").is_dir()


def sequence_paths(folder: str | Path, split: Optional[str] = None) -> list[Path]:
    """The videos of a halmstad-ir style folder, in name order; with `split`, those named in
    `splits/<split>.txt`. Raises `SequenceError` for a missing split or a listed sequence without video."""
    root = Path(folder)
    if not is_dataset_folder(root):
        raise SequenceError(f"{root}: not a dataset folder (no videos/ and labels/)")
    if split is None:
        return sorted(p for p in (root / "videos").iterdir() if p.suffix.lower() in VIDEO_EXTS)
    listing = root / "splits" / f"{split}.txt"
    if not listing.is_file():
        have = sorted(p.stem for p in (root / "splits").glob("*.txt")) if (root / "splits").is_dir() else []
        raise SequenceError(f"{root}: no split {split!r} (have {', '.join(have) or 'none'})")
    out = []
    for name in listing.read_text().split():
        videos = [p for p in (root / "videos").glob(f"{name}.*") if p.suffix.lower() in VIDEO_EXTS]
        if not videos:
            raise SequenceError(f"{listing}: sequence {name} has no video in {root / 'videos'}")
        out.append(videos[0])
    return out


def open_sequence(path: str | Path, fps: float = 25.0) -> Sequence:
    """Open a MOTChallenge folder (`seqinfo.ini`, `img1/` or a video, `gt/gt.txt`), a video file (gt from
    `<video>.txt`, `gt.txt` or `gt/gt.txt` beside it, or `../labels/<name>.csv` in the halmstad-ir layout)
    or an ITT COCO json (`split.json#scene`).
    `fps` is used where the data does not say. Raises `SequenceError` (a `ValueError`) on bad paths."""
    text = str(path)
    scene = None
    if ".json#" in text:
        text, scene = text.split("#", 1)
    p = Path(text)
    if not p.exists():
        raise SequenceError(f"{p}: no such file or folder")
    try:
        if p.is_dir():
            if is_dataset_folder(p):
                raise SequenceError(f"{p}: a folder of sequences (videos/, labels/); open one video of it, or "
                                    "replay the folder with --split")
            if not ((p / "seqinfo.ini").is_file() or (p / "img1").is_dir() or (p / "gt").is_dir()):
                raise SequenceError(f"{p}: not a MOTChallenge sequence folder (no seqinfo.ini, img1/ or gt/)")
            return _mot_folder(p)
        if p.suffix.lower() == ".json":
            return _coco_json(p, scene, fps)
        if p.suffix.lower() in VIDEO_EXTS:
            labels = _halmstad_labels_for(p)
            return _halmstad_video(p, labels) if labels else _video_file(p)
    except (OSError, ValueError) as e:
        if isinstance(e, SequenceError):
            raise
        raise SequenceError(f"{p}: {e}") from None
    raise SequenceError(f"{p}: unknown sequence type (want a MOTChallenge folder, a .json or a video file)")
