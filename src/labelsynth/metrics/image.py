"""Pixel-level image similarity: PSNR, SSIM (Wang et al., 2004) and RMSE.

These compare a generated image with *its own* ground-truth photo, so they are meaningful for reconstruction
settings (a style/VAE model given the real image as style, as in SEAN's tables); for label-only synthesis, where
many outputs are correct, FID and mIoU are the standard metrics.

All functions take ``[B, C, H, W]`` (or ``[C, H, W]``) float tensors or arrays and an explicit ``data_range``: the
width of the value range, **2.0 for [-1, 1]** images (labelsynth generators) and **1.0 for [0, 1]** (255 for uint8
values). Computation is in float64. Per-image values are returned with ``reduction="none"``, their mean with
``reduction="mean"`` (default; dataset numbers are means of per-image values).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["gaussian_window", "psnr", "rmse", "ssim"]


def _pair(x: Any, y: Any) -> tuple[torch.Tensor, torch.Tensor]:
    tensors = []
    for name, value in (("x", x), ("y", y)):
        if not isinstance(value, torch.Tensor):
            value = torch.from_numpy(np.asarray(value))
        if value.dim() == 3:
            value = value.unsqueeze(0)
        if value.dim() != 4:
            raise ValueError(f"{name} must be [B, C, H, W] or [C, H, W], got shape {tuple(value.shape)}")
        tensors.append(value.detach().to("cpu", torch.float64))
    if tensors[0].shape != tensors[1].shape:
        raise ValueError(f"images differ in shape: {tuple(tensors[0].shape)} vs {tuple(tensors[1].shape)}")
    return tensors[0], tensors[1]


def _check_range(data_range: float) -> float:
    if isinstance(data_range, bool) or not isinstance(data_range, (int, float)) or not data_range > 0:
        raise ValueError(f"data_range must be a positive number (2.0 for [-1, 1] images, 1.0 for [0, 1]), got "
                         f"{data_range!r}")
    return float(data_range)


def _reduce(values: torch.Tensor, reduction: str) -> torch.Tensor | float:
    if reduction == "none":
        return values
    if reduction == "mean":
        return float(values.mean())
    raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")


def _mse(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return ((x - y) ** 2).flatten(1).mean(dim=1)


def rmse(x: Any, y: Any, *, data_range: float, reduction: str = "mean") -> torch.Tensor | float:
    """Root mean squared error per image, **divided by** `data_range` (so it is the same number for [-1, 1] and
    [0, 1] versions of the same images; multiply by `data_range` for raw units)."""
    x, y = _pair(x, y)
    return _reduce(_mse(x, y).sqrt() / _check_range(data_range), reduction)


def psnr(x: Any, y: Any, *, data_range: float, reduction: str = "mean") -> torch.Tensor | float:
    """Peak signal-to-noise ratio per image: ``10 log10(data_range^2 / MSE)`` dB (``inf`` for identical images)."""
    x, y = _pair(x, y)
    peak = _check_range(data_range)
    mse = _mse(x, y)
    values = torch.where(mse > 0, 10.0 * torch.log10(peak ** 2 / mse.clamp(min=1e-300)),
                         torch.full_like(mse, float("inf")))
    return _reduce(values, reduction)


def gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Normalised 1-D Gaussian ``[size]`` (float64) centred on the middle tap."""
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2.0
    window = torch.exp(-(coords ** 2) / (2.0 * sigma ** 2))
    return window / window.sum()


def ssim(x: Any, y: Any, *, data_range: float, window_size: int = 11, sigma: float = 1.5, k1: float = 0.01,
         k2: float = 0.03, reduction: str = "mean") -> torch.Tensor | float:
    """Structural similarity (Wang, Bovik, Sheikh & Simoncelli, 2004) per image.

    Local statistics use an ``window_size x window_size`` Gaussian window (sigma 1.5), evaluated only where the
    window fits inside the image ("valid" filtering, as the authors' reference code), with population (biased)
    variances; ``C1 = (k1 L)^2``, ``C2 = (k2 L)^2`` with ``L = data_range``. The SSIM map is averaged over pixels, then
    over channels. No automatic downsampling (the reference MATLAB script shrinks images larger than 256 px first;
    skimage and torchmetrics don't either).
    """
    x, y = _pair(x, y)
    peak = _check_range(data_range)
    height, width = x.shape[-2:]
    if height < window_size or width < window_size:
        raise ValueError(f"SSIM with a {window_size}x{window_size} window needs images at least that large, got "
                         f"{height}x{width}")
    channels = x.shape[1]
    g = gaussian_window(window_size, sigma)
    kernel_h = g.view(1, 1, window_size, 1).repeat(channels, 1, 1, 1)
    kernel_w = g.view(1, 1, 1, window_size).repeat(channels, 1, 1, 1)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(t, kernel_h, groups=channels), kernel_w, groups=channels)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x ** 2
    var_y = blur(y * y) - mu_y ** 2
    cov_xy = blur(x * y) - mu_x * mu_y
    c1, c2 = (k1 * peak) ** 2, (k2 * peak) ** 2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov_xy + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2))
    return _reduce(ssim_map.flatten(2).mean(dim=2).mean(dim=1), reduction)
