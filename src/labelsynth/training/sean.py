"""SEAN's training losses (Zhu et al. 2020, Sec. 4), for the shared trainer.

SEAN trains with SPADE's objective: hinge GAN + lambda_feat * discriminator feature matching + lambda_vgg * VGG19
perceptual loss (no KL: there is no VAE). The generator reconstructs each real image from its label map and the
region styles of that same image, as the original's training loop does; the discriminator sees
`cat(one-hot label map, image)`.
"""

from __future__ import annotations

import torch
from torch import nn

from ..models.sean import SEANDiscriminator, SEANModel
from ..processing import LabelMapProcessor
from .spade import SPADETrainingModule


class SEANTrainingModule(SPADETrainingModule):
    """Losses and models of SEAN training (SPADE's losses; the fake is a reconstruction through the style encoder).

    Args:
        model: the `SEANModel` to train (style encoder and generator).
        discriminator: the `SEANDiscriminator`.
        processor: the `LabelMapProcessor` saved with the model (also colours validation label maps).
        vgg: a VGG19 feature network for the perceptual loss (`labelsynth.layers.vgg.load_vgg19`); None disables it.
        gan_mode: "hinge" (default), "ls", "original" or "w" [`--gan_mode`].
        lambda_feat: weight of discriminator feature matching (10; 0 disables) [`--lambda_feat`].
        lambda_vgg: weight of the VGG loss (10) [`--lambda_vgg`].
        lambda_l1: weight of an L1 loss to the real image (0 in SEAN); steadies small runs without VGG weights.
    """

    def __init__(self, model: SEANModel, discriminator: SEANDiscriminator, processor: LabelMapProcessor,
                 vgg: nn.Module | None = None, gan_mode: str = "hinge", lambda_feat: float = 10.0,
                 lambda_vgg: float = 10.0, lambda_l1: float = 0.0):
        super().__init__(model, discriminator, processor, vgg=vgg, gan_mode=gan_mode, lambda_feat=lambda_feat,
                         lambda_vgg=lambda_vgg, lambda_kld=0.0, lambda_l1=lambda_l1)

    def _generate(self, generator: nn.Module, batch: dict[str, torch.Tensor]):
        return generator(label_map=batch["label_map"], style_image=batch["pixel_values"],
                         generator=self.training_rng)  # the noise injection

    @torch.no_grad()
    def generate(self, generator, batch, rng):
        return generator(label_map=batch["label_map"], style_image=batch["pixel_values"], generator=rng).images
