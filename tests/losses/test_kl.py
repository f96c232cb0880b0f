"""KL divergence against the closed form of KL(N(m, s^2) || N(0, 1)) = 0.5 * (s^2 + m^2 - 1 - ln s^2)."""

from __future__ import annotations

import math

import pytest
import torch

from labelsynth.losses import kl_divergence


def test_closed_form_and_reductions() -> None:
    mu = torch.tensor([[0.5, -1.0], [0.0, 2.0]])
    logvar = torch.tensor([[0.0, math.log(2.0)], [-1.0, 0.5]])
    closed = [[0.5 * (math.exp(lv) + m * m - 1 - lv) for m, lv in zip(mr, lr)]
              for mr, lr in zip(mu.tolist(), logvar.tolist())]
    assert closed[0][0] == pytest.approx(0.125) and closed[0][1] == pytest.approx(1 - math.log(2) / 2)
    total = sum(map(sum, closed))
    assert kl_divergence(mu, logvar).item() == pytest.approx(total)  # SPADE: a sum over batch and dims
    assert kl_divergence(mu, logvar, reduction="batchmean").item() == pytest.approx(total / 2)
    assert kl_divergence(mu, logvar, reduction="mean").item() == pytest.approx(total / 4)
    torch.testing.assert_close(kl_divergence(mu, logvar, reduction="none"), torch.tensor(closed))
    # Same as torch.distributions.
    reference = torch.distributions.kl_divergence(torch.distributions.Normal(mu, (0.5 * logvar).exp()),
                                                  torch.distributions.Normal(0.0, 1.0)).sum()
    torch.testing.assert_close(kl_divergence(mu, logvar), reference)
    assert kl_divergence(torch.zeros(3, 4), torch.zeros(3, 4)).item() == 0.0


def test_gradients_dtype_and_errors() -> None:
    mu = torch.tensor([0.5, -1.0], requires_grad=True)
    logvar = torch.tensor([0.0, 1.0], requires_grad=True)
    kl_divergence(mu, logvar).backward()
    torch.testing.assert_close(mu.grad, mu.detach())  # d/dmu = mu
    torch.testing.assert_close(logvar.grad, 0.5 * (logvar.detach().exp() - 1))  # d/dlogvar = (exp(lv) - 1) / 2
    assert kl_divergence(mu.detach().half(), logvar.detach().half()).dtype == torch.float32
    with pytest.raises(ValueError, match="same shape"):
        kl_divergence(torch.zeros(2), torch.zeros(3))
    with pytest.raises(ValueError, match="unknown reduction"):
        kl_divergence(torch.zeros(2), torch.zeros(2), reduction="max")
