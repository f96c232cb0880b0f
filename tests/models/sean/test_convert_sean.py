"""SEAN converter: the official key layout (fixture from the original classes), stacking, the CLI end to end."""

import json
import re
from pathlib import Path

import pytest
import torch
from original_checkpoints import sean_original_layout as to_original_layout
from sean_testing import block_labels, random_sean, tiny_config

from labelsynth import SEANConfig, SEANDiscriminator, SEANModel
from labelsynth.cli import main as cli_main
from labelsynth.models.sean.convert_sean_original_checkpoint import convert_generator_state_dict, infer_config
from labelsynth.models.spade.convert_spade_original_checkpoint import convert_discriminator_state_dict
from labelsynth.state_dict_utils import state_dict_mismatch

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "sean_original_keys.json"


@pytest.fixture(scope="module")
def official() -> dict[str, dict[str, list[int]]]:
    return json.loads(FIXTURE.read_text())


def test_official_layout_maps_onto_the_model(official) -> None:
    """Every key of the released CelebAMask-HQ G and D (generated from the original classes) lands on a parameter or
    buffer of the same shape; only the inner SPADE's unused BatchNorm buffers are dropped."""
    with torch.device("meta"):
        generator = {k: torch.empty(shape) for k, shape in official["G"].items()}
        discriminator = {k: torch.empty(shape) for k, shape in official["D"].items()}
        config = infer_config(generator)
        model, netd = SEANModel(config), SEANDiscriminator(config)
    assert (config.ngf, config.label_nc, config.style_dim, config.spectral_norm) == (64, 19, 512, True)
    converted = convert_generator_state_dict(generator)
    assert state_dict_mismatch(model.state_dict(), converted) is None
    dead = [k for k in generator if ".Spade.param_free_norm." in k]
    assert len(dead) == 54 and len(converted) == len(generator) - len(dead) - 15 * 19 * 2 + 15 * 2
    assert state_dict_mismatch(netd.state_dict(), convert_discriminator_state_dict(discriminator)) is None


def test_per_class_layers_are_stacked_in_numeric_order() -> None:
    state = {f"up_1.ace_0.fc_mu{j}.{kind}": torch.full((2, 2) if kind == "weight" else (2,), float(j))
             for j in range(12) for kind in ("weight", "bias")}
    converted = convert_generator_state_dict(state)
    assert converted["generator.up_1.norm_0.style_weight"][:, 0, 0].tolist() == list(range(12))
    assert converted["generator.up_1.norm_0.style_bias"][:, 0].tolist() == list(range(12))


def test_convert_cli_end_to_end(tmp_path: Path) -> None:
    model = random_sean(tiny_config())
    netd = SEANDiscriminator(model.config)
    checkpoint = tmp_path / "CelebA-HQ_pretrained"
    checkpoint.mkdir()
    torch.save(to_original_layout(model), checkpoint / "latest_net_G.pth")
    d_state = {re.sub(r"^discriminator\.discriminators\.(\d+)\.stages\.(\d+)\.", r"discriminator_\1.model\2.", k): v
               for k, v in netd.state_dict().items()}
    d_state = {k.replace(".parametrizations.weight.original", ".weight_orig").replace(
        ".parametrizations.weight.0._u", ".weight_u").replace(".parametrizations.weight.0._v", ".weight_v"): v
        for k, v in d_state.items()}
    torch.save(d_state, checkpoint / "latest_net_D.pth")

    out = tmp_path / "converted"
    assert cli_main(["convert", "sean", str(checkpoint), str(out), "--with-discriminator"]) == 0
    converted = SEANModel.from_pretrained(out)
    assert converted.config.ngf == 8 and converted.config.style_dim == 16
    labels = block_labels(1, (64, 64), seed=5)
    images = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        expected = model(labels, style_image=images, generator=torch.Generator().manual_seed(3)).images
        got = converted(labels, style_image=images, generator=torch.Generator().manual_seed(3)).images
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)  # same weights; BLAS paths may differ by round-off
    assert (out / "preprocessor_config.json").is_file() and (out / "discriminator" / "model.safetensors").is_file()
    assert "ZPdesu/SEAN" in (out / "README.md").read_text()


def test_converter_errors_name_the_problem(tmp_path: Path) -> None:
    state = to_original_layout(random_sean(tiny_config()))
    del state["up_2.ace_1.fc_mu3.weight"]
    state["up_2.ace_1.extra.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "latest_net_G.pth")
    with pytest.raises(ValueError, match=r"fc_mu layers \[0, 1, 2, 4"):
        cli_convert(tmp_path)
    del state["up_2.ace_1.fc_mu3.bias"]
    for j in range(4, 19):
        del state[f"up_2.ace_1.fc_mu{j}.weight"], state[f"up_2.ace_1.fc_mu{j}.bias"]
    torch.save(state, tmp_path / "latest_net_G.pth")
    with pytest.raises(ValueError, match="unexpected keys.*up_2.norm_1.extra.weight.*shape mismatches"):
        cli_convert(tmp_path)
    torch.save({"fc.weight": torch.zeros(1)}, tmp_path / "latest_net_G.pth")
    with pytest.raises(ValueError, match="does not look like a SEAN generator"):
        cli_convert(tmp_path)


def cli_convert(folder: Path) -> None:
    from labelsynth.models.sean.convert_sean_original_checkpoint import convert_sean_checkpoint

    convert_sean_checkpoint(folder)


def test_preset_config() -> None:
    config = SEANConfig.for_dataset("celeba-hq")
    assert (config.label_space, config.label_nc, config.semantic_nc, config.n_layers_d) == ("celebamask-hq", 19, 19, 3)
