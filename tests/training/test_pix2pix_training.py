"""pix2pix training: the loss module, `training/train_pix2pix.py` on the real Cityscapes samples, and a tiny model
that learns its training pairs."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from labelsynth import LabelMapProcessor, Pix2PixConfig, Pix2PixDiscriminator, Pix2PixModel
from labelsynth.training.pix2pix import Pix2PixTrainingModule

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "training" / "train_pix2pix.py"
TINY = ["--preset", "cityscapes", "--report_to", "none", "--ngf", "8", "--ndf", "8"]


def load_script():
    spec = importlib.util.spec_from_file_location("train_pix2pix", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def cityscapes(samples_dir: Path) -> str:
    return str(samples_dir / "pix2pixHD_cityscapes")


def test_losses_follow_the_paper() -> None:
    config = Pix2PixConfig.for_dataset("cityscapes", ngf=8, ndf=8, num_downs=5, image_size=(32, 32))
    torch.manual_seed(0)
    model, netd = Pix2PixModel(config).train(), Pix2PixDiscriminator(config).train()
    module = Pix2PixTrainingModule(model, netd, LabelMapProcessor(label_space="cityscapes", size=32))
    batch = {"label_map": torch.randint(0, 35, (2, 32, 32)), "pixel_values": torch.rand(2, 3, 32, 32) * 2 - 1}
    g_loss, g_terms = module.generator_loss(model, netd, batch)
    fake = module._last_fake[1]
    assert torch.allclose(g_terms["G_L1"], (fake - batch["pixel_values"]).abs().mean() * 100)
    assert torch.allclose(g_loss, g_terms["G_GAN"] + g_terms["G_L1"])
    d_loss, d_terms = module.discriminator_loss(model, netd, batch)
    assert torch.allclose(d_loss, 0.5 * (d_terms["D_fake"] + d_terms["D_real"]))
    logits = netd(model.label_input(batch["label_map"]), fake)[0][-1]
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits))
    assert torch.allclose(d_terms["D_fake"], expected, atol=1e-6)  # vanilla GAN on the reused, detached fake
    d_loss.backward()
    assert netd.discriminator.stages[0][0].weight.grad is not None
    assert model.generator.levels[0].down_conv.weight.grad is None  # the fake was detached


def test_help_documents_the_original_options() -> None:
    result = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, check=True)
    for flag in ("--netG", "--input_encoding", "--lambda_L1", "--no_dropout", "--test_mode", "--gan_mode",
                 "--resume_from_checkpoint", "--push_to_hub", "--eval_metrics"):
        assert flag in result.stdout


def test_a_few_steps_on_the_cityscapes_samples(tmp_path: Path, cityscapes: str) -> None:
    command = [sys.executable, str(SCRIPT), "--dataset", cityscapes, "--output_dir", str(tmp_path),
               "--max_train_steps", "2", "--validation_steps", "2", "--checkpointing_steps", "2",
               "--image_size", "64", "64", "--netG", "unet_128", "--num_downs", "6", "--load_size", "72",
               "--input_encoding", "one_hot", "--train_batch_size", "2", "--num_validation_images", "2",
               "--eval_metrics", "psnr", "--eval_samples", "2", *TINY]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    model = Pix2PixModel.from_pretrained(tmp_path)
    assert model.config.input_encoding == "one_hot" and model.config.num_downs == 6
    assert Pix2PixDiscriminator.from_pretrained(tmp_path / "discriminator").config.discriminator_input_nc == 38
    grid = np.asarray(Image.open(tmp_path / "validation" / "step-0000002.png"))
    assert grid.shape == (2 * 64, 3 * 64, 3)
    assert (tmp_path / "checkpoint-2").is_dir()
    card = (tmp_path / "README.md").read_text()
    assert "train_pix2pix.py" in card and "--max_train_steps 2" in card


def small_copy(source: Path, target: Path, size: tuple[int, int]) -> Path:
    """The real samples downsized once (photos bicubic, labels nearest), so the learning test decodes small PNGs."""
    for sub in ("images", "labels"):
        (target / sub).mkdir(parents=True)
    for photo in sorted((source / "train_img").glob("*.png")):
        stem = photo.name.replace("_leftImg8bit.png", "")
        Image.open(photo).convert("RGB").resize(size, Image.BICUBIC).save(target / "images" / f"{stem}.png")
        label = source / "train_label" / f"{stem}_gtFine_labelIds.png"
        Image.open(label).resize(size, Image.NEAREST).save(target / "labels" / f"{stem}.png")
    return target


def test_tiny_pix2pix_learns_the_training_pairs(tmp_path: Path, cityscapes: str) -> None:
    """Training-pair PSNR must rise well above the untrained model and above predicting the mean colour."""
    from labelsynth.data import PairedTransform, load_training_dataset
    from labelsynth.metrics import psnr

    data = small_copy(Path(cityscapes), tmp_path / "data", (64, 32))
    load_script().main(["--dataset", str(data), "--output_dir", str(tmp_path / "run"), "--max_train_steps", "100",
                        "--validation_steps", "0", "--checkpointing_steps", "0", "--image_size", "32", "32",
                        "--num_downs", "5", "--resize_mode", "fixed", "--train_batch_size", "4",
                        "--generator_lr", "1e-3", "--discriminator_lr", "1e-3", *TINY])
    trained = Pix2PixModel.from_pretrained(tmp_path / "run")
    torch.manual_seed(0)
    untrained = Pix2PixModel(trained.config).eval()
    rows = load_training_dataset(str(data), label_space="cityscapes")
    view = PairedTransform(size=(32, 32), mode="fixed", flip=False, label_space="cityscapes", passthrough_columns=())
    samples = [view.apply(rows[i]) for i in range(len(rows))]
    labels, real = (torch.stack([s[k] for s in samples]) for k in ("label_map", "pixel_values"))
    mean_colour = float(psnr(real.mean(dim=(0, 2, 3), keepdim=True).expand_as(real), real, data_range=2.0))
    with torch.no_grad():
        for mode in ("original", "eval"):
            rng = torch.Generator().manual_seed(0)
            before = float(psnr(untrained(labels, test_mode=mode, generator=rng).images, real, data_range=2.0))
            after = float(psnr(trained(labels, test_mode=mode, generator=rng).images, real, data_range=2.0))
            assert after > before + 6, (mode, before, after)
            assert after > mean_colour + 2, (mode, mean_colour, after)
