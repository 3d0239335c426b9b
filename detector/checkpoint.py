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
import struct
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import DetectorError

if TYPE_CHECKING:  # torch is imported where weights are read or written: `read_meta` runs without it
    from torch import nn

FORMAT = "itd-detector/1"
WEIGHTS_DIR = Path(__file__).parent / "weights"
DEFAULT_VARIANT = "fast"
TRAINING_ONLY = ("state_dict", "optimizer", "scheduler", "rng", "best", "history")


def save_checkpoint(path: str | Path, model: nn.Module, meta: dict[str, Any], extra: dict[str, Any] | None = None) -> None:
    """Write `meta` (variant, model_kwargs, preprocessing, stride, threshold, ...) and the weights as `.pt`
    (plain values and tensors only, so that `read_state` loads it with `weights_only=True`)."""
    import torch

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
    from safetensors.torch import save_file

    meta = {k: v for k, v in state.items() if k not in TRAINING_ONLY}
    tensors = {k: v.detach().cpu().contiguous() for k, v in state["state_dict"].items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    save_file(tensors, str(tmp), metadata={"format": FORMAT, "meta": json.dumps(meta)})
    tmp.chmod(0o644)
    tmp.replace(path)


def _safetensors_header(path: Path) -> dict[str, Any] | None:
    """The JSON header of a `.safetensors` file (None when the file is not one)."""
    with open(path, "rb") as f:
        head = f.read(9)
        if len(head) < 9 or head[8:9] != b"{":
            return None
        (size,) = struct.unpack("<Q", head[:8])
        if size > 100_000_000:
            return None
        f.seek(8)
        try:
            header = json.loads(f.read(size))
        except ValueError:
            return None
    return header if isinstance(header, dict) else None


def _meta_of(path: Path, header: dict[str, Any]) -> dict[str, Any]:
    meta = header.get("__metadata__") or {}
    if meta.get("format") != FORMAT:
        raise DetectorError(f"{path}: not a detector checkpoint (format {meta.get('format')!r})")
    try:
        return json.loads(meta.get("meta", "{}"))
    except ValueError:
        raise DetectorError(f"{path}: not a detector checkpoint (unreadable meta)") from None


def _asked_for(exc: Exception) -> str | None:
    """What a refused pickle tried to import or call (e.g. 'posix.system'), from torch's message."""
    m = re.search(r"GLOBAL ([\w.]+)", str(exc))
    return m.group(1) if m else None


def read_state(path: str | Path) -> dict[str, Any]:
    """The full checkpoint dict (meta, `state_dict`, and for `last.pt` the training state), read safely.

    Raises `DetectorError` (one line) for anything that is not a detector checkpoint, including a `.pt`
    that would run code when unpickled: that code is never run.
    """
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    try:
        header = _safetensors_header(path)
        if header is not None:
            state = _meta_of(path, header)
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


def read_meta(weights: str | Path | None) -> dict[str, Any]:
    """A checkpoint's meta (variant, threshold, ...) without its weights; for `.safetensors` without torch."""
    path = resolve_weights(weights)
    try:
        header = _safetensors_header(path)
    except OSError as exc:
        raise DetectorError(f"{path}: cannot read ({exc.__class__.__name__})") from None
    if header is not None:
        meta = _meta_of(path, header)
    else:
        meta = {k: v for k, v in read_state(path).items() if k not in TRAINING_ONLY}
    meta["path"] = str(path)
    return meta


def resolve_weights(weights: str | Path | None) -> Path:
    """None -> the shipped default; a variant name ('fast', 'hrnet') -> its shipped weights; else a path."""
    if weights is None:
        weights = DEFAULT_VARIANT
    shipped = WEIGHTS_DIR / f"{weights}.safetensors"
    if isinstance(weights, str) and shipped.is_file() and not Path(weights).exists():
        return shipped
    path = Path(weights)
    if not path.is_file() and isinstance(weights, str) and not path.suffix and len(path.parts) == 1:
        raise DetectorError(f"no shipped weights for variant {weights!r} in {WEIGHTS_DIR} and no such file")
    if not path.is_file():
        raise DetectorError(f"{path}: no such weights file")
    return path


def load_checkpoint(weights: str | Path | None) -> tuple[nn.Module, dict[str, Any]]:
    """Load a checkpoint (`.safetensors` or a training `.pt`); returns (model in eval mode, meta)."""
    from .models import create_model

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
    from .models import create_model

    state = read_state(resolve_weights(src))
    create_model(state["variant"], **state.get("model_kwargs", {})).load_state_dict(state["state_dict"])
    save_weights(dst, state)
    return Path(dst)
