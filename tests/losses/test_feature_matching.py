"""Feature matching: 2 scales x (2 intermediate stages + logits) with known numbers."""

from __future__ import annotations

import pytest
import torch

from labelsynth.losses import feature_matching_loss


def _outputs(requires_grad: bool = False):
    t = lambda values, shape: torch.tensor(values, dtype=torch.float32).view(shape).requires_grad_(requires_grad)
    fake = [
        [t([1.0] * 8, (1, 2, 2, 2)), t([3.0] * 4, (1, 1, 2, 2)), t([100.0], (1, 1, 1, 1))],
        [t([0.5] * 2, (1, 2, 1, 1)), t([1.0, 2.0, 3.0, 4.0], (1, 4, 1, 1)), t([100.0], (1, 1, 1, 1))],
    ]
    real = [
        [t([0.0] * 8, (1, 2, 2, 2)), t([1.0] * 4, (1, 1, 2, 2)), t([-100.0], (1, 1, 1, 1))],
        [t([0.0] * 2, (1, 2, 1, 1)), t([4.0, 3.0, 2.0, 1.0], (1, 4, 1, 1)), t([-100.0], (1, 1, 1, 1))],
    ]
    return fake, real


# Per-stage L1 means: scale 0 -> 1, 2; scale 1 -> 0.5, mean(|[-3, -1, 1, 3]|) = 2. Logits are ignored.
STAGE_L1 = [1.0, 2.0, 0.5, 2.0]


def test_spade_formula() -> None:
    fake, real = _outputs()
    loss = feature_matching_loss(fake, real)
    assert loss.dim() == 0
    assert loss.item() == pytest.approx(sum(STAGE_L1) / 2)  # / num_D = 2
    assert feature_matching_loss(fake, real, num_d=1).item() == pytest.approx(sum(STAGE_L1))


def test_pix2pixhd_weighting() -> None:
    fake, real = _outputs()
    # 4 / (number of intermediate stages = 2) = 2 per stage, / num_D = 2
    assert feature_matching_loss(fake, real, layer_weight="pix2pixhd").item() == pytest.approx(sum(STAGE_L1))
    assert feature_matching_loss(fake, real, layer_weight=0.5).item() == pytest.approx(sum(STAGE_L1) / 4)
    # mse: scale 0 -> 1, 4; scale 1 -> 0.25, mean([9, 1, 1, 9]) = 5
    assert feature_matching_loss(fake, real, criterion="mse").item() == pytest.approx((1 + 4 + 0.25 + 5) / 2)


def test_real_features_are_detached() -> None:
    fake, real = _outputs(requires_grad=True)
    feature_matching_loss(fake, real).backward()
    assert all(r.grad is None for scale in real for r in scale)
    # d/d fake of (1/num_D) * mean|fake - real| = sign / (numel * num_D)
    torch.testing.assert_close(fake[0][0].grad, torch.full((1, 2, 2, 2), 1 / 16))
    torch.testing.assert_close(fake[1][1].grad, torch.tensor([-1.0, -1.0, 1.0, 1.0]).view(1, 4, 1, 1) / 8)
    assert fake[0][2].grad is None  # logits do not take part


def test_errors() -> None:
    fake, real = _outputs()
    with pytest.raises(ValueError, match="same non-zero number of scales"):
        feature_matching_loss(fake, real[:1])
    with pytest.raises(ValueError, match="stage outputs"):
        feature_matching_loss([fake[0][:2]], [real[0]])
    with pytest.raises(TypeError):
        feature_matching_loss([fake[0][-1]], [real[0][-1]])
    with pytest.raises(ValueError, match="no intermediate"):
        feature_matching_loss([fake[0][-1:]], [real[0][-1:]])
    with pytest.raises(ValueError, match="layer_weight"):
        feature_matching_loss(fake, real, layer_weight="spade")
