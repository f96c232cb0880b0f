"""SEAN normalization's fast path: pattern numbering and per-layer equality with the plain computation."""

import pytest
import torch
from sean_testing import block_labels

from labelsynth.layers.sean_normalization import SEANLayout, SEANNormalization, distinct_rows
from labelsynth.modeling_utils import one_hot_channels


@pytest.mark.parametrize("high", [3, 20, 5000, 2**40])
def test_distinct_rows_numbers_equal_rows_alike(high: int) -> None:
    """Against torch.unique; large values force ranking between packed runs of columns."""
    generator = torch.Generator().manual_seed(high % 1000)
    columns = torch.randint(0, 4, (10, 3000), generator=generator) * (high // 4) + torch.randint(
        0, 2, (10, 3000), generator=generator)
    ids, representatives = distinct_rows(columns)
    _, expected = torch.unique(columns.t(), dim=0, return_inverse=True)
    assert representatives.numel() == int(expected.max()) + 1
    torch.testing.assert_close(columns[:, representatives[ids]], columns, rtol=0, atol=0)  # same row, same id
    first = torch.full((representatives.numel(),), -1)
    first[ids] = expected  # one torch.unique id per id: a bijection
    assert torch.equal(first[ids], expected) and first.unique().numel() == first.numel()


def test_pixels_share_a_pattern_exactly_when_their_5x5_neighbourhoods_match() -> None:
    labels = block_labels(2, (24, 24), seed=1, block=6, num_classes=5)
    labels[1, 5, 7] = 4  # a one-pixel region
    patterns = SEANLayout(labels, 5).patterns((24, 24))
    padded = torch.nn.functional.pad(labels, (2, 2, 2, 2), value=5)  # class 5: outside the image
    neighbourhood = padded.unfold(1, 5, 1).unfold(2, 5, 1).reshape(2 * 576, 25)
    keys = torch.cat([torch.arange(2).repeat_interleave(576)[:, None], neighbourhood], dim=1)
    _, expected = torch.unique(keys, dim=0, return_inverse=True)
    ids = patterns.pixel_patterns
    same = ids[:, None] == ids[None, :]
    assert torch.equal(same, expected[:, None] == expected[None, :])
    # inside a region (5x5 constant, away from the border) the pattern is the per-(image, class) row b * J + class
    interior = (neighbourhood == labels.reshape(-1, 1)).all(1)
    assert interior.any() and (~interior).any()
    torch.testing.assert_close(ids[interior], (keys[interior, 0] * 5 + labels.reshape(-1)[interior]), rtol=0, atol=0)


@pytest.mark.parametrize("norm", ["syncbatch", "instance"])
@pytest.mark.parametrize("use_style", [True, False])
@pytest.mark.parametrize("with_noise", [True, False])
def test_fast_layer_equals_plain_layer(norm: str, use_style: bool, with_noise: bool) -> None:
    """One layer, batch 2 with different styles per image, random label maps (many distinct patterns)."""
    torch.manual_seed(0)
    num_classes, channels = 6, 8
    layer = SEANNormalization(channels, num_classes, use_style=use_style, style_dim=12, hidden_nc=5, norm=norm)
    with torch.no_grad():
        for param in layer.parameters():
            param.normal_(0, 0.5)
        if norm == "syncbatch":
            layer.param_free_norm.running_mean.normal_(0, 0.5)
            layer.param_free_norm.running_var.uniform_(0.5, 2)
    layer.eval()
    labels = torch.randint(0, num_classes, (2, 6, 10))
    labels[0, :3] = 2  # some regions as well as single pixels
    x = torch.randn(2, channels, 12, 20)
    styles = torch.randn(2, num_classes, 12) if use_style else None
    outputs = []
    with torch.no_grad():
        for seg in (one_hot_channels(labels, num_classes), SEANLayout(labels, num_classes)):
            noise = torch.randn(2, 1, 12, 20, generator=torch.Generator().manual_seed(3)) if with_noise else None
            outputs.append(layer(x, seg, styles=styles, noise=noise))
    assert outputs[0].std() > 0.5
    torch.testing.assert_close(outputs[1], outputs[0], atol=2e-5, rtol=0)
