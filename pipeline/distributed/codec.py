"""Stream entries <-> pipeline records.

A frames-stream entry is a `Frame` (image: raw little-endian pixels, zlib-compressed: lossless, dtype and
shape kept; its motion residual, when the reader computed one, as zlib-compressed int16) or a camera's
`EndOfStream`; a detections-stream entry is a `DetectedFrame` without its image
(width, height and dtype only) or the forwarded `EndOfStream`. Every entry carries the camera, the ingest
run id (its start time in ns: a restarted ingest worker starts a new run), the per-camera publish sequence
number `seq` (1, 2, ... with no gaps unless the stream dropped entries), whether the camera is live, and
`sent_at` (wall clock at XADD, for the hop latency).
"""
from __future__ import annotations

import time
import zlib
from dataclasses import dataclass
from typing import Union

import numpy as np

from detector.detections import Detections
from tracking.egomotion import SceneOffset
from pipeline.frames import DetectedFrame, EndOfStream, Frame

Fields = dict[bytes, bytes]
DTYPES = {"u1": np.dtype("<u1"), "u2": np.dtype("<u2")}


@dataclass(frozen=True)
class Envelope:
    """Where an entry sits in its camera's sequence."""

    camera: str
    run: int
    seq: int
    live: bool
    sent_at: float | None = None  # None: stamped when encoded


Record = Union[Frame, DetectedFrame, EndOfStream]


def _num(v: float | None) -> bytes:
    return b"" if v is None else repr(float(v)).encode()


def _opt(b: bytes) -> float | None:
    return None if b == b"" else float(b)


def _head(kind: bytes, env: Envelope) -> Fields:
    return {b"kind": kind, b"camera": env.camera.encode(), b"run": str(env.run).encode(),
            b"seq": str(env.seq).encode(), b"live": b"1" if env.live else b"0",
            b"sent_at": repr(time.time() if env.sent_at is None else env.sent_at).encode()}


def _frame_meta(f: Frame) -> Fields:
    dt = f.image.dtype
    if dt.kind != "u" or dt.itemsize not in (1, 2) or f.image.ndim != 2:
        raise ValueError(f"frame {f.camera}#{f.index}: expected 2-D uint8/uint16, got {dt} {f.image.shape}")
    return {b"index": str(f.index).encode(), b"pts": _num(f.pts), b"captured_at": _num(f.captured_at),
            b"timestamp": _num(f.timestamp), b"dtype": f"u{dt.itemsize}".encode(),
            b"h": str(f.image.shape[0]).encode(), b"w": str(f.image.shape[1]).encode(),
            b"sx": _num(f.scene.x if f.scene else None), b"sy": _num(f.scene.y if f.scene else None),
            b"sm": b"0" if f.scene is not None and not f.scene.measured else b"1"}


def _end(end: EndOfStream, env: Envelope) -> Fields:
    return {**_head(b"end", env), b"last_index": str(end.last_index).encode(),
            b"timestamp": _num(end.timestamp), b"error": (end.error or "").encode()}


def encode_frame(item: Frame | EndOfStream, env: Envelope, level: int = 1) -> Fields:
    """A frames-stream entry; `level` is the zlib level (1: fast, still lossless)."""
    if isinstance(item, EndOfStream):
        return _end(item, env)
    pixels = np.ascontiguousarray(item.image, dtype=item.image.dtype.newbyteorder("<"))
    out = {**_head(b"frame", env), **_frame_meta(item), b"image": zlib.compress(pixels.tobytes(), level)}
    if item.motion is not None:
        out[b"motion"] = zlib.compress(np.ascontiguousarray(item.motion, "<i2").tobytes(), level)
    return out


def encode_detected(item: DetectedFrame | EndOfStream, env: Envelope) -> Fields:
    """A detections-stream entry (float32 arrays as raw bytes; no image)."""
    if isinstance(item, EndOfStream):
        return _end(item, env)
    d = item.detections
    return {**_head(b"det", env), **_frame_meta(item.frame), b"n": str(len(d)).encode(),
            b"xy": d.xy.astype("<f4").tobytes(), b"ltrb": d.ltrb.astype("<f4").tobytes(),
            b"score": d.score.astype("<f4").tobytes()}


def envelope(f: Fields) -> Envelope:
    return Envelope(f[b"camera"].decode(), int(f[b"run"]), int(f[b"seq"]), f[b"live"] == b"1",
                    float(f[b"sent_at"]))


def _decode_end(f: Fields) -> EndOfStream:
    return EndOfStream(f[b"camera"].decode(), int(f[b"last_index"]), _opt(f[b"timestamp"]) or 0.0,
                       f[b"error"].decode() or None)


def _frame(f: Fields, image: np.ndarray, motion: np.ndarray | None = None) -> Frame:
    sx, sy = _opt(f.get(b"sx", b"")), _opt(f.get(b"sy", b""))
    return Frame(f[b"camera"].decode(), int(f[b"index"]), _opt(f[b"pts"]), float(f[b"captured_at"]),
                 float(f[b"timestamp"]), image,
                 None if sx is None or sy is None else SceneOffset(sx, sy, f.get(b"sm", b"1") != b"0"),
                 motion=motion)


def decode(f: Fields) -> tuple[Record, Envelope]:
    """The record of a frames- or detections-stream entry, with its envelope.

    Detections come back with a placeholder image of the right shape and dtype (zero-strided, no memory):
    the tracker needs only the frame size.
    """
    kind, env = f[b"kind"], envelope(f)
    if kind == b"end":
        return _decode_end(f), env
    dtype, shape = DTYPES[f[b"dtype"].decode()], (int(f[b"h"]), int(f[b"w"]))
    if kind == b"frame":
        image = np.frombuffer(zlib.decompress(f[b"image"]), dtype=dtype).reshape(shape)
        motion = (np.frombuffer(zlib.decompress(f[b"motion"]), "<i2").reshape(shape).astype(np.int16)
                  if b"motion" in f else None)
        return _frame(f, image.astype(dtype.newbyteorder("="), copy=False), motion), env
    if kind == b"det":
        n = int(f[b"n"])
        xy, score = np.frombuffer(f[b"xy"], "<f4").reshape(n, 2), np.frombuffer(f[b"score"], "<f4").reshape(n)
        dets = (Detections(xy, np.frombuffer(f[b"ltrb"], "<f4").reshape(n, 4), score) if b"ltrb" in f
                else Detections.from_xywh(xy, np.frombuffer(f[b"wh"], "<f4").reshape(n, 2), score))  # an older worker's
        placeholder = np.broadcast_to(np.zeros((), dtype.newbyteorder("=")), shape)
        return DetectedFrame(_frame(f, placeholder), dets), env
    raise ValueError(f"unknown stream entry kind {kind!r}")
