"""GFKL loss (Gaussian focal-weighted KL divergence) plus the regression terms."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

EPS = 1e-6


@dataclass(frozen=True)
class LossWeights:
    alpha: float = 2.0  # focal exponent on positive cells: (1 - p)^alpha
    beta: float = 4.0  # focal exponent on negative cells: p^beta
    gamma: float = 4.0  # Gaussian exponent on negative cells: (1 - t)^gamma
    heatmap: float = 1.5
    ltrb: float = 0.5
    offset: float = 1.0


def gfkl(pred: torch.Tensor, target: torch.Tensor, num_targets: torch.Tensor | float,
         alpha: float = 2.0, beta: float = 4.0, gamma: float = 4.0) -> torch.Tensor:
    """GFKL on probabilities `pred` (after sigmoid) against the Gaussian `target`, normalised by N targets.

    loss = sum[M (1-p)^a t ln(t/p) + (1-M) (1-t)^g p^b (1-t) ln((1-t)/(1-p))] / N, with M = (t == 1).
    """
    peak = target.eq(1.0)
    p = pred.clamp(EPS, 1 - EPS)
    t = target.clamp(EPS, 1 - EPS)
    kl_pos = t * torch.log(t / p)
    kl_neg = (1 - t) * torch.log((1 - t) / (1 - p))
    pos = (1 - p).pow(alpha) * kl_pos
    neg = (1 - t).pow(gamma) * p.pow(beta) * kl_neg
    total = torch.where(peak, pos, neg).sum()
    return total / torch.as_tensor(num_targets, dtype=total.dtype).clamp(min=1.0)


def detection_loss(outputs: dict[str, torch.Tensor], targets: dict[str, torch.Tensor],
                   weights: LossWeights = LossWeights()) -> dict[str, torch.Tensor]:
    """Weighted GFKL on the heatmap plus SmoothL1 on ltrb (/4N) and offset (/2N) at positive cells."""
    positive = targets["positive"]  # (B, h, w) bool
    n = positive.sum().to(outputs["heatmap"].dtype)
    heat = gfkl(outputs["heatmap"].sigmoid(), targets["heatmap"], n, weights.alpha, weights.beta, weights.gamma)
    mask = positive[:, None]
    ltrb = F.smooth_l1_loss(outputs["ltrb"].masked_select(mask.expand_as(outputs["ltrb"])),
                            targets["ltrb"].masked_select(mask.expand_as(targets["ltrb"])), reduction="sum")
    off = F.smooth_l1_loss(outputs["offset"].masked_select(mask.expand_as(outputs["offset"])),
                           targets["offset"].masked_select(mask.expand_as(targets["offset"])), reduction="sum")
    denom = n.clamp(min=1.0)
    parts = {
        "heatmap": weights.heatmap * heat,
        "ltrb": weights.ltrb * ltrb / (4 * denom),
        "offset": weights.offset * off / (2 * denom),
    }
    parts["total"] = parts["heatmap"] + parts["ltrb"] + parts["offset"]
    return parts
