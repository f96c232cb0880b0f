"""pix2pixHD's training losses and schedule (Wang et al. 2018, Sec. 3), for the shared trainer.

Generator: LSGAN loss summed over the discriminator scales + lambda_feat * discriminator feature matching (per-stage
weight 4 / (n_layers_D + 1), 1 / num_D per scale) + lambda_vgg * VGG19 perceptual loss. With the feature encoder, the
generator gets the encoder's instance-pooled features of the real image and the encoder trains with it.
Discriminator: 0.5 * (LSGAN on the fake + LSGAN on the real), on the fake of the generator step (before its update,
as the original computes every loss from one forward pass) and on D(real) of the generator step (computed once per
iteration, as the original: D does not change between the two steps). The discriminator sees `cat(semantic input,
image)`, never the encoded features.

Coarse-to-fine schedule: train a global model first; then a "local" model starts from it (`init_from_global_model`)
and, for `fix_global_steps` steps, only the outermost local enhancer (and the encoder) is trained, after which the
whole generator is (with a fresh Adam state, as the original re-creates its optimizer) [`--niter_fix_global`].
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..losses import GANLoss, VGGPerceptualLoss, feature_matching_loss
from ..models.pix2pixhd import Pix2PixHDDiscriminator, Pix2PixHDModel
from ..processing import LabelMapProcessor
from .modules import GANTrainingModule


def init_from_global_model(model: Pix2PixHDModel, global_model: Pix2PixHDModel) -> None:
    """Copy a trained global model's G1 (and encoder) into a local model, as the original's `--load_pretrain`.

    The global model must have the same semantic input and `ngf == model.config.global_ngf` (64 for the 1024p recipe
    over a 512p model); its output conv is dropped (G1 hands its features to the local enhancers).
    """
    if model.config.generator_type != "local" or global_model.config.generator_type != "global":
        raise ValueError("init_from_global_model copies a 'global' model's generator into a 'local' model")
    source = {k: v for k, v in global_model.generator.global_generator.state_dict().items()
              if not k.startswith("to_output.")}
    target = model.generator.global_generator
    mismatched = [k for k, v in target.state_dict().items() if k not in source or source[k].shape != v.shape]
    if mismatched or len(source) != len(target.state_dict()):
        raise ValueError(
            f"the global model does not fit this local model's global generator (e.g. {mismatched[:3]}): it needs "
            f"ngf={model.config.global_ngf}, the same n_downsample_global / n_blocks_global / norm and the same "
            "label space, instance edges and features"
        )
    target.load_state_dict(source)
    if model.encoder is not None and global_model.encoder is not None:
        model.encoder.load_state_dict(global_model.encoder.state_dict())


class Pix2PixHDTrainingModule(GANTrainingModule):
    """Losses, models and schedule of pix2pixHD training.

    Args:
        model: the `Pix2PixHDModel` to train (with its encoder when `feature_mode` is set).
        discriminator: the `Pix2PixHDDiscriminator`.
        processor: the `LabelMapProcessor` saved with the model (also colours validation label maps).
        vgg: a VGG19 feature network for the perceptual loss (`labelsynth.layers.vgg.load_vgg19`); None disables it
            [`--no_vgg_loss`].
        gan_mode: "ls" (pix2pixHD's LSGAN) or "original" (`--no_lsgan`), "hinge", "w".
        lambda_feat: weight of discriminator feature matching (10; 0 disables it, `--no_ganFeat_loss`)
            [`--lambda_feat`].
        lambda_vgg: weight of the VGG loss (the original reuses `--lambda_feat`, 10).
        lambda_l1: weight of an L1 loss to the real image (not in pix2pixHD; steadies small runs without VGG).
        fix_global_steps: optimizer steps during which only the outermost local enhancer (and the encoder) trains
            [`--niter_fix_global`, counted in steps here instead of epochs].
    """

    def __init__(self, model: Pix2PixHDModel, discriminator: Pix2PixHDDiscriminator, processor: LabelMapProcessor,
                 vgg: nn.Module | None = None, gan_mode: str = "ls", lambda_feat: float = 10.0,
                 lambda_vgg: float = 10.0, lambda_l1: float = 0.0, fix_global_steps: int = 0):
        super().__init__()
        if fix_global_steps and model.config.generator_type != "local":
            raise ValueError("fix_global_steps (--niter_fix_global) needs a 'local' generator: it trains the local "
                             "enhancer alone first")
        self.generator, self.discriminator, self.processor = model, discriminator, processor
        self.gan_loss = GANLoss(gan_mode, scale_reduction="sum")
        self.vgg_loss = VGGPerceptualLoss(vgg) if vgg is not None and lambda_vgg > 0 else None
        self.lambda_feat, self.lambda_vgg, self.lambda_l1 = lambda_feat, lambda_vgg, lambda_l1
        self.fix_global_steps = fix_global_steps

    # ------------------------------------------------------------------------------------------- schedule
    def frozen_modules(self, step: int) -> list[nn.Module]:
        """The generator parts not trained at `step`: everything but the outermost local enhancer (and the
        encoder) while `step < fix_global_steps`."""
        if step >= self.fix_global_steps:
            return []
        generator = self.generator.generator
        return [generator.global_generator, *generator.local_enhancers[:-1]]

    def on_step_begin(self, step: int, trainer: Any) -> None:
        frozen = self.frozen_modules(step)
        for module in (self.generator.generator.global_generator, *self.generator.generator.local_enhancers):
            module.requires_grad_(not any(module is f for f in frozen))
        if self.fix_global_steps and step == self.fix_global_steps:
            # The original re-creates Adam over all generator parameters here: start from a fresh state.
            optimizer = getattr(trainer.opt_g, "optimizer", trainer.opt_g)
            optimizer.state.clear()

    # ------------------------------------------------------------------------------------------- losses
    def _semantics(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.generator.build_semantic_input(batch["label_map"], batch.get("instance_map"))

    def _generate(self, generator: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        # With the feature encoder the generator is conditioned on the real image's encoded features.
        style = batch["pixel_values"] if self.generator.config.use_features else None
        return generator(label_map=batch["label_map"], instance_map=batch.get("instance_map"),
                         style_image=style).images

    # The discriminator's outputs on the real images of the generator step, with their graph, for the discriminator
    # step on the same batch: D is unchanged between the two, so the original computes D(real) once per iteration.
    _last_real: tuple[torch.Tensor, Any] | None = None

    def _real_predictions(self, discriminator: nn.Module, semantics: torch.Tensor, batch: dict[str, torch.Tensor]):
        """D(real) for the generator step's feature-matching targets, recorded for D's gradients (the trainer
        freezes D during the generator step) and kept for the discriminator step of the same batch."""
        if not torch.is_grad_enabled():
            return discriminator(semantics, batch["pixel_values"])
        frozen = [p for p in discriminator.parameters() if not p.requires_grad]
        for p in frozen:
            p.requires_grad_(True)
        try:
            pred_real = discriminator(semantics, batch["pixel_values"])
        finally:
            for p in frozen:
                p.requires_grad_(False)
        self._last_real = (batch["label_map"], pred_real)
        return pred_real

    def generator_loss(self, generator, discriminator, batch):
        real = batch["pixel_values"]
        semantics = self._semantics(batch)
        fake = self._generate(generator, batch)
        self.remember_fake(batch, fake)
        pred_fake = discriminator(semantics, fake)
        terms = {"G_GAN": self.gan_loss.generator_loss(pred_fake)}
        if self.lambda_feat > 0:
            # Only targets here (feature_matching_loss detaches them); the discriminator step reuses them.
            pred_real = self._real_predictions(discriminator, semantics, batch)
            terms["G_GAN_Feat"] = feature_matching_loss(pred_fake, pred_real, layer_weight="pix2pixhd") * self.lambda_feat
        if self.vgg_loss is not None:
            terms["G_VGG"] = self.vgg_loss(fake, real) * self.lambda_vgg
        if self.lambda_l1 > 0:
            terms["G_L1"] = F.l1_loss(fake, real) * self.lambda_l1
        return sum(terms.values()), {k: v.detach() for k, v in terms.items()}

    def discriminator_loss(self, generator, discriminator, batch):
        real = batch["pixel_values"]
        semantics = self._semantics(batch)
        fake = self.remembered_fake(batch, lambda: self._generate(generator, batch))
        remembered, self._last_real = self._last_real, None
        if remembered is not None and remembered[0] is batch["label_map"]:
            pred_real = remembered[1]
        else:
            pred_real = discriminator(semantics, real)
        terms = {"D_fake": self.gan_loss.discriminator_loss(discriminator(semantics, fake), target_is_real=False),
                 "D_real": self.gan_loss.discriminator_loss(pred_real, target_is_real=True)}
        return 0.5 * sum(terms.values()), {k: v.detach() for k, v in terms.items()}

    # ------------------------------------------------------------------------------------------- outputs
    @torch.no_grad()
    def generate(self, generator, batch, rng):
        """Validation images: with the feature encoder, from the real image's features (no feature bank yet)."""
        style = batch["pixel_values"] if self.generator.config.use_features else None
        return generator(label_map=batch["label_map"], instance_map=batch.get("instance_map"), style_image=style,
                         generator=rng).images
