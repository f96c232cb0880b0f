"""Compressed GauGAN configuration (GAN Compression, Li et al., CVPR 2020: the `sub_mobile_spade` generator)."""

from __future__ import annotations

from typing import Any

from ...configuration_utils import MAX_CHANNELS, LabelSynthConfig, check_choice, check_int
from .configuration_spade import SPADE_PRESETS, UpsamplingGridMixin

# The released Cityscapes student: `--netG sub_mobile_spade --ngf 48 --config_str 32_40_40_32_40_24_32_24`.
COMPRESSED_CITYSCAPES_CHANNELS = (32, 40, 40, 32, 40, 24, 32, 24)
# Per stage (fc, head_0, G_middle_0, G_middle_1, up_0, up_1, up_2, up_3): the factor of its `channels` entry giving
# its width, as in the original (the teacher's 16/16/16/16/8/4/2/1 * ngf plan).
_WIDTH_FACTORS = (16, 16, 16, 16, 8, 4, 2, 1)
MOBILE_SPADE_STAGES = ("fc", "head_0", "G_middle_0", "G_middle_1", "up_0", "up_1", "up_2", "up_3")

MOBILE_SPADE_PRESETS: dict[str, dict[str, Any]] = {
    # Cityscapes labelIds (35 classes), no don't-care channel, instance edges, 256x512: the original's
    # cityscapes dataset options (input_nc 35, crop_size 512, aspect_ratio 2, --no_instance off).
    "cityscapes-compressed": dict(SPADE_PRESETS["cityscapes"], channels=list(COMPRESSED_CITYSCAPES_CHANNELS)),
}


class MobileSPADEConfig(UpsamplingGridMixin, LabelSynthConfig):
    """Configuration of `MobileSPADEModel`, the compressed GauGAN generator of GAN Compression.

    Label-space fields are documented in `LabelSynthConfig`. Original option names in brackets.

    Args:
        channels (`list[int]`): the 8 searched widths of the sub-network [`--config_str`, e.g. "32_40_40_32_40_24_
            32_24"]: entry i sets stage i's width to `factor_i * channels[i]` with factors 16 (fc, head_0,
            G_middle_0, G_middle_1), 8 (up_0), 4 (up_1), 2 (up_2), 1 (up_3), and its MobileSPADE hidden width to
            `2 * channels[i]`. The fc width carries through the three 16x blocks (their conv_1 output).
        num_upsampling_layers (`str`): "normal" (5 x2-upsamplings) or "more" (6, Cityscapes)
            [`--num_upsampling_layers`; the original has no "most" for this generator].
        param_free_norm (`str`): "syncbatch" (the original's only choice; plain BatchNorm on one device) or "batch".
    """

    model_type = "mobile_spade"

    def __init__(
        self,
        label_space: str | dict[str, Any] = "cityscapes",
        label_nc: int = 35,
        contain_dontcare_label: bool = False,
        ignore_index: int = 255,
        use_instance_edges: bool = True,
        image_size: tuple[int, int] | list[int] = (256, 512),
        channels: list[int] | tuple[int, ...] = COMPRESSED_CITYSCAPES_CHANNELS,
        num_upsampling_layers: str = "more",
        param_free_norm: str = "syncbatch",
        **kwargs: Any,
    ) -> None:
        self.channels = list(channels)
        self.num_upsampling_layers = num_upsampling_layers
        self.param_free_norm = param_free_norm
        super().__init__(label_space=label_space, label_nc=label_nc, contain_dontcare_label=contain_dontcare_label,
                         ignore_index=ignore_index, use_instance_edges=use_instance_edges, image_size=image_size,
                         **kwargs)

    def validate(self) -> None:
        """`LabelSynthConfig.validate` plus the widths, the upsampling count and the image-size multiple."""
        super().validate()
        if not isinstance(self.channels, (list, tuple)) or len(self.channels) != len(MOBILE_SPADE_STAGES):
            raise ValueError(f"channels must list {len(MOBILE_SPADE_STAGES)} widths (one per stage "
                             f"{', '.join(MOBILE_SPADE_STAGES)}; the original --config_str), got {self.channels!r}")
        self.channels = [check_int(f"channels[{i}] ({stage})", c, 1, MAX_CHANNELS // factor,
                                   reason=f"the stage is {factor} * channels[{i}] wide, at most {MAX_CHANNELS}")
                         for i, (stage, c, factor) in enumerate(zip(MOBILE_SPADE_STAGES, self.channels,
                                                                     _WIDTH_FACTORS))]
        self.num_upsampling_layers = check_choice("num_upsampling_layers", self.num_upsampling_layers,
                                                  ("normal", "more"))
        self.param_free_norm = check_choice("param_free_norm", self.param_free_norm, ("syncbatch", "batch"))
        self._check_image_size()

    @property
    def stage_widths(self) -> list[int]:
        """Width of each stage of `MOBILE_SPADE_STAGES` (fc output, then each block's inner width)."""
        return [factor * c for factor, c in zip(_WIDTH_FACTORS, self.channels)]

    @property
    def config_str(self) -> str:
        """The original `--config_str` of these widths."""
        return "_".join(map(str, self.channels))

    @classmethod
    def for_dataset(cls, name: str, **overrides: Any) -> MobileSPADEConfig:
        """Preset of a released checkpoint: "cityscapes-compressed" (alias "cityscapes"); overrides win."""
        key = {"cityscapes": "cityscapes-compressed"}.get(name.lower(), name.lower())
        if key not in MOBILE_SPADE_PRESETS:
            raise ValueError(f"unknown MobileSPADE preset {name!r}; available: {sorted(MOBILE_SPADE_PRESETS)}")
        return cls(**{**MOBILE_SPADE_PRESETS[key], **overrides})
