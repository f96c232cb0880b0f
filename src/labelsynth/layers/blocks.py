"""Residual blocks shared by the generators: SPADE-family blocks and the plain ResNet block of pix2pixHD."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .inference_cache import cached_derivation, frozen_inference, tensor_versions
from .normalization import SPADE, SemanticLayout
from .small_ops import small_op_threads
from .spectral_norm import spectral_norm
from .winograd import PreparedConv2d


def maybe_spectral_norm(module: nn.Module, enabled: bool) -> nn.Module:
    """Wrap `module` in spectral normalization when `enabled` (see `labelsynth.layers.spectral_norm`).

    A parametrization (not the legacy hook) because its state-dict keys (`parametrizations.weight.original`,
    `..._u`, `..._v`) survive transformers' legacy key renaming of `*.weight_v`; converters map the original
    `weight_orig/weight_u/weight_v` keys onto it.
    """
    return spectral_norm(module) if enabled else module


def inference_conv(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """`conv(x)` for inference, with the effective weight computed once and kept until a parameter changes.

    At inference spectral norm is a fixed rescaling, and a channels-last activation makes every call reorder an
    NCHW weight; so the normalised weight is cached in the activation's memory format (and, under autocast, in the
    autocast dtype). Large 3x3 layers on CPU run by Winograd's algorithm (`labelsynth.layers.winograd`). Only for
    use without gradients.
    """
    device_type = x.device.type
    dtype = torch.get_autocast_dtype(device_type) if torch.is_autocast_enabled(device_type) else x.dtype
    memory_format = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
    key = (tensor_versions(*conv.parameters(), *conv.buffers()), dtype, memory_format, x.device)

    def prepare() -> PreparedConv2d:
        weight = conv.weight.detach().to(dtype)
        bias = conv.bias.detach().to(dtype) if conv.bias is not None else None
        # reflect/replicate padding is applied explicitly below, as nn.Conv2d does
        padding = conv.padding if conv.padding_mode == "zeros" else 0
        return PreparedConv2d(weight, bias, conv.stride, padding, conv.dilation, conv.groups, memory_format)

    prepared = cached_derivation(conv, "_inference_conv", key, prepare)
    x = x.to(dtype)
    if conv.padding_mode != "zeros":
        x = F.pad(x, conv._reversed_padding_repeated_twice, mode=conv.padding_mode)
    return prepared(x)


class SPADEResnetBlock(nn.Module):
    """Residual block with SPADE normalization (Park et al. 2019, Fig. 4).

    main:     SPADE -> LeakyReLU(0.2) -> conv3x3 (fin -> fmiddle) -> SPADE -> LeakyReLU(0.2) -> conv3x3 (-> fout)
    shortcut: identity, or SPADE -> conv1x1 without bias and without activation when fin != fout.
    with fmiddle = min(fin, fout).

    Args:
        fin, fout: input / output channels.
        semantic_nc: channels of the semantic input the SPADE layers see.
        spectral_norm: spectral normalization on the three convs (original `norm_G` containing "spectral").
        norm: parameter-free norm inside SPADE ("syncbatch", "batch", "instance").
        spade_kernel_size: kernel of the SPADE convs.
        spade_hidden_nc: width of the SPADE layers' shared hidden conv.
        norm_layer: builds the three modulated norms from their channel count instead of `SPADE` (e.g. SEAN's
            `SEANNormalization`); `forward`'s extra keyword arguments are passed on to them.
        padding_mode: padding of the two 3x3 convs (and of the default SPADE layers): "zeros" (SPADE) or "reflect"
            (CoCosNet).

    Shapes: `forward(x [B, fin, H, W], seg, **norm_kwargs) -> [B, fout, H, W]`, `seg` a one-hot map or a
    `SemanticLayout` (the SPADE layers' fast path; in eval mode without gradients the convs' too).
    """

    def __init__(self, fin: int, fout: int, semantic_nc: int, spectral_norm: bool = True, norm: str = "syncbatch",
                 spade_kernel_size: int = 3, spade_hidden_nc: int = 128,
                 norm_layer: Callable[[int], nn.Module] | None = None, padding_mode: str = "zeros"):
        super().__init__()
        fmiddle = min(fin, fout)
        self.learned_shortcut = fin != fout
        self.conv_0 = maybe_spectral_norm(nn.Conv2d(fin, fmiddle, 3, padding=1, padding_mode=padding_mode),
                                          spectral_norm)
        self.conv_1 = maybe_spectral_norm(nn.Conv2d(fmiddle, fout, 3, padding=1, padding_mode=padding_mode),
                                          spectral_norm)
        if self.learned_shortcut:
            self.conv_s = maybe_spectral_norm(nn.Conv2d(fin, fout, 1, bias=False), spectral_norm)
        if norm_layer is None:
            def norm_layer(channels: int) -> nn.Module:
                return SPADE(channels, semantic_nc, spade_kernel_size, spade_hidden_nc, norm=norm,
                             padding_mode=padding_mode)
        self.norm_0 = norm_layer(fin)
        self.norm_1 = norm_layer(fmiddle)
        if self.learned_shortcut:
            self.norm_s = norm_layer(fin)

    def forward(self, x: torch.Tensor, seg: torch.Tensor | SemanticLayout, **norm_kwargs: Any) -> torch.Tensor:
        # The fast inference path; in training (a layout: the SPADE layers' fast path) the convs stay plain, as their
        # spectral norm must advance its power iteration on every call as the plain path does.
        fast = isinstance(seg, SemanticLayout) and frozen_inference(self)
        if fast:
            def conv(module: nn.Conv2d, inp: torch.Tensor) -> torch.Tensor:
                return inference_conv(module, inp)

            def act(inp: torch.Tensor) -> torch.Tensor:
                with small_op_threads(inp.numel(), inp.device):  # see `labelsynth.layers.small_ops`
                    return F.leaky_relu(inp, 0.2)
        else:
            def conv(module: nn.Conv2d, inp: torch.Tensor) -> torch.Tensor:
                return module(inp)

            def act(inp: torch.Tensor) -> torch.Tensor:
                return F.leaky_relu(inp, 0.2)
        # The shortcut's norm runs first, as in the originals (it matters for SEAN's per-call noise draws).
        x_s = conv(self.conv_s, self.norm_s(x, seg, **norm_kwargs)) if self.learned_shortcut else x
        dx = conv(self.conv_0, act(self.norm_0(x, seg, **norm_kwargs)))
        dx = conv(self.conv_1, act(self.norm_1(dx, seg, **norm_kwargs)))
        if fast:
            with small_op_threads(dx.numel(), dx.device):
                return x_s + dx
        return x_s + dx


def norm_2d(norm: str, channels: int) -> nn.Module:
    """The norm layer of pix2pix-style networks: "instance" (InstanceNorm2d without affine parameters or running
    statistics, as pix2pixHD/CycleGAN), "batch" (BatchNorm2d with affine parameters) or "none"."""
    if norm == "instance":
        return nn.InstanceNorm2d(channels, affine=False)
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {norm!r}; expected 'instance', 'batch' or 'none'")


class ResnetBlock(nn.Module):
    """Residual block of the ResNet generators of Johnson et al. (2016), as pix2pixHD and CycleGAN build it.

        out = x + norm_1(conv_1(relu(norm_0(conv_0(x)))))

    with 3x3 convs (biased) on reflection-padded input, so the spatial size is kept.

    Args:
        channels: input = output channels.
        norm: "instance", "batch" or "none" (see `norm_2d`).
        padding_mode: padding of the convs: "reflect" (pix2pixHD, CycleGAN default), "replicate" or "zeros".

    Shapes: `forward(x [B, C, H, W]) -> [B, C, H, W]`.
    """

    def __init__(self, channels: int, norm: str = "instance", padding_mode: str = "reflect"):
        super().__init__()
        self.conv_0 = nn.Conv2d(channels, channels, 3, padding=1, padding_mode=padding_mode)
        self.norm_0 = norm_2d(norm, channels)
        self.conv_1 = nn.Conv2d(channels, channels, 3, padding=1, padding_mode=padding_mode)
        self.norm_1 = norm_2d(norm, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.norm_1(self.conv_1(F.relu(self.norm_0(self.conv_0(x)))))
