"""Peak extraction: the torch path; the NumPy path (CPU default) and the CuPy path (GPU only) against it."""
import numpy as np
import pytest
import torch

from detector.peaks import extract_peaks, extract_peaks_numpy


def _heatmaps(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    heat = torch.rand(3, 1, 64, 80, generator=g) * 0.3
    heat[0, 0, 10, 10] = 0.9
    heat[0, 0, 10, 11] = 0.8  # a neighbour, not a local maximum
    heat[1, 0, 0, 0] = 0.95  # corner
    heat[2, 0, 63, 79] = 0.7
    return heat


def test_local_maxima_above_threshold_highest_first():
    (cells0, s0), (cells1, _), (cells2, _) = extract_peaks(_heatmaps(), 0.5, top_k=10)
    assert cells0.tolist() == [[10, 10]] and s0[0] == pytest.approx(0.9)
    assert cells1.tolist() == [[0, 0]] and cells2.tolist() == [[63, 79]]
    (low, scores), *_ = extract_peaks(_heatmaps(), 0.0, top_k=5)
    assert len(low) == 5 and np.all(np.diff(scores) <= 0)


def _same(ref, got) -> None:
    for (c1, s1), (c2, s2) in zip(ref, got):
        assert sorted(zip(map(tuple, c1.tolist()), s1.tolist())) == sorted(zip(map(tuple, c2.tolist()), s2.tolist()))


@pytest.mark.parametrize("seed", range(4))
def test_numpy_path_gives_the_same_peaks_as_torch(seed):
    heat = torch.rand(3, 1, 61, 77, generator=torch.Generator().manual_seed(seed))
    heat[0, 0, 5:8, 5:8] = 0.97  # a plateau: every cell of it is a peak on both paths
    heat[1, 0, :, 0] = 0.99  # an edge column
    heat[2] = (heat[2] * 8).round() / 8  # many exact ties
    for thr in (0.0, 0.3, 0.9):
        _same(extract_peaks(heat, thr, top_k=10_000), extract_peaks_numpy(heat.numpy(), thr, top_k=10_000))
    got = extract_peaks_numpy(heat.numpy(), 0.2, top_k=7)
    assert all(len(s) == 7 and np.all(np.diff(s) <= 0) for _, s in got)  # top_k, highest first


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (compares the CuPy kernel with the torch path)")
def test_cupy_kernel_gives_the_same_peaks_as_torch():
    pytest.importorskip("cupy", reason="CuPy not installed (pip install '.[gpu]')")
    from detector.peaks import extract_peaks_cupy

    for seed in range(5):
        heat = torch.rand(4, 1, 256, 320, generator=torch.Generator().manual_seed(seed)).cuda()
        for thr in (0.0, 0.5, 0.9):
            ref = extract_peaks(heat, thr, top_k=4096)
            got = extract_peaks_cupy(heat, thr, top_k=4096, capacity=1 << 16)
            _same(ref, got)
