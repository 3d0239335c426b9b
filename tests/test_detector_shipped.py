"""The shipped weights: both variants load with no arguments and find a tiny target."""
import numpy as np
import pytest

from detector import Detector, Detections
from detector.checkpoint import WEIGHTS_DIR
from detector.synthetic import render_spot


def _frame(seed: int = 0, bits: int = 8):
    rng = np.random.default_rng(seed)
    frame = rng.normal(90, 4, (240, 320))
    truth = [(100.3, 60.6), (230.7, 170.2)]
    for x, y in truth:
        patch, where = render_spot(frame.shape, x, y, 1.0, 0.8)
        frame[where] += 60 * patch
    if bits == 16:
        return (frame * 200).clip(0, 65535).astype(np.uint16), truth
    return frame.clip(0, 255).astype(np.uint8), truth


@pytest.mark.parametrize("variant", ["fast", "hrnet"])
def test_shipped_weights_find_tiny_targets(variant):
    assert (WEIGHTS_DIR / f"{variant}.pt").is_file(), "shipped weights missing"
    det = Detector.load(variant, device="cpu")
    assert det.variant == variant and 0 < det.threshold < 1
    for bits in (8, 16):
        frame, truth = _frame(bits=bits)
        dets = det.predict(frame)
        assert isinstance(dets, Detections)
        for x, y in truth:
            assert np.linalg.norm(dets.xy - [x, y], axis=1).min() < 1.0


def test_default_is_the_fast_variant():
    assert Detector.load(device="cpu").variant == "fast"


def test_batch_of_mixed_sizes_matches_single_frames():
    det = Detector.load(device="cpu")
    a, _ = _frame(1)
    b = a[:200, :250]
    batch = det.predict_batch([a, b])
    for frame, got in zip([a, b], batch):
        single = det.predict(frame)
        assert np.allclose(single.xy, got.xy, atol=1e-3)
