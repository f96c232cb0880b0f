"""Pipeline input boundary (issue 12 items 4, 5, 8): one input -> one image, bad files and NaN noise as ValueErrors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import save_tiny_model  # tests/helpers.py
from transformers import pipeline

from labelsynth import LabelToImagePipeline, SPADEConfig

TINY = {"ngf": 8, "param_free_norm": "instance", "spectral_norm": False}


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def pipes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, LabelToImagePipeline]:
    root = tmp_path_factory.mktemp("pipeline_inputs")
    configs = {
        "plain": SPADEConfig.for_dataset("ade20k", image_size=(64, 64), **TINY),
        "vae": SPADEConfig.for_dataset("ade20k", image_size=(64, 64), use_vae=True, z_dim=16, **TINY),
    }
    for name, config in configs.items():
        save_tiny_model(root / name, config)
    return {name: pipeline("label-to-image", model=str(root / name)) for name in configs}


@pytest.mark.parametrize("make", [lambda: np.ones((3, 64, 64), np.int64), lambda: torch.ones(2, 1, 64, 64).long()])
def test_one_input_holding_several_maps_is_refused(pipes, make):
    # Was: a (B, H, W) array as one input computed B images and returned the first.
    with pytest.raises(ValueError, match=r"one image per input.*list"):
        pipes["plain"](make(), seed=0)


def test_a_list_gives_one_image_per_map(pipes):
    images = pipes["plain"](list(np.ones((3, 64, 64), np.int64)), seed=0, output_type="np")
    assert len(images) == 3 and all(image.shape == (64, 64, 3) for image in images)


def test_one_style_input_holding_several_images_is_refused(pipes):
    with pytest.raises(ValueError, match="one image per input"):
        pipes["vae"](np.ones((64, 64), np.int64), style_image=np.zeros((2, 64, 64, 3), np.uint8), seed=0)


@pytest.mark.parametrize("content", [b"", b"GIF89a garbage", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"])
def test_corrupt_files_are_value_errors(pipes, tmp_path: Path, content: bytes):
    path = tmp_path / "label.png"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="label.png"):
        pipes["plain"](str(path), seed=0)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_noise_is_refused(pipes, bad):
    noise = torch.randn(1, 16)
    noise[0, 3] = bad
    with pytest.raises(ValueError, match="non-finite"):
        pipes["vae"](np.ones((64, 64), np.int64), noise=noise, seed=0)
    # finite noise still works
    assert pipes["vae"](np.ones((64, 64), np.int64), noise=torch.randn(1, 16), output_type="np").shape == (64, 64, 3)


def test_sean_non_finite_noise_map_is_refused():
    # SEAN takes explicit noise as a dict of maps ("value" kind, passed unchanged by the pipeline): checked in forward.
    from labelsynth import SEANConfig, SEANModel

    model = SEANModel(SEANConfig(image_size=(64, 64), ngf=8, spade_hidden_nc=8, style_dim=16, style_encoder_ngf=4,
                                 ndf=8)).eval()
    labels = torch.zeros(1, 64, 64, dtype=torch.long)
    noise = model.sample_noise(1, (64, 64), generator=torch.Generator().manual_seed(0))
    name = next(iter(noise))
    noise[name][0, 0, 0, 0] = float("nan")
    with torch.no_grad(), pytest.raises(ValueError, match=r"noise\[.*non-finite"):
        model(labels, style_image=torch.zeros(1, 3, 64, 64), noise=noise)
