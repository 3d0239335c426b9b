"""`python -m detector train`: train a variant on `train` (one dataset or a mix), select checkpoint and threshold
on `val` (each source's own val set, by their mean F1). The test split is never read here.
"""
from __future__ import annotations

import json
import math
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .augment import TrainSet
from .checkpoint import load_checkpoint, save_checkpoint
from .errors import DetectorError
from .evaluate import collect
from .imageio import NOISE_FLOOR, PREPROCESSING
from .loss import LossWeights, detection_loss
from .metrics import best_threshold_mixed
from .models import create_model, variant_kwargs
from .motion import MOTION_DEFAULTS
from .predict import pick_device
from .training_data import load_training_data


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def widen_inputs(start: dict[str, torch.Tensor], target: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`start`'s weights for a model that takes more input channels: the first convolution's weights for the
    extra channels are zero (the model computes what `start` did until training moves them)."""
    out = dict(start)
    for k, v in start.items():
        t = target.get(k)
        if t is not None and v.ndim == 4 and t.ndim == 4 and v.shape[1] < t.shape[1] and v.shape[0] == t.shape[0]:
            wide = torch.zeros_like(t)
            wide[:, : v.shape[1]] = v
            out[k] = wide
    return out


def train(variant: str, data: str, out: str, epochs: int = 60, iters: int = 64, batch: int = 16, crop: int = 192,
          lr: float = 2e-3, warmup: int = 200, val_every: int = 2, backgrounds: str | None = None,
          device: str = "auto", seed: int = 0, resume: bool = False, threads: int | None = None,
          loss_weights: LossWeights = LossWeights(), init: str | None = None, motion: bool = False,
          bf16: bool = False, channels_last: bool = False) -> dict:
    """Train and write `out/best.pt` (best val F1, with its val threshold) and `out/last.pt` (for --resume).

    `motion`: the frame + motion input (`detector.motion`; 2 input channels). `init` may then be frame-only
    weights: the motion channel starts at zero, so training starts from what they detect. `bf16`: autocast the
    forward pass to bfloat16 on a CPU; `channels_last`: that memory format (`benchmarks/train_speed.py`)."""
    if threads:
        torch.set_num_threads(threads)
    seed_everything(seed)
    dev = pick_device(device)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    mix = load_training_data(data, backgrounds, motion=motion)
    print("train: " + ", ".join(f"{n} {len(s)} x{w:g}" for n, s, w in mix.train) + f", synthetic {mix.synthetic_share:g}"
          + " | val: " + ", ".join(f"{n} {len(s)}" for n, s in mix.val.items()), flush=True)
    channels = 2 if motion else 1
    model_kwargs = variant_kwargs(variant, **({"in_chans": 2} if motion else {}))
    model = create_model(variant, **model_kwargs).to(dev)
    if init:  # start from another checkpoint's weights (same variant), e.g. fine-tune shipped weights on new data
        start_model, start_meta = load_checkpoint(init)
        if start_meta["variant"] != variant:
            raise DetectorError(f"--init {init}: a {start_meta['variant']!r} checkpoint, not {variant!r}")
        model.load_state_dict(widen_inputs(start_model.state_dict(), model.state_dict()))
    stride = model.stride
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    dataset = TrainSet([(s, w) for _, s, w in mix.train], stride, crop, iters * batch, mix.backgrounds,
                       synthetic_share=mix.synthetic_share, seed=seed, channels=channels)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=False, num_workers=0)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    total = epochs * iters
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda i: min(1.0, (i + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(i, total) / total)))
    preprocessing = {**PREPROCESSING, "channels": channels, **({"motion": MOTION_DEFAULTS} if motion else {})}
    meta = {"variant": variant, "model_kwargs": model_kwargs, "stride": stride, "preprocessing": preprocessing,
            "command": " ".join(["python -m detector"] + sys.argv[1:]), "seed": seed,
            "data": str(data), "loss": loss_weights.__dict__, "init": init}
    start, best, history = 0, {"f1": -1.0}, []
    last_path = out_dir / "last.pt"
    if resume and last_path.is_file():
        state = torch.load(last_path, map_location="cpu", weights_only=True)
        model.load_state_dict(state["state_dict"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        start, best, history = state["epoch"], state["best"], state["history"]
        print(f"resumed from {last_path} at epoch {start}")
    elif resume:
        raise DetectorError(f"{last_path}: nothing to resume")

    for epoch in range(start, epochs):
        model.train()
        dataset.set_epoch(epoch)
        t0, running = time.time(), []
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{epochs}", leave=False, dynamic_ncols=True)
        for batch_data in bar:
            batch_data = {k: v.to(dev) for k, v in batch_data.items()}
            x = batch_data["image"]
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
                outputs = model(x)
            outputs = {k: v.float() for k, v in outputs.items()}
            losses = detection_loss(outputs, batch_data, loss_weights)
            opt.zero_grad(set_to_none=True)
            losses["total"].backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            opt.step()
            sched.step()
            running.append(losses["total"].item())
            bar.set_postfix(loss=f"{np.mean(running[-20:]):.3f}")
        row = {"epoch": epoch + 1, "loss": float(np.mean(running)), "seconds": round(time.time() - t0, 1)}
        if (epoch + 1) % val_every == 0 or epoch + 1 == epochs:
            groups = {name: collect(model, samples, stride, PREPROCESSING["pad_multiple"], dev, batch=8,
                                     noise_floor=NOISE_FLOOR, channels=channels)
                      for name, samples in mix.val.items()}
            thr, res = best_threshold_mixed(groups)
            per = {n: round(r["f1"], 4) for n, r in res["by_source"].items()}
            row.update({"val_f1": res["f1"], "val_precision": res["precision"], "val_recall": res["recall"],
                        "threshold": thr, "val_f1_by_source": per})
            if res["f1"] > best["f1"]:
                best = {"f1": res["f1"], "epoch": epoch + 1, "threshold": thr, "precision": res["precision"],
                        "recall": res["recall"], "f1_by_source": per}
                save_checkpoint(out_dir / "best.pt", model, {**meta, "threshold": thr, "epoch": epoch + 1,
                                                              "val": best})
        history.append(row)
        print(json.dumps(row), flush=True)
        save_checkpoint(last_path, model, {**meta, "threshold": best.get("threshold", 0.5), "epoch": epoch + 1},
                        {"optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "best": best,
                         "history": history})
    (out_dir / "history.json").write_text(json.dumps({"best": best, "history": history}, indent=2))
    return best
