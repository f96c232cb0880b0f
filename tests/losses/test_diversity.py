import pytest
import torch
import torch.nn.functional as F

from labelsynth.layers.vgg import VGG19
from labelsynth.losses import CRN_LAYER_WEIGHTS, CRNPerceptualLoss, diversity_reduction
from labelsynth.losses.diversity import masked_errors


@pytest.fixture(scope="module")
def vgg():
    torch.manual_seed(0)
    return VGG19(pool="avg")


def two_class_semantics(size=(16, 32)) -> torch.Tensor:
    """Left half class 0, right half class 1: [1, 2, H, W]."""
    semantics = torch.zeros(1, 2, *size)
    semantics[:, 0, :, : size[1] // 2] = 1
    semantics[:, 1, :, size[1] // 2:] = 1
    return semantics


def test_masked_errors_match_the_definition():
    fake = torch.randn(2, 3, 4, 8, 8)
    real = torch.randn(2, 4, 8, 8)
    masks = torch.rand(2, 5, 8, 8)
    errors = masked_errors(fake, real, masks)
    expected = ((fake - real[:, None]).abs().mean(2)[:, :, None] * masks[:, None]).mean(dim=(-1, -2))
    assert errors.shape == (2, 3, 5)
    assert torch.allclose(errors, expected, atol=1e-6)


def test_diversity_reduction_takes_the_best_candidate_per_class():
    errors = torch.tensor([[[1.0, 9.0], [8.0, 2.0]]])  # candidate 0 best on class 0, candidate 1 on class 1
    expected = 0.999 * (1.0 + 2.0) + 0.001 * (4.5 + 5.5)
    assert diversity_reduction(errors).item() == pytest.approx(expected)


def test_each_class_only_needs_one_good_candidate():
    real = torch.rand(1, 3, 16, 32) * 2 - 1
    semantics = two_class_semantics()
    left, right = semantics[:, :1], semantics[:, 1:]
    noise = torch.rand(1, 3, 16, 32) * 2 - 1
    # candidate 0 is right on the left half only, candidate 1 on the right half only
    candidates = torch.stack([real * left + noise * right, noise * left + real * right], dim=1)
    loss = CRNPerceptualLoss(None)
    both_bad = torch.stack([noise, noise], dim=1)
    diverse = loss(candidates, real, semantics)
    assert diverse < 0.01 * loss(both_bad, real, semantics)
    assert diverse > 0  # the 0.001 mean term still sees the wrong halves


def test_single_candidate_equals_the_plain_perceptual_loss(vgg):
    torch.manual_seed(1)
    fake = torch.rand(2, 1, 3, 32, 32) * 2 - 1
    real = torch.rand(2, 3, 32, 32) * 2 - 1
    semantics = F.one_hot(torch.randint(0, 5, (2, 32, 32)), 5).permute(0, 3, 1, 2).float()
    loss = CRNPerceptualLoss(vgg, "cityscapes-512p")
    per_class = loss(fake, real, semantics)
    plain = loss(fake, real, None)
    assert torch.allclose(per_class, plain, rtol=1e-5)
    # and the plain loss is sum_l lambda_l * mean |phi_l(fake) - phi_l(real)| in 0..255 units, MatConvNet input
    mean = torch.tensor([123.68, 116.779, 103.939]).view(1, 3, 1, 1)
    f255, r255 = (fake[:, 0] + 1) * 127.5, (real + 1) * 127.5
    layers = ("relu1_2", "relu2_2", "relu3_2", "relu4_2", "relu5_2")
    feats = zip([f255, *vgg.slices(f255 - mean, layers)], [r255, *vgg.slices(r255 - mean, layers)])
    expected = sum(w * (f - r).abs().mean() for w, (f, r) in zip(CRN_LAYER_WEIGHTS["cityscapes-512p"], feats))
    assert torch.allclose(plain, expected, rtol=1e-5)


def test_gradients_reach_the_candidates_not_the_vgg(vgg):
    candidates = (torch.rand(1, 2, 3, 16, 32) * 2 - 1).requires_grad_()
    loss = CRNPerceptualLoss(vgg)(candidates, torch.rand(1, 3, 16, 32) * 2 - 1, two_class_semantics())
    loss.backward()
    assert candidates.grad.abs().sum() > 0
    assert all(p.grad is None for p in vgg.parameters())


def test_imagenet_input_range_changes_the_vgg_input(vgg):
    fake, real = torch.rand(1, 1, 3, 16, 16) * 2 - 1, torch.rand(1, 3, 16, 16) * 2 - 1
    a = CRNPerceptualLoss(vgg, input_range="matconvnet")(fake, real)
    b = CRNPerceptualLoss(vgg, input_range="imagenet")(fake, real)
    assert not torch.allclose(a, b)


@pytest.mark.parametrize("kwargs, args, message", [
    ({"layer_weights": "nope"}, None, "unknown CRN layer weights"),
    ({"layer_weights": (1.0, 2.0)}, None, "needs 6 numbers"),
    ({"input_range": "bgr"}, None, "input_range"),
    ({}, ((1, 2, 3, 20, 32), (1, 3, 20, 32)), "divisible by 16"),
    ({}, ((1, 3, 16, 32), (1, 3, 16, 32)), r"\[B, k, 3, H, W\]"),
    ({}, ((1, 2, 3, 16, 32), (2, 3, 16, 32)), "real must be"),
])
def test_bad_arguments_raise(kwargs, args, message):
    with pytest.raises(ValueError, match=message):
        loss = CRNPerceptualLoss(None, **kwargs)
        fake_shape, real_shape = args
        loss(torch.zeros(fake_shape), torch.zeros(real_shape))
