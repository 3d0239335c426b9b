"""Detector variants, selected by name (each a config of its model class)."""
from __future__ import annotations

from typing import Any, Callable

from torch import nn

from .fast import FastDetector
from .hrnet import LiteHRNetDetector

VARIANTS: dict[str, tuple[Callable[..., nn.Module], dict[str, Any]]] = {
    "hrnet": (LiteHRNetDetector, {}),
    "fast": (FastDetector, {"act": "relu"}),
}


def variant_kwargs(variant: str, **overrides: Any) -> dict[str, Any]:
    """The variant's constructor arguments (recorded in checkpoints), with `overrides` applied."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown detector variant {variant!r}; choose one of {sorted(VARIANTS)}")
    return {**VARIANTS[variant][1], **overrides}


def create_model(variant: str, **kwargs: Any) -> nn.Module:
    """Build an untrained model of the named variant (`kwargs` override its config)."""
    kwargs = variant_kwargs(variant, **kwargs)
    return VARIANTS[variant][0](**kwargs)
