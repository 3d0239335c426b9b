"""Peak extraction: the torch path, and the CuPy path against it on the same heatmaps (GPU only)."""
import numpy as np
import pytest
import torch

from detector.peaks import extract_peaks


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
            for (c1, s1), (c2, s2) in zip(ref, got):
                key1 = sorted(zip(map(tuple, c1.tolist()), s1.tolist()))
                key2 = sorted(zip(map(tuple, c2.tolist()), s2.tolist()))
                assert key1 == key2
