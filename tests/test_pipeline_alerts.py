"""The wire contract: every alert of every sink (console, JSONL, Redis pub/sub and stream, `subscribe`,
replay) validates against `python -m pipeline schema alert`; ids are unique and `seq` runs 1, 2, 3, ...
per camera."""
from __future__ import annotations

import io
import json
import subprocess
import sys
from collections import defaultdict

import pytest
from jsonschema import Draft202012Validator

from conftest import REPO, FakeDetector, make_clip, pipeline_env
from pipeline.alerts import Alert, AlertNumbering
from pipeline.config import parse_config
from pipeline.graph import Pipeline
from pipeline.replay import RecordingSink, replay, replay_config
from pipeline.sinks import ConsoleSink
from tracking.events import TrackEvent


def _schema(message: str) -> Draft202012Validator:
    res = subprocess.run([sys.executable, "-m", "pipeline", "schema", message], cwd=REPO, capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    schema = json.loads(res.stdout)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


@pytest.fixture(scope="module")
def alert_schema() -> Draft202012Validator:
    return _schema("alert")


def _check(validator: Draft202012Validator, alerts: list[dict], where: str) -> None:
    """Valid, unique ids, and per camera seq 1..n with no gap and no repeat."""
    assert alerts, f"{where}: no alerts"
    for a in alerts:
        errors = [e.message for e in validator.iter_errors(a)]
        assert not errors, f"{where}: {errors} in {a}"
    assert len({a["id"] for a in alerts}) == len(alerts), f"{where}: repeated ids"
    seqs = defaultdict(list)
    for a in alerts:
        seqs[a["camera"]].append(a["seq"])
    for cam, s in seqs.items():
        assert s == list(range(1, len(s) + 1)), f"{where}: camera {cam} seq {s}"


def test_every_sink_publishes_valid_alerts(tmp_path, redis_server, alert_schema, monkeypatch):
    clips = {c: make_clip(tmp_path / c, frames=40, images=True, video=False, seed=k) for k, c in enumerate("ab")}
    jsonl = tmp_path / "alerts.jsonl"
    config = parse_config(f"""cameras:
  a: {{source: {{type: sequence, path: {clips['a']}}}}}
  b: {{source: {{type: sequence, path: {clips['b']}}}}}
sinks:
  jsonl: {{path: {jsonl}}}
  console: {{events: [new, update, end]}}
  redis: {{url: "{redis_server.url}"}}
metrics: {{port: null}}
""")
    stdout = io.StringIO()
    monkeypatch.setattr(sys, "stdout", stdout)
    recorder = RecordingSink()
    assert Pipeline(config, detector=FakeDetector(), extra_sinks=[recorder]).run(install_signals=False).exit_code == 0
    monkeypatch.undo()

    r = redis_server.client()
    file_alerts = [json.loads(line) for line in jsonl.read_text().splitlines()]
    console = [json.loads(line) for line in stdout.getvalue().splitlines()]
    stream = [json.loads(f["alert"]) for _, f in r.xrange("itd:alerts")]
    recorded = [json.loads(a.to_json()) for a in recorder.alerts]
    for where, alerts in (("jsonl", file_alerts), ("console", console), ("redis stream", stream),
                          ("in-process", recorded)):
        _check(alert_schema, alerts, where)
    assert {a["camera"] for a in file_alerts} == {"a", "b"}
    # one alert message = one id, the same in every sink
    assert [a["id"] for a in file_alerts] == [a["id"] for a in console] == [a["id"] for a in stream]

    res = subprocess.run([sys.executable, "-m", "pipeline", "subscribe", "--redis", redis_server.url,
                          "--from-stream", "--count", str(len(stream))], cwd=REPO, env=pipeline_env(),
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    subscribed = [json.loads(line) for line in res.stdout.splitlines()]
    _check(alert_schema, subscribed, "subscribe")
    assert subscribed == stream

    status = _schema("status")
    health = json.loads(r.get("itd:camera:a"))
    assert not list(status.iter_errors(health)) and health["status"] == "finished"


def test_replay_alerts_are_valid(tmp_path, alert_schema):
    clip = make_clip(tmp_path / "seq", frames=40, images=True, video=False)
    jsonl = tmp_path / "alerts.jsonl"
    config = replay_config(str(clip), None, ["sinks.jsonl.path=" + str(jsonl)])
    report, code = replay(str(clip), config, tmp_path / "report.json", progress=False, detector=FakeDetector())
    assert code == 0 and report["metrics"]["alert_share"] == 1.0
    _check(alert_schema, [json.loads(line) for line in jsonl.read_text().splitlines()], "replay jsonl")


def test_alert_from_a_tracker_event_rounds_and_numbers_per_camera(alert_schema):
    e = TrackEvent("new", 1, 1, 0.123456789, 1.23456, 2, 0, 0, 3, 3, 0.912345, 0.9, 1, 1, 1, 1)
    numbering = AlertNumbering()
    a1, a2 = numbering.alerts([e, e], "cam1", 0.04, 1.5)
    (b1,) = numbering.alerts([e], "cam2", None, 1.5)
    assert (a1.seq, a2.seq, b1.seq) == (1, 2, 1) and a1.id != a2.id
    assert a1.x == 1.235 and a1.score == 0.9123
    wire = json.loads(a1.stamped(2.0).to_json())
    assert wire["schema"] == 2 and wire["published_at"] == 2.0 and not list(alert_schema.iter_errors(wire))
    assert Alert.model_validate_json(a1.to_json()) == a1


def test_subscribe_skips_what_is_not_an_alert(redis_server):
    r = redis_server.client()
    good = AlertNumbering().alerts([TrackEvent("new", 3, 7, 0.3, 10, 20, 1, 0, 3, 3, 0.9, 0.9, 3, 3, 5, 7)],
                                   "cam1", 0.28, 100.0)[0].stamped(101.0).to_json()
    r.xadd("itd:alerts", {"camera": "cam1", "event": "new", "alert": json.dumps({"event": "new", "k": 7})})
    r.xadd("itd:alerts", {"camera": "cam1", "event": "new", "alert": good})
    res = subprocess.run([sys.executable, "-m", "pipeline", "subscribe", "--redis", redis_server.url,
                          "--from-stream", "--count", "1"], cwd=REPO, env=pipeline_env(), capture_output=True,
                         text=True, timeout=30)
    assert res.returncode == 0 and res.stdout == good + "\n"
    assert res.stderr.count("skipped a message that is not an alert") == 1
