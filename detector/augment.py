"""Training samples: random crops, flips, scale jitter and polarity inversion of real frames drawn from several
labelled sources by weight, plus synthetic targets (points and extended blobs, bright or dark) injected into
target-free real backgrounds and plain noisy skies (extra positives and hard negatives)."""
from __future__ import annotations

from pathlib import Path

import io

import numpy as np
import torch
from PIL import Image

from .datasets import Sample
from .encoding import encode_targets
from .imageio import IMAGE_SUFFIXES, frame_stats, load_grey, normalize
from .synthetic import flat_sky, inject_targets


def _resize(image: np.ndarray, scale: float) -> np.ndarray:
    h, w = image.shape
    size = (max(8, int(round(w * scale))), max(8, int(round(h * scale))))
    return np.asarray(Image.fromarray(image.astype(np.float32), mode="F").resize(size, Image.BILINEAR))


def _sensor_effects(image: np.ndarray, rng: np.random.Generator, grey: float) -> np.ndarray:
    """Sensor noise and, sometimes, the softening and blocking of a lossy codec (as on a compressed stream)."""
    if rng.random() < 0.6:
        image = image + rng.normal(0, rng.uniform(0.3, 2.5) * grey, image.shape).astype(np.float32)
    if rng.random() < 0.35:
        top = 255.0 * grey
        buf = io.BytesIO()
        Image.fromarray(np.clip(image / grey, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=int(rng.integers(60, 96)))
        image = np.asarray(Image.open(buf), np.float32) * grey
        image = np.minimum(image, top)
    return image


def _scale_targets(cents: np.ndarray, boxes: np.ndarray, sx: float, sy: float) -> tuple[np.ndarray, np.ndarray]:
    # pixel centre x maps to (x + 0.5) * s - 0.5; inclusive box [x0, x1] spans borders x0 - 0.5 .. x1 + 0.5
    c = np.stack([(cents[:, 0] + 0.5) * sx - 0.5, (cents[:, 1] + 0.5) * sy - 0.5], 1)
    b = np.stack([boxes[:, 0] * sx, boxes[:, 1] * sy, (boxes[:, 2] + 1) * sx - 1, (boxes[:, 3] + 1) * sy - 1], 1)
    return c, b


class TrainSet(torch.utils.data.Dataset):
    """Endless random training crops (an epoch is `length` of them).

    `sources`: (samples, weight) pairs; a real sample is drawn from a source with probability proportional to
    its weight. `synthetic_share` of the samples are synthetic targets in target-free backgrounds (a quarter of
    those on a plain noisy sky). `invert`: share of samples with the polarity flipped (black-hot cameras).
    """

    def __init__(self, sources: list[tuple[list[Sample], float]], stride: int, crop: int = 192, length: int = 1024,
                 backgrounds: str | Path | None = None, synthetic_share: float = 0.3,
                 scale: tuple[float, float] = (0.8, 1.25), seed: int = 0, invert: float = 0.25,
                 extended: float = 0.2, dark: float = 0.15) -> None:
        sources = [(s, float(w)) for s, w in sources if len(s) and w > 0]
        self.sources = [s for s, _ in sources]
        weights = np.array([w for _, w in sources], float)
        self.source_p = weights / weights.sum() if len(weights) else weights
        self.stride, self.crop, self.length = stride, crop, length
        self.scale, self.seed, self.epoch = scale, seed, 0
        self.invert, self.extended, self.dark = invert, extended, dark
        self.backgrounds = []
        if backgrounds and Path(backgrounds).is_dir():
            self.backgrounds = [load_grey(p) for p in sorted(Path(backgrounds).iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES]
        # a crop of a background is normalised with the whole frame's statistics, as at inference
        self.background_stats = [frame_stats(b) for b in self.backgrounds]
        self.synthetic_share = synthetic_share if (self.backgrounds or not self.sources) else 0.0

    def __len__(self) -> int:
        return self.length

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _synthetic(self, rng: np.random.Generator):
        n = int(rng.integers(0, 5))
        if self.backgrounds and rng.random() < 0.75:
            k = int(rng.integers(len(self.backgrounds)))
            bg, stats = self.backgrounds[k], self.background_stats[k]
            y0 = rng.integers(0, max(1, bg.shape[0] - 2 * self.crop))
            x0 = rng.integers(0, max(1, bg.shape[1] - 2 * self.crop))
            region = bg[y0:y0 + 2 * self.crop, x0:x0 + 2 * self.crop].astype(np.float32)
            grey = 257.0 if bg.dtype == np.uint16 else 1.0
            if rng.random() < 0.6:  # sensor noise under the targets, so SCR is measured against it
                region = region + rng.normal(0, rng.uniform(0.3, 2.0) * grey, region.shape).astype(np.float32)
        else:  # a plain sky: its own statistics, like a whole flat frame at inference
            grey, stats = 1.0, None
            region = flat_sky((2 * self.crop, 2 * self.crop), rng)
            n = int(rng.integers(0, 2))
        image, cents, boxes = inject_targets(region, rng, n, extended=self.extended, dark=self.dark)
        return image, cents, boxes, stats, grey

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, self.epoch, index])
        if rng.random() < self.synthetic_share:
            image, cents, boxes, stats, grey = self._synthetic(rng)
        else:
            stats = None
            src = self.sources[rng.choice(len(self.sources), p=self.source_p)]
            s = src[rng.integers(len(src))]
            grey = 257.0 if s.image.dtype == np.uint16 else 1.0
            image, cents, boxes = s.image.astype(np.float32), s.centroids, s.boxes
            if rng.random() < 0.3:  # extra synthetic targets in a real scene
                image, c2, b2 = inject_targets(image, rng, int(rng.integers(1, 3)), extended=self.extended, dark=self.dark)
                cents, boxes = np.concatenate([cents, c2]), np.concatenate([boxes, b2])
        image = normalize(_sensor_effects(image, rng, grey), stats)
        if rng.random() < self.invert:
            image = -image
        k = rng.uniform(*self.scale)
        if abs(k - 1) > 0.02:
            h, w = image.shape
            image = _resize(image, k)
            cents, boxes = _scale_targets(cents, boxes, image.shape[1] / w, image.shape[0] / h)
        if rng.random() < 0.5:
            w = image.shape[1]
            image = image[:, ::-1]
            cents = np.stack([w - 1 - cents[:, 0], cents[:, 1]], 1)
            boxes = np.stack([w - 1 - boxes[:, 2], boxes[:, 1], w - 1 - boxes[:, 0], boxes[:, 3]], 1)
        if rng.random() < 0.5:
            h = image.shape[0]
            image = image[::-1]
            cents = np.stack([cents[:, 0], h - 1 - cents[:, 1]], 1)
            boxes = np.stack([boxes[:, 0], h - 1 - boxes[:, 3], boxes[:, 2], h - 1 - boxes[:, 1]], 1)
        # random crop (zero padding = the frame mean after standardisation)
        c = self.crop
        h, w = image.shape
        y0 = int(rng.integers(0, max(1, h - c + 1)))
        x0 = int(rng.integers(0, max(1, w - c + 1)))
        if len(cents) and rng.random() < 0.7:  # most crops contain a target
            tx, ty = cents[rng.integers(len(cents))]
            x0 = int(np.clip(tx - rng.uniform(8, c - 8), 0, max(0, w - c)))
            y0 = int(np.clip(ty - rng.uniform(8, c - 8), 0, max(0, h - c)))
        crop = np.zeros((c, c), np.float32)
        part = image[y0:y0 + c, x0:x0 + c]
        crop[: part.shape[0], : part.shape[1]] = part
        cents = cents - [x0, y0]
        boxes = boxes - [x0, y0, x0, y0]
        inside = (cents[:, 0] >= 0) & (cents[:, 0] <= part.shape[1] - 1) & (cents[:, 1] >= 0) & (cents[:, 1] <= part.shape[0] - 1)
        t = encode_targets(cents[inside], boxes[inside], (c // self.stride, c // self.stride), self.stride)
        out = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in t.items()}
        out["image"] = torch.from_numpy(np.ascontiguousarray(crop))[None]
        return out
