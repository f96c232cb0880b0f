"""CRN training: the shared trainer without a discriminator, `training/train_crn.py` on the real Cityscapes samples,
and a tiny model that learns its training pairs."""

import importlib.util
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from labelsynth import CRNConfig, CRNModel, LabelMapProcessor
from labelsynth.data import PairedTransform, load_training_dataset
from labelsynth.metrics.image import psnr
from labelsynth.training import GANTrainer, TrainingArguments
from labelsynth.training.crn import CRNTrainingModule

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "training" / "train_crn.py"
TINY = ["--image_size", "32", "64", "--module_channels", "32", "32", "32", "32", "--report_to", "none"]


def load_script():
    spec = importlib.util.spec_from_file_location("train_crn", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def cityscapes(samples_dir: Path) -> str:
    return str(samples_dir / "pix2pixHD_cityscapes")


def synthetic_rows(count: int = 4) -> list[dict[str, torch.Tensor]]:
    rng = torch.Generator().manual_seed(0)
    return [{"label_map": torch.randint(0, 35, (16, 32), generator=rng),
             "pixel_values": torch.rand(3, 16, 32, generator=rng) * 2 - 1} for _ in range(count)]


def run_trainer(output_dir: Path, steps: int, resume: str | None = None) -> CRNModel:
    torch.manual_seed(0)
    model = CRNModel(CRNConfig(module_channels=[8, 8, 8], num_outputs=2, image_size=(16, 32)))
    module = CRNTrainingModule(model, LabelMapProcessor(label_space="cityscapes", size=(16, 32)))
    args = TrainingArguments(output_dir=str(output_dir), max_train_steps=steps, train_batch_size=2,
                             generator_lr=1e-3, adam_beta1=0.9, adam_beta2=0.999, checkpointing_steps=1,
                             validation_steps=0, report_to=None, resume_from_checkpoint=resume)
    trainer = GANTrainer(module, args, synthetic_rows(), lambda row, rng: row)
    assert trainer.module.discriminator is None
    return trainer.train()


def test_trainer_trains_a_generator_without_discriminator_and_resumes(tmp_path: Path) -> None:
    torch.manual_seed(0)
    initial = CRNModel(CRNConfig(module_channels=[8, 8, 8], num_outputs=2, image_size=(16, 32))).state_dict()
    straight = run_trainer(tmp_path / "straight", steps=3)
    assert any(not torch.equal(initial[k], v) for k, v in straight.state_dict().items())
    assert (tmp_path / "straight" / "checkpoint-3").is_dir()
    assert not (tmp_path / "straight" / "discriminator").exists()
    # stop after 2 steps, resume from that checkpoint for the third: the same weights as training straight through
    run_trainer(tmp_path / "resumed", steps=2)
    resumed = run_trainer(tmp_path / "resumed", steps=3, resume="latest")
    for key, value in straight.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key


def test_help_documents_the_options(capsys) -> None:
    with pytest.raises(SystemExit):
        load_script().parse_args(["--help"])
    text = capsys.readouterr().out
    for flag in ("--preset", "--module_channels", "--num_outputs", "--layer_weights", "--vgg_weights",
                 "--pretrained_model", "--resume_from_checkpoint", "--mixed_precision", "--eval_metrics"):
        assert flag in text


def test_script_runs_a_few_steps_on_the_real_samples(tmp_path: Path, cityscapes: str) -> None:
    # A fresh process: Accelerate keeps one precision setting per process.
    command = [sys.executable, str(SCRIPT), "--dataset", cityscapes, "--output_dir", str(tmp_path),
               "--max_train_steps", "2", "--validation_steps", "2", "--checkpointing_steps", "2",
               "--num_outputs", "3", "--train_batch_size", "2", "--mixed_precision", "bf16", "--eval_metrics", "psnr",
               "--eval_samples", "2", *TINY]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    model = CRNModel.from_pretrained(tmp_path)
    assert model.config.num_outputs == 3 and model.config.semantic_nc == 20
    assert LabelMapProcessor.from_pretrained(tmp_path).label_space.name == "cityscapes"
    grid = np.asarray(Image.open(tmp_path / "validation" / "step-0000002.png"))
    assert grid.shape == (4 * 32, 3 * 64, 3)
    assert (tmp_path / "checkpoint-2").is_dir()
    card = (tmp_path / "README.md").read_text()
    assert "train_crn.py" in card and "--max_train_steps 2" in card


def test_fine_tuning_a_finer_model_keeps_the_shared_modules(tmp_path: Path) -> None:
    coarse = CRNModel(CRNConfig(module_channels=[8, 8], num_outputs=1, image_size=(8, 16)))
    coarse.save_pretrained(tmp_path)
    args = load_script().parse_args(["--dataset", "unused", "--output_dir", str(tmp_path / "out"),
                                     "--pretrained_model", str(tmp_path), "--module_channels", "8", "8", "4",
                                     "--num_outputs", "1", "--image_size", "16", "32"])
    model, _ = load_script().build_model(args)
    assert torch.equal(model.generator.blocks[1].conv1.weight, coarse.generator.blocks[1].conv1.weight)
    assert model.generator.blocks[2].conv1.weight.shape[0] == 4


def test_tiny_model_learns_its_training_pairs(tmp_path: Path, cityscapes: str) -> None:
    # Real pairs decoded and resized once (the script test above covers the data path), then the shared trainer.
    rows = load_training_dataset(cityscapes, label_space="cityscapes").select(range(2))
    transform = PairedTransform(size=(32, 64), mode="fixed", label_space="cityscapes", use_instance=False,
                                flip=False, passthrough_columns=())
    samples = [transform.apply(rows[i], rng=random.Random(0)) for i in range(2)]
    labels = torch.stack([s["label_map"] for s in samples])
    real = torch.stack([s["pixel_values"] for s in samples])

    torch.manual_seed(0)
    model = CRNModel(CRNConfig(module_channels=[32, 32, 32, 32], num_outputs=1, image_size=(32, 64)))
    with torch.no_grad():
        before = psnr(model.eval()(labels).images, real, data_range=2.0)
    module = CRNTrainingModule(model.train(), LabelMapProcessor(label_space="cityscapes", size=(32, 64)))
    args = TrainingArguments(output_dir=str(tmp_path), max_train_steps=100, train_batch_size=2, generator_lr=1e-3,
                             adam_beta1=0.9, adam_beta2=0.999, checkpointing_steps=0, validation_steps=0,
                             report_to=None)
    trained = GANTrainer(module, args, samples, lambda row, rng: row).train().eval()
    with torch.no_grad():
        after = psnr(trained(labels).images, real, data_range=2.0)
    baseline = psnr(real.mean(dim=(2, 3), keepdim=True).expand_as(real), real, data_range=2.0)
    # measured: 6.0 dB untrained, 16.4 dB for the mean colour of each photo, 24.1 dB after 100 steps
    assert after > before + 6
    assert after > baseline + 3
