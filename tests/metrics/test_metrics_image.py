"""PSNR, SSIM and RMSE against hand values and an independent numpy/scipy SSIM (Wang et al., 2004)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.signal import convolve2d

from labelsynth.metrics import psnr, rmse, ssim


def numpy_ssim(x: np.ndarray, y: np.ndarray, data_range: float) -> float:
    """Reference SSIM: 11x11 Gaussian (sigma 1.5) window as an explicit 2-D kernel, 'valid' filtering, population
    statistics, C1 = (0.01 L)^2, C2 = (0.03 L)^2; mean over pixels, then over channels. x, y: [C, H, W]."""
    coords = np.arange(11) - 5.0
    g = np.exp(-(coords ** 2) / (2 * 1.5 ** 2))
    window = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    per_channel = []
    for a, b in zip(x.astype(np.float64), y.astype(np.float64)):
        def filt(img):
            return convolve2d(img, np.rot90(window, 2), mode="valid")
        mu_a, mu_b = filt(a), filt(b)
        var_a = filt(a * a) - mu_a ** 2
        var_b = filt(b * b) - mu_b ** 2
        cov = filt(a * b) - mu_a * mu_b
        ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
        per_channel.append(ssim_map.mean())
    return float(np.mean(per_channel))


def test_psnr_and_rmse_by_hand_in_both_ranges():
    x01 = torch.zeros(2, 3, 8, 8)
    y01 = torch.full((2, 3, 8, 8), 0.1)
    assert psnr(x01, y01, data_range=1.0) == pytest.approx(20.0)           # MSE 0.01
    assert rmse(x01, y01, data_range=1.0) == pytest.approx(0.1)
    # The same images in [-1, 1]: data_range 2 gives the same numbers.
    assert psnr(x01 * 2 - 1, y01 * 2 - 1, data_range=2.0) == pytest.approx(20.0)
    assert rmse(x01 * 2 - 1, y01 * 2 - 1, data_range=2.0) == pytest.approx(0.1)
    per_image = psnr(x01, torch.stack([y01[0], y01[1] * 0.1]), data_range=1.0, reduction="none")
    assert per_image.tolist() == pytest.approx([20.0, 40.0])
    assert math.isinf(psnr(x01, x01, data_range=1.0))
    assert psnr(np.zeros((3, 4, 4)), np.full((3, 4, 4), 25.5), data_range=255) == pytest.approx(20.0)


def test_ssim_matches_numpy_reference():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(2, 3, 24, 30))
    y = np.clip(x + rng.normal(scale=0.3, size=x.shape), -1, 1)
    got = ssim(torch.from_numpy(x), torch.from_numpy(y), data_range=2.0, reduction="none")
    expected = [numpy_ssim(x[i], y[i], 2.0) for i in range(2)]
    assert got.tolist() == pytest.approx(expected, rel=1e-10, abs=1e-12)
    assert ssim(x, y, data_range=2.0) == pytest.approx(np.mean(expected), rel=1e-10)
    # float32 inputs are computed in float64 too
    assert ssim(torch.from_numpy(x).float(), torch.from_numpy(y).float(), data_range=2.0) == pytest.approx(
        np.mean(expected), rel=1e-5)


def test_ssim_hand_values():
    x = torch.rand(1, 3, 16, 16)
    assert ssim(x, x, data_range=1.0) == pytest.approx(1.0)
    # Constant images a, b: no variance, so SSIM = (2ab + C1) / (a^2 + b^2 + C1).
    a, b, c1 = 0.2, 0.6, 0.01 ** 2
    value = ssim(torch.full((1, 1, 12, 12), a, dtype=torch.float64), torch.full((1, 1, 12, 12), b, dtype=torch.float64),
                 data_range=1.0)
    assert value == pytest.approx((2 * a * b + c1) / (a * a + b * b + c1), rel=1e-9)


def test_errors():
    x = torch.zeros(1, 3, 16, 16)
    with pytest.raises(TypeError):
        psnr(x, x)  # data_range must be explicit
    with pytest.raises(ValueError, match="data_range"):
        ssim(x, x, data_range=0)
    with pytest.raises(ValueError, match="at least that large"):
        ssim(torch.zeros(1, 3, 8, 16), torch.zeros(1, 3, 8, 16), data_range=1.0)
    with pytest.raises(ValueError, match="differ in shape"):
        rmse(x, torch.zeros(1, 3, 16, 8), data_range=1.0)
    with pytest.raises(ValueError, match="reduction"):
        psnr(x, x + 0.1, data_range=1.0, reduction="sum")
