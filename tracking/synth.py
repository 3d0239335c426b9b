"""Semi-synthetic tiny-target sequences: moving sub-pixel Gaussian spots rendered into real IR backgrounds.

Each target gets a signal-to-clutter ratio, the project's one definition (`detector.synthetic.local_clutter`):
SCR = |mean_target - mean_ring| / std_ring, measured on the noisy background frame around it: target = pixels
inside its 2-sigma ellipse (the extent of its gt box, 4 sigma wide), ring = the square ring 4-10 px around it,
std floored at 1 grey level. Its amplitude is set per frame to hit the target's SCR (the peak then stands
about 2.3 x SCR ring stds above the ring mean), and the SCR
actually realised in the 8-bit frame is written as the 10th column of `gt/gt.txt`. Frames drift with a smooth platform
motion, get Gaussian sensor noise and a few hot pixels (fixed on the sensor, not in the gt).
Output: MOTChallenge layout (`img1/000001.png`, `gt/gt.txt`, `seqinfo.ini`) plus `video.mp4` (H.264).

    python -m tracking.synth --out runs/synth/seq1 --seed 1 --frames 300 --targets 4
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from detector.data_root import data_root
from detector.exit_status import ExitStatus
from detector.imageio import IMAGE_SUFFIXES, image_to_grey
from detector.synthetic import local_clutter, render_spot, split_backgrounds

from .motchallenge import MotRows, write_gt, write_seqinfo
from .sequences import ArraySequence, SequenceError

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_BACKGROUNDS = data_root() / "ir-backgrounds"  # $ITD_DATA/ir-backgrounds


class SynthConfig(BaseModel):
    """Parameters of one generated sequence."""

    model_config = ConfigDict(extra="forbid")

    seed: int = Field(0, description="Random seed; the same seed and parameters give the same sequence.")
    frames: int = Field(300, ge=2, le=100000, description="Number of frames.")
    targets: int = Field(4, ge=0, le=100, description="Number of targets over the sequence.")
    scr_min: float = Field(3.0, gt=0, le=100, description="Lowest target SCR.")
    scr_max: float = Field(10.0, gt=0, le=100, description="Highest target SCR.")
    width: int = Field(640, ge=32, le=8192, description="Frame width, px.")
    height: int = Field(512, ge=32, le=8192, description="Frame height, px.")
    fps: float = Field(25.0, gt=0, le=1000, description="Frame rate written to seqinfo.ini and the video.")
    background: Optional[str] = Field(None, description="Background image or folder (default: shared folder).")
    speed_min: float = Field(0.5, ge=0, le=50, description="Slowest target speed, px/frame.")
    speed_max: float = Field(3.0, ge=0, le=50, description="Fastest target speed, px/frame.")
    sigma_min: float = Field(0.5, gt=0, le=10, description="Smallest spot sigma, px.")
    sigma_max: float = Field(1.5, gt=0, le=10, description="Largest spot sigma, px.")
    drift: float = Field(0.5, ge=0, le=10, description="Peak platform drift speed, px/frame.")
    noise: float = Field(1.0, ge=0, le=50, description="Std of the Gaussian sensor noise, grey levels.")
    hot_pixels: int = Field(2, ge=0, le=1000, description="Hot pixels (static on the sensor, not targets).")
    enter_fraction: float = Field(0.5, ge=0, le=1, description="Share of targets that enter after frame 1.")

    @model_validator(mode="after")
    def _check(self) -> "SynthConfig":
        for lo, hi in (("scr_min", "scr_max"), ("speed_min", "speed_max"), ("sigma_min", "sigma_max")):
            if getattr(self, lo) > getattr(self, hi):
                raise ValueError(f"{lo} must not exceed {hi}")
        return self


def background_files(background: Optional[str]) -> list[Path]:
    """The background images to draw from: a file, the images in a folder, or by default the benchmark scenes
    of the shared folder (`detector.synthetic.BENCHMARK_SCENES`: never in a detector's training mix)."""
    p = Path(background) if background else DEFAULT_BACKGROUNDS
    if background is None and not p.is_dir():
        raise SequenceError(f"{p}: default background folder absent; pass --background PATH_OR_DIR")
    if p.is_file():
        return [p]
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        if background is None:
            files = split_backgrounds(files)[1]
        if files:
            return files
        raise SequenceError(f"{p}: no images in the background folder")
    raise SequenceError(f"{p}: background not found")


def _drift_path(cfg: SynthConfig, rng: np.random.Generator) -> np.ndarray:
    """(T, 2) smooth platform offset in px: one sinusoid per axis with peak speed <= cfg.drift."""
    t = np.arange(cfg.frames)
    out = np.zeros((cfg.frames, 2))
    for a in range(2):
        period = rng.uniform(200, 600)
        amp = cfg.drift * rng.uniform(0.5, 1.0) * period / (2 * math.pi)
        out[:, a] = amp * np.sin(2 * math.pi * t / period + rng.uniform(0, 2 * math.pi))
    return out - out[0]


def _trajectory(cfg: SynthConfig, rng: np.random.Generator, enters: bool) -> tuple[int, np.ndarray]:
    """(start frame index 0-based, (T - start, 2) centre positions) of one target."""
    W, H = cfg.width, cfg.height
    speed = rng.uniform(cfg.speed_min, cfg.speed_max)
    if enters:
        start = int(rng.integers(1, max(2, int(cfg.frames * 0.6))))
        side = int(rng.integers(4))
        u = rng.uniform(0.15, 0.85)
        pos = [(-0.5, u * H), (W - 0.5, u * H), (u * W, -0.5), (u * W, H - 0.5)][side]
        inward = [0.0, math.pi, math.pi / 2, -math.pi / 2][side]
        ang = inward + rng.uniform(-1.0, 1.0)
    else:
        start = 0
        pos = (rng.uniform(0.1, 0.9) * W, rng.uniform(0.1, 0.9) * H)
        ang = rng.uniform(0, 2 * math.pi)
    n = cfg.frames - start
    t = np.arange(n)[:, None]
    acc = np.zeros((n, 2))
    for a in range(2):  # smooth random acceleration, px/frame^2
        acc[:, a] = rng.uniform(0.002, 0.012) * np.sin(2 * math.pi * t[:, 0] / rng.uniform(80, 300)
                                                        + rng.uniform(0, 2 * math.pi))
    vel = speed * np.array([math.cos(ang), math.sin(ang)]) + np.cumsum(acc, axis=0) - acc[0]
    xy = np.asarray(pos) + np.vstack([np.zeros((1, 2)), np.cumsum(vel[:-1], axis=0)])
    return start, xy


def render(cfg: SynthConfig, progress: bool = False) -> tuple[ArraySequence, dict[str, str]]:
    """Render a sequence in memory: (ArraySequence with gt incl. per-frame SCR, info for seqinfo.ini).
    `progress`: a bar on stderr when it is a terminal."""
    from tqdm import tqdm

    rng = np.random.default_rng(cfg.seed)
    files = background_files(cfg.background)
    bg_file = files[int(rng.integers(len(files)))]
    with Image.open(bg_file) as im:
        bg = image_to_grey(im).astype(np.float32)
    if bg.max() > 255:
        bg = bg * (255.0 / bg.max())
    drift = _drift_path(cfg, rng)
    need_w = int(math.ceil(cfg.width + np.ptp(drift[:, 0]) + 4))
    need_h = int(math.ceil(cfg.height + np.ptp(drift[:, 1]) + 4))
    scale = max(need_w / bg.shape[1], need_h / bg.shape[0], 1.0)
    if scale > 1.0:
        size = (int(math.ceil(bg.shape[1] * scale)), int(math.ceil(bg.shape[0] * scale)))
        bg = np.asarray(Image.fromarray(bg).resize(size, Image.BICUBIC), np.float32)
    ox = rng.uniform(1 - drift[:, 0].min(), bg.shape[1] - cfg.width - 2 - drift[:, 0].max())
    oy = rng.uniform(1 - drift[:, 1].min(), bg.shape[0] - cfg.height - 2 - drift[:, 1].max())
    hot = np.column_stack([rng.integers(0, cfg.width, cfg.hot_pixels), rng.integers(0, cfg.height, cfg.hot_pixels)])
    hot_level = rng.uniform(180, 255, cfg.hot_pixels)

    n_enter = int(round(cfg.targets * cfg.enter_fraction))
    targets = []
    for k in range(cfg.targets):
        start, xy = _trajectory(cfg, rng, enters=k >= cfg.targets - n_enter)
        sx, sy = rng.uniform(cfg.sigma_min, cfg.sigma_max, 2)
        targets.append(dict(start=start, xy=xy, sx=sx, sy=sy, theta=rng.uniform(0, math.pi),
                            scr=rng.uniform(cfg.scr_min, cfg.scr_max), gone=False, seen=False))

    frames = np.empty((cfg.frames, cfg.height, cfg.width), np.uint8)
    rows = []
    for t in tqdm(range(cfg.frames), "render", unit="frame", leave=False, disable=None if progress else True):
        fx, fy = ox + drift[t, 0], oy + drift[t, 1]
        ix, iy = int(math.floor(fx)), int(math.floor(fy))
        ax, ay = fx - ix, fy - iy
        crop = bg[iy:iy + cfg.height + 1, ix:ix + cfg.width + 1]
        img = ((1 - ay) * ((1 - ax) * crop[:-1, :-1] + ax * crop[:-1, 1:])
               + ay * ((1 - ax) * crop[1:, :-1] + ax * crop[1:, 1:]))
        img = img + rng.normal(0, cfg.noise, img.shape).astype(np.float32) if cfg.noise else img.copy()
        placed = []
        for k, tg in enumerate(targets):
            if t < tg["start"] or tg["gone"]:
                continue
            cx, cy = tg["xy"][t - tg["start"]]
            inside = -0.5 <= cx <= cfg.width - 0.5 and -0.5 <= cy <= cfg.height - 0.5
            if not inside:
                tg["gone"] = tg["seen"]
                continue
            tg["seen"] = True
            prof, (rs, cs) = render_spot(img.shape, cx, cy, tg["sx"], tg["sy"], tg["theta"], radius=3.5)
            core = prof >= math.exp(-2.0)  # inside the 2-sigma ellipse
            if not core.any():
                core = prof >= prof.max()
            mean_ring, std_ring = local_clutter(img, cx, cy)
            amp = tg["scr"] * std_ring / prof[core].mean()
            img[rs, cs] += amp * prof
            placed.append((k, cx, cy, rs, cs, core, mean_ring, std_ring))
        img[hot[:, 1], hot[:, 0]] = np.maximum(img[hot[:, 1], hot[:, 0]], hot_level)
        frames[t] = np.clip(np.rint(img), 0, 255).astype(np.uint8)
        for k, cx, cy, rs, cs, core, mean_ring, std_ring in placed:
            tg = targets[k]
            c, s = math.cos(tg["theta"]), math.sin(tg["theta"])
            w = 4 * math.hypot(tg["sx"] * c, tg["sy"] * s)
            h = 4 * math.hypot(tg["sx"] * s, tg["sy"] * c)
            realised = abs(frames[t][rs, cs][core].astype(float).mean() - mean_ring) / std_ring
            rows.append((t + 1, k + 1, cx, cy, max(w, 1.0), max(h, 1.0), realised))
    a = np.asarray(rows, float).reshape(-1, 7)
    gt = MotRows(a[:, 0], a[:, 1], a[:, 2:4], a[:, 4:6], None, a[:, 6])
    name = f"synth-s{cfg.seed}"
    info = {"generator": "tracking.synth", "seed": str(cfg.seed), "background": bg_file.name,
            "scrMin": f"{cfg.scr_min:g}", "scrMax": f"{cfg.scr_max:g}", "gtColumns":
            "frame,id,left,top,width,height,consider,class,visibility,scr"}
    seq = ArraySequence(name, frames, cfg.fps, gt)
    seq.scene_motion = -drift  # (T, 2) px: where static scene content has moved since frame 1
    return seq, info


def write_video(path: str | Path, frames, fps: float, crf: int = 17) -> None:
    """Encode grey frames as H.264 (libx264, full-range yuv420p, CRF `crf`; low CRF keeps dim targets)."""
    from .h264 import H264Writer

    with H264Writer(path, fps, crf=crf, full_range=True) as w:
        for f in frames:
            w.write(f)


def write_sequence(seq: ArraySequence, info: dict[str, str], out: str | Path, images: bool = True,
                   video: bool = True, crf: int = 17) -> Path:
    """Write `seq` in MOTChallenge layout to folder `out` (img1/, gt/gt.txt, seqinfo.ini, video.mp4)."""
    out = Path(out)
    (out / "gt").mkdir(parents=True, exist_ok=True)
    if images:
        (out / "img1").mkdir(exist_ok=True)
        for i, f in seq.frames():
            Image.fromarray(f).save(out / "img1" / f"{i:06d}.png", compress_level=1)
    if video:
        write_video(out / "video.mp4", (f for _, f in seq.frames()), seq.fps, crf)
        info = {**info, "video": "video.mp4", "videoCrf": str(crf)}
    write_gt(out / "gt" / "gt.txt", seq.gt)
    write_seqinfo(out / "seqinfo.ini", out.name, seq.length, seq.width, seq.height, seq.fps, extra=info)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tracking.synth", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="sequence folder to write (its name is the sequence name)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--targets", type=int, default=4)
    ap.add_argument("--scr-min", type=float, default=3.0)
    ap.add_argument("--scr-max", type=float, default=10.0)
    ap.add_argument("--background", help="background image or folder (default: ../shared/data/ir-backgrounds)")
    ap.add_argument("--size", default="640x512", help="WxH")
    ap.add_argument("--fps", type=float, default=25.0)
    ap.add_argument("--drift", type=float, default=0.5, help="peak platform drift, px/frame")
    ap.add_argument("--noise", type=float, default=1.0, help="sensor noise std, grey levels")
    ap.add_argument("--hot-pixels", type=int, default=2)
    ap.add_argument("--speed-min", type=float, default=0.5)
    ap.add_argument("--speed-max", type=float, default=3.0)
    ap.add_argument("--crf", type=int, default=17, help="H.264 quality (lower = better, bigger)")
    ap.add_argument("--video", action=argparse.BooleanOptionalAction, default=True, help="write video.mp4")
    ap.add_argument("--images", action=argparse.BooleanOptionalAction, default=True, help="write img1/ PNGs")
    a = ap.parse_args(argv)
    try:
        w, h = (int(v) for v in a.size.lower().split("x"))
    except ValueError:
        ap.error(f"--size {a.size!r}: want WxH, e.g. 640x512")
    try:
        cfg = SynthConfig(seed=a.seed, frames=a.frames, targets=a.targets, scr_min=a.scr_min, scr_max=a.scr_max,
                          width=w, height=h, fps=a.fps, background=a.background, drift=a.drift, noise=a.noise,
                          hot_pixels=a.hot_pixels, speed_min=a.speed_min, speed_max=a.speed_max)
        seq, info = render(cfg, progress=True)
        out = write_sequence(seq, info, a.out, images=a.images, video=a.video, crf=a.crf)
    except ValidationError as e:
        print("error: " + "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors()),
              file=sys.stderr)
        return ExitStatus.USAGE
    except (SequenceError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return ExitStatus.USAGE
    print(f"wrote {out} ({seq.length} frames, {len(np.unique(seq.gt.id))} targets, {len(seq.gt)} gt rows)")
    return ExitStatus.OK


if __name__ == "__main__":
    sys.exit(main())
