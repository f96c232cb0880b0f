"""Convolutions whose input is (partly) a one-hot label map, computed as embedding lookups.

A k x k convolution over a one-hot map reads, at every tap, one column of the weight: the one of the pixel's class.
So `conv(one_hot(labels), W)` equals the sum over the k*k taps of `W[:, labels(p + offset_t), t]`, a gather of
`out_channels` numbers per tap instead of `in_channels * out_channels` multiply-adds. Exact up to float summation
order (differences ~1e-6 in float32). Used by the inference fast paths (CoCosNet's translation network and domain
adaptor, whose first convolutions see 151 one-hot ADE20K channels).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["onehot_conv2d"]


def _shifted_keys(keys: torch.Tensor, kernel_size: int, padding_mode: str, pad_key: int) -> torch.Tensor:
    """`[k*k, B, H, W]` label ids seen through every tap (out-of-image taps: `pad_key` or the reflected pixel)."""
    pad = kernel_size // 2
    if padding_mode == "reflect":
        padded = F.pad(keys[:, None].float(), (pad,) * 4, mode="reflect")[:, 0].long()
    elif padding_mode == "zeros":
        padded = F.pad(keys, (pad,) * 4, value=pad_key)
    else:
        raise ValueError(f"padding_mode must be 'zeros' or 'reflect', got {padding_mode!r}")
    h, w = keys.shape[-2:]
    return torch.stack([padded[:, dy:dy + h, dx:dx + w] for dy in range(kernel_size) for dx in range(kernel_size)])


def onehot_conv2d(labels: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                  dense: torch.Tensor | None = None, padding_mode: str = "zeros") -> torch.Tensor:
    """`conv2d(cat([dense, one_hot(labels)], 1), weight, bias)` with stride 1 and "same" padding, without building
    the one-hot map.

    Args:
        labels (`LongTensor[B, H, W]`): channel index of every pixel in the one-hot part (0 .. L-1).
        weight (`Tensor[O, D + L, k, k]`): the convolution weight; its first D input channels see `dense`, the last L
            the one-hot map.
        bias (`Tensor[O]`, *optional*).
        dense (`Tensor[B, D, H, W]`, *optional*): dense channels placed before the one-hot ones (D = 0 when None).
        padding_mode: "zeros" or "reflect" (padding k // 2 on every side).

    Returns:
        `Tensor[B, O, H, W]` in channels-last memory layout, in `weight`'s dtype.
    """
    out_channels, in_channels, k, _ = weight.shape
    num_dense = 0 if dense is None else dense.shape[1]
    num_labels = in_channels - num_dense
    b, h, w = labels.shape
    # table[t * (L + 1) + l] = weight column of label l at tap t; row L of each tap is the zero row of padding.
    table = weight[:, num_dense:].permute(2, 3, 1, 0).reshape(k * k, num_labels, out_channels)
    table = torch.cat([table, table.new_zeros(k * k, 1, out_channels)], dim=1).reshape(-1, out_channels)
    taps = _shifted_keys(labels, k, padding_mode, pad_key=num_labels)
    taps = taps + (torch.arange(k * k, device=labels.device) * (num_labels + 1)).view(-1, 1, 1, 1)
    out = F.embedding_bag(taps.reshape(k * k, -1).t(), table, mode="sum")  # [B*H*W, O]
    out = out.view(b, h, w, out_channels).permute(0, 3, 1, 2)
    if bias is not None:
        out = out + bias.view(1, -1, 1, 1)
    if dense is not None:
        x = dense.to(weight.dtype)
        if padding_mode == "reflect":
            x = F.pad(x, (k // 2,) * 4, mode="reflect")
            out = out + F.conv2d(x, weight[:, :num_dense])
        else:
            out = out + F.conv2d(x, weight[:, :num_dense], padding=k // 2)
    return out
