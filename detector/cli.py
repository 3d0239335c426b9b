"""`python -m detector {train,eval,predict,convert}`."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .errors import DetectorError
from .exit_status import ExitStatus, stdout_closed
from .imageio import IMAGE_SUFFIXES

from .data_root import data_root

DEFAULT_BACKGROUNDS = data_root() / "ir-backgrounds"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m detector", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a variant (checkpoint and threshold chosen on val)")
    t.add_argument("--variant", choices=["fast", "hrnet"], default="fast")
    t.add_argument("--data", required=True,
                   help="dataset folder (SIRST, IRSTD-1k, mask folder, halmstad-ir videos), COCO json, or a .yaml mix "
                        "of several (configs/detector-mix.yaml)")
    t.add_argument("--init", default=None, help="start from this checkpoint's weights (a path or a shipped variant)")
    t.add_argument("--out", required=True, help="run folder: best.pt, last.pt, history.json")
    t.add_argument("--epochs", type=int, default=60)
    t.add_argument("--iters", type=int, default=64, help="iterations per epoch")
    t.add_argument("--batch", type=int, default=16)
    t.add_argument("--crop", type=int, default=192)
    t.add_argument("--lr", type=float, default=2e-3)
    t.add_argument("--val-every", type=int, default=2)
    t.add_argument("--backgrounds", default=str(DEFAULT_BACKGROUNDS) if DEFAULT_BACKGROUNDS.is_dir() else None,
                   help="folder of target-free frames for synthetic targets and hard negatives")
    t.add_argument("--device", default="auto")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=int, default=None)
    t.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    t.add_argument("--motion", action="store_true",
                   help="the frame + motion input (2 channels): video frames with their motion residual, moving "
                        "synthetic sequences, still images with a blank motion channel")
    t.add_argument("--bf16", action="store_true", help="bfloat16 autocast of the forward pass (CPU with AVX512-BF16)")
    t.add_argument("--channels-last", action="store_true", help="channels-last memory format")

    e = sub.add_parser("eval", help="P/R/F1, Pd/Fa, AP50, by size; JSON + PR curve PNG")
    e.add_argument("--weights", default=None, help="checkpoint, or a shipped variant name (default: fast)")
    e.add_argument("--data", required=True, help="dataset folder (SIRST, IRSTD-1k, MDvsFA, mask folder, "
                   "halmstad-ir videos: every --every-th frame) or COCO json")
    e.add_argument("--every", type=int, default=None, help="video datasets: score every n-th frame (default 10)")
    e.add_argument("--split", default="test", choices=["train", "val", "test"])
    e.add_argument("--out", default=None, help="folder for metrics.json and pr_curve.png")
    e.add_argument("--device", default="auto")
    e.add_argument("--precision", default="auto", choices=["auto", "fp32", "fp16", "bf16", "int8"],
                   help="how the model runs (int8: the calibrated model beside the weights, CPU)")

    r = sub.add_parser("predict", help="detect in images or a video; one JSON line per image or frame")
    r.add_argument("paths", nargs="+", help="image files or folders; or one video file (or, with --sequence, one "
                   "folder of frames in order): one line per frame, with the motion input when the weights take it")
    r.add_argument("--sequence", action="store_true", help="the one folder given holds the frames of one video, in "
                   "name order")
    r.add_argument("--weights", default=None, help="checkpoint, or a shipped variant name (default: fast)")
    r.add_argument("--out", default="-", help="JSONL file (default: stdout)")
    r.add_argument("--threshold", type=float, default=None, help="override the checkpoint's threshold")
    r.add_argument("--device", default="auto")
    c = sub.add_parser("convert", help="rewrite a checkpoint (e.g. a training best.pt) as .safetensors, read safely")
    c.add_argument("src", help="checkpoint (.pt or .safetensors)")
    c.add_argument("dst", help="output .safetensors file")
    return p


def _images(paths: list[str]) -> list[Path]:
    found = []
    for p in map(Path, paths):
        if p.is_dir():
            found += sorted(q for q in p.iterdir() if q.suffix.lower() in IMAGE_SUFFIXES)
        elif p.is_file():
            found.append(p)
        else:
            raise DetectorError(f"{p}: no such file or folder")
    if not found:
        raise DetectorError(f"no images found in {' '.join(paths)}")
    return found


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "train":
            from .train import train

            best = train(args.variant, args.data, args.out, args.epochs, args.iters, args.batch, args.crop, args.lr,
                         val_every=args.val_every, backgrounds=args.backgrounds, device=args.device,
                         seed=args.seed, resume=args.resume, threads=args.threads, init=args.init,
                         motion=args.motion, bf16=args.bf16, channels_last=args.channels_last)
            print(f"best val F1 {best['f1']:.3f} at epoch {best.get('epoch')} (threshold {best.get('threshold')}) "
                  f"-> {Path(args.out) / 'best.pt'}")
        elif args.command == "eval":
            from .datasets import open_dataset
            from .evaluate import format_report, run_eval
            from .predict import Detector

            det = Detector.load(args.weights, args.device, precision=args.precision)
            samples = open_dataset(args.data, args.split, args.every, motion=det.takes_motion)
            report = run_eval(det, samples, args.data, args.split, Path(args.out) if args.out else None)
            print(format_report(report))
            if args.out:
                print(f"wrote {Path(args.out) / 'metrics.json'} and {Path(args.out) / 'pr_curve.png'}")
        elif args.command == "convert":
            from .checkpoint import convert

            print(f"wrote {convert(args.src, args.dst)}")
        elif args.command == "predict":
            return _predict(args)
    except DetectorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ExitStatus.USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return ExitStatus.INTERRUPTED
    except BrokenPipeError:
        return stdout_closed()
    return ExitStatus.OK


VIDEO_SUFFIXES = {".mp4", ".mkv", ".avi", ".mov", ".ts", ".webm", ".m4v"}


def _video_frames(args):
    """(1-based frame number, grey frame) of the one video file or, `--sequence`, the folder's images in order."""
    if args.sequence:
        if len(args.paths) != 1 or not Path(args.paths[0]).is_dir():
            raise DetectorError("--sequence takes one folder of frames")
        from .imageio import load_grey

        for i, p in enumerate(_images(args.paths), start=1):
            yield i, load_grey(p)
        return
    from tracking.sequences import SequenceError, open_sequence

    try:
        yield from open_sequence(args.paths[0]).frames()
    except SequenceError as exc:
        raise DetectorError(str(exc)) from None


def _predict_video(args) -> int:
    """One JSON line per frame, in order: {"frame": n (1-based), "width", "height", "detections"}. Weights that
    take the motion input get each frame's residual against the aligned background of the frames before it
    (ego-motion as the pipeline measures it)."""
    from .predict import Detector

    det = Detector.load(args.weights, args.device, args.threshold)
    background = det.motion_background()
    scene = None
    if background is not None:
        from tracking.egomotion import SceneMotion

        scene = SceneMotion()
    out = sys.stdout if args.out == "-" else open(args.out, "w")
    try:
        for i, image in _video_frames(args):
            motion = None
            if background is not None:
                motion = background.update(image, scene.update(image))
            (dets,) = det.predict_batch([image], motion=[motion])
            out.write(json.dumps({"frame": i, "width": image.shape[1], "height": image.shape[0],
                                  "detections": dets.to_dicts()}) + "\n")
        out.flush()
    finally:
        if out is not sys.stdout:
            out.close()
    return ExitStatus.OK


def _predict(args) -> int:
    """One JSON line per readable image; unreadable ones are named on stderr. Status: OK when every image was
    read, FAILED when some were skipped, USAGE when none could be read."""
    from tqdm import tqdm

    from .imageio import load_grey
    from .predict import Detector

    if args.sequence or (len(args.paths) == 1 and Path(args.paths[0]).suffix.lower() in VIDEO_SUFFIXES):
        return _predict_video(args)
    paths = _images(args.paths)
    det = Detector.load(args.weights, args.device, args.threshold)
    out = sys.stdout if args.out == "-" else open(args.out, "w")
    skipped = 0
    try:
        for path in tqdm(paths, "predict", unit="image", leave=False, disable=None):  # stderr, TTY only
            try:
                image = load_grey(path)
            except DetectorError as exc:
                print(f"skipped: {exc}", file=sys.stderr)
                skipped += 1
                continue
            dets = det.predict(image)
            row = {"image": str(path), "width": image.shape[1], "height": image.shape[0],
                   "detections": dets.to_dicts()}
            out.write(json.dumps(row) + "\n")
        out.flush()
    finally:
        if out is not sys.stdout:
            out.close()
    if skipped == len(paths):
        raise DetectorError(f"none of the {len(paths)} inputs is a readable image")
    if skipped:
        print(f"error: {skipped} of {len(paths)} images could not be read (see 'skipped:' above)", file=sys.stderr)
        return ExitStatus.FAILED
    return ExitStatus.OK
