"""SPADE's training losses (Park et al. 2019, Sec. 3 and Appendix A), for the shared trainer.

Generator: hinge GAN + lambda_feat * discriminator feature matching + lambda_vgg * VGG19 perceptual loss
(+ lambda_kld * KL for the VAE variant, whose encoder sees the real image). Discriminator: hinge on real and on a
freshly generated fake. The discriminator sees `cat(semantic input, image)`, real and fake in one batch.
"""

from __future__ import annotations

import torch
from torch import nn

from ..losses import GANLoss, VGGPerceptualLoss, feature_matching_loss, kl_divergence
from ..models.spade import SPADEDiscriminator, SPADEModel
from ..processing import LabelMapProcessor
from .modules import GANTrainingModule


class SPADETrainingModule(GANTrainingModule):
    """Losses and models of SPADE training.

    Args:
        model: the `SPADEModel` to train (its encoder too when `use_vae`).
        discriminator: the `SPADEDiscriminator`.
        processor: the `LabelMapProcessor` saved with the model (also colours validation label maps).
        vgg: a VGG19 feature network for the perceptual loss (`labelsynth.layers.vgg.load_vgg19`); None disables it.
        gan_mode: "hinge" (SPADE default), "ls", "original" or "w" [`--gan_mode`].
        lambda_feat: weight of discriminator feature matching (10; 0 disables) [`--lambda_feat`].
        lambda_vgg: weight of the VGG loss (10) [`--lambda_vgg`].
        lambda_kld: weight of the KL term of the VAE (0.05) [`--lambda_kld`].
        lambda_l1: weight of an L1 loss to the real image (pix2pix's reconstruction term; 0 in SPADE). Useful for
            small runs without ImageNet VGG weights, where it steadies the colours.
    """

    def __init__(self, model: SPADEModel, discriminator: SPADEDiscriminator, processor: LabelMapProcessor,
                 vgg: nn.Module | None = None, gan_mode: str = "hinge", lambda_feat: float = 10.0,
                 lambda_vgg: float = 10.0, lambda_kld: float = 0.05, lambda_l1: float = 0.0):
        super().__init__()
        self.generator, self.discriminator, self.processor = model, discriminator, processor
        self.gan_loss = GANLoss(gan_mode)
        self.vgg_loss = VGGPerceptualLoss(vgg) if vgg is not None and lambda_vgg > 0 else None
        self.lambda_feat, self.lambda_vgg, self.lambda_kld, self.lambda_l1 = lambda_feat, lambda_vgg, lambda_kld, lambda_l1

    def _semantics(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.generator.build_semantic_input(batch["label_map"], batch.get("instance_map"))

    def _generate(self, generator: nn.Module, batch: dict[str, torch.Tensor]):
        style = batch["pixel_values"] if self.generator.config.use_vae else None
        return generator(label_map=batch["label_map"], instance_map=batch.get("instance_map"), style_image=style,
                         generator=self.training_rng)  # the VAE's reparameterisation noise

    @staticmethod
    def _discriminate(discriminator: nn.Module, semantics: torch.Tensor, fake: torch.Tensor, real: torch.Tensor):
        """One D pass over [fake; real] (as the original: one spectral-norm power iteration), split per half."""
        outputs = discriminator(torch.cat([semantics, semantics]), torch.cat([fake, real]))
        batch = fake.shape[0]
        fake_out = [[f[:batch] for f in scale] for scale in outputs]
        real_out = [[f[batch:] for f in scale] for scale in outputs]
        return fake_out, real_out

    def generator_loss(self, generator, discriminator, batch):
        real = batch["pixel_values"]
        semantics = self._semantics(batch)
        output = self._generate(generator, batch)
        fake = output.images
        pred_fake, pred_real = self._discriminate(discriminator, semantics, fake, real)
        terms = {"G_GAN": self.gan_loss.generator_loss(pred_fake)}
        if self.lambda_feat > 0:
            terms["G_GAN_Feat"] = feature_matching_loss(pred_fake, pred_real) * self.lambda_feat
        if self.vgg_loss is not None:
            terms["G_VGG"] = self.vgg_loss(fake, real) * self.lambda_vgg
        if self.lambda_l1 > 0:
            terms["G_L1"] = torch.nn.functional.l1_loss(fake, real) * self.lambda_l1
        if output.mu is not None:
            terms["G_KLD"] = kl_divergence(output.mu, output.logvar) * self.lambda_kld
        return sum(terms.values()), {k: v.detach() for k, v in terms.items()}

    def discriminator_loss(self, generator, discriminator, batch):
        real = batch["pixel_values"]
        semantics = self._semantics(batch)
        with torch.no_grad():
            fake = self._generate(generator, batch).images.detach()
        pred_fake, pred_real = self._discriminate(discriminator, semantics, fake, real)
        terms = {"D_Fake": self.gan_loss.discriminator_loss(pred_fake, target_is_real=False),
                 "D_real": self.gan_loss.discriminator_loss(pred_real, target_is_real=True)}
        return sum(terms.values()), {k: v.detach() for k, v in terms.items()}

    @torch.no_grad()
    def generate(self, generator, batch, rng):
        return generator(label_map=batch["label_map"], instance_map=batch.get("instance_map"), generator=rng).images
