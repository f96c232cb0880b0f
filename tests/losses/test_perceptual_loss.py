"""VGG perceptual loss against a manual computation through torchvision-layout slices of a tiny random VGG19."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from labelsynth.layers.vgg import VGG19
from labelsynth.losses import SPADE_VGG_LAYERS, SPADE_VGG_WEIGHTS, VGGPerceptualLoss


@pytest.fixture(scope="module")
def vgg() -> VGG19:
    torch.manual_seed(0)
    return VGG19()


@pytest.fixture(scope="module")
def images() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.rand(1, 3, 16, 16, generator=g) * 2 - 1, torch.rand(1, 3, 16, 16, generator=g) * 2 - 1


def _manual_spade_vgg_loss(vgg: VGG19, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """SPADE / pix2pixHD: slices features[0:2], [2:7], [7:12], [12:21], [21:30]; sum_i w_i * L1(x_i, y_i.detach())."""
    bounds = [(0, 2), (2, 7), (7, 12), (12, 21), (21, 30)]
    weights = [1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0]
    loss = 0.0
    hx, hy = x, y
    for (start, stop), w in zip(bounds, weights):
        for module in vgg.features[start:stop]:
            hx, hy = module(hx), module(hy)
        loss = loss + w * F.l1_loss(hx, hy.detach())
    return loss


def test_matches_manual_spade_computation(vgg, images) -> None:
    x, y = images
    assert SPADE_VGG_LAYERS == ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    assert SPADE_VGG_WEIGHTS == (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)
    loss = VGGPerceptualLoss(vgg)
    value = loss(x, y)
    assert value.dim() == 0 and value.item() > 0
    torch.testing.assert_close(value, _manual_spade_vgg_loss(vgg, x, y), rtol=1e-6, atol=0)
    assert loss(x, x).item() == 0.0


def test_custom_layers_criterion_and_imagenet_input(vgg, images) -> None:
    x, y = images
    loss = VGGPerceptualLoss(vgg, layers=("conv4_2", "relu5_2"), weights=(0.5, 2.0), criterion="mse")
    fx, fy = vgg.slices(x, ["conv4_2", "relu5_2"]), vgg.slices(y, ["conv4_2", "relu5_2"])
    expected = 0.5 * F.mse_loss(fx[0], fy[0]) + 2.0 * F.mse_loss(fx[1], fy[1])
    torch.testing.assert_close(loss(x, y), expected)
    # "imagenet": [-1, 1] -> [0, 1] -> (v - mean) / std, then the same loss.
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    norm = lambda v: ((v + 1) / 2 - mean) / std
    torch.testing.assert_close(VGGPerceptualLoss(vgg, input_range="imagenet")(x, y),
                               VGGPerceptualLoss(vgg)(norm(x), norm(y)))


def test_gradients_reach_the_input_only(vgg, images) -> None:
    x, y = images
    x = x.clone().requires_grad_(True)
    y = y.clone().requires_grad_(True)
    VGGPerceptualLoss(vgg)(x, y).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert y.grad is None  # the target branch runs without grad
    assert all(p.grad is None and not p.requires_grad for p in vgg.parameters())


def test_autocast_computes_in_float32(vgg, images) -> None:
    x, y = images
    loss = VGGPerceptualLoss(vgg)
    reference = loss(x, y)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        inside = loss(x, y)
        low_input = loss(x.bfloat16(), y.bfloat16())
    assert inside.dtype == torch.float32 and low_input.dtype == torch.float32
    torch.testing.assert_close(inside, reference)
    torch.testing.assert_close(low_input, loss(x.bfloat16().float(), y.bfloat16().float()))


def test_errors(vgg, images) -> None:
    x, y = images
    with pytest.raises(ValueError, match="2 layers but 1 weights"):
        VGGPerceptualLoss(vgg, layers=("relu1_1", "relu2_1"), weights=(1.0,))
    with pytest.raises(ValueError, match="unknown VGG19 layer"):
        VGGPerceptualLoss(vgg, layers=("relu9_9",), weights=(1.0,))
    with pytest.raises(ValueError, match="input_range"):
        VGGPerceptualLoss(vgg, input_range="[0,1]")
    with pytest.raises(ValueError, match="same shape"):
        VGGPerceptualLoss(vgg)(x, y[..., :8])
    with pytest.raises(FileNotFoundError):
        VGGPerceptualLoss("missing/vgg19.pth")
