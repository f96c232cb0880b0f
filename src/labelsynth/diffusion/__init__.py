"""Diffusion behind the "label-to-image" pipeline: segmentation ControlNets on Stable Diffusion through diffusers.

- `palettes`: the colour protocols the ControlNets read (ADE20K Color150, COCO-panoptic-133) and their rendering;
- `detect`: whether an id or folder is a diffusers ControlNet, its base model and palettes (JSON only, no diffusers);
- `pipeline_controlnet_seg`: `ControlNetSegPipeline` (needs the ``diffusion`` extra: ``pip install labelsynth[diffusion]``).

``labelsynth.pipeline("label-to-image", model=<ControlNet id or folder>)`` returns a `ControlNetSegPipeline`.
"""

from __future__ import annotations

from typing import Any

from .detect import KNOWN_CONTROLNETS, ControlNetSource, find_controlnet
from .palettes import PALETTE_PROTOCOLS, PaletteProtocol, get_palette_protocol

__all__ = ["KNOWN_CONTROLNETS", "PALETTE_PROTOCOLS", "ControlNetSegPipeline", "ControlNetSource", "PaletteProtocol",
           "find_controlnet", "get_palette_protocol"]


def __getattr__(name: str) -> Any:
    if name == "ControlNetSegPipeline":  # imports torch; diffusers itself only when a pipeline is loaded
        from .pipeline_controlnet_seg import ControlNetSegPipeline

        return ControlNetSegPipeline
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
