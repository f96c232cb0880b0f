"""`SEANModel.forward(region_style_image=..., region_style_classes=...)`: per-region styles from a second image (the
input the Gradio demo's region picking uses) equal the `SEANStyles.swap` edit they stand for."""

import pytest
import torch
from sean_testing import block_labels, random_sean, tiny_config


@pytest.fixture(scope="module")
def model():
    return random_sean(tiny_config())


def test_region_style_image_equals_swapping_the_codes(model) -> None:
    labels, other_labels = block_labels(1, (64, 64), 0), block_labels(1, (64, 64), 1)
    generator = torch.Generator().manual_seed(0)
    style, other = (torch.rand(1, 3, 64, 64, generator=generator) * 2 - 1 for _ in range(2))
    with torch.no_grad():
        swapped = model.encode_styles(style, labels).swap([3, "hair"], model.encode_styles(other, other_labels))
        expected = model(labels, styles=swapped, add_noise=False)
        out = model(labels, style_image=style, add_noise=False, region_style_image=other,
                    region_style_label_map=other_labels, region_style_classes=[3, "hair"])
        plain = model(labels, style_image=style, add_noise=False).images
    torch.testing.assert_close(out.images, expected.images, rtol=0, atol=0)
    torch.testing.assert_close(out.styles.codes, swapped.codes, rtol=0, atol=0)
    assert (out.images - plain).abs().max() > 1e-3


def test_region_style_inputs_go_together(model) -> None:
    labels = block_labels(1, (64, 64), 0)
    style = torch.zeros(1, 3, 64, 64)
    for partial in ({"region_style_image": style}, {"region_style_classes": [3]},
                    {"region_style_label_map": labels, "region_style_classes": [3]}):
        with pytest.raises(ValueError, match="region_style_image and region_style_classes go together"):
            model(labels, style_image=style, **partial)
