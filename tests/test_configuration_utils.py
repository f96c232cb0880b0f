"""Config validation: the shared checks, every family's field bounds, presets, label spaces, and loading a bad
config.json failing before anything is allocated."""

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

import labelsynth.label_spaces as ls
from labelsynth import (
    CoCosNetConfig,
    CoCosNetDiscriminator,
    CoCosNetModel,
    CRNConfig,
    CRNModel,
    LabelMapProcessor,
    LabelSpace,
    Pix2PixConfig,
    Pix2PixDiscriminator,
    Pix2PixHDConfig,
    Pix2PixHDDiscriminator,
    Pix2PixHDModel,
    Pix2PixModel,
    SEANConfig,
    SEANDiscriminator,
    SEANModel,
    SPADEConfig,
    SPADEDiscriminator,
    SPADEModel,
    register_label_space,
)
from labelsynth.configuration_utils import (
    CONV_NORMS,
    MAX_CHANNELS,
    MAX_IMAGE_SIDE,
    MAX_LABEL_NC,
    check_bool,
    check_choice,
    check_float,
    check_int,
    check_label_space,
)
from labelsynth.layers.discriminators import DISCRIMINATOR_NORMS, _conv_norm
from labelsynth.models.cocosnet import configuration_cocosnet
from labelsynth.models.cocosnet.modeling_cocosnet import _adaptor_conv
from labelsynth.models.crn import configuration_crn
from labelsynth.models.pix2pix import configuration_pix2pix
from labelsynth.models.pix2pixhd import configuration_pix2pixhd
from labelsynth.models.sean import configuration_sean
from labelsynth.models.spade import configuration_spade
from labelsynth.models.spade.configuration_spade import ENCODER_NORMS

FAMILIES = {
    "pix2pix": (Pix2PixConfig, configuration_pix2pix.PIX2PIX_PRESETS, configuration_pix2pix._PRESET_ALIASES),
    "pix2pixhd": (Pix2PixHDConfig, configuration_pix2pixhd.PIX2PIXHD_PRESETS, configuration_pix2pixhd._PRESET_ALIASES),
    "crn": (CRNConfig, configuration_crn.CRN_PRESETS, configuration_crn._PRESET_ALIASES),
    "spade": (SPADEConfig, configuration_spade.SPADE_PRESETS, configuration_spade._PRESET_ALIASES),
    "sean": (SEANConfig, configuration_sean.SEAN_PRESETS, configuration_sean._PRESET_ALIASES),
    "cocosnet": (CoCosNetConfig, configuration_cocosnet.COCOSNET_PRESETS, {}),
}
PRESETS = [(family, name) for family, (_, presets, aliases) in FAMILIES.items() for name in [*presets, *aliases]]


@pytest.fixture
def clean_registry(monkeypatch):
    """Let a test register label spaces without leaking them into other tests."""
    monkeypatch.setattr(ls, "_REGISTRY", dict(ls._REGISTRY))
    monkeypatch.setattr(ls, "_ALIASES", dict(ls._ALIASES))


# ---------------------------------------------------------------------------------------------- the shared checks
def test_check_int_bounds_are_inclusive_and_normalise_the_type() -> None:
    assert check_int("n", 1, 1, 8) == 1 and check_int("n", 8, 1, 8) == 8
    assert type(check_int("n", np.int64(4), 1, 8)) is int
    assert check_int("n", 4.0, 1, 8) == 4  # a float written by some JSON tool
    for bad in (0, 9, -1, 10**9):
        with pytest.raises(ValueError, match=rf"^n must be >= 1 and <= 8, got {bad}$"):
            check_int("n", bad, 1, 8)
    for bad in (True, "4", 4.5, None, [4], float("nan"), float("inf")):
        with pytest.raises(ValueError, match="^n must be an integer"):
            check_int("n", bad, 1, 8)
    with pytest.raises(ValueError, match=r"^k must be odd .*got 4; allowed: 1, 3, 5, 7, 9$"):
        check_int("k", 4, 1, 9, odd=True)
    with pytest.raises(ValueError, match=r"<= 8 \(why\), got 9"):
        check_int("n", 9, 1, 8, reason="why")


def test_check_float_bool_choice() -> None:
    assert check_float("t", 0.01, 0.0, low_inclusive=False) == 0.01
    for bad in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match=r"^t must be a finite number > 0, got"):
            check_float("t", bad, 0.0, low_inclusive=False)
    with pytest.raises(ValueError, match=r"must be a finite number >= 0 and <= 1, got 1.5"):
        check_float("s", 1.5, 0.0, 1.0)
    with pytest.raises(ValueError, match="must be a number"):
        check_float("s", "0.5", 0.0, 1.0)
    assert check_bool("b", True) is True and check_bool("b", 0) is False and check_bool("b", np.bool_(True)) is True
    for bad in ("false", 2, None):
        with pytest.raises(ValueError, match="^b must be True or False"):
            check_bool("b", bad)
    assert check_choice("c", np.int64(4), (3, 4)) == 4 and type(check_choice("c", np.int64(4), (3, 4))) is int
    for bad in ("x", True, [3], np.array([3, 4]), {"a": 1}):
        with pytest.raises(ValueError, match=r"^c must be one of \(3, 4\)"):
            check_choice("c", bad, (3, 4))


def test_accepted_norms_are_the_ones_the_layers_build() -> None:
    """Every norm string a config accepts builds the layers that read it (and the discriminators' own list is a
    subset), so validation refuses nothing that works and nothing it accepts fails later."""
    assert set(DISCRIMINATOR_NORMS) <= set(CONV_NORMS)
    for norm in CONV_NORMS:
        _conv_norm(4, 8, 2, 1, norm)
        _adaptor_conv(4, 8, 3, 2, norm)
    for norm in ENCODER_NORMS:
        config = SPADEConfig(ngf=4, image_size=(64, 64), use_vae=True, z_dim=8, encoder_norm=norm)
        with torch.device("meta"):
            SPADEModel(config)


# ---------------------------------------------------------------------------------------------- label spaces
def test_label_space_forms(clean_registry) -> None:
    assert check_label_space("ADE20K") == "ADE20K"  # names and aliases are kept as given
    assert check_label_space(ls.get_label_space("coco-stuff")) == "coco-stuff"
    custom = LabelSpace.custom(["sky", "ground"], name="two-classes")
    assert check_label_space(custom) == custom.to_dict()  # not registered: stored whole
    register_label_space(custom)
    assert check_label_space(custom) == "two-classes"
    assert check_label_space(custom.to_dict()) == custom.to_dict()
    with pytest.raises(ValueError, match=r"^label_space: unknown label space 'mnist'; known: ade20k, .*cityscapes.*"
                                         r"two-classes.*register_label_space"):
        check_label_space("mnist")
    with pytest.raises(ValueError, match=r"^label_space: a label-space dict needs at least a 'names' list"):
        check_label_space({"name": "x"})
    with pytest.raises(ValueError, match=r"^label_space must be a registered name, .* got 3 \(int\)"):
        check_label_space(3)


def test_custom_label_spaces_survive_a_config_round_trip(tmp_path, clean_registry) -> None:
    space = LabelSpace.custom(["background", "road", "tree"], name="my-roads")
    as_dict = SPADEConfig(label_space=space.to_dict(), label_nc=3, ngf=8, image_size=(64, 64))
    as_dict.save_pretrained(tmp_path / "dict")
    assert SPADEConfig.from_pretrained(tmp_path / "dict").label_space == space.to_dict()
    register_label_space(space, aliases=["roads"])
    by_name = SPADEConfig(label_space="roads", label_nc=3, ngf=8, image_size=(64, 64))
    by_name.save_pretrained(tmp_path / "name")
    assert SPADEConfig.from_pretrained(tmp_path / "name").label_space == "roads"
    assert SPADEConfig(label_space=space, label_nc=3).label_space == "my-roads"


def test_unknown_label_space_is_refused_by_every_family() -> None:
    for config_class, _, _ in FAMILIES.values():
        with pytest.raises(ValueError, match="label_space: unknown label space 'ade21k'; known: ade20k"):
            config_class(label_space="ade21k")


# ---------------------------------------------------------------------------------------------- presets
@pytest.mark.parametrize(("family", "name"), PRESETS)
def test_every_preset_is_valid_and_round_trips(family: str, name: str, tmp_path: Path) -> None:
    config_class = FAMILIES[family][0]
    config = config_class.for_dataset(name)
    config.save_pretrained(tmp_path)
    assert config_class.from_pretrained(tmp_path).to_dict() == config.to_dict()


@pytest.mark.parametrize("family", FAMILIES)
def test_defaults_are_valid(family: str) -> None:
    FAMILIES[family][0]()


# ---------------------------------------------------------------------------------------------- field bounds
# (config class, field, lowest allowed, highest allowed, other fields that make both ends valid)
INT_BOUNDS = [
    (Pix2PixConfig, "ngf", 1, MAX_CHANNELS // 8, {}),
    (Pix2PixConfig, "ndf", 1, MAX_CHANNELS // 8, {}),
    (Pix2PixConfig, "num_downs", 5, 13, {"image_size": (8192, 8192)}),
    (Pix2PixConfig, "n_layers_d", 1, 8, {}),
    (Pix2PixConfig, "label_nc", 1, MAX_LABEL_NC, {}),
    (Pix2PixHDConfig, "ngf", 1, MAX_CHANNELS // 2**4, {}),
    (Pix2PixHDConfig, "ngf", 1, MAX_CHANNELS // 2**5, {"generator_type": "local"}),
    (Pix2PixHDConfig, "n_downsample_global", 0, 12, {"ngf": 1, "image_size": (4096, 4096)}),
    (Pix2PixHDConfig, "n_blocks_global", 0, 32, {}),
    (Pix2PixHDConfig, "n_blocks_local", 0, 32, {}),
    (Pix2PixHDConfig, "n_local_enhancers", 0, 4, {}),
    (Pix2PixHDConfig, "feat_num", 1, 256, {}),
    (Pix2PixHDConfig, "nef", 1, MAX_CHANNELS // 2**4, {}),
    (Pix2PixHDConfig, "n_downsample_e", 0, 12, {"nef": 1}),
    (Pix2PixHDConfig, "n_clusters", 1, 256, {}),
    (Pix2PixHDConfig, "ndf", 1, MAX_CHANNELS, {}),
    (Pix2PixHDConfig, "n_layers_d", 1, 8, {}),
    (Pix2PixHDConfig, "num_d", 1, 8, {}),
    (CRNConfig, "num_outputs", 1, 64, {}),
    (CRNConfig, "label_nc", 1, MAX_LABEL_NC, {"label_to_channel": None}),
    (SPADEConfig, "ngf", 1, MAX_CHANNELS // 16, {}),
    (SPADEConfig, "ngf", 2, MAX_CHANNELS // 16, {"num_upsampling_layers": "most"}),
    (SPADEConfig, "ngf", 2, MAX_CHANNELS // 16, {"param_free_norm": "positional"}),
    (SPADEConfig, "ngf", 4, MAX_CHANNELS // 16, {"num_upsampling_layers": "most", "param_free_norm": "positional"}),
    (SPADEConfig, "ndf", 1, MAX_CHANNELS, {}),
    (SPADEConfig, "z_dim", 1, 4096, {"use_vae": True}),
    (SPADEConfig, "spade_hidden_nc", 1, MAX_CHANNELS, {}),
    (SPADEConfig, "n_layers_d", 1, 8, {}),
    (SPADEConfig, "num_d", 1, 8, {}),
    (SPADEConfig, "label_nc", 1, MAX_LABEL_NC, {"ignore_index": 65535}),
    (SPADEConfig, "ignore_index", -(2**31 - 1), 2**31 - 1, {}),
    (SEANConfig, "ngf", 1, MAX_CHANNELS // 16, {}),
    (SEANConfig, "ngf", 2, MAX_CHANNELS // 16, {"param_free_norm": "positional"}),
    (SEANConfig, "style_dim", 1, 4096, {}),
    (SEANConfig, "style_encoder_ngf", 1, MAX_CHANNELS // 8, {}),
    (SEANConfig, "spade_hidden_nc", 1, MAX_CHANNELS, {}),
    (SEANConfig, "ndf", 1, MAX_CHANNELS, {}),
    (SEANConfig, "n_layers_d", 1, 8, {}),
    (SEANConfig, "num_d", 1, 8, {}),
    (CoCosNetConfig, "ngf", 2, MAX_CHANNELS // 16, {}),
    (CoCosNetConfig, "ngf", 1, MAX_CHANNELS // 16, {"use_attention": False, "param_free_norm": "instance"}),
    (CoCosNetConfig, "spade_hidden_nc", 1, MAX_CHANNELS, {}),
    (CoCosNetConfig, "ndf", 1, MAX_CHANNELS, {"use_attention": False}),
    (CoCosNetConfig, "n_layers_d", 2, 8, {}),
    (CoCosNetConfig, "num_d", 1, 8, {}),
]


def _id(case: tuple) -> str:
    return f"{case[0].__name__}-{case[1]}" + ("-" + "-".join(map(str, case[4].values())) if case[4] else "")


@pytest.mark.parametrize("case", INT_BOUNDS, ids=_id)
def test_int_fields_accept_their_range_and_refuse_what_lies_outside(case: tuple) -> None:
    config_class, field, low, high, others = case
    for value in (low, high):
        assert getattr(config_class(**others, **{field: value}), field) == value
    for value in (low - 1, high + 1, 10**4, 10**6, 10**9, -(10**6)):
        if low <= value <= high:
            continue
        with pytest.raises(ValueError, match=rf"^{field} must be >= {low} and <= {high}\b.*, got {value}$"):
            config_class(**others, **{field: value})
    for value in ("64", 2.5, True, None):
        with pytest.raises(ValueError, match=rf"^{field} must be an integer, got"):
            config_class(**others, **{field: value})


# (config class, field) of the conv kernels: small odd sizes.
KERNELS = [(SPADEConfig, "spade_kernel_size"), (SEANConfig, "spade_kernel_size"),
           (CoCosNetConfig, "spade_kernel_size"), (CoCosNetConfig, "match_kernel")]


@pytest.mark.parametrize(("config_class", "field"), KERNELS, ids=lambda x: getattr(x, "__name__", x))
def test_kernel_sizes_are_small_odd_numbers(config_class, field) -> None:
    for value in (1, 3, 5, 7, 9):
        assert getattr(config_class(**{field: value}), field) == value
    for value in (0, 11, 10001, -3):
        with pytest.raises(ValueError, match=rf"^{field} must be >= 1 and <= 9, got {value}$"):
            config_class(**{field: value})
    for value in (2, 4, 8):
        with pytest.raises(ValueError, match=rf"^{field} must be odd .*, got {value}; allowed: 1, 3, 5, 7, 9$"):
            config_class(**{field: value})


# (config class, field, a value it refuses, text the message shows)
BAD_VALUES = [
    (Pix2PixConfig, "input_encoding", "rgb", "'rgb'"),
    (Pix2PixConfig, "use_dropout", "false", "'false'"),
    (Pix2PixHDConfig, "generator_type", "global-local", "'global-local'"),
    (Pix2PixHDConfig, "feature_mode", "pixel", "'pixel'"),
    (CRNConfig, "module_channels", [], "[]"),
    (CRNConfig, "module_channels", [8] * 15, "[8, 8,"),
    (CRNConfig, "module_channels", 1024, "1024"),
    (CRNConfig, "layer_norm_eps", 0.0, "0.0"),
    (CRNConfig, "negative_slope", -0.2, "-0.2"),
    (CRNConfig, "label_to_channel", "19", "'19'"),
    (SPADEConfig, "num_upsampling_layers", "many", "'many'"),
    (SPADEConfig, "param_free_norm", "group", "'group'"),
    (SPADEConfig, "encoder_norm", "spectralbatch", "'spectralbatch'"),
    (SPADEConfig, "discriminator_norm", "spectralgroup", "'spectralgroup'"),
    (SPADEConfig, "spectral_norm", "yes", "'yes'"),
    (SPADEConfig, "contain_dontcare_label", "False", "'False'"),
    (SPADEConfig, "use_instance_edges", 2, "2"),
    (SPADEConfig, "use_vae", None, "None"),
    (SEANConfig, "param_free_norm", "layer", "'layer'"),
    (SEANConfig, "discriminator_norm", 3, "3"),
    (CoCosNetConfig, "adaptor_kernel_size", 5, "5"),
    (CoCosNetConfig, "adaptor_norm", "group", "'group'"),
    (CoCosNetConfig, "warp_stride", 8, "8"),
    (CoCosNetConfig, "correlation_centering", "none", "'none'"),
    (CoCosNetConfig, "correlation_temperature", 0, "0.0"),
    (CoCosNetConfig, "correlation_temperature", float("inf"), "inf"),
    (CoCosNetConfig, "mask_noise_std", -0.01, "-0.01"),
    (CoCosNetConfig, "warp_upsampling", "bicubic", "'bicubic'"),
    (CoCosNetConfig, "maskmix", "true", "'true'"),
]


@pytest.mark.parametrize(("config_class", "field", "value", "shown"), BAD_VALUES,
                         ids=[f"{c.__name__}-{f}-{v!r}" for c, f, v, _ in BAD_VALUES])
def test_bad_values_name_the_field_and_the_value(config_class, field, value, shown) -> None:
    with pytest.raises(ValueError) as err:
        config_class(**{field: value})
    message = str(err.value)
    assert message.startswith(field) and shown in message, message


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize(("size", "message"), [
    ((2**20, 2**20), r"^image_size\[0\] \(height\) must be >= 1 and <= 8192, got 1048576$"),
    ((256, 16384), r"^image_size\[1\] \(width\) must be >= 1 and <= 8192, got 16384$"),
    ((0, 256), r"^image_size\[0\] \(height\) must be >= 1 and <= 8192, got 0$"),
    ((256,), r"^image_size must be \(height, width\), got \(256,\)$"),
    ("256", r"^image_size must be \(height, width\), got '256'$"),
    ((256.5, 256), r"^image_size\[0\] \(height\) must be an integer, got 256.5$"),
])
def test_image_size_is_bounded_for_every_family(family: str, size, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FAMILIES[family][0](image_size=size)


@pytest.mark.parametrize(("config_class", "overrides", "divisor"), [
    (Pix2PixConfig, {}, 256), (Pix2PixHDConfig, {}, 16), (CRNConfig, {}, 64), (SPADEConfig, {}, 32),
    (SPADEConfig, {"num_upsampling_layers": "most"}, 128), (SEANConfig, {}, 32), (CoCosNetConfig, {}, 32),
])
def test_the_largest_image_side_is_allowed_where_the_architecture_divides_it(config_class, overrides, divisor) -> None:
    """MAX_IMAGE_SIDE is a multiple of every architecture's divisor, and one divisor less is refused."""
    assert config_class(**overrides, image_size=(MAX_IMAGE_SIDE, MAX_IMAGE_SIDE)).image_size == [8192, 8192]
    with pytest.raises(ValueError, match=f"divisible by .*{divisor}"):
        config_class(**overrides, image_size=(MAX_IMAGE_SIDE - divisor // 2, MAX_IMAGE_SIDE))


def test_ignore_index_must_not_be_a_class_with_a_dontcare_channel() -> None:
    with pytest.raises(ValueError, match=r"^ignore_index 100 is a class id \(0..149\) .* e.g. 255$"):
        SPADEConfig(ignore_index=100)
    with pytest.raises(ValueError, match=r"ignore_index 255 is a class id \(0..299\) .* e.g. 300$"):
        SPADEConfig(label_nc=300)
    assert SPADEConfig(label_nc=300, ignore_index=300).num_label_channels == 301
    assert SPADEConfig(label_nc=300, contain_dontcare_label=False).semantic_nc == 300  # ignore_index unused


def test_crn_lists_name_the_bad_entry() -> None:
    with pytest.raises(ValueError, match=r"^module_channels\[2\] must be >= 1 and <= 4096, got 1000000$"):
        CRNConfig(module_channels=[8, 8, 10**6], image_size=(16, 32))
    with pytest.raises(ValueError, match=r"^label_to_channel\[3\] must be >= 0 and <= 4096, got -1$"):
        CRNConfig(label_nc=4, contain_dontcare_label=False, label_to_channel=[0, 1, 2, -1], image_size=(64, 64))


def test_layers_whose_size_multiplies_fields_are_bounded() -> None:
    SPADEConfig(use_vae=True, z_dim=256, ngf=64, image_size=(1024, 1024))  # 2**28 weights: fine
    with pytest.raises(ValueError, match=r"^the VAE's projection .* 274,877,906,944 weights \(z_dim=4096 x 16 \* "
                                         r"ngf=64 x latent grid 256x256"):
        SPADEConfig(use_vae=True, z_dim=4096, ngf=64, image_size=(8192, 8192))
    SPADEConfig(use_vae=False, z_dim=4096, ngf=64, image_size=(8192, 8192))  # no projection without the VAE
    with pytest.raises(ValueError, match=r"^each SEAN layer's per-class style maps .* \(4097 semantic channels"):
        SEANConfig(label_nc=4096, contain_dontcare_label=True, ignore_index=4096, style_dim=1024)


def _zeros_like_inputs(config) -> dict:
    """label_map (+ instance map, style or exemplar image and its label map): every input any model below takes."""
    label_map = torch.zeros(1, *config.image_size, dtype=torch.long)
    image = torch.zeros(1, 3, *config.image_size)
    if isinstance(config, CoCosNetConfig):
        return {"label_map": label_map, "exemplar": image, "exemplar_label_map": label_map}
    if isinstance(config, SEANConfig):
        return {"label_map": label_map, "style_image": image, "style_label_map": label_map}
    inputs = {"label_map": label_map}
    if config.use_instance_edges:
        inputs["instance_map"] = label_map
    if isinstance(config, Pix2PixHDConfig) and config.use_features:
        inputs["style_image"] = image
    return inputs


@pytest.mark.parametrize(("model_classes", "config"), [
    ((SPADEModel, SPADEDiscriminator), SPADEConfig(ngf=2, num_upsampling_layers="most", n_layers_d=1, num_d=1,
                                                   image_size=(128, 128))),
    ((SEANModel, SEANDiscriminator), SEANConfig(ngf=1, style_encoder_ngf=1, style_dim=1, n_layers_d=1,
                                                spade_kernel_size=1)),
    ((CoCosNetModel, CoCosNetDiscriminator), CoCosNetConfig(ngf=1, param_free_norm="instance", use_attention=False,
                                                            n_layers_d=2, ndf=1, match_kernel=1, adaptor_kernel_size=4,
                                                            warp_stride=2)),
    ((CoCosNetModel, CoCosNetDiscriminator), CoCosNetConfig(ngf=2, use_attention=True, n_layers_d=2, ndf=8)),
    ((SPADEModel,), SPADEConfig(ngf=4, num_upsampling_layers="most", param_free_norm="positional",
                                image_size=(128, 128))),
    ((Pix2PixModel, Pix2PixDiscriminator), Pix2PixConfig(ngf=1, num_downs=5, ndf=1, n_layers_d=1,
                                                         image_size=(32, 32))),
    ((Pix2PixHDModel, Pix2PixHDDiscriminator), Pix2PixHDConfig(ngf=1, n_downsample_global=0, n_blocks_global=0,
                                                               feature_mode="instance", n_downsample_e=0, feat_num=1,
                                                               nef=1, ndf=1, n_layers_d=1, num_d=1,
                                                               image_size=(8, 8))),
    ((Pix2PixHDModel,), Pix2PixHDConfig(generator_type="local", n_local_enhancers=1, ngf=1, n_downsample_global=0,
                                        n_blocks_global=0, n_blocks_local=0, image_size=(8, 8))),
    ((CRNModel,), CRNConfig(module_channels=[1], num_outputs=1, image_size=(8, 8))),
], ids=["spade", "sean", "cocosnet", "cocosnet-attention", "spade-most-positional", "pix2pix", "pix2pixhd",
         "pix2pixhd-local", "crn"])
def test_the_smallest_allowed_networks_build_and_run(model_classes, config) -> None:
    """The lower bounds are real: networks at the smallest allowed settings build and produce an image."""
    model = model_classes[0](config).eval()
    for extra in model_classes[1:]:
        extra(config)
    with torch.no_grad():
        output = model(**_zeros_like_inputs(config), generator=torch.Generator().manual_seed(0))
    assert output.images.shape[-2:] == tuple(config.image_size) and torch.isfinite(output.images).all()


def test_cocosnet_attention_widths_are_checked() -> None:
    with pytest.raises(ValueError, match=r"^ngf must be even with use_attention .* got 3$"):
        CoCosNetConfig(ngf=3)
    CoCosNetConfig(ngf=3, use_attention=False)
    with pytest.raises(ValueError, match=r"^ndf \* 2\*\*\(n_layers_d - 2\) = 4 must be divisible by 8 .* ndf=4, "
                                         r"n_layers_d=2$"):
        CoCosNetConfig(ndf=4, n_layers_d=2)
    CoCosNetConfig(ndf=4, n_layers_d=3)


# ---------------------------------------------------------------------------------------------- after construction
def test_keyword_overrides_and_saving_are_validated_too(tmp_path: Path) -> None:
    config = SPADEConfig(ngf=8, image_size=(64, 64))
    config.save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="^ngf must be >= 1 and <= 256 .*, got 1000000$"):
        SPADEConfig.from_pretrained(tmp_path, ngf=10**6)
    loaded, unused = SPADEConfig.from_pretrained(tmp_path, ngf=16, return_unused_kwargs=True)
    assert loaded.ngf == 16 and unused == {}
    config.z_dim = 10**9  # set after construction: caught before it reaches a config.json
    with pytest.raises(ValueError, match="^z_dim must be >= 1 and <= 4096, got 1000000000$"):
        config.save_pretrained(tmp_path / "bad")
    assert not (tmp_path / "bad" / "config.json").exists()


def test_processor_size_is_bounded() -> None:
    assert LabelMapProcessor(size=MAX_IMAGE_SIDE).size == {"height": 8192, "width": 8192}
    for size in (16384, (256, 16384), {"height": 2**20, "width": 8}):
        with pytest.raises(ValueError, match="^size must be at most 8192 pixels per side"):
            LabelMapProcessor(size=size)
    processor = LabelMapProcessor(label_space="ade20k", size=64)
    with pytest.raises(ValueError, match="^size must be at most 8192 pixels per side .* height=16384, width=16384$"):
        processor(np.zeros((8, 8), dtype=np.uint8), size=(16384, 16384))


# ---------------------------------------------------------------------------------------------- loading
# (family, fields written into its config.json, field the error must name); every one of these made torch try to
# allocate gigabytes to terabytes before configs were validated.
BAD_CONFIG_FILES = [
    ("spade", {"ngf": 10**6}, "ngf"),
    ("spade", {"ngf": 10**4}, "ngf"),
    ("spade", {"z_dim": 10**9, "use_vae": True}, "z_dim"),
    ("spade", {"label_nc": 10**9}, "label_nc"),
    ("spade", {"spade_kernel_size": 10001}, "spade_kernel_size"),
    ("spade", {"image_size": [2**20, 2**20], "use_vae": True}, "image_size"),
    ("spade", {"ngf": 0}, "ngf"),
    ("spade", {"label_space": "no-such-space"}, "label_space"),
    ("sean", {"style_dim": 10**9}, "style_dim"),
    ("sean", {"ngf": 10**5}, "ngf"),
    ("cocosnet", {"match_kernel": 10001}, "match_kernel"),
    ("cocosnet", {"ngf": 10**6}, "ngf"),
    ("pix2pix", {"ngf": 10**6}, "ngf"),
    ("pix2pixhd", {"ngf": 10**4}, "ngf"),
    ("crn", {"module_channels": [10**6] * 7}, "module_channels[0]"),
]

_LOADER = textwrap.dedent("""
    import json, resource, sys, tempfile

    from labelsynth import (CoCosNetModel, CRNModel, Pix2PixHDModel, Pix2PixModel, SEANModel, SPADEConfig,
                            SPADEModel)

    MODELS = {"spade": SPADEModel, "sean": SEANModel, "cocosnet": CoCosNetModel, "pix2pix": Pix2PixModel,
              "pix2pixhd": Pix2PixHDModel, "crn": CRNModel}

    def status(key):
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith(key + ":"))

    # Warm up the whole loading path on a small valid model, so that what follows measures the bad loads only.
    with tempfile.TemporaryDirectory() as folder:
        SPADEModel(SPADEConfig(ngf=8, image_size=(64, 64))).save_pretrained(folder)
        SPADEModel.from_pretrained(folder)
    # Should validation regress, a huge allocation fails here instead of exhausting the machine.
    resource.setrlimit(resource.RLIMIT_AS, (status("VmSize") + 2**31, resource.RLIM_INFINITY))
    results = []
    for family, folder in json.loads(sys.argv[1]):
        before = status("VmHWM")
        try:
            MODELS[family].from_pretrained(folder)
            outcome = "loaded"
        except ValueError as err:
            outcome = "ValueError: " + str(err)
        except BaseException as err:  # a regression: report it rather than crash the run
            outcome = f"{type(err).__name__}: {err}"
        results.append({"outcome": outcome, "peak_growth": status("VmHWM") - before})
    print(json.dumps(results))
""")


def test_bad_config_json_fails_in_from_pretrained_before_any_allocation(tmp_path: Path) -> None:
    jobs = []
    for i, (family, fields, _) in enumerate(BAD_CONFIG_FILES):
        folder = tmp_path / f"{i}-{family}"
        folder.mkdir()
        config = FAMILIES[family][0]().to_dict()
        (folder / "config.json").write_text(json.dumps({**config, **fields}))
        jobs.append((family, str(folder)))
    run = subprocess.run([sys.executable, "-c", _LOADER, json.dumps(jobs)], check=False, capture_output=True, text=True,
                         timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads(run.stdout.strip().splitlines()[-1])
    for (family, fields, field), result in zip(BAD_CONFIG_FILES, results):
        assert result["outcome"].startswith(f"ValueError: {field}"), (family, fields, result["outcome"])
        # The model would need gigabytes; loading the bad file may not raise the peak by more than a few MiB.
        assert result["peak_growth"] < 32 * 2**20, (family, fields, result["peak_growth"])
