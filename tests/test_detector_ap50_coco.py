"""Box AP50 (`detector.metrics.ap50`) agrees with pycocotools' COCOeval (AP at IoU 0.50, area all,
100 detections per image) on random detections of random targets."""
from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from detector.metrics import ImageResult, ap50


def _images(rng: np.random.Generator, n: int = 12) -> list[ImageResult]:
    out = []
    for _ in range(n):
        k = int(rng.integers(0, 5))
        x1, y1 = rng.integers(0, 200, k), rng.integers(0, 150, k)
        gt = np.stack([x1, y1, x1 + rng.integers(0, 12, k), y1 + rng.integers(0, 12, k)], 1).astype(float)
        preds = []
        for b in gt:  # a jittered box per target (some miss IoU 0.5), plus false alarms
            if rng.random() < 0.85:
                lo, hi = b[:2] - 0.5, b[2:] + 0.5
                preds.append(np.concatenate([lo + rng.normal(0, 0.6, 2), hi + rng.normal(0, 0.6, 2)]))
        for _ in range(int(rng.integers(0, 4))):
            x, y = rng.uniform(0, 200), rng.uniform(0, 150)
            preds.append(np.array([x, y, x + rng.uniform(1, 10), y + rng.uniform(1, 10)]))
        pb = np.array(preds, float).reshape(-1, 4)
        pb[:, 2:] = np.maximum(pb[:, 2:], pb[:, :2] + 0.5)
        score = np.round(rng.uniform(0.05, 1, len(pb)), 2)  # rounded: ties happen, as in real output
        out.append(ImageResult(pred_xy=(pb[:, :2] + pb[:, 2:]) / 2, pred_score=score, pred_boxes=pb,
                               gt_xy=(gt[:, :2] + gt[:, 2:]) / 2 if k else np.zeros((0, 2)),
                               gt_boxes=gt.reshape(-1, 4), shape=(160, 220)))
    return out


def _coco_ap50(images: list[ImageResult]) -> float:
    """The same images through COCOeval: gt boxes are inclusive pixel indices, predictions pixel borders."""
    gts, dts = [], []
    for i, im in enumerate(images):
        for b in im.gt_boxes:
            w, h = b[2] - b[0] + 1, b[3] - b[1] + 1
            gts.append({"id": len(gts) + 1, "image_id": i, "category_id": 1, "iscrowd": 0, "area": float(w * h),
                        "bbox": [float(b[0] - 0.5), float(b[1] - 0.5), float(w), float(h)]})
        for b, s in zip(im.pred_boxes, im.pred_score):
            dts.append({"image_id": i, "category_id": 1, "score": float(s),
                        "bbox": [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])]})
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = {"images": [{"id": i, "width": 220, "height": 160} for i in range(len(images))],
                        "annotations": gts, "categories": [{"id": 1, "name": "target"}]}
        coco.createIndex()
        ev = COCOeval(coco, coco.loadRes(dts), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return float(ev.stats[1])


@pytest.mark.parametrize("seed", range(6))
def test_ap50_matches_pycocotools(seed):
    images = _images(np.random.default_rng(seed))
    assert ap50(images) == pytest.approx(_coco_ap50(images), abs=1e-9)
