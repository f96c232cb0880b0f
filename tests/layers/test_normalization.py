"""The fast SPADE path must equal the plain (paper) computation."""

import pytest
import torch
import torch.nn.functional as F

from labelsynth.layers.normalization import SPADE, SemanticLayout, param_free_norm
from labelsynth.modeling_utils import instance_edges, one_hot_channels


def _random_label_map(batch: int, height: int, width: int, num_labels: int, seed: int = 0) -> torch.Tensor:
    """Blocky label map with irregular regions, like a segmentation."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randint(0, num_labels, (batch, 1, height // 8 + 1, width // 8 + 1), generator=g).float()
    labels = torch.nn.functional.interpolate(coarse, size=(height, width), mode="nearest")[:, 0].long()
    noise = torch.randint(0, num_labels, (batch, height, width), generator=g)
    speckle = torch.rand(batch, height, width, generator=g) < 0.02
    return torch.where(speckle, noise, labels)


@pytest.mark.parametrize("with_edges", [False, True])
@pytest.mark.parametrize("kernel_size", [3, 5])
def test_fast_modulation_equals_plain(with_edges: bool, kernel_size: int) -> None:
    torch.manual_seed(0)
    num_labels = 12
    labels = _random_label_map(2, 48, 64, num_labels)
    edges = instance_edges(labels * 3 + (torch.arange(64) > 30).long()) if with_edges else None
    dense = one_hot_channels(labels, num_labels)
    if edges is not None:
        dense = torch.cat([dense, edges], dim=1)
    spade = SPADE(16, dense.shape[1], kernel_size=kernel_size, hidden_nc=8, norm="batch").eval()
    for p in spade.parameters():
        p.data.normal_(0, 0.3)
    layout = SemanticLayout(labels, edges, num_labels, kernel_size)
    for size in [(48, 64), (24, 32), (6, 8), (96, 128)]:
        with torch.no_grad():
            gamma, beta = spade.modulation(dense, size)
            spade.param_free_norm.train()  # not folded: scale/shift are exactly 1 + gamma and beta
            fast_gamma_plus_one, fast_beta, folded = spade.fast_modulation(layout, size)
            spade.param_free_norm.eval()
        assert gamma.abs().mean() > 0.1 and not folded  # a non-trivial modulation
        torch.testing.assert_close(fast_gamma_plus_one - 1, gamma, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(fast_beta, beta, atol=1e-5, rtol=1e-5)
        assert torch.equal(layout.dense(size), torch.nn.functional.interpolate(dense, size=size, mode="nearest"))
    x = torch.randn(2, 16, 24, 32)
    spade.param_free_norm.running_mean.normal_()
    spade.param_free_norm.running_var.uniform_(0.5, 2)
    with torch.no_grad():  # eval BatchNorm folded into the modulation
        assert spade.fast_modulation(layout, (24, 32))[2]
        torch.testing.assert_close(spade(x, layout), spade(x, dense), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("with_edges,padding_mode", [(False, "zeros"), (True, "zeros"), (False, "reflect")])
def test_fast_path_with_gradients_equals_plain(with_edges: bool, padding_mode: str) -> None:
    """The fast path with gradients (training): same output and gradients (weights and activation) as the plain path."""
    torch.manual_seed(0)
    num_labels = 12
    labels = _random_label_map(2, 32, 48, num_labels, seed=1)
    edges = instance_edges(labels * 3 + (torch.arange(48) > 20).long()) if with_edges else None
    dense = one_hot_channels(labels, num_labels)
    if edges is not None:
        dense = torch.cat([dense, edges], dim=1)
    spade = SPADE(16, dense.shape[1], hidden_nc=8, norm="batch", padding_mode=padding_mode)
    for p in spade.parameters():
        p.data.normal_(0, 0.3)
    layout = SemanticLayout(labels, edges, num_labels, padding_mode=padding_mode)
    x = torch.randn(2, 16, 16, 24)
    target = torch.randn(2, 16, 16, 24)

    def output_and_gradients(segmap):
        spade.zero_grad()
        inp = x.clone().requires_grad_()
        out = spade(inp, segmap)
        (out * target).sum().backward()
        return out.detach(), inp.grad, [p.grad.clone() for p in spade.parameters()]

    plain_out, plain_dx, plain_grads = output_and_gradients(dense)
    out, dx, grads = output_and_gradients(layout)
    torch.testing.assert_close(out, plain_out, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(dx, plain_dx, atol=1e-5, rtol=1e-5)
    assert all(g.abs().max() > 0 for g in plain_grads)  # every weight takes part, the shared conv's included
    for grad, plain_grad in zip(grads, plain_grads):
        torch.testing.assert_close(grad, plain_grad, atol=1e-4, rtol=1e-5)


def test_fast_tables_follow_weight_updates() -> None:
    """Tables are cached; an in-place weight change (optimizer step, load_state_dict) must invalidate them."""
    labels = _random_label_map(1, 16, 16, 5)
    dense = one_hot_channels(labels, 5)
    spade = SPADE(4, 5, hidden_nc=8, norm="instance")
    layout = SemanticLayout(labels, None, 5)
    with torch.no_grad():
        spade.fast_modulation(layout, (16, 16))
        spade.mlp_beta.bias.add_(1.0)
        _, beta, _ = spade.fast_modulation(layout, (16, 16))
        torch.testing.assert_close(beta, spade.modulation(dense, (16, 16))[1], atol=1e-5, rtol=1e-5)


def test_uniform_map_has_no_boundary_pixels_inside() -> None:
    layout = SemanticLayout(torch.full((1, 32, 32), 3), None, 5)
    level = layout.level((32, 32))
    # Only the 2-pixel frame (whose receptive field crosses the zero padding) needs the exact computation.
    assert level.boundary.numel() == 32 * 32 - 28 * 28


def test_param_free_norm_kinds() -> None:
    assert isinstance(param_free_norm("syncbatch", 4), torch.nn.BatchNorm2d)
    assert isinstance(param_free_norm("instance", 4), torch.nn.InstanceNorm2d)
    with pytest.raises(ValueError, match="unknown parameter-free norm 'group'"):
        param_free_norm("group", 4)


def test_constant_windows_and_dilation_equal_pooling() -> None:
    """The layout's boundary test (is the (2r+1)^2 window inside the image and of one key?) and the dilation of the
    boundary, built from neighbour comparisons, equal the max/min pooling they replace on random small maps (sizes
    below, at and above the window, radius 0 to 3)."""
    from labelsynth.layers.normalization import _constant_windows, _dilate

    generator = torch.Generator().manual_seed(0)
    for _ in range(200):
        b, h, w = (int(v) for v in torch.randint(1, 14, (3,), generator=generator))
        b = 1 + b % 2
        keys = torch.randint(0, 1 + h % 3, (b, h, w), generator=generator)
        mask = torch.rand(b, h, w, generator=generator) < 0.1
        for radius in range(4):
            span, as_float = 2 * radius + 1, keys[:, None].float()
            expected = (F.max_pool2d(as_float, span, stride=1, padding=radius)
                        == -F.max_pool2d(-as_float, span, stride=1, padding=radius))[:, 0]
            if radius:
                for edge in (slice(None, radius), slice(-radius, None)):
                    expected[:, edge] = False
                    expected[:, :, edge] = False
            assert torch.equal(_constant_windows(keys, radius), expected), (b, h, w, radius)
            dilated = F.max_pool2d(mask[:, None].float(), span, stride=1, padding=radius)[:, 0] > 0
            assert torch.equal(_dilate(mask, radius), dilated), (b, h, w, radius)
