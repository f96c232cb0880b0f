"""PatchGAN discriminators (Isola et al. 2017) and their multi-scale stack (Wang et al. 2018), shared by
pix2pix, pix2pixHD, SPADE, SEAN and CoCosNet."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import maybe_spectral_norm

DISCRIMINATOR_NORMS = ("spectralinstance", "instance", "spectral", "batch", "none")


def _conv_norm(in_nc: int, out_nc: int, stride: int, padding: int, norm: str,
               conv_bias: bool | None = None) -> nn.Sequential:
    """conv4x4 (+ norm); by default (`conv_bias=None`) the conv has a bias only without a norm, as a following norm
    would cancel it; `conv_bias=True` keeps it anyway (pix2pixHD's layout)."""
    spectral = norm.startswith("spectral")
    subnorm = norm.removeprefix("spectral") or "none"
    bias = subnorm == "none" if conv_bias is None else conv_bias
    conv = maybe_spectral_norm(nn.Conv2d(in_nc, out_nc, 4, stride=stride, padding=padding, bias=bias), spectral)
    layers: list[nn.Module] = [conv]
    if subnorm == "instance":
        layers.append(nn.InstanceNorm2d(out_nc, affine=False))
    elif subnorm == "batch":
        layers.append(nn.BatchNorm2d(out_nc))
    elif subnorm != "none":
        raise ValueError(f"unknown discriminator norm {norm!r}; expected one of {DISCRIMINATOR_NORMS}")
    return nn.Sequential(*layers)


class NLayerDiscriminator(nn.Module):
    """PatchGAN: conv4x4 stride-2 stages, then a stride-1 stage and a 1-channel stride-1 output conv.

    Args:
        in_channels: channels of the input (semantic map + image for conditional GANs).
        ndf: width of the first layer; doubles per stage up to `max_channels`.
        n_layers: number of feature stages (SPADE `--n_layers_D`, default 4): stages 0..n-2 have stride 2 (the last
            of them stride 1 when `last_stride_one`), followed by the output conv.
        norm: norm of the stages after the first ("spectralinstance" for SPADE/SEAN, "instance" for pix2pixHD).
        padding: conv padding (2 = ceil((4 - 1) / 2) in SPADE and pix2pixHD; 1 in pix2pix).
        last_stride_one: stride 1 for the last feature stage (SPADE after its 2019-05 fix; SEAN keeps stride 2).
        conv_bias: bias on the normalised stages' convs; None = only without a norm (SPADE), True = always
            (pix2pixHD, whose InstanceNorm follows biased convs).
        max_channels: width cap of the stages (512 in SPADE and pix2pixHD; pix2pix caps at 8 * ndf, the same for
            its default ndf 64).

    Shapes: `forward(x [B, in_channels, H, W]) -> list` of every stage's output, the last being the patch logits.
    """

    def __init__(self, in_channels: int, ndf: int = 64, n_layers: int = 4, norm: str = "spectralinstance",
                 padding: int = 2, last_stride_one: bool = True, conv_bias: bool | None = None,
                 max_channels: int = 512):
        super().__init__()
        stages: list[nn.Module] = [nn.Sequential(nn.Conv2d(in_channels, ndf, 4, stride=2, padding=padding),
                                                 nn.LeakyReLU(0.2))]
        nf = ndf
        for n in range(1, n_layers):
            nf_prev, nf = nf, min(nf * 2, max_channels)
            stride = 1 if (n == n_layers - 1 and last_stride_one) else 2
            stages.append(nn.Sequential(_conv_norm(nf_prev, nf, stride, padding, norm, conv_bias), nn.LeakyReLU(0.2)))
        stages.append(nn.Sequential(nn.Conv2d(nf, 1, 4, stride=1, padding=padding)))
        self.stages = nn.ModuleList(stages)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features


class MultiscaleDiscriminator(nn.Module):
    """`num_d` PatchGANs on the input downsampled by 2 between scales (3x3 average pooling, pad not counted).

    Shapes: `forward(x [B, C, H, W]) -> list[list[Tensor]]`: per scale, the features of every stage (the last is
    the patch logits), as feature matching needs them.
    """

    def __init__(self, in_channels: int, num_d: int = 2, **nlayer_kwargs):
        super().__init__()
        self.discriminators = nn.ModuleList(NLayerDiscriminator(in_channels, **nlayer_kwargs) for _ in range(num_d))

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        outputs = []
        for i, discriminator in enumerate(self.discriminators):
            if i:
                x = F.avg_pool2d(x, kernel_size=3, stride=2, padding=1, count_include_pad=False)
            outputs.append(discriminator(x))
        return outputs
