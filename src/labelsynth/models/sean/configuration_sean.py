"""SEAN configuration (Zhu et al., "SEAN: Image Synthesis with Semantic Region-Adaptive Normalization", CVPR 2020)."""

from __future__ import annotations

from typing import Any

from ...configuration_utils import (
    MAX_CHANNELS,
    MAX_LATENT_DIM,
    LabelSynthConfig,
    check_int,
    check_layer_size,
)
from ..spade.configuration_spade import SPADEBlocksMixin, UpsamplingGridMixin

# The ResBlocks whose normalizations use region styles, in forward order; the last block (up_3) is SPADE-only.
STYLE_BLOCKS = ("head_0", "G_middle_0", "G_middle_1", "up_0", "up_1", "up_2")

# The released checkpoint (`CelebA-HQ_pretrained`): `--label_nc 19 --no_instance --crop_size 256`, custom dataset mode
# (no don't-care label).
SEAN_PRESETS: dict[str, dict[str, Any]] = {
    "celebamask-hq": dict(label_space="celebamask-hq", label_nc=19, contain_dontcare_label=False,
                          use_instance_edges=False, image_size=(256, 256), num_upsampling_layers="normal"),
}
_PRESET_ALIASES = {"celeba": "celebamask-hq", "celebahq": "celebamask-hq", "celeba-hq": "celebamask-hq",
                   "celebamask": "celebamask-hq"}


class SEANConfig(UpsamplingGridMixin, SPADEBlocksMixin, LabelSynthConfig):
    """Configuration of `SEANModel` (style encoder + generator) and `SEANDiscriminator`.

    Label-space fields (`label_space`, `label_nc`, `contain_dontcare_label`, `ignore_index`, `image_size`) are
    documented in `LabelSynthConfig`; every semantic channel is a style class (one style code and one per-class
    linear map each), so instance edges are not supported. Original option names are given in brackets.

    Args:
        ngf (`int`): base width of the generator [`--ngf`, 64]; its widest blocks have 16 * ngf channels.
        num_upsampling_layers (`str`): "normal" (5 x2-upsamplings) or "more" (6: one more between the middle
            blocks) [`--num_upsampling_layers`]; SEAN's code has no working "most". Latent grid:
            `image_size / 2**num_upsampling`.
        param_free_norm (`str`): the norm inside every SEAN layer: "syncbatch" (hard-coded in the original; plain
            BatchNorm on one device, SyncBatchNorm on several GPUs), "batch" or "instance".
        spectral_norm (`bool`): spectral normalization on the ResBlocks' convs [`spectral` in `--norm_G`].
        spade_kernel_size (`int`): kernel of the SPADE-branch convs and of the style convs [`3x3` in `--norm_G`].
        spade_hidden_nc (`int`): width of the SPADE branch's hidden layer (128, hard-coded in the original).
        style_dim (`int`): length of a region style code (512, hard-coded as `style_length` in the original).
        style_encoder_ngf (`int`): base width of the style encoder (`Zencoder(ngf=32)` in the original).
        ndf (`int`): base width of the discriminator [`--ndf`, 64].
        n_layers_d (`int`): feature stages per PatchGAN [`--n_layers_D`, 3 in SEAN, all stride 2].
        num_d (`int`): number of discriminator scales [`--num_D`, 2].
        discriminator_norm (`str`): norm of the discriminator's inner stages [`--norm_D`, "spectralinstance"].
    """

    model_type = "sean"
    presets = SEAN_PRESETS
    preset_aliases = _PRESET_ALIASES
    family = "SEAN"

    def __init__(
        self,
        label_space: str | dict[str, Any] = "celebamask-hq",
        label_nc: int = 19,
        contain_dontcare_label: bool = False,
        ignore_index: int = 255,
        use_instance_edges: bool = False,
        image_size: tuple[int, int] | list[int] = (256, 256),
        ngf: int = 64,
        num_upsampling_layers: str = "normal",
        param_free_norm: str = "syncbatch",
        spectral_norm: bool = True,
        spade_kernel_size: int = 3,
        spade_hidden_nc: int = 128,
        style_dim: int = 512,
        style_encoder_ngf: int = 32,
        ndf: int = 64,
        n_layers_d: int = 3,
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
        self.style_dim = style_dim
        self.style_encoder_ngf = style_encoder_ngf
        self.ndf = ndf
        self.n_layers_d = n_layers_d
        self.num_d = num_d
        self.discriminator_norm = discriminator_norm
        super().__init__(label_space=label_space, label_nc=label_nc, contain_dontcare_label=contain_dontcare_label,
                         ignore_index=ignore_index, use_instance_edges=use_instance_edges, image_size=image_size,
                         **kwargs)

    def validate(self) -> None:
        """`LabelSynthConfig.validate` plus SEAN's fields, the image-size multiple of the latent grid and the size
        of the per-class style maps."""
        super().validate()
        if self.num_upsampling_layers not in ("normal", "more"):
            raise ValueError(
                f"SEAN supports num_upsampling_layers 'normal' or 'more', got {self.num_upsampling_layers!r}")
        if self.use_instance_edges:
            raise ValueError(
                "SEAN has one style code per semantic channel, so it cannot take an instance-edge channel; "
                "set use_instance_edges=False (the original was trained with --no_instance)"
            )
        self._check_spade_blocks()
        self.style_dim = check_int("style_dim", self.style_dim, 1, MAX_LATENT_DIM)
        self.style_encoder_ngf = check_int(
            "style_encoder_ngf", self.style_encoder_ngf, 1, MAX_CHANNELS // 8,
            reason=f"the style encoder's widest layer has 8 * style_encoder_ngf channels, at most {MAX_CHANNELS}")
        self._check_patchgan()
        self._check_image_size()
        # Every SEAN layer holds one style_dim x style_dim linear map per semantic channel.
        check_layer_size("each SEAN layer's per-class style maps", self.num_style_classes * self.style_dim**2,
                         f"{self.num_style_classes} semantic channels (label_nc + don't care) x style_dim="
                         f"{self.style_dim} squared")

    @property
    def num_style_classes(self) -> int:
        """Style codes per image: one per semantic channel."""
        return self.num_label_channels
