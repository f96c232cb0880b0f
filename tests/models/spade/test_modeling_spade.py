"""SPADEModel: architecture (parameter counts of the originals), fast path, sampling, I/O, errors."""

import copy

import numpy as np
import pytest
import torch
from helpers import assert_fast_training_matches_dense, force_winograd

from labelsynth import SPADEConfig, SPADEDiscriminator, SPADEModel

# Parameter counts of the official NVlabs/SPADE networks built with their option parsers.
ORIGINAL_COUNTS = [
    ("ade20k", {}, 96_492_483, 0, 5_836_930),
    ("ade20k", {"use_vae": True}, 111_942_595, 10_463_424, 5_836_930),
    ("cityscapes", {}, 93_048_003, 0, 5_601_410),
    ("coco-stuff", {}, 97_480_899, 0, 5_904_514),
]


def _count(module: torch.nn.Module | None) -> int:
    return 0 if module is None else sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize(("preset", "overrides", "generator", "encoder", "discriminator"), ORIGINAL_COUNTS)
def test_parameter_counts_equal_the_originals(preset, overrides, generator, encoder, discriminator) -> None:
    config = SPADEConfig.for_dataset(preset, **overrides)
    with torch.device("meta"):
        model = SPADEModel(config)
        netd = SPADEDiscriminator(config)
    assert _count(model.generator) == generator
    assert _count(model.encoder) == encoder
    assert _count(netd) == discriminator


def tiny_config(**overrides) -> SPADEConfig:
    settings = dict(label_space="ade20k", label_nc=150, contain_dontcare_label=True, ngf=8, image_size=(64, 64))
    return SPADEConfig(**{**settings, **overrides})


def trained_like(model: SPADEModel, labels: torch.Tensor, instances: torch.Tensor | None = None) -> SPADEModel:
    """Give the random model a non-trivial output range and calibrated BatchNorm statistics, as training would."""
    torch.manual_seed(1)
    for name, p in model.named_parameters():
        if name.endswith("weight") or name.endswith("original"):
            p.data.normal_(0, 1.0 / np.sqrt(p[0].numel()))
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None
    model.train()
    with torch.no_grad():
        model(labels, instances)
    return model.eval()


def blocky_labels(batch: int, size: tuple[int, int], high: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randint(0, high, (batch, 1, size[0] // 8, size[1] // 8), generator=g).float()
    return torch.nn.functional.interpolate(coarse, size=size, mode="nearest")[:, 0].long()


@pytest.mark.parametrize("overrides", [
    {},
    {"num_upsampling_layers": "more", "image_size": (64, 128), "use_instance_edges": True, "label_nc": 35,
     "contain_dontcare_label": False},
    {"num_upsampling_layers": "most", "image_size": (256, 256), "param_free_norm": "instance"},
    {"use_vae": True, "spectral_norm": False, "param_free_norm": "batch"},
])
@pytest.mark.parametrize("winograd", [False, True])
def test_fast_path_equals_plain_path(overrides, winograd: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if winograd:
        force_winograd(monkeypatch)
    config = tiny_config(**overrides)
    high = config.label_nc + int(config.contain_dontcare_label)
    labels = blocky_labels(2, tuple(config.image_size), high)
    instances = labels * 1000 + (torch.arange(config.image_size[1]) > 20).long() if config.use_instance_edges else None
    model = trained_like(SPADEModel(config), labels, instances)
    noise = torch.randn(2, config.z_dim) if config.use_vae else None
    with torch.no_grad():
        model.fast_inference = False
        plain = model(labels, instances, noise=noise).images
        model.fast_inference = True
        fast = model(labels, instances, noise=noise).images
    assert plain.std() > 0.1, "the check needs a non-degenerate output"
    assert (fast - plain).abs().max() <= 1e-4


def test_fast_path_with_two_threads_equals_plain_and_keeps_the_thread_count(monkeypatch: pytest.MonkeyPatch) -> None:
    """With several intra-op threads the fast path runs its small operations on one (`labelsynth.layers.small_ops`)
    and the rest on all of them: same result as the plain path, and the caller's thread count is left as it was."""
    from labelsynth.layers import small_ops

    switches = []
    original = small_ops.single_threaded

    def spy():
        switches.append(torch.get_num_threads())
        return original()

    monkeypatch.setattr(small_ops, "single_threaded", spy)
    force_winograd(monkeypatch)
    config = tiny_config()
    labels = blocky_labels(2, tuple(config.image_size), config.label_nc + 1)
    model = trained_like(SPADEModel(config), labels, None)
    switches.clear()  # trained_like's train-mode pass ran on the caller's thread count
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with torch.no_grad():
            model.fast_inference = False
            plain = model(labels).images
            model.fast_inference = True
            fast = model(labels).images
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert switches and set(switches) == {2}, "small operations should have run on one thread"
    assert (fast - plain).abs().max() <= 1e-4


def test_layout_in_fast_inference_and_in_training_only() -> None:
    model = SPADEModel(tiny_config()).eval()
    assert not model._uses_layout()  # eval with gradients enabled: the dense path
    with torch.no_grad():
        assert model._uses_layout()
        model.fast_inference = False
        assert not model._uses_layout()
    model.train()
    assert model._uses_layout()  # training on the fast path
    model.fast_training = False
    assert not model._uses_layout()


@pytest.mark.parametrize("overrides", [{}, {"label_space": "cityscapes", "label_nc": 35, "no_instance": False}])
def test_training_on_the_fast_path_equals_the_dense_path(overrides) -> None:
    num_ids = 35 if overrides else 151
    labels = blocky_labels(2, (64, 64), num_ids, seed=3)
    instances = labels * 10 + (torch.arange(64) > 40).long() if overrides else None
    model = trained_like(SPADEModel(tiny_config(**overrides)), blocky_labels(2, (64, 64), num_ids), instances)
    assert_fast_training_matches_dense(model, lambda m: m(labels, instances).images)


def test_bfloat16_model_runs_and_is_close() -> None:
    config = tiny_config()
    labels = blocky_labels(1, (64, 64), 151)
    model = trained_like(SPADEModel(config), labels)
    bf16 = copy.deepcopy(model).to(torch.bfloat16)
    with torch.no_grad():
        reference = model(labels).images
        out = bf16(labels).images
    assert out.dtype == torch.bfloat16
    psnr = 10 * torch.log10(4 / ((out.float() - reference) ** 2).mean())
    assert psnr > 30


def test_vae_sampling_is_seeded_and_style_is_used() -> None:
    model = SPADEModel(tiny_config(use_vae=True)).eval()
    labels = blocky_labels(2, (64, 64), 151)
    with torch.no_grad():
        a = model(labels, generator=torch.Generator().manual_seed(0)).images
        b = model(labels, generator=torch.Generator().manual_seed(0)).images
        c = model(labels, generator=torch.Generator().manual_seed(1)).images
        style = torch.rand(2, 3, 80, 96) * 2 - 1
        out = model(labels, style_image=style, noise=torch.zeros(2, 256))
    assert torch.equal(a, b) and not torch.equal(a, c)
    mu, logvar = model.encode_style(style)
    with torch.no_grad():
        direct = model(labels, noise=mu).images  # z = mu when the reparameterisation noise is zero
    torch.testing.assert_close(out.images, direct)
    assert out.mu.shape == (2, 256) and out.logvar.shape == (2, 256)


def test_save_load_round_trip_is_bit_exact(tmp_path) -> None:
    config = tiny_config(use_vae=True)
    model = SPADEModel(config)
    for m in model.modules():  # non-default buffers must survive too
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_()
    model.save_pretrained(tmp_path)
    loaded = SPADEModel.from_pretrained(tmp_path)
    assert not loaded.training
    original = model.state_dict()
    for key, value in loaded.state_dict().items():
        assert torch.equal(value, original[key]), key
    labels = blocky_labels(1, (64, 64), 151)
    with torch.no_grad():
        model.eval()
        assert torch.equal(model(labels, noise=torch.ones(1, 256)).images, loaded(labels, noise=torch.ones(1, 256)).images)
    assert (tmp_path / "README.md").read_text().startswith("---")


def test_any_size_divisible_by_the_upsampling_factor() -> None:
    """Non-VAE SPADE is fully convolutional: other sizes work when divisible by 2**num_upsampling."""
    model = SPADEModel(tiny_config()).eval()
    with torch.no_grad():
        assert model(blocky_labels(1, (96, 64), 151)).images.shape == (1, 3, 96, 64)
    with pytest.raises(ValueError, match="divisible by 32"):
        model(torch.zeros(1, 70, 64, dtype=torch.long))


def test_clear_errors() -> None:
    model = SPADEModel(tiny_config()).eval()
    with pytest.raises(ValueError, match=r"ids \[151, 200\]"):
        model(torch.tensor([[151, 200]]).repeat(32, 32)[None])
    with pytest.raises(ValueError, match="no style encoder"):
        model(torch.zeros(1, 64, 64, dtype=torch.long), style_image=torch.zeros(1, 3, 64, 64))
    edges_model = SPADEModel(tiny_config(use_instance_edges=True)).eval()
    with pytest.raises(ValueError, match="needs an instance_map"):
        edges_model(torch.zeros(1, 64, 64, dtype=torch.long))
    with pytest.raises(ValueError, match="instance_map is 32x32 .* but label_map is 64x64"):
        edges_model(torch.zeros(1, 64, 64, dtype=torch.long), torch.zeros(1, 32, 32, dtype=torch.long))
    vae = SPADEModel(tiny_config(use_vae=True)).eval()
    with pytest.raises(ValueError, match="generates exactly 64x64"):
        vae(torch.zeros(1, 128, 128, dtype=torch.long))
    with pytest.raises(ValueError, match=r"noise \(z\) must have shape \(1, 256\)"):
        vae(torch.zeros(1, 64, 64, dtype=torch.long), noise=torch.zeros(1, 8))


def test_discriminator_outputs_every_stage() -> None:
    config = tiny_config()
    netd = SPADEDiscriminator(config)
    outputs = netd(torch.zeros(2, config.semantic_nc, 64, 64), torch.zeros(2, 3, 64, 64))
    assert [len(scale) for scale in outputs] == [5, 5]
    assert outputs[0][-1].shape == (2, 1, 11, 11) and outputs[1][-1].shape == (2, 1, 7, 7)


def test_presets_and_config_errors() -> None:
    assert SPADEConfig.for_dataset("coco").semantic_nc == 184
    assert SPADEConfig.for_dataset("cityscapes").semantic_nc == 36
    with pytest.raises(ValueError, match="unknown SPADE preset"):
        SPADEConfig.for_dataset("mnist")
    with pytest.raises(ValueError, match="divisible by 2\\*\\*5 = 32"):
        SPADEConfig(image_size=(100, 100))
