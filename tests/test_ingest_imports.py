"""The ingest role (camera readers -> frames stream) runs without torch: a real `--role ingest` process,
its imports listed by `python -X importtime`."""
from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import REPO, make_clip, pipeline_env


@pytest.mark.timeout(120)
def test_ingest_role_never_imports_torch(tmp_path, redis_server):
    clip = make_clip(tmp_path / "c", frames=20, images=False)
    cfg = tmp_path / "ingest.yaml"
    cfg.write_text(f"""cameras:
  cam: {{source: {{type: file, path: {clip}/video.mp4, realtime: true}}}}
streams: {{url: "{redis_server.url}", frames_maxlen: 32}}
metrics: {{port: null}}
""")
    res = subprocess.run([sys.executable, "-X", "importtime", "-m", "pipeline", "run", str(cfg), "--role", "ingest"],
                         cwd=REPO, env=pipeline_env(), capture_output=True, text=True, timeout=100)
    assert res.returncode == 0, res.stderr[-2000:]
    imported = [line.rsplit("|", 1)[-1].strip() for line in res.stderr.splitlines() if line.startswith("import time:")]
    assert "pipeline.sources" in imported and "tracking.sequences" in imported
    assert not [m for m in imported if m == "torch" or m.startswith("torch.")], "the ingest role imported torch"
    assert redis_server.client().xlen("itd:frames") == 21  # 20 frames and the end
