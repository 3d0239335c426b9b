"""Hints for config mistakes: the nearest known key for an unknown one (difflib), found by walking the config
models along pydantic's error location."""
from __future__ import annotations

import difflib
from typing import Annotated, Any, get_args, get_origin

from pydantic import BaseModel


def _models(tp: Any) -> list[type[BaseModel]]:
    """The pydantic models in `tp` (through Optional, unions and Annotated)."""
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [tp]
    return [m for a in get_args(tp) for m in _models(a)]


def _step(tp: Any, part: Any) -> Any:
    origin = get_origin(tp)
    if origin is Annotated:
        return _step(get_args(tp)[0], part)
    if origin is dict:
        return get_args(tp)[1]
    if origin is list:
        return get_args(tp)[0]
    models = _models(tp)
    if len(models) > 1:  # a tagged union: pydantic's location names the tag (e.g. 'file')
        for m in models:
            tag = m.model_fields.get("type")
            if tag is not None and part in get_args(tag.annotation):
                return m
    for m in models:
        if isinstance(part, str) and part in m.model_fields:
            return m.model_fields[part].annotation
    return None


def known_keys(root: type[BaseModel], loc: tuple) -> list[str]:
    """The keys allowed beside the last part of `loc` (a pydantic error location under `root`)."""
    tp: Any = root
    for part in loc[:-1]:
        tp = _step(tp, part)
        if tp is None:
            return []
    return sorted({k for m in _models(tp) for k in m.model_fields})


def unknown_key_message(root: type[BaseModel], loc: tuple) -> str:
    """`unknown key (did you mean 'realtime'?)` when a known key is close, else `unknown key`."""
    keys = known_keys(root, loc)
    near = difflib.get_close_matches(str(loc[-1]), keys, n=1, cutoff=0.6)
    if near:
        return f"unknown key (did you mean {near[0]!r}?)"
    return "unknown key"
