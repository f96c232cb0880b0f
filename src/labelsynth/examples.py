"""What ships with labelsynth for trying it out: example label maps drawn by labelsynth itself (no dataset files) and
the built-in demo model (`BUILTIN_MODEL`, a small SPADE trained on a few Cityscapes photos; see its model card).

`draw_street_scene(variant)` paints a Cityscapes-style street (labelIds) with instance ids for the cars and people,
deterministically from the variant number. `python -m labelsynth.examples <folder>` writes the PNGs that ship in
`labelsynth/assets/examples/`.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

# Cityscapes labelIds (see labelsynth.label_spaces, space "cityscapes").
ROAD, SIDEWALK, BUILDING, WALL, FENCE, POLE, TRAFFIC_SIGN, VEGETATION, TERRAIN, SKY, PERSON, CAR = (
    7, 8, 11, 12, 13, 17, 20, 21, 22, 23, 24, 26)
ASSETS = Path(__file__).parent / "assets" / "examples"
BUILTIN_MODEL = Path(__file__).parent / "assets" / "spade-cityscapes-tiny"


def draw_street_scene(variant: int = 0, size: tuple[int, int] = (256, 512)) -> tuple[np.ndarray, np.ndarray]:
    """A street seen from the driver's seat: road, sidewalks, buildings or trees on both sides, sky, cars.

    Args:
        variant: seed of the layout (building heights, trees, cars, people).
        size: (height, width) of the map.

    Returns:
        `(label_map, instance_map)`, both int64 `[H, W]`: Cityscapes labelIds, and instance ids in Cityscapes'
        convention (`labelId * 1000 + k` for cars and people, the labelId elsewhere).
    """
    rng = random.Random(variant)
    h, w = size
    label = Image.new("I", (w, h), SKY)
    instance = Image.new("I", (w, h), SKY)
    draw_label, draw_instance = ImageDraw.Draw(label), ImageDraw.Draw(instance)

    def fill(shape: str, xy: list, value: int, instance_value: int | None = None) -> None:
        getattr(draw_label, shape)(xy, fill=value)
        getattr(draw_instance, shape)(xy, fill=value if instance_value is None else instance_value)

    horizon = int(h * rng.uniform(0.42, 0.52))
    vanish_x = int(w * rng.uniform(0.42, 0.58))
    # Facades (or trees) on both sides, receding to the vanishing point.
    for side in (-1, 1):
        edge = 0 if side < 0 else w
        x = edge
        while (x - vanish_x) * side > w * 0.06:
            width = int(w * rng.uniform(0.08, 0.18))
            top = int(horizon - h * rng.uniform(0.15, 0.42) * abs(x - vanish_x) / (w / 2))
            kind = BUILDING if rng.random() < 0.7 else VEGETATION
            near, far = x, x - side * width
            fill("polygon", [(near, max(0, top)), (far, max(0, top + 4)), (far, horizon), (near, horizon + 4)], kind)
            x = far
    fill("rectangle", [0, horizon, w, h], TERRAIN)
    # Sidewalks and road as trapezoids from the vanishing point.
    fill("polygon", [(vanish_x - 6, horizon), (vanish_x + 6, horizon), (w, int(h * 0.78)), (w, h), (0, h),
                     (0, int(h * 0.78))], SIDEWALK)
    fill("polygon", [(vanish_x - 4, horizon), (vanish_x + 4, horizon), (int(w * 0.92), h), (int(w * 0.08), h)], ROAD)
    # Poles and signs along the sidewalks.
    for side in (-1, 1):
        px = vanish_x + side * int(w * rng.uniform(0.3, 0.42))
        top = int(horizon - h * 0.3)
        fill("rectangle", [px, top, px + 3, int(h * 0.8)], POLE)
        fill("rectangle", [px - 8, top, px + 11, top + 12], TRAFFIC_SIGN)
    # Cars on the road, the nearer ones bigger; people on the sidewalks.
    car_count = rng.randint(2, 4)
    for k in range(car_count):
        depth = rng.uniform(0.15, 0.85)
        y = int(horizon + (h - horizon) * depth)
        car_w = int(w * (0.06 + 0.22 * depth))
        lane = rng.choice([-1, 1])
        cx = int(vanish_x + lane * (w * 0.18) * depth)
        box = [cx - car_w // 2, y - int(car_w * 0.55), cx + car_w // 2, y]
        fill("rounded_rectangle", box, CAR, CAR * 1000 + k)
    for k in range(rng.randint(1, 3)):
        depth = rng.uniform(0.3, 0.9)
        y = int(horizon + (h - horizon) * depth)
        side = rng.choice([-1, 1])
        px = int(vanish_x + side * w * (0.3 + 0.15 * depth))
        person_h = int(h * (0.08 + 0.22 * depth))
        fill("ellipse", [px - person_h // 8, y - person_h, px + person_h // 8, y], PERSON, PERSON * 1000 + k)
    return np.asarray(label, dtype=np.int64), np.asarray(instance, dtype=np.int64)


def example_paths(variant: int = 0) -> tuple[Path, Path]:
    """Paths of the shipped example `(label PNG, instance PNG)`."""
    return ASSETS / f"street_{variant}_label.png", ASSETS / f"street_{variant}_instance.png"


def write_examples(folder: str | Path = ASSETS, variants: int = 3, size: tuple[int, int] = (256, 512)) -> list[Path]:
    """Write `street_<k>_label.png` (8-bit ids) and `street_<k>_instance.png` (16-bit ids) for k < variants."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for variant in range(variants):
        label, instance = draw_street_scene(variant, size)
        label_path, instance_path = folder / f"street_{variant}_label.png", folder / f"street_{variant}_instance.png"
        Image.fromarray(label.astype(np.uint8)).save(label_path)
        Image.fromarray(instance.astype(np.uint16)).save(instance_path)
        written += [label_path, instance_path]
    return written


if __name__ == "__main__":
    print("\n".join(str(p) for p in write_examples(sys.argv[1] if len(sys.argv) > 1 else ASSETS)))
