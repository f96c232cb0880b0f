"""training/train_controlnet_seg.py: a few CPU steps with tiny components on real Cityscapes samples; resuming from
the latest checkpoint gives bit-identical weights; the result loads as a label-to-image pipeline."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

from labelsynth import pipeline

SCRIPT = Path(__file__).resolve().parents[2] / "training" / "train_controlnet_seg.py"


def _script():
    spec = importlib.util.spec_from_file_location("train_controlnet_seg", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(folder / "diffusion_pytorch_model.safetensors")


def test_train_resume_and_load(tiny_sd, samples_dir, tmp_path) -> None:
    script = _script()
    common = ["--pretrained_model_name_or_path", str(tiny_sd["base"]), "--controlnet_model_name_or_path",
              str(tiny_sd["controlnet"]), "--dataset", str(samples_dir / "pix2pixHD_cityscapes"),
              "--label_space", "cityscapes", "--resolution", "64", "--train_batch_size", "2",
              "--learning_rate", "1e-3", "--checkpointing_steps", "2", "--seed", "1"]
    straight = script.main([*common, "--output_dir", str(tmp_path / "a"), "--max_train_steps", "4",
                            "--validation_steps", "4", "--num_validation_images", "1",
                            "--validation_inference_steps", "1"])
    script.main([*common, "--output_dir", str(tmp_path / "b"), "--max_train_steps", "2"])
    resumed = script.main([*common, "--output_dir", str(tmp_path / "b"), "--max_train_steps", "4",
                           "--resume_from_checkpoint", "latest"])
    a, b = _weights(straight), _weights(resumed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    before = _weights(tiny_sd["controlnet"])
    assert any(not torch.equal(a[k], before[k]) for k in a)  # it trained
    assert (straight / "checkpoint-2").is_dir() and (straight / "checkpoint-4").is_dir()
    assert len(list((straight / "validation").glob("step-000004-*.png"))) == 1
    meta = json.loads((straight / "labelsynth_controlnet.json").read_text())
    assert meta["palette"] == "ade20k" and meta["base_model"] == str(tiny_sd["base"])
    pipe = pipeline("label-to-image", model=str(straight), label_space="cityscapes", progress_bar=False)
    image = pipe(np.full((16, 16), 7, np.int64), seed=0, num_inference_steps=1, output_type="np")
    assert image.shape == (64, 64, 3)
