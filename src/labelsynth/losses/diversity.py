"""CRN's perceptual loss and its diversity form (Chen & Koltun 2017, Sec. 3.3 and 3.4).

**Perceptual loss.** With Phi_0 the image itself and Phi_1..5 the activations after ``relu1_2, relu2_2, relu3_2,
relu4_2, relu5_2`` of VGG-19 (average pooling, MatConvNet weights fed 0..255 RGB minus the ImageNet mean), the
loss of an image is ``sum_l lambda_l * mean |Phi_l(fake) - Phi_l(real)|``. The lambdas balance the layers (the
original collected them from the layers' loss magnitudes at epoch 100): see `CRN_LAYER_WEIGHTS`. Errors are in the
original's 0..255 pixel units (images in [-1, 1] are rescaled first), so the lambdas keep their meaning.

**Diversity loss.** The generator produces k images in one pass. Each layer's per-pixel error (the mean over
feature channels of ``|Phi_l(fake_j) - Phi_l(real)|``) is weighted by each class's mask (the semantic map
area-downsampled to the layer's size) and averaged over the image, giving a ``[k, classes]`` matrix per layer;
summed over layers with the lambdas, the loss is

    0.999 * sum_c min_j L[j, c]  +  0.001 * sum_c mean_j L[j, c]

so for every class only the best of the k images is pulled towards the photo and the others are free to differ
("hindsight" loss; the small mean term keeps every output trained). With k = 1 this equals the plain perceptual
loss (the masks sum to one over the classes), which is what the 512p and 1024p models used. A batch averages the
per-label-map losses (the original trained with batch size 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..layers.vgg import VGG19, load_vgg19
from .perceptual import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["CRN_LAYER_WEIGHTS", "CRN_VGG_LAYERS", "CRNPerceptualLoss", "diversity_reduction", "masked_errors"]

CRN_VGG_LAYERS = ("relu1_2", "relu2_2", "relu3_2", "relu4_2", "relu5_2")
# Weights of (image, relu1_2, ..., relu5_2) in the released training scripts.
CRN_LAYER_WEIGHTS: dict[str, tuple[float, ...]] = {
    "cityscapes-256p": (1.0, 1 / 1.6, 1 / 2.3, 1 / 1.8, 1 / 2.8, 10 / 0.8),  # demo_256p.py
    "cityscapes-512p": (1.0, 1 / 2.6, 1 / 4.8, 1 / 3.7, 1 / 5.6, 10 / 1.5),  # demo_512p.py, demo_1024p.py
    "cityscapes-1024p": (1.0, 1 / 2.6, 1 / 4.8, 1 / 3.7, 1 / 5.6, 10 / 1.5),
    "gta-256p": (1.0, 1 / 1.4, 1 / 1.8, 1 / 1.3, 1 / 2.2, 10 / 0.62),  # GTA_Diversity_256p.py
}
# Mean RGB of the MatConvNet VGG-19 (`imagenet-vgg-verydeep-19.mat`), subtracted from 0..255 inputs.
MATCONVNET_MEAN = (123.68, 116.779, 103.939)


def masked_errors(fake: torch.Tensor, real: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Per-class mean absolute error of k candidates.

    Args:
        fake (`Tensor[B, k, C, h, w]`): features of the k generated images.
        real (`Tensor[B, C, h, w]`): features of the real image.
        masks (`Tensor[B, S, h, w]`): class masks (fractions) at this size.

    Returns:
        `Tensor[B, k, S]`: ``mean_{x,y} masks[s] * mean_C |fake_j - real|`` (the original's `compute_error`).
    """
    error = (fake - real.unsqueeze(1)).abs().mean(dim=2)
    return torch.einsum("bkhw,bshw->bks", error, masks) / (error.shape[-2] * error.shape[-1])


def diversity_reduction(errors: torch.Tensor, min_weight: float = 0.999, mean_weight: float = 0.001) -> torch.Tensor:
    """`errors [B, k, S]` -> scalar: per class the best candidate (min) plus a little of all (mean), batch-averaged."""
    per_map = min_weight * errors.min(dim=1).values.sum(-1) + mean_weight * errors.mean(dim=1).sum(-1)
    return per_map.mean()


class CRNPerceptualLoss(nn.Module):
    """CRN's VGG-19 loss over k candidates with the per-class "best of k" reduction.

    Args:
        vgg: a `VGG19` built with ``pool="avg"`` (as the original), anything `load_vgg19` accepts (loaded with
            average pooling), or None for the image term alone (runs without VGG weights, e.g. tests).
        layer_weights: lambdas of (image, relu1_2, relu2_2, relu3_2, relu4_2, relu5_2); a `CRN_LAYER_WEIGHTS` key
            or 6 numbers.
        input_range: how 0..255 images are fed to the VGG: ``"matconvnet"`` subtracts `MATCONVNET_MEAN` (the
            original, for MatConvNet weights converted to the torchvision layout); ``"imagenet"`` standardises
            [0, 1] images with the ImageNet mean/std (torchvision's `vgg19-dcbb9e9d.pth`; the lambdas were tuned for
            the MatConvNet feature scale, so rebalance them for serious runs).
        min_weight, mean_weight: weights of the per-class min and mean over the k candidates (0.999, 0.001).

    ``forward(candidates [B, k, 3, H, W], real [B, 3, H, W], semantics [B, S, H, W] | None) -> scalar``, images
    in [-1, 1]; without `semantics` every pixel is one class (the plain perceptual loss of the 512p/1024p models).
    H and W must be divisible by 16 (relu5_2 is at 1/16).
    """

    def __init__(
        self,
        vgg: VGG19 | str | Path | None,
        layer_weights: str | Sequence[float] = "cityscapes-256p",
        input_range: Literal["matconvnet", "imagenet"] = "matconvnet",
        min_weight: float = 0.999,
        mean_weight: float = 0.001,
    ):
        super().__init__()
        if vgg is not None and not isinstance(vgg, VGG19):
            vgg = load_vgg19(vgg, pool="avg")
        if isinstance(layer_weights, str):
            if layer_weights not in CRN_LAYER_WEIGHTS:
                raise ValueError(f"unknown CRN layer weights {layer_weights!r}; use one of {sorted(CRN_LAYER_WEIGHTS)}"
                                 " or 6 numbers")
            layer_weights = CRN_LAYER_WEIGHTS[layer_weights]
        self.layer_weights = tuple(float(w) for w in layer_weights)
        if len(self.layer_weights) != len(CRN_VGG_LAYERS) + 1:
            raise ValueError(f"layer_weights needs {len(CRN_VGG_LAYERS) + 1} numbers (image, {', '.join(CRN_VGG_LAYERS)})"
                             f", got {len(self.layer_weights)}")
        if input_range not in ("matconvnet", "imagenet"):
            raise ValueError(f"input_range must be 'matconvnet' or 'imagenet', got {input_range!r}")
        self.input_range = input_range
        self.min_weight, self.mean_weight = float(min_weight), float(mean_weight)
        self.vgg = vgg
        self.register_buffer("matconvnet_mean", torch.tensor(MATCONVNET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("imagenet_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("imagenet_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def extra_repr(self) -> str:
        return f"layer_weights={self.layer_weights}, input_range={self.input_range!r}"

    def _vgg_input(self, pixels: torch.Tensor) -> torch.Tensor:
        """0..255 images -> the VGG's input convention."""
        if self.input_range == "matconvnet":
            return pixels - self.matconvnet_mean
        return (pixels / 255.0 - self.imagenet_mean) / self.imagenet_std

    def layer_errors(self, candidates: torch.Tensor, real: torch.Tensor,
                     semantics: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Weighted per-class errors of each layer (image first), each `[B, k, S]` (the original's p0 .. p5; only
        p0 without a VGG)."""
        if candidates.dim() != 5 or candidates.shape[2] != 3:
            raise ValueError(f"candidates must be [B, k, 3, H, W], got {tuple(candidates.shape)}")
        batch, k, _, height, width = candidates.shape
        if tuple(real.shape) != (batch, 3, height, width):
            raise ValueError(f"real must be [B, 3, H, W] = {(batch, 3, height, width)}, got {tuple(real.shape)}")
        if height % 16 or width % 16:
            raise ValueError(f"images are {height}x{width}; the CRN loss needs sizes divisible by 16 (relu5_2)")
        if semantics is None:
            semantics = candidates.new_ones(batch, 1, height, width)
        elif semantics.shape[0] != batch or tuple(semantics.shape[-2:]) != (height, width):
            raise ValueError(f"semantics must be [B, S, {height}, {width}], got {tuple(semantics.shape)}")
        dtype = torch.float32 if self.vgg is None else next(self.vgg.parameters()).dtype
        with torch.autocast(device_type=candidates.device.type, enabled=False):
            fake = ((candidates.to(dtype) + 1) * 127.5).flatten(0, 1)
            real = (real.to(dtype) + 1) * 127.5
            semantics = semantics.to(dtype)
            real_features, fake_features = [real], [fake]
            if self.vgg is not None:
                with torch.no_grad():
                    real_features += self.vgg.slices(self._vgg_input(real), CRN_VGG_LAYERS)
                fake_features += self.vgg.slices(self._vgg_input(fake), CRN_VGG_LAYERS)
            errors = []
            for weight, f, r in zip(self.layer_weights, fake_features, real_features):
                masks = semantics
                if masks.shape[-1] != f.shape[-1]:
                    masks = F.avg_pool2d(semantics, semantics.shape[-1] // f.shape[-1])  # the original's resize_area
                errors.append(weight * masked_errors(f.float().unflatten(0, (batch, k)), r.float(), masks.float()))
        return errors

    def forward(self, candidates: torch.Tensor, real: torch.Tensor,
                semantics: torch.Tensor | None = None) -> torch.Tensor:
        errors = torch.stack(self.layer_errors(candidates, real, semantics)).sum(0)
        return diversity_reduction(errors, self.min_weight, self.mean_weight)
