"""SEAN through `pipeline("label-to-image")` and `labelsynth generate` on real CelebAMask-HQ samples."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from sean_testing import random_sean, tiny_config
from transformers import pipeline

from labelsynth import LabelMapProcessor
from labelsynth.cli import main as cli_main


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("sean-tiny")
    model = random_sean(tiny_config())
    model.save_pretrained(folder)
    LabelMapProcessor(label_space="celebamask-hq", size={"height": 64, "width": 64}).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def files(tmp_path_factory, celeba_pair) -> dict[str, Path]:
    """Index label PNGs and photos of two real samples, at 128x128 (the pipeline resizes them to 64x64)."""
    folder = tmp_path_factory.mktemp("celeba")
    labels, photos = celeba_pair
    paths = {}
    for i in range(2):
        label = Image.fromarray(labels[i].numpy().astype(np.uint8)).resize((128, 128), Image.NEAREST)
        photo = Image.fromarray(((photos[i].permute(1, 2, 0).numpy() + 1) * 127.5).round().astype(np.uint8))
        paths[f"label{i}"], paths[f"photo{i}"] = folder / f"label{i}.png", folder / f"photo{i}.png"
        label.save(paths[f"label{i}"])
        photo.resize((128, 128), Image.BICUBIC).save(paths[f"photo{i}"])
    return paths


def test_pipeline_with_style_image_and_style_label_map(model_dir: Path, files) -> None:
    pipe = pipeline("label-to-image", model=str(model_dir))
    first = np.asarray(pipe(str(files["label0"]), style_image=str(files["photo0"]), seed=0))
    again = np.asarray(pipe(str(files["label0"]), style_image=str(files["photo0"]), seed=0))
    assert first.shape == (64, 64, 3) and first.std() > 5
    np.testing.assert_array_equal(first, again)
    other_seed = np.asarray(pipe(str(files["label0"]), style_image=str(files["photo0"]), seed=1))
    assert np.abs(other_seed.astype(int) - first).max() > 0  # noise comes from the seed
    no_noise = [np.asarray(pipe(str(files["label0"]), style_image=str(files["photo0"]), seed=s, add_noise=False))
                for s in (0, 1)]
    np.testing.assert_array_equal(*no_noise)

    # The style photo's own segmentation: region styles come from the right places of the photo.
    restyled = np.asarray(pipe(str(files["label0"]), style_image=str(files["photo1"]),
                               style_label_map=str(files["label1"]), add_noise=False))
    assert np.abs(restyled.astype(int) - no_noise[0]).mean() > 0.5


def test_pipeline_with_style_codes(model_dir: Path, files) -> None:
    pipe = pipeline("label-to-image", model=str(model_dir))
    processor = pipe.image_processor
    labels = processor([str(files["label0"]), str(files["label1"])], return_tensors="pt")["label_map"]
    photos = torch.stack([torch.from_numpy(np.asarray(Image.open(files[f"photo{i}"]).resize((64, 64), Image.BICUBIC))
                                           .copy()).permute(2, 0, 1).float() / 127.5 - 1 for i in range(2)])
    with torch.no_grad():
        styles = pipe.model.encode_styles(photos, labels)
    edited = styles[:1].swap("hair", styles[1:])
    image = np.asarray(pipe(str(files["label0"]), styles=edited, add_noise=False, output_type="np"))
    plain = np.asarray(pipe(str(files["label0"]), styles=styles[:1], add_noise=False, output_type="np"))
    assert image.shape == (64, 64, 3) and np.abs(image.astype(int) - plain).max() > 0


def test_cli_generate_with_style_and_style_label(model_dir: Path, files, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out.png"
    status = cli_main(["generate", "--model", str(model_dir), "--label", str(files["label0"]), "--style",
                       str(files["photo1"]), "--style-label", str(files["label1"]), "-o", str(out)])
    assert status == 0 and Image.open(out).size == (64, 64)
    status = cli_main(["generate", "--model", str(model_dir), "--label", str(files["label0"]), "-o", str(out)])
    assert status == 2
    assert "style" in capsys.readouterr().err


def test_pipeline_takes_explicit_noise(model_dir: Path, files) -> None:
    """`noise=` passes through the pipeline: the maps drawn with seed s give the image of `seed=s`."""
    pipe = pipeline("label-to-image", model=str(model_dir))
    label, photo = str(files["label0"]), str(files["photo0"])
    noise = [pipe.model.sample_noise(1, (64, 64), generator=torch.Generator().manual_seed(s)) for s in (3, 4)]
    seeded = np.asarray(pipe(label, style_image=photo, seed=3))
    np.testing.assert_array_equal(np.asarray(pipe(label, style_image=photo, noise=noise[0])), seeded)
    np.testing.assert_array_equal(np.asarray(pipe(label, style_image=photo, noise=noise[0], seed=9)), seeded)
    # A list of label maps takes one set of maps per map (item i of `seed=3` uses seed 3 + i).
    batch = pipe([label, label], style_image=[photo, photo], noise=noise)
    np.testing.assert_array_equal(np.asarray(batch[0]), seeded)
    np.testing.assert_array_equal(np.asarray(batch[1]), np.asarray(pipe(label, style_image=photo, seed=4)))
    with pytest.raises(ValueError, match="add_noise=False"):
        pipe(label, style_image=photo, noise=noise[0], add_noise=False)
