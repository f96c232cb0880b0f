"""CoCosNet's training (Zhang et al. 2020, Sec. 3.3 and the released recipe), for the shared trainer.

Training pairs: every label map gets an exemplar, with probability `real_reference_probability` (0.7) a retrieved
photo of a similar scene (its "hard" exemplar with probability `hard_reference_probability`, 0.2), otherwise its own
photo under a different random crop/flip ("self-reference"). Exemplars come from a list file in the original's
format (`name,exemplar[,more exemplars...]` per line, names with or without extension; the original ships
`ade20k_ref.txt`) or from `retrieve_exemplars`, a simple built-in retrieval by label-histogram similarity.

Generator + correspondence losses (weights of the ADE20K recipe):

==================================  ====================================================  ========
term                                what                                                   weight
==================================  ====================================================  ========
``G_GAN``                           hinge GAN                                             10
``G_GAN_Feat``                      discriminator feature matching (L1)                   10
``G_domain``                        L1 between the adaptors' label features and the       10
                                    features of the real photo (domain alignment)
``G_vgg_fm``                        VGG-19 relu{1..5}_2 L1 to the real image, weights      1
                                    1/32..1, self-reference samples only
``G_perceptual``                    MSE of VGG relu5_2 to the real image                  0.01
``G_contextual``                    contextual loss to the exemplar (relu3_2/4_2/5_2)     10
``G_warp_mask``                     NLL of the warped exemplar label map vs. the label     100
                                    map (classes absent from the exemplar and class 0
                                    ignored)
``G_warp_cycle`` (optional)         L1 of the exemplar warped to the label map and back    0
                                    to the 4x-pooled exemplar (``warp_cycle_w``)
``G_warp_self`` (optional)          L1 of the warped exemplar to the real image,           0
                                    self-reference samples only (``warp_self_w``)
==================================  ====================================================  ========

Discriminator: hinge on real and fake, times 10. VGG inputs: CoCosNet's own Caffe-style `vgg19_conv.pth`
(`load_cocosnet_vgg19`; [-1, 1] -> [0, 1], BGR, minus the Caffe mean, x255) or torchvision weights (ImageNet
normalisation).
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data._io import decode_label
from ..label_spaces import get_label_space
from ..layers.vgg import VGG19, load_vgg19
from ..losses import GANLoss, feature_matching_loss
from ..losses.contextual import cocosnet_contextual_loss
from ..models.cocosnet import CoCosNetDiscriminator, CoCosNetModel
from ..processing import LabelMapProcessor
from ..state_dict_utils import load_torch_state_dict
from .modules import GANTrainingModule, to_uint8

__all__ = ["CoCosNetTrainingModule", "ExemplarPairTransform", "load_cocosnet_vgg19", "read_exemplar_list",
           "retrieve_exemplars"]

VGG_LAYERS = ("relu1_2", "relu2_2", "relu3_2", "relu4_2", "relu5_2")
VGG_FM_WEIGHTS = (1.0 / 32, 1.0 / 16, 1.0 / 8, 1.0 / 4, 1.0)
_CAFFE_MEAN_BGR = (0.40760392, 0.45795686, 0.48501961)
_IMAGENET_MEAN, _IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
_CAFFE_KEY = re.compile(r"^(conv\d_\d)\.(weight|bias)$")


# ------------------------------------------------------------------------------------------------ exemplar pairs
def _stem(name: str) -> str:
    return Path(name.strip()).stem


def read_exemplar_list(path: str | Path) -> dict[str, list[str]]:
    """`{name: [exemplar, ...]}` from a list file with lines `name,exemplar[,exemplar...]` (CoCosNet's format)."""
    pairs: dict[str, list[str]] = {}
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip():
            continue
        items = [item for item in line.strip().split(",") if item.strip()]
        if len(items) < 2:
            raise ValueError(f"{path}:{number}: expected 'name,exemplar[,exemplar...]', got {line!r}")
        pairs[_stem(items[0])] = [_stem(item) for item in items[1:]]
    return pairs


def retrieve_exemplars(rows: Any, label_space: str, num_exemplars: int = 5, size: int = 64) -> dict[str, list[str]]:
    """Built-in exemplar retrieval: for every row, the `num_exemplars` other rows whose label maps are most similar.

    Similarity: cosine of the class-frequency histograms (square-rooted, so large regions do not dominate) plus the
    cosine of coarse 4x4 layouts of those frequencies, a cheap stand-in for the original's VGG-feature retrieval. The
    first exemplar is the closest ("easy"), the last the "hard" one. Rows are named by their `image_id`.
    """
    space = get_label_space(label_space)
    num_ids = max(space.num_classes, 256)
    names, features = [], []
    for index in range(len(rows)):
        row = rows[index]
        ids = decode_label(row["label"], space, what=f"row {index}: label")
        ids = torch.from_numpy(np.asarray(ids, dtype=np.int64))
        small = F.interpolate(ids[None, None].float(), size=(size, size), mode="nearest")[0, 0].long().clamp(0, num_ids - 1)
        one_hot = F.one_hot(small, num_ids).float()  # [size, size, ids]
        histogram = one_hot.mean((0, 1)).sqrt()
        layout = F.adaptive_avg_pool2d(one_hot.permute(2, 0, 1)[None], 4).flatten().sqrt()
        features.append(torch.cat([F.normalize(histogram, dim=0), F.normalize(layout, dim=0)]))
        names.append(str(row.get("image_id") or index))
    if len(names) < 2:
        raise ValueError("exemplar retrieval needs at least two training rows")
    matrix = torch.stack(features)
    similarity = matrix @ matrix.t()
    similarity.fill_diagonal_(-float("inf"))
    k = min(num_exemplars, len(names) - 1)
    order = similarity.topk(k, dim=1).indices
    return {names[i]: [names[j] for j in order[i].tolist()] for i in range(len(names))}


class ExemplarPairTransform:
    """Training samples with exemplars: `apply(row, rng)` -> the row's `pixel_values` / `label_map` plus `exemplar`,
    `exemplar_label_map` and `self_reference` (1.0 for self-reference samples).

    Args:
        rows: the training rows (random access; `image_id` names them, as the list file / retrieval do).
        transform: the paired crop/flip transform (`labelsynth.data.PairedTransform`); the exemplar gets its own
            random parameters.
        pairs: `{name: [easy exemplar, ..., hard exemplar]}` (`read_exemplar_list` / `retrieve_exemplars`).
        real_reference_probability: probability of a retrieved exemplar (else self-reference) [0.7].
        hard_reference_probability: probability of the hard (last listed) exemplar [0.2]; drawn with the same
            number as the real-reference choice, as the original does.
    """

    def __init__(self, rows: Any, transform: Any, pairs: Mapping[str, Sequence[str]],
                 real_reference_probability: float = 0.7, hard_reference_probability: float = 0.2):
        self.rows, self.transform, self.pairs = rows, transform, {k: list(v) for k, v in pairs.items()}
        self.real_reference_probability = real_reference_probability
        self.hard_reference_probability = hard_reference_probability
        names = rows["image_id"] if "image_id" in getattr(rows, "column_names", ()) else [str(i) for i in
                                                                                           range(len(rows))]
        self.index = {str(name): i for i, name in enumerate(names)}
        missing = sorted({e for v in self.pairs.values() for e in v} - set(self.index))
        if missing:
            raise ValueError(f"{len(missing)} exemplars of the pair list are not training rows (by image_id), e.g. "
                             f"{missing[:3]}; the exemplars must be part of the training set")

    def apply(self, row: Mapping[str, Any], rng: random.Random | None = None) -> dict[str, torch.Tensor]:
        rng = rng or random.Random()
        sample = self.transform.apply(row, rng=rng)
        name = str(row.get("image_id"))
        choice = rng.random()
        exemplars = self.pairs.get(name)
        if exemplars and choice < self.real_reference_probability:
            exemplar_name = exemplars[-1] if choice < self.hard_reference_probability else exemplars[0]
            exemplar = self.transform.apply(self.rows[self.index[exemplar_name]], rng=rng)
            self_reference = 0.0
        else:  # the same photo under new crop/flip parameters
            exemplar = self.transform.apply(row, rng=rng)
            self_reference = 1.0
        sample["exemplar"] = exemplar["pixel_values"]
        sample["exemplar_label_map"] = exemplar["label_map"]
        sample["self_reference"] = torch.tensor(self_reference)
        return sample


# ----------------------------------------------------------------------------------------------------- the VGG
def load_cocosnet_vgg19(path: str | Path) -> VGG19:
    """CoCosNet's `models/vgg19_conv.pth` (keys `conv1_1.weight` ...) or any `load_vgg19` source as a `VGG19`."""
    path = Path(path)
    if path.is_file() and path.suffix in (".pth", ".pt"):
        state = load_torch_state_dict(path, f"VGG-19 weights {path}")
        if state and all(_CAFFE_KEY.match(k) for k in state):
            from ..layers.vgg import vgg19_layer_index

            renamed = {f"features.{vgg19_layer_index(m.group(1))}.{m.group(2)}": v
                       for k, v in state.items() for m in [_CAFFE_KEY.match(k)]}
            return load_vgg19(renamed)
    return load_vgg19(path)


class _VGGFeatures(nn.Module):
    """Frozen VGG-19 returning CoCosNet's five layers, with its input preprocessing ("caffe" or "imagenet")."""

    def __init__(self, vgg: VGG19, preprocessing: str = "caffe"):
        super().__init__()
        if preprocessing not in ("caffe", "imagenet"):
            raise ValueError(f"preprocessing must be 'caffe' or 'imagenet', got {preprocessing!r}")
        self.vgg, self.preprocessing = vgg, preprocessing
        mean = _CAFFE_MEAN_BGR if preprocessing == "caffe" else _IMAGENET_MEAN
        std = (1 / 255,) * 3 if preprocessing == "caffe" else _IMAGENET_STD
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        x = (images.float() + 1) / 2
        if self.preprocessing == "caffe":
            x = x.flip(1)  # RGB -> BGR
        x = (x - self.mean) / self.std
        with torch.autocast(device_type=x.device.type, enabled=False):
            return dict(zip(VGG_LAYERS, self.vgg.slices(x, VGG_LAYERS)))


# ------------------------------------------------------------------------------------------------ the losses
def warp_mask_loss(warped_label: torch.Tensor, label_channels: torch.Tensor,
                   exemplar_channels: torch.Tensor) -> torch.Tensor:
    """NLL of the warped exemplar label map `[B, L, h, w]` against the label map (channel ids `[B, H, W]`) at the
    grid size; pixels of classes absent from the exemplar, and class 0 ("other"), carry no loss."""
    grid = tuple(warped_label.shape[-2:])

    def down(ids: torch.Tensor) -> torch.Tensor:
        return F.interpolate(ids[:, None].float(), size=grid, mode="nearest")[:, 0].long()

    target, exemplar = down(label_channels), down(exemplar_channels)
    num = warped_label.shape[1]
    present = F.one_hot(exemplar.flatten(1), num).amax(1)  # [B, L]: classes of the exemplar
    weights = present.gather(1, target.flatten(1)).view_as(target).float() * (target != 0).float()
    nll = F.nll_loss(torch.log(warped_label.float() + 1e-10), target, reduction="none")
    return (nll * weights).sum() / (weights.sum() + 1e-5)


class CoCosNetTrainingModule(GANTrainingModule):
    """Losses and models of CoCosNet training (see the module docstring for the terms and weights).

    Args:
        model: the `CoCosNetModel` (both networks are trained, with the generator optimizer).
        discriminator: the `CoCosNetDiscriminator`.
        processor: the `LabelMapProcessor` saved with the model.
        vgg: a `VGG19` (`load_cocosnet_vgg19`); None disables the VGG terms (feature matching, perceptual,
            contextual).
        vgg_preprocessing: "caffe" for CoCosNet's `vgg19_conv.pth`, "imagenet" for torchvision weights.
        lambda_l1: an extra L1 to the real image on self-reference samples (0 in CoCosNet; steadies tiny runs
            without VGG weights).
        warp_cycle_w: the original's optional warp-cycle loss: L1 between the 4x-pooled exemplar and the warped
            exemplar carried back by the reverse correspondence (0 in the released ADE20K recipe).
        warp_self_w: the original's optional warp-self loss: L1 between the warped exemplar and the real image on
            self-reference samples (0 in the released recipe).
        The other weights are named as the original's options.
    """

    def __init__(self, model: CoCosNetModel, discriminator: CoCosNetDiscriminator, processor: LabelMapProcessor,
                 vgg: VGG19 | None = None, vgg_preprocessing: str = "caffe", gan_mode: str = "hinge",
                 weight_gan: float = 10.0, lambda_feat: float = 10.0, novgg_featpair: float = 10.0,
                 lambda_vgg: float = 10.0, fm_ratio: float = 0.1, weight_perceptual: float = 0.01,
                 ctx_w: float = 1.0, weight_mask: float = 100.0, lambda_l1: float = 0.0, warp_cycle_w: float = 0.0,
                 warp_self_w: float = 0.0):
        super().__init__()
        self.generator, self.discriminator, self.processor = model, discriminator, processor
        self.vgg = _VGGFeatures(vgg, vgg_preprocessing) if vgg is not None else None
        self.gan_loss = GANLoss(gan_mode)
        self.weight_gan, self.lambda_feat, self.novgg_featpair = weight_gan, lambda_feat, novgg_featpair
        self.lambda_vgg, self.fm_ratio, self.weight_perceptual, self.ctx_w = lambda_vgg, fm_ratio, weight_perceptual, ctx_w
        self.weight_mask, self.lambda_l1 = weight_mask, lambda_l1
        self.warp_cycle_w, self.warp_self_w = warp_cycle_w, warp_self_w

    def _semantics(self, label_map: torch.Tensor) -> torch.Tensor:
        return self.generator.build_semantic_input(label_map)

    def _generate(self, model: nn.Module, batch: dict[str, torch.Tensor], **kwargs: Any):
        kwargs.setdefault("generator", self.training_rng)  # mask noise (noise_for_mask models)
        return model(label_map=batch["label_map"], exemplar=batch["exemplar"],
                     exemplar_label_map=batch["exemplar_label_map"], **kwargs)

    @staticmethod
    def _discriminate(discriminator: nn.Module, semantics: torch.Tensor, fake: torch.Tensor, real: torch.Tensor):
        outputs = discriminator(torch.cat([semantics, semantics]), torch.cat([fake, real]))
        n = fake.shape[0]
        return [[f[:n] for f in scale] for scale in outputs], [[f[n:] for f in scale] for scale in outputs]

    def generator_loss(self, generator, discriminator, batch):
        real = batch["pixel_values"]
        semantics = self._semantics(batch["label_map"])
        output = self._generate(generator, batch, output_warped_label=self.weight_mask > 0,
                                output_warp_cycle=self.warp_cycle_w > 0, alignment_image=real)
        fake = output.images
        self.remember_fake(batch, fake)
        terms = {}
        if self.weight_gan > 0 or self.lambda_feat > 0:  # without adversarial terms the discriminator is not run
            pred_fake, pred_real = self._discriminate(discriminator, semantics, fake, real)
            if self.weight_gan > 0:
                terms["G_GAN"] = self.gan_loss.generator_loss(pred_fake) * self.weight_gan
            if self.lambda_feat > 0:
                terms["G_GAN_Feat"] = feature_matching_loss(pred_fake, pred_real) * self.lambda_feat
        if self.novgg_featpair > 0:
            terms["G_domain"] = F.l1_loss(output.label_features, output.alignment_features) * self.novgg_featpair
        self_reference = batch["self_reference"].float().view(-1, 1, 1, 1)
        sample_weights = self_reference / (self_reference.sum() + 1e-5)
        if self.vgg is not None:
            fake_features = self.vgg(fake)
            with torch.no_grad():
                real_features = self.vgg(real)
                exemplar_features = self.vgg(batch["exemplar"])
            if self.fm_ratio > 0:
                fm = sum(w * ((fake_features[k] - real_features[k]).abs() * sample_weights).mean()
                         for w, k in zip(VGG_FM_WEIGHTS, VGG_LAYERS))
                terms["G_vgg_fm"] = fm * self.lambda_vgg * self.fm_ratio
            if self.weight_perceptual > 0:
                terms["G_perceptual"] = F.mse_loss(fake_features["relu5_2"], real_features["relu5_2"]) * \
                    self.weight_perceptual
            if self.ctx_w > 0:
                centering = "channels" if self.generator.config.param_free_norm == "positional" else "positions"
                terms["G_contextual"] = cocosnet_contextual_loss(fake_features, exemplar_features,
                                                                 centering=centering) * self.lambda_vgg * self.ctx_w
        if self.weight_mask > 0 and output.warped_exemplar_label is not None:
            label = self.generator.prepare_label_channels(batch["label_map"])
            exemplar_label = self.generator.prepare_label_channels(batch["exemplar_label_map"])
            terms["G_warp_mask"] = warp_mask_loss(output.warped_exemplar_label, label, exemplar_label) * \
                self.weight_mask
        if self.warp_cycle_w > 0:
            pooled = F.avg_pool2d(batch["exemplar"], self.generator.config.warp_stride)
            terms["G_warp_cycle"] = F.l1_loss(output.warp_cycle, pooled) * self.warp_cycle_w
        if self.warp_self_w > 0:
            terms["G_warp_self"] = ((output.warped_exemplar - real).abs() * sample_weights).mean() * self.warp_self_w
        if self.lambda_l1 > 0:
            terms["G_L1"] = ((fake - real).abs() * sample_weights).mean() * fake.shape[0] * self.lambda_l1
        return sum(terms.values()), {k: v.detach() for k, v in terms.items()}

    def discriminator_loss(self, generator, discriminator, batch):
        real = batch["pixel_values"]
        semantics = self._semantics(batch["label_map"])
        fake = self.remembered_fake(batch, lambda: self._generate(generator, batch).images)
        pred_fake, pred_real = self._discriminate(discriminator, semantics, fake, real)
        terms = {"D_Fake": self.gan_loss.discriminator_loss(pred_fake, target_is_real=False) * self.weight_gan,
                 "D_real": self.gan_loss.discriminator_loss(pred_real, target_is_real=True) * self.weight_gan}
        return sum(terms.values()), {k: v.detach() for k, v in terms.items()}

    @torch.no_grad()
    def generate(self, generator, batch, rng):
        return self._generate(generator, batch, generator=rng).images

    def validation_grid(self, batch, fake):
        rows = []
        for label, exemplar, real, image in zip(batch["label_map"].cpu(), to_uint8(batch["exemplar"]),
                                                to_uint8(batch["pixel_values"]), to_uint8(fake)):
            colored = np.asarray(self.processor.colorize(label.numpy()))
            rows.append(np.concatenate([colored, exemplar, real, image], axis=1))
        return np.concatenate(rows, axis=0)
