"""Layers added for CoCosNet: positional normalization, SAGAN self-attention, one-hot convolutions as lookups, and
SPADE / its fast path with reflection padding."""

import pytest
import torch
import torch.nn.functional as F

from labelsynth.layers.attention import SelfAttention2d
from labelsynth.layers.normalization import SPADE, SemanticLayout, param_free_norm
from labelsynth.layers.onehot import onehot_conv2d
from labelsynth.layers.pono import PositionalNorm2d, positional_normalize
from labelsynth.modeling_utils import one_hot_channels


def test_pono_standardises_each_pixel_over_channels() -> None:
    x = torch.randn(2, 16, 5, 7) * 3 + 2
    y = positional_normalize(x)
    assert torch.allclose(y.mean(1), torch.zeros(2, 5, 7), atol=1e-5)
    assert torch.allclose(y.var(1), torch.ones(2, 5, 7), atol=1e-3)  # unbiased variance, as CoCosNet
    assert isinstance(param_free_norm("positional", 16), PositionalNorm2d)
    assert not list(PositionalNorm2d().state_dict())  # no statistics: same in train and eval mode


def test_self_attention_is_identity_at_init_and_attends_after() -> None:
    torch.manual_seed(0)
    attention = SelfAttention2d(16, spectral_norm=True).eval()
    x = torch.randn(2, 16, 8, 6)
    assert torch.equal(attention(x), x)  # gamma starts at 0
    with torch.no_grad():
        attention.gamma.fill_(1.0)
    y = attention(x)
    assert y.shape == x.shape and not torch.allclose(y, x)
    with pytest.raises(ValueError, match="divisible by 8"):
        SelfAttention2d(12)
    with pytest.raises(ValueError, match="even"):
        attention(torch.randn(1, 16, 7, 6))


@pytest.mark.parametrize("padding_mode", ["zeros", "reflect"])
@pytest.mark.parametrize("dense_channels", [0, 3])
def test_onehot_conv_equals_the_dense_convolution(padding_mode: str, dense_channels: int) -> None:
    torch.manual_seed(0)
    labels = torch.randint(0, 11, (2, 9, 12))
    dense = torch.randn(2, dense_channels, 9, 12) if dense_channels else None
    conv = torch.nn.Conv2d(dense_channels + 11, 7, 3, padding=1, padding_mode=padding_mode)
    one_hot = one_hot_channels(labels, 11)
    expected = conv(torch.cat([dense, one_hot], 1) if dense is not None else one_hot)
    got = onehot_conv2d(labels, conv.weight, conv.bias, dense=dense, padding_mode=padding_mode)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_spade_reflect_fast_path_matches_the_plain_path() -> None:
    torch.manual_seed(0)
    spade = SPADE(8, 5, hidden_nc=6, norm="positional", padding_mode="reflect").eval()
    for p in spade.parameters():
        torch.nn.init.normal_(p, std=0.3)
    labels = F.interpolate(torch.randint(0, 5, (2, 1, 4, 4)).float(), size=(16, 16)).long()[:, 0]
    x = torch.randn(2, 8, 8, 8)
    plain = spade(x, one_hot_channels(labels, 5))
    with torch.no_grad():
        fast = spade(x, SemanticLayout(labels, None, 5, padding_mode="reflect"))
    torch.testing.assert_close(fast, plain, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="pads with 'zeros'"), torch.no_grad():
        spade(x, SemanticLayout(labels, None, 5))
