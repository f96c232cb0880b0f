"""CRN configuration (Chen & Koltun, "Photographic Image Synthesis with Cascaded Refinement Networks", ICCV 2017)."""

from __future__ import annotations

from typing import Any

from ...configuration_utils import (
    MAX_CHANNELS,
    MAX_DOWNSAMPLING,
    MAX_LABEL_NC,
    LabelSynthConfig,
    check_float,
    check_int,
)
from ...label_spaces import CITYSCAPES_LABELID_TO_TRAINID

# The released models read 19 Cityscapes trainId channels plus a "void" channel (everything else). labelIds of the
# "cityscapes" label space map to them here, so gtFine *_labelIds.png files and the original colour label images
# (every colour of which is a labelId colour) both work; void labelIds (trainId 255) go to channel 19.
CITYSCAPES_VOID_CHANNEL = 19
CITYSCAPES_LABELID_TO_CRN_CHANNEL: tuple[int, ...] = tuple(
    CITYSCAPES_VOID_CHANNEL if t == 255 else int(t) for t in CITYSCAPES_LABELID_TO_TRAINID
)

_CITYSCAPES_LABELS = {"label_space": "cityscapes", "label_nc": 35, "contain_dontcare_label": False,
                      "label_to_channel": CITYSCAPES_LABELID_TO_CRN_CHANNEL}
_WIDTHS_256 = (1024,) * 5 + (512,) * 2  # heights 4, 8, 16, 32, 64 | 128, 256
MAX_OUTPUTS = 64  # images per label map: 7x the released diversity models' 9 (the head has 3 channels per image)

# Presets of the released checkpoints (`demo_256p.py`, `demo_512p.py`, `demo_1024p.py`, `GTA_Diversity_256p.py`).
CRN_PRESETS: dict[str, dict[str, Any]] = {
    "cityscapes-256p": dict(**_CITYSCAPES_LABELS, image_size=(256, 512), module_channels=_WIDTHS_256, num_outputs=9),
    "cityscapes-512p": dict(**_CITYSCAPES_LABELS, image_size=(512, 1024), module_channels=_WIDTHS_256 + (128,),
                            num_outputs=1),
    "cityscapes-1024p": dict(**_CITYSCAPES_LABELS, image_size=(1024, 2048), module_channels=_WIDTHS_256 + (128, 32),
                             num_outputs=1),
    # GTA5 ("Playing for Data") labels use the Cityscapes labelIds and colours.
    "gta-256p": dict(**_CITYSCAPES_LABELS, image_size=(256, 512), module_channels=_WIDTHS_256, num_outputs=9),
}
_PRESET_ALIASES = {"cityscapes": "cityscapes-256p", "gta": "gta-256p", "gta5": "gta-256p"}


class CRNConfig(LabelSynthConfig):
    """Configuration of `CRNModel`, the cascaded refinement network.

    The network is a chain of refinement modules, one per resolution, each doubling height and width: the coarsest
    works at `image_size / 2**(len(module_channels) - 1)` (4x8 for the released models, whose `sp` loop starts at
    height 4), the last at `image_size`. Label-space fields (`label_space`, `label_nc`, `contain_dontcare_label`,
    `ignore_index`, `image_size`) are documented in `LabelSynthConfig`; CRN takes no instance map.

    Args:
        label_to_channel (`list[int]`, *optional*): input channel of every raw label id (length = number of ids the
            label space has, `label_nc` + don't care). The released models were trained on 19 Cityscapes trainId
            channels + a "void" channel (the original builds it as `1 - sum(others)`); the presets map the 35
            Cityscapes labelIds onto those 20 channels. None: one channel per id (+ don't care), as other models.
        module_channels (`list[int]`): width of each refinement module, coarsest first. Original: 1024 below
            height 128, 512 at 128 and 256, 128 at 512 and 32 at 1024 (`dim` in `recursive_generator`).
        num_outputs (`int`): images generated in one shot per label map, k (the 1x1 head has 3k channels): 9 for
            the 256p diversity models (`g_256_conv100` with 27 channels), 1 at 512p/1024p.
        layer_norm_eps (`float`): epsilon of the layer norms (TF-slim `layer_norm`'s fixed 1e-12 in float32).
        negative_slope (`float`): slope of the leaky ReLUs (`lrelu`: `max(0.2 x, x)`).
    """

    model_type = "crn"
    presets = CRN_PRESETS
    preset_aliases = _PRESET_ALIASES
    family = "CRN"

    def __init__(
        self,
        label_space: str | dict[str, Any] = "cityscapes",
        label_nc: int = 35,
        contain_dontcare_label: bool = False,
        ignore_index: int = 255,
        use_instance_edges: bool = False,
        image_size: tuple[int, int] | list[int] = (256, 512),
        label_to_channel: list[int] | tuple[int, ...] | None = CITYSCAPES_LABELID_TO_CRN_CHANNEL,
        module_channels: list[int] | tuple[int, ...] = _WIDTHS_256,
        num_outputs: int = 9,
        layer_norm_eps: float = 1e-12,
        negative_slope: float = 0.2,
        **kwargs: Any,
    ) -> None:
        self.label_to_channel = label_to_channel
        self.module_channels = module_channels
        self.num_outputs = num_outputs
        self.layer_norm_eps = layer_norm_eps
        self.negative_slope = negative_slope
        super().__init__(label_space=label_space, label_nc=label_nc, contain_dontcare_label=contain_dontcare_label,
                         ignore_index=ignore_index, use_instance_edges=use_instance_edges, image_size=image_size,
                         **kwargs)

    def validate(self) -> None:
        """`LabelSynthConfig.validate` plus CRN's fields and the image-size multiple of the module chain."""
        super().validate()
        if self.use_instance_edges:
            raise ValueError("CRN takes no instance map: use_instance_edges must be False")
        widths = self.module_channels
        # Each module doubles the resolution, so 2**(modules - 1) must divide an image side of at most 2**13.
        max_modules = MAX_DOWNSAMPLING + 1
        if isinstance(widths, (str, bytes)) or not hasattr(widths, "__len__") or not 1 <= len(widths) <= max_modules:
            raise ValueError(f"module_channels must list 1 to {max_modules} module widths (coarsest first), "
                             f"got {widths!r}")
        self.module_channels = [check_int(f"module_channels[{i}]", c, 1, MAX_CHANNELS) for i, c in enumerate(widths)]
        self.num_outputs = check_int("num_outputs", self.num_outputs, 1, MAX_OUTPUTS)
        self.layer_norm_eps = check_float("layer_norm_eps", self.layer_norm_eps, 0.0, 1.0, low_inclusive=False)
        self.negative_slope = check_float("negative_slope", self.negative_slope, 0.0, 1.0)
        if self.label_to_channel is not None:
            mapping = self.label_to_channel
            if isinstance(mapping, (str, bytes)) or not hasattr(mapping, "__len__"):
                raise ValueError(f"label_to_channel must be a list of channel indices or None, got {mapping!r}")
            if len(mapping) != self.num_label_channels:
                raise ValueError(
                    f"label_to_channel has {len(mapping)} entries but the label space has "
                    f"{self.num_label_channels} ids (label_nc={self.label_nc} + don't care "
                    f"{int(self.contain_dontcare_label)}); give one channel per id"
                )
            self.label_to_channel = [check_int(f"label_to_channel[{i}]", c, 0, MAX_LABEL_NC)
                                     for i, c in enumerate(mapping)]
        factor = self.downsampling_factor
        if self.image_size[0] % factor or self.image_size[1] % factor:
            raise ValueError(
                f"image_size {tuple(self.image_size)} must be divisible by 2**{len(self.module_channels) - 1} = "
                f"{factor} for {len(self.module_channels)} refinement modules"
            )

    @property
    def semantic_nc(self) -> int:
        """Channels of the semantic input: 20 for the released models (19 classes + void)."""
        if self.label_to_channel is not None:
            return max(self.label_to_channel) + 1
        return self.num_label_channels

    @property
    def downsampling_factor(self) -> int:
        """Ratio between the image size and the coarsest module's grid (64 for the 7-module 256p models)."""
        return 2 ** (len(self.module_channels) - 1)
