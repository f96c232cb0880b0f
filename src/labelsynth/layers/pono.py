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
    """PONO of `x [B, C, H, W]` over the channel dimension (unbiased variance).

    On a channels-last `x` each pixel's channels are contiguous, and two-pass statistics over that last dimension
    (the mean, then the mean square of the centred values) are several times faster on CPU than `torch.var_mean`;
    the result is channels-last too.
    """
    channels = x.shape[1]
    if channels > 1 and x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        pixels = x.permute(0, 2, 3, 1)  # [B, H, W, C], contiguous
        centred = pixels - pixels.mean(dim=-1, keepdim=True)
        var = (centred * centred).sum(dim=-1, keepdim=True) / (channels - 1)
        return (centred * torch.rsqrt(var + eps)).permute(0, 3, 1, 2)
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
