"""SPADE / GauGAN configuration (Park et al., "Semantic Image Synthesis with Spatially-Adaptive Normalization", 2019)."""

from __future__ import annotations

from typing import Any

from ...configuration_utils import LabelSynthConfig

UPSAMPLING_LAYERS = {"normal": 5, "more": 6, "most": 7}


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


def resolve_preset(name: str) -> dict[str, Any]:
    """The `SPADEConfig` fields of a dataset preset (aliases such as "coco" accepted)."""
    key = _PRESET_ALIASES.get(name.lower(), name.lower())
    if key not in SPADE_PRESETS:
        raise ValueError(f"unknown SPADE preset {name!r}; available: {sorted(SPADE_PRESETS)}")
    return dict(SPADE_PRESETS[key])


class SPADEConfig(UpsamplingGridMixin, LabelSynthConfig):
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
        if num_upsampling_layers not in UPSAMPLING_LAYERS:
            raise ValueError(
                f"num_upsampling_layers must be one of {sorted(UPSAMPLING_LAYERS)}, got {num_upsampling_layers!r}"
            )
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
        self._check_image_size()

    @classmethod
    def for_dataset(cls, name: str, **overrides: Any) -> SPADEConfig:
        """Preset of a released checkpoint: "ade20k", "cityscapes" or "coco-stuff" (overrides win)."""
        return cls(**{**resolve_preset(name), **overrides})
