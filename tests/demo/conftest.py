"""Fixtures of the demo tests: tiny random models of every family saved as folders (offline, seconds to build)."""

from pathlib import Path

import pytest
import torch
from helpers import randomize_weights, save_model_folder, save_tiny_model

from labelsynth import (
    CoCosNetConfig,
    CoCosNetModel,
    CRNConfig,
    CRNModel,
    OASISConfig,
    OASISModel,
    Pix2PixConfig,
    Pix2PixHDConfig,
    Pix2PixHDModel,
    Pix2PixModel,
    SEANConfig,
    SEANModel,
    SPADEConfig,
    get_label_space,
)
from labelsynth.demo.examples import draw_example

TINY = dict(ngf=4, spade_hidden_nc=8, num_upsampling_layers="normal")
TINY_PIX2PIXHD = dict(image_size=(64, 128), ngf=4, n_downsample_global=2, n_blocks_global=1, n_blocks_local=1,
                      nef=4, n_downsample_e=2, ndf=4)


@pytest.fixture(scope="session")
def city_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Cityscapes label space, instance edges, no latent (deterministic), 64x128."""
    folder = tmp_path_factory.mktemp("tiny_city")
    save_tiny_model(folder, SPADEConfig.for_dataset("cityscapes", image_size=(64, 128), **TINY))
    return folder


@pytest.fixture(scope="session")
def vae_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ADE20K label space with a VAE (the seed and the style image matter), 64x64."""
    folder = tmp_path_factory.mktemp("tiny_vae")
    save_tiny_model(folder, SPADEConfig.for_dataset("ade20k", image_size=(64, 64), use_vae=True, z_dim=8, **TINY))
    return folder


@pytest.fixture(scope="session")
def coco_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """COCO-Stuff label space (don't care + edges), deterministic, 64x64."""
    folder = tmp_path_factory.mktemp("tiny_coco")
    save_tiny_model(folder, SPADEConfig.for_dataset("coco-stuff", image_size=(64, 64), ngf=4, spade_hidden_nc=8))
    return folder


@pytest.fixture(scope="session")
def pix2pix_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pix2pix facades preset (colour input, original test mode), 64x64 U-Net with 6 levels (dropout at level 4)."""
    model = Pix2PixModel(Pix2PixConfig.for_dataset("facades", image_size=(64, 64), num_downs=6, ngf=4, ndf=4)).eval()
    randomize_weights(model)
    return save_model_folder(tmp_path_factory.mktemp("tiny_pix2pix"), model)


@pytest.fixture(scope="session")
def pix2pixhd_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pix2pixHD 1024p preset layout (global generator + local enhancer), no feature encoder, 64x128."""
    model = Pix2PixHDModel(Pix2PixHDConfig.for_dataset("cityscapes-1024p", **TINY_PIX2PIXHD)).eval()
    randomize_weights(model)
    return save_model_folder(tmp_path_factory.mktemp("tiny_pix2pixhd"), model)


# Classes of the shipped Cityscapes examples that get feature clusters in the tiny bank: road (2 clusters), car (3).
BANK = {7: 2, 26: 3}


@pytest.fixture(scope="session")
def pix2pixhd_feat_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pix2pixHD with the instance feature encoder and a feature bank for the classes in `BANK`, 64x128."""
    model = Pix2PixHDModel(Pix2PixHDConfig.for_dataset("cityscapes-512p-feat", **TINY_PIX2PIXHD)).eval()
    randomize_weights(model)
    generator = torch.Generator().manual_seed(0)
    model.set_feature_clusters({label: 3 * torch.randn(k, model.config.feat_num, generator=generator)
                                for label, k in BANK.items()})
    return save_model_folder(tmp_path_factory.mktemp("tiny_pix2pixhd_feat"), model)


def _tiny_crn(folder: Path, num_outputs: int) -> Path:
    """CRN in the Cityscapes presets' layout (labelIds -> 20 channels), 5 narrow modules, 64x128."""
    preset = "cityscapes-256p" if num_outputs > 1 else "cityscapes-512p"
    model = CRNModel(CRNConfig.for_dataset(preset, image_size=(64, 128), module_channels=(16, 16, 8, 8, 8),
                                           num_outputs=num_outputs)).eval()
    randomize_weights(model)
    return save_model_folder(folder, model)


@pytest.fixture(scope="session")
def crn_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny CRN making 9 images per pass, as the 256p models."""
    return _tiny_crn(tmp_path_factory.mktemp("tiny_crn"), 9)


@pytest.fixture(scope="session")
def crn_single_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny CRN making one image per pass, as the 512p / 1024p models."""
    return _tiny_crn(tmp_path_factory.mktemp("tiny_crn_single"), 1)


@pytest.fixture(scope="session")
def cocosnet_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """CoCosNet in the ADE20K preset's layout, narrow, 64x64."""
    model = CoCosNetModel(CoCosNetConfig.for_dataset("ade20k", image_size=(64, 64), ngf=4, ndf=4)).eval()
    randomize_weights(model)
    return save_model_folder(tmp_path_factory.mktemp("tiny_cocosnet"), model)


@pytest.fixture(scope="session")
def sean_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SEAN in the CelebAMask-HQ label space, 64x64, made so that every input visibly reaches the image: noise
    strengths on (zero at init), the blend leaning to the style branch, whose convs are scaled up, and BatchNorm
    statistics estimated on the drawn face maps (random weights explode with the default statistics)."""
    config = SEANConfig.for_dataset("celebamask-hq", image_size=(64, 64), ngf=4, spade_hidden_nc=8, style_dim=16,
                                    style_encoder_ngf=4, ndf=4)
    model = SEANModel(config)
    randomize_weights(model)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("noise_var"):
                param.copy_(0.5 * torch.randn(param.shape, generator=generator))
            elif name.endswith(("blending_gamma", "blending_beta")):
                param.fill_(2.0)
            elif name.endswith(("conv_gamma.weight", "conv_beta.weight")):
                param.mul_(8)
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.momentum = None  # a plain average over the calibration pass
                module.reset_running_stats()
        space = get_label_space("celebamask-hq")
        labels = torch.stack([torch.from_numpy(draw_example(space, (64, 64), v)) for v in (0, 1)])
        model.train()
        model(labels, style_image=torch.rand(2, 3, 64, 64, generator=generator) * 2 - 1, add_noise=False)
    return save_model_folder(tmp_path_factory.mktemp("tiny_sean"), model.eval())


def _tiny_oasis(folder: Path, preset: str, size: tuple[int, int]) -> Path:
    """OASIS in a preset's layout (label convention, 3D noise), narrow."""
    config = OASISConfig.for_dataset(preset, image_size=size, ngf=4, z_dim=8, spade_hidden_nc=8, ndf=4)
    model = OASISModel(config).eval()
    randomize_weights(model)
    return save_model_folder(folder, model)


@pytest.fixture(scope="session")
def oasis_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny OASIS for ADE20K, 64x64."""
    return _tiny_oasis(tmp_path_factory.mktemp("tiny_oasis"), "ade20k", (64, 64))


@pytest.fixture(scope="session")
def oasis_city_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny OASIS for Cityscapes, 64x128."""
    return _tiny_oasis(tmp_path_factory.mktemp("tiny_oasis_city"), "cityscapes", (64, 128))
