"""Checkpoints record everything needed to load and run a model: variant, preprocessing, threshold.

Two formats, both read without ever running code from the file:
- `.safetensors` (the shipped weights, `python -m detector convert`): tensors plus the meta as JSON in the
  header; no pickle at all.
- `.pt` (what training writes: `best.pt`, `last.pt` with the optimizer state for --resume): `torch.save` of
  a dict of plain values and tensors, read back with `torch.load(weights_only=True)`, which refuses any
  file that asks to import or call something.
"""
from __future__ import annotations

import json
import pickle
import re
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from .errors import DetectorError
from .models import VARIANTS, create_model

FORMAT = "itd-detector/1"
WEIGHTS_DIR = Path(__file__).parent / "weights"
DEFAULT_VARIANT = "fast"
TRAINING_ONLY = ("state_dict", "optimizer", "scheduler", "rng", "best", "history")


def save_checkpoint(path: str | Path, model: nn.Module, meta: dict[str, Any], extra: dict[str, Any] | None = None) -> None:
    """Write `meta` (variant, model_kwargs, preprocessing, stride, threshold, ...) and the weights as `.pt`
    (plain values and tensors only, so that `read_state` loads it with `weights_only=True`)."""
    state = {"format": FORMAT, **meta, "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}}
    if extra:
        state.update(extra)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def save_weights(path: str | Path, state: dict[str, Any]) -> None:
    """Write a checkpoint's weights and meta (no optimizer state) as `.safetensors`."""
    meta = {k: v for k, v in state.items() if k not in TRAINING_ONLY}
    tensors = {k: v.detach().cpu().contiguous() for k, v in state["state_dict"].items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    save_file(tensors, str(tmp), metadata={"format": FORMAT, "meta": json.dumps(meta)})
    tmp.chmod(0o644)
    tmp.replace(path)


def _is_safetensors(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(9)
    return len(head) == 9 and head[8:9] == b"{"


def _asked_for(exc: Exception) -> str | None:
    """What a refused pickle tried to import or call (e.g. 'posix.system'), from torch's message."""
    m = re.search(r"GLOBAL ([\w.]+)", str(exc))
    return m.group(1) if m else None


def read_state(path: str | Path) -> dict[str, Any]:
    """The full checkpoint dict (meta, `state_dict`, and for `last.pt` the training state), read safely.

    Raises `DetectorError` (one line) for anything that is not a detector checkpoint, including a `.pt`
    that would run code when unpickled: that code is never run.
    """
    path = Path(path)
    try:
        if _is_safetensors(path):
            with safe_open(str(path), "pt") as f:
                header = f.metadata() or {}
            if header.get("format") != FORMAT:
                raise DetectorError(f"{path}: not a detector checkpoint (format {header.get('format')!r})")
            state = json.loads(header.get("meta", "{}"))
            state["state_dict"] = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except DetectorError:
        raise
    except pickle.UnpicklingError as exc:
        if (asked := _asked_for(exc)) is not None:
            raise DetectorError(f"{path}: refused: the file asks to run code ({asked}) when loaded; "
                                f"only plain weights are accepted") from None
        raise DetectorError(f"{path}: not a detector checkpoint (not a weights file)") from None
    except (SafetensorError, ValueError, OSError, RuntimeError, EOFError) as exc:
        raise DetectorError(f"{path}: not a detector checkpoint ({exc.__class__.__name__})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise DetectorError(f"{path}: not a detector checkpoint "
                            f"(format {state.get('format') if isinstance(state, dict) else None!r})")
    return state


def resolve_weights(weights: str | Path | None) -> Path:
    """None -> the shipped default; a variant name ('fast', 'hrnet') -> its shipped weights; else a path."""
    if weights is None:
        weights = DEFAULT_VARIANT
    shipped = WEIGHTS_DIR / f"{weights}.safetensors"
    if isinstance(weights, str) and shipped.is_file() and not Path(weights).exists():
        return shipped
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
    """Load a checkpoint (`.safetensors` or a training `.pt`); returns (model in eval mode, meta)."""
    path = resolve_weights(weights)
    state = read_state(path)
    try:
        model = create_model(state["variant"], **state.get("model_kwargs", {}))
        model.load_state_dict(state["state_dict"])
    except (KeyError, TypeError, RuntimeError) as exc:
        raise DetectorError(f"{path}: weights do not fit the model ({str(exc).splitlines()[0]})") from None
    meta = {k: v for k, v in state.items() if k not in TRAINING_ONLY}
    meta["path"] = str(path)
    return model.eval(), meta


def convert(src: str | Path, dst: str | Path) -> Path:
    """Read a checkpoint safely and write its weights and meta as `.safetensors`; returns `dst`."""
    state = read_state(resolve_weights(src))
    create_model(state["variant"], **state.get("model_kwargs", {})).load_state_dict(state["state_dict"])
    save_weights(dst, state)
    return Path(dst)
