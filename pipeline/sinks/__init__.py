"""Alert sinks: Redis (pub/sub + capped stream + health keys, snapshots, live view), JSONL file, console, annotated
video, snapshot folder."""
from __future__ import annotations

from pipeline.config import PipelineConfig
from pipeline.sinks.base import Sink
from pipeline.sinks.files import ConsoleSink, JsonlSink
from pipeline.sinks.video import VideoSink

__all__ = ["Sink", "ConsoleSink", "JsonlSink", "VideoSink", "build_sinks"]


def build_sinks(config: PipelineConfig, metrics=None, threshold: float = 0.0) -> list[Sink]:
    """The sinks the config asks for, in a fixed order. `threshold`: the operating threshold (the tracker's
    `high_score`); the pictures draw only candidates at or above it."""
    s = config.sinks
    zones = {n: (c.mask, c.zones) for n, c in config.cameras.items()}
    sinks: list[Sink] = []
    if s.redis is not None:
        from pipeline.sinks.redis_sink import RedisSink
        sinks.append(RedisSink(s.redis, metrics))
        if s.redis.live is not None:
            from pipeline.sinks.live import LiveViewSink
            sinks.append(LiveViewSink(s.redis, metrics, zones=zones, threshold=threshold))
    elif config.snapshots.enabled and config.snapshots.folder is not None:
        from pipeline.sinks.snapshot_folder import SnapshotFolderSink
        sinks.append(SnapshotFolderSink(config.snapshots.folder, config.snapshots.ttl_s, metrics))
    if s.jsonl is not None:
        sinks.append(JsonlSink(s.jsonl.path, s.jsonl.events, metrics))
    if s.console is not None:
        sinks.append(ConsoleSink(s.console.events, metrics))
    if s.video is not None:
        sinks.append(VideoSink(s.video, {n: c.fps for n, c in config.cameras.items()}, metrics, zones,
                               threshold))
    return sinks
