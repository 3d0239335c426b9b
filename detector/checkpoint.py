"""Checkpoints record everything needed to load and run a model: variant, preprocessing, threshold."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import DetectorError
from .models import VARIANTS, create_model

FORMAT = "itd-detector/1"
WEIGHTS_DIR = Path(__file__).parent / "weights"
DEFAULT_VARIANT = "fast"


def save_checkpoint(path: str | Path, model: nn.Module, meta: dict[str, Any], extra: dict[str, Any] | None = None) -> None:
    """Write `meta` (variant, model_kwargs, preprocessing, stride, threshold, ...) and the weights."""
    state = {"format": FORMAT, **meta, "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}}
    if extra:
        state.update(extra)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def resolve_weights(weights: str | Path | None) -> Path:
    """None -> the shipped default; a variant name ('fast', 'hrnet') -> its shipped weights; else a path."""
    if weights is None:
        weights = DEFAULT_VARIANT
    if isinstance(weights, str) and (WEIGHTS_DIR / f"{weights}.pt").is_file() and not Path(weights).exists():
        return WEIGHTS_DIR / f"{weights}.pt"
    path = Path(weights)
    if not path.is_file() and isinstance(weights, str) and weights in VARIANTS:
        raise DetectorError(f"no shipped weights for variant {weights!r} in {WEIGHTS_DIR}")
    if not path.is_file():
        raise DetectorError(f"{path}: no such weights file")
    return path


def operating_threshold(weights: str | Path | None) -> float:
    """The threshold chosen on val and stored in the checkpoint."""
    _, meta = load_checkpoint(weights)
    return float(meta.get("threshold", 0.5))


def load_checkpoint(weights: str | Path | None) -> tuple[nn.Module, dict[str, Any]]:
    """Load a checkpoint written by `save_checkpoint`; returns (model in eval mode, meta)."""
    path = resolve_weights(weights)
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's input problem
        raise DetectorError(f"{path}: not a detector checkpoint ({exc.__class__.__name__})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise DetectorError(f"{path}: not a detector checkpoint (format {state.get('format') if isinstance(state, dict) else None!r})")
    model = create_model(state["variant"], **state.get("model_kwargs", {}))
    model.load_state_dict(state["state_dict"])
    meta = {k: v for k, v in state.items() if k not in ("state_dict", "optimizer", "scheduler", "rng")}
    meta["path"] = str(path)
    return model.eval(), meta
