"""Converter from official microsoft/CoCosNet checkpoints (`latest_net_G.pth` + `latest_net_Corr.pth` [+ D]).

`tests/fixtures/cocosnet_original_keys.json` lists every key and shape of the official netG / netCorr / netD state
dicts of the ADE20K model, as the official classes produce them. (Output parity with the original code was checked
outside the repository: see the CoCosNet section of the README.)
"""

from pathlib import Path

import pytest
import torch
from helpers import randomize_weights
from original_checkpoints import meta_state, original_keys, shapes
from original_checkpoints import write_cocosnet_checkpoint as write_original_checkpoint

from labelsynth import CoCosNetConfig, CoCosNetDiscriminator, CoCosNetModel
from labelsynth.cli import main as cli_main
from labelsynth.models.cocosnet.convert_cocosnet_original_checkpoint import (
    convert_correspondence_state_dict,
    convert_discriminator_state_dict,
    convert_generator_state_dict,
    infer_config,
)

ORIGINAL = original_keys("cocosnet")


def test_official_key_layout_maps_onto_the_model() -> None:
    generator, correspondence = meta_state(ORIGINAL["G"]), meta_state(ORIGINAL["Corr"])
    config = infer_config(generator, correspondence, "ade20k")
    assert (config.ngf, config.maskmix, config.use_attention, config.param_free_norm) == (64, True, True,
                                                                                         "positional")
    with torch.device("meta"):
        model = CoCosNetModel(config)
        netd = CoCosNetDiscriminator(config)
    converted = {**convert_generator_state_dict(generator), **convert_correspondence_state_dict(correspondence)}
    assert shapes(converted) == shapes(model.state_dict())
    d_state = convert_discriminator_state_dict(meta_state(ORIGINAL["D"]))
    assert shapes(d_state) == shapes(netd.state_dict())  # the unused `dec` decoder dropped
    assert ORIGINAL["parameters"]["G"] == sum(p.numel() for p in model.generator.parameters())


def test_cli_convert_round_trip(tmp_path: Path) -> None:
    config = CoCosNetConfig(ngf=8, spade_hidden_nc=16, image_size=(64, 64))
    model = CoCosNetModel(config).eval()
    randomize_weights(model, 1)
    write_original_checkpoint(tmp_path / "ckpt", model, epoch="90")
    status = cli_main(["convert", "cocosnet", str(tmp_path / "ckpt"), str(tmp_path / "out"), "--epoch", "90",
                       "--noise-for-mask", "--warp-bilinear"])
    assert status == 0
    converted = CoCosNetModel.from_pretrained(tmp_path / "out")
    assert converted.config.noise_for_mask and converted.config.warp_upsampling == "bilinear"
    assert (tmp_path / "out" / "preprocessor_config.json").is_file() and (tmp_path / "out" / "README.md").is_file()
    model.config.noise_for_mask, model.config.warp_upsampling = True, "bilinear"
    labels = torch.randint(0, 151, (1, 64, 64))
    exemplar = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        expected = model(labels, exemplar=exemplar, generator=torch.Generator().manual_seed(0)).images
        got = converted(labels, exemplar=exemplar, generator=torch.Generator().manual_seed(0)).images
    # identical weights; outputs equal up to float rounding (memory-mapped tensors take other kernel paths)
    original_state = model.state_dict()
    assert all(torch.equal(original_state[k], v) for k, v in converted.state_dict().items())
    torch.testing.assert_close(got, expected, atol=1e-3, rtol=0)


def test_converter_errors_name_the_problem(tmp_path: Path, capsys) -> None:
    config = CoCosNetConfig(ngf=8, spade_hidden_nc=16, image_size=(64, 64))
    model = CoCosNetModel(config)
    write_original_checkpoint(tmp_path / "ckpt", model)
    assert cli_main(["convert", "cocosnet", str(tmp_path / "ckpt"), str(tmp_path / "out"), "--epoch", "7"]) == 2
    assert "7_net_G.pth not found" in capsys.readouterr().err
    corr = torch.load(tmp_path / "ckpt" / "latest_net_Corr.pth")
    corr["theta.weight"] = corr["theta.weight"][:, :10]
    corr["extra.weight"] = torch.zeros(1)
    torch.save(corr, tmp_path / "ckpt" / "latest_net_Corr.pth")
    assert cli_main(["convert", "cocosnet", str(tmp_path / "ckpt"), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "unexpected keys (1): correspondence.extra.weight" in err and "correspondence.theta.weight" in err
    generator = meta_state(ORIGINAL["G"])
    generator["fc.weight"] = torch.empty(1024, 3 + 19, 3, 3, device="meta")
    with pytest.raises(ValueError, match="takes 19 label channels"):
        infer_config(generator, meta_state(ORIGINAL["Corr"]), "ade20k")
