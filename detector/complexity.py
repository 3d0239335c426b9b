"""Model size: parameters and multiply-accumulates (MACs) of one forward pass.

MACs count every arithmetic op: a convolution costs (k*k*cin/groups) per output element, a matrix
product m*n*k; every other op (normalisation, activation, add, multiply, pooling, resampling) costs one per
output element. This is the convention under which the reference reports 2.04 GMACs at 256x256.
"""
from __future__ import annotations

from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

_FREE = {"view", "reshape", "_unsafe_view", "transpose", "permute", "t", "expand", "split", "split_with_sizes",
         "chunk", "slice", "select", "unsqueeze", "squeeze", "clone", "contiguous", "detach", "alias", "cat",
         "empty_like", "zeros_like", "ones_like", "_to_copy", "copy_", "lift_fresh", "as_strided"}


class _MacCounter(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.macs = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        out = func(*args, **(kwargs or {}))
        name = func.__name__.split(".")[0]
        if name == "convolution":
            x, w = args[0], args[1]
            self.macs += out.numel() * w.shape[1] * w.shape[2] * w.shape[3]
        elif name in ("mm", "addmm", "bmm"):
            a = args[-2]
            self.macs += out.numel() * a.shape[-1]
        elif name not in _FREE:
            first = out[0] if isinstance(out, (tuple, list)) else out
            if isinstance(first, torch.Tensor):
                self.macs += first.numel()
        return out


def count_macs(model: torch.nn.Module, shape: tuple[int, int, int, int] = (1, 1, 256, 256)) -> int:
    """MACs of one forward pass of `model` on a zero tensor of `shape` (eval mode)."""
    model.eval()
    with torch.no_grad(), _MacCounter() as counter:
        model(torch.zeros(shape))
    return counter.macs


def count_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
