"""Self-attention over feature maps (SAGAN, Zhang et al. 2019), as used in CoCosNet's generator and discriminator.

    theta = W_theta x,  phi = maxpool2(W_phi x),  g = maxpool2(W_g x)            (1x1 convs, C/8, C/8, C/2 channels)
    attention[i, j] = softmax_j(theta_i . phi_j)                                 (HW x HW/4)
    out = x + gamma * W_o (attention @ g)                                         (gamma learned, initialised to 0)

The keys and values are max-pooled 2x2, so the attention matrix is HW x HW/4 (4096 x 1024 at 64x64).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import maybe_spectral_norm

__all__ = ["SelfAttention2d"]


class SelfAttention2d(nn.Module):
    """SAGAN self-attention block with a learned residual gain.

    Args:
        channels: C of the input; must be divisible by 8.
        spectral_norm: spectral normalization on the four 1x1 convs (CoCosNet: when `norm_G`/`norm_D` is spectral).

    Shapes: `forward(x [B, C, H, W]) -> [B, C, H, W]`, H and W even.
    """

    def __init__(self, channels: int, spectral_norm: bool = True):
        super().__init__()
        if channels % 8:
            raise ValueError(f"SelfAttention2d needs channels divisible by 8, got {channels}")
        self.channels = channels
        self.theta = maybe_spectral_norm(nn.Conv2d(channels, channels // 8, 1, bias=False), spectral_norm)
        self.phi = maybe_spectral_norm(nn.Conv2d(channels, channels // 8, 1, bias=False), spectral_norm)
        self.g = maybe_spectral_norm(nn.Conv2d(channels, channels // 2, 1, bias=False), spectral_norm)
        self.o = maybe_spectral_norm(nn.Conv2d(channels // 2, channels, 1, bias=False), spectral_norm)
        self.gamma = nn.Parameter(torch.tensor(0.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if h % 2 or w % 2:
            raise ValueError(f"SelfAttention2d pools keys 2x2, so the feature map must have even sizes, got {h}x{w}")
        return self._attend(x, F.max_pool2d(self.phi(x), 2), F.max_pool2d(self.g(x), 2))

    def forward_upsampled(self, x: torch.Tensor) -> torch.Tensor:
        """`forward(upsample_nearest_2x(x))` computed on the coarse grid (inference; 4x fewer queries and keys).

        On a 2x nearest-upsampled map the 1x1 convs commute with the upsampling, the 2x2 max-pool of a replicated
        block returns its value (so keys and values are the coarse map's own), and the four copies of a coarse
        pixel ask the same query: the result is the coarse result upsampled.

        Shapes: `forward_upsampled(x [B, C, h, w]) -> [B, C, 2h, 2w]`.
        """
        return F.interpolate(self._attend(x, self.phi(x), self.g(x)), scale_factor=2, mode="nearest")

    def _attend(self, x: torch.Tensor, keys: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """`x + gamma * W_o (softmax(theta(x)^T keys) @ values)`; keys `[B, C/8, ...]`, values `[B, C/2, ...]` on any
        grid."""
        b, c, h, w = x.shape
        theta = self.theta(x).reshape(b, c // 8, h * w)
        attention = torch.softmax(torch.bmm(theta.transpose(1, 2), keys.flatten(2)), dim=-1)  # [B, hw, keys]
        out = self.o(torch.bmm(values.flatten(2), attention.transpose(1, 2)).reshape(b, c // 2, h, w))
        return self.gamma * out + x
