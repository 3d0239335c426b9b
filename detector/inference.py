"""Running a model on frames: normalise, pad, forward, extract peaks, decode to `Detections`."""
from __future__ import annotations

import functools
import time
from typing import Callable

import numpy as np
import torch

from .detections import Detections
from .encoding import to_pixel
from .imageio import NOISE_FLOOR, normalize, to_grey
from .peaks import extract_peaks, extract_peaks_cupy, extract_peaks_numpy


def model_input(frame: np.ndarray, motion: np.ndarray | None = None, channels: int = 1,
                noise_floor: float = NOISE_FLOOR) -> np.ndarray:
    """What the model sees of one frame: (channels, H, W) float32. Channel 0 is the normalised frame; a
    motion model's channel 1 is its motion residual (`detector.motion`) normalised the same way, or zeros
    when there is none (a still image, the first frames of a stream, a slew)."""
    grey = to_grey(frame)
    if channels == 1:
        return normalize(grey, noise_floor=noise_floor)[None]
    out = np.empty((channels,) + grey.shape, np.float32)
    normalize(grey, noise_floor=noise_floor, out=out[0])
    if motion is not None:
        normalize(motion, noise_floor=noise_floor, out=out[1])
    else:
        out[1] = 0.0
    return out


def to_batch(frames: list[np.ndarray], multiple: int, noise_floor: float = NOISE_FLOOR,
             motion: list[np.ndarray | None] | None = None, channels: int = 1
             ) -> tuple[torch.Tensor, list[tuple[int, int]]]:
    """Model inputs of the frames (`model_input`), padded bottom/right (never shifting content) to a common
    multiple of `multiple`."""
    motion = motion if motion is not None else [None] * len(frames)
    arrays = [model_input(f, m, channels, noise_floor) for f, m in zip(frames, motion)]
    sizes = [a.shape[1:] for a in arrays]
    h = max(s[0] for s in sizes)
    w = max(s[1] for s in sizes)
    h, w = -(-h // multiple) * multiple, -(-w // multiple) * multiple
    if len(arrays) == 1 and arrays[0].shape[1:] == (h, w):  # one frame, no padding: the batch is a view of it
        return torch.from_numpy(arrays[0][None]), sizes
    batch = np.zeros((len(arrays), channels, h, w), np.float32)
    for i, a in enumerate(arrays):
        batch[i, :, : a.shape[1], : a.shape[2]] = a
    return torch.from_numpy(batch), sizes


def find_peaks(heat: torch.Tensor, threshold: float, top_k: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Peaks with the fastest path for the heatmap's device: NumPy on a CPU (17x faster than torch for a
    640x512 frame), the CuPy kernel on CUDA when CuPy is installed, else torch (`benchmarks/peaks_speed.py`)."""
    if heat.device.type == "cpu":
        return extract_peaks_numpy(heat.numpy(), threshold, top_k)
    if heat.device.type == "cuda" and _have_cupy():
        return extract_peaks_cupy(heat, threshold, top_k)
    return extract_peaks(heat, threshold, top_k)


def inside_stronger_box(x: np.ndarray, y: np.ndarray, boxes: np.ndarray, scores: np.ndarray,
                        min_score: float) -> np.ndarray:
    """Keep-mask that drops a peak lying inside the box of a stronger kept peak scoring at least `min_score`
    (the operating threshold: a background peak's box is untrained and may be anything): an extended target
    (a near aircraft) gives one detection at its centre, not one more per bright part of its outline.

    Only the few peaks at or above `min_score` can suppress, and they all rank above the others: they are
    settled one by one, strongest first, then every weaker peak at once against the kept ones."""
    keep = np.ones(len(x), bool)
    strong = np.flatnonzero(scores >= min_score)
    if len(x) < 2 or not len(strong):
        return keep
    strong = strong[np.argsort(-scores[strong], kind="stable")]  # ties: lower index first, as ranked overall
    inside = ((x[None, :] >= boxes[strong, None, 0]) & (x[None, :] <= boxes[strong, None, 2])
              & (y[None, :] >= boxes[strong, None, 1]) & (y[None, :] <= boxes[strong, None, 3]))
    inside[np.arange(len(strong)), strong] = False  # (rows: suppressors, columns: every peak)
    kept = np.ones(len(strong), bool)
    for i in range(1, len(strong)):
        kept[i] = not inside[:i][kept[:i], strong[i]].any()
    weak = np.ones(len(x), bool)
    weak[strong] = False
    keep[strong] = kept
    keep[weak] = ~inside[kept][:, weak].any(axis=0)
    return keep


def decode(outputs: dict[str, torch.Tensor], sizes: list[tuple[int, int]], stride: int, threshold: float,
           top_k: int = 100, suppress_from: float | None = None) -> list[Detections]:
    """Peaks of each heatmap -> `Detections` (centroids: cell + offset; the predicted ltrb box extents), in
    pixels, one per frame; peaks in padding dropped."""
    heat = outputs["heatmap"].float()
    if heat.device.type == "cpu":  # peaks of the logits (sigmoid is monotonic); only the peaks' scores are
        # squashed: no pass over the whole map, and no torch kernel waking its thread pool per frame
        peaks = [(cells, _sigmoid(scores)) for cells, scores in
                 extract_peaks_numpy(heat.numpy(), _logit(threshold), top_k)]
    else:
        heat = heat.sigmoid()
        peaks = find_peaks(heat, threshold, top_k)
    results = []
    for b, ((cells, scores), (h, w)) in enumerate(zip(peaks, sizes)):
        if len(cells) and heat.device.type == "cpu":
            off = outputs["offset"][b].numpy()[:, cells[:, 0], cells[:, 1]].T.astype(np.float32)
            ltrb = outputs["ltrb"][b].numpy()[:, cells[:, 0], cells[:, 1]].T.astype(np.float32)
        elif len(cells):  # gathered on the device: only the peaks' values cross to the host
            idx = torch.as_tensor(cells, device=heat.device)
            off = outputs["offset"][b][:, idx[:, 0], idx[:, 1]].T.float().cpu().numpy()
            ltrb = outputs["ltrb"][b][:, idx[:, 0], idx[:, 1]].T.float().cpu().numpy()
        else:
            off, ltrb = np.zeros((0, 2), np.float32), np.zeros((0, 4), np.float32)
        off = np.clip(off, -0.5, 0.5)
        x = to_pixel(cells[:, 1] + off[:, 0], stride)
        y = to_pixel(cells[:, 0] + off[:, 1], stride)
        keep = (x >= -0.5) & (x <= w - 0.5) & (y >= -0.5) & (y <= h - 0.5)
        dets = Detections(np.stack([x[keep], y[keep]], 1), ltrb[keep] * stride, scores[keep])
        x, y = dets.xy.T.astype(np.float64)
        results.append(dets[inside_stronger_box(x, y, dets.xyxy, dets.score, threshold if suppress_from is None
                                                else suppress_from)])
    return results


def run(forward: Callable[[torch.Tensor], dict[str, torch.Tensor]], frames: list[np.ndarray], stride: int,
        multiple: int, threshold: float, device: torch.device, top_k: int = 100, timings: dict | None = None,
        noise_floor: float = NOISE_FLOOR, suppress_from: float | None = None,
        motion: list[np.ndarray | None] | None = None, channels: int = 1) -> list[Detections]:
    """Forward (a model or a `runtime` runner) + decode for a batch of frames of any sizes (`motion`: each
    frame's motion residual or None, for a model of 2 input `channels`)."""
    t0 = time.perf_counter()
    batch, sizes = to_batch(frames, multiple, noise_floor, motion, channels)
    with torch.inference_mode():
        outputs = forward(batch.to(device))
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t1 = time.perf_counter()
        decoded = decode(outputs, sizes, stride, threshold, top_k, suppress_from)
    if timings is not None:
        timings["inference"] = t1 - t0
        timings["peaks"] = time.perf_counter() - t1
    return decoded


def _logit(p: float) -> float:
    """The logit of a score threshold; 1 - 1e-7 at most (float32 sigmoids round to 1.0 from about there)."""
    if p <= 0:
        return -np.inf
    p = min(p, 1 - 1e-7)
    return float(np.log(p / (1 - p)))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return (1 / (1 + np.exp(-x.astype(np.float64)))).astype(np.float32)


@functools.cache
def _have_cupy() -> bool:
    try:
        import cupy  # noqa: F401
    except Exception:  # noqa: BLE001 - any import failure means: use the torch path
        return False
    return True

