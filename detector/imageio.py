"""Reading frames as one grey channel, and the normalisation that the model sees."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import DetectorError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}


def to_grey(img: np.ndarray) -> np.ndarray:
    """Any (H, W), (H, W, 1|3|4) uint8/uint16 array -> (H, W) of the same bit depth."""
    img = np.asarray(img)
    if img.ndim == 3:
        if img.shape[2] == 1:
            img = img[..., 0]
        elif img.shape[2] in (3, 4):
            rgb = img[..., :3].astype(np.float32)
            grey = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
            img = np.clip(np.rint(grey), 0, np.iinfo(img.dtype).max if img.dtype.kind in "ui" else None).astype(img.dtype)
        else:
            raise DetectorError(f"frame has {img.shape[2]} channels; expected 1, 3 or 4")
    if img.ndim != 2:
        raise DetectorError(f"frame has shape {img.shape}; expected a 2-D grey or colour image")
    if img.dtype not in (np.uint8, np.uint16):
        if img.dtype.kind == "f":
            return img.astype(np.float32)
        img = np.clip(img, 0, 65535).astype(np.uint16)
    return img


def image_to_grey(im: Image.Image) -> np.ndarray:
    """A PIL image of any mode -> (H, W) uint8, or uint16 for 16-bit images."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        return np.clip(np.asarray(im).astype(np.int64), 0, 65535).astype(np.uint16)
    if im.mode == "L":
        return np.asarray(im).copy()
    return to_grey(np.asarray(im.convert("RGBA" if "A" in im.mode else "RGB")))


def load_grey(path: str | Path) -> np.ndarray:
    """Load an image file of any colour type and bit depth as one channel (uint8 or uint16)."""
    path = Path(path)
    try:
        with Image.open(path) as im:
            return image_to_grey(im)
    except FileNotFoundError:
        raise DetectorError(f"{path}: no such file") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise DetectorError(f"{path}: not a readable image ({exc.__class__.__name__})") from None


NOISE_FLOOR = 4.0  # the scale is never below this many times the frame's pixel noise


_CV_DTYPES = {np.dtype(t) for t in (np.uint8, np.int8, np.uint16, np.int16, np.int32, np.float32, np.float64)}


def _for_cv(img: np.ndarray) -> np.ndarray:
    """`img` as OpenCV takes it: 2-D, a dtype it knows (else float32), rows of contiguous pixels."""
    x = np.asarray(img)
    if x.dtype not in _CV_DTYPES:
        x = x.astype(np.float32)
    if x.ndim != 2 or x.strides[1] != x.itemsize:
        x = np.ascontiguousarray(x)
    return x


def pixel_noise(img: np.ndarray) -> float:
    """Robust per-pixel noise sigma: mean |horizontal difference| on every other row, times sqrt(pi)/2
    (exact for white Gaussian noise; edges barely move it, since they are few)."""
    x = _for_cv(img)[::2]
    if x.ndim != 2 or x.shape[1] < 2 or x.shape[0] == 0:
        return 0.0
    # |a - b| in the frame's own dtype (exact for unsigned and float frames), averaged in double precision
    return float(cv2.mean(cv2.absdiff(x[:, 1:], x[:, :-1]))[0]) * 0.886227


def frame_stats(img: np.ndarray, noise_floor: float = NOISE_FLOOR) -> tuple[float, float]:
    """Mean and scale of a whole frame: the statistics `normalize` uses.

    The scale is the frame's std, but never below `noise_floor` x its pixel noise: on a flat sky the std *is*
    the noise, and dividing by it alone would stretch the noise into target-sized spikes. Both terms scale
    with the frame, so 8- and 16-bit frames of one scene normalise the same. Computed by OpenCV in double
    precision on the frame as it is (a 640x512 uint8 frame: ~0.1 ms, a tenth of NumPy's float32 passes).
    """
    mean, std = (float(v[0][0]) for v in cv2.meanStdDev(_for_cv(img)))
    if noise_floor > 0:
        std = max(std, noise_floor * pixel_noise(img))
    return mean, max(std, 1e-3 * max(abs(mean), 1.0), 1e-6)


def normalize(img: np.ndarray, stats: tuple[float, float] | None = None, noise_floor: float = NOISE_FLOOR,
              out: np.ndarray | None = None) -> np.ndarray:
    """Per-frame standardisation to float32 with a noise floor on the scale (see `frame_stats`).

    `stats` (mean, scale) of the whole frame, when `img` is a part of it; `out`: a float32 array to write into. Recorded in checkpoints as
    preprocessing mode `standardize` with its `noise_floor` (0 for checkpoints from before the floor).
    """
    mean, std = stats if stats is not None else frame_stats(img, noise_floor)
    x = np.subtract(img, np.float32(mean), out=out, dtype=np.float32)
    x /= np.float32(std)
    return x


PREPROCESSING = {"mode": "standardize", "noise_floor": NOISE_FLOOR, "channels": 1, "pad_multiple": 32}


def checkpoint_noise_floor(meta: dict) -> float:
    """The noise floor a checkpoint was trained with (0: older checkpoints, plain standardisation)."""
    return float(meta.get("preprocessing", {}).get("noise_floor", 0.0))
