"""`training/train_spade.py` end to end on the real Cityscapes samples (photos, labelIds, 16-bit instance maps)."""

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import free_port
from PIL import Image

from labelsynth import SPADEModel

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "training" / "train_spade.py"
TINY = ["--preset", "cityscapes", "--image_size", "64", "128", "--num_upsampling_layers", "normal", "--ngf", "8",
        "--spade_hidden_nc", "16", "--ndf", "16", "--load_size", "72", "--resize_mode", "keep_aspect",
        "--report_to", "none", "--train_batch_size", "4"]


def load_script():
    spec = importlib.util.spec_from_file_location("train_spade", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def cityscapes(samples_dir: Path) -> str:
    return str(samples_dir / "pix2pixHD_cityscapes")


def test_help_documents_every_option() -> None:
    result = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, check=True)
    for flag in ("--dataset", "--resume_from_checkpoint", "--mixed_precision", "--push_to_hub", "--lambda_vgg",
                 "--ema_decay", "--eval_metrics", "--checkpointing_steps"):
        assert flag in result.stdout


def test_a_few_steps_with_instance_maps_and_bf16(tmp_path: Path, cityscapes: str) -> None:
    # A fresh process: Accelerate keeps one precision setting per process.
    command = [sys.executable, str(SCRIPT), "--dataset", cityscapes, "--output_dir", str(tmp_path),
               "--max_train_steps", "2", "--validation_steps", "2", "--checkpointing_steps", "2",
               "--mixed_precision", "bf16", "--eval_metrics", "psnr,ssim", "--eval_samples", "2", *TINY]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    model = SPADEModel.from_pretrained(tmp_path)
    assert model.config.use_instance_edges and model.config.semantic_nc == 36
    grid = np.asarray(Image.open(tmp_path / "validation" / "step-0000002.png"))
    assert grid.shape == (4 * 64, 3 * 128, 3)
    assert (tmp_path / "checkpoint-2").is_dir()
    card = (tmp_path / "README.md").read_text()
    assert "train_spade.py" in card and "--max_train_steps 2" in card


def test_accelerate_launch_with_two_processes(tmp_path: Path, cityscapes: str) -> None:
    accelerate = shutil.which("accelerate", path=os.path.dirname(sys.executable))
    command = [accelerate, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
               "--main_process_port", str(free_port()),
               "--mixed_precision", "no", "--dynamo_backend", "no", str(SCRIPT), "--dataset", cityscapes,
               "--output_dir", str(tmp_path), "--max_train_steps", "2", "--validation_steps", "0",
               "--checkpointing_steps", "2", *TINY]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "model.safetensors").is_file()
    # Both ranks wrote their RNG state into the checkpoint: a real 2-process run, not two separate runs.
    assert sorted(p.name for p in (tmp_path / "checkpoint-2").glob("rng_state_*.safetensors")) == [
        "rng_state_0.safetensors", "rng_state_1.safetensors"]


@pytest.mark.slow
def test_tiny_spade_learns_the_training_pairs(tmp_path: Path, cityscapes: str) -> None:
    """Training-pair PSNR must rise well above the untrained model and above predicting the mean colour."""
    from labelsynth.data import PairedTransform, load_training_dataset
    from labelsynth.metrics import psnr

    load_script().main(["--dataset", cityscapes, "--output_dir", str(tmp_path), "--max_train_steps", "150",
                        "--validation_steps", "0", "--checkpointing_steps", "0", "--lambda_l1", "10", *TINY])
    trained = SPADEModel.from_pretrained(tmp_path).eval()
    torch.manual_seed(0)
    untrained = SPADEModel(trained.config).eval()
    rows = load_training_dataset(cityscapes, label_space="cityscapes")
    view = PairedTransform(size=(64, 128), mode="fixed", flip=False, label_space="cityscapes", passthrough_columns=())
    samples = [view.apply(rows[i]) for i in range(len(rows))]
    labels, instances, real = (torch.stack([s[k] for s in samples]) for k in ("label_map", "instance_map",
                                                                             "pixel_values"))
    with torch.no_grad():
        before = float(psnr(untrained(labels, instances).images, real, data_range=2.0))
        after = float(psnr(trained(labels, instances).images, real, data_range=2.0))
    mean_colour = float(psnr(real.mean(dim=(0, 2, 3), keepdim=True).expand_as(real), real, data_range=2.0))
    assert after > before + 8, (before, after)
    assert after > mean_colour + 1.5, (mean_colour, after)


def test_adding_a_style_encoder_keeps_the_trained_generator() -> None:
    from labelsynth import SPADEConfig

    script = load_script()
    config = SPADEConfig.for_dataset("cityscapes", image_size=(64, 128), num_upsampling_layers="normal", ngf=8,
                                     spade_hidden_nc=16, param_free_norm="instance")
    trained = SPADEModel(config)
    vae = script.add_style_encoder(trained, z_dim=8)
    assert vae.config.use_vae and vae.config.z_dim == 8 and vae.encoder is not None
    new_state, old_state = vae.state_dict(), trained.state_dict()
    kept = [k for k in old_state if not k.startswith("generator.fc.")]
    assert kept and all(torch.equal(new_state[k], old_state[k]) for k in kept)
    assert new_state["generator.fc.weight"].shape == (16 * 8 * 2 * 4, 8)  # fc(z) onto the 2x4 latent grid
    labels = torch.randint(0, 35, (1, 64, 128))
    out = vae.eval()(labels, labels, style_image=torch.rand(1, 3, 64, 128) * 2 - 1)
    assert out.images.shape == (1, 3, 64, 128) and out.mu.shape == (1, 8)


def test_missing_instance_maps_stop_the_run_before_the_model_is_built(tmp_path: Path, cityscapes: str,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The real Cityscapes samples without their instance maps: the cityscapes preset (instance edges) stops at
    start with one message naming --no_instance, and --no_instance then trains on the same folder."""
    data = tmp_path / "no_instances"
    for folder in ("train_img", "train_label"):  # pix2pixHD's layout, without train_inst/
        shutil.copytree(Path(cityscapes) / folder, data / folder)
    script = load_script()
    argv = ["--dataset", str(data), "--output_dir", str(tmp_path / "run"), "--max_train_steps", "1",
            "--validation_steps", "0", "--checkpointing_steps", "0", *TINY]

    def built_too_early(args: object) -> None:
        raise AssertionError("the model was built before the data was checked")

    with monkeypatch.context() as patch:
        patch.setattr(script, "build_model", built_too_early)
        with pytest.raises(ValueError, match=r"has no instance maps, but the model uses instance edges \(preset "
                                             r"'cityscapes'\): pass --no_instance to train without them"):
            script.main(argv)
    script.main([*argv, "--no_instance"])
    model = SPADEModel.from_pretrained(tmp_path / "run")
    assert not model.config.use_instance_edges and model.config.semantic_nc == 35
