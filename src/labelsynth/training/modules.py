"""`GANTrainingModule`: what a model family tells the shared trainer (its models, losses, validation images)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..modeling_utils import save_discriminator
from ..processing import LabelMapProcessor


def default_collate(samples: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack the tensors of a list of sample dicts (all samples have the same keys)."""
    return {key: torch.stack([s[key] for s in samples]) for key in samples[0]}


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[B, 3, H, W] in [-1, 1] -> uint8 [B, H, W, 3]."""
    return ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()


class GANTrainingModule(nn.Module):
    """Base class: holds the generator and discriminator and computes the two losses of one iteration.

    The trainer passes the (possibly DDP-wrapped) models it prepared into the loss methods; modules must call those,
    not `self.generator`, for the forward passes that need gradients.
    """

    generator: nn.Module
    discriminator: nn.Module | None  # None: no adversarial training (the trainer skips the discriminator step)
    processor: LabelMapProcessor  # saved and pushed with the generator; colours the validation label maps

    # The source of every random draw of the losses (VAE noise, noise injection, dropout masks); see `training_rng`.
    _training_rng: torch.Generator | None = None

    def seed_training_rng(self, seed: int, device: torch.device | str = "cpu") -> None:
        """Give the module its own random source on `device`, seeded with `seed` (the trainer does this per
        process and saves its state in every checkpoint)."""
        self._training_rng = torch.Generator(device=device).manual_seed(seed)

    @property
    def training_rng(self) -> torch.Generator:
        """The generator that every random draw of the losses must use, never torch's global RNG: that one is also
        advanced by code outside the module (e.g. a new DataLoader iterator), so a resumed run would draw different
        noise from an uninterrupted one. Seeded with 0 on the CPU on first use when `seed_training_rng` was not
        called (a module used without the trainer)."""
        if self._training_rng is None:
            self.seed_training_rng(0)
        return self._training_rng

    def parameter_groups(self) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        """Parameters of the generator optimizer and of the discriminator optimizer."""
        discriminator = [] if self.discriminator is None else list(self.discriminator.parameters())
        return list(self.generator.parameters()), discriminator

    def on_step_begin(self, step: int, trainer: Any) -> None:
        """Called by the trainer before every (micro-)batch with the number of optimizer steps done so far (also right
        after a resume): the place for schedules that change what is trained, e.g. pix2pixHD's fixed global
        generator. `trainer` is the `GANTrainer` (its `opt_g` / `opt_d` are the optimizers)."""

    def generator_loss(self, generator: nn.Module, discriminator: nn.Module, batch: dict[str, torch.Tensor]
                       ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Total generator loss and its named terms."""
        raise NotImplementedError

    def discriminator_loss(self, generator: nn.Module, discriminator: nn.Module, batch: dict[str, torch.Tensor]
                           ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Total discriminator loss and its named terms."""
        raise NotImplementedError

    # The original pix2pix, pix2pixHD and CoCosNet train D on the generator step's fake instead of generating again.
    _last_fake: tuple[torch.Tensor, torch.Tensor] | None = None  # (label_map of the batch, its detached fake)

    def remember_fake(self, batch: dict[str, torch.Tensor], fake: torch.Tensor) -> None:
        """Keep the generator step's images (detached) for the discriminator step on the same batch."""
        self._last_fake = (batch["label_map"], fake.detach())

    def remembered_fake(self, batch: dict[str, torch.Tensor], regenerate: Callable[[], torch.Tensor]) -> torch.Tensor:
        """The images `remember_fake` kept for this very batch (handed out once), else `regenerate()` without
        gradients (a discriminator step called without the generator step of its batch)."""
        remembered, self._last_fake = self._last_fake, None
        if remembered is not None and remembered[0] is batch["label_map"]:
            return remembered[1]
        with torch.no_grad():
            return regenerate().detach()

    def generate(self, generator: nn.Module, batch: dict[str, torch.Tensor], rng: torch.Generator) -> torch.Tensor:
        """Images [B, 3, H, W] in [-1, 1] for validation."""
        raise NotImplementedError

    def validation_grid(self, batch: dict[str, torch.Tensor], fake: torch.Tensor) -> np.ndarray:
        """One row per sample: the coloured label map, the real image, the generated image (uint8 HxWx3).

        This default colours label maps with `self.processor` (a `LabelMapProcessor`).
        """
        rows = []
        for label, real, image in zip(batch["label_map"].cpu(), to_uint8(batch["pixel_values"]), to_uint8(fake)):
            colored = np.asarray(self.processor.colorize(label.numpy()))
            rows.append(np.concatenate([colored, real, image], axis=1))
        return np.concatenate(rows, axis=0)

    @staticmethod
    def collate_fn(samples: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        return default_collate(samples)

    def save_extras(self, output_dir: str | Path) -> None:
        """Save what goes with the generator: the processor, and the discriminator (for fine-tuning) in its
        subfolder."""
        self.processor.save_pretrained(output_dir)
        if self.discriminator is not None:
            save_discriminator(self.discriminator, output_dir)

    def push_extras(self, repo_id: str) -> None:
        """Push what goes with the generator: the processor."""
        self.processor.push_to_hub(repo_id)
