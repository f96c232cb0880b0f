"""VGG-19 perceptual loss (Johnson et al. 2016; the form used by pix2pixHD and SPADE).

    loss = sum_i w_i * criterion(phi_i(fake), phi_i(real).detach())

with ``phi_i`` the activations after ``relu1_1, relu2_1, relu3_1, relu4_1, relu5_1`` of an ImageNet VGG-19 (torchvision
``features[1], [6], [11], [20], [29]``), ``w = (1/32, 1/16, 1/8, 1/4, 1)``, ``criterion`` the element-mean L1, and the
images fed **as they are, in [-1, 1], without ImageNet normalisation** (a quirk of both originals, kept by default:
``input_range="[-1,1]"``). ``input_range="imagenet"`` maps [-1, 1] to [0, 1] and then standardises with the ImageNet
mean/std, as the VGG weights were trained. The loss weight (``lambda_vgg = 10``) is applied by the caller.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..layers.vgg import VGG19, load_vgg19, vgg19_layer_index

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "SPADE_VGG_LAYERS", "SPADE_VGG_WEIGHTS", "VGGPerceptualLoss"]

SPADE_VGG_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
SPADE_VGG_WEIGHTS = (1.0 / 32, 1.0 / 16, 1.0 / 8, 1.0 / 4, 1.0)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_CRITERIA: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {"l1": F.l1_loss, "mse": F.mse_loss}


class VGGPerceptualLoss(nn.Module):
    """Weighted feature distance between generated and real images through a frozen VGG-19.

    Args:
        vgg: a :class:`~labelsynth.layers.vgg.VGG19` (frozen by :func:`load_vgg19`), or anything
            :func:`~labelsynth.layers.vgg.load_vgg19` accepts (file, directory, Hub id).
        layers: layer names (``relu1_1``, ``conv4_2``, ...; see :data:`~labelsynth.layers.vgg.VGG19_LAYER_NAMES`).
        weights: one weight per layer.
        criterion: ``"l1"`` (SPADE, pix2pixHD), ``"mse"`` or a callable ``(fake_features, real_features) -> scalar``.
        input_range: ``"[-1,1]"`` feeds the images unchanged (SPADE, pix2pixHD); ``"imagenet"`` maps [-1, 1] to the
            ImageNet-normalised range ``((x + 1) / 2 - mean) / std``.

    ``forward(fake [B, 3, H, W], real [B, 3, H, W]) -> 0-dim tensor``. The real branch runs under ``no_grad``
    (identical to the originals' ``.detach()``, less memory); gradients reach ``fake`` but not the VGG weights.
    The VGG runs with autocast disabled, in the dtype of its weights (float32 unless converted), so bf16/fp16
    autocast training gets a float32 loss.

    Note: the VGG is a registered submodule, so its 80 MB of weights appear in this module's ``state_dict``.
    """

    def __init__(
        self,
        vgg: VGG19 | str | Path,
        layers: Sequence[str] = SPADE_VGG_LAYERS,
        weights: Sequence[float] = SPADE_VGG_WEIGHTS,
        criterion: Literal["l1", "mse"] | Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = "l1",
        input_range: Literal["[-1,1]", "imagenet"] = "[-1,1]",
    ):
        super().__init__()
        if not isinstance(vgg, VGG19):
            vgg = load_vgg19(vgg)
        if isinstance(layers, str):
            raise TypeError("layers must be a sequence of layer names, not a single string")
        self.layers = tuple(layers)
        for layer in self.layers:
            vgg19_layer_index(layer)  # validate early
        self.weights = tuple(float(w) for w in weights)
        if len(self.weights) != len(self.layers):
            raise ValueError(f"{len(self.layers)} layers but {len(self.weights)} weights")
        if isinstance(criterion, str):
            if criterion not in _CRITERIA:
                raise ValueError(f"unknown criterion {criterion!r}; expected one of {sorted(_CRITERIA)} or a callable")
            criterion = _CRITERIA[criterion]
        self.criterion = criterion
        if input_range not in ("[-1,1]", "imagenet"):
            raise ValueError(f"input_range must be '[-1,1]' or 'imagenet', got {input_range!r}")
        self.input_range = input_range
        self.vgg = vgg
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def extra_repr(self) -> str:
        return f"layers={self.layers}, weights={self.weights}, input_range={self.input_range!r}"

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        dtype = next(self.vgg.parameters()).dtype
        x = x.to(dtype)
        if self.input_range == "imagenet":
            x = ((x + 1) * 0.5 - self.mean.to(dtype)) / self.std.to(dtype)
        return x

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        if fake.shape != real.shape:
            raise ValueError(f"fake {tuple(fake.shape)} and real {tuple(real.shape)} images must have the same shape")
        if fake.dim() != 4 or fake.shape[1] != 3:
            raise ValueError(f"expected RGB images [B, 3, H, W], got {tuple(fake.shape)}")
        with torch.autocast(device_type=fake.device.type, enabled=False):
            with torch.no_grad():
                real_features = self.vgg.slices(self._prepare(real), self.layers)
            fake_features = self.vgg.slices(self._prepare(fake), self.layers)
            total = fake.new_zeros((), dtype=torch.float32)
            for weight, f, r in zip(self.weights, fake_features, real_features):
                total = total + weight * self.criterion(f.float(), r.float())
        return total
