"""`python -m pipeline run | validate | subscribe | replay | schema | ui`.

User mistakes end with one `error: ...` line on stderr and exit status 2; a run that fails exits 1; a run whose
alerts did not all reach their sinks exits 3 (`detector.exit_status.ExitStatus`, the README's table).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

from detector.exit_status import ExitStatus, stdout_closed
from pipeline.config import ConfigError, load_config, redact_url

log = logging.getLogger("pipeline")

REPO_CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def _setup_logging(level: str = "info") -> None:
    logging.basicConfig(stream=sys.stderr, level=getattr(logging, level.upper()),
                        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", force=True)


def _user_error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return ExitStatus.USAGE


def _config_problems(e: ConfigError) -> int:
    for line in e.problems:
        print(f"error: {line}", file=sys.stderr)
    return ExitStatus.USAGE


def _training_mix(path: str | Path) -> bool:
    """Whether `path` is a detector training mix (`sources:`, no `cameras:`) rather than a pipeline config."""
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return False
    return isinstance(data, dict) and "sources" in data and "cameras" not in data


def _validate_mix(path: str) -> int:
    from detector import DetectorError
    from detector.training_data import read_mix

    try:
        mix = read_mix(Path(path))
    except DetectorError as e:
        return _user_error(str(e))
    missing = [f"{path}: sources.{k}.path: no such folder {s.path} (the data: ITD_DATA)"
               for k, s in enumerate(mix.sources) if not Path(s.path).exists()]
    for line in missing:
        print(f"error: {line}", file=sys.stderr)
    if missing:
        return ExitStatus.USAGE
    names = ", ".join(Path(s.path).name for s in mix.sources)
    print(f"{path}: ok: a detector training mix, not a pipeline config ({len(mix.sources)} sources: {names}); "
          f"train on it with: python -m detector train --data {path} ...")
    return ExitStatus.OK


def cmd_validate(args) -> int:
    if _training_mix(args.config) and not args.set:
        return _validate_mix(args.config)
    try:
        config = load_config(args.config, args.set)
    except ConfigError as e:
        return _config_problems(e)
    cams = ", ".join(f"{n} ({c.source.type})" for n, c in config.cameras.items() if c.enabled)
    sinks = ", ".join(k for k, v in config.sinks if v is not None) or "none"
    print(f"{args.config}: ok: cameras {cams}; sinks {sinks}")
    return ExitStatus.OK


def cmd_run(args) -> int:
    from pipeline.graph import Pipeline, StartupError

    path = args.config or REPO_CONFIGS / "demo.yaml"
    if _training_mix(path):
        return _user_error(f"{path} is a detector training mix (sources:), not a pipeline config: train on it with "
                           f"python -m detector train --data {path}; run a pipeline config (configs/demo.yaml, ...)")
    try:
        config = load_config(path, args.set)
    except ConfigError as e:
        return _config_problems(e)
    if args.role is not None:
        from pipeline.distributed.roles import check_role
        problem = check_role(config, args.role)
        if problem:
            return _user_error(problem)
    _setup_logging("debug" if args.verbose else config.run.log_level)
    try:
        result = Pipeline(config, role=args.role).run()
    except StartupError as e:
        return _user_error(str(e))
    if args.role in (None, "track"):
        for line in result.found + _output_lines(config, result):
            print(line, file=sys.stderr)
        print(result.summary, file=sys.stderr)
    if result.exit_code:
        print(f"error: {result.message}", file=sys.stderr)
    return result.exit_code


def _output_lines(config, result) -> list[str]:
    """Where the run wrote its annotated videos and its alerts file (`video: runs/demo/drone.mp4`)."""
    lines = []
    video, jsonl = config.sinks.video, config.sinks.jsonl
    if video is not None:
        for cam in config.cameras:
            path = Path(video.path.replace("{camera}", cam))
            if (video.cameras is None or cam in video.cameras) and path.is_file():
                lines.append(f"video: {path}")
    if jsonl is not None and Path(jsonl.path).is_file():
        lines.append(f"alerts: {jsonl.path}")
    return lines


def cmd_replay(args) -> int:
    from pipeline.graph import StartupError
    from pipeline.replay import replay, replay_config
    from pipeline.sources import SourceError
    from tracking.sequences import is_dataset_folder

    if is_dataset_folder(args.seq):
        return _replay_folder(args)
    if args.split:
        return _user_error(f"--split needs a dataset folder (videos/, labels/, splits/), not {args.seq}")
    try:
        config = replay_config(args.seq, args.config, args.set)
    except ConfigError as e:
        return _config_problems(e)
    _setup_logging("debug" if args.verbose else "warning")
    try:
        report, code = replay(args.seq, config, args.report, args.tracks_out, progress=not args.no_progress)
    except SourceError as e:
        return _user_error(str(e))
    except StartupError as e:
        return _user_error(str(e))
    m = report.get("metrics") or {}
    summary = {k: report[k] for k in ("sequence", "frames", "alerts", "tracks", "processing_fps")}
    summary.update({k: m[k] for k in ("HOTA", "IDF1", "MOTA", "alert_share") if k in m})
    print(json.dumps(summary))
    if code:
        print(f"error: {report.get('error')}", file=sys.stderr)
    return code


def _replay_folder(args) -> int:
    from pipeline.graph import StartupError
    from pipeline.replay import replay_folder
    from pipeline.sources import SourceError

    keys = ("HOTA", "IDF1", "alert_share", "latency_frames_median", "false_new_per_hour")

    def line(report: dict) -> None:
        m = report.get("metrics") or {}
        print(json.dumps({"sequence": report["sequence"], "frames": report["frames"], "alerts": report["alerts"],
                          **{k: m[k] for k in keys if k in m}}), flush=True)

    _setup_logging("debug" if args.verbose else "warning")
    try:
        out, code = replay_folder(args.seq, args.split, args.config, args.set, args.report, args.tracks_out,
                                  progress=not args.no_progress, on_report=line)
    except ConfigError as e:
        return _config_problems(e)
    except (SourceError, StartupError) as e:
        return _user_error(str(e))
    print(json.dumps({"summary": out["summary"]}))
    if code:
        bad = [f"{r['sequence']}: {r['error']}" for r in out["sequences"] if r.get("error")]
        print(f"error: {'; '.join(bad) or 'a sequence failed'}", file=sys.stderr)
    return code


def cmd_subscribe(args) -> int:
    import redis
    from pydantic import ValidationError
    from redis.backoff import ExponentialBackoff, NoBackoff
    from redis.retry import Retry

    from pipeline.alerts import Alert

    url = args.redis or os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=3, retry=Retry(NoBackoff(), 0),
                                      decode_responses=True)
    except ValueError as e:
        return _user_error(f"bad Redis URL {redact_url(url)}: {e}")
    events = set(args.events.split(",")) if args.events else None
    shown, failures, warned = 0, 0, False
    delays = ExponentialBackoff(cap=5.0, base=0.5)

    def emit(data: str) -> bool:
        nonlocal shown
        try:
            alert = Alert.model_validate_json(data)
        except ValidationError as e:
            err = e.errors()[0]
            where = ".".join(map(str, err["loc"])) or "message"
            print(f"subscribe: skipped a message that is not an alert ({where}: {err['msg']})", file=sys.stderr)
            return False
        if events is not None and alert.event not in events:
            return False
        sys.stdout.write(alert.to_json() + "\n")
        sys.stdout.flush()
        shown += 1
        return args.count is not None and shown >= args.count

    last_id = "0" if args.from_stream else "$"
    try:
        while True:
            try:
                if args.from_stream:  # catch up from the capped stream, then follow it
                    while True:
                        resp = client.xread({args.stream: last_id}, block=1000, count=100)
                        for _, entries in resp or []:
                            for entry_id, fields in entries:
                                last_id = entry_id
                                if args.camera and fields.get("camera") != args.camera:
                                    continue
                                if emit(fields.get("alert", "")):
                                    return ExitStatus.OK
                        failures, warned = 0, False
                else:
                    pubsub = client.pubsub(ignore_subscribe_messages=True)
                    if args.camera:
                        pubsub.subscribe(f"{args.prefix}:{args.camera}")
                    else:
                        pubsub.psubscribe(f"{args.prefix}:*")
                    if warned:
                        print(f"subscribe: reconnected to {redact_url(url)}", file=sys.stderr)
                    failures, warned = 0, False
                    while True:
                        msg = pubsub.get_message(timeout=1.0)
                        if msg and msg["type"] in ("message", "pmessage") and emit(msg["data"]):
                            return ExitStatus.OK
            except (redis.ConnectionError, redis.TimeoutError, OSError) as e:
                if not warned:
                    print(f"subscribe: redis {redact_url(url)} unreachable ({str(e).splitlines()[0]}); retrying",
                          file=sys.stderr)
                    warned = True
                time.sleep(delays.compute(failures))
                failures += 1
            except redis.AuthenticationError as e:
                return _user_error(f"redis {redact_url(url)}: {e}")
    except KeyboardInterrupt:
        return ExitStatus.OK


def cmd_schema(args) -> int:
    from pipeline.alerts import schema_text

    print(schema_text(args.message))
    return 0


def cmd_ui(args) -> int:
    from pipeline.ui.launch import ConsoleError, run_console

    try:
        return run_console(args.redis or os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0", args.host,
                           args.port, args.forget_after)
    except ConsoleError as e:
        return _user_error(str(e))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m pipeline", description="Infrared tiny-target pipeline")
    sub = p.add_subparsers(dest="command", required=True)

    def add_set(q):
        q.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config value, e.g. --set cameras.cam1.fps=30 (repeatable)")

    q = sub.add_parser("run", help="run the pipeline described by a config file")
    q.add_argument("config", nargs="?", help="YAML config (default: configs/demo.yaml)")
    add_set(q)
    q.add_argument("--role", metavar="ROLE",
                   help="run only this part of the graph (ingest, detect or track), joined to the others by the "
                        "Redis Streams of `streams:`; default: everything in this process")
    q.add_argument("-v", "--verbose", action="store_true")
    q.set_defaults(func=cmd_run)

    q = sub.add_parser("validate", help="check a config file and report every problem")
    q.add_argument("config")
    add_set(q)
    q.set_defaults(func=cmd_validate)

    q = sub.add_parser("subscribe", help="print alerts from Redis as JSON lines")
    q.add_argument("--camera", help="only this camera")
    q.add_argument("--redis", help="Redis URL (default: $REDIS_URL or redis://127.0.0.1:6379/0)")
    q.add_argument("--prefix", default="itd:alerts", help="pub/sub channel prefix (default itd:alerts)")
    q.add_argument("--from-stream", action="store_true",
                   help="read the capped stream from its start (catch up), then follow it")
    q.add_argument("--stream", default="itd:alerts", help="stream name for --from-stream")
    q.add_argument("--events", help="comma-separated events to show (default all)")
    q.add_argument("--count", type=int, help="exit after this many alerts")
    q.set_defaults(func=cmd_subscribe)

    q = sub.add_parser("replay", help="run a recorded sequence through the graph losslessly and score it")
    q.add_argument("seq", help="MOTChallenge folder, ITT COCO json (file.json#scene), video with gt beside it (or "
                               "in ../labels/ as in halmstad-ir), or a halmstad-ir style dataset folder")
    q.add_argument("--split", help="with a dataset folder: replay only the sequences of splits/SPLIT.txt")
    q.add_argument("--config", help="config whose detector/tracker/sinks to use (one camera; its source is replaced)")
    add_set(q)
    q.add_argument("--report", required=True, help="write the JSON report here")
    q.add_argument("--tracks-out", help="write MOTChallenge tracker rows here (a folder for a dataset folder)")
    q.add_argument("--no-progress", action="store_true")
    q.add_argument("-v", "--verbose", action="store_true")
    q.set_defaults(func=cmd_replay)

    q = sub.add_parser("schema", help="print the JSON Schema (draft 2020-12) of a wire message")
    q.add_argument("message", choices=["alert", "status"],
                   help="alert: every sink's alert; status: a camera's health (Redis health channel and keys)")
    q.set_defaults(func=cmd_schema)

    q = sub.add_parser("ui", help="operator console in the browser: live views, alerts with snapshots, camera health")
    q.add_argument("--redis", help="Redis URL the pipeline writes to (default: $REDIS_URL or redis://127.0.0.1:6379/0)")
    q.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; any other needs "
                                                      "$ITD_UI_TOKEN)")
    q.add_argument("--port", type=int, default=8080, help="port (default 8080; 0: any free port)")
    q.add_argument("--forget-after", type=float, default=300.0, metavar="SECONDS",
                   help="a finished, failed or gone camera leaves the list this long after it ended (default 300)")
    q.set_defaults(func=cmd_ui)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging("warning")
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return ExitStatus.INTERRUPTED
    except BrokenPipeError:
        return stdout_closed()


if __name__ == "__main__":
    sys.exit(main())
