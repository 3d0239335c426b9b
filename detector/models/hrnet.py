"""`hrnet`: the reference architecture, Lite-HRNet at output stride 2 with an iterative head.

Follows the method's reference (Lite-HRNet-18 layout, the stem's second stride-2 removed, Mish, branch
widths 40/80/160/320, modules 2/4/2, iterative top-down head). 1.17 M parameters, ~2.0 GMACs at 256x256.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import DetectionHead, channel_shuffle, conv_bn, dw_separable


class Stem(nn.Module):
    """3x3 stride-2 conv, then a shuffle block that keeps the resolution (output stride 2)."""

    def __init__(self, cin: int = 1, width: int = 32) -> None:
        super().__init__()
        half = width // 2
        self.conv1 = conv_bn(cin, width, 3, 2)
        self.branch1 = dw_separable(half, half)
        self.branch2 = nn.Sequential(conv_bn(half, width, 1), conv_bn(width, width, 3, groups=width, act=None),
                                     conv_bn(width, half, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        x1, x2 = x.chunk(2, dim=1)
        return channel_shuffle(torch.cat([self.branch1(x1), self.branch2(x2)], 1), 2)


class CrossResolutionWeighting(nn.Module):
    """Channel weights computed from all branches pooled to the smallest resolution."""

    def __init__(self, channels: list[int], ratio: int) -> None:
        super().__init__()
        self.channels = channels
        total = sum(channels)
        self.reduce = conv_bn(total, total // ratio, 1)
        self.expand = nn.Sequential(nn.Conv2d(total, total, 1, bias=False), nn.BatchNorm2d(total), nn.Sigmoid())
        self.expand[0] = nn.Conv2d(total // ratio, total, 1, bias=False)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        # branch i is 2**(n-1-i) times the smallest one (inputs padded to a multiple of 32): a fixed-kernel
        # average pool, which (unlike adaptive pooling) exports to ONNX for every frame size
        pooled = [F.avg_pool2d(x, 2 ** (len(xs) - 1 - i)) for i, x in enumerate(xs[:-1])] + [xs[-1]]
        weights = self.expand(self.reduce(torch.cat(pooled, 1))).split(self.channels, 1)
        return [x * F.interpolate(w, size=x.shape[-2:], mode="nearest") for x, w in zip(xs, weights)]


class SpatialWeighting(nn.Module):
    """Squeeze-and-excitation channel weighting of one branch."""

    def __init__(self, channels: int, ratio: int = 4) -> None:
        super().__init__()
        self.fc = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, channels // ratio, 1), nn.Mish(inplace=True),
                                nn.Conv2d(channels // ratio, channels, 1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.fc(x)


class LiteBlock(nn.Module):
    """Conditional channel weighting: half the channels pass, half are re-weighted; then shuffle."""

    def __init__(self, channels: list[int], ratio: int) -> None:
        super().__init__()
        halves = [c // 2 for c in channels]
        self.cross = CrossResolutionWeighting(halves, ratio)
        self.dw = nn.ModuleList(conv_bn(c, c, 3, groups=c, act=None) for c in halves)
        self.spatial = nn.ModuleList(SpatialWeighting(c) for c in halves)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        x1, x2 = zip(*(x.chunk(2, dim=1) for x in xs))
        x2 = self.cross(list(x2))
        x2 = [sw(dw(x)) for x, dw, sw in zip(x2, self.dw, self.spatial)]
        return [channel_shuffle(torch.cat([a, b], 1), 2) for a, b in zip(x1, x2)]


class Fuse(nn.Module):
    """HRNet cross-resolution fusion: every output branch sums all input branches at its resolution."""

    def __init__(self, channels: list[int]) -> None:
        super().__init__()
        n = len(channels)
        self.paths = nn.ModuleList()
        for i in range(n):
            row = nn.ModuleList()
            for j in range(n):
                if j > i:
                    row.append(conv_bn(channels[j], channels[i], 1, act=None))
                elif j == i:
                    row.append(nn.Identity())
                else:
                    steps = [dw_separable(channels[j], channels[j], 2) for _ in range(i - j - 1)]
                    steps.append(dw_separable(channels[j], channels[i], 2, act_last=False))
                    row.append(nn.Sequential(*steps))
            self.paths.append(row)
        self.act = nn.Mish(inplace=True)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        out = []
        for i, row in enumerate(self.paths):
            y = xs[i]
            for j, path in enumerate(row):
                if j == i:
                    continue
                z = path(xs[j])
                if j > i:
                    z = F.interpolate(z, size=xs[i].shape[-2:], mode="nearest")
                y = y + z
            out.append(self.act(y))
        return out


class Module(nn.Module):
    def __init__(self, channels: list[int], blocks: int, ratio: int) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*(LiteBlock(channels, ratio) for _ in range(blocks)))
        self.fuse = Fuse(channels)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        for block in self.blocks:
            xs = block(xs)
        return self.fuse(xs)


class Transition(nn.Module):
    """Adapts the branches of one stage to the next and adds the new, coarser branch."""

    def __init__(self, cin: list[int], cout: list[int]) -> None:
        super().__init__()
        self.paths = nn.ModuleList()
        for i, c in enumerate(cout):
            if i < len(cin):
                self.paths.append(nn.Identity() if cin[i] == c else dw_separable(cin[i], c))
            else:
                self.paths.append(dw_separable(cin[-1], c, 2))

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        return [path(xs[min(i, len(xs) - 1)]) for i, path in enumerate(self.paths)]


class IterativeHead(nn.Module):
    """Top-down fusion 320 -> 160 -> 80 -> 40 -> 40; returns the finest map."""

    def __init__(self, channels: list[int]) -> None:
        super().__init__()
        rev = channels[::-1]
        outs = rev[1:] + [rev[-1]]
        self.projects = nn.ModuleList(dw_separable(a, b) for a, b in zip(rev, outs))

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        last = None
        for x, project in zip(xs[::-1], self.projects):
            if last is not None:
                x = x + F.interpolate(last, size=x.shape[-2:], mode="bilinear", align_corners=True)
            last = project(x)
        return last


class LiteHRNetDetector(nn.Module):
    stride = 2

    def __init__(self, in_chans: int = 1, stem: int = 32, widths: tuple[int, ...] = (40, 80, 160, 320),
                 modules: tuple[int, ...] = (2, 4, 2), blocks: int = 2, ratio: int = 8) -> None:
        super().__init__()
        self.stem = Stem(in_chans, stem)
        stages, transitions = [], []
        prev = [stem]
        for s, n_modules in enumerate(modules):
            cur = list(widths[: s + 2])
            transitions.append(Transition(prev, cur))
            stages.append(nn.Sequential(*(Module(cur, blocks, ratio) for _ in range(n_modules))))
            prev = cur
        self.transitions = nn.ModuleList(transitions)
        self.stages = nn.ModuleList(stages)
        self.neck = IterativeHead(prev)
        self.head = DetectionHead(widths[0])

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        xs = [self.stem(x)]
        for transition, stage in zip(self.transitions, self.stages):
            xs = transition(xs)
            for module in stage:
                xs = module(xs)
        return self.head(self.neck(xs))
