"""The shared GAN trainer with SPADE: steps, checkpoints, bit-identical resume, several processes."""

import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import free_port
from PIL import Image

from labelsynth import LabelMapProcessor, SPADEConfig, SPADEDiscriminator, SPADEModel
from labelsynth.training import GANTrainer, SPADETrainingModule, TrainingArguments, list_checkpoints

SIZE = 32


def make_rows(count: int = 6) -> list[dict]:
    """Synthetic pairs whose image colour is a function of the label, so the mapping is learnable."""
    rng = np.random.default_rng(0)
    rows = []
    for _ in range(count):
        coarse = rng.integers(0, 4, (4, 4))
        label = np.kron(coarse, np.ones((12, 12), dtype=np.int64))  # 48x48, random crops to 32
        image = np.stack([label * 60, 255 - label * 60, (label % 2) * 200], axis=-1).astype(np.uint8)
        rows.append({"image": Image.fromarray(image), "label": label})
    return rows


def transform(row: dict, rng: random.Random | None = None) -> dict[str, torch.Tensor]:
    """Random 32x32 crop and flip with the same parameters for image and label."""
    image = torch.from_numpy(np.array(row["image"])).permute(2, 0, 1).float() / 127.5 - 1
    label = torch.from_numpy(np.asarray(row["label"]))
    top, left, flip = (0, 0, False) if rng is None else (rng.randint(0, 16), rng.randint(0, 16), rng.random() < 0.5)
    image, label = image[:, top:top + SIZE, left:left + SIZE], label[top:top + SIZE, left:left + SIZE]
    if flip:
        image, label = image.flip(-1), label.flip(-1)
    return {"pixel_values": image, "label_map": label.long()}


def make_module(seed: int = 0) -> SPADETrainingModule:
    torch.manual_seed(seed)
    space = {"name": "four", "names": ["a", "b", "c", "d"]}
    config = SPADEConfig(label_space=space, label_nc=4, contain_dontcare_label=False, ngf=4, ndf=8,
                         image_size=(SIZE, SIZE), num_upsampling_layers="normal")
    processor = LabelMapProcessor(label_space=space, size={"height": SIZE, "width": SIZE})
    return SPADETrainingModule(SPADEModel(config), SPADEDiscriminator(config), processor)


def train(output_dir: Path, steps: int, **overrides) -> torch.nn.Module:
    settings = {"train_batch_size": 2, "report_to": None, "validation_steps": 0, "checkpointing_steps": 0}
    args = TrainingArguments(output_dir=str(output_dir), max_train_steps=steps, **{**settings, **overrides})
    module = make_module()
    batch = module.collate_fn([transform(r, None) for r in make_rows(2)])
    trainer = GANTrainer(module, args, make_rows(), transform, validation_batch=batch)
    trainer.train()
    return trainer


def test_a_few_steps_write_model_card_checkpoint_and_validation(tmp_path: Path) -> None:
    trainer = train(tmp_path, 4, checkpointing_steps=2, validation_steps=2, checkpoints_total_limit=1,
                    decay_start_step=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["checkpoint-4"]  # total limit honoured
    assert sorted(p.name for p in (tmp_path / "validation").iterdir()) == ["step-0000002.png", "step-0000004.png"]
    grid = np.asarray(Image.open(tmp_path / "validation" / "step-0000004.png"))
    assert grid.shape == (2 * SIZE, 3 * SIZE, 3)
    for name in ("config.json", "model.safetensors", "README.md", "preprocessor_config.json",
                 "discriminator/model.safetensors", "training_args.json"):
        assert (tmp_path / name).is_file(), name
    reloaded = SPADEModel.from_pretrained(tmp_path)
    final = trainer.inference_generator()
    assert all(torch.equal(a, b) for a, b in zip(reloaded.state_dict().values(), final.state_dict().values()))
    assert trainer.sched_g.get_last_lr()[0] == 0.0  # linear decay reached 0 at the last step
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())


def test_resume_is_bit_identical_to_an_uninterrupted_run(tmp_path: Path) -> None:
    straight = train(tmp_path / "straight", 5, ema_decay=0.9).inference_generator().state_dict()
    train(tmp_path / "resumed", 3, ema_decay=0.9, checkpointing_steps=3)  # "killed" after step 3
    resumed = train(tmp_path / "resumed", 5, ema_decay=0.9, resume_from_checkpoint="latest")
    assert resumed.counter.step == 5
    for key, value in resumed.inference_generator().state_dict().items():
        assert torch.equal(value, straight[key]), key


def test_fused_adam_takes_the_first_step_of_the_for_loop_adam(tmp_path: Path) -> None:
    """`fused_adam=False` (the default) builds the for-loop Adam, `--fused_adam` torch's fused kernel; both move the
    generator by the same first step (to float rounding)."""
    steps = {}
    for fused in (False, True):
        trainer = GANTrainer(make_module(), TrainingArguments(output_dir=str(tmp_path / str(fused)), report_to=None,
                                                              fused_adam=fused), make_rows(), transform)
        trainer._prepare()
        assert trainer.opt_g.optimizer.defaults["fused"] is fused and trainer.opt_d.optimizer.defaults["fused"] is fused
        batch = trainer.module.collate_fn([transform(r, None) for r in make_rows(2)])
        before = [p.detach().clone() for p in trainer.module.generator.parameters()]
        trainer._train_micro_batch(batch)
        steps[fused] = [p.detach() - b for p, b in zip(trainer.module.generator.parameters(), before)]
    assert torch.cat([s.flatten() for s in steps[True]]).abs().max() > 0  # the step did update the generator
    for fused, plain in zip(steps[True], steps[False]):
        torch.testing.assert_close(fused, plain, rtol=1e-4, atol=1e-7)


def test_fused_adam_steps_renew_the_generators_cached_tables(tmp_path: Path) -> None:
    """torch's fused Adam writes the parameters without bumping their version counters, by which the SPADE layers
    notice that their cached per-class tables (used by the discriminator step's no-gradient forward) are stale; the
    trainer bumps them after every step. After two steps, a no-gradient forward of the trained generator equals that
    of a fresh model holding the same weights (without the bump it used the tables of the first step's weights)."""
    trainer = GANTrainer(make_module(), TrainingArguments(output_dir=str(tmp_path), report_to=None, fused_adam=True),
                         make_rows(), transform)
    trainer._prepare()
    assert trainer.opt_g.optimizer.defaults["fused"]
    batch = trainer.module.collate_fn([transform(r, None) for r in make_rows(2)])
    generator = trainer.module.generator
    versions = [p._version for p in generator.parameters()]
    for _ in range(2):
        trainer._train_micro_batch(dict(batch))
    assert all(p._version > v for p, v in zip(generator.parameters(), versions))
    fresh = SPADEModel(generator.config)
    fresh.load_state_dict(generator.state_dict())
    fresh.train()
    with torch.no_grad():
        trained_output = generator(label_map=batch["label_map"]).images
        fresh_output = fresh(label_map=batch["label_map"]).images
    torch.testing.assert_close(trained_output, fresh_output, rtol=0, atol=1e-6)


@pytest.mark.parametrize("keep", [True, False])
def test_cpu_training_keeps_freed_memory_unless_told_not_to(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            keep: bool) -> None:
    """`keep_cpu_memory` (on by default) applies `utils.memory.keep_freed_cpu_memory` when the trainer prepares a
    CPU run; `--no-keep_cpu_memory` leaves the allocator alone."""
    from labelsynth.training import trainer as trainer_module

    calls = []
    monkeypatch.setattr(trainer_module, "keep_freed_cpu_memory", lambda: calls.append(1) or True)
    assert TrainingArguments(output_dir=str(tmp_path)).keep_cpu_memory
    trainer = GANTrainer(make_module(), TrainingArguments(output_dir=str(tmp_path), report_to=None,
                                                          keep_cpu_memory=keep), make_rows(), transform)
    trainer._prepare()
    assert trainer.accelerator.device.type == "cpu" and len(calls) == int(keep)


def test_channels_last_and_fused_adam_compute_the_same_losses(tmp_path: Path) -> None:
    """The two speed options change memory layouts and kernels, not the computation: the first iteration's loss terms
    (same weights, same batch) equal the default's to float rounding. (Later weights are not compared: Adam divides
    each gradient by its own magnitude, so rounding-level differences in near-zero gradients become steps of up to
    the learning rate.) A run with both options checkpoints, resumes and saves a model that loads back."""
    batch = make_module().collate_fn([transform(r, None) for r in make_rows(2)])
    first = {}
    for name, options in {"default": {}, "fast": {"channels_last": True, "fused_adam": True}}.items():
        args = TrainingArguments(output_dir=str(tmp_path / name), report_to=None, **options)
        trainer = GANTrainer(make_module(), args, make_rows(), transform)
        trainer._prepare()
        first[name] = {k: float(v) for k, v in trainer._train_micro_batch(dict(batch)).items()}
    assert first["fast"].keys() == first["default"].keys()
    for key, value in first["default"].items():
        assert first["fast"][key] == pytest.approx(value, rel=1e-5, abs=1e-6), key

    train(tmp_path / "run", 2, ema_decay=0.9, checkpointing_steps=2, channels_last=True, fused_adam=True)
    resumed = train(tmp_path / "run", 3, ema_decay=0.9, channels_last=True, fused_adam=True,
                    resume_from_checkpoint="latest")
    assert resumed.counter.step == 3
    assert resumed.generator.generator.fc.weight.is_contiguous(memory_format=torch.channels_last)
    assert resumed.opt_g.optimizer.defaults["fused"] and resumed.opt_d.optimizer.defaults["fused"]
    reloaded = SPADEModel.from_pretrained(tmp_path / "run").state_dict()
    for key, value in resumed.inference_generator().state_dict().items():
        assert torch.equal(reloaded[key], value), key


def test_half_written_checkpoint_is_ignored(tmp_path: Path) -> None:
    train(tmp_path, 2, checkpointing_steps=2)
    (tmp_path / "checkpoint-9.tmp").mkdir()  # a save killed half-way
    assert [p.name for p in list_checkpoints(tmp_path)] == ["checkpoint-2"]


@pytest.mark.timeout(600)
def test_two_processes_stay_in_sync(tmp_path: Path) -> None:
    """A real 2-process launch on CPU (gloo): gradients are all-reduced, so both ranks end with the same weights."""
    accelerate = shutil.which("accelerate", path=os.path.dirname(sys.executable))
    command = [accelerate, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
               "--main_process_port", str(free_port()),
               "--mixed_precision", "no", "--dynamo_backend", "no", str(Path(__file__).parent / "two_process_worker.py"),
               str(tmp_path)]
    result = subprocess.run(command, check=False, capture_output=True, text=True, timeout=540,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "ranks_in_sync").read_text() == "ok"
    assert (tmp_path / "model.safetensors").is_file()


def test_ema_batchnorm_statistics_are_recomputed_on_a_copy() -> None:
    from labelsynth.training.trainer import with_recomputed_batchnorm

    model = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 1), torch.nn.BatchNorm2d(3))
    model[1].running_mean.fill_(5.0)
    batches = [{"x": torch.randn(4, 2, 5, 5)}, {"x": torch.randn(4, 2, 5, 5) + 1}]
    state = torch.random.get_rng_state()
    refreshed = with_recomputed_batchnorm(model, batches, lambda m, b: m(b["x"]) + torch.randn(1))
    assert torch.equal(torch.random.get_rng_state(), state)  # the training RNG is untouched
    assert torch.equal(model[1].running_mean, torch.full((3,), 5.0)) and model.training  # original unchanged
    with torch.no_grad():
        features = [model[0](b["x"]) for b in batches]
    expected = torch.stack([f.mean(dim=(0, 2, 3)) for f in features]).mean(0)  # cumulative average of batch means
    torch.testing.assert_close(refreshed[1].running_mean, expected)
    assert not refreshed.training and refreshed[1].momentum == model[1].momentum
