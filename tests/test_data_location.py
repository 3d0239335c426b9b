"""One data-location setting: `ITD_DATA` (default ../shared/data beside the repository), read by the tests,
the benchmarks, the training mixes and the default backgrounds."""
from __future__ import annotations

import subprocess
import sys

from conftest import REPO, pipeline_env
from detector.data_root import data_root
from detector.training_data import read_mix


def test_default_is_shared_data_beside_the_repository(monkeypatch):
    monkeypatch.delenv("ITD_DATA", raising=False)
    assert data_root() == REPO.parent / "shared" / "data"
    monkeypatch.setenv("ITD_DATA", "")
    assert data_root() == REPO.parent / "shared" / "data"


def test_itd_data_moves_tests_benchmarks_mixes_and_backgrounds(tmp_path):
    code = ("import sys; sys.path[:0] = ['tests', 'benchmarks']; import conftest, common; "
            "from tracking import synth; from detector import cli; "
            "print(conftest.DATA, common.DATA, synth.DEFAULT_BACKGROUNDS.parent, cli.DEFAULT_BACKGROUNDS.parent)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=pipeline_env(ITD_DATA=str(tmp_path)),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == [str(tmp_path)] * 4


def test_training_mix_paths_use_itd_data(monkeypatch, tmp_path):
    monkeypatch.setenv("ITD_DATA", str(tmp_path))
    mix = read_mix(REPO / "configs" / "detector-mix.yaml")
    assert [s.path for s in mix.sources] == [str(tmp_path / n) for n in ("sirst", "IRSTD-1k", "halmstad-ir")]
    assert mix.backgrounds == str(tmp_path / "ir-backgrounds")
