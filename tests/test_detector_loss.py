"""GFKL loss: hand-computed value, finite gradients, and descent toward the target."""
import math

import numpy as np
import torch

from detector.encoding import encode_targets
from detector.loss import EPS, LossWeights, detection_loss, gfkl


def test_value_on_a_hand_computed_case():
    target = torch.tensor([[[[1.0, 0.5, 0.0]]]])
    pred = torch.tensor([[[[0.8, 0.3, 0.2]]]])
    # peak cell: (1-p)^2 * t ln(t/p), t clamped to 1 - 1e-6
    t0 = 1 - EPS
    peak = (1 - 0.8) ** 2 * t0 * math.log(t0 / 0.8)
    # other cells: (1-t)^4 * p^4 * (1-t) ln((1-t)/(1-p)), t clamped to >= 1e-6
    neg1 = 0.5**4 * 0.3**4 * 0.5 * math.log(0.5 / 0.7)
    t2 = EPS
    neg2 = (1 - t2) ** 4 * 0.2**4 * (1 - t2) * math.log((1 - t2) / 0.8)
    expected = (peak + neg1 + neg2) / 2  # normalised by N = 2 targets
    got = gfkl(pred, target, 2, alpha=2, beta=4, gamma=4)
    assert got.item() == torch.tensor(expected, dtype=torch.float32).item() or abs(got.item() - expected) < 1e-7


def test_alpha_beta_gamma_are_used():
    target = torch.tensor([[[[1.0, 0.5, 0.0]]]])
    pred = torch.tensor([[[[0.8, 0.3, 0.2]]]])
    base = gfkl(pred, target, 1)
    assert gfkl(pred, target, 1, alpha=1) != base
    assert gfkl(pred, target, 1, beta=2) != base
    assert gfkl(pred, target, 1, gamma=2) != base


def _targets(batch: int = 2) -> dict:
    t = encode_targets(np.array([[10.3, 12.7], [40.0, 20.0]]), np.array([[9, 11, 12, 14], [37, 19, 43, 21]]), (32, 32), 2)
    return {k: torch.from_numpy(np.stack([v] * batch)) for k, v in t.items()}


def test_gradients_are_finite_for_all_zero_and_all_one_predictions():
    targets = _targets()
    for value in (-50.0, 50.0):  # logits giving p = 0 and p = 1 after sigmoid
        outputs = {"heatmap": torch.full((2, 1, 32, 32), value, requires_grad=True),
                   "ltrb": torch.zeros(2, 4, 32, 32, requires_grad=True),
                   "offset": torch.zeros(2, 2, 32, 32, requires_grad=True)}
        loss = detection_loss(outputs, targets)["total"]
        loss.backward()
        assert torch.isfinite(loss)
        for t in outputs.values():
            assert torch.isfinite(t.grad).all()
    # probabilities exactly 0 and 1 into gfkl itself
    t = targets["heatmap"]
    for p in (torch.zeros_like(t), torch.ones_like(t)):
        p.requires_grad_(True)
        value = gfkl(p, t, 2)
        value.backward()
        assert torch.isfinite(value) and torch.isfinite(p.grad).all()


def test_loss_falls_as_the_prediction_moves_toward_the_target():
    targets = _targets()
    start = torch.full_like(targets["heatmap"], 0.3)
    losses = []
    for k in np.linspace(0, 0.95, 8):
        p = start + float(k) * (targets["heatmap"] - start)
        losses.append(gfkl(p, targets["heatmap"], 4).item())
    assert all(b < a for a, b in zip(losses, losses[1:])), losses


def test_regression_terms_only_at_positive_cells():
    targets = _targets()
    outputs = {"heatmap": torch.zeros(2, 1, 32, 32), "ltrb": torch.zeros(2, 4, 32, 32),
               "offset": torch.zeros(2, 2, 32, 32)}
    parts = detection_loss(outputs, targets, LossWeights())
    moved = {**outputs, "ltrb": outputs["ltrb"] + 100 * (~targets["positive"][:, None]).float()}
    assert detection_loss(moved, targets)["ltrb"] == parts["ltrb"]
    assert parts["ltrb"] > 0 and parts["offset"] > 0
