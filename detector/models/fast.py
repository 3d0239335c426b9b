"""`fast`: a small encoder-decoder for live use on a CPU.

Plain 3x3 convolutions with ReLU (what CPU runtimes fuse and run best; Mish cost 40 % of the time on a
CPU), four scales (strides 2-16) for context against clutter, a top-down path back to stride 2 where tiny
targets live, and a light shared head.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import DetectionHead, conv_bn


class FastDetector(nn.Module):
    stride = 2

    def __init__(self, in_chans: int = 1, widths: tuple[int, ...] = (16, 32, 64, 96), head: int = 16,
                 act: str = "relu") -> None:
        super().__init__()
        c2, c4, c8, c16 = widths
        self.enc2 = nn.Sequential(conv_bn(in_chans, c2, 3, 2, act=act), conv_bn(c2, c2, act=act))
        self.enc4 = nn.Sequential(conv_bn(c2, c4, 3, 2, act=act), conv_bn(c4, c4, act=act))
        self.enc8 = nn.Sequential(conv_bn(c4, c8, 3, 2, act=act), conv_bn(c8, c8, act=act))
        self.enc16 = nn.Sequential(conv_bn(c8, c16, 3, 2, act=act), conv_bn(c16, c16, act=act))
        self.lat8 = conv_bn(c16, c8, 1, act=None)
        self.dec8 = conv_bn(c8, c4, act=act)
        self.dec4 = conv_bn(c4, c2, act=act)
        self.dec2 = conv_bn(c2, head, act=act)
        self.head = DetectionHead(head, mid=head, kernel=1, act=act)

    @staticmethod
    def _up_add(x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return skip + F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        f2 = self.enc2(x)
        f4 = self.enc4(f2)
        f8 = self.enc8(f4)
        f16 = self.enc16(f8)
        y = self.dec8(self._up_add(self.lat8(f16), f8))
        y = self.dec4(self._up_add(y, f4))
        y = self.dec2(self._up_add(y, f2))
        return self.head(y)
