"""SPADE / GauGAN configuration (Park et al., "Semantic Image Synthesis with Spatially-Adaptive Normalization", 2019)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ...configuration_utils import (
    CONV_NORMS,
    MAX_CHANNELS,
    MAX_DISCRIMINATOR_LAYERS,
    MAX_KERNEL_SIZE,
    MAX_LATENT_DIM,
    MAX_SCALES,
    LabelSynthConfig,
    check_bool,
    check_choice,
    check_int,
    check_layer_size,
)
from ...layers.normalization import PARAM_FREE_NORMS

UPSAMPLING_LAYERS = {"normal": 5, "more": 6, "most": 7}
# Norms of the VAE style encoder's convs: an optional "spectral" prefix + InstanceNorm or none (the original `--norm_E`;
# the encoder implements no other norm, so "batch" is refused rather than silently dropped).
ENCODER_NORMS = ("spectralinstance", "spectral", "instance", "none")


def min_normalized_width(param_free_norm: str) -> int:
    """Fewest channels a SPADE-style layer with this parameter-free norm can normalise: 2 for "positional" (PONO's
    unbiased variance over the channels of one pixel), else 1."""
    return 2 if param_free_norm == "positional" else 1


class UpsamplingGridMixin:
    """For generators that start from a latent grid and double it `UPSAMPLING_LAYERS[num_upsampling_layers]` times
    (SPADE, SEAN): the grid factor, and the check that `image_size` is a whole number of grid cells."""

    num_upsampling_layers: str
    image_size: tuple[int, int]

    @property
    def upsampling_factor(self) -> int:
        """Ratio between the image size and the generator's latent grid."""
        return 2 ** UPSAMPLING_LAYERS[self.num_upsampling_layers]

    def _check_image_size(self) -> None:
        factor = self.upsampling_factor
        if self.image_size[0] % factor or self.image_size[1] % factor:
            raise ValueError(
                f"image_size {tuple(self.image_size)} must be divisible by 2**"
                f"{UPSAMPLING_LAYERS[self.num_upsampling_layers]} = {factor} for "
                f"num_upsampling_layers={self.num_upsampling_layers!r}"
            )


class SPADEBlocksMixin:
    """For generators built of SPADE residual blocks (SPADE, SEAN, OASIS, CoCosNet's translation network) and the
    multi-scale PatchGAN that most of them train with: the checks of the fields they share, for `validate`."""

    param_free_norm: str
    ngf: int
    spectral_norm: bool
    spade_kernel_size: int
    spade_hidden_nc: int
    ndf: int
    n_layers_d: int
    num_d: int
    discriminator_norm: str

    def _check_spade_blocks(self, norms: Sequence[str] = PARAM_FREE_NORMS, last_block_divisor: int = 1) -> None:
        """Check `param_free_norm` (one of `norms`), `ngf` (the widest layers have 16 * ngf channels; the last block
        normalises ngf // `last_block_divisor` channels, which must not be empty and which positional norm needs two
        of), `spectral_norm`, `spade_kernel_size` and `spade_hidden_nc`."""
        self.param_free_norm = check_choice("param_free_norm", self.param_free_norm, tuple(norms))
        narrowest = min_normalized_width(self.param_free_norm)
        reason = f"the widest layers have 16 * ngf channels, at most {MAX_CHANNELS}"
        if last_block_divisor * narrowest > 1:
            reason += (f"; the last block normalises ngf{f' // {last_block_divisor}' if last_block_divisor > 1 else ''}"
                       f" channels, at least {narrowest} with param_free_norm={self.param_free_norm!r}")
        self.ngf = check_int("ngf", self.ngf, last_block_divisor * narrowest, MAX_CHANNELS // 16, reason=reason)
        self.spectral_norm = check_bool("spectral_norm", self.spectral_norm)
        self.spade_kernel_size = check_int("spade_kernel_size", self.spade_kernel_size, 1, MAX_KERNEL_SIZE, odd=True)
        self.spade_hidden_nc = check_int("spade_hidden_nc", self.spade_hidden_nc, 1, MAX_CHANNELS)

    def _check_patchgan(self, min_layers: int = 1) -> None:
        """Check the multi-scale PatchGAN's `ndf`, `n_layers_d` (`min_layers` .. `MAX_DISCRIMINATOR_LAYERS`),
        `num_d` and `discriminator_norm`."""
        self.ndf = check_int("ndf", self.ndf, 1, MAX_CHANNELS)
        self.n_layers_d = check_int("n_layers_d", self.n_layers_d, min_layers, MAX_DISCRIMINATOR_LAYERS)
        self.num_d = check_int("num_d", self.num_d, 1, MAX_SCALES)
        self.discriminator_norm = check_choice("discriminator_norm", self.discriminator_norm, CONV_NORMS)


# Dataset presets of the released checkpoints (original option hooks of each dataset mode).
SPADE_PRESETS: dict[str, dict[str, Any]] = {
    "ade20k": dict(label_space="ade20k", label_nc=150, contain_dontcare_label=True, use_instance_edges=False,
                   image_size=(256, 256), num_upsampling_layers="normal"),
    "cityscapes": dict(label_space="cityscapes", label_nc=35, contain_dontcare_label=False, use_instance_edges=True,
                       image_size=(256, 512), num_upsampling_layers="more"),
    "coco-stuff": dict(label_space="coco-stuff", label_nc=182, contain_dontcare_label=True, use_instance_edges=True,
                       image_size=(256, 256), num_upsampling_layers="normal"),
}
_PRESET_ALIASES = {"coco": "coco-stuff", "cocostuff": "coco-stuff", "coco_stuff": "coco-stuff", "ade": "ade20k"}


class SPADEConfig(UpsamplingGridMixin, SPADEBlocksMixin, LabelSynthConfig):
    """Configuration of `SPADEModel` (generator + optional VAE style encoder) and `SPADEDiscriminator`.

    Label-space fields (`label_space`, `label_nc`, `contain_dontcare_label`, `ignore_index`, `use_instance_edges`,
    `image_size`) are documented in `LabelSynthConfig`. Original option names are given in brackets.

    Args:
        ngf (`int`): base width of the generator and of the style encoder [`--ngf`, 64]. The generator's widest
            layers have 16 * ngf channels.
        num_upsampling_layers (`str`): "normal" (5 x2-upsamplings), "more" (6: one extra between the two middle
            blocks) or "most" (7: also an extra final block of ngf / 2 channels) [`--num_upsampling_layers`].
            The latent grid is `image_size / 2**num_upsampling`.
        param_free_norm (`str`): normalization inside SPADE: "syncbatch" (the original's default; plain BatchNorm
            on one device, converted to SyncBatchNorm by the trainer on several GPUs), "batch" or "instance"
            [the `spade<norm>3x3` part of `--norm_G`].
        spectral_norm (`bool`): spectral normalization on the residual blocks' convs [`spectral` in `--norm_G`].
        spade_kernel_size (`int`): kernel of the SPADE convs [the `3x3` in `--norm_G`].
        spade_hidden_nc (`int`): width of SPADE's shared hidden layer (128, hard-coded in the original).
        use_vae (`bool`): start from a latent z through a linear layer instead of the downsampled label map, and add
            the style encoder that predicts z from a style image [`--use_vae`].
        z_dim (`int`): dimension of z [`--z_dim`, 256].
        encoder_norm (`str`): norm of the style encoder's convs [`--norm_E`, "spectralinstance"].
        ndf (`int`): base width of the discriminator [`--ndf`, 64].
        n_layers_d (`int`): feature stages per PatchGAN [`--n_layers_D`, 4].
        num_d (`int`): number of discriminator scales [`--num_D`, 2].
        discriminator_norm (`str`): norm of the discriminator's inner stages [`--norm_D`, "spectralinstance"].
    """

    model_type = "spade"
    presets = SPADE_PRESETS
    preset_aliases = _PRESET_ALIASES
    family = "SPADE"

    def __init__(
        self,
        label_space: str | dict[str, Any] = "ade20k",
        label_nc: int = 150,
        contain_dontcare_label: bool = True,
        ignore_index: int = 255,
        use_instance_edges: bool = False,
        image_size: tuple[int, int] | list[int] = (256, 256),
        ngf: int = 64,
        num_upsampling_layers: str = "normal",
        param_free_norm: str = "syncbatch",
        spectral_norm: bool = True,
        spade_kernel_size: int = 3,
        spade_hidden_nc: int = 128,
        use_vae: bool = False,
        z_dim: int = 256,
        encoder_norm: str = "spectralinstance",
        ndf: int = 64,
        n_layers_d: int = 4,
        num_d: int = 2,
        discriminator_norm: str = "spectralinstance",
        **kwargs: Any,
    ) -> None:
        self.ngf = ngf
        self.num_upsampling_layers = num_upsampling_layers
        self.param_free_norm = param_free_norm
        self.spectral_norm = spectral_norm
        self.spade_kernel_size = spade_kernel_size
        self.spade_hidden_nc = spade_hidden_nc
        self.use_vae = use_vae
        self.z_dim = z_dim
        self.encoder_norm = encoder_norm
        self.ndf = ndf
        self.n_layers_d = n_layers_d
        self.num_d = num_d
        self.discriminator_norm = discriminator_norm
        super().__init__(label_space=label_space, label_nc=label_nc, contain_dontcare_label=contain_dontcare_label,
                         ignore_index=ignore_index, use_instance_edges=use_instance_edges, image_size=image_size,
                         **kwargs)

    def validate(self) -> None:
        """`LabelSynthConfig.validate` plus SPADE's fields and the image-size multiple of the latent grid."""
        super().validate()
        self.num_upsampling_layers = check_choice("num_upsampling_layers", self.num_upsampling_layers,
                                                  tuple(UPSAMPLING_LAYERS))
        # The last block normalises ngf channels, ngf // 2 with "most" (positional norm takes each pixel's variance
        # over the channels, which needs two of them).
        self._check_spade_blocks(last_block_divisor=2 if self.num_upsampling_layers == "most" else 1)
        self.use_vae = check_bool("use_vae", self.use_vae)
        self.z_dim = check_int("z_dim", self.z_dim, 1, MAX_LATENT_DIM)
        self.encoder_norm = check_choice("encoder_norm", self.encoder_norm, ENCODER_NORMS)
        self._check_patchgan()
        self._check_image_size()
        if self.use_vae:
            latent_h, latent_w = (s // self.upsampling_factor for s in self.image_size)
            check_layer_size("the VAE's projection z -> latent grid", self.z_dim * 16 * self.ngf * latent_h * latent_w,
                             f"z_dim={self.z_dim} x 16 * ngf={self.ngf} x latent grid {latent_h}x{latent_w} = "
                             f"image_size / {self.upsampling_factor}")
