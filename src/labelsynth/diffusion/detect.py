"""Is a model id or folder a diffusers segmentation ControlNet, and which base model and palette go with it?

Read from small JSON files only (no diffusers or torch import), so `labelsynth.pipeline` can route on it:

- a folder (or cached Hub repo) whose ``config.json`` has ``"_class_name": "ControlNetModel"``: a bare ControlNet;
  the base Stable Diffusion comes from `KNOWN_CONTROLNETS`, from ``labelsynth_controlnet.json`` next to it (written by
  ``training/train_controlnet_seg.py``), or from the caller's ``base_model=``;
- a folder with a ``model_index.json`` that lists a ``controlnet``: a whole ControlNet pipeline (base included).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["KNOWN_CONTROLNETS", "METADATA_FILE", "ControlNetSource", "KnownControlNet", "find_controlnet"]

#: Written next to a ControlNet by labelsynth's fine-tuning script: ``{"palette": ..., "base_model": ...}``.
METADATA_FILE = "labelsynth_controlnet.json"
SD15 = "stable-diffusion-v1-5/stable-diffusion-v1-5"


@dataclass(frozen=True)
class KnownControlNet:
    """A published segmentation ControlNet: the palettes it reads (first = default), its base model and licence."""

    palettes: tuple[str, ...]
    base_model: str
    license: str
    notes: str = ""


KNOWN_CONTROLNETS: dict[str, KnownControlNet] = {
    "lllyasviel/sd-controlnet-seg": KnownControlNet(
        ("ade20k",), SD15, "openrail",
        "ControlNet 1.0 seg: UniFormer ADE20K maps, flat fills; demo defaults 20 DDIM steps, scale 9.0",
    ),
    "lllyasviel/control_v11p_sd15_seg": KnownControlNet(
        ("ade20k", "coco-panoptic"), SD15, "openrail",
        "ControlNet 1.1 seg: trained on ADE20K (OneFormer/UniFormer) and COCO (OneFormer, COCO-panoptic colours) maps",
    ),
}


@dataclass(frozen=True)
class ControlNetSource:
    """Where a segmentation ControlNet is and what goes with it.

    Attributes:
        location: Folder or Hub id to load from.
        kind: ``"controlnet"`` (a bare `ControlNetModel`) or ``"pipeline"`` (a full ControlNet pipeline folder).
        base_model: Stable Diffusion folder/id for a bare ControlNet (None: unknown, the caller must give one).
        palettes: Palette protocols it reads, the default first.
        name: What the user typed (for messages).
    """

    location: str
    kind: str
    base_model: str | None
    palettes: tuple[str, ...]
    name: str


def _read_json(location: str, filename: str) -> dict[str, Any] | None:
    """A JSON file of a folder or Hub repo (cache first; downloads only when online), or None."""
    path = Path(location).expanduser()
    if path.is_dir():
        file = path / filename
    else:
        try:
            from huggingface_hub import hf_hub_download, is_offline_mode, try_to_load_from_cache
        except ImportError:  # pragma: no cover - huggingface_hub is a dependency
            return None
        try:
            cached = try_to_load_from_cache(location, filename)
        except ValueError:  # not a valid repo id (e.g. a path that does not exist): not a ControlNet
            return None
        if isinstance(cached, str):
            file = Path(cached)
        elif is_offline_mode():
            return None
        else:
            try:
                file = Path(hf_hub_download(location, filename))
            except Exception:  # noqa: BLE001 - not a repo, no such file, no network: not a ControlNet we can see
                return None
    if not file.is_file():
        return None
    try:
        data = json.loads(file.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def find_controlnet(model: str | os.PathLike) -> ControlNetSource | None:
    """`model` as a `ControlNetSource` when it is a diffusers ControlNet (id or folder), else None.

    labelsynth's registered (GAN) ids are never ControlNets; Hub ids are looked up in the cache, and on the Hub only
    when online.
    """
    from ..hub.resolve import is_registered_id, resolve_model

    name = os.fspath(model)
    if is_registered_id(name):
        return None
    location = resolve_model(name)
    known = KNOWN_CONTROLNETS.get(name)
    metadata = _read_json(location, METADATA_FILE) or {}
    meta_palette = metadata.get("palette")
    config = _read_json(location, "config.json") if known is None else {"_class_name": "ControlNetModel"}
    if config is not None and config.get("_class_name") == "ControlNetModel":
        palettes = (meta_palette,) if meta_palette else (known.palettes if known else ("ade20k",))
        base = metadata.get("base_model") or (known.base_model if known else None)
        return ControlNetSource(location, "controlnet", base, palettes, name)
    index = _read_json(location, "model_index.json")
    if index is not None and "controlnet" in index:
        palettes = (meta_palette,) if meta_palette else ("ade20k",)
        return ControlNetSource(location, "pipeline", None, palettes, name)
    return None
