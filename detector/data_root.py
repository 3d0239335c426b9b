"""Where the shared data sets live (SIRST, IRSTD-1k, MDvsFA-test, halmstad-ir, ir-backgrounds): the folder named
by the environment variable `ITD_DATA`, by default `../shared/data` beside the repository root. Tests, benchmarks,
training mixes (`${ITD_DATA}` in their paths) and the default backgrounds all read it from here."""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
ENV = "ITD_DATA"


def data_root() -> Path:
    """`$ITD_DATA` when set (and not empty), else `<repo>/../shared/data`."""
    value = os.environ.get(ENV)
    return Path(value).expanduser() if value else REPO_ROOT.parent / "shared" / "data"


def expand(path: str) -> str:
    """`path` with `${ITD_DATA}` (or `$ITD_DATA`) replaced by `data_root()`."""
    root = str(data_root())
    return path.replace("${" + ENV + "}", root).replace("$" + ENV, root)
