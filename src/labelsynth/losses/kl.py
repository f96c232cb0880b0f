"""KL divergence of a diagonal Gaussian encoder from the standard normal prior (Kingma & Welling 2014).

    KL(N(mu, exp(logvar)) || N(0, 1)) = -0.5 * sum(1 + logvar - mu^2 - exp(logvar))

SPADE (``--use_vae``) uses the **sum** over the batch and the latent dimensions (``reduction="sum"``), weighted by
``lambda_kld = 0.05`` by the caller.
"""

from __future__ import annotations

from typing import Literal

import torch

__all__ = ["kl_divergence"]


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor,
                  reduction: Literal["sum", "batchmean", "mean", "none"] = "sum") -> torch.Tensor:
    """KL divergence of ``N(mu, exp(logvar))`` from ``N(0, I)``, computed in float32.

    Args:
        mu, logvar: ``[B, ...]`` encoder outputs (same shape).
        reduction: ``"sum"`` over everything (SPADE), ``"batchmean"`` (sum / B), ``"mean"`` (mean over all elements)
            or ``"none"`` (per-element terms ``-0.5 * (1 + logvar - mu^2 - exp(logvar))``).
    """
    if mu.shape != logvar.shape:
        raise ValueError(f"mu {tuple(mu.shape)} and logvar {tuple(logvar.shape)} must have the same shape")
    mu, logvar = mu.float(), logvar.float()
    terms = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp())
    if reduction == "sum":
        return terms.sum()
    if reduction == "batchmean":
        return terms.sum() / mu.shape[0]
    if reduction == "mean":
        return terms.mean()
    if reduction == "none":
        return terms
    raise ValueError(f"unknown reduction {reduction!r}; expected 'sum', 'batchmean', 'mean' or 'none'")
