"""CoCosNet configuration (Zhang et al., "Cross-domain Correspondence Learning for Exemplar-based Image Translation",
CVPR 2020)."""

from __future__ import annotations

from typing import Any

from ...configuration_utils import (
    CONV_NORMS,
    MAX_KERNEL_SIZE,
    LabelSynthConfig,
    check_bool,
    check_choice,
    check_float,
    check_int,
)
from ..spade.configuration_spade import SPADEBlocksMixin

CORRELATION_CENTERINGS = ("channels", "positions")
WARP_UPSAMPLINGS = ("nearest", "bilinear")
WARP_STRIDES = (2, 4)  # the original's choices
# The adaptors' stride-2 convs pad by 1, so only 3x3 and 4x4 halve the size exactly (3 in the original, 4 for
# CelebA-HQ).
ADAPTOR_KERNEL_SIZES = (3, 4)
# PatchGAN stages: at least 2 (the attention sits after stage n_layers_d - 2); at most MAX_DISCRIMINATOR_LAYERS.
MIN_DISCRIMINATOR_LAYERS = 2

# Dataset presets of the released checkpoints (the options of the README's test commands).
COCOSNET_PRESETS: dict[str, dict[str, Any]] = {
    # --use_attention --maskmix --warp_mask_losstype direct --PONO --PONO_C (ADE20K dataset mode: 150 + don't care)
    "ade20k": dict(label_space="ade20k", label_nc=150, contain_dontcare_label=True, use_instance_edges=False,
                   image_size=(256, 256)),
}


class CoCosNetConfig(SPADEBlocksMixin, LabelSynthConfig):
    """Configuration of `CoCosNetModel` (correspondence network + translation network) and `CoCosNetDiscriminator`.

    Label-space fields (`label_space`, `label_nc`, `contain_dontcare_label`, `ignore_index`, `use_instance_edges`,
    `image_size`) are documented in `LabelSynthConfig`; CoCosNet takes no instance edges. Original option names are
    given in brackets; the defaults are those of the released ADE20K model.

    Args:
        ngf (`int`): base width of both networks [`--ngf`, 64]. The domain adaptors reach 8 * ngf channels, the
            translation network 16 * ngf.
        param_free_norm (`str`): normalization inside every SPADE layer (translation network and adaptors):
            "positional" (PONO, per-pixel over channels, no statistics) [`--PONO`], or without it "syncbatch" /
            "batch" / "instance" [the `spade<norm>3x3` part of `--norm_G`].
        spectral_norm (`bool`): spectral normalization on the residual-block and attention convs [`spectral` in
            `--norm_G`].
        spade_kernel_size (`int`): kernel of the SPADE convs [the `3x3` in `--norm_G`].
        spade_hidden_nc (`int`): width of SPADE's hidden layer (128, hard-coded in the original).
        adaptor_norm (`str`): norm of the domain adaptors' five plain convs [`--norm_E`, "spectralinstance"].
        adaptor_kernel_size (`int`): kernel of the adaptors' two stride-2 convs [`--adaptor_kernel`, 3; 4 for the
            CelebA-HQ models].
        warp_stride (`int`): the correspondence works on a grid `image_size / warp_stride` [`--warp_stride`, 4]:
            64x64 at 256x256, so the correlation matrix is 4096 x 4096.
        match_kernel (`int`): features are compared over k x k neighbourhoods (unfolded) [`--match_kernel`, 3].
        correlation_centering (`str`): before the cosine similarity, subtract from each feature vector its mean over
            the channels ("channels" [`--PONO_C`]) or each channel's mean over the positions ("positions").
        correlation_temperature (`float`): softmax temperature of the correlation (0.01 in the original's forward).
        maskmix (`bool`): the label maps (input side) and the exemplar's label map (exemplar side) are concatenated
            to the adapted features before the correspondence's residual blocks [`--maskmix`].
        noise_for_mask (`bool`): the model was trained to work without the exemplar's label map, which is replaced by
            N(0, mask_noise_std^2) noise [`--noise_for_mask`, the README's "epoch 90" ADE20K checkpoint]; the exemplar
            label map is then ignored, as in the original's test mode. Without it, leaving the exemplar label map out
            also uses the noise.
        mask_noise_std (`float`): standard deviation of that noise (0.01 in the original).
        warp_upsampling (`str`): how the warped exemplar (at the correspondence grid) is upsampled to the image:
            "nearest" or "bilinear" [`--warp_bilinear`].
        use_attention (`bool`): self-attention before the translation network's `up_2` block (64x64 at 256x256)
            and in every discriminator scale [`--use_attention`].
        ndf (`int`): base width of the discriminator [`--ndf`, 64].
        n_layers_d (`int`): feature stages per PatchGAN [`--n_layers_D`, 4].
        num_d (`int`): number of discriminator scales [`--num_D`, 2].
        discriminator_norm (`str`): norm of the discriminator's inner stages [`--norm_D`, "spectralinstance"].
    """

    model_type = "cocosnet"
    presets = COCOSNET_PRESETS
    family = "CoCosNet"

    def __init__(
        self,
        label_space: str | dict[str, Any] = "ade20k",
        label_nc: int = 150,
        contain_dontcare_label: bool = True,
        ignore_index: int = 255,
        use_instance_edges: bool = False,
        image_size: tuple[int, int] | list[int] = (256, 256),
        ngf: int = 64,
        param_free_norm: str = "positional",
        spectral_norm: bool = True,
        spade_kernel_size: int = 3,
        spade_hidden_nc: int = 128,
        adaptor_norm: str = "spectralinstance",
        adaptor_kernel_size: int = 3,
        warp_stride: int = 4,
        match_kernel: int = 3,
        correlation_centering: str = "channels",
        correlation_temperature: float = 0.01,
        maskmix: bool = True,
        noise_for_mask: bool = False,
        mask_noise_std: float = 0.01,
        warp_upsampling: str = "nearest",
        use_attention: bool = True,
        ndf: int = 64,
        n_layers_d: int = 4,
        num_d: int = 2,
        discriminator_norm: str = "spectralinstance",
        **kwargs: Any,
    ) -> None:
        self.ngf = ngf
        self.param_free_norm = param_free_norm
        self.spectral_norm = spectral_norm
        self.spade_kernel_size = spade_kernel_size
        self.spade_hidden_nc = spade_hidden_nc
        self.adaptor_norm = adaptor_norm
        self.adaptor_kernel_size = adaptor_kernel_size
        self.warp_stride = warp_stride
        self.match_kernel = match_kernel
        self.correlation_centering = correlation_centering
        self.correlation_temperature = correlation_temperature
        self.maskmix = maskmix
        self.noise_for_mask = noise_for_mask
        self.mask_noise_std = mask_noise_std
        self.warp_upsampling = warp_upsampling
        self.use_attention = use_attention
        self.ndf = ndf
        self.n_layers_d = n_layers_d
        self.num_d = num_d
        self.discriminator_norm = discriminator_norm
        super().__init__(label_space=label_space, label_nc=label_nc, contain_dontcare_label=contain_dontcare_label,
                         ignore_index=ignore_index, use_instance_edges=use_instance_edges, image_size=image_size,
                         **kwargs)

    def validate(self) -> None:
        """`LabelSynthConfig.validate` plus CoCosNet's fields and the image-size multiple of the translation
        network."""
        super().validate()
        if self.use_instance_edges:
            raise ValueError("CoCosNet takes no instance edges (use_instance_edges must be False)")
        self._check_spade_blocks()  # the translation network's
        self.adaptor_norm = check_choice("adaptor_norm", self.adaptor_norm, CONV_NORMS)
        self.adaptor_kernel_size = check_choice("adaptor_kernel_size", self.adaptor_kernel_size, ADAPTOR_KERNEL_SIZES)
        self.warp_stride = check_choice("warp_stride", self.warp_stride, WARP_STRIDES)
        self.match_kernel = check_int("match_kernel", self.match_kernel, 1, MAX_KERNEL_SIZE, odd=True)
        self.correlation_centering = check_choice("correlation_centering", self.correlation_centering,
                                                  CORRELATION_CENTERINGS)
        self.correlation_temperature = check_float("correlation_temperature", self.correlation_temperature, 0.0,
                                                   low_inclusive=False)
        self.maskmix = check_bool("maskmix", self.maskmix)
        self.noise_for_mask = check_bool("noise_for_mask", self.noise_for_mask)
        self.mask_noise_std = check_float("mask_noise_std", self.mask_noise_std, 0.0)
        self.warp_upsampling = check_choice("warp_upsampling", self.warp_upsampling, WARP_UPSAMPLINGS)
        self.use_attention = check_bool("use_attention", self.use_attention)
        self._check_patchgan(MIN_DISCRIMINATOR_LAYERS)
        if self.use_attention:  # self-attention splits its channels into eighths
            if self.ngf % 2:
                raise ValueError(f"ngf must be even with use_attention (the translation network's self-attention "
                                 f"takes 4 * ngf channels, which must be divisible by 8), got {self.ngf}")
            attention_nc = min(self.ndf * 2 ** (self.n_layers_d - 2), 512)  # the discriminators' attention width
            if attention_nc % 8:
                raise ValueError(f"ndf * 2**(n_layers_d - 2) = {attention_nc} must be divisible by 8 with "
                                 f"use_attention (the discriminators' self-attention width), got ndf={self.ndf}, "
                                 f"n_layers_d={self.n_layers_d}")
        if self.image_size[0] % 32 or self.image_size[1] % 32 or min(self.image_size) < 64:
            raise ValueError(f"image_size {tuple(self.image_size)} must be divisible by 32 and at least 64 (the "
                             "translation network starts from a grid 32x smaller, which reflection padding needs "
                             "to be at least 2x2)")

    @property
    def correspondence_size(self) -> tuple[int, int]:
        """(h, w) of the correspondence grid: `image_size / warp_stride`."""
        return self.image_size[0] // self.warp_stride, self.image_size[1] // self.warp_stride
