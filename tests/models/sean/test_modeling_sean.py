"""SEAN model: parameter counts, plain vs fast path, noise (seeded, off, explicit maps), style editing, errors,
save/load."""

import pytest
import torch
import torch.nn.functional as F
from helpers import force_winograd
from sean_testing import block_labels, random_sean, tiny_config

from labelsynth import SEANConfig, SEANDiscriminator, SEANModel, SEANStyles
from labelsynth.layers.sean_normalization import SEANNormalization
from labelsynth.models.sean.configuration_sean import STYLE_BLOCKS
from labelsynth.models.sean.modeling_sean import region_average


@pytest.fixture(scope="module")
def model() -> SEANModel:
    return random_sean(tiny_config())


@pytest.fixture(scope="module")
def inputs() -> tuple[torch.Tensor, torch.Tensor]:
    labels = block_labels(2, (64, 64), seed=3)
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(4)) * 2 - 1
    return labels, images


def test_parameter_counts_equal_the_original() -> None:
    config = SEANConfig.for_dataset("celebamask-hq")
    with torch.device("meta"):
        generator, discriminator = SEANModel(config), SEANDiscriminator(config)
    assert sum(p.numel() for p in generator.parameters()) == 266_907_367
    assert sum(p.numel() for p in generator.encoder.parameters()) == 1_568_576
    assert sum(p.numel() for p in discriminator.parameters()) == 1_364_098


def test_batched_class_transform_and_region_average_match_per_class_loops() -> None:
    torch.manual_seed(0)
    norm = SEANNormalization(6, semantic_nc=4, style_dim=5, hidden_nc=3)
    codes = torch.randn(2, 4, 5)
    expected = torch.stack([torch.stack([torch.relu(F.linear(codes[b, j], norm.style_weight[j], norm.style_bias[j]))
                                         for j in range(4)]) for b in range(2)])
    torch.testing.assert_close(norm.class_styles(codes), expected)

    features, labels = torch.randn(2, 5, 8, 8), torch.randint(0, 3, (2, 16, 16))  # class 3 absent
    small = labels[:, ::2, ::2]
    expected = torch.zeros(2, 4, 5)
    for b in range(2):
        for j in range(3):
            expected[b, j] = features[b][:, small[b] == j].mean(1)
    torch.testing.assert_close(region_average(features, labels, 4), expected)


@pytest.mark.parametrize("add_noise", [False, True])
@pytest.mark.parametrize("winograd", [False, True])
def test_fast_path_equals_plain_path(model: SEANModel, inputs, add_noise: bool, winograd: bool,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    if winograd:
        force_winograd(monkeypatch)
    labels, images = inputs
    outputs = {}
    with torch.no_grad():
        for fast in (False, True):
            model.fast_inference = fast
            out = model(labels, style_image=images, add_noise=add_noise, generator=torch.Generator().manual_seed(7))
            outputs[fast] = out.images
    model.fast_inference = True
    assert outputs[False].std() > 0.1  # an image, not a constant
    torch.testing.assert_close(outputs[True], outputs[False], atol=1e-5, rtol=0)


def test_fast_path_equals_plain_path_on_real_maps(model: SEANModel, celeba_pair) -> None:
    """Real CelebAMask-HQ maps (many region-boundary patterns), batch 2, each image styled by the other."""
    labels, photos = celeba_pair
    outputs = {}
    with torch.no_grad():
        for fast in (False, True):
            model.fast_inference = fast
            outputs[fast] = model(labels, style_image=photos.flip(0), style_label_map=labels.flip(0),
                                  generator=torch.Generator().manual_seed(5)).images
    model.fast_inference = True
    assert outputs[False].std() > 0.1
    torch.testing.assert_close(outputs[True], outputs[False], atol=1e-5, rtol=0)


def test_noise_is_seeded_or_off(model: SEANModel, inputs) -> None:
    labels, images = inputs
    with torch.no_grad():
        def run(seed, add_noise=True):
            return model(labels, style_image=images, add_noise=add_noise,
                         generator=torch.Generator().manual_seed(seed)).images
        torch.testing.assert_close(run(1), run(1), atol=0, rtol=0)
        assert (run(1) - run(2)).abs().max() > 1e-3
        torch.testing.assert_close(run(1, add_noise=False), run(2, add_noise=False), atol=0, rtol=0)


def test_styles_from_another_image_change_the_output(model: SEANModel, inputs) -> None:
    labels, images = inputs
    with torch.no_grad():
        own = model(labels, style_image=images, add_noise=False)
        other = model.encode_styles(images.flip(0), labels.flip(0))
        styled = model(labels, styles=other, add_noise=False).images
        default = model(labels, style_image=images, style_label_map=labels, add_noise=False).images
    torch.testing.assert_close(default, own.images)
    torch.testing.assert_close(own.styles.codes, model.encode_styles(images, labels).codes)
    assert (styled - own.images).abs().mean() > 1e-3


def test_style_editing_api(model: SEANModel, inputs, tmp_path) -> None:
    labels, images = inputs
    a = model.encode_styles(images[:1], labels[:1])
    b = model.encode_styles(images[1:], labels[1:])
    assert a.codes.shape == (1, 6, 19, 16) and a.block_names[0] == "head_0" and a.class_names[13] == "hair"

    swapped = a.swap("hair", source=b)
    torch.testing.assert_close(swapped.codes[:, :, 13], b.codes[:, :, 13])
    other = [j for j in range(19) if j != 13]
    torch.testing.assert_close(swapped.codes[:, :, other], a.codes[:, :, other])
    torch.testing.assert_close(a.swap(["l_eye", 5], b, blocks="up_2").codes[:, 5, [4, 5]], b.codes[:, 5, [4, 5]])

    crossed = a.crossover(b, blocks=["up_1", "up_2"])
    torch.testing.assert_close(crossed.codes[:, 4:], b.codes[:, 4:])
    torch.testing.assert_close(crossed.codes[:, :4], a.codes[:, :4])

    halfway = a.interpolate(b, 0.5)
    torch.testing.assert_close(halfway.codes, (a.codes + b.codes) / 2)

    a.save(tmp_path / "a.safetensors")
    loaded = SEANStyles.load(tmp_path / "a.safetensors")
    assert loaded.class_names == a.class_names and loaded.block_names == a.block_names
    torch.testing.assert_close(loaded.codes, a.codes)

    with pytest.raises(ValueError, match="unknown region 'beard'"):
        a.swap("beard", b)
    with pytest.raises(ValueError, match="unknown block"):
        a.crossover(b, blocks="up_9")


def test_interpolation_endpoints_reproduce_both_styles(model: SEANModel, celeba_pair) -> None:
    labels, photos = celeba_pair
    with torch.no_grad():
        a = model.encode_styles(photos[:1], labels[:1])
        b = model.encode_styles(photos[1:], labels[1:])
        image_a = model(labels[:1], styles=a, add_noise=False).images
        image_b = model(labels[:1], styles=b, add_noise=False).images
        start = model(labels[:1], styles=a.interpolate(b, 0.0), add_noise=False).images
        end = model(labels[:1], styles=a.interpolate(b, 1.0), add_noise=False).images
        middle = model(labels[:1], styles=a.interpolate(b, 0.5), add_noise=False).images
    torch.testing.assert_close(start, image_a, atol=1e-6, rtol=0)
    torch.testing.assert_close(end, image_b, atol=1e-6, rtol=0)
    assert (image_a - image_b).abs().mean() > 1e-3
    assert 0 < (middle - image_a).abs().mean() < (image_b - image_a).abs().mean()


def style_reach(region: torch.Tensor, blocks: tuple[str, ...]) -> torch.Tensor:
    """The pixels of a 64x64 tiny SEAN image (latent 2x2, "normal" upsampling) that a change of one region's style
    codes in `blocks` can reach, traced through the generator: a block with the changed codes adds the region's
    pixels in the label map resized (nearest) to its resolution, grown by 3 (the style branch's 3x3 conv, then the
    block's two 3x3 convs); every block grows what reaches it by 2 (its two 3x3 convs; eval-mode BatchNorm, the
    modulation and the 1x1 shortcut act per pixel); nearest upsampling doubles it; the output conv grows it by 1.

    Args:
        region (`BoolTensor[64, 64]`): the region's pixels.

    Returns:
        `BoolTensor[64, 64]`, True where the image may change.
    """
    def grow(mask: torch.Tensor, by: int) -> torch.Tensor:
        return F.max_pool2d(mask[None, None].float(), 2 * by + 1, stride=1, padding=by)[0, 0] > 0

    def resize(mask: torch.Tensor, size: int) -> torch.Tensor:
        return F.interpolate(mask[None, None].float(), size=(size, size), mode="nearest")[0, 0] > 0

    reach = torch.zeros(2, 2, dtype=torch.bool)
    layout = (("head_0", 2), ("G_middle_0", 4), ("G_middle_1", 4), ("up_0", 8), ("up_1", 16), ("up_2", 32),
              ("up_3", 64))
    for name, size in layout:
        reach = grow(resize(reach, size), 2)
        if name in blocks:
            reach |= grow(resize(region, size), 3)
    return grow(reach, 1)


@pytest.mark.parametrize(("region", "blocks", "covered"), [
    ("l_lip", STYLE_BLOCKS, 0.5), ("cloth", STYLE_BLOCKS, 0.9), ("nose", ("up_1", "up_2"), 0.3),
    ("hair", STYLE_BLOCKS, 0.0),
])
def test_style_swap_changes_only_the_edited_region(model: SEANModel, celeba_pair, region: str,
                                                   blocks: tuple[str, ...], covered: float) -> None:
    """On real CelebAMask-HQ maps: swapping one region's style changes that region, and leaves every pixel the
    swapped codes cannot reach through the generator (`style_reach`) bit-identical; for compact regions (lips,
    clothes) that is most of the image, for a region swapped only in the finer blocks (the nose) a good part. A large
    region like the hair is within reach of every pixel of the 64x64 image (the 2x2 and 4x4 blocks see it next to
    everything else): how much its style moves the pixels away from it depends on the weights, not on the
    architecture, so only its own pixels are checked."""
    labels, photos = celeba_pair
    with torch.no_grad():
        a = model.encode_styles(photos[:1], labels[:1])
        b = model.encode_styles(photos[1:], labels[1:])
        before = model(labels[:1], styles=a, add_noise=False).images
        after = model(labels[:1], styles=a.swap(region, b, blocks=list(blocks)), add_noise=False).images
    change = (after - before).abs().amax(1)[0]
    inside = labels[0] == a.class_names.index(region)
    reach = style_reach(inside, blocks)
    assert change[inside].mean() > 1e-3
    assert (~reach).float().mean() >= covered, float((~reach).float().mean())
    assert not change[~reach].any(), float(change[~reach].max())


def test_bad_inputs_raise_clear_errors(model: SEANModel, inputs) -> None:
    labels, images = inputs
    styles = model.encode_styles(images, labels)
    with pytest.raises(ValueError, match="exactly one style source"):
        model(labels)
    with pytest.raises(ValueError, match="exactly one style source"):
        model(labels, style_image=images, styles=styles)
    with pytest.raises(ValueError, match="divisible by 32"):
        model(labels[:, :48], style_image=images)
    with pytest.raises(ValueError, match=r"\[B, 3, H, W\]"):
        model(labels, style_image=images[:, :1])
    with pytest.raises(ValueError, match="divisible by 4"):
        model.encode_styles(images[..., :62], labels)
    with pytest.raises(ValueError, match="batch size 2 but label_map has 3"):
        model(torch.cat([labels, labels[:1]]), styles=styles)
    with pytest.raises(ValueError, match="outside the model's label range"):
        model(labels + 19, style_image=images)
    with pytest.raises(ValueError, match="instance-edge"):
        tiny_config(use_instance_edges=True)
    with pytest.raises(ValueError, match="'normal' or 'more'"):
        tiny_config(num_upsampling_layers="most")


def test_save_and_load_round_trip(model: SEANModel, inputs, tmp_path) -> None:
    labels, images = inputs
    model.save_pretrained(tmp_path)
    loaded = SEANModel.from_pretrained(tmp_path)
    assert not loaded.training
    with torch.no_grad():
        expected = model(labels, style_image=images, add_noise=False).images
        torch.testing.assert_close(loaded(labels, style_image=images, add_noise=False).images, expected)
    card = (tmp_path / "README.md").read_text()
    assert "SEAN" in card and "cc-by-nc-sa-4.0" in card


# ------------------------------------------------------------------------------------------------ explicit noise
def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("fast", [False, True])
def test_generator_path_equals_the_maps_sample_noise_draws(model: SEANModel, inputs, fast: bool) -> None:
    labels, images = inputs
    model.fast_inference = fast
    try:
        with torch.no_grad():
            drawn = model(labels, style_image=images, generator=seeded(7)).images
            noise = model.sample_noise(2, (64, 64), generator=seeded(7))
            explicit = model(labels, style_image=images, noise=noise).images
            # explicit maps win over a generator, which is then unused
            with_other_generator = model(labels, style_image=images, noise=noise, generator=seeded(8)).images
    finally:
        model.fast_inference = True
    assert torch.equal(explicit, drawn)
    assert torch.equal(with_other_generator, drawn)


@pytest.mark.parametrize("upsampling", ["normal", "more"])
def test_noise_maps_follow_the_layers_in_run_order(upsampling: str) -> None:
    """`noise_shapes` lists every SEAN normalization in the order forward runs them, at their activation size: the
    order in which the generator path draws (and the original draws) the maps."""
    model = random_sean(tiny_config(num_upsampling_layers=upsampling))
    names = {module: name for name, module in model.generator.named_modules() if isinstance(module, SEANNormalization)}
    calls = []
    hooks = [module.register_forward_pre_hook(lambda m, args: calls.append((names[m], tuple(args[0].shape))))
             for module in names]
    size = (64, 128)  # not square: catches swapped heights and widths
    labels = block_labels(1, size, seed=1)
    with torch.no_grad():
        model(labels, style_image=torch.zeros(1, 3, *size))
    for hook in hooks:
        hook.remove()
    shapes = model.noise_shapes(1, size)
    assert len(calls) == len(names) == 18
    assert [(name, shape[-2:]) for name, shape in calls] == [(name, shape[-2:]) for name, shape in shapes.items()]
    assert all(shape[:2] == (1, 1) for shape in shapes.values())


def test_sample_noise_draws_the_original_layout_in_layer_order(model: SEANModel) -> None:
    """The original draws `randn(B, W, H, 1)` per layer and transposes it to [B, 1, H, W] (times noise_var)."""
    size = (64, 96)
    noise = model.sample_noise(2, size, generator=seeded(3))
    reference = seeded(3)
    for name, (b, _, h, w) in model.noise_shapes(2, size).items():
        expected = torch.randn(b, w, h, 1, generator=reference).transpose(1, 3)
        assert noise[name].dtype == torch.float32 and torch.equal(noise[name], expected), name
    assert list(noise)[:3] == ["head_0.norm_0", "head_0.norm_1", "G_middle_0.norm_0"]
    assert model.noise_shapes(1, (256, 256))["up_3.norm_s"] == (1, 1, 256, 256)


def test_explicit_maps_drive_the_output_in_both_paths(model: SEANModel, inputs) -> None:
    labels, images = inputs
    noise_a = model.sample_noise(2, (64, 64), generator=seeded(1))
    noise_b = model.sample_noise(2, (64, 64), generator=seeded(2))
    one_layer = {**noise_a, "up_2.norm_1": noise_b["up_2.norm_1"]}
    zeros = {name: torch.zeros_like(value) for name, value in noise_a.items()}
    outputs = {}
    with torch.no_grad():
        for fast in (False, True):
            model.fast_inference = fast
            outputs[fast] = [model(labels, style_image=images, noise=noise).images
                             for noise in (noise_a, noise_b, one_layer, zeros)]
            outputs[fast].append(model(labels, style_image=images, add_noise=False).images)
    model.fast_inference = True
    a, b, edited, zero, off = outputs[False]
    assert (a - b).abs().max() > 1e-2
    assert (a - edited).abs().max() > 1e-3  # one layer's map alone changes the image
    torch.testing.assert_close(zero, off, atol=1e-6, rtol=0)  # zero maps = no noise injection
    for fast_output, plain_output in zip(outputs[True], outputs[False]):
        torch.testing.assert_close(fast_output, plain_output, atol=1e-5, rtol=0)


def test_batch_semantics(model: SEANModel, inputs) -> None:
    """Row b of every map is image b's noise; a batch-1 set is shared by every image."""
    labels, images = inputs
    first = model.sample_noise(1, generator=seeded(5))
    second = model.sample_noise(1, generator=seeded(6))
    with torch.no_grad():
        batched = model(labels, style_image=images,
                        noise={name: torch.cat([first[name], second[name]]) for name in first}).images
        alone = [model(labels[i:i + 1], style_image=images[i:i + 1], noise=noise).images
                 for i, noise in enumerate((first, second))]
        shared = model(labels, style_image=images, noise=first).images
        expanded = model(labels, style_image=images,
                         noise={name: value.expand(2, -1, -1, -1) for name, value in first.items()}).images
    torch.testing.assert_close(batched, torch.cat(alone), atol=1e-5, rtol=0)  # eval mode: images are independent
    assert torch.equal(shared, expanded)
    assert (shared[1] - batched[1]).abs().max() > 1e-3


def test_bad_noise_raises_clear_errors(model: SEANModel, inputs) -> None:
    labels, images = inputs
    noise = model.sample_noise(2)

    def run(value, **kwargs):
        with torch.no_grad():
            return model(labels, style_image=images, noise=value, **kwargs)

    missing = {name: value for name, value in noise.items() if name != "up_1.norm_s"}
    with pytest.raises(ValueError, match=r"one map for each of .*missing \['up_1.norm_s'\]"):
        run(missing)
    with pytest.raises(ValueError, match=r"unexpected \['up_9.norm_0'\]"):
        run({**noise, "up_9.norm_0": noise["up_0.norm_0"]})
    with pytest.raises(ValueError, match=r"noise\['up_0.norm_0'\] has shape \(2, 1, 4, 4\); .* needs \[2, 1, 8, 8\]"):
        run({**noise, "up_0.norm_0": noise["G_middle_1.norm_0"]})
    with pytest.raises(ValueError, match=r"\[2, 1, 32, 32\] \(or \[1, 1, 32, 32\], shared by every image\)"):
        run({**noise, "up_2.norm_1": torch.cat([noise["up_2.norm_1"]] * 2)})  # batch 4 for 2 label maps
    with pytest.raises(ValueError, match=r"\[2, 1, 64, 64\]"):
        run({**noise, "up_3.norm_0": noise["up_3.norm_0"][:, 0]})  # [B, H, W] without the channel axis
    with pytest.raises(ValueError, match=r"noise\['head_0.norm_0'\] must be a floating-point tensor \[2, 1, 2, 2\]"):
        run({**noise, "head_0.norm_0": noise["head_0.norm_0"].long()})
    with pytest.raises(TypeError, match="noise must be a dict"):
        run(list(noise.values()))
    with pytest.raises(ValueError, match="add_noise=False"):
        run(noise, add_noise=False)
    with pytest.raises(ValueError, match="divisible by 32"):
        model.sample_noise(1, (48, 64))
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        model.sample_noise(0)
