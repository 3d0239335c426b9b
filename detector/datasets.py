"""Labelled single-frame data: SIRST layout, mask folders, IRSTD-1k, MDvsFA, halmstad-ir video frames, COCO json.

Every reader returns `Sample`s in the project's convention: centroids (x, y) with the centre of pixel
(i, j) at (i, j); boxes as inclusive pixel indices xmin, ymin, xmax, ymax; `gates` the match radius of each
target in pixels (3 px for mask targets, max(3 px, half the box diagonal) for box-labelled targets).
"""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from .errors import DetectorError
from .imageio import IMAGE_SUFFIXES, load_grey
from .metrics import GATE_PX

SPLITS = ("train", "val", "test")


@dataclass
class Sample:
    name: str
    image: np.ndarray  # (H, W) uint8 / uint16
    centroids: np.ndarray  # (N, 2) float
    boxes: np.ndarray  # (N, 4) float, inclusive pixel indices
    gates: np.ndarray | None = None  # (N,) match radius in px; None: GATE_PX for every target
    motion: np.ndarray | None = None  # (H, W) int16 motion residual (video frames, `detector.motion`)

    def __post_init__(self) -> None:
        if self.gates is None:
            self.gates = np.full(len(self.centroids), GATE_PX)


def box_gates(boxes: np.ndarray) -> np.ndarray:
    """Match radius of box-labelled targets: max(3 px, half the box diagonal)."""
    boxes = np.asarray(boxes, float).reshape(-1, 4)
    w, h = boxes[:, 2] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 1] + 1
    return np.maximum(GATE_PX, 0.5 * np.hypot(w, h))


def components(mask: np.ndarray, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Targets of a binary mask: intensity-weighted centroids (N, 2) and inclusive boxes (N, 4)."""
    labels, n = ndimage.label(mask > 0, structure=np.ones((3, 3)))
    cents, boxes = [], []
    for idx, sl in enumerate(ndimage.find_objects(labels), start=1):
        ys, xs = np.nonzero(labels[sl] == idx)
        ys, xs = ys + sl[0].start, xs + sl[1].start
        wts = image[ys, xs].astype(np.float64)
        wts = wts - wts.min() + 1.0 if len(wts) else wts
        cents.append([np.average(xs, weights=wts), np.average(ys, weights=wts)])
        boxes.append([xs.min(), ys.min(), xs.max(), ys.max()])
    return np.asarray(cents, float).reshape(-1, 2), np.asarray(boxes, float).reshape(-1, 4)


def centroid_in_box(image: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Intensity-weighted centroid of the target inside an inclusive box, of either polarity: the pixels
    brighter than the box's median, or darker, whichever departs further from it."""
    x0, y0, x1, y1 = [int(round(v)) for v in box]
    h, w = image.shape
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w - 1, x1), min(h - 1, y1)
    patch = image[y0:y1 + 1, x0:x1 + 1].astype(np.float64)
    if patch.size == 0:
        return np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
    dev = patch - np.median(patch)
    wts = np.clip(dev if dev.max() >= -dev.min() else -dev, 0, None)
    if wts.sum() <= 0:
        wts = np.ones_like(patch)
    ys, xs = np.mgrid[y0:y1 + 1, x0:x1 + 1]
    return np.array([np.average(xs, weights=wts), np.average(ys, weights=wts)])


def _read_split(root: Path, split: str) -> list[str]:
    for candidate in (root / "splits" / f"{split}.txt", root / f"{split}.txt", root / "idx_427" / f"{split}.txt"):
        if candidate.is_file():
            return [Path(line.strip()).stem for line in candidate.read_text().splitlines() if line.strip()]
    raise DetectorError(f"{root}: no list for split {split!r} (looked for splits/{split}.txt and {split}.txt)")


def _find_image(folder: Path, name: str) -> Path:
    for suffix in IMAGE_SUFFIXES:
        p = folder / f"{name}{suffix}"
        if p.is_file():
            return p
    raise DetectorError(f"{folder}: no image named {name!r}")


def _voc_boxes(path: Path) -> np.ndarray:
    root = ET.parse(path).getroot()
    out = [[float(o.findtext(f"bndbox/{k}")) for k in ("xmin", "ymin", "xmax", "ymax")] for o in root.iter("object")]
    return np.asarray(out, float).reshape(-1, 4)


def _voc_centroids(path: Path) -> np.ndarray:
    root = ET.parse(path).getroot()
    out = [[float(o.findtext("centroid/xc")), float(o.findtext("centroid/yc"))] for o in root.iter("object")]
    return np.asarray(out, float).reshape(-1, 2)


def read_sirst(root: str | Path, split: str) -> list[Sample]:
    """SIRST layout: images/, masks/, boxes/ (VOC), centroids/ (xml), splits/{split}.txt.

    The masks are the pixel truth: targets are their components, with intensity-weighted centroids. The
    xml files of the SIRST-V2 release are 1-based (centroids +1 px, boxes [x0+1, y0+1, x1+2, y1+2] against the
    masks, measured over all 533 targets), so they are used only when an image has no mask, shifted back.
    """
    root = Path(root)
    samples = []
    for name in _read_split(root, split):
        image = load_grey(_find_image(root / "images", name))
        try:
            cents, boxes = components(load_grey(_find_image(root / "masks", name)), image)
        except DetectorError:
            box_file, cent_file = root / "boxes" / f"{name}.xml", root / "centroids" / f"{name}.xml"
            if not box_file.is_file():
                raise DetectorError(f"{root}: {name!r} has neither a mask nor a box file") from None
            boxes = _voc_boxes(box_file) - [1, 1, 2, 2]
            cents = (_voc_centroids(cent_file) - 1 if cent_file.is_file()
                     else np.array([centroid_in_box(image, b) for b in boxes]).reshape(-1, 2))
        samples.append(Sample(name, image, cents, boxes))
    return samples


def read_mask_folder(root: str | Path, split: str, images: str = "images", masks: str = "masks",
                     names: list[str] | None = None) -> list[Sample]:
    """Images and masks of the same names in two folders, a list per split; targets = mask components."""
    root = Path(root)
    samples = []
    for name in _read_split(root, split) if names is None else names:
        image = load_grey(_find_image(root / images, name))
        cents, boxes = components(load_grey(_find_image(root / masks, name)) > 127, image)
        samples.append(Sample(name, image, cents, boxes))
    return samples


IRSTD1K_VAL_EVERY = 5  # our val: every 5th name of the authors' trainval list (160 of 800)


def read_irstd1k(root: str | Path, split: str) -> list[Sample]:
    """IRSTD-1k as released: IRSTD1k_Img/, IRSTD1k_Label/ (masks, binarised at > 127), trainval.txt / test.txt.

    `train` and `val` split the authors' trainval list (val = every 5th name); `test` is their test list.
    """
    root = Path(root)
    if split == "test":
        names = _read_split(root, "test")
    else:
        trainval = _read_split(root, "trainval")
        names = [n for i, n in enumerate(trainval) if (i % IRSTD1K_VAL_EVERY == 0) == (split == "val")]
    return read_mask_folder(root, split, "IRSTD1k_Img", "IRSTD1k_Label", names)


def read_mdvsfa(root: str | Path, split: str) -> list[Sample]:
    """MDvsFA test set: test_org/ images and test_gt/ masks. A cross-dataset check only: no train/val."""
    root = Path(root)
    if split != "test":
        raise DetectorError(f"{root}: MDvsFA-test holds a test split only (asked for {split!r}); never train on it")
    names = sorted(p.stem for p in (root / "test_org").iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not names:
        raise DetectorError(f"{root}/test_org: no images")
    return read_mask_folder(root, split, "test_org", "test_gt", names)


def open_dataset(path: str | Path, split: str, every: int | None = None, motion: bool = False) -> list[Sample]:
    """Read `split` of a dataset, detecting its layout: a COCO json (file, or `<split>.json` / `annotations/`
    in the folder), halmstad-ir (videos/ + labels/ + splits/; every `every`-th frame, default 10), IRSTD-1k,
    MDvsFA, SIRST (boxes/ or centroids/ beside images/) or a mask folder (images/ + masks/). `motion`: video
    frames carry their motion residual (still images never do)."""
    path = Path(path)
    if not path.exists():
        raise DetectorError(f"{path}: no such file or folder")
    if path.is_file():
        return read_coco(path)
    for candidate in (path / f"{split}.json", path / "annotations" / f"{split}.json"):
        if candidate.is_file():
            return read_coco(candidate, path)
    if (path / "videos").is_dir() and (path / "labels").is_dir():
        from .video_frames import read_video_dataset

        return read_video_dataset(path, split, every or 10, motion)
    if (path / "IRSTD1k_Img").is_dir():
        return read_irstd1k(path, split)
    if (path / "test_org").is_dir():
        return read_mdvsfa(path, split)
    if not (path / "images").is_dir():
        raise DetectorError(f"{path}: not a dataset (expected images/ with masks/ or boxes/, IRSTD1k_Img/, "
                            f"test_org/, videos/ with labels/, or a COCO json)")
    if (path / "boxes").is_dir() or (path / "centroids").is_dir():
        return read_sirst(path, split)
    if (path / "masks").is_dir():
        return read_mask_folder(path, split)
    raise DetectorError(f"{path}: images/ has no masks/ or boxes/ beside it")


def read_coco(json_path: str | Path, image_root: str | Path | None = None) -> list[Sample]:
    """COCO json (the method's ITT / SIRST-V2 annotations). bbox [x, y, w, h] has pixel i covering [i, i+1)."""
    json_path = Path(json_path)
    try:
        data = json.loads(json_path.read_text())
        images = {im["id"]: im for im in data["images"]}
        anns = data.get("annotations", [])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DetectorError(f"{json_path}: not a COCO annotation file ({exc})") from None
    image_root = Path(image_root) if image_root else json_path.parent
    by_image: dict[int, list[list[float]]] = {i: [] for i in images}
    for a in anns:
        by_image.setdefault(a["image_id"], []).append(a["bbox"])
    samples = []
    for image_id, im in sorted(images.items()):
        path = image_root / im["file_name"]
        if not path.is_file() and (image_root / "images" / im["file_name"]).is_file():
            path = image_root / "images" / im["file_name"]
        image = load_grey(path)
        boxes = np.array([[x, y, x + w - 1, y + h - 1] for x, y, w, h in by_image[image_id]], float).reshape(-1, 4)
        cents = np.array([centroid_in_box(image, b) for b in boxes]).reshape(-1, 2)
        samples.append(Sample(Path(im["file_name"]).stem, image, cents, boxes))
    return samples
