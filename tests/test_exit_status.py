"""Exit statuses and one-line messages of the command-line tools (README, "Exit statuses"): a truncated video
as a file, a sequence and through replay; Redis unreachable for the whole run; a missing source path;
`predict` on unreadable inputs and into a closed pipe. Real PyAV-encoded files, a real redis-server, the
real detector through the real command line."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import yaml

from conftest import REPO, faststart_copy, make_clip, pipeline_env, run_cli, truncate_file, write_mp4
from detector.exit_status import ExitStatus


def _clip_frames(n: int = 60) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    frames = []
    for i in range(n):
        f = (40 + rng.normal(0, 4, (128, 160))).clip(0, 255).astype(np.uint8)
        f[60:63, 20 + i:23 + i] = 220
        frames.append(f)
    return frames


@pytest.fixture
def cut_video(tmp_path):
    """A 60-frame H.264 MP4 with its index first (it still opens), cut in half."""
    whole = faststart_copy(write_mp4(tmp_path / "plain.mp4", _clip_frames()), tmp_path / "whole.mp4")
    return truncate_file(whole, tmp_path / "cut.mp4")


def _config(tmp_path, source: dict, **sinks) -> str:
    cfg = {"cameras": {"cam": {"source": source}}, "metrics": {"port": None},
           "sinks": {"jsonl": {"path": str(tmp_path / "alerts.jsonl")}, **sinks}}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def _one_error_line(stderr: str, *words: str) -> str:
    assert "Traceback" not in stderr, stderr[-3000:]
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, stderr[-3000:]
    for w in words:
        assert w in errors[0], errors[0]
    return errors[0]


# ---------------------------------------------------------------- a truncated video

@pytest.mark.timeout(200)
def test_truncated_video_as_file_source_names_the_frame_and_fails(tmp_path, cut_video):
    r = run_cli("run", _config(tmp_path, {"type": "file", "path": str(cut_video)}), timeout=180)
    assert r.returncode == ExitStatus.FAILED, r.stderr[-3000:]
    line = _one_error_line(r.stderr, "cannot read", "cut.mp4", "past frame", "of 60", "corrupt or truncated")
    frame = int(line.split("past frame ")[1].split()[0])
    assert 1 < frame < 60
    assert f"summary: {frame} frames (cam {frame})" in r.stderr  # the frames read are the frames processed


@pytest.mark.timeout(200)
def test_truncated_video_as_sequence_source_names_the_frame_and_fails(tmp_path, cut_video):
    seq = make_clip(tmp_path / "seq", frames=60, video=False)
    shutil.copy(cut_video, seq / "video.mp4")
    r = run_cli("run", _config(tmp_path, {"type": "sequence", "path": str(seq)}), timeout=180)
    assert r.returncode == ExitStatus.FAILED, r.stderr[-3000:]
    line = _one_error_line(r.stderr, "cannot read", "video.mp4", "past frame", "of 60", "corrupt or truncated")
    frame = int(line.split("past frame ")[1].split()[0])
    assert f"summary: {frame} frames (cam {frame})" in r.stderr


@pytest.mark.timeout(200)
def test_truncated_video_through_replay_names_the_frame_and_fails(tmp_path, cut_video):
    seq = make_clip(tmp_path / "seq", frames=60, video=False)
    shutil.copy(cut_video, seq / "video.mp4")
    r = run_cli("replay", str(seq), "--report", str(tmp_path / "report.json"), "--no-progress", timeout=180)
    assert r.returncode == ExitStatus.FAILED, r.stderr[-3000:]
    line = _one_error_line(r.stderr, "cannot read", "past frame", "of 60", "corrupt or truncated")
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["exit_code"] == ExitStatus.FAILED
    assert report["frames"] == int(line.split("past frame ")[1].split()[0])


def _unreadable(tmp_path, kind: str):
    if kind == "index last, cut":  # as PyAV writes by default: cut before its index, it does not open at all
        return truncate_file(write_mp4(tmp_path / "whole.mp4", _clip_frames()), tmp_path / "cut.mp4")
    bad = tmp_path / "cut.mp4"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 20000, np.uint8).tobytes())  # not a video
    return bad


@pytest.mark.parametrize("kind", ["index last, cut", "not a video"])
def test_unreadable_video_through_replay_is_a_user_mistake(tmp_path, kind):
    cut = _unreadable(tmp_path, kind)
    r = run_cli("replay", str(cut), "--report", str(tmp_path / "report.json"), "--no-progress", timeout=120)
    assert r.returncode == ExitStatus.USAGE, r.stderr[-3000:]
    _one_error_line(r.stderr, "cannot read", "cut.mp4", "corrupt or truncated")


@pytest.mark.parametrize("source", ["file", "sequence"])
@pytest.mark.parametrize("kind", ["index last, cut", "not a video"])
def test_unreadable_video_through_run_is_the_same_user_mistake(tmp_path, kind, source):
    """The same answer as `replay`: exit 2 before any work, one `error:` line."""
    cut = _unreadable(tmp_path, kind)
    r = run_cli("run", _config(tmp_path, {"type": source, "path": str(cut)}), timeout=120)
    assert r.returncode == ExitStatus.USAGE, r.stderr[-3000:]
    _one_error_line(r.stderr, "camera cam", "cannot read", "cut.mp4", "corrupt or truncated")
    assert "summary:" not in r.stderr


# ---------------------------------------------------------------- exit statuses

def test_missing_source_path_is_a_user_mistake(tmp_path):
    r = run_cli("run", _config(tmp_path, {"type": "file", "path": str(tmp_path / "nope.mp4")}), timeout=60)
    assert r.returncode == ExitStatus.USAGE, r.stderr[-3000:]
    _one_error_line(r.stderr, "camera cam", "no such file", "nope.mp4")


@pytest.mark.timeout(200)
def test_redis_unreachable_for_the_whole_run_spills_alerts_and_exits_undelivered(tmp_path, redis_server):
    redis_server.stop()  # a real server's port, now closed: Redis is unreachable for the whole run
    seq = make_clip(tmp_path / "seq", frames=60)
    spill = tmp_path / "spill.jsonl"
    redis = {"url": redis_server.url, "connect_timeout_s": 0.2, "spill_path": str(spill)}
    r = run_cli("run", _config(tmp_path, {"type": "sequence", "path": str(seq)}, redis=redis), timeout=180)
    assert r.returncode == ExitStatus.UNDELIVERED, r.stderr[-3000:]
    delivered = [json.loads(line) for line in (tmp_path / "alerts.jsonl").read_text().splitlines()]
    spilled = [json.loads(line) for line in spill.read_text().splitlines()]
    assert delivered, "the clip's targets should alert"
    key = lambda a: (a["event"], a["track_id"], a["frame_index"])  # noqa: E731
    assert sorted(map(key, spilled)) == sorted(map(key, delivered))  # nothing lost
    _one_error_line(r.stderr, f"{len(spilled)} alerts", str(spill))
    assert f"{len(spilled)} undelivered" in r.stderr  # the summary line


@pytest.mark.timeout(200)
def test_reachable_redis_delivers_everything_and_exits_ok(tmp_path, redis_server):
    seq = make_clip(tmp_path / "seq", frames=60)
    spill = tmp_path / "spill.jsonl"
    redis = {"url": redis_server.url, "spill_path": str(spill)}
    r = run_cli("run", _config(tmp_path, {"type": "sequence", "path": str(seq)}, redis=redis), timeout=180)
    assert r.returncode == ExitStatus.OK, r.stderr[-3000:]
    assert not spill.exists() and "0 undelivered" in r.stderr
    assert redis_server.client().xlen("itd:alerts") == len((tmp_path / "alerts.jsonl").read_text().splitlines())


# ---------------------------------------------------------------- predict

def _predict(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "detector", "predict", *args], cwd=REPO, env=pipeline_env(),
                          capture_output=True, text=True, timeout=120, **kw)


def test_predict_with_no_readable_input_is_a_user_mistake(tmp_path):
    for name in ("a.png", "b.jpg"):
        (tmp_path / name).write_bytes(b"not an image")
    r = _predict(str(tmp_path))
    assert r.returncode == ExitStatus.USAGE and r.stdout == ""
    _one_error_line(r.stderr, "none of the 2 inputs")


def test_predict_with_some_unreadable_inputs_fails_after_the_readable_ones(tmp_path):
    from PIL import Image

    Image.fromarray(_clip_frames(1)[0]).save(tmp_path / "good.png")
    (tmp_path / "bad.png").write_bytes(b"not an image")
    r = _predict(str(tmp_path))
    assert r.returncode == ExitStatus.FAILED
    assert [json.loads(line)["image"].endswith("good.png") for line in r.stdout.splitlines()] == [True]
    _one_error_line(r.stderr, "1 of 2 images")


def test_predict_into_a_closed_pipe_has_no_traceback(tmp_path):
    from PIL import Image

    for k, f in enumerate(_clip_frames(20)):  # ~100 detections per image at threshold 0.01: > a pipe's buffer
        Image.fromarray(f).save(tmp_path / f"{k:02d}.png")
    r = subprocess.run(f"set -o pipefail; {sys.executable} -m detector predict {tmp_path} --threshold 0.01 | head -2",
                       shell=True, executable="/bin/bash", cwd=REPO, env=pipeline_env(), capture_output=True,
                       text=True, timeout=120)
    assert len(r.stdout.splitlines()) == 2
    assert r.returncode == ExitStatus.OK and r.stderr == "", r.stderr[-3000:]


# ---------------------------------------------------------------- a live camera that never delivers a frame

def _never_config(tmp_path, url: str, first_frame_attempts) -> str:
    camera = {"source": {"type": "rtsp", "url": url, "open_timeout_s": 2},
              "reconnect": {"initial_s": 0.2, "max_s": 0.5, "first_frame_attempts": first_frame_attempts}}
    return _write(tmp_path, {"cameras": {"cam": camera}, "metrics": {"port": None},
                             "sinks": {"jsonl": {"path": str(tmp_path / "alerts.jsonl")}}})


def _write(tmp_path, cfg: dict) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


@pytest.mark.timeout(120)
def test_live_camera_without_a_first_frame_fails_after_its_reconnect_budget(tmp_path, rtsp_server_factory):
    """A real RTSP server without the camera's stream (404): the run ends by itself, non-zero, and says why."""
    rtsp = rtsp_server_factory(write_mp4(tmp_path / "v.mp4", _clip_frames(30)))
    url = rtsp.url.replace("/cam1", "/nope")
    r = run_cli("run", _never_config(tmp_path, url, 2), timeout=100)
    assert r.returncode == ExitStatus.FAILED, r.stderr[-3000:]
    _one_error_line(r.stderr, "camera cam: no frame from", "/nope", "in 2 attempts", "first_frame_attempts")


@pytest.mark.timeout(120)
def test_ctrl_c_before_a_live_camera_delivered_anything_is_not_success(tmp_path):
    import signal
    import time

    from conftest import free_port

    url = f"rtsp://127.0.0.1:{free_port()}/cam1"  # nothing listens there
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "run", _never_config(tmp_path, url, None)],
                            cwd=REPO, env=pipeline_env(), stderr=subprocess.PIPE, text=True)
    time.sleep(8)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == ExitStatus.FAILED, err[-3000:]
    _one_error_line(err, "camera cam: no frame before the stop")


# ---------------------------------------------------------------- config mistakes: one line that says what to write

@pytest.mark.parametrize("override, words", [
    ("detector.device=gpu", ["--set detector.device", "'gpu'", "auto, cpu, cuda or cuda:N"]),
    ("detector.precision=int4", ["--set detector.precision", "'int4'", "'fp32'", "'int8'"]),
    ("detector.devise=cpu", ["--set detector.devise", "unknown key", "did you mean 'device'?"]),
    ("tracker.high_scor=0.5", ["--set tracker.high_scor", "did you mean 'high_score'?"]),
])
def test_config_mistakes_name_what_is_allowed(override, words):
    r = run_cli("validate", "configs/demo.yaml", "--set", override, timeout=60)
    assert r.returncode == ExitStatus.USAGE, r.stderr[-3000:]
    _one_error_line(r.stderr, *words)


def test_a_key_typo_in_a_file_suggests_the_nearest_key(tmp_path):
    path = _write(tmp_path, {"cameras": {"cam": {"source": {"type": "file", "path": "x.mp4", "realtme": True}}}})
    r = run_cli("validate", path, timeout=60)
    assert r.returncode == ExitStatus.USAGE, r.stderr[-3000:]
    _one_error_line(r.stderr, "config.yaml:", "cameras.cam.source.realtme: unknown key (did you mean 'realtime'?)")


def test_validate_recognises_the_training_mix_and_run_refuses_it():
    r = run_cli("validate", "configs/detector-mix.yaml", timeout=60)
    if r.returncode == ExitStatus.USAGE:  # the data are elsewhere: still recognised, the folders named
        assert "no such folder" in r.stderr and "ITD_DATA" in r.stderr, r.stderr
    else:
        assert r.returncode == ExitStatus.OK, r.stderr[-3000:]
        assert "ok: a detector training mix, not a pipeline config (3 sources" in r.stdout
        assert "python -m detector train --data configs/detector-mix.yaml" in r.stdout
    r = run_cli("run", "configs/detector-mix.yaml", timeout=60)
    assert r.returncode == ExitStatus.USAGE, r.stderr[-3000:]
    _one_error_line(r.stderr, "is a detector training mix", "python -m detector train --data configs/detector-mix.yaml")
