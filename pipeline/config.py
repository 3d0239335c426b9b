"""The pipeline's one YAML config: loading, `${VAR:-default}` interpolation, `--set` overrides, validation.

`load_config(path, overrides)` returns a validated `PipelineConfig` or raises `ConfigError`, whose
`problems` list has one `file:line: dotted.path: message` string per problem.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator,
                      model_validator)

from pipeline.config_hints import unknown_key_message
from tracking import TrackerConfig  # the tracker owns its own validated settings

CAMERA_NAME = r"^[A-Za-z0-9_.-]+$"


class ConfigError(ValueError):
    """A config that cannot be used; `problems` holds one line per problem."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


class Base(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------- sources

class ReconnectConfig(Base):
    """Capped exponential backoff between attempts to (re)open a live source."""

    initial_s: float = Field(0.5, gt=0)
    max_s: float = Field(10.0, gt=0)
    factor: float = Field(2.0, ge=1)
    max_attempts: int | None = Field(None, ge=1, description="None: retry for ever")
    first_frame_attempts: int | None = Field(5, ge=1, description="attempts a camera that has not yet delivered a "
                                                                   "frame gets before it fails; None: for ever")

    def delay(self, attempt: int) -> float:
        """Seconds to wait before attempt `attempt` (1, 2, ...)."""
        return min(self.max_s, self.initial_s * self.factor ** (attempt - 1))


class RtspSource(Base):
    type: Literal["rtsp"]
    url: str
    transport: Literal["tcp", "udp"] = "tcp"
    open_timeout_s: float = Field(5.0, gt=0)

    @field_validator("url")
    @classmethod
    def _rtsp_url(cls, v: str) -> str:
        if not re.match(r"^rtsps?://", v):
            raise ValueError("must start with rtsp:// or rtsps://")
        return v


class FileSource(Base):
    type: Literal["file"]
    path: Path
    realtime: bool = Field(False, description="pace frames at the stream's rate (live-like, drops allowed)")


class ImagesSource(Base):
    type: Literal["images"]
    path: Path
    pattern: str = "*.png"


class SequenceSource(Base):
    """A recorded sequence: MOTChallenge folder, ITT COCO json, or a video with ground truth beside it."""

    type: Literal["sequence"]
    path: Path


Source = Annotated[Union[RtspSource, FileSource, ImagesSource, SequenceSource], Field(discriminator="type")]


class CameraConfig(Base):
    source: Source
    enabled: bool = True
    fps: float | None = Field(None, gt=0, description="expected frame rate; default: the stream's, else 25")
    width: int | None = Field(None, gt=0, description="expected frame width; default: the first frame's")
    height: int | None = Field(None, gt=0)
    no_frame_timeout_frames: float = Field(50, gt=0, description="stall after this many frame periods")
    no_frame_timeout_min_s: float = Field(2.0, gt=0)
    reconnect: ReconnectConfig = ReconnectConfig()
    queue_size: int = Field(8, ge=1, description="frames buffered per lossless camera")
    ego_motion: bool = Field(True, description="measure the platform's drift (20-40 ms a frame) so that static "
                                               "clutter on a moving camera cannot alert; false for fixed mounts")
    mask: list[list[tuple[float, float]]] = Field(
        [], description="exclusion polygons [[x, y], ...] in frame pixels (OSD text, a reticle, a mast): "
                        "detections inside are dropped before tracking")
    zones: list[list[tuple[float, float]]] | None = Field(
        None, description="include polygons: when given, only detections inside one of them are tracked")

    @property
    def live(self) -> bool:
        """Live sources keep only the newest frame; files and sequences are lossless."""
        return isinstance(self.source, RtspSource) or (isinstance(self.source, FileSource) and self.source.realtime)


# ---------------------------------------------------------------- stages

class DetectorConfig(Base):
    weights: str | None = Field(None, description="checkpoint path or shipped variant name ('fast', 'hrnet'); "
                                                  "None: the shipped default")
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$")
    runtime: Literal["auto", "onnxruntime", "torch"] = Field(
        "auto", description="auto: onnxruntime on a CPU in fp32, else torch")
    precision: Literal["auto", "fp32", "fp16", "bf16", "int8"] = Field(
        "auto", description="auto: fp32 on a CPU, fp16 on CUDA (fp16 needs CUDA); int8: the calibrated int8 model "
                            "beside the weights (python -m detector.quantize), CPU")
    threads: int | None = Field(None, ge=1, description="CPU inference threads of each detect worker; None: the "
                                                       "cores shared among the workers")
    workers: int | None = Field(None, ge=1, description="detect workers sharing the model, each running its own "
                                                        "batch; None: one per core on a CPU (each on one thread), "
                                                        "one on CUDA")
    batch_size: int | None = Field(None, ge=1, description="frames per forward pass, across cameras; None: 1 on a "
                                                           "CPU (batching gains nothing there, only latency), 16 on CUDA")
    batch_timeout_ms: float = Field(10.0, ge=0, description="how long a partial batch waits for more live frames")

    def batch_for(self, device_type: str) -> int:
        """The batch size in effect on a detector running on `device_type` ('cpu', 'cuda')."""
        return self.batch_size or (16 if device_type == "cuda" else 1)

    def workers_for(self, device_type: str) -> int:
        """The detect workers of a run on `device_type`: on a CPU, by default, one per core, each inferring one
        frame on one thread (on 2 cores: 2 frames at once, ~10 % more frames/s than each frame on both cores,
        whose threads wait for each other at every operator)."""
        return self.workers or (1 if device_type == "cuda" else cpu_cores())

    def threads_for(self, device_type: str) -> int | None:
        """CPU inference threads of each detect worker (None: the runtime's default, one per core)."""
        workers = self.workers_for(device_type)
        if self.threads or device_type == "cuda" or workers == 1:
            return self.threads
        return max(1, cpu_cores() // workers)


def cpu_cores() -> int:
    """The CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


# ---------------------------------------------------------------- sinks

Event = Literal["new", "update", "end"]
ALL_EVENTS: list[Event] = ["new", "update", "end"]


def _redis_url(v: str) -> str:
    if not re.match(r"^(redis|rediss|unix)://", v):
        raise ValueError("must start with redis://, rediss:// or unix://")
    return v


RedisUrl = Annotated[str, AfterValidator(_redis_url)]


class LiveViewConfig(Base):
    """The annotated frame of each camera, as a JPEG in the key `<prefix>:<camera>` for `python -m pipeline ui`,
    with the camera's figures (fps, drops) in `<prefix>:<camera>:info`."""

    prefix: str = "itd:live"
    fps: float = Field(4.0, ge=0, description="frames published per second and camera; 0: figures only")
    width: int = Field(640, ge=64, description="published width in px (frames are only ever reduced)")
    quality: int = Field(70, ge=10, le=95, description="JPEG quality")
    ttl_s: float = Field(5.0, gt=0, description="a camera's frame and figures vanish this long after its last")


class RedisSinkConfig(Base):
    url: RedisUrl = "redis://127.0.0.1:6379/0"
    password: SecretStr | None = Field(None, description="overrides a password in the URL")
    tls_ca: Path | None = None
    tls_verify: bool = True
    channel_prefix: str = "itd:alerts"
    stream: str | None = "itd:alerts"
    stream_maxlen: int = Field(100_000, ge=1)
    buffer_size: int = Field(10_000, ge=1, description="alerts kept while Redis is down")
    spill_path: Path = Field(Path("runs/redis-undelivered.jsonl"),
                             description="alerts Redis never got (buffer overflow, down at exit) are appended here")
    connect_timeout_s: float = Field(2.0, gt=0)
    events: list[Event] = ALL_EVENTS
    health_prefix: str = "itd:camera"
    heartbeat_s: float = Field(2.0, gt=0)
    heartbeat_ttl_s: float = Field(10.0, gt=0)
    snapshot_prefix: str = Field("itd:snapshot", description="snapshots: keys <prefix>:<id>:frame and :chip")
    live: LiveViewConfig | None = Field(LiveViewConfig(), description="None: no live view")


class JsonlSinkConfig(Base):
    path: Path = Path("runs/alerts.jsonl")
    events: list[Event] = ALL_EVENTS


class ConsoleSinkConfig(Base):
    events: list[Event] = ["new", "end"]


class VideoSinkConfig(Base):
    path: str = Field("runs/{camera}.mp4", description="{camera} is replaced by the camera name")
    fps: float | None = Field(None, gt=0, description="default: the camera's")
    trail: int = Field(30, ge=0, description="frames of trail drawn behind each track")
    cameras: list[str] | None = None
    all_candidates: bool = Field(False, description="draw every candidate down to tracker.low_score, not only "
                                                    "those at or above the operating threshold (tracker.high_score)")


class SinksConfig(Base):
    redis: RedisSinkConfig | None = None
    jsonl: JsonlSinkConfig | None = None
    console: ConsoleSinkConfig | None = None
    video: VideoSinkConfig | None = None


class SnapshotConfig(Base):
    """Pictures of `new` alerts (and of each track's best moment, for its `end`): a chip around the target,
    enlarged and contrast-stretched, and the reduced frame with the box. Stored in Redis when the Redis sink is
    on, else in `folder`; with neither they are not taken."""

    enabled: bool = True
    chip_size: int = Field(96, ge=16, le=512, description="side of the enlarged chip, px")
    chip_crop: int = Field(32, ge=8, le=512, description="side of the frame area around the target cut for the "
                                                         "chip, px (larger for large targets)")
    frame_width: int = Field(480, ge=64, description="width of the reduced full frame, px")
    quality: int = Field(85, ge=10, le=95, description="JPEG quality")
    ttl_s: float = Field(86400.0, gt=0, description="kept this long (Redis TTL; files older are deleted)")
    folder: Path | None = Field(None, description="where snapshots go when there is no Redis sink")


# ---------------------------------------------------------------- distributed run

class StreamsConfig(Base):
    """Redis Streams between the worker processes of `run --role` (a run without `--role` does not use them)."""

    url: RedisUrl = "redis://127.0.0.1:6379/0"
    prefix: str = Field("itd", description="streams <prefix>:frames and <prefix>:detections")
    in_flight: int = Field(64, ge=1, description="lossless cameras: frames published but not yet tracked before "
                                                 "ingest waits")
    frames_maxlen: int = Field(64, ge=1, description="live cameras: the frames stream is trimmed to this, oldest "
                                                     "first (counted as dropped)")
    detections_maxlen: int = Field(10_000, ge=1, description="safety cap of the detections stream")
    claim_idle_s: float = Field(5.0, gt=0, description="entries pending this long on a worker are reclaimed")
    reorder_window: int = Field(32, ge=1, description="live: records held behind a missing frame before skipping it")
    gap_timeout_s: float = Field(2.0, gt=0, description="live: longest wait for a missing frame")
    lossless_gap_timeout_s: float = Field(120.0, gt=0, description="lossless: longest wait for a missing frame")
    compression_level: int = Field(1, ge=0, le=9, description="zlib level of frames (lossless at any level)")

    @model_validator(mode="after")
    def _window(self) -> "StreamsConfig":
        if self.in_flight >= self.detections_maxlen:
            raise ValueError("in_flight must be smaller than detections_maxlen")
        if self.claim_idle_s >= self.lossless_gap_timeout_s:
            raise ValueError("claim_idle_s must be smaller than lossless_gap_timeout_s")
        return self


# ---------------------------------------------------------------- run-wide

class MetricsConfig(Base):
    port: int | None = Field(9108, ge=0, le=65535, description="None: no endpoint")
    host: str = "0.0.0.0"


class RunConfig(Base):
    queue_size: int = Field(64, ge=1, description="records between detect, track and each sink")
    max_restarts: int = Field(3, ge=0, description="failures of a stage within restart_window_s before the run stops")
    restart_window_s: float = Field(60.0, gt=0)
    shutdown_timeout_s: float = Field(15.0, gt=0)
    ingest_nice: int = Field(0, ge=0, le=19, description="CPU priority decrement of the camera readers (decode, "
                                                         "ego-motion); 19 suits one detect worker on several "
                                                         "threads: the readers fill the gaps its threads leave")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    status_interval_s: float = Field(10.0, ge=0, description="live runs: seconds between one-line status logs "
                                                             "(fps, drops, tracks, alerts); 0: none")


class PipelineConfig(Base):
    schema_version: Literal[1] = Field(1, alias="schema", description="version of this config format")
    cameras: dict[Annotated[str, Field(pattern=CAMERA_NAME)], CameraConfig]
    detector: DetectorConfig = DetectorConfig()
    tracker: TrackerConfig = Field(default_factory=TrackerConfig)
    sinks: SinksConfig = SinksConfig()
    snapshots: SnapshotConfig = SnapshotConfig()
    metrics: MetricsConfig = MetricsConfig()
    run: RunConfig = RunConfig()
    streams: StreamsConfig = StreamsConfig()

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _check(self) -> "PipelineConfig":
        from pipeline.zones import polygon_problems

        if not any(c.enabled for c in self.cameras.values()):
            raise ValueError("no enabled camera")
        for name, c in self.cameras.items():
            size = (c.width, c.height) if c.width and c.height else None
            problems = polygon_problems(name, "mask", c.mask, size) + polygon_problems(name, "zones", c.zones or [], size)
            if problems:
                raise ValueError("; ".join(problems))
        video = self.sinks.video
        for name in (video.cameras or []) if video else []:
            if name not in self.cameras:
                raise ValueError(f"sinks.video.cameras: unknown camera {name!r}")
        return self


# ---------------------------------------------------------------- loading

_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}")


def interpolate(text: str, env: dict[str, str] | None = None) -> str:
    """Expand `${VAR}`, `${VAR:-default}` (default when unset or empty), `${VAR-default}` (when unset); `$$` is `$`."""
    env = os.environ if env is None else env

    def sub(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        name, op, default = m.group(1), m.group(2), m.group(3)
        value = env.get(name)
        if op == ":-" and not value:
            return default
        if op == "-" and value is None:
            return default
        if value is None:
            raise KeyError(name)
        return value

    return _VAR.sub(sub, text)


def _line_map(node: yaml.Node, path: tuple = (), out: dict | None = None) -> dict[tuple, int]:
    """Map each dotted path of a composed YAML document to its 1-based line."""
    out = {} if out is None else out
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            key = k.value
            out[path + (key,)] = k.start_mark.line + 1
            _line_map(v, path + (key,), out)
            out[path + (key,)] = k.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            _line_map(v, path + (i,), out)
    return out


def _expand(value: Any, path: tuple, problems: list[tuple[tuple, str]], env: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: _expand(v, path + (k,), problems, env) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, path + (i,), problems, env) for i, v in enumerate(value)]
    if isinstance(value, str) and "$" in value:
        try:
            return interpolate(value, env)
        except KeyError as e:
            problems.append((path, f"environment variable {e.args[0]} is not set (use ${{{e.args[0]}:-default}})"))
    return value


def apply_override(data: dict, assignment: str) -> None:
    """Apply one `dotted.key=value` override; the value is parsed as a YAML scalar/flow value."""
    key, sep, raw = assignment.partition("=")
    if not sep or not key.strip():
        raise ConfigError([f"--set {assignment!r}: expected dotted.key=value"])
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    parts = key.strip().split(".")
    node = data
    for part in parts[:-1]:
        nxt = node.get(part)
        if not isinstance(nxt, dict):
            nxt = node[part] = {}
        node = nxt
    node[parts[-1]] = value


def _display_path(loc: tuple, data: Any) -> tuple:
    """Drop pydantic's union tags and validator names from an error location, keeping the file's keys."""
    shown, node = [], data
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(node, dict) and part in node:
            shown.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            shown.append(part)
            node = node[part]
        elif last and isinstance(part, (str, int)) and not str(part).startswith(("function-", "[")):
            shown.append(part)
    return tuple(shown)


def _fmt(source: str, lines: dict[tuple, int], path: tuple, msg: str, overridden: set[tuple] = frozenset()) -> str:
    if any(path[: len(o)] == o for o in overridden):
        return f"--set {'.'.join(str(p) for p in path)}: {msg}"
    probe = path
    while probe and probe not in lines:
        probe = probe[:-1]
    where = f"{source}:{lines[probe]}" if probe in lines else source
    dotted = ".".join(str(p) for p in path) or "(top level)"
    return f"{where}: {dotted}: {msg}"


def parse_config(text: str, overrides: list[str] = (), source: str = "<config>",
                 config_dir: Path | None = None) -> PipelineConfig:
    """Validate YAML text into a `PipelineConfig`; raise `ConfigError` listing every problem. `${CONFIG_DIR}`
    expands to `config_dir` (the config file's folder) unless the environment sets it."""
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        raise ConfigError([f"{where}: invalid YAML: {getattr(e, 'problem', None) or e}"]) from None
    lines = _line_map(node) if node is not None else {}
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([f"{source}:1: (top level): expected a mapping of settings"])
    env_problems: list[tuple[tuple, str]] = []
    env = dict(os.environ)
    if config_dir is not None:
        env.setdefault("CONFIG_DIR", str(Path(config_dir).resolve()))
    data = _expand(data, (), env_problems, env)
    overridden = set()
    for assignment in overrides:
        apply_override(data, assignment)
        overridden.add(tuple(assignment.partition("=")[0].strip().split(".")))
    problems = [_fmt(source, lines, p, m) for p, m in env_problems]
    bad_env = {p for p, _ in env_problems}
    try:
        config = PipelineConfig.model_validate(data)
    except ValidationError as e:
        for err in e.errors():
            path = _display_path(tuple(err["loc"]), data)
            if path in bad_env:
                continue
            msg = err["msg"]
            if err["type"] == "string_pattern_mismatch" and len(path) == 2 and path[0] == "cameras":
                msg = "camera names may only use letters, digits, '_', '-' and '.'"
            elif err["type"] == "extra_forbidden" and tuple(path[-2:]) == ("detector", "threshold"):
                msg = ("unknown key: the score that starts a track is tracker.high_score (default: the "
                       "threshold chosen on val, stored in the checkpoint)")
            elif err["type"] == "extra_forbidden":
                msg = unknown_key_message(PipelineConfig, tuple(err["loc"]))
            elif err["type"] == "literal_error":
                msg = f"{err.get('input')!r} is not allowed; expected {err.get('ctx', {}).get('expected')}"
            elif err["type"] == "string_pattern_mismatch" and path[-1:] == ("device",):
                msg = f"unknown device {err.get('input')!r}; expected auto, cpu, cuda or cuda:N (N: the GPU's number)"
            elif err["type"] == "union_tag_invalid":
                tag = err.get("ctx", {}).get("tag")
                msg = f"unknown type {tag!r}; expected one of {err.get('ctx', {}).get('expected_tags')}"
            elif err["type"] == "union_tag_not_found":
                msg = "missing 'type' (rtsp, file, images or sequence)"
            msg = msg.removeprefix("Value error, ")
            problems.append(_fmt(source, lines, path, msg, overridden))
        raise ConfigError(problems) from None
    if problems:
        raise ConfigError(problems)
    return config


def load_config(path: str | Path, overrides: list[str] = ()) -> PipelineConfig:
    """Read and validate a config file (relative paths are relative to the working directory; `${CONFIG_DIR}`
    is the config file's folder)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError([f"{path}: cannot read config: {e.strerror or e}"]) from None
    return parse_config(text, overrides, source=str(path), config_dir=path.parent)


def redact_url(url: str) -> str:
    """The URL without its user/password, for logs."""
    return re.sub(r"^([a-z][a-z0-9+.-]*://)[^/@]*@", r"\1", url, flags=re.I)
