"""Class-name mappings between label spaces: Cityscapes -> ADE20K-150, COCO-Stuff-182 -> ADE20K-150 and
COCO-Stuff-182 -> COCO-panoptic-133 (plus identities).

A mapping is a complete table ``{source class name: target class name or None}``: every class of the source space is
listed, so no class reaches another class by accident. ``None`` means "no counterpart in the target space"; such
classes (and the source's ignore value) go to the mapping's stated `LabelSpaceMapping.unmapped_to`:

- into ADE20K: class 0 ``"other"`` (ADE20K's own "not one of the 150 classes", black in the Color150 palette);
- into COCO-panoptic-133: its ignore value 255 (COCO panoptic has no background class; black when drawn).

Where the target is coarser, the table names the broader class (e.g. Cityscapes "rider" -> ADE20K "person", COCO-Stuff
"wall-brick" -> ADE20K "wall"), and the row is in the table for everyone to read. Spaces with no mapping (e.g.
CelebAMask-HQ, facades: faces and facades have no counterpart in scene label spaces) raise a `ValueError`.

    >>> import numpy as np
    >>> map_label_space(np.array([[7, 24], [0, 26]]), "cityscapes", "ade20k")   # road, person / unlabeled, car
    array([[ 7, 13],
           [ 0, 21]])

Importing this module registers the ``"coco-panoptic"`` label space (detectron2's COCO-panoptic 133 classes and
colours, the second palette of ControlNet v1.1 seg) with `labelsynth.label_spaces`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .label_spaces import (
    COCO_STUFF_UNUSED_IDS,
    LabelSpace,
    _remap,
    _to_numpy_ids,
    get_label_space,
    register_label_space,
)

__all__ = [
    "ADE20K_REDUCED",
    "COCO_PANOPTIC_133",
    "COCO_STUFF_171",
    "LabelSpaceMapping",
    "get_label_space_mapping",
    "list_label_space_mappings",
    "map_label_space",
    "register_label_space_mapping",
]

# ====================================================================== COCO-panoptic-133
# detectron2 `builtin_meta.COCO_CATEGORIES` (= panopticapi panoptic_coco_categories.json): 80 things then 53 stuff
# classes, in this order; index k here is detectron2's contiguous id k. Colours are the ones its Visualizer draws.
_COCO_PANOPTIC = (
    ("person", (220, 20, 60)), ("bicycle", (119, 11, 32)), ("car", (0, 0, 142)), ("motorcycle", (0, 0, 230)),
    ("airplane", (106, 0, 228)), ("bus", (0, 60, 100)), ("train", (0, 80, 100)), ("truck", (0, 0, 70)),
    ("boat", (0, 0, 192)), ("traffic light", (250, 170, 30)), ("fire hydrant", (100, 170, 30)),
    ("stop sign", (220, 220, 0)), ("parking meter", (175, 116, 175)), ("bench", (250, 0, 30)),
    ("bird", (165, 42, 42)), ("cat", (255, 77, 255)), ("dog", (0, 226, 252)), ("horse", (182, 182, 255)),
    ("sheep", (0, 82, 0)), ("cow", (120, 166, 157)), ("elephant", (110, 76, 0)), ("bear", (174, 57, 255)),
    ("zebra", (199, 100, 0)), ("giraffe", (72, 0, 118)), ("backpack", (255, 179, 240)), ("umbrella", (0, 125, 92)),
    ("handbag", (209, 0, 151)), ("tie", (188, 208, 182)), ("suitcase", (0, 220, 176)), ("frisbee", (255, 99, 164)),
    ("skis", (92, 0, 73)), ("snowboard", (133, 129, 255)), ("sports ball", (78, 180, 255)), ("kite", (0, 228, 0)),
    ("baseball bat", (174, 255, 243)), ("baseball glove", (45, 89, 255)), ("skateboard", (134, 134, 103)),
    ("surfboard", (145, 148, 174)), ("tennis racket", (255, 208, 186)), ("bottle", (197, 226, 255)),
    ("wine glass", (171, 134, 1)), ("cup", (109, 63, 54)), ("fork", (207, 138, 255)), ("knife", (151, 0, 95)),
    ("spoon", (9, 80, 61)), ("bowl", (84, 105, 51)), ("banana", (74, 65, 105)), ("apple", (166, 196, 102)),
    ("sandwich", (208, 195, 210)), ("orange", (255, 109, 65)), ("broccoli", (0, 143, 149)), ("carrot", (179, 0, 194)),
    ("hot dog", (209, 99, 106)), ("pizza", (5, 121, 0)), ("donut", (227, 255, 205)), ("cake", (147, 186, 208)),
    ("chair", (153, 69, 1)), ("couch", (3, 95, 161)), ("potted plant", (163, 255, 0)), ("bed", (119, 0, 170)),
    ("dining table", (0, 182, 199)), ("toilet", (0, 165, 120)), ("tv", (183, 130, 88)), ("laptop", (95, 32, 0)),
    ("mouse", (130, 114, 135)), ("remote", (110, 129, 133)), ("keyboard", (166, 74, 118)),
    ("cell phone", (219, 142, 185)), ("microwave", (79, 210, 114)), ("oven", (178, 90, 62)),
    ("toaster", (65, 70, 15)), ("sink", (127, 167, 115)), ("refrigerator", (59, 105, 106)), ("book", (142, 108, 45)),
    ("clock", (196, 172, 0)), ("vase", (95, 54, 80)), ("scissors", (128, 76, 255)), ("teddy bear", (201, 57, 1)),
    ("hair drier", (246, 0, 122)), ("toothbrush", (191, 162, 208)),
    ("banner", (255, 255, 128)), ("blanket", (147, 211, 203)), ("bridge", (150, 100, 100)),
    ("cardboard", (168, 171, 172)), ("counter", (146, 112, 198)), ("curtain", (210, 170, 100)),
    ("door-stuff", (92, 136, 89)), ("floor-wood", (218, 88, 184)), ("flower", (241, 129, 0)), ("fruit", (217, 17, 255)),
    ("gravel", (124, 74, 181)), ("house", (70, 70, 70)), ("light", (255, 228, 255)), ("mirror-stuff", (154, 208, 0)),
    ("net", (193, 0, 92)), ("pillow", (76, 91, 113)), ("platform", (255, 180, 195)), ("playingfield", (106, 154, 176)),
    ("railroad", (230, 150, 140)), ("river", (60, 143, 255)), ("road", (128, 64, 128)), ("roof", (92, 82, 55)),
    ("sand", (254, 212, 124)), ("sea", (73, 77, 174)), ("shelf", (255, 160, 98)), ("snow", (255, 255, 255)),
    ("stairs", (104, 84, 109)), ("tent", (169, 164, 131)), ("towel", (225, 199, 255)), ("wall-brick", (137, 54, 74)),
    ("wall-stone", (135, 158, 223)), ("wall-tile", (7, 246, 231)), ("wall-wood", (107, 255, 200)),
    ("water-other", (58, 41, 149)), ("window-blind", (183, 121, 142)), ("window-other", (255, 73, 97)),
    ("tree-merged", (107, 142, 35)), ("fence-merged", (190, 153, 153)), ("ceiling-merged", (146, 139, 141)),
    ("sky-other-merged", (70, 130, 180)), ("cabinet-merged", (134, 199, 156)), ("table-merged", (209, 226, 140)),
    ("floor-other-merged", (96, 36, 108)), ("pavement-merged", (96, 96, 96)), ("mountain-merged", (64, 170, 64)),
    ("grass-merged", (152, 251, 152)), ("dirt-merged", (208, 229, 228)), ("paper-merged", (206, 186, 171)),
    ("food-other-merged", (152, 161, 64)), ("building-other-merged", (116, 112, 0)), ("rock-merged", (0, 114, 143)),
    ("wall-other-merged", (102, 102, 156)), ("rug-merged", (250, 141, 255)),
)  # fmt: skip

#: detectron2's COCO-panoptic label space: 133 contiguous ids (0..79 things, 80..132 stuff), 255 = unlabeled (black).
COCO_PANOPTIC_133 = LabelSpace(
    name="coco-panoptic",
    names=tuple(name for name, _ in _COCO_PANOPTIC),
    palette=np.asarray([color for _, color in _COCO_PANOPTIC]),
    ignore_index=255,
    ignore_color=(0, 0, 0),
    description=(
        "COCO panoptic 133 categories in detectron2's contiguous order (0 person .. 79 toothbrush are things, "
        "80 banner .. 132 rug-merged are stuff), 255 = unlabeled. Colours: detectron2 COCO_CATEGORIES, the palette "
        "OneFormer's COCO maps (ControlNet v1.1 seg, 'Seg_OFCOCO') are drawn with; no two classes share a colour."
    ),
)
register_label_space(COCO_PANOPTIC_133, aliases=("coco-panoptic-133", "coco-133", "coco-panoptic133"))


# ====================================================================== the tables
# Cityscapes (labelIds names; the trainId space uses a subset of them) -> ADE20K-150 names.
_CITYSCAPES_TO_ADE20K: dict[str, str | None] = {
    "unlabeled": None, "ego vehicle": None, "rectification border": None, "out of roi": None, "static": None,
    "dynamic": None, "ground": "earth", "road": "road", "sidewalk": "sidewalk",
    "parking": "road",  # paved, drivable: ADE20K has no parking class
    "rail track": None, "building": "building", "wall": "wall", "fence": "fence", "guard rail": "railing",
    "bridge": "bridge", "tunnel": None, "pole": "pole", "polegroup": "pole", "traffic light": "traffic light",
    "traffic sign": "signboard", "vegetation": "tree", "terrain": "grass", "sky": "sky", "person": "person",
    "rider": "person", "car": "car", "truck": "truck", "bus": "bus", "caravan": "van", "trailer": None,
    "train": None,  # ADE20K-150 has no train
    "motorcycle": "minibike", "bicycle": "bicycle",
    "license plate": "car",  # part of the car; gtFine labels plates as car
}  # fmt: skip

# COCO-Stuff-182 -> ADE20K-150 names. Thing classes: by object; animals -> "animal", dishes -> "food".
_COCO_STUFF_TO_ADE20K: dict[str, str | None] = {
    "person": "person", "bicycle": "bicycle", "car": "car", "motorcycle": "minibike", "airplane": "airplane",
    "bus": "bus", "train": None, "truck": "truck", "boat": "boat", "traffic light": "traffic light",
    "fire hydrant": None, "street sign": "signboard", "stop sign": "signboard", "parking meter": None,
    "bench": "bench", "bird": "animal", "cat": "animal", "dog": "animal", "horse": "animal", "sheep": "animal",
    "cow": "animal", "elephant": "animal", "bear": "animal", "zebra": "animal", "giraffe": "animal",
    "hat": "apparel", "backpack": "bag", "umbrella": None, "shoe": "apparel", "eye glasses": None,
    "handbag": "bag", "tie": "apparel", "suitcase": "bag", "frisbee": "plaything", "skis": None, "snowboard": None,
    "sports ball": "ball", "kite": None, "baseball bat": None, "baseball glove": None, "skateboard": None,
    "surfboard": None, "tennis racket": None, "bottle": "bottle", "plate": "plate", "wine glass": "glass",
    "cup": None, "fork": None, "knife": None, "spoon": None, "bowl": None, "banana": "food", "apple": "food",
    "sandwich": "food", "orange": "food", "broccoli": "food", "carrot": "food", "hot dog": "food", "pizza": "food",
    "donut": "food", "cake": "food", "chair": "chair", "couch": "sofa", "potted plant": "plant", "bed": "bed",
    "mirror": "mirror", "dining table": "table", "window": "windowpane", "desk": "desk", "toilet": "toilet",
    "door": "door", "tv": "television receiver", "laptop": "computer", "mouse": None, "remote": None,
    "keyboard": None, "cell phone": None, "microwave": "microwave", "oven": "oven", "toaster": None, "sink": "sink",
    "refrigerator": "refrigerator", "blender": None, "book": "book", "clock": "clock", "vase": "vase",
    "scissors": None, "teddy bear": "plaything", "hair drier": None, "toothbrush": None, "hair brush": None,
    "banner": "poster", "blanket": "blanket", "branch": "tree", "bridge": "bridge", "building-other": "building",
    "bush": "plant", "cabinet": "cabinet", "cage": None, "cardboard": "box", "carpet": "rug",
    "ceiling-other": "ceiling", "ceiling-tile": "ceiling", "cloth": None, "clothes": "apparel", "clouds": "sky",
    "counter": "counter", "cupboard": "cabinet", "curtain": "curtain", "desk-stuff": "desk", "dirt": "earth",
    "door-stuff": "door", "fence": "fence", "floor-marble": "floor", "floor-other": "floor", "floor-stone": "floor",
    "floor-tile": "floor", "floor-wood": "floor", "flower": "flower", "fog": None, "food-other": "food",
    "fruit": "food", "furniture-other": None, "grass": "grass", "gravel": "earth", "ground-other": "earth",
    "hill": "hill", "house": "house", "leaves": "tree", "light": "light", "mat": "rug", "metal": None,
    "mirror-stuff": "mirror", "moss": "plant", "mountain": "mountain", "mud": "earth", "napkin": None, "net": None,
    "paper": None, "pavement": "sidewalk", "pillow": "pillow", "plant-other": "plant", "plastic": None,
    "platform": None, "playingfield": "field", "railing": "railing", "railroad": None, "river": "river",
    "road": "road", "rock": "rock", "roof": "building", "rug": "rug", "salad": "food", "sand": "sand", "sea": "sea",
    "shelf": "shelf", "sky-other": "sky", "skyscraper": "skyscraper", "snow": None, "solid-other": None,
    "stairs": "stairs", "stone": "rock", "straw": None, "structural-other": None, "table": "table", "tent": "tent",
    "textile-other": None, "towel": "towel", "tree": "tree", "vegetable": "food", "wall-brick": "wall",
    "wall-concrete": "wall", "wall-other": "wall", "wall-panel": "wall", "wall-stone": "wall", "wall-tile": "wall",
    "wall-wood": "wall", "water-other": "water", "waterdrops": None, "window-blind": "blind",
    "window-other": "windowpane", "wood": None,
}  # fmt: skip

# COCO-Stuff-182 -> COCO-panoptic-133: things by name (the 11 removed thing ids never occur; the four with a stuff
# twin go to it), stuff by COCO panoptic's merges (e.g. tree-merged = tree, branch, bush, leaves).
_PANOPTIC_MERGES = {
    "tree-merged": ("tree", "branch", "bush", "leaves"), "fence-merged": ("fence", "cage", "railing"),
    "ceiling-merged": ("ceiling-other", "ceiling-tile"), "sky-other-merged": ("sky-other", "clouds", "fog"),
    "cabinet-merged": ("cabinet", "cupboard"), "table-merged": ("table", "desk-stuff"),
    "floor-other-merged": ("floor-other", "floor-marble", "floor-tile"),
    "pavement-merged": ("pavement", "floor-stone"), "mountain-merged": ("mountain", "hill"),
    "grass-merged": ("grass", "moss", "straw"), "dirt-merged": ("dirt", "mud"), "paper-merged": ("paper", "napkin"),
    "food-other-merged": ("food-other", "salad", "vegetable"),
    "building-other-merged": ("building-other", "skyscraper"), "rock-merged": ("rock", "stone"),
    "wall-other-merged": ("wall-other", "wall-concrete", "wall-panel"), "rug-merged": ("rug", "mat", "carpet"),
}  # fmt: skip
_COCO_STUFF_TO_PANOPTIC_EXTRA = {  # removed COCO thing ids whose stuff twin exists
    "mirror": "mirror-stuff", "window": "window-other", "desk": "table-merged", "door": "door-stuff",
}


def _coco_stuff_to_panoptic() -> dict[str, str | None]:
    source = get_label_space("coco-stuff").names
    panoptic = set(COCO_PANOPTIC_133.names)
    merged = {member: target for target, members in _PANOPTIC_MERGES.items() for member in members}
    return {
        name: (merged.get(name) or _COCO_STUFF_TO_PANOPTIC_EXTRA.get(name) or (name if name in panoptic else None))
        for name in source
    }


# ====================================================================== API
@dataclass(frozen=True, eq=False)
class LabelSpaceMapping:
    """A complete class-name table from one label space to another.

    Args:
        source, target: The two label spaces (names, dicts or `LabelSpace`\\ s).
        table: ``{source class name: target class name or None}`` for every class of `source`; ``None`` = no
            counterpart (goes to `unmapped_to`).
        unmapped_to: Target class name that classes without a counterpart and the source's ignore value become,
            or ``None`` for the target's ``ignore_index`` (which then must exist).
        notes: Free text shown in the docs (why the choices were made).

    Raises:
        ValueError: the table misses or invents source classes, names unknown target classes, or `unmapped_to`
            has nowhere to go.
    """

    source: LabelSpace
    target: LabelSpace
    table: Mapping[str, str | None]
    unmapped_to: str | None = None
    notes: str = ""

    def __post_init__(self) -> None:
        source, target = get_label_space(self.source), get_label_space(self.target)
        object.__setattr__(self, "source", source)
        object.__setattr__(self, "target", target)
        table = dict(self.table)
        missing = [n for n in source.names if n not in table]
        extra = sorted(set(table) - set(source.names))
        if missing or extra:
            raise ValueError(
                f"mapping {source.name} -> {target.name} must list every source class exactly (None for 'no "
                f"counterpart'): missing {missing[:8]}{'...' if len(missing) > 8 else ''}, unknown {extra[:8]}"
            )
        unknown = sorted({t for t in table.values() if t is not None and t not in target.label2id})
        if unknown:
            raise ValueError(f"mapping {source.name} -> {target.name} names classes {unknown} that {target.name!r} "
                             "does not have")
        if self.unmapped_to is None and target.ignore_index is None:
            raise ValueError(f"mapping {source.name} -> {target.name}: {target.name!r} has no ignore value, so "
                             "unmapped_to must name one of its classes")
        if self.unmapped_to is not None and self.unmapped_to not in target.label2id:
            raise ValueError(f"mapping {source.name} -> {target.name}: unmapped_to {self.unmapped_to!r} is not a "
                             f"class of {target.name!r}")
        object.__setattr__(self, "table", table)

    @property
    def unmapped_id(self) -> int:
        """Target id of classes without a counterpart (and of the source's ignore value)."""
        if self.unmapped_to is None:
            return int(self.target.ignore_index)
        return self.target.label2id[self.unmapped_to]

    @property
    def unmapped(self) -> tuple[str, ...]:
        """Source classes without a counterpart, in id order."""
        return tuple(name for name in self.source.names if self.table[name] is None)

    def lut(self) -> np.ndarray:
        """int64 lookup table: ``lut[source id]`` is the target id; it covers ``0..max(num_classes-1, ignore)``."""
        size = self.source.num_classes
        if self.source.ignore_index is not None:
            size = max(size, self.source.ignore_index + 1)
        lut = np.full(size, self.unmapped_id, dtype=np.int64)
        for source_id, name in enumerate(self.source.names):
            target_name = self.table[name]
            if target_name is not None:
                lut[source_id] = self.target.label2id[target_name]
        return lut

    def __call__(self, ids: Any) -> Any:
        """Map a label map (numpy array or torch tensor of source ids, any shape) to target ids, same container."""
        self.source.validate(ids)
        return _remap(ids, self.lut())

    def rows(self) -> list[tuple[int, str, int, str]]:
        """``(source id, source name, target id, target name)`` per source class, for docs and reports."""
        lut, names = self.lut(), self.target.names
        return [(i, n, int(lut[i]), names[lut[i]] if lut[i] < len(names) else "(unlabeled)")
                for i, n in enumerate(self.source.names)]


_MAPPINGS: dict[tuple[str, str], LabelSpaceMapping] = {}


def register_label_space_mapping(mapping: LabelSpaceMapping, *, overwrite: bool = False) -> None:
    """Make `mapping` available to `get_label_space_mapping` / `map_label_space` for its (source, target) pair.

    Raises:
        ValueError: a mapping for that pair exists and `overwrite` is False.
    """
    key = (mapping.source.name, mapping.target.name)
    if key in _MAPPINGS and _MAPPINGS[key] is not mapping and not overwrite:
        raise ValueError(f"a mapping {key[0]} -> {key[1]} is already registered; pass overwrite=True to replace it")
    _MAPPINGS[key] = mapping


def list_label_space_mappings() -> list[tuple[str, str]]:
    """``(source, target)`` label-space names of every registered mapping (identities not listed), sorted."""
    return sorted(_MAPPINGS)


def get_label_space_mapping(source: str | LabelSpace, target: str | LabelSpace) -> LabelSpaceMapping:
    """The mapping from `source` to `target` (the identity when they are the same space).

    Raises:
        ValueError: no mapping between the two spaces (the message lists the targets `source` can reach).
    """
    source, target = get_label_space(source), get_label_space(target)
    if source == target:
        return LabelSpaceMapping(source, target, {n: n for n in source.names},
                                 unmapped_to=None if target.ignore_index is not None else target.names[0])
    found = _MAPPINGS.get((source.name, target.name))
    if found is None:
        reachable = sorted(t for s, t in _MAPPINGS if s == source.name)
        hint = (f"it maps to: {', '.join(reachable)}" if reachable else
                f"labelsynth has no mapping from {source.name!r} to any other space")
        raise ValueError(
            f"no class mapping from label space {source.name!r} to {target.name!r} ({hint}). Convert the label map "
            f"to a space the model reads, or register your own with register_label_space_mapping(LabelSpaceMapping("
            f"{source.name!r}, {target.name!r}, table={{...}}))"
        )
    return found


def map_label_space(ids: Any, source: str | LabelSpace, target: str | LabelSpace) -> Any:
    """Convert a label map from `source` ids to `target` ids by class name (see the module docstring).

    Args:
        ids: Integer numpy array or torch tensor of `source` ids (ignore value allowed), any shape, e.g. ``(H, W)``
            or ``(B, H, W)``.
        source, target: Label-space names (or `LabelSpace`\\ s).

    Returns:
        Same container type and shape, int64 ids of `target` (its ignore value where `unmapped_to` is None).

    Raises:
        ValueError: no mapping between the spaces, or ids outside `source`'s range.
    """
    mapping = get_label_space_mapping(source, target)
    if not hasattr(ids, "device"):
        ids = _to_numpy_ids(ids, "label map")
    return mapping(ids)


for _mapping in (
    LabelSpaceMapping("cityscapes", "ade20k", _CITYSCAPES_TO_ADE20K, unmapped_to="other",
                      notes="vegetation -> tree, terrain -> grass, rider -> person, parking -> road, caravan -> van, "
                            "license plate -> car; void classes, rail track, tunnel, trailer, train -> other"),
    LabelSpaceMapping("cityscapes-trainid", "ade20k",
                      {n: _CITYSCAPES_TO_ADE20K[n] for n in get_label_space("cityscapes-trainid").names},
                      unmapped_to="other", notes="as cityscapes -> ade20k; trainId 255 -> other"),
    LabelSpaceMapping("coco-stuff", "ade20k", _COCO_STUFF_TO_ADE20K, unmapped_to="other",
                      notes="animals -> animal, dishes -> food, wall-* -> wall, floor-* -> floor; 255 -> other"),
    LabelSpaceMapping("coco-stuff", "coco-panoptic", _coco_stuff_to_panoptic(), unmapped_to=None,
                      notes="things by name, stuff by COCO panoptic's merges; classes dropped from panoptic and "
                            "255 -> 255 (unlabeled, black)"),
):
    register_label_space_mapping(_mapping)


# ====================================================================== segmenter label spaces
# The spaces transformers segmenters predict, and the tables between them and the synthesis spaces (see
# `labelsynth.segmentation`). Tables are by class name, so each row reads e.g. "ade20k-reduced 'wall' -> ade20k 'wall'".
_ADE20K = get_label_space("ade20k")
_COCO_STUFF = get_label_space("coco-stuff")
_COCO_STUFF_UNUSED = set(COCO_STUFF_UNUSED_IDS)

#: ADE20K as Hugging Face / mmsegmentation segmenters predict it ("reduce_labels"): 150 classes, id = raw id - 1.
ADE20K_REDUCED = LabelSpace(
    name="ade20k-reduced",
    names=_ADE20K.names[1:],
    palette=np.asarray(_ADE20K.palette)[1:],
    ignore_index=255,
    description=(
        "ADE20K / SceneParse150 as transformers and mmsegmentation segmenters predict it (reduce_labels): ids "
        "0 wall .. 149 flag = ADE20K raw id - 1; raw 0 'other' becomes 255 (ignored)."
    ),
)
register_label_space(ADE20K_REDUCED, aliases=("ade20k-reduce-labels", "ade20k-segmenter"))

#: COCO-Stuff with the 11 removed thing classes dropped: 171 contiguous ids (MaskFormer's COCO-Stuff checkpoints).
COCO_STUFF_171 = LabelSpace(
    name="coco-stuff-171",
    names=tuple(n for i, n in enumerate(_COCO_STUFF.names) if i not in _COCO_STUFF_UNUSED),
    palette=np.asarray([c for i, c in enumerate(np.asarray(_COCO_STUFF.palette)) if i not in _COCO_STUFF_UNUSED]),
    ignore_index=255,
    description=(
        "COCO-Stuff-164k without the 11 thing ids COCO removed: 171 contiguous ids (0 person .. 79 toothbrush "
        "things, 80 banner .. 170 wood stuff) as MaskFormer's COCO-Stuff segmenters predict them, 255 unlabeled. "
        "Converts to the 182-id 'coco-stuff' space by name."
    ),
)
register_label_space(COCO_STUFF_171, aliases=("cocostuff-171", "coco-stuff171"))

_CITYSCAPES_TRAIN = get_label_space("cityscapes-trainid")
for _mapping in (
    LabelSpaceMapping("ade20k-reduced", "ade20k", {n: n for n in ADE20K_REDUCED.names}, unmapped_to="other",
                      notes="raw id = segmenter id + 1; 255 -> other"),
    LabelSpaceMapping("ade20k", "ade20k-reduced", {"other": None, **{n: n for n in ADE20K_REDUCED.names}},
                      notes="segmenter id = raw id - 1; other -> 255 (ignored)"),
    LabelSpaceMapping("cityscapes-trainid", "cityscapes", {n: n for n in _CITYSCAPES_TRAIN.names},
                      unmapped_to="unlabeled", notes="trainId -> labelId by name; 255 -> unlabeled (0)"),
    LabelSpaceMapping("cityscapes", "cityscapes-trainid",
                      {n: n if n in _CITYSCAPES_TRAIN.label2id else None for n in get_label_space("cityscapes").names},
                      notes="labelId -> trainId (cityscapesScripts); void and ignored classes -> 255"),
    LabelSpaceMapping("coco-stuff-171", "coco-stuff", {n: n for n in COCO_STUFF_171.names},
                      notes="171 contiguous -> 182 ids by name; 255 stays unlabeled"),
    LabelSpaceMapping("coco-stuff", "coco-stuff-171",
                      {n: n if n in COCO_STUFF_171.label2id else None for n in _COCO_STUFF.names},
                      notes="182 -> 171 contiguous; the 11 removed thing ids (never in the data) -> 255"),
):
    register_label_space_mapping(_mapping)
