"""Contextual loss (CoCosNet's form)."""

import pytest
import torch

from labelsynth.losses.contextual import cocosnet_contextual_loss, contextual_loss


def test_contextual_loss_is_zero_for_identical_features_and_ignores_positions() -> None:
    torch.manual_seed(0)
    y = torch.randn(2, 8, 5, 5)
    assert contextual_loss(y, y).abs().max() < 1e-4  # every feature finds itself: CX = 1
    shuffled = y.flatten(2)[:, :, torch.randperm(25)].view_as(y)  # same features, other places
    assert contextual_loss(shuffled, y, centering="positions").abs().max() < 1e-4
    other = torch.randn(2, 8, 5, 5)
    assert (contextual_loss(other, y) > 0.1).all()  # unrelated features: CX clearly below 1
    assert contextual_loss(other, y).shape == (2,)


def test_contextual_loss_matches_its_definition() -> None:
    torch.manual_seed(1)
    x, y = torch.randn(1, 4, 3, 3), torch.randn(1, 4, 3, 3)
    mean = y.mean(1, keepdim=True)
    xn = torch.nn.functional.normalize(x - mean, dim=1).flatten(2)[0]
    yn = torch.nn.functional.normalize(y - mean, dim=1).flatten(2)[0]
    d = 1 - xn.t() @ yn
    w = torch.exp((1 - d / (d.min(1, keepdim=True).values + 1e-3)) / 0.1)
    expected = -torch.log((w / w.sum(1, keepdim=True)).max(1).values.mean())
    torch.testing.assert_close(contextual_loss(x, y)[0], expected, atol=1e-5, rtol=1e-5)


def test_cocosnet_weighting_and_errors() -> None:
    torch.manual_seed(0)
    feats = {k: torch.randn(1, 4, 8, 8) for k in ("relu3_2", "relu4_2", "relu5_2")}
    other = {k: torch.randn(1, 4, 8, 8) for k in feats}
    total = cocosnet_contextual_loss(feats, other)
    by_layer = cocosnet_contextual_loss(feats, other, layers=("relu5_2",))
    assert total > by_layer > 0
    with pytest.raises(ValueError, match="unknown contextual layer"):
        cocosnet_contextual_loss(feats, other, layers=("relu9_9",))
    with pytest.raises(ValueError, match="same shape"):
        contextual_loss(torch.randn(1, 4, 2, 2), torch.randn(1, 4, 3, 3))
