"""Peak extraction from heatmaps: local maximum, threshold, compaction.

`extract_peaks` runs in torch on any device; on CUDA, `extract_peaks_cupy` does the same in one CuPy
kernel on the device so that only the peaks cross to the host; on a CPU, `extract_peaks_numpy` looks only
at the cells above the threshold (a few in a heatmap of tiny targets) instead of max-pooling the whole map.
All return, per image, the cells (row, col) and scores of the peaks, highest first, at most `top_k`.
A peak is a cell >= threshold that no 8-neighbour exceeds. `benchmarks/peaks_speed.py` compares them.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def extract_peaks(heat: torch.Tensor, threshold: float, top_k: int = 100) -> list[tuple[np.ndarray, np.ndarray]]:
    """heat: (B, 1, h, w) probabilities. Returns per image (cells (K, 2) int64 row/col, scores (K,) float32)."""
    local_max = F.max_pool2d(heat, 3, stride=1, padding=1)
    keep = (heat == local_max) & (heat >= threshold)
    scores = torch.where(keep, heat, torch.full_like(heat, -1.0)).flatten(1)
    top, idx = scores.topk(min(top_k, scores.shape[1]), dim=1)
    top, idx = top.cpu().numpy(), idx.cpu().numpy()
    w = heat.shape[-1]
    out = []
    for s, i in zip(top, idx):
        kept = s >= 0
        s, i = s[kept], i[kept]
        out.append((np.stack([i // w, i % w], 1).astype(np.int64), s.astype(np.float32)))
    return out


def extract_peaks_numpy(heat: np.ndarray, threshold: float, top_k: int = 100) -> list[tuple[np.ndarray, np.ndarray]]:
    """CPU path of `extract_peaks` on a (B, 1, h, w) or (B, h, w) array; ties ordered by cell index."""
    heat = np.asarray(heat)
    heat = heat.reshape(heat.shape[0], heat.shape[-2], heat.shape[-1])
    w = heat.shape[-1]
    out = []
    for img in heat:
        flat = img.ravel()
        idx = np.flatnonzero(flat >= threshold)
        v = flat[idx]
        padded = np.pad(img, 1, constant_values=-np.inf).ravel()  # a neighbour outside the map never wins
        at = idx + 2 * (idx // w) + w + 3  # each cell's index in `padded`: (row + 1) * (w + 2) + col + 1
        keep = np.ones(len(idx), bool)
        for d in (-w - 3, -w - 2, -w - 1, -1, 1, w + 1, w + 2, w + 3):  # the 8 neighbours in `padded`
            keep &= padded[at + d] <= v
        idx, v = idx[keep], v[keep]
        order = np.lexsort((idx, -v))[:top_k]
        idx, v = idx[order], v[order]
        out.append((np.stack([idx // w, idx % w], 1).astype(np.int64), v.astype(np.float32)))
    return out


_KERNEL = r"""
extern "C" __global__ void peaks(const float* heat, int n_images, int h, int w, float thr, int cap,
                                 int* counts, int* cells, float* scores) {
    long long t = blockDim.x * (long long)blockIdx.x + threadIdx.x;
    long long per = (long long)h * w;
    if (t >= per * n_images) return;
    int b = t / per; int i = t % per; int r = i / w; int c = i % w;
    const float* img = heat + b * per;
    float v = img[i];
    if (!(v >= thr)) return;
    for (int dr = -1; dr <= 1; ++dr) for (int dc = -1; dc <= 1; ++dc) {
        int rr = r + dr, cc = c + dc;
        if (rr < 0 || rr >= h || cc < 0 || cc >= w) continue;
        if (img[rr * w + cc] > v) return;
    }
    int slot = atomicAdd(counts + b, 1);
    if (slot < cap) { cells[b * cap + slot] = i; scores[b * cap + slot] = v; }
}
"""


def extract_peaks_cupy(heat: torch.Tensor, threshold: float, top_k: int = 100,
                       capacity: int = 4096) -> list[tuple[np.ndarray, np.ndarray]]:
    """CUDA path of `extract_peaks`: one CuPy kernel on the device; only the peaks are copied to the host."""
    import cupy as cp  # optional dependency (extra `gpu`)

    kernel = _compiled(cp)
    heat = heat.detach().float().contiguous()
    b, _, h, w = heat.shape
    src = cp.asarray(heat)  # zero-copy via __cuda_array_interface__
    counts = cp.zeros(b, cp.int32)
    cells = cp.empty(b * capacity, cp.int32)
    scores = cp.empty(b * capacity, cp.float32)
    n = b * h * w
    kernel(((n + 255) // 256,), (256,), (src, np.int32(b), np.int32(h), np.int32(w), np.float32(threshold),
                                          np.int32(capacity), counts, cells, scores))
    counts_h = np.minimum(counts.get(), capacity)
    out = []
    for j in range(b):
        k = int(counts_h[j])
        c = cells[j * capacity: j * capacity + k].get()
        s = scores[j * capacity: j * capacity + k].get()
        order = np.lexsort((c, -s))[:top_k]  # highest score first, ties by cell index
        c, s = c[order], s[order]
        out.append((np.stack([c // w, c % w], 1).astype(np.int64), s.astype(np.float32)))
    return out


_compiled_kernel = None


def _compiled(cp):  # type: ignore[no-untyped-def]
    global _compiled_kernel
    if _compiled_kernel is None:
        _compiled_kernel = cp.RawKernel(_KERNEL, "peaks")
    return _compiled_kernel
