"""`GANTrainingModule`: what a model family tells the shared trainer (its models, losses, validation images)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn


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
    discriminator: nn.Module

    def parameter_groups(self) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        """Parameters of the generator optimizer and of the discriminator optimizer."""
        return list(self.generator.parameters()), list(self.discriminator.parameters())

    def generator_loss(self, generator: nn.Module, discriminator: nn.Module, batch: dict[str, torch.Tensor]
                       ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Total generator loss and its named terms."""
        raise NotImplementedError

    def discriminator_loss(self, generator: nn.Module, discriminator: nn.Module, batch: dict[str, torch.Tensor]
                           ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Total discriminator loss and its named terms."""
        raise NotImplementedError

    def generate(self, generator: nn.Module, batch: dict[str, torch.Tensor], rng: torch.Generator) -> torch.Tensor:
        """Images [B, 3, H, W] in [-1, 1] for validation."""
        raise NotImplementedError

    def validation_grid(self, batch: dict[str, torch.Tensor], fake: torch.Tensor) -> np.ndarray:
        """One row per sample: the coloured label map, the real image, the generated image (uint8 HxWx3)."""
        raise NotImplementedError

    @staticmethod
    def collate_fn(samples: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        return default_collate(samples)

    def save_extras(self, output_dir: str | Path) -> None:
        """Save what goes with the generator (processor, discriminator for fine-tuning)."""

    def push_extras(self, repo_id: str) -> None:
        """Push what goes with the generator."""
