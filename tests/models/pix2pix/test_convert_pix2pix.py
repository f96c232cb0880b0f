"""Converter from official pix2pix checkpoints (junyanz/pytorch-CycleGAN-and-pix2pix).

`tests/fixtures/pix2pix_original_keys.json` lists every key and shape of official G / D state dicts as the official
classes produce them (U-Net 256/128, BatchNorm, InstanceNorm, the 2018 InstanceNorm with running statistics, one-hot
input; basic and deeper PatchGANs); the converter must map exactly those onto our models. Output parity with the
original code (max abs diff 0.0 in float32, eval and original test modes) was checked outside the repository.
"""

import json
from pathlib import Path

import pytest
import torch
from original_checkpoints import meta_state, original_keys, shapes
from original_checkpoints import pix2pix_original_discriminator as to_original_discriminator
from original_checkpoints import pix2pix_original_generator as to_original_generator
from PIL import Image

from labelsynth import Pix2PixConfig, Pix2PixDiscriminator, Pix2PixModel
from labelsynth.cli import main as cli_main
from labelsynth.models.pix2pix.convert_pix2pix_original_checkpoint import (
    convert_discriminator_state_dict,
    convert_generator_state_dict,
    convert_pix2pix_checkpoint,
    infer_config,
)

ORIGINAL_KEYS = original_keys("pix2pix")


@pytest.mark.parametrize("case", sorted(ORIGINAL_KEYS["G"]))
def test_original_generator_layouts_map_onto_the_model(case: str) -> None:
    generator = meta_state(ORIGINAL_KEYS["G"][case])
    config = infer_config(generator, "cityscapes")
    assert config.num_downs == (7 if "unet_128" in case else 8)
    assert config.norm == ("instance" if "instance" in case else "batch")
    assert config.input_encoding == ("one_hot" if "onehot" in case else "color")
    with torch.device("meta"):
        model = Pix2PixModel(config)
    assert shapes(convert_generator_state_dict(generator)) == shapes(model.state_dict())
    if "2018" not in case:  # the inverse mapping of the tests gives back exactly the official keys
        assert shapes(to_original_generator(model)) == {k: tuple(v) for k, v in ORIGINAL_KEYS["G"][case].items()}


@pytest.mark.parametrize("case", sorted(ORIGINAL_KEYS["D"]))
def test_original_discriminator_layouts_map_onto_the_model(case: str) -> None:
    layout = ORIGINAL_KEYS["D"][case]
    n_layers = {"basic_batch_6ch": 3, "basic_instance_6ch": 3, "n_layers_5_batch_38ch": 5}[case]
    input_encoding = "one_hot" if "38ch" in case else "color"  # 35 one-hot channels + 3
    config = Pix2PixConfig.for_dataset("cityscapes", norm="instance" if "instance" in case else "batch",
                                       n_layers_d=n_layers, input_encoding=input_encoding)
    with torch.device("meta"):
        netd = Pix2PixDiscriminator(config)
    assert shapes(convert_discriminator_state_dict(meta_state(layout))) == shapes(netd.state_dict())
    assert shapes(to_original_discriminator(netd)) == {k: tuple(v) for k, v in layout.items()}


def randomized(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if tensor.is_floating_point():
                offset = 1.0 if name.endswith("running_var") else 0.0
                tensor.copy_(torch.rand(tensor.shape, generator=generator) * 0.5 + offset)
    return module


def write_checkpoint(folder: Path, model: Pix2PixModel, netd: Pix2PixDiscriminator | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(to_original_generator(model), folder / "latest_net_G.pth")
    if netd is not None:
        torch.save(to_original_discriminator(netd), folder / "latest_net_D.pth")


def test_converted_checkpoint_reproduces_the_model(tmp_path: Path) -> None:
    config = Pix2PixConfig.for_dataset("cityscapes", ngf=8, ndf=8, num_downs=6, image_size=(64, 64))
    model, netd = randomized(Pix2PixModel(config).eval(), 0), randomized(Pix2PixDiscriminator(config).eval(), 1)
    write_checkpoint(tmp_path / "ckpt", model, netd)
    converted, converted_d = convert_pix2pix_checkpoint(tmp_path / "ckpt", preset="cityscapes", image_size=(64, 64),
                                                        discriminator=True)
    assert converted.config.to_diff_dict() == model.config.to_diff_dict()
    ids = torch.randint(0, 35, (2, 64, 64))
    with torch.no_grad():
        for mode in ("eval", "original"):
            expected = model(ids, test_mode=mode, generator=torch.Generator().manual_seed(0)).images
            got = converted(ids, test_mode=mode, generator=torch.Generator().manual_seed(0)).images
            assert torch.equal(expected, got), mode
    for key, value in netd.state_dict().items():
        assert torch.equal(converted_d.state_dict()[key], value), key
    assert "latest_net_G.pth" in converted.card_kwargs["training"]["converted_from"]


def test_old_instance_norm_statistics_are_dropped_and_old_batchnorm_files_load(tmp_path: Path) -> None:
    config = Pix2PixConfig.for_dataset("facades", norm="instance", ngf=8, num_downs=6, image_size=(64, 64))
    model = randomized(Pix2PixModel(config).eval(), 2)
    state = to_original_generator(model)
    state["model.model.1.model.2.running_mean"] = torch.zeros(16)  # what PyTorch < 0.4 / the 2018 code wrote
    state["model.model.1.model.2.running_var"] = torch.ones(16)
    torch.save(state, tmp_path / "instance.pth")
    converted = convert_pix2pix_checkpoint(tmp_path / "instance.pth", image_size=(64, 64))
    ids = torch.randint(0, 12, (1, 64, 64))
    with torch.no_grad():
        assert torch.equal(converted(ids, test_mode="eval").images, model(ids, test_mode="eval").images)

    batch = Pix2PixModel(Pix2PixConfig.for_dataset("facades", ngf=8, num_downs=6, image_size=(64, 64)))
    state = {k: v for k, v in to_original_generator(batch).items() if not k.endswith("num_batches_tracked")}
    torch.save(state, tmp_path / "old_batchnorm.pth")
    assert convert_pix2pix_checkpoint(tmp_path / "old_batchnorm.pth", image_size=(64, 64)).config.norm == "batch"


def test_unknown_missing_and_mismatched_inputs_are_explained(tmp_path: Path) -> None:
    model = Pix2PixModel(Pix2PixConfig.for_dataset("facades", ngf=8, num_downs=6, image_size=(64, 64)))
    state = to_original_generator(model)
    state["model.model.1.model.9.weight"] = torch.zeros(1)
    state["extra.weight"] = torch.zeros(1)
    del state["model.model.1.model.2.bias"]
    torch.save(state, tmp_path / "broken.pth")
    with pytest.raises(ValueError) as error:
        convert_pix2pix_checkpoint(tmp_path / "broken.pth", image_size=(64, 64))
    message = str(error.value)
    assert "missing keys (1): generator.levels.1.down_norm.bias" in message
    assert "unexpected keys (2): model.model.1.model.9.weight, extra.weight" in message

    one_hot = Pix2PixModel(Pix2PixConfig.for_dataset("cityscapes", input_encoding="one_hot", ngf=8, num_downs=6,
                                                     image_size=(64, 64)))
    torch.save(to_original_generator(one_hot), tmp_path / "one_hot.pth")
    with pytest.raises(ValueError, match="takes 35 input channels but preset 'facades' gives 12"):
        convert_pix2pix_checkpoint(tmp_path / "one_hot.pth", preset="facades", image_size=(64, 64))
    with pytest.raises(FileNotFoundError, match="no generator checkpoint"):
        convert_pix2pix_checkpoint(tmp_path / "no_such_folder")
    torch.save({"fc.weight": torch.zeros(1)}, tmp_path / "not_pix2pix.pth")
    with pytest.raises(ValueError, match="does not look like a pix2pix U-Net"):
        convert_pix2pix_checkpoint(tmp_path / "not_pix2pix.pth")


def test_cli_convert_then_generate(tmp_path: Path) -> None:
    model = randomized(Pix2PixModel(Pix2PixConfig.for_dataset("cityscapes", ngf=8, num_downs=6,
                                                               image_size=(64, 64))), 3)
    write_checkpoint(tmp_path / "ckpt", model, randomized(Pix2PixDiscriminator(model.config), 4))
    out = tmp_path / "converted"
    assert cli_main(["convert", "pix2pix", str(tmp_path / "ckpt"), str(out), "--preset", "cityscapes",
                     "--image-size", "64", "64", "--test-mode", "eval", "--with-discriminator"]) == 0
    for name in ("config.json", "model.safetensors", "preprocessor_config.json", "README.md",
                 "discriminator/model.safetensors"):
        assert (out / name).is_file(), name
    assert json.loads((out / "config.json").read_text())["test_mode"] == "eval"
    label = tmp_path / "label.png"
    Image.fromarray(torch.randint(0, 35, (100, 120)).numpy().astype("uint8"), mode="L").save(label)
    assert cli_main(["generate", "--model", str(out), "--label", str(label), "-o", str(tmp_path / "out.png")]) == 0
    assert Image.open(tmp_path / "out.png").size == (64, 64)
