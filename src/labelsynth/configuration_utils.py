"""`LabelSynthConfig`: the fields every label-to-image model shares (label space, semantic input, image size)."""

from __future__ import annotations

from typing import Any

from transformers import PreTrainedConfig


class LabelSynthConfig(PreTrainedConfig):
    """Base configuration of a labelsynth model.

    It describes how an integer label map becomes the model's *semantic input* (the one-hot tensor the
    generator is conditioned on), using the option names of the original implementations:

    Args:
        label_space (`str` or `dict`): name of a built-in label space (``"ade20k"``, ``"cityscapes"``,
            ``"coco-stuff"``, ...) or a serialised custom one (`LabelSpace.to_dict()`). Used for palettes, class
            names and input validation at the edges (processor, demo); the network itself only needs `label_nc`.
        label_nc (`int`): number of label ids the network has a channel for (original `--label_nc`). Valid ids are
            ``0 .. label_nc - 1``, plus ``label_nc`` itself when `contain_dontcare_label` is set.
        contain_dontcare_label (`bool`): adds one "don't care" channel at index `label_nc` (original
            `--contain_dontcare_label`). Pixels equal to `ignore_index` are routed to it.
        ignore_index (`int`): the value that marks unlabeled pixels in label maps (255 in COCO-Stuff). Only valid
            when `contain_dontcare_label` is set; otherwise such pixels are rejected with a clear error.
        use_instance_edges (`bool`): append a binary instance-boundary channel computed from the instance map
            (original: the inverse of `--no_instance`). An instance map is then required at inference.
        image_size (`tuple[int, int]`): ``(height, width)`` the model generates (original `--crop_size` and
            `--aspect_ratio`).
    """

    model_type = "labelsynth"

    def __init__(
        self,
        label_space: str | dict[str, Any] = "ade20k",
        label_nc: int = 150,
        contain_dontcare_label: bool = True,
        ignore_index: int = 255,
        use_instance_edges: bool = False,
        image_size: tuple[int, int] | list[int] = (256, 256),
        **kwargs: Any,
    ) -> None:
        self.label_space = label_space
        self.label_nc = int(label_nc)
        self.contain_dontcare_label = bool(contain_dontcare_label)
        self.ignore_index = int(ignore_index)
        self.use_instance_edges = bool(use_instance_edges)
        self.image_size = [int(s) for s in image_size]
        if len(self.image_size) != 2 or min(self.image_size) <= 0:
            raise ValueError(f"image_size must be (height, width) with positive sizes, got {image_size!r}")
        super().__init__(**kwargs)

    @property
    def num_label_channels(self) -> int:
        """Channels of the one-hot part of the semantic input (ids + optional don't-care channel)."""
        return self.label_nc + int(self.contain_dontcare_label)

    @property
    def semantic_nc(self) -> int:
        """Channels of the full semantic input: one-hot labels (+ don't care) (+ instance edges)."""
        return self.num_label_channels + int(self.use_instance_edges)
