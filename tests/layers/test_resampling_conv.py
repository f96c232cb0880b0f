"""3x3 convolutions fused with a 2x average pooling after them or a nearest 2x upsampling before them."""

import pytest
import torch
import torch.nn.functional as F

from labelsynth.layers.resampling_conv import conv3x3_avg_pool2, nearest_up2_conv3x3


def _pool_after(x, weight, bias):
    return F.avg_pool2d(F.conv2d(x, weight, bias, padding=1), 2)


def _upsample_before(x, weight, bias):
    return F.conv2d(F.interpolate(x, scale_factor=2, mode="nearest"), weight, bias, padding=1)


@pytest.mark.parametrize(("fused", "reference", "size"), [
    (conv3x3_avg_pool2, _pool_after, (6, 10)),
    (conv3x3_avg_pool2, _pool_after, (2, 2)),
    (nearest_up2_conv3x3, _upsample_before, (5, 7)),
    (nearest_up2_conv3x3, _upsample_before, (1, 1)),
])
@pytest.mark.parametrize("with_bias", [True, False])
def test_fused_equals_the_two_steps_in_value_and_gradients(fused, reference, size: tuple, with_bias: bool) -> None:
    """float64, so that any difference beyond summation order shows (borders included: zero padding on both)."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, *size, dtype=torch.float64, generator=generator)
    weight = torch.randn(4, 3, 3, 3, dtype=torch.float64, generator=generator)
    bias = torch.randn(4, dtype=torch.float64, generator=generator) if with_bias else None
    leaves = [t.requires_grad_() for t in (x, weight, bias) if t is not None]
    upstream = None
    results = []
    for function in (fused, reference):
        out = function(x, weight, bias)
        if upstream is None:
            upstream = torch.randn(out.shape, dtype=torch.float64, generator=generator)
        results.append((out, torch.autograd.grad(out, leaves, upstream)))
    (got, got_grads), (expected, expected_grads) = results
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, atol=1e-12, rtol=0)
    for g, e in zip(got_grads, expected_grads):
        torch.testing.assert_close(g, e, atol=1e-11, rtol=0)


def test_float32_and_channels_last_inputs() -> None:
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(1, 16, 8, 12, generator=generator).contiguous(memory_format=torch.channels_last)
    weight = torch.randn(8, 16, 3, 3, generator=generator) / 12
    bias = torch.randn(8, generator=generator)
    torch.testing.assert_close(conv3x3_avg_pool2(x, weight, bias), _pool_after(x, weight, bias), atol=1e-5, rtol=0)
    torch.testing.assert_close(nearest_up2_conv3x3(x, weight, bias), _upsample_before(x, weight, bias), atol=1e-5,
                               rtol=0)


def test_only_3x3_kernels() -> None:
    with pytest.raises(ValueError, match=r"3x3 convolution weight"):
        conv3x3_avg_pool2(torch.zeros(1, 2, 4, 4), torch.zeros(2, 2, 1, 1))
    with pytest.raises(ValueError, match=r"3x3 convolution weight"):
        nearest_up2_conv3x3(torch.zeros(1, 2, 4, 4), torch.zeros(2, 2, 5, 5))
