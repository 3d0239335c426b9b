"""End to end on a freshly generated sequence: oracle detections (misses, clutter, static clutter under
platform drift, hot pixels) -> tracker -> metrics, through the benchmark script."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tracking import synth

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(not synth.DEFAULT_BACKGROUNDS.is_dir(), reason=f"{synth.DEFAULT_BACKGROUNDS} is absent (set ITD_DATA)")
def test_oracle_benchmark_short(tmp_path):
    out = tmp_path / "r.json"
    p = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "track_synth.py"), "--detector", "oracle",
                        "--seeds", "3", "--frames", "80", "--json", str(out)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "IDF1" in p.stdout and "acceptance" in p.stdout
    r = json.loads(out.read_text())
    m = r["mean"]
    assert m["IDF1"] >= 0.8 and m["HOTA"] >= 0.6 and m["false_new_per_hour"] == 0.0


def test_benchmark_bad_config_is_one_line(tmp_path):
    cfg = tmp_path / "t.yaml"
    cfg.write_text("tracker:\n  max_misses: -3\n")
    p = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "track_synth.py"), "--detector", "oracle",
                        "--tracker-config", str(cfg)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "max_misses" in p.stderr
