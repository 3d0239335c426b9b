"""Small building blocks shared by the detector variants."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


ACTIVATIONS: dict[str, type[nn.Module]] = {"mish": nn.Mish, "relu": nn.ReLU}


def activation(name: str) -> nn.Module:
    """'mish' (the method's choice) or 'relu' (fused into the convolution by CPU runtimes)."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name](inplace=True)


def conv_bn(cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1, act: str | None = "mish"
            ) -> nn.Sequential:
    """Conv (no bias) + BatchNorm (+ activation, by name; None for none)."""
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if act:
        layers.append(activation(act))
    return nn.Sequential(*layers)


def dw_separable(cin: int, cout: int, stride: int = 1, act_last: bool = True) -> nn.Sequential:
    """Depthwise 3x3 + BN, then pointwise 1x1 + BN (+ Mish)."""
    return nn.Sequential(conv_bn(cin, cin, 3, stride, groups=cin, act=None),
                         conv_bn(cin, cout, 1, act="mish" if act_last else None))


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    b, c, h, w = x.shape
    return x.view(b, groups, c // groups, h, w).transpose(1, 2).reshape(b, c, h, w)


class DetectionHead(nn.Module):
    """Heatmap (1, logits), ltrb (4, cells, >= 0) and offset (2, sub-cell) branches on one feature map."""

    PRIOR_BIAS = -2.197  # sigmoid(-2.197) = 0.1

    def __init__(self, cin: int, mid: int | None = None, kernel: int = 3, act: str = "mish") -> None:
        super().__init__()
        mid = mid or cin

        def branch(cout: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(cin, mid, kernel, padding=kernel // 2), activation(act),
                                 nn.Conv2d(mid, cout, 1))

        self.heatmap, self.ltrb, self.offset = branch(1), branch(4), branch(2)
        nn.init.constant_(self.heatmap[-1].bias, self.PRIOR_BIAS)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {
            "heatmap": self.heatmap(x),  # logits; sigmoid gives the score
            "ltrb": F.softplus(self.ltrb(x)),  # distances cannot be negative
            "offset": self.offset(x),
        }
