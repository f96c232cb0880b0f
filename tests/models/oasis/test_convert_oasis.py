"""Converter from official boschresearch/OASIS checkpoints.

`tests/fixtures/oasis_original_keys.json` lists every key and shape of the official G / EMA / D state dicts of the
three presets, as the official classes produce them; the converter must map exactly those onto our models. (Output
parity with the original code, max abs diff <= 1e-4 on all three presets, was checked outside the repository against
the original implementation: see docs/models/oasis.md.)
"""

from pathlib import Path

import pytest
import torch
from helpers import randomize_weights
from original_checkpoints import meta_state, original_keys, shapes
from original_checkpoints import oasis_original_discriminator as to_original_discriminator
from original_checkpoints import oasis_original_generator as to_original_generator
from original_checkpoints import tiny_oasis_config as tiny
from original_checkpoints import write_oasis_checkpoint as write_original_checkpoint

from labelsynth import OASISDiscriminator, OASISModel
from labelsynth.cli import main
from labelsynth.models.oasis.convert_oasis_original_checkpoint import (
    convert_discriminator_state_dict,
    convert_generator_state_dict,
    convert_oasis_checkpoint,
    infer_config,
)

ORIGINAL_KEYS = original_keys("oasis")
PRESETS = ("ade20k", "cityscapes", "coco-stuff")
@pytest.mark.parametrize("preset", PRESETS)
def test_original_key_layout_maps_onto_the_model(preset: str) -> None:
    """Full size: the official G, EMA and D state dicts convert to exactly our keys and shapes, and back."""
    config = infer_config(meta_state(ORIGINAL_KEYS["EMA"][preset]), preset)
    assert config.ngf == 64 and config.z_dim == 64 and config.spectral_norm
    with torch.device("meta"):
        model = OASISModel(config)
        netd = OASISDiscriminator(config)
    for net in ("G", "EMA"):
        converted = convert_generator_state_dict(meta_state(ORIGINAL_KEYS[net][preset]))
        assert shapes(converted) == shapes(model.state_dict())
    assert shapes(convert_discriminator_state_dict(meta_state(ORIGINAL_KEYS["D"][preset]))) == shapes(netd.state_dict())
    for net, ours in (("G", to_original_generator(model.state_dict())),
                      ("D", to_original_discriminator(netd.state_dict()))):
        assert shapes(ours) == {k: tuple(v) for k, v in ORIGINAL_KEYS[net][preset].items()}


def moved_statistics(model: OASISModel, seed: int) -> OASISModel:
    randomize_weights(model, seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.5)
            m.running_var.uniform_(0.5, 2)
    return model.eval()


@pytest.mark.parametrize("preset", PRESETS)
def test_converted_checkpoint_reproduces_the_model(tmp_path: Path, preset: str) -> None:
    ema, g = moved_statistics(OASISModel(tiny(preset)), 0), moved_statistics(OASISModel(tiny(preset)), 1)
    netd = OASISDiscriminator(tiny(preset))
    randomize_weights(netd, 2)
    write_original_checkpoint(tmp_path / "ckpt", ema, g, netd)
    converted, converted_d = convert_oasis_checkpoint(tmp_path / "ckpt", preset=preset, image_size=(64, 64),
                                                      discriminator=True)
    raw_g = convert_oasis_checkpoint(tmp_path / "ckpt" / "models" / "best_G.pth", preset=preset, image_size=(64, 64))
    labels = torch.randint(0, tiny(preset).max_label_id + 1, (2, 64, 64))
    noise = torch.randn(2, 64)
    with torch.no_grad():
        for source, target in ((ema, converted), (g, raw_g)):
            assert torch.equal(source(labels, noise=noise).images, target(labels, noise=noise).images)
        image = torch.rand(1, 3, 64, 64) * 2 - 1
        assert torch.equal(netd.eval()(image), converted_d(image))
    assert "best_EMA.pth" in converted.card_kwargs["training"]["converted_from"]
    assert converted.config.label_shift == (preset == "coco-stuff")


def test_unknown_missing_and_misshaped_keys_are_listed_in_one_error(tmp_path: Path) -> None:
    state = to_original_generator(OASISModel(tiny()).state_dict())
    state["body.0.extra_layer.weight"] = torch.zeros(1)
    del state["body.5.conv_1.bias"]
    state["conv_img.bias"] = torch.zeros(4)
    (tmp_path / "models").mkdir()
    torch.save(state, tmp_path / "models" / "best_EMA.pth")
    with pytest.raises(ValueError) as error:
        convert_oasis_checkpoint(tmp_path, image_size=(64, 64))
    message = str(error.value)
    assert "missing keys (1): generator.body.5.conv_1.bias" in message
    assert "unexpected keys (1): generator.body.0.extra_layer.weight" in message
    assert "generator.conv_img.bias" in message and "(4,)" in message and "(3,)" in message


def test_wrong_preset_wrong_file_and_missing_files_are_explained(tmp_path: Path) -> None:
    write_original_checkpoint(tmp_path / "ade", OASISModel(tiny()))
    with pytest.raises(ValueError, match="first conv takes 215 channels but preset 'cityscapes' gives z_dim 64 \\+ 35"):
        convert_oasis_checkpoint(tmp_path / "ade", preset="cityscapes")
    with pytest.raises(FileNotFoundError, match="no best_G.pth in"):
        convert_oasis_checkpoint(tmp_path / "ade", weights="G")
    with pytest.raises(FileNotFoundError, match="no best_D.pth in"):
        convert_oasis_checkpoint(tmp_path / "ade", image_size=(64, 64), discriminator=True)
    with pytest.raises(ValueError, match="weights must be one of"):
        convert_oasis_checkpoint(tmp_path / "ade", weights="D")
    netd = OASISDiscriminator(tiny())
    torch.save(to_original_discriminator(netd.state_dict()), tmp_path / "d.pth")
    with pytest.raises(ValueError, match="does not look like an OASIS generator"):
        convert_oasis_checkpoint(tmp_path / "d.pth")


def test_cli_convert_oasis(tmp_path: Path) -> None:
    model = moved_statistics(OASISModel(tiny("coco-stuff")), 0)
    write_original_checkpoint(tmp_path / "oasis_coco_pretrained", model, iteration="latest")
    out = tmp_path / "converted"
    status = main(["convert", "oasis", str(tmp_path / "oasis_coco_pretrained"), str(out), "--preset", "coco",
                   "--iter", "latest", "--image-size", "64", "64"])
    assert status == 0
    assert {"config.json", "model.safetensors", "preprocessor_config.json"} <= {p.name for p in out.iterdir()}
    loaded = OASISModel.from_pretrained(out)
    labels = torch.tensor([[3, 255]]).repeat(64, 32)[None]
    with torch.no_grad():
        noise = torch.ones(1, 64)
        assert torch.equal(loaded(labels, noise=noise).images, model(labels, noise=noise).images)
