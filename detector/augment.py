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
from .synthetic import flat_sky, inject_targets, moving_sequence, split_backgrounds


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

    `channels=2` trains the motion input (`detector.motion`): video samples carry their residual (blanked for
    `blank_motion` of them, so still images and a stream's first frames work), `moving_share` of the samples
    are short moving sequences rendered on the backgrounds (`synthetic.moving_sequence`) and run through
    ego-motion and the motion background as the pipeline does, still images get a blank channel, and
    `spikes` of the still samples get single-pixel spikes (hot pixels, stars) that are not targets.
    """

    def __init__(self, sources: list[tuple[list[Sample], float]], stride: int, crop: int = 192, length: int = 1024,
                 backgrounds: str | Path | list | None = None, synthetic_share: float = 0.3,
                 scale: tuple[float, float] = (0.8, 1.25), seed: int = 0, invert: float = 0.25,
                 extended: float = 0.2, dark: float = 0.15, channels: int = 1, moving_share: float = 0.25,
                 blank_motion: float = 0.2, spikes: float = 0.3) -> None:
        sources = [(s, float(w)) for s, w in sources if len(s) and w > 0]
        self.sources = [s for s, _ in sources]
        weights = np.array([w for _, w in sources], float)
        self.source_p = weights / weights.sum() if len(weights) else weights
        self.stride, self.crop, self.length = stride, crop, length
        self.scale, self.seed, self.epoch = scale, seed, 0
        self.invert, self.extended, self.dark = invert, extended, dark
        self.channels, self.blank_motion, self.spikes = channels, blank_motion, spikes
        self.backgrounds = [load_grey(p) for p in background_files(backgrounds)]
        # a crop of a background is normalised with the whole frame's statistics, as at inference
        self.background_stats = [frame_stats(b) for b in self.backgrounds]
        self.synthetic_share = synthetic_share if (self.backgrounds or not self.sources) else 0.0
        self.moving_share = moving_share if channels > 1 else 0.0

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

    def _moving(self, rng: np.random.Generator):
        """The last frame of a rendered moving sequence, its motion residual and targets."""
        if self.backgrounds and rng.random() < 0.8:
            bg = self.backgrounds[int(rng.integers(len(self.backgrounds)))]
        else:
            bg = flat_sky((2 * self.crop + 64, 2 * self.crop + 64), rng)
        grey = 257.0 if bg.dtype == np.uint16 else 1.0
        frames, cents, boxes = moving_sequence(bg, rng, 2 * self.crop, int(rng.integers(12, 30)), grey,
                                               extended=self.extended, dark=self.dark)
        return frames[-1].astype(np.float32), sequence_residuals(frames)[-1], cents, boxes, grey

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, self.epoch, index])
        motion, stats, effects = None, None, True
        r = rng.random()
        if r < self.moving_share:
            image, motion, cents, boxes, grey = self._moving(rng)
            effects = False  # noise and compression are in the rendered frames, under the residual too
        elif r < self.moving_share + self.synthetic_share:
            image, cents, boxes, stats, grey = self._synthetic(rng)
        else:
            src = self.sources[rng.choice(len(self.sources), p=self.source_p)]
            s = src[rng.integers(len(src))]
            grey = 257.0 if s.image.dtype == np.uint16 else 1.0
            image, cents, boxes = s.image.astype(np.float32), s.centroids, s.boxes
            if s.motion is not None and self.channels > 1:
                motion, effects = s.motion, False
            elif rng.random() < 0.3:  # extra synthetic targets in a real still scene
                image, c2, b2 = inject_targets(image, rng, int(rng.integers(1, 3)), extended=self.extended, dark=self.dark)
                cents, boxes = np.concatenate([cents, c2]), np.concatenate([boxes, b2])
        if self.channels > 1 and motion is None and rng.random() < self.spikes:
            image = add_spikes(image, rng, grey)
        if motion is not None and rng.random() < self.blank_motion:
            motion = None
        layers = [normalize(_sensor_effects(image, rng, grey) if effects else image, stats)]
        if self.channels > 1:
            layers.append(normalize(motion) if motion is not None else np.zeros_like(layers[0]))
        if rng.random() < self.invert:
            layers = [-x for x in layers]
        k = rng.uniform(*self.scale)
        if abs(k - 1) > 0.02:
            h, w = layers[0].shape
            layers = [_resize(x, k) for x in layers]
            cents, boxes = _scale_targets(cents, boxes, layers[0].shape[1] / w, layers[0].shape[0] / h)
        if rng.random() < 0.5:
            w = layers[0].shape[1]
            layers = [x[:, ::-1] for x in layers]
            cents = np.stack([w - 1 - cents[:, 0], cents[:, 1]], 1)
            boxes = np.stack([w - 1 - boxes[:, 2], boxes[:, 1], w - 1 - boxes[:, 0], boxes[:, 3]], 1)
        if rng.random() < 0.5:
            h = layers[0].shape[0]
            layers = [x[::-1] for x in layers]
            cents = np.stack([cents[:, 0], h - 1 - cents[:, 1]], 1)
            boxes = np.stack([boxes[:, 0], h - 1 - boxes[:, 3], boxes[:, 2], h - 1 - boxes[:, 1]], 1)
        # random crop (zero padding = the frame mean after standardisation)
        c = self.crop
        h, w = layers[0].shape
        y0 = int(rng.integers(0, max(1, h - c + 1)))
        x0 = int(rng.integers(0, max(1, w - c + 1)))
        if len(cents) and rng.random() < 0.7:  # most crops contain a target
            tx, ty = cents[rng.integers(len(cents))]
            x0 = int(np.clip(tx - rng.uniform(8, c - 8), 0, max(0, w - c)))
            y0 = int(np.clip(ty - rng.uniform(8, c - 8), 0, max(0, h - c)))
        crop = np.zeros((len(layers), c, c), np.float32)
        for i, x in enumerate(layers):
            part = x[y0:y0 + c, x0:x0 + c]
            crop[i, : part.shape[0], : part.shape[1]] = part
        ph, pw = min(c, h - y0), min(c, w - x0)
        cents = cents - [x0, y0]
        boxes = boxes - [x0, y0, x0, y0]
        inside = (cents[:, 0] >= 0) & (cents[:, 0] <= pw - 1) & (cents[:, 1] >= 0) & (cents[:, 1] <= ph - 1)
        t = encode_targets(cents[inside], boxes[inside], (c // self.stride, c // self.stride), self.stride)
        out = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in t.items()}
        out["image"] = torch.from_numpy(crop)
        return out


def background_files(backgrounds: str | Path | list | None) -> list[Path]:
    """Target-free background images: a folder's training scenes (`synthetic.split_backgrounds`; never the
    benchmark's), or an explicit list of files."""
    if not backgrounds:
        return []
    if isinstance(backgrounds, (list, tuple)):
        return [Path(p) for p in backgrounds]
    folder = Path(backgrounds)
    if not folder.is_dir():
        return []
    return split_backgrounds(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[0]


def add_spikes(image: np.ndarray, rng: np.random.Generator, grey: float = 1.0) -> np.ndarray:
    """1-5 single-pixel spikes (hot pixels, stars) 15-120 grey levels above the frame: not targets."""
    out = image.copy()
    h, w = out.shape
    n = int(rng.integers(1, 6))
    ys, xs = rng.integers(0, h, n), rng.integers(0, w, n)
    out[ys, xs] += rng.uniform(15, 120, n).astype(np.float32) * grey
    return out


def sequence_residuals(frames: list[np.ndarray]) -> list[np.ndarray | None]:
    """Each frame's motion residual with the scene offsets ego-motion measures, as the pipeline computes them."""
    from tracking.egomotion import SceneMotion

    from .motion import residuals

    scene = SceneMotion()
    return residuals(frames, [scene.update(f) for f in frames])
