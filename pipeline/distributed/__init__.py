"""Running the stage graph as separate worker processes (`--role ingest|detect|track`) joined by Redis Streams.

- `codec`: stream entries <-> the pipeline's records (frames compressed losslessly).
- `streams`: consumer groups, acknowledged reads, reclaiming a dead worker's entries, capped writes.
- `reorder`: per-camera ordering and duplicate removal in front of the tracker.
- `roles`: the adapters that plug these into the pipeline's own `DetectStage` / `TrackStage`.
"""
