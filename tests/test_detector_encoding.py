"""Centroid-aware asymmetric encoding and the coordinate convention."""
import numpy as np
import pytest
import torch

from detector.encoding import encode_targets, sigma_for_size, to_map, to_pixel
from detector.inference import decode


def _as_outputs(t: dict) -> dict:
    heat = torch.from_numpy(t["heatmap"]).clamp(1e-4, 1 - 1e-4)
    return {"heatmap": torch.logit(heat)[None], "offset": torch.from_numpy(t["offset"])[None],
            "ltrb": torch.from_numpy(t["ltrb"])[None]}


def test_pixel_centre_convention_round_trips():
    x = np.array([0.0, 0.5, 1.0, 10.25, 63.0])
    assert np.allclose(to_pixel(to_map(x, 2), 2), x)
    # cell 0 at stride 2 covers pixels 0 and 1: its centre is pixel 0.5
    assert to_pixel(0, 2) == pytest.approx(0.5)


def test_peak_lands_on_the_centroid_cell_not_the_box_centre():
    # a 7x3 box whose bright core is at its left end: the centroid is not the box centre
    cx, cy, box = 20.3, 30.1, np.array([[19, 29, 25, 31]])
    t = encode_targets(np.array([[cx, cy]]), box, (32, 32), 2)
    v, u = np.unravel_index(np.argmax(t["heatmap"][0]), (32, 32))
    assert (u, v) == (round(to_map(cx, 2)), round(to_map(cy, 2)))
    assert t["heatmap"][0, v, u] == 1.0 and t["positive"][v, u] and t["positive"].sum() == 1
    box_centre_cell = round(to_map((19 + 25) / 2, 2))
    assert u != box_centre_cell


def test_sigma_follows_width_and_height():
    t = encode_targets(np.array([[32.0, 32.0]]), np.array([[22, 30, 42, 34]]), (32, 32), 2)  # 21 x 5 px
    heat = t["heatmap"][0]
    v, u = np.unravel_index(np.argmax(heat), heat.shape)
    assert heat[v, u + 3] > heat[v + 3, u]  # wider along x than along y
    sizes = np.linspace(0.5, 40, 200)
    s = sigma_for_size(sizes)
    assert np.all(np.diff(s) > 0), "sigma must grow monotonically with size"
    # the reference's step rule made a 10x5 box narrower than a 3x2 one; ours does not
    assert sigma_for_size(5.0) > sigma_for_size(1.5) and sigma_for_size(2.5) > sigma_for_size(1.0)


@pytest.mark.parametrize("seed", range(5))
def test_decoded_centroid_comes_back_within_a_tenth_of_a_pixel(seed):
    rng = np.random.default_rng(seed)
    first = rng.uniform(4, 60, 2)
    cents = np.stack([first, first + rng.uniform(20, 60, 2), first + [rng.uniform(30, 60), rng.uniform(-3, 3) + 5]])
    boxes = np.concatenate([np.floor(cents - 1.5), np.floor(cents + 2.5)], 1)
    t = encode_targets(cents, boxes, (64, 64), 2)
    d = decode(_as_outputs(t), [(128, 128)], 2, 0.5)[0]
    assert len(d) == 3
    for c in cents:
        err = np.linalg.norm(d.xy - c, axis=1).min()
        assert err < 0.1
    # boxes decode to the true pixel borders
    for b in boxes:
        border = np.array([b[0] - 0.5, b[1] - 0.5, b[2] + 0.5, b[3] + 0.5])
        assert np.abs(d.xyxy - border).sum(1).min() < 1e-3


def test_overlapping_targets_combine_by_maximum():
    a = encode_targets(np.array([[10.0, 10.0]]), np.array([[8, 8, 12, 12]]), (16, 16), 2)["heatmap"]
    b = encode_targets(np.array([[14.0, 10.0]]), np.array([[12, 8, 16, 12]]), (16, 16), 2)["heatmap"]
    both = encode_targets(np.array([[10.0, 10.0], [14.0, 10.0]]), np.array([[8, 8, 12, 12], [12, 8, 16, 12]]),
                          (16, 16), 2)["heatmap"]
    assert np.allclose(both, np.maximum(a, b))


def _suppressed_peak_by_peak(x, y, boxes, scores, min_score):
    """The rule, one peak at a time from the strongest: dropped inside the box of a stronger kept peak that
    scores at least `min_score`."""
    keep = np.ones(len(x), bool)
    order = np.argsort(-scores, kind="stable")
    for rank, j in enumerate(order):
        for i in order[:rank]:
            if keep[i] and scores[i] >= min_score and boxes[i, 0] <= x[j] <= boxes[i, 2] \
                    and boxes[i, 1] <= y[j] <= boxes[i, 3]:
                keep[j] = False
                break
    return keep


def test_peaks_inside_a_stronger_box_are_dropped_as_peak_by_peak():
    from detector.inference import inside_stronger_box

    rng = np.random.default_rng(0)
    for trial in range(500):
        n = int(rng.integers(0, 25))
        x, y = rng.integers(0, 16, n).astype(float), rng.integers(0, 16, n).astype(float)
        half = rng.integers(0, 6, (n, 4))
        boxes = np.stack([x - half[:, 0], y - half[:, 1], x + half[:, 2], y + half[:, 3]], 1).reshape(n, 4)
        scores = (rng.choice([0.2, 0.6, 0.7, 0.9], n) if trial % 2 else rng.random(n)).astype(np.float32)  # ties
        for min_score in (0.0, 0.6, 1.1):
            expected = _suppressed_peak_by_peak(x, y, boxes, scores, min_score)
            assert np.array_equal(inside_stronger_box(x, y, boxes, scores, min_score), expected)
