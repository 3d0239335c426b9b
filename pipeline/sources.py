"""Camera readers: RTSP (live, reconnecting), video files, image folders and recorded sequences (lossless).

A reader turns its source into `Frame`s for the `FrameMux`: it numbers frames from 1, stamps PTS and the
capture time, rejects frames of the wrong size, reports its status to `Health`, and ends with an
`EndOfStream`. PyAV is always given open and read timeouts, containers are always closed, and nothing is
ever invented to fill a gap.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Iterator

import av
import numpy as np

from detector.imageio import image_to_grey
from detector.motion import MotionBackground
from tracking.egomotion import SceneMotion
from tracking.sequences import (DECODE_THREADS, SequenceError, unreadable_video, video_ended_early,
                                video_frame_to_grey)
from pipeline.config import CameraConfig, FileSource, ImagesSource, RtspSource, SequenceSource, redact_url
from pipeline.frames import EndOfStream, Frame
from pipeline.health import FAILED, FINISHED, OFFLINE, ONLINE, RECONNECTING

log = logging.getLogger("pipeline.sources")

DEFAULT_FPS = 25.0


class SourceError(Exception):
    """The source cannot deliver frames (one line, no credentials)."""


def _av_message(e: Exception) -> str:
    msg = getattr(e, "strerror", None) or str(e) or type(e).__name__
    return msg.split(": '")[0] if isinstance(e, av.FFmpegError) else msg


def open_video(url: str, options: dict[str, str], open_timeout: float, read_timeout: float):
    """Open a container with timeouts; raises `SourceError` with a one-line reason."""
    try:
        return av.open(url, options=options, timeout=(open_timeout, read_timeout))
    except av.FFmpegError as e:
        raise SourceError(f"cannot open {redact_url(url)}: {_av_message(e)}") from None
    except OSError as e:
        raise SourceError(f"cannot open {redact_url(url)}: {e.strerror or e}") from None


def decode_video(container, timer=None, no_frame_timeout: float | None = None, file: str | None = None
                 ) -> Iterator[tuple[np.ndarray, float | None, float | None]]:
    """Yield (grey image, pts seconds, stream fps) from the first video stream.

    `timer(seconds)` receives decode times; `no_frame_timeout` ends a stream whose packets decode to nothing.
    Undecodable packets are skipped (up to 50 in a row). A `file` must decode whole: after its last frame, a
    packet that did not decode, or fewer frames than the container declares, raise `SourceError` naming the
    frames delivered (those that did decode are delivered first: nothing readable is lost).
    """
    if not container.streams.video:
        raise SourceError("no video stream")
    stream = container.streams.video[0]
    stream.thread_type = DECODE_THREADS
    rate = stream.average_rate or stream.guessed_rate
    fps = float(rate) if rate else None
    bad, last_frame, count, first_error = 0, time.monotonic(), 0, None
    for packet in container.demux(stream):
        t0 = time.perf_counter()
        if no_frame_timeout and time.monotonic() - last_frame > no_frame_timeout:
            raise SourceError(f"no frame for {no_frame_timeout:.1f}s")
        try:
            frames = packet.decode()
        except av.FFmpegError as e:
            if first_error is None:
                first_error = (count, e)
            bad += 1
            if bad > 50:
                raise SourceError(f"undecodable video ({_av_message(e)})") from None
            continue
        bad = 0
        for frame in frames:
            count += 1
            last_frame = time.monotonic()
            image = video_frame_to_grey(frame)
            if timer:
                timer(time.perf_counter() - t0)
            pts = float(frame.pts * frame.time_base) if frame.pts is not None and frame.time_base else None
            yield image, pts, fps
            t0 = time.perf_counter()
    if file is not None and first_error is not None:  # frames may still come out after the first bad packet
        raise SourceError(video_ended_early(file, count, stream.frames, first_error[1]))
    if file is not None and count < stream.frames:
        raise SourceError(video_ended_early(file, count, stream.frames))


def lower_thread_priority(nice: int) -> None:
    """Give the calling thread a `nice` increment (Linux: per thread), so that on a saturated CPU it runs in
    the gaps the inference threads leave instead of pre-empting them (which stalls every parallel operator
    of the model). A no-op (logged at debug level) where the OS has no per-thread priority."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
    except (AttributeError, OSError) as e:
        log.debug("thread priority not lowered: %s", e)


class CameraReader:
    """Reads one camera into the mux; `run()` returns when the source ends, fails or `stop` is set."""

    def __init__(self, name: str, config: CameraConfig, mux, health, metrics, stop: threading.Event,
                 nice: int = 0, motion: dict | None = None) -> None:
        self.name, self.config, self.mux, self.health, self.metrics = name, config, mux, health, metrics
        self.stop, self.nice = stop, nice
        self.index = 0
        self.last_timestamp = 0.0
        self.expected_size = (config.width, config.height) if config.width and config.height else None
        self._size_warned = 0.0
        # `motion`: the detector's motion-input parameters (checkpoint preprocessing), None for frame-only weights
        self._motion = MotionBackground.from_meta(motion) if motion is not None else None
        self._scene = SceneMotion() if config.ego_motion or self._motion is not None else None
        self._decode_s = 0.0  # decode time of the frame being emitted
        self._rate = None
        if metrics is not None:
            from pipeline.prometheus import RateMeter
            self._rate = RateMeter(metrics.fps.labels(name))

    # ------------------------------------------------------------ common
    def _emit(self, image: np.ndarray, pts: float | None, fps: float | None) -> bool:
        """Number, check and queue one frame; False when the run is stopping."""
        captured = time.time()
        self.index += 1
        if self.metrics:
            self.metrics.frames.labels(self.name).inc()
            self._rate.tick()
        if image.ndim != 2 or image.dtype not in (np.uint8, np.uint16):
            raise SourceError(f"frame {self.index} is {image.dtype} {image.shape}, expected 2-D uint8/uint16 grey")
        size = (image.shape[1], image.shape[0])
        if self.expected_size is None:
            self._check_zones(size)
            self.expected_size = size
        elif size != self.expected_size:
            if self.metrics:
                self.metrics.dropped.labels(self.name, "size").inc()
            now = time.monotonic()
            if now - self._size_warned > 10:
                self._size_warned = now
                log.error("camera %s: frame %d is %dx%d, expected %dx%d; dropping such frames", self.name,
                          self.index, *size, *self.expected_size)
            return not self.stop.is_set()
        if self.config.live:
            timestamp = captured
        elif pts is not None:
            timestamp = pts
        else:
            timestamp = (self.index - 1) / (fps or self.config.fps or DEFAULT_FPS)
        self.last_timestamp = timestamp
        timings = {"decode": self._decode_s}
        scene = residual = None
        if self._scene is not None:
            t0 = time.perf_counter()
            scene = self._scene.update(image)  # SceneOffset
            timings["ego_motion"] = time.perf_counter() - t0
            if self.metrics:
                self.metrics.observe("ego_motion", timings["ego_motion"])
        if self._motion is not None:
            t0 = time.perf_counter()
            residual = self._motion.update(image, scene)  # int16: the same in training and on every machine
            timings["motion"] = time.perf_counter() - t0
        frame = Frame(self.name, self.index, pts, captured, timestamp, image,
                      scene if self.config.ego_motion else None, timings, residual)
        return self.mux.put(frame, self.stop) and not self.stop.is_set()

    def after_gap(self) -> None:
        """A reconnect: the next frame is not comparable with the last one (ego-motion and the motion
        background start again)."""
        if self._scene is not None:
            self._scene.reset()
        if self._motion is not None:
            self._motion.reset()

    def _check_zones(self, size: tuple[int, int]) -> None:
        """Masks and zones of a camera without a configured size are checked against its first frame: a
        polygon outside it fails this camera (one line), before any frame reaches the tracker."""
        from pipeline.zones import polygon_problems

        c = self.config
        problems = polygon_problems(self.name, "mask", c.mask, size) + polygon_problems(self.name, "zones",
                                                                                        c.zones or [], size)
        if problems:
            raise SourceError("; ".join(p.removeprefix(f"camera {self.name}: ") for p in problems))

    def _end(self, error: str | None = None) -> None:
        self.health.set(self.name, FAILED if error else FINISHED, error or "")
        if self._rate:
            self._rate.reset()
        self.mux.put(EndOfStream(self.name, self.index, self.last_timestamp, error))

    def _timer(self, seconds: float) -> None:
        self._decode_s = seconds
        if self.metrics:
            self.metrics.observe("decode", seconds)

    def run(self) -> None:
        if self.nice:
            lower_thread_priority(self.nice)
        src = self.config.source
        try:
            if isinstance(src, RtspSource):
                self._run_live(src)
                self._end()
            else:
                self._run_lossless(src)
                self._end()
        except SourceError as e:  # `_end` logs it once, as the camera's status
            self._end(str(e))
        except Exception as e:  # noqa: BLE001 - a reader bug ends this camera, never the run
            log.error("camera %s failed: %s: %s", self.name, type(e).__name__, e, exc_info=True)
            self._end(f"{type(e).__name__}: {e}")

    # ------------------------------------------------------------ live
    def _no_frame_timeout(self, fps: float | None) -> float:
        c = self.config
        return max(c.no_frame_timeout_min_s, c.no_frame_timeout_frames / (fps or c.fps or DEFAULT_FPS))

    def _run_live(self, src: RtspSource) -> None:
        c, attempt, shown, ever = self.config, 0, redact_url(src.url), False
        options = {"rtsp_transport": src.transport}  # (fflags=nobuffer loses the stream's parameter sets)
        while not self.stop.is_set():
            read_timeout = self._no_frame_timeout(None)
            options["timeout"] = str(int(read_timeout * 1e6))  # socket I/O timeout (microseconds)
            got_frames, reason = False, "stream ended"
            try:
                container = open_video(src.url, options, src.open_timeout_s, read_timeout)
                try:
                    for image, pts, fps in decode_video(container, self._timer, read_timeout):
                        if not got_frames:
                            got_frames, attempt, ever = True, 0, True
                            self.health.set(self.name, ONLINE, shown)
                        if not self._emit(image, pts, fps):
                            return
                finally:
                    container.close()
            except SourceError as e:
                reason = str(e)
            except av.FFmpegError as e:  # read errors and timeouts mid-stream
                reason = f"read failed: {_av_message(e)}"
            if self.stop.is_set():
                return
            self.after_gap()
            attempt += 1
            if attempt == 1:
                self.health.set(self.name, OFFLINE, reason)
            first = c.reconnect.first_frame_attempts
            if not ever and first is not None and attempt >= first:
                raise SourceError(f"no frame from {shown} in {attempt} attempt{'s' * (attempt > 1)} ({reason}): "
                                  "check the URL and that the camera streams (reconnect.first_frame_attempts)")
            if c.reconnect.max_attempts is not None and attempt > c.reconnect.max_attempts:
                raise SourceError(f"giving up after {c.reconnect.max_attempts} attempts: {reason}")
            delay = c.reconnect.delay(attempt)
            if attempt > 1:
                log.warning("camera %s: reconnect attempt %d failed (%s); next in %.1fs", self.name, attempt - 1,
                            reason, delay)
            else:
                log.info("camera %s: reconnecting to %s in %.1fs", self.name, shown, delay)
            if self.stop.wait(delay):
                return
            if self.metrics:
                self.metrics.reconnects.labels(self.name).inc()
            self.health.set(self.name, RECONNECTING, f"attempt {attempt}")

    # ------------------------------------------------------------ lossless
    def _run_lossless(self, src) -> None:
        frames = self._lossless_frames(src)
        realtime = isinstance(src, FileSource) and src.realtime
        start = None
        try:
            for image, pts, fps in frames:
                if self.index == 0:
                    self.health.set(self.name, ONLINE, str(getattr(src, "path", "")))
                if realtime and pts is not None:
                    start = start if start is not None else time.monotonic() - pts
                    delay = start + pts - time.monotonic()
                    if delay > 0 and self.stop.wait(delay):
                        return
                if not self._emit(image, pts, fps):
                    return
        finally:
            close = getattr(frames, "close", None)
            if close:
                close()
        if self.index == 0:
            raise SourceError("no frames")

    def _lossless_frames(self, src) -> Iterator[tuple[np.ndarray, float | None, float | None]]:
        if isinstance(src, FileSource):
            yield from self._file_frames(src.path)
        elif isinstance(src, ImagesSource):
            yield from image_folder_frames(src.path, src.pattern, self.config.fps)
        elif isinstance(src, SequenceSource):
            yield from self._sequence_frames(src.path)
        else:  # pragma: no cover
            raise SourceError(f"unsupported source {src!r}")

    def _file_frames(self, path: Path):
        if not Path(path).is_file():
            raise SourceError(f"no such file: {path}")
        timeout = self._no_frame_timeout(None)
        container = open_video(str(path), {}, timeout, timeout)
        try:
            yield from decode_video(container, self._timer, file=str(path))
        except av.FFmpegError as e:
            raise SourceError(video_ended_early(path, self.index, container.streams.video[0].frames, e)) from None
        finally:
            container.close()

    def _sequence_frames(self, path: Path):
        seq = open_sequence_checked(path)
        fps = self.config.fps or getattr(seq, "fps", None) or DEFAULT_FPS
        try:
            for index, image in seq.frames():
                self.index = int(index) - 1  # keep the sequence's own numbering (ground truth refers to it)
                yield np.ascontiguousarray(image), (int(index) - 1) / fps, fps
        except SequenceError as e:
            raise SourceError(str(e)) from None


def missing_input(src) -> str | None:
    """One line when a file, folder or sequence source points at nothing (checked before the run starts)."""
    if isinstance(src, RtspSource):
        return None
    text = str(src.path)
    path = Path(text.split("#", 1)[0] if ".json#" in text else text)  # ITT json#scene
    if isinstance(src, ImagesSource) and not path.is_dir():
        return f"no such folder: {path}"
    if isinstance(src, FileSource) and not path.is_file():
        return f"no such file: {path}"
    if not path.exists():
        return f"no such file or folder: {path}"
    return unreadable_input(src, path)


def unreadable_input(src, path: Path) -> str | None:
    """One line when a video file or a sequence does not open at all (`cannot read ...: corrupt or truncated`)."""
    if isinstance(src, FileSource):
        try:
            with av.open(str(path)) as c:
                if not c.streams.video:
                    return f"cannot read {path}: no video stream"
        except (av.FFmpegError, OSError) as e:
            return unreadable_video(path, _av_message(e))
    elif isinstance(src, SequenceSource):
        try:
            open_sequence_checked(path)
        except SourceError as e:
            return str(e)
    return None


def open_sequence_checked(path: Path):
    """`tracking.sequences.open_sequence` with its errors turned into `SourceError`."""
    from tracking.sequences import open_sequence

    if not Path(path).exists():
        raise SourceError(f"no such sequence: {path}")
    try:
        return open_sequence(path)
    except SequenceError as e:  # names the path already
        raise SourceError(str(e)) from None
    except (OSError, ValueError, KeyError) as e:
        raise SourceError(f"cannot read sequence {path}: {e}") from None


def image_folder_frames(folder: Path, pattern: str, fps: float | None):
    """Yield the folder's images in name order as grey arrays (16-bit PNG/TIFF stay uint16)."""
    from PIL import Image, UnidentifiedImageError

    folder = Path(folder)
    if not folder.is_dir():
        raise SourceError(f"no such folder: {folder}")
    files = sorted(folder.glob(pattern))
    if not files:
        raise SourceError(f"no images matching {pattern!r} in {folder}")
    fps = fps or DEFAULT_FPS
    for i, f in enumerate(files):
        try:
            with Image.open(f) as im:
                image = image_to_grey(im)
        except (OSError, UnidentifiedImageError) as e:
            log.warning("skipping unreadable image %s: %s", f, e)
            continue
        yield image, i / fps, fps


