"""`LabelSynthConfig`: the fields every label-to-image model shares (label space, semantic input, image size), its
dataset presets (`for_dataset`), and the checks every model configuration validates its fields with (`check_int`,
`check_choice`, ...)."""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from transformers import PreTrainedConfig

from .label_spaces import LabelSpace, get_label_space

if TYPE_CHECKING:
    from typing_extensions import Self

# Upper bounds of the config fields. They stop values nobody means (a typo, a unit mix-up, a corrupt config.json:
# ngf=10**6 asks torch for terabytes) with a clear error before any weight is allocated, and leave room far beyond
# the released models:
MAX_CHANNELS = 4096  # widest layer of any network; the released models' widest layers have 1024 channels
MAX_LATENT_DIM = 4096  # length of a latent or style code (z_dim, style_dim): 8-16x the released 256 / 512
# Label ids with a channel: > 20x COCO-Stuff's 182, ADE20K-full's 3688 fits; a one-hot input of this many channels
# at 256x256 already takes 1 GiB per image.
MAX_LABEL_NC = 4096
MAX_IMAGE_SIDE = 8192  # pixels per side: 4x the largest released model (pix2pixHD and CRN at 1024x2048)
MAX_DOWNSAMPLING = 13  # stride-2 levels: 2**13 = MAX_IMAGE_SIDE, so a deeper network cannot take any allowed image
MAX_KERNEL_SIZE = 9  # conv kernels are small odd sizes: every released model uses 3x3 (CoCosNet adaptors 4x4)
MAX_SCALES = 8  # discriminator scales, each halving the input: 2**7 = 128 takes 8192 pixels down to 64
# Stages of a PatchGAN discriminator: 2-2.7x the originals' 3 or 4 (3 stride-2 stages see 70x70 patches, 8 ~2300x2300).
MAX_DISCRIMINATOR_LAYERS = 8
# A single layer whose size is a product of several fields (SPADE's VAE projection, SEAN's per-class style maps):
# at most 4 GiB of float32 weights, ~60x the largest such layer of a released model.
MAX_LAYER_PARAMETERS = 2**30
# `ignore_index` allocates nothing; this only rejects values no label map can hold (int32 ids).
MAX_ABS_ID = 2**31 - 1

# Norm option strings of plain convs: an optional "spectral" prefix + the norm ("spectral" alone: spectral norm only).
# The PatchGAN discriminators and CoCosNet's domain adaptors build all of these.
CONV_NORMS = ("spectralinstance", "spectralbatch", "spectral", "instance", "batch", "none")


def _suffix(reason: str) -> str:
    return f" ({reason})" if reason else ""


def check_int(name: str, value: Any, low: int, high: int, *, odd: bool = False, reason: str = "") -> int:
    """`value` as an int in ``low..high`` (odd if `odd`), or a ValueError naming `name`, the value and the range.

    Integral floats (``64.0``) are accepted; bools, strings and fractional numbers are not. `reason` says where the
    bounds come from and is added to the message.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer, float, np.floating)):
        raise ValueError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    if isinstance(value, (float, np.floating)):
        if not float(value).is_integer():
            raise ValueError(f"{name} must be an integer, got {value!r}")
        value = int(value)
    value = int(value)
    if not low <= value <= high:
        raise ValueError(f"{name} must be >= {low} and <= {high}{_suffix(reason)}, got {value}")
    if odd and value % 2 != 1:
        raise ValueError(f"{name} must be odd (a kernel centred on its pixel), got {value}; allowed: "
                         f"{', '.join(str(k) for k in range(low | 1, high + 1, 2))}")
    return value


def check_float(name: str, value: Any, low: float, high: float = math.inf, *, low_inclusive: bool = True) -> float:
    """`value` as a finite float in ``[low, high]`` (``(low, high]`` when not `low_inclusive`), or a ValueError."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
    value = float(value)
    above_low = value >= low if low_inclusive else value > low
    if not (math.isfinite(value) and above_low and value <= high):
        bounds = f"{'>=' if low_inclusive else '>'} {low:g}" + (f" and <= {high:g}" if math.isfinite(high) else "")
        raise ValueError(f"{name} must be a finite number {bounds}, got {value!r}")
    return value


def check_bool(name: str, value: Any) -> bool:
    """`value` as a bool (``True``/``False``, or 0/1); anything else (``"false"``, 2, None) is a ValueError."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)) and value in (0, 1):
        return bool(value)
    raise ValueError(f"{name} must be True or False, got {value!r}")


def check_choice(name: str, value: Any, choices: Collection[Any]) -> Any:
    """`value` if it is one of `choices` (a numpy scalar as its Python value), else a ValueError listing them."""
    try:
        found = not isinstance(value, (bool, np.bool_)) and value in choices
    except (TypeError, ValueError):  # e.g. an array, whose comparison has no single truth value
        found = False
    if found:
        return value.item() if isinstance(value, np.generic) else value
    raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")


def check_layer_size(what: str, parameters: int, fields: str) -> None:
    """Reject a layer of more than `MAX_LAYER_PARAMETERS` weights; `fields` names the fields its size comes from."""
    if parameters > MAX_LAYER_PARAMETERS:
        raise ValueError(f"{what} would have {parameters:,} weights ({fields}), more than the {MAX_LAYER_PARAMETERS:,} "
                         "allowed for one layer; lower one of those fields")


def check_label_space(value: Any) -> str | dict[str, Any]:
    """The config form of a label space: a registered name (checked), a `LabelSpace.to_dict()` dict (checked), or a
    `LabelSpace` (stored by name when it is the registered one of that name, else as its dict)."""
    if isinstance(value, LabelSpace):
        try:
            registered = get_label_space(value.name) == value
        except ValueError:
            registered = False
        return value.name if registered else value.to_dict()
    if not isinstance(value, (str, Mapping)):
        raise ValueError(f"label_space must be a registered name, a dict from LabelSpace.to_dict() or a LabelSpace, "
                         f"got {value!r} ({type(value).__name__})")
    try:
        get_label_space(value)
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"label_space: {err}") from err
    return value if isinstance(value, str) else dict(value)


class LabelSynthConfig(PreTrainedConfig):
    """Base configuration of a labelsynth model.

    It describes how an integer label map becomes the model's *semantic input* (the one-hot tensor the
    generator is conditioned on), using the option names of the original implementations:

    Args:
        label_space (`str` or `dict`): name of a registered label space (``"ade20k"``, ``"cityscapes"``,
            ``"coco-stuff"``, ... or one added with `register_label_space`) or a serialised custom one
            (`LabelSpace.to_dict()`); a `LabelSpace` is stored as one of those. Used for palettes, class names and
            input validation at the edges (processor, demo); the network itself only needs `label_nc`.
        label_nc (`int`): number of label ids the network has a channel for (original `--label_nc`), 1 ..
            `MAX_LABEL_NC`. Valid ids are ``0 .. label_nc - 1``, plus ``label_nc`` itself when
            `contain_dontcare_label` is set.
        contain_dontcare_label (`bool`): adds one "don't care" channel at index `label_nc` (original
            `--contain_dontcare_label`). Pixels equal to `ignore_index` are routed to it.
        ignore_index (`int`): the value that marks unlabeled pixels in label maps (255 in COCO-Stuff). Only valid
            when `contain_dontcare_label` is set (it must then not be a class id); otherwise such pixels are
            rejected with a clear error.
        use_instance_edges (`bool`): append a binary instance-boundary channel computed from the instance map
            (original: the inverse of `--no_instance`). An instance map is then required at inference.
        image_size (`tuple[int, int]`): ``(height, width)`` the model generates (original `--crop_size` and
            `--aspect_ratio`), each 1 .. `MAX_IMAGE_SIDE`; every model adds the multiple its architecture needs.

    Every field is checked on construction (and so by `from_pretrained`, which builds the config from config.json)
    and again before saving: a bad value raises a `ValueError` naming the field, the value and the allowed range.
    Subclasses check their own fields in `validate`, and list their dataset presets in `presets` (with
    `preset_aliases` and the `family` name their messages use) for `for_dataset`.
    """

    model_type = "labelsynth"
    # Dataset presets: preset name -> field values (the released checkpoints' or the original recipes'), alias ->
    # preset name (lower case), and the model family named in errors.
    presets: ClassVar[Mapping[str, Mapping[str, Any]]] = {}
    preset_aliases: ClassVar[Mapping[str, str]] = {}
    family: ClassVar[str] = "labelsynth"

    def __init__(
        self,
        label_space: str | dict[str, Any] | LabelSpace = "ade20k",
        label_nc: int = 150,
        contain_dontcare_label: bool = True,
        ignore_index: int = 255,
        use_instance_edges: bool = False,
        image_size: tuple[int, int] | list[int] = (256, 256),
        **kwargs: Any,
    ) -> None:
        self.label_space = label_space
        self.label_nc = label_nc
        self.contain_dontcare_label = contain_dontcare_label
        self.ignore_index = ignore_index
        self.use_instance_edges = use_instance_edges
        self.image_size = image_size
        super().__init__(**kwargs)
        self.validate()

    def validate(self) -> None:
        """Check every field (normalising types: ints, bools, `image_size` as a list); raises `ValueError`.

        Runs at the end of `__init__`, after keyword overrides in `from_dict` / `from_pretrained`, and in
        `save_pretrained`. Subclasses extend it (calling this first) with their fields and the image-size multiple
        their architecture needs.
        """
        self.label_space = check_label_space(self.label_space)
        self.label_nc = check_int("label_nc", self.label_nc, 1, MAX_LABEL_NC)
        self.contain_dontcare_label = check_bool("contain_dontcare_label", self.contain_dontcare_label)
        self.ignore_index = check_int("ignore_index", self.ignore_index, -MAX_ABS_ID, MAX_ABS_ID)
        if self.contain_dontcare_label and 0 <= self.ignore_index < self.label_nc:
            raise ValueError(
                f"ignore_index {self.ignore_index} is a class id (0..{self.label_nc - 1}) but contain_dontcare_label "
                f"routes it to the don't-care channel; use an id outside the classes, e.g. {max(255, self.label_nc)}"
            )
        self.use_instance_edges = check_bool("use_instance_edges", self.use_instance_edges)
        size = self.image_size
        if isinstance(size, (str, bytes, Mapping)) or not hasattr(size, "__len__") or len(size) != 2:
            raise ValueError(f"image_size must be (height, width), got {size!r}")
        self.image_size = [check_int(f"image_size[{i}] ({side})", s, 1, MAX_IMAGE_SIDE)
                           for i, (side, s) in enumerate(zip(("height", "width"), size))]

    @classmethod
    def from_dict(cls, config_dict: dict[str, Any], **kwargs: Any
                  ) -> LabelSynthConfig | tuple[LabelSynthConfig, dict[str, Any]]:
        """`PreTrainedConfig.from_dict`, validated again after the keyword overrides it sets as attributes
        (``from_pretrained(path, ngf=...)``)."""
        result = super().from_dict(config_dict, **kwargs)
        (result[0] if isinstance(result, tuple) else result).validate()
        return result

    @classmethod
    def preset_key(cls, name: str) -> str:
        """The preset `name` stands for (case-insensitive; aliases resolved), or a ValueError listing the presets."""
        key = str(name).lower()
        key = cls.preset_aliases.get(key, key)
        if key not in cls.presets:
            raise ValueError(f"unknown {cls.family} preset {name!r}; available: {sorted(cls.presets)}")
        return key

    @classmethod
    def resolve_preset(cls, name: str) -> dict[str, Any]:
        """The config fields of the preset `name` (a copy; aliases accepted)."""
        return dict(cls.presets[cls.preset_key(name)])

    @classmethod
    def for_dataset(cls, name: str, **overrides: Any) -> Self:
        """The config of the preset `name` (see `presets`), with `overrides` winning over its fields."""
        return cls(**{**cls.resolve_preset(name), **overrides})

    @property
    def num_label_channels(self) -> int:
        """Channels of the one-hot part of the semantic input (ids + optional don't-care channel)."""
        return self.label_nc + int(self.contain_dontcare_label)

    @property
    def semantic_nc(self) -> int:
        """Channels of the full semantic input: one-hot labels (+ don't care) (+ instance edges)."""
        return self.num_label_channels + int(self.use_instance_edges)
