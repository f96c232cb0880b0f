"""Example label maps for the demo, chosen by label space (never by model).

Cityscapes spaces use the street scenes that ship with labelsynth (`labelsynth.examples`, with instance maps).
Other spaces get simple scenes drawn from class *names*, so no dataset file is redistributed: a landscape (sky,
mountain, water, grass, trees) for scene spaces such as ADE20K and COCO-Stuff, a face for CelebAMask-HQ spaces, a
facade for CMP Facades. A space whose names match none of these has no drawn example (the canvas starts empty).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .. import examples as shipped
from ..label_spaces import LabelSpace

__all__ = ["DemoExample", "default_examples", "draw_example"]


@dataclass(frozen=True)
class DemoExample:
    """One example: a label-map file and, for models with instance edges, its instance-map file."""

    label: Path
    instance: Path | None = None


def _find(space: LabelSpace, *names: str) -> int | None:
    """Id of the first of `names` the label space has (exact, case-insensitive), else None."""
    lookup = {n.lower(): i for i, n in enumerate(space.names)}
    return next((lookup[n] for n in names if n in lookup), None)


def _landscape(space: LabelSpace, draw: ImageDraw.ImageDraw, h: int, w: int, variant: int) -> bool:
    sky, mountain = _find(space, "sky", "sky-other"), _find(space, "mountain", "hill")
    water, grass, tree = _find(space, "sea", "water", "water-other", "river"), _find(space, "grass"), _find(space, "tree")
    if None in (sky, grass):
        return False
    rng = np.random.default_rng(variant)
    draw.rectangle([0, 0, w, h], fill=sky)
    horizon = int(h * rng.uniform(0.45, 0.6))
    if mountain is not None:
        peaks = [(0, horizon)] + [(int(x), int(horizon - h * rng.uniform(0.1, 0.35)))
                                  for x in np.linspace(0, w, 5)[1:-1]] + [(w, horizon)]
        draw.polygon(peaks, fill=mountain)
    draw.rectangle([0, horizon, w, h], fill=grass)
    if water is not None and variant % 2 == 0:
        draw.polygon([(int(w * 0.3), horizon), (int(w * 0.7), horizon), (w, h), (0, h)], fill=water)
    if tree is not None:
        for _ in range(3):
            x, y, r = int(rng.uniform(0.05, 0.95) * w), int(rng.uniform(horizon, h * 0.85)), int(h * 0.08)
            draw.ellipse([x - r, y - 2 * r, x + r, y + r // 2], fill=tree)
    return True


def _face(space: LabelSpace, draw: ImageDraw.ImageDraw, h: int, w: int, variant: int) -> bool:
    ids = {n: _find(space, n) for n in ("background", "skin", "hair", "l_eye", "r_eye", "l_brow", "r_brow", "nose",
                                        "u_lip", "l_lip", "neck", "cloth")}
    if None in ids.values():
        return False
    cx, s = w / 2, min(h, w) / 256
    draw.rectangle([0, 0, w, h], fill=ids["background"])
    draw.rectangle([0, int(h * 0.85), w, h], fill=ids["cloth"])
    draw.rectangle([cx - 35 * s, h * 0.6, cx + 35 * s, h * 0.88], fill=ids["neck"])
    hair = 20 * s if variant % 2 == 0 else 6 * s
    draw.ellipse([cx - 75 * s - hair, 30 * s - hair, cx + 75 * s + hair, 200 * s], fill=ids["hair"])
    draw.ellipse([cx - 65 * s, 50 * s, cx + 65 * s, 210 * s], fill=ids["skin"])
    for side, eye, brow in ((-1, "l_eye", "l_brow"), (1, "r_eye", "r_brow")):
        ex = cx + side * 28 * s
        draw.ellipse([ex - 12 * s, 110 * s, ex + 12 * s, 122 * s], fill=ids[eye])
        draw.rectangle([ex - 15 * s, 95 * s, ex + 15 * s, 100 * s], fill=ids[brow])
    draw.polygon([(cx, 115 * s), (cx - 10 * s, 155 * s), (cx + 10 * s, 155 * s)], fill=ids["nose"])
    draw.rectangle([cx - 22 * s, 170 * s, cx + 22 * s, 176 * s], fill=ids["u_lip"])
    draw.rectangle([cx - 20 * s, 176 * s, cx + 20 * s, 184 * s], fill=ids["l_lip"])
    return True


def _facade(space: LabelSpace, draw: ImageDraw.ImageDraw, h: int, w: int, variant: int) -> bool:
    facade, window, door = _find(space, "facade"), _find(space, "window"), _find(space, "door")
    if None in (facade, window, door):
        return False
    draw.rectangle([0, 0, w, h], fill=facade)
    cols, rows = 3 + variant % 2, 4
    for r in range(rows - 1):
        for c in range(cols):
            x0, y0 = w * (c + 0.25) / cols, h * (r + 0.2) / rows
            draw.rectangle([x0, y0, x0 + w * 0.5 / cols, y0 + h * 0.5 / rows], fill=window)
    draw.rectangle([w * 0.42, h * 0.78, w * 0.58, h], fill=door)
    return True


def draw_example(space: LabelSpace, size: tuple[int, int], variant: int = 0) -> np.ndarray | None:
    """A simple label map drawn from the label space's class names, or None if its names fit no drawing.

    Args:
        space: The label space.
        size: ``(height, width)``.
        variant: Small layout variations.

    Returns:
        int64 ``(H, W)`` ids, or None.
    """
    h, w = size
    image = Image.new("I", (w, h), 0)
    draw = ImageDraw.Draw(image)
    for painter in (_landscape, _face, _facade):
        if painter(space, draw, h, w, variant):
            return np.asarray(image, dtype=np.int64)
    return None


def default_examples(space: LabelSpace, size: tuple[int, int], count: int = 2,
                     folder: str | Path | None = None) -> list[DemoExample]:
    """Example files for a label space: the shipped Cityscapes streets, or `draw_example` maps saved as PNGs.

    Args:
        space: The model's label space.
        size: ``(height, width)`` to draw at (the model's resolution).
        count: How many examples at most.
        folder: Where drawn PNGs are written (default: a folder under the system temp dir, keyed by space and size).
    """
    if space.names == shipped_space_names():
        return [DemoExample(*shipped.example_paths(k)) for k in range(min(count, 3))]
    key = hashlib.sha1(f"{space.name}|{space.names}|{size}".encode()).hexdigest()[:12]
    folder = Path(folder) if folder is not None else Path(tempfile.gettempdir()) / "labelsynth_demo_examples" / key
    out = []
    for variant in range(count):
        ids = draw_example(space, size, variant)
        if ids is None:
            break
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{space.name}_{variant}_label.png"
        # Written aside and renamed: demos in other processes share the folder and may be reading this file.
        partial = path.with_name(f".{path.name}.{os.getpid()}.part")
        Image.fromarray(ids.astype(np.uint16 if ids.max() > 255 else np.uint8)).save(partial, format="PNG")
        os.replace(partial, path)
        out.append(DemoExample(path))
    return out


def shipped_space_names() -> Sequence[str]:
    """Class names of the label space the shipped examples are drawn in (Cityscapes labelIds)."""
    from ..label_spaces import get_label_space

    return get_label_space("cityscapes").names
