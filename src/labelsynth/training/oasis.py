"""OASIS's training losses (Schönfeld, Sushko et al., ICLR 2021, Sec. 3), for the shared trainer.

Discriminator: a per-pixel (N+1)-class segmenter. On real images its target is each pixel's label class, weighted
by the inverse class frequency of the batch; on generated images (drawn afresh, without gradients) the "fake" class
at every pixel, unweighted; plus lambda_labelmix * LabelMix, the consistency of D on an image mixed from the real
and the fake one by a random per-class mask. Generator: the class-balanced real-label cross-entropy of D on its
images (+ an optional lambda_vgg * VGG19 perceptual loss, off in the paper's recipe, and an optional lambda_l1 * L1
loss to the photo, not in the original). The 3D noise is one vector per
image drawn from the module's own random stream, like the LabelMix bits.

EMA of the generator (weights and buffers: spectral-norm vectors, BatchNorm statistics) and the re-estimation of the
EMA copy's BatchNorm statistics before validation and saving are the shared trainer's (`--ema_decay`,
`--ema_bn_batches`); `OASIS_TRAINING_PRESETS` holds the original's per-dataset settings.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..losses import VGGPerceptualLoss, labelmix_images, labelmix_loss, labelmix_mask, oasis_n1_loss
from ..models.oasis import OASISDiscriminator, OASISModel
from ..models.oasis.configuration_oasis import resolve_preset
from ..processing import LabelMapProcessor
from .modules import GANTrainingModule

# The original's training settings per dataset (its config.py and scripts/train_*.sh): batch size over 4 GPUs,
# epochs x (training images // batch) iterations (200 x 631 ADE20K, 200 x 148 Cityscapes, 100 x 3696 COCO-Stuff),
# constant learning rates with Adam betas (0, 0.999), EMA decay, LabelMix weight, FID (validation) frequency.
OASIS_TRAINING_PRESETS: dict[str, dict[str, Any]] = {
    "ade20k": {"train_batch_size": 32, "max_train_steps": 126_200, "generator_lr": 1e-4, "discriminator_lr": 4e-4,
               "adam_beta1": 0.0, "adam_beta2": 0.999, "ema_decay": 0.9999, "lambda_labelmix": 10.0,
               "validation_steps": 5000},
    "cityscapes": {"train_batch_size": 20, "max_train_steps": 29_600, "generator_lr": 4e-4, "discriminator_lr": 4e-4,
                   "adam_beta1": 0.0, "adam_beta2": 0.999, "ema_decay": 0.999, "lambda_labelmix": 5.0,
                   "validation_steps": 2500},
    "coco-stuff": {"train_batch_size": 32, "max_train_steps": 369_600, "generator_lr": 1e-4,
                   "discriminator_lr": 4e-4, "adam_beta1": 0.0, "adam_beta2": 0.999, "ema_decay": 0.9999,
                   "lambda_labelmix": 10.0, "validation_steps": 5000},
}


def oasis_training_preset(name: str) -> dict[str, Any]:
    """The original's training settings of a dataset preset ("ade20k", "cityscapes", "coco-stuff"; aliases such as
    "coco" accepted): trainer fields plus ``lambda_labelmix``."""
    label_space = resolve_preset(name)["label_space"]  # raises a ValueError naming the presets
    return dict(OASIS_TRAINING_PRESETS[label_space])


class OASISTrainingModule(GANTrainingModule):
    """Losses and models of OASIS training.

    Args:
        model: the `OASISModel` (generator) to train.
        discriminator: the `OASISDiscriminator`.
        processor: the `LabelMapProcessor` saved with the model (also colours validation label maps).
        lambda_labelmix: weight of the LabelMix term (10; 5 for Cityscapes; 0 disables it, the original's
            `--no_labelmix`) [`--lambda_labelmix`].
        class_balancing: weight the real-label cross-entropy by inverse class frequency (the original's default;
            False is its `--no_balancing_inloss`).
        vgg: a VGG19 feature network for the perceptual loss (`labelsynth.training.scripts.perceptual_vgg`); None
            (the paper's recipe) disables it.
        lambda_vgg: weight of the VGG loss (10, the original's `--lambda_vgg` with `--add_vgg_loss`).
        lambda_l1: weight of an L1 loss to the real image (not in OASIS; 0 by default). As in the other families'
            scripts it steadies small runs without ImageNet VGG weights, at the price of diversity: it pulls every
            noise towards the one photo.

    Logged terms: ``G_adv`` (+ ``G_VGG``, ``G_L1``), ``D_fake``, ``D_real``, ``D_LM`` (already multiplied by its
    lambda).
    """

    def __init__(self, model: OASISModel, discriminator: OASISDiscriminator, processor: LabelMapProcessor,
                 lambda_labelmix: float = 10.0, class_balancing: bool = True, vgg: nn.Module | None = None,
                 lambda_vgg: float = 10.0, lambda_l1: float = 0.0):
        super().__init__()
        if min(lambda_labelmix, lambda_vgg, lambda_l1) < 0:
            raise ValueError(f"loss weights must be >= 0, got lambda_labelmix={lambda_labelmix}, "
                             f"lambda_vgg={lambda_vgg}, lambda_l1={lambda_l1} (0 turns a term off)")
        self.generator, self.discriminator, self.processor = model, discriminator, processor
        self.lambda_labelmix, self.class_balancing = lambda_labelmix, class_balancing
        self.vgg_loss = VGGPerceptualLoss(vgg) if vgg is not None and lambda_vgg > 0 else None
        self.lambda_vgg, self.lambda_l1 = lambda_vgg, lambda_l1

    def _channels(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """OASIS label channels `[B, H, W]` of the batch (don't care -> 0)."""
        return self.generator.prepare_label_channels(batch["label_map"])

    def _generate(self, generator: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Images from fresh noise, one vector per image from the module's random stream (as the original's forward
        draws it at every call)."""
        noise = self.generator.sample_noise(batch["label_map"].shape[0], self.training_rng)
        return generator(label_map=batch["label_map"], noise=noise).images

    def _real_label_loss(self, logits: torch.Tensor, channels: torch.Tensor) -> torch.Tensor:
        return oasis_n1_loss(logits, channels, target_is_real=True, balance=self.class_balancing)

    def generator_loss(self, generator, discriminator, batch):
        channels = self._channels(batch)
        fake = self._generate(generator, batch)
        terms = {"G_adv": self._real_label_loss(discriminator(fake), channels)}
        if self.vgg_loss is not None:
            terms["G_VGG"] = self.vgg_loss(fake, batch["pixel_values"]) * self.lambda_vgg
        if self.lambda_l1 > 0:
            terms["G_L1"] = torch.nn.functional.l1_loss(fake, batch["pixel_values"]) * self.lambda_l1
        return sum(terms.values()), {k: v.detach() for k, v in terms.items()}

    def discriminator_loss(self, generator, discriminator, batch):
        real = batch["pixel_values"]
        channels = self._channels(batch)
        with torch.no_grad():
            fake = self._generate(generator, batch).detach()
        # Three separate D passes, as the original (in training mode each one advances spectral norm's power
        # iteration).
        logits_fake = discriminator(fake)
        logits_real = discriminator(real)
        terms = {"D_fake": oasis_n1_loss(logits_fake, channels, target_is_real=False),
                 "D_real": self._real_label_loss(logits_real, channels)}
        if self.lambda_labelmix > 0:
            mask = labelmix_mask(channels, self.training_rng).to(real.dtype)
            logits_mixed = discriminator(labelmix_images(mask, real, fake))
            terms["D_LM"] = self.lambda_labelmix * labelmix_loss(mask, logits_mixed, logits_fake, logits_real)
        return sum(terms.values()), {k: v.detach() for k, v in terms.items()}

    @torch.no_grad()
    def generate(self, generator, batch, rng):
        return generator(label_map=batch["label_map"], generator=rng).images
