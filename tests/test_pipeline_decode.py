"""Grey frames from PyAV: the luma plane as coded for 8-bit YUV, 16-bit for deeper formats."""
import av
import numpy as np
import pytest

from tracking.sequences import video_frame_to_grey


@pytest.mark.parametrize("fmt", ["yuv420p", "yuvj420p", "nv12", "gray"])
def test_luma_plane_of_8_bit_frames(fmt):
    rng = np.random.default_rng(0)
    y = rng.integers(16, 236, (48, 70), dtype=np.uint8)  # odd-ish width: rows are padded in the planes
    frame = av.VideoFrame.from_ndarray(y, format="gray").reformat(format=fmt) if fmt != "gray" else \
        av.VideoFrame.from_ndarray(y, format="gray")
    grey = video_frame_to_grey(frame)
    assert grey.dtype == np.uint8 and grey.shape == (48, 70) and grey.flags.c_contiguous
    plane = frame.planes[0]
    expected = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)[:, :70]
    assert np.array_equal(grey, expected)
    assert np.corrcoef(grey.ravel().astype(float), y.ravel().astype(float))[0, 1] > 0.99


def test_deep_frames_stay_16_bit():
    y = (np.random.default_rng(1).random((32, 40)) * 60000).astype(np.uint16)
    frame = av.VideoFrame.from_ndarray(y, format="gray16le").reformat(format="yuv420p10le")
    grey = video_frame_to_grey(frame)
    assert grey.dtype == np.uint16 and grey.shape == (32, 40)


def test_live_frames_are_not_held_back_by_decoder_threads(tmp_path):
    """A camera stream without B-frames: each packet's frame comes out of `decode_video` before the next packet
    is read (frame threads would hold one frame back per extra thread: 80 ms at 25 fps with three)."""
    from pipeline.sources import decode_video

    path = tmp_path / "live.mp4"
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=25, options={"bf": "0", "tune": "zerolatency"})
        s.width, s.height, s.pix_fmt = 320, 256, "yuv420p"
        rng = np.random.default_rng(2)
        for _ in range(12):
            frame = av.VideoFrame.from_ndarray(rng.integers(0, 255, (256, 320), dtype=np.uint8), format="gray")
            out.mux(s.encode(frame.reformat(format="yuv420p")))
        out.mux(s.encode())
    with av.open(str(path)) as container:
        class Counting:  # the container, counting the packets read
            streams, read = container.streams, 0

            def demux(self, stream):
                for packet in container.demux(stream):
                    self.read += 1
                    yield packet

        counting = Counting()
        held = [counting.read - i for i, _ in enumerate(decode_video(counting), start=1)]
    assert len(held) == 12 and max(held) <= 1, held
