"""OASISModel / OASISDiscriminator: parameter counts of the originals, label convention, 3D noise (given, seeded,
spatial, re-sampled regions), fast path, I/O, pipeline and errors."""

import copy

import numpy as np
import pytest
import torch
from helpers import assert_fast_training_matches_dense, force_winograd, randomize_weights, save_model_folder

from labelsynth import OASISConfig, OASISDiscriminator, OASISModel, pipeline
from labelsynth.layers import noise_normalization
from labelsynth.models.oasis.modeling_oasis import oasis_label_channels

# Parameter counts of the official boschresearch/OASIS networks (generator, discriminator) built with their options.
ORIGINAL_COUNTS = [
    ("ade20k", 74_314_691, 22_258_904),
    ("cityscapes", 71_107_523, 22_251_364),
    ("coco-stuff", 75_199_427, 22_260_984),
]


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize(("preset", "generator", "discriminator"), ORIGINAL_COUNTS)
def test_parameter_counts_equal_the_originals(preset: str, generator: int, discriminator: int) -> None:
    config = OASISConfig.for_dataset(preset)
    with torch.device("meta"):
        model = OASISModel(config)
        netd = OASISDiscriminator(config)
    assert _count(model) == generator
    assert _count(netd) == discriminator


def tiny_config(**overrides) -> OASISConfig:
    settings = {"ngf": 8, "z_dim": 16, "spade_hidden_nc": 16, "ndf": 4, "image_size": (64, 64)}
    return OASISConfig.for_dataset(overrides.pop("preset", "ade20k"), **{**settings, **overrides})


def blocky_labels(batch: int, size: tuple[int, int], high: int, seed: int = 0, block: int = 8) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randint(0, high, (batch, 1, size[0] // block, size[1] // block), generator=g).float()
    return torch.nn.functional.interpolate(coarse, size=size, mode="nearest")[:, 0].long()


def trained_like(model: OASISModel, labels: torch.Tensor) -> OASISModel:
    """Variance-preserving random weights and BatchNorm statistics moved by train passes, as training leaves them."""
    randomize_weights(model, seed=1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None  # cumulative average: the statistics of the passes below
    model.train()
    with torch.no_grad():
        model(labels, generator=torch.Generator().manual_seed(5))
    return model.eval()


def run(model: OASISModel, labels: torch.Tensor, fast: bool, **kwargs) -> torch.Tensor:
    model.fast_inference = fast
    with torch.no_grad():
        return model(labels, **kwargs).images


# ---------------------------------------------------------------------------------------------------- labels
def test_label_convention_dontcare_channel_zero_and_coco_shift() -> None:
    labels = torch.tensor([[[0, 5, 150, 255]]])
    assert oasis_label_channels(labels, OASISConfig.for_dataset("ade20k")).tolist() == [[[0, 5, 150, 0]]]
    coco = OASISConfig.for_dataset("coco-stuff")
    assert coco.num_label_channels == 183
    assert oasis_label_channels(torch.tensor([[[0, 181, 255]]]), coco).tolist() == [[[1, 182, 0]]]
    cityscapes = OASISConfig.for_dataset("cityscapes")
    assert cityscapes.num_label_channels == 35 and tuple(cityscapes.image_size) == (256, 512)
    assert oasis_label_channels(torch.tensor([[[0, 33, 34]]]), cityscapes).tolist() == [[[0, 33, 34]]]
    with pytest.raises(ValueError, match=r"ids \[182\] .* outside the model's label range 0..181"):
        oasis_label_channels(torch.tensor([[[182]]]), coco)
    with pytest.raises(ValueError, match=r"ids \[-1, 151\]"):
        oasis_label_channels(torch.tensor([[[-1, 151]]]), OASISConfig.for_dataset("ade20k"))


def test_semantic_input_is_noise_then_one_hot() -> None:
    model = OASISModel(tiny_config(preset="coco-stuff")).eval()
    labels = torch.tensor([[0, 255], [7, 181]]).repeat(32, 32)[None]
    noise = torch.randn(1, 16)
    semantics = model.build_semantic_input(labels, noise=noise)
    assert semantics.shape == (1, 16 + 183, 64, 64)
    assert torch.equal(semantics[0, :16, 5, 7], noise[0])
    assert semantics[0, 16:].sum(0).eq(1).all()
    assert semantics[0, 16 + 1, 0, 0] == 1 and semantics[0, 16 + 0, 0, 1] == 1 and semantics[0, 16 + 182, 1, 1] == 1


# ---------------------------------------------------------------------------------------------------- noise
def test_noise_given_vs_seeded() -> None:
    labels = blocky_labels(2, (64, 64), 151)
    model = trained_like(OASISModel(tiny_config()), labels)
    for fast in (False, True):
        a = run(model, labels, fast, generator=torch.Generator().manual_seed(0))
        b = run(model, labels, fast, generator=torch.Generator().manual_seed(0))
        c = run(model, labels, fast, generator=torch.Generator().manual_seed(1))
        noise = model.sample_noise(2, torch.Generator().manual_seed(0))
        given = run(model, labels, fast, noise=noise)
        assert torch.equal(a, b) and torch.equal(a, given)
        assert (a - c).abs().mean() > 1e-2  # another seed, another appearance
        assert (a[0] - a[1]).abs().mean() > 1e-2  # one vector per image


def test_spatial_noise_map_equals_broadcast_vector_and_varies_locally() -> None:
    labels = blocky_labels(2, (64, 64), 151)
    model = trained_like(OASISModel(tiny_config()), labels)
    noise = torch.randn(2, 16)
    spatial = noise[:, :, None, None].expand(-1, -1, 64, 64).clone()
    assert torch.equal(run(model, labels, False, noise=noise), run(model, labels, False, noise=spatial))
    torch.testing.assert_close(run(model, labels, True, noise=spatial), run(model, labels, True, noise=noise),
                               rtol=0, atol=1e-5)
    spatial[:, :, 32:] = torch.randn(2, 16, 1, 1)  # another vector in the bottom half
    assert (run(model, labels, False, noise=spatial) - run(model, labels, False, noise=noise)).abs().max() > 1e-2


@pytest.fixture(scope="module")
def strip_model() -> tuple[OASISModel, torch.Tensor]:
    """A narrow model on a 64x1024 strip. A region's spill reaches ~200 px (latent cells are 32 px wide), i.e. all of
    a 256x256 image; on the strip most pixels lie outside it."""
    torch.manual_seed(0)
    labels = blocky_labels(1, (64, 1024), 151, block=32)
    labels[labels == 7] = 8
    labels[:, :40, :40] = 7  # the region to re-sample: a class confined to the left end
    model = trained_like(OASISModel(tiny_config(ngf=2, z_dim=8, spade_hidden_nc=8, image_size=(64, 1024))), labels)
    return model, labels


def test_resample_changes_the_region_and_nothing_outside_its_spill(strip_model) -> None:
    model, labels = strip_model
    noise = model.resample_noise(labels, 7, generator=torch.Generator().manual_seed(0),
                                 new_generator=torch.Generator().manual_seed(7))
    assert noise.shape == (1, 8, 64, 1024)
    mask = labels == 7
    by_mask = model.resample_noise(labels, mask, generator=torch.Generator().manual_seed(0),
                                   new_generator=torch.Generator().manual_seed(7))
    assert torch.equal(noise, by_mask)
    base = model.sample_noise(1, torch.Generator().manual_seed(0))
    assert torch.equal(noise[0, :, 50, 500], base[0]) and not torch.equal(noise[0, :, 10, 10], base[0])

    spill = model.influence_region(mask)
    outside = ~spill[:, None].expand(-1, 3, -1, -1)
    assert spill[mask].all() and outside.float().mean() > 0.4, "the check needs pixels outside the spill"
    before = run(model, labels, False, generator=torch.Generator().manual_seed(0))
    after = run(model, labels, False, noise=noise)
    assert torch.equal(before[outside], after[outside])  # bit-identical outside the spill (plain path)
    assert (before - after)[:, :, :40, :40].abs().mean() > 1e-2  # the region got a new look
    fast_before = run(model, labels, True, generator=torch.Generator().manual_seed(0))
    fast_after = run(model, labels, True, noise=noise)
    assert (fast_before - fast_after)[outside].abs().max() <= 1e-5
    assert (fast_after - after).abs().max() <= 1e-4


def test_influence_region_contains_every_pixel_a_change_reaches(strip_model) -> None:
    """The region is built from the network's structure; changing the noise at one pixel must not reach beyond it."""
    model, labels = strip_model
    base = model.sample_noise(1, torch.Generator().manual_seed(3))[:, :, None, None].expand(-1, -1, 64, 1024)
    reference = run(model, labels, False, noise=base)
    for y, x in ((0, 0), (32, 500), (63, 1023)):
        changed = torch.zeros(1, 64, 1024, dtype=torch.bool)
        changed[0, y, x] = True
        noise = torch.where(changed[:, None], torch.full_like(base, 3.0), base)
        reached = (run(model, labels, False, noise=noise) - reference).abs().amax(1) > 0
        region = model.influence_region(changed)
        assert reached.any() and not (reached & ~region).any()
        assert region.float().mean() < 0.6


# ---------------------------------------------------------------------------------------------------- fast path
@pytest.mark.parametrize("overrides", [
    {},
    {"preset": "cityscapes", "image_size": (64, 128)},
    {"preset": "coco-stuff", "param_free_norm": "instance", "spectral_norm": False},
])
@pytest.mark.parametrize("winograd", [False, True])
def test_fast_path_equals_plain_path(overrides, winograd: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if winograd:
        force_winograd(monkeypatch)
    config = tiny_config(**overrides)
    labels = blocky_labels(2, tuple(config.image_size), config.max_label_id + 1)
    model = trained_like(OASISModel(config), labels)
    noise = torch.randn(2, config.z_dim)
    resampled = model.resample_noise(labels, labels[0, 0, 0].item(), noise=noise,
                                     new_generator=torch.Generator().manual_seed(2))
    for z in (noise, resampled):
        plain = run(model, labels, False, noise=z)
        fast = run(model, labels, True, noise=z)
        assert plain.std() > 0.1, "the check needs a non-degenerate output"
        assert (fast - plain).abs().max() <= 1e-4


def test_many_distinct_noise_vectors_fall_back_to_the_plain_path() -> None:
    labels = blocky_labels(1, (64, 64), 151)
    model = trained_like(OASISModel(tiny_config()), labels)
    noise = torch.randn(1, 16, 64, 64)  # i.i.d. per pixel: no piecewise-constant structure to exploit
    assert torch.equal(run(model, labels, True, noise=noise), run(model, labels, False, noise=noise))


def test_noise_vectors_that_project_alike_are_still_told_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast path groups a spatial map's pixels by a projection of their noise, verified exactly: when distinct
    vectors project alike (here: every vector, with a zero direction) it must still separate them."""
    labels = blocky_labels(1, (64, 64), 151)
    model = trained_like(OASISModel(tiny_config()), labels)
    noise = model.resample_noise(labels, labels[0, 0, 0].item(), noise=torch.randn(1, 16),
                                 new_generator=torch.Generator().manual_seed(2))
    monkeypatch.setattr(noise_normalization, "_projection", lambda dim, device: torch.zeros(dim, dtype=torch.float64))
    layout = noise_normalization.NoiseSemanticLayout.from_noise(oasis_label_channels(labels, model.config), noise, 151)
    assert layout.key_vectors.unique(dim=0).shape[0] == 2
    assert (run(model, labels, True, noise=noise) - run(model, labels, False, noise=noise)).abs().max() <= 1e-4


def test_layout_in_fast_inference_and_in_training_only() -> None:
    model = OASISModel(tiny_config()).eval()
    assert not model._uses_layout()  # eval with gradients enabled: the dense path
    with torch.no_grad():
        assert model._uses_layout()
    model.train()
    assert model._uses_layout()  # training on the fast path
    model.fast_training = False
    assert not model._uses_layout()


def test_training_on_the_fast_path_equals_the_dense_path() -> None:
    labels = blocky_labels(2, (64, 64), 151)
    model = trained_like(OASISModel(tiny_config()), labels)
    noise = torch.randn(2, 16, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    assert_fast_training_matches_dense(model, lambda m: m(labels, noise=noise).images)


def test_bfloat16_model_runs_and_is_close() -> None:
    labels = blocky_labels(1, (64, 64), 151)
    model = trained_like(OASISModel(tiny_config()), labels)
    noise = torch.randn(1, 16)
    bf16 = copy.deepcopy(model).to(torch.bfloat16)
    with torch.no_grad():
        reference = model(labels, noise=noise).images
        out = bf16(labels, noise=noise).images
    assert out.dtype == torch.bfloat16
    assert 10 * torch.log10(4 / ((out.float() - reference) ** 2).mean()) > 30


# ---------------------------------------------------------------------------------------------------- I/O
def test_save_load_round_trip_is_bit_exact(tmp_path) -> None:
    model = OASISModel(tiny_config())
    for m in model.modules():  # non-default buffers must survive too
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_()
    model.save_pretrained(tmp_path)
    loaded = OASISModel.from_pretrained(tmp_path)
    assert not loaded.training and loaded.config.label_shift == 0
    original = model.state_dict()
    for key, value in loaded.state_dict().items():
        assert torch.equal(value, original[key]), key
    labels = blocky_labels(1, (64, 64), 151)
    model.eval()
    noise = torch.ones(1, 16)
    assert torch.equal(run(model, labels, True, noise=noise), run(loaded, labels, True, noise=noise))
    card = (tmp_path / "README.md").read_text()
    assert card.startswith("---") and "28.3" in card and "agpl-3.0" in card


def test_pipeline_from_a_saved_folder(tmp_path) -> None:
    model = OASISModel(tiny_config(preset="coco-stuff")).eval()
    randomize_weights(model)
    save_model_folder(tmp_path / "oasis", model)
    pipe = pipeline("label-to-image", model=str(tmp_path / "oasis"))
    labels = np.where(np.arange(64)[:, None] < 32, 3, 255).astype(np.uint8).repeat(64, axis=1)
    a, b = pipe(labels, seed=0), pipe(labels, seed=0)
    c = pipe(labels, seed=1)
    assert a.size == (64, 64) and np.array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(a), np.asarray(c))
    expected = run(model, torch.from_numpy(labels.astype(np.int64))[None], True,
                   generator=torch.Generator().manual_seed(0))
    got = torch.from_numpy(np.asarray(a).astype(np.float32)).permute(2, 0, 1) / 127.5 - 1
    assert (got - expected[0]).abs().max() <= 1.5 / 127.5


# ---------------------------------------------------------------------------------------------------- discriminator
def test_discriminator_gives_n_plus_one_logits_per_pixel() -> None:
    config = tiny_config(preset="cityscapes", image_size=(64, 128))
    netd = OASISDiscriminator(config)
    logits = netd(torch.rand(2, 3, 64, 128) * 2 - 1)
    assert logits.shape == (2, 36, 64, 128)
    logits.sum().backward()  # trainable end to end
    assert netd.body_down[0].conv1.parametrizations.weight.original.grad is not None
    with pytest.raises(ValueError, match="divisible by 64"):
        netd(torch.zeros(1, 3, 96, 64))
    with pytest.raises(ValueError, match=r"images must be \[B, 3, H, W\]"):
        netd(torch.zeros(1, 4, 64, 64))


def _original_order(block, x: torch.Tensor) -> torch.Tensor:
    """The original OASIS residual_block_D's order of operations, on the block's own layers: resampling as a
    separate step before (up) or after (down) the convolutions."""
    functional = torch.nn.functional

    def up(t: torch.Tensor) -> torch.Tensor:
        return functional.interpolate(t, scale_factor=2, mode="nearest")

    def pool(t: torch.Tensor) -> torch.Tensor:
        return functional.avg_pool2d(t, 2)

    def conv_s(t: torch.Tensor) -> torch.Tensor:
        return block.conv_s(t) if block.learned_shortcut else t

    if block.first:
        shortcut = conv_s(pool(x))
    elif block.sampling == "up":
        shortcut = conv_s(up(x))
    else:
        shortcut = pool(conv_s(x))
    h = x if block.first else functional.leaky_relu(x, 0.2)
    h = block.conv2(functional.leaky_relu(block.conv1(up(h) if block.sampling == "up" else h), 0.2))
    return shortcut + (pool(h) if block.sampling == "down" else h)


def test_discriminator_with_fused_resampling_equals_the_original_order() -> None:
    """Training mode in float64: the same logits, parameter gradients and spectral-norm power-iteration state as the
    original order of operations (each weight is still read once per forward)."""
    netd = OASISDiscriminator(tiny_config(preset="cityscapes", ndf=8, image_size=(64, 128))).double()
    randomize_weights(netd, 0)
    reference = copy.deepcopy(netd)
    for block in [*reference.body_down, *reference.body_up]:
        block.forward = lambda x, block=block: _original_order(block, x)
    images = torch.rand(2, 3, 64, 128, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 2 - 1
    got, expected = netd(images), reference(images)
    torch.testing.assert_close(got, expected, atol=1e-11, rtol=0)
    upstream = torch.randn(got.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    (got * upstream).sum().backward()
    (expected * upstream).sum().backward()
    for (name, p), q in zip(netd.named_parameters(), reference.parameters()):
        torch.testing.assert_close(p.grad, q.grad, atol=1e-10, rtol=0, msg=name)
    for (name, b), c in zip(netd.named_buffers(), reference.buffers()):
        torch.testing.assert_close(b, c, atol=1e-12, rtol=0, msg=name)


# ---------------------------------------------------------------------------------------------------- errors
def test_clear_errors() -> None:
    model = OASISModel(tiny_config()).eval()
    labels = torch.zeros(1, 64, 64, dtype=torch.long)
    with pytest.raises(ValueError, match="divisible by 32"):
        model(torch.zeros(1, 70, 64, dtype=torch.long))
    with pytest.raises(ValueError, match=r"noise must have shape \(1, 16\) .* or \(1, 16, 64, 64\)"):
        model(labels, noise=torch.zeros(1, 8))
    with pytest.raises(ValueError, match="non-finite"):
        model(labels, noise=torch.full((1, 16), float("nan")))
    with pytest.raises(ValueError, match="region mask has shape"):
        model.resample_noise(labels, torch.zeros(32, 32, dtype=torch.bool))
    with pytest.raises(ValueError, match="boolean mask or integer class ids"):
        model.resample_noise(labels, torch.zeros(64, 64))


def test_presets_and_config_errors() -> None:
    assert OASISConfig.for_dataset("coco").label_shift == 1
    with pytest.raises(ValueError, match="unknown OASIS preset"):
        OASISConfig.for_dataset("mnist")
    with pytest.raises(ValueError, match="divisible by 32"):
        OASISConfig(image_size=(100, 100))
    with pytest.raises(ValueError, match="don't-care channel 0"):
        OASISConfig(contain_dontcare_label=False)
    with pytest.raises(ValueError, match="ignore_index 150 is a class id"):
        OASISConfig(ignore_index=150)
    with pytest.raises(ValueError, match="param_free_norm must be one of"):
        OASISConfig(param_free_norm="positional")
    with pytest.raises(ValueError, match="label_shift must be"):
        OASISConfig(label_shift=2)
