"""Resuming is bit-identical for every model family: k + m steps straight equal k steps, a checkpoint, a new trainer
resumed from it and m more steps (weights, optimizer moments and every logged loss), on the CPU.

The resumed run restarts mid-epoch (k = 3 with 2 batches per epoch), so its data loader is rebuilt and skips batches,
which draws from torch's global RNG differently than the uninterrupted run: the families that draw noise or dropout
masks (SPADE's VAE, pix2pix, SEAN, CoCosNet's mask noise) hold only because those draws come from the module's own,
checkpointed generator.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from labelsynth import (
    CoCosNetConfig,
    CoCosNetDiscriminator,
    CoCosNetModel,
    CRNConfig,
    CRNModel,
    LabelMapProcessor,
    Pix2PixConfig,
    Pix2PixDiscriminator,
    Pix2PixHDConfig,
    Pix2PixHDDiscriminator,
    Pix2PixHDModel,
    Pix2PixModel,
    SEANConfig,
    SEANDiscriminator,
    SEANModel,
    SPADEConfig,
    SPADEDiscriminator,
    SPADEModel,
)
from labelsynth.training import GANTrainer, GANTrainingModule, TrainingArguments
from labelsynth.training.cocosnet import CoCosNetTrainingModule
from labelsynth.training.crn import CRNTrainingModule
from labelsynth.training.pix2pix import Pix2PixTrainingModule
from labelsynth.training.pix2pixhd import Pix2PixHDTrainingModule
from labelsynth.training.sean import SEANTrainingModule
from labelsynth.training.spade import SPADETrainingModule

K, M = 3, 2  # steps before the checkpoint, steps after it
FACADES = {"label_space": "facades", "label_nc": 12}  # a registered label space with 12 ids, 0 .. 11


def make_rows(height: int, width: int, num_ids: int, count: int = 5) -> list[dict[str, torch.Tensor]]:
    """Label maps of 4x4 blocks of random ids at 1.5x the training size; image colours follow the ids."""
    rng = np.random.default_rng(0)
    rows = []
    for _ in range(count):
        coarse = torch.from_numpy(rng.integers(0, num_ids, (4, 4)))
        label = torch.kron(coarse, torch.ones(3 * height // 8, 3 * width // 8, dtype=torch.long))
        image = torch.stack([label * 0.15, 1 - label * 0.1, (label % 2) * 0.8]) * 2 - 1
        rows.append({"label_map": label, "pixel_values": image.clamp(-1, 1)})
    return rows


def crop_transform(height: int, width: int, exemplars: bool = False) -> Callable[..., dict[str, torch.Tensor]]:
    """Random crop + flip drawn from the trainer's per-sample `rng`; with `exemplars`, a second crop of the same row
    as CoCosNet's self-reference exemplar."""

    def crop(row: dict[str, torch.Tensor], rng: random.Random) -> dict[str, torch.Tensor]:
        top = rng.randint(0, row["label_map"].shape[0] - height)
        left = rng.randint(0, row["label_map"].shape[1] - width)
        sample = {k: v[..., top:top + height, left:left + width] for k, v in row.items()}
        return {k: v.flip(-1) for k, v in sample.items()} if rng.random() < 0.5 else sample

    def transform(row: dict[str, torch.Tensor], rng: random.Random) -> dict[str, torch.Tensor]:
        sample = crop(row, rng)
        if exemplars:
            other = crop(row, rng)
            sample.update(exemplar=other["pixel_values"], exemplar_label_map=other["label_map"],
                          self_reference=torch.tensor(1.0))
        return sample

    return transform


def spade(use_vae: bool) -> tuple[GANTrainingModule, list, Callable]:
    config = SPADEConfig(**FACADES, contain_dontcare_label=False, ngf=4, ndf=8, spade_hidden_nc=8, n_layers_d=2,
                         num_d=1, image_size=(32, 32), use_vae=use_vae, z_dim=8)
    module = SPADETrainingModule(SPADEModel(config), SPADEDiscriminator(config),
                                 LabelMapProcessor(label_space="facades"), lambda_l1=1.0)
    return module, make_rows(32, 32, 12), crop_transform(32, 32)


def pix2pix() -> tuple[GANTrainingModule, list, Callable]:
    # num_downs=6: one 8*ngf level beyond the 5 fixed ones, which has dropout
    config = Pix2PixConfig(**FACADES, ngf=4, ndf=8, num_downs=6, image_size=(64, 64))
    module = Pix2PixTrainingModule(Pix2PixModel(config), Pix2PixDiscriminator(config),
                                   LabelMapProcessor(label_space="facades"))
    return module, make_rows(64, 64, 12), crop_transform(64, 64)


def pix2pixhd() -> tuple[GANTrainingModule, list, Callable]:
    config = Pix2PixHDConfig(**FACADES, use_instance_edges=False, ngf=4, n_downsample_global=2, n_blocks_global=1,
                             ndf=8, image_size=(32, 32))
    module = Pix2PixHDTrainingModule(Pix2PixHDModel(config), Pix2PixHDDiscriminator(config),
                                     LabelMapProcessor(label_space="facades"), lambda_l1=1.0)
    return module, make_rows(32, 32, 12), crop_transform(32, 32)


def crn() -> tuple[GANTrainingModule, list, Callable]:
    model = CRNModel(CRNConfig(module_channels=[8, 8, 8], num_outputs=2, image_size=(16, 32)))  # Cityscapes ids
    module = CRNTrainingModule(model, LabelMapProcessor(label_space="cityscapes", size=(16, 32)))
    return module, make_rows(16, 32, 35), crop_transform(16, 32)


def sean() -> tuple[GANTrainingModule, list, Callable]:
    config = SEANConfig(**FACADES, ngf=4, ndf=8, spade_hidden_nc=8, style_dim=8, style_encoder_ngf=4, n_layers_d=2,
                        num_d=1, image_size=(32, 32))
    module = SEANTrainingModule(SEANModel(config), SEANDiscriminator(config), LabelMapProcessor(label_space="facades"),
                                lambda_l1=1.0)
    return module, make_rows(32, 32, 12), crop_transform(32, 32)


def cocosnet() -> tuple[GANTrainingModule, list, Callable]:
    # noise_for_mask: the correspondence draws mask noise in training too
    config = CoCosNetConfig(**FACADES, contain_dontcare_label=False, ngf=4, ndf=8, spade_hidden_nc=8, n_layers_d=2,
                            num_d=1, image_size=(64, 64), noise_for_mask=True)
    module = CoCosNetTrainingModule(CoCosNetModel(config), CoCosNetDiscriminator(config),
                                    LabelMapProcessor(label_space="facades"), lambda_l1=1.0)
    return module, make_rows(64, 64, 12), crop_transform(64, 64, exemplars=True)


# family -> (builder, whether its training draws random numbers, trainer overrides)
FAMILIES = {
    "spade": (lambda: spade(use_vae=False), False, {}),
    "spade_vae": (lambda: spade(use_vae=True), True, {}),
    "spade_accumulation_ema": (lambda: spade(use_vae=True), True, {"gradient_accumulation_steps": 2,
                                                                    "ema_decay": 0.9}),
    "pix2pix": (pix2pix, True, {}),
    "pix2pixhd": (pix2pixhd, False, {}),
    "crn": (crn, False, {}),
    "sean": (sean, True, {}),
    "cocosnet": (cocosnet, True, {}),
}


def run(family: str, output_dir: Path, steps: int, **overrides) -> tuple[GANTrainer, dict[int, dict]]:
    """Train `family` for `steps` steps in total; returns the trainer and the logged losses of every step."""
    build, _, family_overrides = FAMILIES[family]
    torch.manual_seed(0)
    module, rows, transform = build()
    settings = {"train_batch_size": 2, "report_to": None, "validation_steps": 0, "checkpointing_steps": 0,
                "logging_steps": 1, "generator_lr": 1e-3, "discriminator_lr": 1e-3, **family_overrides}
    args = TrainingArguments(output_dir=str(output_dir), max_train_steps=steps, **{**settings, **overrides})
    trainer = GANTrainer(module, args, rows, transform)
    losses: dict[int, dict] = {}
    after_step = trainer._after_step

    def record(logs: dict[str, torch.Tensor], progress) -> None:
        losses[trainer.counter.step] = {k: v.detach().clone() for k, v in logs.items()}
        after_step(logs, progress)

    trainer._after_step = record
    trainer.train()
    return trainer, losses


def trained_state(trainer: GANTrainer) -> dict[str, torch.Tensor]:
    """Weights and buffers of every trained network, and the generator's Adam moments."""
    acc = trainer.accelerator
    state = {f"G.{k}": v for k, v in acc.unwrap_model(trainer.generator).state_dict().items()}
    if trainer.discriminator is not None:
        state.update({f"D.{k}": v for k, v in acc.unwrap_model(trainer.discriminator).state_dict().items()})
    if trainer.ema is not None:
        state.update({f"EMA.{k}": v for k, v in trainer.ema.state_dict().items()})
    for index, moments in trainer.opt_g.state_dict()["state"].items():
        state.update({f"opt_g.{index}.{k}": v for k, v in moments.items()})
    return state


@pytest.mark.parametrize("family", list(FAMILIES))
def test_resume_is_bit_identical(family: str, tmp_path: Path) -> None:
    straight, straight_losses = run(family, tmp_path / "straight", K + M)
    run(family, tmp_path / "resumed", K, checkpointing_steps=K)  # "killed" right after the checkpoint
    torch.manual_seed(1234)  # whatever the global RNG holds when the new process starts
    resumed, resumed_losses = run(family, tmp_path / "resumed", K + M, resume_from_checkpoint="latest")

    assert resumed.counter.step == K + M and sorted(resumed_losses) == list(range(K + 1, K + M + 1))
    for step in resumed_losses:
        assert resumed_losses[step].keys() == straight_losses[step].keys()
        for name, value in resumed_losses[step].items():
            assert torch.equal(value, straight_losses[step][name]), (step, name, value, straight_losses[step][name])
    expected = trained_state(straight)
    got = trained_state(resumed)
    assert got.keys() == expected.keys()
    for key, value in got.items():
        assert torch.equal(value, expected[key]), key
    # The training draws went through the module's generator (or, for deterministic families, there were none).
    _, draws, _ = FAMILIES[family]
    fresh = torch.Generator().manual_seed(resumed.module.training_rng.initial_seed()).get_state()
    assert torch.equal(resumed.module.training_rng.get_state(), fresh) != draws
