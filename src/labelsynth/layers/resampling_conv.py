"""3x3 convolutions fused with the 2x resampling around them, with fewer multiply-adds and the same result.

Residual U-Nets such as the OASIS discriminator pool right after a 3x3 convolution and convolve right after a nearest
2x upsampling. Both are linear, so each pair is one convolution with a combined kernel:

* `avg_pool2d(conv3x3(x), 2)` is a 4x4 convolution with stride 2: each 4x4 tap is a quarter of the sum of the 3x3
  taps that reach it over the 2x2 pooling window. It is evaluated at the pooled pixels only: 16 multiply-adds per
  output pixel and input channel instead of 4 x 9 = 36.
* `conv3x3(upsample_nearest_2x(x))` gives each of the four output phases (even/odd row x even/odd column) a 2x2
  kernel on the low-resolution input (the 3x3 taps that read the same input pixel add up): 4 x 4 = 16
  multiply-adds per input pixel instead of 4 x 9 = 36.

The kernels are combined from the weights on every call, so gradients reach the 3x3 weights (and whatever
parametrizes them, such as spectral normalisation) as before. Outputs equal the two-step computation up to float
rounding (the sums are ordered differently).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["conv3x3_avg_pool2", "nearest_up2_conv3x3"]

# Row d of _POOL_TAPS marks the 3x3 taps u that land on 4x4 tap d over a 2-pixel pooling window (d = a + u, a in
# {0, 1}). _PHASE_TAPS[p] maps the 3x3 taps onto the 2 input pixels that output phase p reads after a nearest 2x
# upsampling: phase 0 reads rows (i - 1, i) as (tap 0, taps 1 + 2), phase 1 reads (i, i + 1) as (taps 0 + 1, tap 2).
_POOL_TAPS = ((1.0, 0.0, 0.0), (1.0, 1.0, 0.0), (0.0, 1.0, 1.0), (0.0, 0.0, 1.0))
_PHASE_TAPS = (((1.0, 0.0, 0.0), (0.0, 1.0, 1.0)), ((1.0, 1.0, 0.0), (0.0, 0.0, 1.0)))


def _check_kernel(weight: torch.Tensor) -> None:
    if weight.dim() != 4 or weight.shape[-2:] != (3, 3):
        raise ValueError(f"expected a 3x3 convolution weight [C_out, C_in, 3, 3], got shape {tuple(weight.shape)}")


def conv3x3_avg_pool2(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """`F.avg_pool2d(F.conv2d(x, weight, bias, padding=1), 2)` as one 4x4 stride-2 convolution.

    Shapes: `x [B, C_in, H, W]` (H, W even), `weight [C_out, C_in, 3, 3]` -> `[B, C_out, H/2, W/2]`.
    """
    _check_kernel(weight)
    taps = weight.new_tensor(_POOL_TAPS)
    kernel = torch.einsum("du,oiuv,ev->oide", taps, weight, taps) / 4
    return F.conv2d(x, kernel, bias, stride=2, padding=1)


def nearest_up2_conv3x3(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """`F.conv2d(F.interpolate(x, scale_factor=2, mode="nearest"), weight, bias, padding=1)` without upsampling the
    input: one 2x2 convolution gives the four output phases as channel groups, which are then interleaved.

    Shapes: `x [B, C_in, H, W]`, `weight [C_out, C_in, 3, 3]` -> `[B, C_out, 2H, 2W]`.
    """
    _check_kernel(weight)
    batch, _, height, width = x.shape
    out_channels = weight.shape[0]
    taps = weight.new_tensor(_PHASE_TAPS)  # [phase, 2, 3]
    kernel = torch.einsum("pau,oiuv,qbv->pqoiab", taps, weight, taps).reshape(4 * out_channels, -1, 2, 2)
    # On the zero-padded input, phase p's 2x2 window for output row 2i + p starts at padded row i + p.
    phases = F.conv2d(F.pad(x, (1, 1, 1, 1)), kernel, None if bias is None else bias.repeat(4))
    phases = phases.view(batch, 2, 2, out_channels, height + 1, width + 1)
    rows = [torch.stack([phases[:, p, q, :, p:p + height, q:q + width] for q in (0, 1)], dim=-1) for p in (0, 1)]
    return torch.stack(rows, dim=-3).reshape(batch, out_channels, 2 * height, 2 * width)
