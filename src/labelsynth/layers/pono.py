"""Positional normalization (PONO, Li et al. 2019): every pixel's feature vector is standardised over the channels.

    PONO(x)[b, :, y, x] = (x[b, :, y, x] - mean_c) / sqrt(var_c + eps)

The variance is the unbiased one (divided by C - 1), as in CoCosNet's implementation (`torch.var` default). Unlike
BatchNorm there are no statistics or parameters, so a model using it behaves the same in train and eval mode.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["PositionalNorm2d", "positional_normalize"]


def positional_normalize(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """PONO of `x [B, C, H, W]` over the channel dimension (unbiased variance)."""
    var, mean = torch.var_mean(x, dim=1, keepdim=True)
    return (x - mean) / (var + eps).sqrt()


class PositionalNorm2d(nn.Module):
    """Module form of `positional_normalize` (no parameters, no buffers).

    Shapes: `forward(x [B, C, H, W]) -> [B, C, H, W]`.
    """

    def __init__(self, eps: float = 1e-5):
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return positional_normalize(x, self.eps)

    def extra_repr(self) -> str:
        return f"eps={self.eps}"
