"""Synthetic targets rendered into real frames: sub-pixel anisotropic Gaussian spots (1-8 px) and soft-edged
extended blobs (8-64 px, near aircraft and birds), of either polarity."""
from __future__ import annotations

import numpy as np


def render_spot(shape: tuple[int, int], x: float, y: float, sigma_x: float, sigma_y: float,
                theta: float = 0.0, radius: float = 4.0) -> tuple[np.ndarray, tuple[slice, slice]]:
    """Unit-peak Gaussian spot centred at sub-pixel (x, y); returns the patch and where it goes."""
    h, w = shape
    r = int(np.ceil(radius * max(sigma_x, sigma_y))) + 1
    x0, x1 = max(0, int(np.floor(x)) - r), min(w, int(np.floor(x)) + r + 2)
    y0, y1 = max(0, int(np.floor(y)) - r), min(h, int(np.floor(y)) + r + 2)
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float64)
    dx, dy = xs - x, ys - y
    c, s = np.cos(theta), np.sin(theta)
    u, v = c * dx + s * dy, -s * dx + c * dy
    patch = np.exp(-0.5 * ((u / sigma_x) ** 2 + (v / sigma_y) ** 2))
    return patch, (slice(y0, y1), slice(x0, x1))


SCR_STD_FLOOR = 1.0  # grey levels: the least clutter std an SCR is measured against


def local_clutter(image: np.ndarray, x: float, y: float, inner: int = 4, outer: int = 10) -> tuple[float, float]:
    """Mean and std (floored at SCR_STD_FLOOR) of the square ring inner..outer px around (x, y).

    The project's one SCR definition, for training (`inject_targets`) and for the tracking sequences
    (`tracking.synth`): SCR = |mean of the target's 2-sigma core - ring mean| / ring std.
    """
    h, w = image.shape
    xi, yi = int(round(x)), int(round(y))
    y0, y1, x0, x1 = max(0, yi - outer), min(h, yi + outer + 1), max(0, xi - outer), min(w, xi + outer + 1)
    patch = image[y0:y1, x0:x1].astype(np.float64)
    ys, xs = np.mgrid[y0:y1, x0:x1]
    d = np.maximum(np.abs(xs - xi), np.abs(ys - yi))
    ring = patch[(d >= inner) & (d <= outer)]
    if ring.size == 0:
        return float(image.mean()), max(float(image.std()), SCR_STD_FLOOR)
    return float(ring.mean()), max(float(ring.std()), SCR_STD_FLOOR)


def render_blob(shape: tuple[int, int], x: float, y: float, half_w: float, half_h: float, theta: float,
                rng: np.random.Generator) -> tuple[np.ndarray, tuple[slice, slice]]:
    """An extended target: a filled ellipse with soft edges and a little internal texture, peak ~1."""
    h, w = shape
    r = int(np.ceil(max(half_w, half_h))) + 3
    x0, x1 = max(0, int(np.floor(x)) - r), min(w, int(np.floor(x)) + r + 2)
    y0, y1 = max(0, int(np.floor(y)) - r), min(h, int(np.floor(y)) + r + 2)
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float64)
    dx, dy = xs - x, ys - y
    c, s = np.cos(theta), np.sin(theta)
    u, v = (c * dx + s * dy) / half_w, (-s * dx + c * dy) / half_h
    rad = np.sqrt(u * u + v * v)
    edge = 1.5 / max(min(half_w, half_h), 1.0)  # about 1.5 px of soft edge
    patch = np.clip((1.0 - rad) / edge + 0.5, 0.0, 1.0)
    texture = 1.0 + 0.25 * rng.standard_normal(patch.shape) + 0.35 * np.cos(rad * rng.uniform(1, 4))
    return np.clip(patch * texture, 0, None) * (patch > 0), (slice(y0, y1), slice(x0, x1))


def inject_targets(image: np.ndarray, rng: np.random.Generator, count: int, scr: tuple[float, float] = (2.0, 12.0),
                   sigma: tuple[float, float] = (0.5, 2.0), margin: int = 8, extended: float = 0.0,
                   dark: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Add `count` targets to a float copy of `image`; returns (image, centroids (N, 2), boxes (N, 4)).

    Each target is a Gaussian spot, or with probability `extended` a blob 8-64 px across; with probability
    `dark` it is darker than its background (a black-hot camera, or a target colder than the sky).
    """
    out = image.astype(np.float32).copy()
    h, w = out.shape
    cents, boxes = [], []
    for _ in range(count):
        big = rng.random() < extended
        x, y = rng.uniform(margin, w - 1 - margin), rng.uniform(margin, h - 1 - margin)
        mean, std = local_clutter(out, x, y)
        if big:
            half = rng.uniform(4, 32)
            patch, where = render_blob(out.shape, x, y, half, half * rng.uniform(0.35, 1.0), rng.uniform(0, np.pi), rng)
            core = patch[patch >= 0.5]
        else:
            sx, sy = rng.uniform(*sigma), rng.uniform(*sigma)
            patch, where = render_spot(out.shape, x, y, sx, sy, rng.uniform(0, np.pi))
            core = patch[patch >= np.exp(-2.0)]  # SCR is measured on the 2-sigma core, against the ring
        if not patch.size or patch.max() <= 0:
            continue
        amp = rng.uniform(*scr) * std / (core.mean() if core.size else 1.0)
        sign = -1.0 if rng.random() < dark else 1.0
        out[where] += sign * amp * patch
        ys, xs = np.nonzero(patch > 0.25 * patch.max())
        boxes.append([xs.min() + where[1].start, ys.min() + where[0].start, xs.max() + where[1].start, ys.max() + where[0].start])
        if big:  # the intensity centroid of the rendered blob (its texture moves it off the ellipse centre)
            gy, gx = np.mgrid[where[0], where[1]]
            cents.append([float((gx * patch).sum() / patch.sum()), float((gy * patch).sum() / patch.sum())])
        else:
            cents.append([x, y])
    return out, np.asarray(cents, float).reshape(-1, 2), np.asarray(boxes, float).reshape(-1, 4)


def flat_sky(shape: tuple[int, int], rng: np.random.Generator, grey: float = 1.0) -> np.ndarray:
    """A target-free plain sky: a uniform level with a faint gradient and white or slightly correlated noise."""
    from scipy import ndimage

    h, w = shape
    level = rng.uniform(30, 220) * grey
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    sky = level + rng.uniform(-6, 6) * grey * (xx / w) + rng.uniform(-6, 6) * grey * (yy / h)
    noise = rng.standard_normal((h, w)).astype(np.float32)
    if rng.random() < 0.5:
        noise = ndimage.gaussian_filter(noise, rng.uniform(0.5, 1.2))
        noise /= max(float(noise.std()), 1e-6)
    return (sky + noise * rng.uniform(0.5, 4.0) * grey).astype(np.float32)


# Scenes of ../shared/data/ir-backgrounds (file name prefixes) kept out of every training mix, negative set and
# threshold choice: the dim-target benchmark (`benchmarks/track_synth.py`) renders its sequences on them.
BENCHMARK_SCENES = ("S3", "TH")


def background_scene(path) -> str:
    """The scene a background file belongs to: its name up to the first '_' or '-' ('S3_17.png' -> 'S3')."""
    import re

    from pathlib import Path

    return re.split(r"[_-]", Path(path).stem, maxsplit=1)[0]


def split_backgrounds(files) -> tuple[list, list]:
    """(training, benchmark) background files, split by scene (`BENCHMARK_SCENES`)."""
    files = sorted(files)
    bench = [f for f in files if background_scene(f) in BENCHMARK_SCENES]
    return [f for f in files if background_scene(f) not in BENCHMARK_SCENES], bench


def _shifted(bg: np.ndarray, x: float, y: float, w: int, h: int) -> np.ndarray:
    """The (h, w) window of `bg` at sub-pixel top-left (x, y), bilinear."""
    ix, iy = int(np.floor(x)), int(np.floor(y))
    ax, ay = np.float32(x - ix), np.float32(y - iy)
    c = bg[iy:iy + h + 1, ix:ix + w + 1]
    return (1 - ay) * ((1 - ax) * c[:-1, :-1] + ax * c[:-1, 1:]) + ay * ((1 - ax) * c[1:, :-1] + ax * c[1:, 1:])


def moving_sequence(bg: np.ndarray, rng: np.random.Generator, size: int, frames: int, grey: float = 1.0,
                    extended: float = 0.15, dark: float = 0.15, scr: tuple[float, float] = (2.0, 10.0)
                    ) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """A short camera sequence for training the motion input: a `size` x `size` window drifting over the
    background `bg` (a still camera a third of the time), 0-4 targets that move (0.2-2.5 px/frame), stop,
    hover or approach (grow), bright or dark, 0-4 hot pixels fixed on the sensor, sensor noise and, for some
    sequences, JPEG blocking in every frame. Returns (frames as the camera would deliver them, the last frame's
    target centroids (N, 2) and boxes (N, 4))."""
    import io

    from PIL import Image

    top = 255.0 * grey if bg.dtype == np.uint8 or grey == 1.0 else 65535.0
    bg = bg.astype(np.float32)
    still = rng.random() < 0.35
    v = np.zeros(2) if still else rng.uniform(0.1, 1.5) * np.array([np.cos(a := rng.uniform(0, 2 * np.pi)), np.sin(a)])
    wobble = rng.uniform(0, 0.3, 2) * (not still)
    t = np.arange(frames)[:, None]
    path = t * v + wobble * np.sin(t / rng.uniform(3, 9) + rng.uniform(0, 6, 2))
    need = size + np.ptp(path, axis=0) + 4
    scale = max(need[0] / bg.shape[1], need[1] / bg.shape[0], 1.0)
    if scale > 1.0:
        bg = np.asarray(Image.fromarray(bg, mode="F").resize(
            (int(np.ceil(bg.shape[1] * scale)), int(np.ceil(bg.shape[0] * scale))), Image.BILINEAR))
    x0 = rng.uniform(1 - path[:, 0].min(), bg.shape[1] - size - 2 - path[:, 0].max())
    y0 = rng.uniform(1 - path[:, 1].min(), bg.shape[0] - size - 2 - path[:, 1].max())
    noise = rng.uniform(0.3, 2.0) * grey
    jpeg = int(rng.integers(55, 95)) if rng.random() < 0.3 else 0
    hot = rng.integers(4, size - 4, (int(rng.integers(0, 5)), 2))
    hot_amp = rng.uniform(20, 120, len(hot)) * grey
    first = _shifted(bg, x0, y0, size, size)
    targets = []
    for _ in range(int(rng.integers(0, 5))):
        big = rng.random() < extended
        p = rng.uniform(12, size - 12, 2)
        speed = 0.0 if rng.random() < 0.12 else rng.uniform(0.2, 2.5)
        d = speed * np.array([np.cos(a := rng.uniform(0, 2 * np.pi)), np.sin(a)])
        stop = int(rng.integers(frames // 2, frames)) if rng.random() < 0.15 else frames
        grow = rng.uniform(1.0, 1.8) if rng.random() < 0.2 else 1.0
        _, std = local_clutter(first, *p)
        targets.append(dict(p=p, d=d, stop=stop, grow=grow, big=big, half=rng.uniform(4, 20),
                            aspect=rng.uniform(0.35, 1.0), sx=rng.uniform(0.5, 2.0), sy=rng.uniform(0.5, 2.0),
                            theta=rng.uniform(0, np.pi), sign=-1.0 if rng.random() < dark else 1.0,
                            scr=rng.uniform(*scr), std=std))
    out, cents, boxes = [], [], []
    for k in range(frames):
        img = _shifted(bg, x0 + path[k, 0], y0 + path[k, 1], size, size)
        img = img + rng.normal(0, noise, img.shape).astype(np.float32)
        cents, boxes = [], []
        for tg in targets:
            moved = min(k, tg["stop"])
            x, y = tg["p"] + moved * tg["d"]
            if not (6 <= x <= size - 7 and 6 <= y <= size - 7):
                continue
            g = 1.0 + (tg["grow"] - 1.0) * k / max(1, frames - 1)
            if tg["big"]:
                patch, where = render_blob(img.shape, x, y, tg["half"] * g, tg["half"] * g * tg["aspect"], tg["theta"],
                                           np.random.default_rng(7))
                core = patch[patch >= 0.5]
            else:
                patch, where = render_spot(img.shape, x, y, tg["sx"] * g, tg["sy"] * g, tg["theta"])
                core = patch[patch >= np.exp(-2.0)]
            if not patch.size or patch.max() <= 0:
                continue
            amp = tg["scr"] * tg["std"] / (core.mean() if core.size else 1.0)
            img[where] += tg["sign"] * amp * patch
            ys, xs = np.nonzero(patch > 0.25 * patch.max())
            boxes.append([xs.min() + where[1].start, ys.min() + where[0].start, xs.max() + where[1].start,
                          ys.max() + where[0].start])
            if tg["big"]:
                gy, gx = np.mgrid[where[0], where[1]]
                cents.append([float((gx * patch).sum() / patch.sum()), float((gy * patch).sum() / patch.sum())])
            else:
                cents.append([x, y])
        if len(hot):
            img[hot[:, 1], hot[:, 0]] += hot_amp
        img = np.clip(np.rint(img), 0, top)
        if jpeg:
            buf = io.BytesIO()
            Image.fromarray((img / grey).astype(np.uint8)).save(buf, "JPEG", quality=jpeg)
            img = np.asarray(Image.open(buf), np.float32) * grey
        out.append(img.astype(np.uint16 if grey > 1 else np.uint8))
    return out, np.asarray(cents, float).reshape(-1, 2), np.asarray(boxes, float).reshape(-1, 4)
