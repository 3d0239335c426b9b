"""What a training run reads: one dataset, or a mix of several described in a YAML file.

    # configs/detector-mix.yaml (paths relative to the file; ${ITD_DATA}: the shared data, detector.data_root)
    sources:
      - {path: "${ITD_DATA}/sirst", weight: 1.0}
      - {path: "${ITD_DATA}/IRSTD-1k", weight: 1.0}
      - {path: "${ITD_DATA}/halmstad-ir", weight: 1.0, every: 10}   # every 10th video frame
    synthetic_share: 0.3          # synthetic targets on target-free backgrounds (and plain skies)
    backgrounds: "${ITD_DATA}/ir-backgrounds"

Each source's `train` split is trained on (drawn by weight); each one's `val` split is a val set of its own,
and checkpoints and thresholds are chosen on their mean F1. No test split is read.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .data_root import expand
from .datasets import Sample, open_dataset
from .errors import DetectorError


class Source(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str
    weight: float = Field(1.0, gt=0)
    every: int | None = Field(None, ge=1, description="video datasets: every n-th frame (default 10)")
    val_every: int | None = Field(None, ge=1, description="video datasets: every n-th frame for val (default 10)")


class Mix(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sources: list[Source] = Field(min_length=1)
    synthetic_share: float = Field(0.3, ge=0, le=1)
    backgrounds: str | None = None


@dataclass
class TrainingData:
    train: list[tuple[str, list[Sample], float]]  # (name, samples, weight)
    val: dict[str, list[Sample]]
    synthetic_share: float
    backgrounds: str | None


def read_mix(path: Path) -> Mix:
    try:
        raw = yaml.safe_load(path.read_text())
        mix = Mix.model_validate(raw)
    except yaml.YAMLError as exc:
        raise DetectorError(f"{path}: not valid YAML ({exc.__class__.__name__})") from None
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        raise DetectorError(f"{path}: {where}: {err['msg']}") from None
    base = path.parent
    for s in mix.sources:
        s.path = str(base / expand(s.path))
    if mix.backgrounds:
        mix.backgrounds = str(base / expand(mix.backgrounds))
    return mix


def load_training_data(data: str | Path, backgrounds: str | None = None, synthetic_share: float = 0.3,
                       motion: bool = False) -> TrainingData:
    """`data`: a dataset folder / COCO json, or a `.yaml` mix of several. `motion`: video frames carry their
    motion residuals, and a val set of moving sequences rendered on the training backgrounds is added
    (`moving_val_set`)."""
    data = Path(data)
    if data.suffix in (".yaml", ".yml"):
        if not data.is_file():
            raise DetectorError(f"{data}: no such mix file")
        mix = read_mix(data)
    else:
        mix = Mix(sources=[Source(path=str(data))], synthetic_share=synthetic_share, backgrounds=backgrounds)
    train, val = [], {}
    for s in mix.sources:
        name = Path(s.path).name
        train.append((name, open_dataset(s.path, "train", s.every, motion), s.weight))
        val[name] = open_dataset(s.path, "val", s.val_every, motion)
        if not train[-1][1]:
            raise DetectorError(f"{s.path}: the train split is empty")
    backgrounds = mix.backgrounds or backgrounds
    if motion and backgrounds:
        val["moving-synthetic"] = moving_val_set(backgrounds)
    return TrainingData(train, val, mix.synthetic_share, backgrounds)


MOVING_VAL_SEED = 20261202


def moving_val_set(backgrounds: str | Path, count: int = 160, size: int = 256) -> list[Sample]:
    """Fixed moving sequences (dim targets, SCR 2-8) on the *training* backgrounds, scored on their last frame
    with its residual: the val set that makes checkpoint choice see the motion input. Never the benchmark's
    backgrounds (`synthetic.BENCHMARK_SCENES`)."""
    import numpy as np

    from .augment import background_files, sequence_residuals
    from .datasets import box_gates
    from .imageio import load_grey
    from .synthetic import moving_sequence

    files = background_files(backgrounds)
    rng = np.random.default_rng(MOVING_VAL_SEED)
    out = []
    for i in range(count if files else 0):
        bg = load_grey(files[int(rng.integers(len(files)))])
        frames, cents, boxes = moving_sequence(bg, rng, size, int(rng.integers(12, 30)), extended=0.1,
                                               scr=(2.0, 8.0))
        residual = sequence_residuals(frames)[-1]
        out.append(Sample(f"moving-{i}", frames[-1], cents, boxes, box_gates(boxes), residual))
    return out
