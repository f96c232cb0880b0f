"""pix2pix's training losses (Isola et al. 2017, Sec. 3.1 and 3.3), for the shared trainer.

Generator: GAN(D(x, G(x)), real) + lambda_L1 * L1(G(x), y) with lambda_L1 = 100. Discriminator:
0.5 * (GAN(D(x, G(x)), fake) + GAN(D(x, y), real)), "vanilla" GAN (binary cross-entropy on the patch logits) or
LSGAN. The discriminator sees `cat(generator input, image)`; real and fake go through it in separate passes, so its
BatchNorm normalises each with its own statistics, as in the original. As the original computes every loss of an
iteration from one generator forward, the discriminator step reuses the fake of the generator step (computed before
the generator update). The original trains with Adam (lr 2e-4, betas (0.5, 0.999)) for G and D, batch size 1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..losses import GANLoss
from ..models.pix2pix import Pix2PixDiscriminator, Pix2PixModel
from ..processing import LabelMapProcessor
from .modules import GANTrainingModule


class Pix2PixTrainingModule(GANTrainingModule):
    """Losses and models of pix2pix training.

    Args:
        model: the `Pix2PixModel` to train.
        discriminator: the `Pix2PixDiscriminator`.
        processor: the `LabelMapProcessor` saved with the model (also colours validation label maps).
        gan_mode: "original" (pix2pix's `--gan_mode vanilla`, binary cross-entropy with logits), "ls" (`lsgan`),
            "hinge" or "w".
        lambda_l1: weight of the L1 loss to the real image [`--lambda_L1`, 100].
    """

    def __init__(self, model: Pix2PixModel, discriminator: Pix2PixDiscriminator, processor: LabelMapProcessor,
                 gan_mode: str = "original", lambda_l1: float = 100.0):
        super().__init__()
        self.generator, self.discriminator, self.processor = model, discriminator, processor
        self.gan_loss = GANLoss(gan_mode)
        self.lambda_l1 = lambda_l1

    def _condition(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.generator.label_input(batch["label_map"], batch.get("instance_map"))

    def _generate(self, generator: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        # Training mode draws the U-Net's dropout masks from `generator=`.
        return generator(label_map=batch["label_map"], instance_map=batch.get("instance_map"),
                         generator=self.training_rng).images

    def generator_loss(self, generator, discriminator, batch):
        real = batch["pixel_values"]
        fake = self._generate(generator, batch)
        self.remember_fake(batch, fake)
        terms = {"G_GAN": self.gan_loss.generator_loss(discriminator(self._condition(batch), fake))}
        if self.lambda_l1 > 0:
            terms["G_L1"] = F.l1_loss(fake, real) * self.lambda_l1
        return sum(terms.values()), {k: v.detach() for k, v in terms.items()}

    def discriminator_loss(self, generator, discriminator, batch):
        real = batch["pixel_values"]
        condition = self._condition(batch)
        fake = self.remembered_fake(batch, lambda: self._generate(generator, batch))
        terms = {"D_fake": self.gan_loss.discriminator_loss(discriminator(condition, fake), target_is_real=False),
                 "D_real": self.gan_loss.discriminator_loss(discriminator(condition, real), target_is_real=True)}
        return 0.5 * sum(terms.values()), {k: v.detach() for k, v in terms.items()}

    @torch.no_grad()
    def generate(self, generator, batch, rng):
        """Validation images in the model's test mode (`config.test_mode`), dropout masks drawn from `rng`."""
        return generator(label_map=batch["label_map"], instance_map=batch.get("instance_map"), generator=rng).images
