"""CRN's training objective (Chen & Koltun 2017, Sec. 3.3-3.4) for the shared trainer.

No discriminator: the generator's k candidates are trained with the VGG-19 perceptual loss in its diversity form
(`labelsynth.losses.diversity`). The trainer sees `discriminator = None` and runs the generator step alone.
The original trained with Adam (lr 1e-4, TF's default betas (0.9, 0.999)) and batch size 1.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..layers.vgg import VGG19
from ..losses.diversity import CRNPerceptualLoss, diversity_reduction
from ..models.crn import CRNModel
from ..processing import LabelMapProcessor
from .modules import GANTrainingModule


class CRNTrainingModule(GANTrainingModule):
    """Loss and model of CRN training.

    Args:
        model: the `CRNModel` to train.
        processor: the `LabelMapProcessor` saved with the model (also colours validation label maps).
        vgg: a VGG-19 with average pooling (`load_vgg19(..., pool="avg")`); None trains with the image term alone
            (no VGG weights can be downloaded offline).
        layer_weights: lambdas of (image, relu1_2 .. relu5_2): a `CRN_LAYER_WEIGHTS` key (the dataset presets'
            names) or 6 numbers.
        vgg_input: "matconvnet" (the original's weights and input convention) or "imagenet" (torchvision weights).
    """

    def __init__(self, model: CRNModel, processor: LabelMapProcessor, vgg: VGG19 | None = None,
                 layer_weights: str | Sequence[float] = "cityscapes-256p", vgg_input: str = "matconvnet"):
        super().__init__()
        self.generator, self.discriminator, self.processor = model, None, processor
        self.loss = CRNPerceptualLoss(vgg, layer_weights, input_range=vgg_input)

    def generator_loss(self, generator, discriminator, batch):
        semantics = self.generator.build_semantic_input(batch["label_map"])
        candidates = generator(label_map=batch["label_map"]).candidates
        errors = self.loss.layer_errors(candidates, batch["pixel_values"], semantics)
        loss = diversity_reduction(torch.stack(errors).sum(0), self.loss.min_weight, self.loss.mean_weight)
        # Per-layer means over candidates and classes, as the original prints them (p0 = image, p1..p5 = VGG).
        logs = {"G_CRN": loss.detach(), **{f"p{i}": e.detach().sum(-1).mean() for i, e in enumerate(errors)}}
        return loss, logs

    @torch.no_grad()
    def generate(self, generator, batch, rng):
        return generator(label_map=batch["label_map"], output_index=0).images
