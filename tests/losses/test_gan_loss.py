"""GANLoss: hand-computed values for every mode, both sides, and the multi-scale reductions."""

from __future__ import annotations

import math

import pytest
import torch

from labelsynth.layers.discriminators import MultiscaleDiscriminator
from labelsynth.losses import GANLoss, final_logits

# Two scales of patch logits.
X0 = [-2.0, 0.5, 1.5, 3.0]  # scale 0, [1, 1, 2, 2]
X1 = [0.0, -0.5]  # scale 1, [1, 1, 1, 2]


def _logits(requires_grad: bool = False) -> list[torch.Tensor]:
    return [torch.tensor(X0).view(1, 1, 2, 2).requires_grad_(requires_grad),
            torch.tensor(X1).view(1, 1, 1, 2).requires_grad_(requires_grad)]


def _softplus(v: float) -> float:
    return math.log1p(math.exp(v))


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values)


# Per-scale values: (D real, D fake, G), computed by hand from X0 and X1.
EXPECTED = {
    # relu(1-x): [3, .5, 0, 0] -> .875, [1, 1.5] -> 1.25; relu(1+x): [0, 1.5, 2.5, 4] -> 2, [1, .5] -> .75;
    # G: -mean(x): -.75, .25
    "hinge": ((0.875, 1.25), (2.0, 0.75), (-0.75, 0.25)),
    # (x-1)^2: [9, .25, .25, 4] -> 3.375, [1, 2.25] -> 1.625; x^2: [4, .25, 2.25, 9] -> 3.875, [0, .25] -> .125
    "ls": ((3.375, 1.625), (3.875, 0.125), (3.375, 1.625)),
    # BCE with logits: target 1 -> softplus(-x), target 0 -> softplus(x)
    "original": ((_mean(_softplus(-v) for v in X0), _mean(_softplus(-v) for v in X1)),
                 (_mean(_softplus(v) for v in X0), _mean(_softplus(v) for v in X1)),
                 (_mean(_softplus(-v) for v in X0), _mean(_softplus(-v) for v in X1))),
    # real: -mean(x), fake: mean(x), G: -mean(x)
    "w": ((-0.75, 0.25), (0.75, -0.25), (-0.75, 0.25)),
}


@pytest.mark.parametrize("mode", sorted(EXPECTED))
@pytest.mark.parametrize("scale_reduction", ["mean", "sum"])
def test_hand_computed_values(mode: str, scale_reduction: str) -> None:
    loss = GANLoss(mode, scale_reduction=scale_reduction)
    reduce = (lambda a, b: (a + b) / 2) if scale_reduction == "mean" else (lambda a, b: a + b)
    d_real, d_fake, g = (reduce(*pair) for pair in EXPECTED[mode])
    torch.testing.assert_close(loss.discriminator_loss(_logits(), True), torch.tensor(d_real))
    torch.testing.assert_close(loss.discriminator_loss(_logits(), False), torch.tensor(d_fake))
    torch.testing.assert_close(loss.generator_loss(_logits()), torch.tensor(g))
    # SPADE's call signature.
    torch.testing.assert_close(loss(_logits(), True, for_discriminator=False), torch.tensor(g))
    torch.testing.assert_close(loss(_logits(), False), torch.tensor(d_fake))
    # One scale given as a tensor equals that scale's value.
    torch.testing.assert_close(loss.discriminator_loss(_logits()[0], True), torch.tensor(EXPECTED[mode][0][0]))
    assert loss.generator_loss(_logits()).dim() == 0


def test_spade_values_written_out() -> None:
    """SPADE defaults: hinge, averaged over scales."""
    loss = GANLoss()
    assert loss.mode == "hinge" and loss.scale_reduction == "mean"
    assert loss.discriminator_loss(_logits(), True).item() == pytest.approx(1.0625)
    assert loss.discriminator_loss(_logits(), False).item() == pytest.approx(1.375)
    assert loss.generator_loss(_logits()).item() == pytest.approx(-0.25)


def test_feature_lists_use_the_last_entry() -> None:
    g = torch.Generator().manual_seed(0)
    nested = [[torch.randn(1, 8, 4, 4, generator=g), logits] for logits in _logits()]
    for mode in EXPECTED:
        loss = GANLoss(mode)
        assert torch.equal(loss.discriminator_loss(nested, True), loss.discriminator_loss(_logits(), True))
        assert torch.equal(loss.generator_loss(nested), loss.generator_loss(_logits()))
    assert final_logits(nested)[1] is nested[1][-1]


def test_gradients_hinge_generator() -> None:
    logits = _logits(requires_grad=True)
    GANLoss("hinge").generator_loss(logits).backward()
    # d/dx of -(1/2) * mean(x_k) = -1 / (2 * numel_k)
    torch.testing.assert_close(logits[0].grad, torch.full((1, 1, 2, 2), -1 / 8))
    torch.testing.assert_close(logits[1].grad, torch.full((1, 1, 1, 2), -1 / 4))


def test_aliases_labels_errors_and_stability() -> None:
    assert GANLoss("lsgan").mode == "ls" and GANLoss("vanilla").mode == "original" and GANLoss("wgangp").mode == "w"
    with pytest.raises(ValueError, match="unknown GAN mode"):
        GANLoss("relativistic")
    with pytest.raises(ValueError, match="scale_reduction"):
        GANLoss(scale_reduction="max")
    with pytest.raises(ValueError, match="target_is_real=True"):
        GANLoss("hinge")(_logits(), False, for_discriminator=False)
    with pytest.raises(ValueError):
        GANLoss().discriminator_loss([], True)
    # ls with custom targets (e.g. one-sided label smoothing): mean((x - 0.9)^2)
    smooth = GANLoss("ls", real_label=0.9).discriminator_loss(torch.tensor([0.9, 1.9]), True)
    assert smooth.item() == pytest.approx(0.5)
    # BCE with logits stays finite for huge logits.
    big = torch.tensor([-200.0, 200.0])
    assert GANLoss("original").discriminator_loss(big, True).item() == pytest.approx(100.0)
    assert GANLoss("original").discriminator_loss(big, False).item() == pytest.approx(100.0)


def test_low_precision_inputs_give_float32() -> None:
    for mode in EXPECTED:
        loss = GANLoss(mode)
        low = [x.to(torch.bfloat16) for x in _logits()]
        out = loss.discriminator_loss(low, True)
        assert out.dtype == torch.float32
        torch.testing.assert_close(out, loss.discriminator_loss(_logits(), True))  # the values are exact in bf16


def test_with_multiscale_discriminator() -> None:
    torch.manual_seed(0)
    d = MultiscaleDiscriminator(5, num_d=2, ndf=4, n_layers=3, norm="instance")
    x = torch.randn(2, 5, 32, 32)
    outputs = d(x)
    loss = GANLoss()
    expected = (torch.relu(1 - outputs[0][-1]).mean() + torch.relu(1 - outputs[1][-1]).mean()) / 2
    torch.testing.assert_close(loss.discriminator_loss(outputs, True), expected)
    loss.generator_loss(outputs).backward()
    assert all(p.grad is not None for p in d.parameters())
