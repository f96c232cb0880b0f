"""Winograd F(4x4, 3x3) convolutions and the inference conv that routes to them."""

import pytest
import torch
import torch.nn.functional as F

from labelsynth.layers import winograd
from labelsynth.layers.blocks import inference_conv
from labelsynth.layers.winograd import (
    PreparedConv2d,
    winograd_conv3x3,
    winograd_conv3x3_trainable,
    winograd_pays,
    winograd_weight,
)


@pytest.mark.parametrize("shape", [(2, 5, 7, 9, 13), (1, 3, 4, 4, 4), (1, 8, 8, 1, 1), (3, 16, 2, 17, 8)])
@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("padding", [0, 1])
def test_winograd_equals_the_direct_convolution_exactly_in_float64(shape: tuple, with_bias: bool,
                                                                   padding: int) -> None:
    """Any size (partial tiles at the edges are zero-filled and cropped), batch, channel counts, padding; float64
    shows the algebra is exact (float32 differences are rounding only)."""
    b, c, o, h, w = shape
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(b, c, h + 2 - 2 * padding, w + 2 - 2 * padding, dtype=torch.float64, generator=generator)
    weight = torch.randn(o, c, 3, 3, dtype=torch.float64, generator=generator)
    bias = torch.randn(o, dtype=torch.float64, generator=generator) if with_bias else None
    got = winograd_conv3x3(x, winograd_weight(weight), bias, padding=padding)
    expected = F.conv2d(x, weight, bias, padding=padding)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, atol=1e-11, rtol=0)


def test_winograd_float32_error_is_rounding_sized() -> None:
    """On unit-variance outputs of a 4608-term sum (512 -> 64 channels) the float32 error stays ~1e-4, a few times that
    of direct summation; both measured against float64."""
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(1, 512, 34, 34, generator=generator).contiguous(memory_format=torch.channels_last)
    weight = torch.randn(64, 512, 3, 3, generator=generator) / (512 * 9) ** 0.5
    exact = F.conv2d(x.double(), weight.double())
    winograd_error = (winograd_conv3x3(x, winograd_weight(weight)).double() - exact).abs().max().item()
    direct_error = (F.conv2d(x, weight).double() - exact).abs().max().item()
    assert winograd_error < 3e-4 and winograd_error < 30 * direct_error, (winograd_error, direct_error)
    assert winograd_conv3x3(x, winograd_weight(weight)).is_contiguous(memory_format=torch.channels_last)


def test_winograd_rejects_mismatched_weights() -> None:
    with pytest.raises(ValueError, match="3, 3"):
        winograd_weight(torch.zeros(4, 4, 5, 5))
    with pytest.raises(ValueError, match="expects 4"):
        winograd_conv3x3(torch.zeros(1, 3, 6, 6), winograd_weight(torch.zeros(2, 4, 3, 3)))


def test_winograd_pays_only_for_wide_layers() -> None:
    assert winograd_pays(512, 512, 64, 64) and winograd_pays(128, 1024, 64, 64)
    assert not winograd_pays(128, 128, 256, 256)  # thin: the transforms cost more than they save
    assert winograd_pays(1024, 1024, 4, 4)  # few pixels, but a large weight
    assert not winograd_pays(512, 512, 4, 8) and not winograd_pays(256, 256, 8, 8)  # too little work
    assert not winograd_pays(16, 16, 1024, 1024)


def _conv_with_spy(monkeypatch: pytest.MonkeyPatch, pays: bool) -> list:
    calls = []
    monkeypatch.setattr(winograd, "winograd_pays", lambda *args: pays)
    original = winograd.winograd_conv3x3

    def spy(*args, **kwargs):
        calls.append(args[0].shape)
        return original(*args, **kwargs)

    monkeypatch.setattr(winograd, "winograd_conv3x3", spy)
    return calls


@pytest.mark.parametrize("padding_mode", ["zeros", "reflect"])
def test_inference_conv_routes_wide_3x3_layers_through_winograd(monkeypatch: pytest.MonkeyPatch,
                                                                 padding_mode: str) -> None:
    calls = _conv_with_spy(monkeypatch, pays=True)
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(6, 5, 3, padding=1, padding_mode=padding_mode)
    x = torch.randn(2, 6, 10, 7)
    with torch.no_grad():
        got = inference_conv(conv, x)
        expected = conv(x)
    assert len(calls) == 1
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_direct_convolution_where_winograd_does_not_apply(monkeypatch: pytest.MonkeyPatch) -> None:
    """Strided, 1x1 and padding-2 convs, float64, and anything with gradients stay direct, as do layers where it does
    not pay."""
    calls = _conv_with_spy(monkeypatch, pays=True)
    x = torch.randn(1, 4, 8, 8)
    weight = torch.randn(4, 4, 3, 3)
    with torch.no_grad():
        PreparedConv2d(weight, stride=2, padding=1)(x)
        PreparedConv2d(torch.randn(4, 4, 1, 1))(x)
        PreparedConv2d(weight, padding=2)(x)
        PreparedConv2d(weight.double(), padding=1)(x.double())
    PreparedConv2d(weight, padding=1)(x)  # gradients enabled
    assert not calls
    monkeypatch.setattr(winograd, "winograd_pays", lambda *args: False)
    with torch.no_grad():
        torch.testing.assert_close(PreparedConv2d(weight, padding=1)(x), F.conv2d(x, weight, padding=1))
    assert not calls


@pytest.mark.parametrize("padding", [0, 1])
@pytest.mark.parametrize("weight_grad", [True, False])
def test_trainable_winograd_equals_the_direct_convolution_in_value_and_gradients(weight_grad: bool,
                                                                                 padding: int) -> None:
    """Winograd forward and Winograd input gradient (a 3x3 convolution with the kernel transposed and flipped);
    weight and bias gradients from the direct backward when the weight trains. float64: exact up to rounding."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, 5, 9, 13, dtype=torch.float64, generator=generator, requires_grad=True)
    weight = torch.randn(4, 5, 3, 3, dtype=torch.float64, generator=generator, requires_grad=weight_grad)
    bias = torch.randn(4, dtype=torch.float64, generator=generator, requires_grad=weight_grad)
    transformed = (winograd_weight(weight), winograd_weight(weight.transpose(0, 1).flip(-2, -1)))
    leaves = [x, weight, bias] if weight_grad else [x]
    got = winograd_conv3x3_trainable(x, weight, bias, transformed, padding)
    expected = F.conv2d(x, weight, bias, padding=padding)
    torch.testing.assert_close(got, expected, atol=1e-11, rtol=0)
    upstream = torch.randn(expected.shape, dtype=torch.float64, generator=generator)
    for g, e in zip(torch.autograd.grad(got, leaves, upstream), torch.autograd.grad(expected, leaves, upstream)):
        torch.testing.assert_close(g, e, atol=1e-11, rtol=0)


@pytest.mark.parametrize("padding_mode", ["zeros", "reflect"])
def test_module_convs_take_winograd_where_it_pays_in_training_too(padding_mode: str, monkeypatch) -> None:
    """`conv3x3_by_winograd_where_it_pays` on an nn.Conv2d (float32): Winograd where `winograd_pays`, the same
    output and gradients as the module itself up to rounding, the transformed weights rebuilt after a weight update;
    the module itself where Winograd does not pay or is switched off."""
    calls = []
    trainable = winograd.winograd_conv3x3_trainable
    monkeypatch.setattr(winograd, "winograd_conv3x3_trainable", lambda *a: calls.append(1) or trainable(*a))
    monkeypatch.setattr(winograd, "winograd_pays", lambda *sizes: True)
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(16, 8, 3, padding=1, padding_mode=padding_mode)
    x = torch.randn(2, 16, 10, 7, requires_grad=True)
    for step in range(2):
        got = winograd.conv3x3_by_winograd_where_it_pays(conv, x)
        got_grads = torch.autograd.grad(got.square().sum(), [x, conv.weight, conv.bias])
        expected = conv(x)
        expected_grads = torch.autograd.grad(expected.square().sum(), [x, conv.weight, conv.bias])
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
        for g, e in zip(got_grads, expected_grads):
            torch.testing.assert_close(g, e, atol=1e-4, rtol=1e-4)
        with torch.no_grad():  # an optimizer step: the cached transforms must follow it
            conv.weight.mul_(-0.5)
    assert len(calls) == 2
    monkeypatch.setattr(winograd, "_ENABLED", False)
    winograd.conv3x3_by_winograd_where_it_pays(conv, x)
    monkeypatch.setattr(winograd, "_ENABLED", True)
    monkeypatch.setattr(winograd, "winograd_pays", lambda *sizes: False)
    winograd.conv3x3_by_winograd_where_it_pays(conv, x)
    assert len(calls) == 2
