"""Palette protocols: the colour images a segmentation ControlNet was trained to read, rendered from label maps.

A protocol is a target label space plus its colours. A label map in any label space with a mapping
(`labelsynth.label_space_mappings`) is converted to the protocol's space by class name and painted with exact colours:

- ``"ade20k"``: ADE20K "Color150" (mmseg ``ade_palette()``; `lllyasviel/sd-controlnet-seg` and
  `lllyasviel/control_v11p_sd15_seg`). 150 classes; road and skyscraper share (140, 140, 140), so the image cannot
  tell them apart (as in the ControlNet's training data). ADE20K "other" and classes without a counterpart are black,
  a colour no class uses.
- ``"coco-panoptic"``: detectron2's COCO-panoptic 133 colours (v1.1's COCO mode, OneFormer COCO maps). Unlabeled and
  classes without a counterpart are black. v1.1 saw these maps with white anti-aliased outlines; we paint flat fills.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..label_space_mappings import get_label_space_mapping
from ..label_spaces import LabelSpace, _to_numpy_ids, get_label_space

__all__ = ["PALETTE_PROTOCOLS", "PaletteProtocol", "get_palette_protocol"]


@dataclass(frozen=True)
class PaletteProtocol:
    """How a ControlNet expects its segmentation image.

    Attributes:
        name: Protocol name (``"ade20k"``, ``"coco-panoptic"``).
        label_space: Name of the label space whose ids are painted; its palette gives the colours and its ignore
            colour (black) paints the ignore value.
        description: One line for docs and messages.
    """

    name: str
    label_space: str
    description: str = ""

    @property
    def space(self) -> LabelSpace:
        """The protocol's `LabelSpace`."""
        return get_label_space(self.label_space)

    def color_table(self) -> np.ndarray:
        """uint8 ``(256 or num_classes, 3)``: the colour of every protocol id (the ignore value included)."""
        space = self.space
        size = max(space.num_classes, (space.ignore_index or 0) + 1)
        table = np.zeros((size, 3), dtype=np.uint8)
        table[: space.num_classes] = space.palette
        if space.ignore_index is not None:
            table[space.ignore_index] = space.ignore_color
        return table

    def to_protocol_ids(self, ids: Any, label_space: str | LabelSpace) -> np.ndarray:
        """Map a label map of `label_space` ids to this protocol's ids (by class name).

        Args:
            ids: Integer array or tensor, ``(H, W)`` or ``(B, H, W)``.
            label_space: The space of `ids`.

        Raises:
            ValueError: `label_space` has no mapping to this protocol's space, or ids out of range.
        """
        mapping = get_label_space_mapping(label_space, self.label_space)
        return np.asarray(mapping(_to_numpy_ids(ids, "label map")))

    def render(self, ids: Any, label_space: str | LabelSpace | None = None) -> np.ndarray:
        """Paint a label map with this protocol's colours, at its own size (resize the ids first, nearest).

        Args:
            ids: Integer array or tensor ``(H, W)`` or ``(B, H, W)`` of `label_space` ids.
            label_space: The space of `ids` (default: the protocol's own).

        Returns:
            uint8 ``(H, W, 3)`` or ``(B, H, W, 3)``, exact palette colours.
        """
        protocol_ids = self.to_protocol_ids(ids, label_space or self.label_space)
        return self.color_table()[protocol_ids]


PALETTE_PROTOCOLS: dict[str, PaletteProtocol] = {
    "ade20k": PaletteProtocol(
        "ade20k", "ade20k",
        "ADE20K Color150 (mmseg ade_palette), UniFormer/OneFormer ADE20K maps; 'other' and unmapped classes black",
    ),
    "coco-panoptic": PaletteProtocol(
        "coco-panoptic", "coco-panoptic",
        "detectron2 COCO-panoptic 133 colours (OneFormer COCO maps); unlabeled and unmapped classes black",
    ),
}


def get_palette_protocol(name: str | PaletteProtocol) -> PaletteProtocol:
    """A protocol by name (``"ade20k"``, ``"coco-panoptic"``; label-space aliases such as ``"ade"`` work too).

    Raises:
        ValueError: an unknown name (the message lists the protocols).
    """
    if isinstance(name, PaletteProtocol):
        return name
    key = str(name).strip().lower()
    if key not in PALETTE_PROTOCOLS:
        try:
            key = get_label_space(key).name
        except ValueError:
            pass
    if key not in PALETTE_PROTOCOLS:
        raise ValueError(f"unknown palette protocol {name!r}; segmentation ControlNets read one of "
                         f"{sorted(PALETTE_PROTOCOLS)}")
    return PALETTE_PROTOCOLS[key]
