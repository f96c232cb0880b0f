"""pix2pix configuration (Isola et al., "Image-to-Image Translation with Conditional Adversarial Networks", 2017)."""

from __future__ import annotations

from typing import Any

from ...configuration_utils import (
    MAX_CHANNELS,
    MAX_DISCRIMINATOR_LAYERS,
    MAX_DOWNSAMPLING,
    LabelSynthConfig,
    check_bool,
    check_choice,
    check_int,
)

INPUT_ENCODINGS = ("color", "one_hot")
NORMS = ("batch", "instance")
TEST_MODES = ("original", "eval")
# The original `--netG` names of the U-Nets: the number of stride-2 levels (the input must be divisible by 2**n).
UNET_NUM_DOWNS = {"unet_256": 8, "unet_128": 7}

# Dataset presets. The released pix2pix label->photo models were trained on colour renderings of the label maps.
PIX2PIX_PRESETS: dict[str, dict[str, Any]] = {
    "facades": dict(label_space="facades", label_nc=12, contain_dontcare_label=False, use_instance_edges=False,
                    image_size=(256, 256), input_encoding="color"),
    "cityscapes": dict(label_space="cityscapes", label_nc=35, contain_dontcare_label=False, use_instance_edges=False,
                       image_size=(256, 256), input_encoding="color"),
}
_PRESET_ALIASES = {"facade": "facades", "cmp-facades": "facades", "facades_label2photo": "facades"}


class Pix2PixConfig(LabelSynthConfig):
    """Configuration of `Pix2PixModel` (U-Net generator) and `Pix2PixDiscriminator` (PatchGAN).

    Label-space fields (`label_space`, `label_nc`, `contain_dontcare_label`, `ignore_index`, `use_instance_edges`,
    `image_size`) are documented in `LabelSynthConfig`. Original option names are given in brackets.

    Args:
        input_encoding (`str`): how the label map enters the generator. "color": the label map drawn with the label
            space's palette as an RGB image in [-1, 1] (3 channels), as the original facades / Cityscapes models were
            trained (`--input_nc 3` on colour label images; pixels equal to `ignore_index` get the space's ignore
            colour when `contain_dontcare_label` is set). "one_hot": one channel per label id (+ don't care).
            Either way the model takes label ids and builds its input itself.
        ngf (`int`): width of the generator's first level [`--ngf`, 64]; level k has ngf * min(2**k, 8) channels.
        num_downs (`int`): number of stride-2 levels of the U-Net [`--netG unet_256` = 8, `unet_128` = 7]. Image
            sides must be divisible by 2**num_downs (a 256x256 input reaches a 1x1 bottleneck).
        norm (`str`): "batch" (BatchNorm2d with learned affine, the pix2pix default) or "instance" (InstanceNorm2d
            without affine or running statistics); used by the generator and the discriminator [`--norm`]. As in
            the original, convolutions have biases only with "instance".
        use_dropout (`bool`): dropout (p = 0.5) after the up-convolutions of the 512-wide levels next to the
            bottleneck [the inverse of `--no_dropout`].
        test_mode (`str`): behaviour in eval mode (`model.eval()`, as after `from_pretrained`). "original" runs the
            generator as the original `test.py` does without `--eval` (and as the paper describes): dropout stays on
            (drawn from the `generator` passed to `forward`) and BatchNorm normalises with the statistics of the
            current batch (the running statistics are neither used nor updated). "eval" is the usual inference:
            no dropout, BatchNorm with running statistics (`test.py --eval`). `forward(test_mode=...)` overrides it.
            Training mode always uses dropout and batch statistics.
        ndf (`int`): width of the discriminator's first layer [`--ndf`, 64].
        n_layers_d (`int`): stride-2 layers of the PatchGAN [`--n_layers_D`, 3 = the 70x70 "basic" PatchGAN]. The
            discriminator sees the generator input concatenated with the image.
    """

    model_type = "pix2pix"
    presets = PIX2PIX_PRESETS
    preset_aliases = _PRESET_ALIASES
    family = "pix2pix"

    def __init__(
        self,
        label_space: str | dict[str, Any] = "facades",
        label_nc: int = 12,
        contain_dontcare_label: bool = False,
        ignore_index: int = 255,
        use_instance_edges: bool = False,
        image_size: tuple[int, int] | list[int] = (256, 256),
        input_encoding: str = "color",
        ngf: int = 64,
        num_downs: int = 8,
        norm: str = "batch",
        use_dropout: bool = True,
        test_mode: str = "original",
        ndf: int = 64,
        n_layers_d: int = 3,
        **kwargs: Any,
    ) -> None:
        self.input_encoding = input_encoding
        self.ngf = ngf
        self.num_downs = num_downs
        self.norm = norm
        self.use_dropout = use_dropout
        self.test_mode = test_mode
        self.ndf = ndf
        self.n_layers_d = n_layers_d
        super().__init__(label_space=label_space, label_nc=label_nc, contain_dontcare_label=contain_dontcare_label,
                         ignore_index=ignore_index, use_instance_edges=use_instance_edges, image_size=image_size,
                         **kwargs)

    def validate(self) -> None:
        """`LabelSynthConfig.validate` plus pix2pix's fields and the image-size multiple of the U-Net."""
        super().validate()
        self.input_encoding = check_choice("input_encoding", self.input_encoding, INPUT_ENCODINGS)
        self.norm = check_choice("norm", self.norm, NORMS)
        self.test_mode = check_choice("test_mode", self.test_mode, TEST_MODES)
        self.ngf = check_int("ngf", self.ngf, 1, MAX_CHANNELS // 8,
                             reason=f"the U-Net's widest levels have 8 * ngf channels, at most {MAX_CHANNELS}")
        self.num_downs = check_int("num_downs", self.num_downs, 5, MAX_DOWNSAMPLING,
                                   reason=f"the U-Net has 5 fixed levels, ngf .. 8 * ngf; 2**{MAX_DOWNSAMPLING} is "
                                   "the largest image side")
        self.use_dropout = check_bool("use_dropout", self.use_dropout)
        self.ndf = check_int("ndf", self.ndf, 1, MAX_CHANNELS // 8,
                             reason=f"the PatchGAN's widest layers have 8 * ndf channels, at most {MAX_CHANNELS}")
        self.n_layers_d = check_int("n_layers_d", self.n_layers_d, 1, MAX_DISCRIMINATOR_LAYERS)
        factor = self.size_divisor
        if self.image_size[0] % factor or self.image_size[1] % factor:
            raise ValueError(
                f"image_size {tuple(self.image_size)} must be divisible by 2**num_downs = {factor} "
                f"(num_downs={self.num_downs}); use num_downs=7 (unet_128) for 128-multiples"
            )

    @property
    def size_divisor(self) -> int:
        """Image sides must be multiples of this (2**num_downs)."""
        return 2**self.num_downs

    @property
    def generator_input_nc(self) -> int:
        """Channels the generator sees: 3 (colour rendering) or the one-hot channels, + 1 with instance edges."""
        base = 3 if self.input_encoding == "color" else self.num_label_channels
        return base + int(self.use_instance_edges)

    @property
    def discriminator_input_nc(self) -> int:
        """Channels the discriminator sees: the generator input concatenated with an RGB image."""
        return self.generator_input_nc + 3
