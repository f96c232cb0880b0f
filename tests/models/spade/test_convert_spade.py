"""Converter from official NVlabs/SPADE checkpoints.

`tests/fixtures/spade_original_keys.json` lists every key and shape of the official G / E / D state dicts, as the
official classes produce them; the converter must map exactly those onto our models. (Output parity with the original
code, max abs diff <= 1e-4, was checked outside the repository against the original implementation.)
"""

from pathlib import Path

import pytest
import torch
from original_checkpoints import meta_state, original_keys, shapes
from original_checkpoints import spade_original_layout as to_original_layout
from original_checkpoints import write_spade_checkpoint as write_original_checkpoint

from labelsynth import SPADEConfig, SPADEDiscriminator, SPADEModel
from labelsynth.models.spade.convert_spade_original_checkpoint import (
    convert_discriminator_state_dict,
    convert_generator_state_dict,
    convert_spade_checkpoint,
    infer_config,
)

ORIGINAL_KEYS = original_keys("spade")
PRESET_OF_CASE = {"ade20k": "ade20k", "ade20k_vae": "ade20k", "cityscapes": "cityscapes", "coco": "coco-stuff"}


@pytest.mark.parametrize("case", sorted(ORIGINAL_KEYS["G"]))
def test_original_key_layout_maps_onto_the_model(case: str) -> None:
    generator = meta_state(ORIGINAL_KEYS["G"][case])
    config = infer_config(generator, PRESET_OF_CASE[case])
    assert config.use_vae == (case == "ade20k_vae")
    encoder = meta_state(ORIGINAL_KEYS["E"]["ade20k_vae"]) if config.use_vae else None
    with torch.device("meta"):
        model = SPADEModel(config)
    assert shapes(convert_generator_state_dict(generator, encoder)) == shapes(model.state_dict())


def test_original_discriminator_layout_maps_onto_the_model() -> None:
    with torch.device("meta"):
        netd = SPADEDiscriminator(SPADEConfig.for_dataset("ade20k"))
    converted = convert_discriminator_state_dict(meta_state(ORIGINAL_KEYS["D"]["ade20k"]))
    assert shapes(converted) == shapes(netd.state_dict())


def test_converted_checkpoint_reproduces_the_model(tmp_path: Path) -> None:
    config = SPADEConfig.for_dataset("ade20k", use_vae=True, ngf=8, image_size=(64, 64))
    model = SPADEModel(config).eval()
    netd = SPADEDiscriminator(SPADEConfig.for_dataset("ade20k"))  # full-size D: its layout is the official one
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_var.uniform_(0.5, 2)
    write_original_checkpoint(tmp_path / "ckpt", model, netd)
    converted, converted_d = convert_spade_checkpoint(tmp_path / "ckpt", preset="ade20k", image_size=(64, 64),
                                                      discriminator=True)
    labels = torch.randint(0, 151, (2, 64, 64))
    style = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        expected = model(labels, style_image=style, noise=torch.ones(2, 256)).images
        got = converted(labels, style_image=style, noise=torch.ones(2, 256)).images
    assert torch.equal(expected, got)
    for key, value in netd.state_dict().items():
        assert torch.equal(converted_d.state_dict()[key], value), key
    assert "latest_net_G.pth" in converted.card_kwargs["training"]["converted_from"]


def test_unknown_and_missing_keys_are_listed(tmp_path: Path) -> None:
    model = SPADEModel(SPADEConfig.for_dataset("ade20k", ngf=8, image_size=(64, 64)))
    state = to_original_layout(model.state_dict(), "generator.")
    state["head_0.extra_layer.weight"] = torch.zeros(1)
    del state["up_3.conv_1.bias"]
    (tmp_path / "ckpt").mkdir()
    torch.save(state, tmp_path / "ckpt" / "latest_net_G.pth")
    with pytest.raises(ValueError) as error:
        convert_spade_checkpoint(tmp_path / "ckpt", image_size=(64, 64))
    message = str(error.value)
    assert "missing keys (1): generator.up_3.conv_1.bias" in message
    assert "unexpected keys (1): generator.head_0.extra_layer.weight" in message


def test_wrong_preset_and_missing_files_are_explained(tmp_path: Path) -> None:
    model = SPADEModel(SPADEConfig.for_dataset("ade20k", ngf=8, image_size=(64, 64)))
    write_original_checkpoint(tmp_path / "ade", model)
    with pytest.raises(ValueError, match="take 151 semantic channels but preset 'cityscapes' gives 36"):
        convert_spade_checkpoint(tmp_path / "ade", preset="cityscapes")
    vae = SPADEModel(SPADEConfig.for_dataset("ade20k", use_vae=True, ngf=8, image_size=(64, 64)))
    write_original_checkpoint(tmp_path / "vae", vae)
    (tmp_path / "vae" / "latest_net_E.pth").unlink()
    with pytest.raises(FileNotFoundError, match="needs the style encoder latest_net_E.pth"):
        convert_spade_checkpoint(tmp_path / "vae", image_size=(64, 64))
    with pytest.raises(FileNotFoundError, match="no generator checkpoint"):
        convert_spade_checkpoint(tmp_path / "empty_dir_does_not_exist_yet")
    torch.save({"weight": torch.zeros(1)}, tmp_path / "not_spade.pth")
    with pytest.raises(ValueError, match="does not look like a SPADE generator"):
        convert_spade_checkpoint(tmp_path / "not_spade.pth")


class _PickledObject:
    """A custom class: unpickling it would import (and could run) code from outside torch."""


def test_pickled_code_is_refused(tmp_path: Path) -> None:
    """Original checkpoints are loaded with weights_only=True: a pickle holding other objects is refused with our own
    message (naming the file and the class), never torch's advice to retry with weights_only=False."""
    for name, bad in (("config.pth", SPADEConfig()), ("custom.pth", _PickledObject())):
        torch.save({"fc.weight": torch.zeros(1), "bad": bad}, tmp_path / name)
        with pytest.raises(ValueError) as info:
            convert_spade_checkpoint(tmp_path / name)
        message = str(info.value)
        assert str(tmp_path / name) in message and "cannot be loaded safely" in message and "refused" in message
        assert type(bad).__name__ in message
        assert "weights_only" not in message and "trust" not in message and "safe_globals" not in message
