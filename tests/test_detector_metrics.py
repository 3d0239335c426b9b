"""Point P/R/F1, Pd/Fa (with the reference's area bug fixed), AP50."""
import numpy as np
import pytest

from detector.metrics import ImageResult, ap50, best_threshold, evaluate, match_points, pd_fa, point_counts


def _im(pred, score, gt, shape=(50, 50), half=1.0):
    pred = np.asarray(pred, float).reshape(-1, 2)
    gt = np.asarray(gt, float).reshape(-1, 2)
    pb = np.concatenate([pred - half, pred + half], 1)
    gb = np.concatenate([np.round(gt) - 1, np.round(gt) + 1], 1)
    return ImageResult(pred, np.asarray(score, np.float32), pb, gt, gb, shape)


def test_hungarian_matching_with_a_3px_gate():
    pairs = match_points(np.array([[0, 0], [10, 10], [30, 30]], float), np.array([[2.9, 0], [10, 13.5]], float))
    assert pairs == [(0, 0)]
    # one-to-one: two predictions near one target give one TP and one FP
    res = point_counts([_im([[5, 5], [5.5, 5]], [0.9, 0.8], [[5, 5]])], 0.5)
    assert (res["tp"], res["fp"], res["fn"]) == (1, 1, 0)


def test_threshold_choice_maximises_f1():
    ims = [_im([[5, 5], [30, 30]], [0.9, 0.3], [[5, 5]])]
    thr, res = best_threshold(ims)
    assert 0.3 < thr <= 0.9 and res["f1"] == 1.0


def test_fa_counts_a_false_blob_with_the_same_area_as_a_matched_one():
    # The reference removed matched blobs by area, so an equal-area false alarm vanished. Ours keeps it.
    im = _im([[10, 10], [40, 40]], [0.9, 0.9], [[10, 10]], shape=(50, 50), half=1.0)
    r = pd_fa([im], 0.5)
    assert r["pd"] == 1.0
    assert r["fa_e6"] == pytest.approx(1e6 * 9 / 2500)  # the 3x3 false blob


def test_ap50_is_one_for_perfect_boxes_and_lower_with_false_positives():
    perfect = _im([[10, 10]], [0.9], [[10, 10]], half=1.5)
    assert ap50([perfect]) == pytest.approx(1.0)
    noisy = _im([[10, 10], [30, 30]], [0.5, 0.9], [[10, 10]], half=1.5)
    assert ap50([noisy]) < 1.0


def test_evaluate_reports_everything():
    rep = evaluate([_im([[10, 10]], [0.9], [[10, 10]], half=1.5)], 0.5)
    assert {"point", "pd", "fa_e6", "ap50", "by_size", "threshold"} <= set(rep)
    assert rep["by_size"]["<=4px"]["recall"] == 1.0


def test_blobs_are_scipy_components_in_scipy_order():
    """`_blobs` (OpenCV) gives exactly scipy.ndimage's 8-connected components, centroids, areas and order."""
    from scipy import ndimage

    from detector.metrics import _blobs

    rng = np.random.default_rng(0)
    for _ in range(200):
        mask = np.zeros((64, 80), bool)
        for _ in range(int(rng.integers(0, 25))):
            x, y = rng.integers(0, 80), rng.integers(0, 64)
            mask[y:y + rng.integers(1, 6), x:x + rng.integers(1, 6)] = True
        labels, n = ndimage.label(mask, structure=np.ones((3, 3)))
        want = np.array(ndimage.center_of_mass(mask, labels, range(1, n + 1))).reshape(-1, 2)[:, ::-1]
        cents, areas = _blobs(mask)
        assert len(cents) == n
        np.testing.assert_allclose(cents, want, atol=1e-9)
        np.testing.assert_array_equal(areas, ndimage.sum_labels(mask, labels, range(1, n + 1)))
