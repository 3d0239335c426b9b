"""Training speed on this CPU: samples/s of one training step (forward, loss, backward, AdamW) of a variant,
in fp32 and in bfloat16 autocast, in the default and the channels-last memory format, interleaved in one run.

    python benchmarks/train_speed.py                      # fast, 2 input channels, batch 16 of 192 px
    python benchmarks/train_speed.py --variant hrnet --channels 1 --rounds 3

What `python -m detector train --bf16 --channels-last` chooses is what this measures fastest here.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from common import cli, emit


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--variant", default="fast")
    ap.add_argument("--channels", type=int, default=2)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--crop", type=int, default=192)
    ap.add_argument("--steps", type=int, default=8, help="timed steps per setting and round (after 2 warm-up)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None)
    a = ap.parse_args()

    import torch

    from detector.loss import LossWeights, detection_loss
    from detector.models import create_model

    if a.threads:
        torch.set_num_threads(a.threads)
    from detector.augment import TrainSet

    samples = TrainSet([], 2, a.crop, a.batch, None, synthetic_share=1.0, channels=a.channels)  # plain skies
    batch = torch.utils.data.default_collate([samples[i] for i in range(a.batch)])
    settings = [("fp32", False, False), ("fp32 channels-last", False, True), ("bf16", True, False),
                ("bf16 channels-last", True, True)]
    speed: dict[str, list[float]] = {s[0]: [] for s in settings}
    for _ in range(a.rounds):
        for name, bf16, cl in settings:
            torch.manual_seed(0)
            model = create_model(a.variant, in_chans=a.channels)
            if cl:
                model = model.to(memory_format=torch.channels_last)
            opt = torch.optim.AdamW(model.parameters(), 1e-3)
            x = batch["image"].contiguous(memory_format=torch.channels_last) if cl else batch["image"]
            times = []
            for step in range(a.steps + 2):
                t0 = time.perf_counter()
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    out = model(x)
                out = {k: v.float() for k, v in out.items()}
                loss = detection_loss(out, batch, LossWeights())["total"]
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if step >= 2:
                    times.append(time.perf_counter() - t0)
            speed[name].append(a.batch / float(np.median(times)))
    base = float(np.median(speed["fp32"]))
    for name, v in speed.items():
        med = float(np.median(v))
        emit({"setting": name, "samples_per_s": round(med, 1), "vs_fp32": round(med / base, 2),
              "rounds": [round(x, 1) for x in v]})


if __name__ == "__main__":
    cli(main)
