"""`python tests/distributed_worker.py ARGS` = `python -m pipeline ARGS`, with the tests' `FakeDetector` in place
of the trained model when ITD_FAKE_DETECTOR=1 (no trained weights on this machine yet)."""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

if os.environ.get("ITD_FAKE_DETECTOR") == "1":
    import pipeline.graph
    from conftest import FakeDetector

    pipeline.graph.load_detector = lambda config, **_: FakeDetector()

from pipeline.cli import main  # noqa: E402

sys.exit(main(sys.argv[1:]))
