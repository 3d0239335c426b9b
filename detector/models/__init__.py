"""Detector variants, selected by name (each a config of its model class)."""
from __future__ import annotations

from typing import Any, Callable

from torch import nn

from .fast import FastDetector
from .hrnet import LiteHRNetDetector

VARIANTS: dict[str, Callable[..., nn.Module]] = {
    "hrnet": lambda **kw: LiteHRNetDetector(**kw),
    "fast": lambda **kw: FastDetector(**kw),
}


def create_model(variant: str, **kwargs: Any) -> nn.Module:
    """Build an untrained model of the named variant."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown detector variant {variant!r}; choose one of {sorted(VARIANTS)}")
    return VARIANTS[variant](**kwargs)
