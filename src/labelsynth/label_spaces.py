"""Label spaces: the class ids, names and colours a label map is written in.

A *label space* says what the integers of a label map mean: ``names[k]`` is the name of raw id ``k``, ``palette[k]``
the colour used to draw it, and ``ignore_index`` an optional extra value meaning "unlabeled" (255 for COCO-Stuff).
Ids are the dataset's **raw ids as the original papers fed them** to their generators (ADE20K: 0 = "other", 1..150;
Cityscapes: the 35 labelIds), so a checkpoint converted from the original code sees exactly the input it was
trained on.

Built-in spaces (see `list_label_spaces()`; names are case-insensitive and ``_``, spaces and ``-`` are
interchangeable):

- ``ade20k`` (``ade20k-150``): ids 0..150, 0 = "other"; SceneParse150 classes and palette.
- ``cityscapes`` (``cityscapes-35``): the labelIds 0..33 of cityscapesScripts plus 34 = license plate.
- ``cityscapes-trainid``: the 19 evaluation classes, 255 = ignored.
- ``coco-stuff`` (``cocostuff``): stuffthingmaps ids 0..181 (COCO category id - 1), 255 = unlabeled.
- ``celebamask-hq`` (``celebamask-hq-sean``): 19 face classes in the official order (used by SEAN).
- ``celebamask-hq-cocosnet``: the same 19 classes in CoCosNet's order.
- ``facades`` (``cmp-facades``): the 12 CMP Facades base classes, 0-based.

**Duplicate colours.** Some official palettes give one colour to several classes (ADE20K road/skyscraper, the black
Cityscapes void classes, Cityscapes pole/polegroup and car/license plate). Drawing is unaffected; decoding a colour
image maps a shared colour to the **lowest id** that uses it (the rule cityscapesScripts uses for its inverse
mapping). `LabelSpace.duplicate_colors` lists the affected colours.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

__all__ = [
    "CITYSCAPES_LABELID_TO_TRAINID",
    "COCO_STUFF_UNUSED_IDS",
    "ColorDecodingError",
    "LabelSpace",
    "cityscapes_label_to_trainid",
    "convert_celebamask_order",
    "generate_palette",
    "get_label_space",
    "list_label_spaces",
    "merge_part_masks",
    "register_label_space",
]

Color = tuple[int, int, int]

_MAX_LISTED = 5  # how many offending values/colours an error message spells out


def _pack(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) uint8-valued array -> (...) int32 keys 0xRRGGBB (colour lookups search these sorted keys)."""
    rgb = rgb.astype(np.int32, copy=False)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def _rgb(keys: np.ndarray) -> np.ndarray:
    """(...) packed keys -> (..., 3) int64 RGB."""
    keys = keys.astype(np.int64)
    return np.stack([(keys >> 16) & 255, (keys >> 8) & 255, keys & 255], axis=-1)


def _unpack(key: int) -> Color:
    return (int(key) >> 16 & 255, int(key) >> 8 & 255, int(key) & 255)


def _is_torch(x: Any) -> bool:
    # Duck-typed so that importing this module does not import torch.
    return type(x).__module__.startswith("torch")


def _fmt_count(n: int) -> str:
    return f"{n:,} pixel" + ("" if n == 1 else "s")


def _fmt_share(n: int, total: int) -> str:
    percent = 100 * n / max(total, 1)
    return f"{percent:.1f}%" if percent >= 0.1 or n == 0 else "under 0.1%"


class ColorDecodingError(ValueError):
    """A colour-coded label image could not be decoded to class ids (`LabelSpace.encode_colors`).

    Attributes:
        suggested_tolerance: A colour tolerance that decodes the image (the smallest one that does, rounded up a
            little), so that retrying with it works the first time; ``None`` where a tolerance is not the fix (the
            image looks like a photo, or like a map drawn with another palette).
    """

    def __init__(self, message: str, suggested_tolerance: float | None = None) -> None:
        super().__init__(message)
        self.suggested_tolerance = suggested_tolerance

    def __reduce__(self) -> tuple:
        # Keep the suggestion through pickling (errors raised in data-loader worker processes).
        return type(self), (str(self), self.suggested_tolerance)


# ---------------------------------------------------------------- snapping off-palette colours (encode_colors)
# With a tolerance, each off-palette pixel first takes the class of its nearest palette colour. A second pass, over
# each pixel's 8 neighbours, fixes what that gets wrong (exact pixels never change):
# - Blends: an anti-aliased or JPEG-smeared edge pixel mixes the colours on either side, and the nearest palette colour
#   to a mix can be a third class. Where no *anchored* neighbour (exact, or within _ANCHOR of its colour) has the
#   pixel's class, and the colour is closer to a mix of an anchored neighbour's colour and another colour (another
#   anchored neighbour's, or, within the tolerance, one of the few nearest palette colours) than to that class, the
#   pixel takes the end of the mix it is closer to. Beyond the tolerance, a mix of two anchored neighbours settles it.
# - Specks: a pixel whose class no neighbour shares, or a lone pixel beyond the tolerance, takes the most common class
#   of its neighbours. A 1-px line has two neighbours of its class at every pixel, so it stays.
_ANCHOR = 8.0  # pixels this close to their palette colour (JPEG shifts flat regions by a few units) anchor a class
_BLEND_CANDIDATES = 3  # the far end of a blend: an anchored neighbour's colour, or one of this many nearest colours
_KEEP_SUPPORT = 1  # a snapped pixel keeps its class when this many neighbours have it too
_MAJORITY = 3  # a speck takes the most common class of its neighbours when at least this many have it
_MAX_FAR_NEIGHBOURS = 1  # a pixel beyond the tolerance is a speck only with at most this many such neighbours
# Telling photos from label maps (`LabelSpace._refuse_photo`). Measured on the real samples (112 photos; 71 label
# maps drawn with their palette, JPEG-compressed at quality 50..95, anti-aliased, resampled, both, and decoded with
# their own and another palette): maps have >= 59% of their off-palette pixels near a flat patch and <= 79 flat
# colours; every photo has < 55% of them near one, or >= 172 flat colours.
_PHOTO_MIN_COLORS = 1000  # fewer distinct off-palette colours: not a photo
_PHOTO_NEAR = 8.0  # JPEG shifts flat regions by at most this much; in every sample photo ...
_PHOTO_MIN_FAR = 0.35  # ... >= 57% of the off-palette pixels are farther from the palette (photos need >= this)
_PHOTO_RADIUS = 16  # "near a flat patch": within this many pixels (JPEG disturbs 8x8 and 16x16 blocks)
_PHOTO_MIN_NEAR_FLAT = 0.55  # a label map has at least this share of its off-palette pixels near a flat patch ...
_PHOTO_MAX_FLAT_COLORS = 120  # ... and at most this many distinct off-palette colours in its flat patches
# Likely causes of off-palette colours (`LabelSpace._likely_cause`).
_FLAT_COLOR_SHARE = 0.01  # a colour on at least this share of the image paints a region (not an edge blend)
_FAR_FROM_PALETTE = 20.0  # ... and farther than this from every palette colour, it is not this palette's
_OTHER_PALETTE_SHARE = 0.25  # regions of such colours on this share of the image: drawn with another palette
_JPEG_OFF_SHARE = 0.2  # JPEG moves at least this share of the image off the palette ...
_JPEG_SHIFT = 8.0  # ... and half of those pixels by at most this much
_FAR = np.iinfo(np.int64).min  # first-pass class of a pixel beyond the tolerance (ids are never this small)
_OUTSIDE = _FAR + 1  # ... and of the positions outside the image (no vote)
_OFFSETS = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))
_EARLIER = np.tril(np.ones((len(_OFFSETS), len(_OFFSETS)), dtype=bool))  # [i, j]: j <= i


def _neighbours(values: np.ndarray, flat: np.ndarray, fill: Any) -> np.ndarray:
    """The 8 neighbours of some pixels of a ``(..., H, W)`` array.

    Args:
        values: ``(..., H, W)`` array; the last two axes are the image.
        flat: ``(K,)`` flat indices into ``values`` of the pixels.
        fill: What positions outside the image read.

    Returns:
        ``(K, 8)`` array of ``values``' dtype, neighbours in `_OFFSETS` order.
    """
    height, width = values.shape[-2:]
    row, col = np.divmod(flat % (height * width), width)
    d_row, d_col = np.asarray(_OFFSETS).T
    rows, cols = row[:, None] + d_row, col[:, None] + d_col
    inside = (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)
    out = values.reshape(-1)[np.where(inside, flat[:, None] + d_row * width + d_col, 0)]
    out[~inside] = fill
    return out


def _same_neighbours(labels: np.ndarray, counted: np.ndarray | None = None) -> np.ndarray:
    """How many of each pixel's 8 neighbours have its label (only neighbours where ``counted`` is True, if given).

    Args:
        labels: ``(..., H, W)`` labels.
        counted: Optional ``(..., H, W)`` bool.

    Returns:
        ``(..., H, W)`` uint8 counts.
    """
    count = np.zeros(labels.shape, np.uint8)
    height, width = labels.shape[-2:]
    for dr, dc in _OFFSETS:
        rows = slice(max(0, -dr), height - max(0, dr))
        cols = slice(max(0, -dc), width - max(0, dc))
        moved = (..., slice(rows.start + dr, rows.stop + dr), slice(cols.start + dc, cols.stop + dc))
        same = labels[..., rows, cols] == labels[moved]
        count[..., rows, cols] += same if counted is None else same & counted[moved]
    return count


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """``(..., H, W)`` bool: True within ``radius`` pixels (a square) of a True pixel of ``mask``."""
    height, width = mask.shape[-2:]
    summed = np.zeros(mask.shape[:-2] + (height + 1, width + 1), np.int64)
    summed[..., 1:, 1:] = mask.cumsum(-2, dtype=np.int64).cumsum(-1)
    rows, cols = np.arange(height), np.arange(width)
    top, bottom = np.clip(rows - radius, 0, height), np.clip(rows + radius + 1, 0, height)
    left, right = np.clip(cols - radius, 0, width), np.clip(cols + radius + 1, 0, width)
    box = (summed[..., bottom, :][..., right] - summed[..., top, :][..., right]
           - summed[..., bottom, :][..., left] + summed[..., top, :][..., left])  # fmt: skip
    return box > 0


def _min_tolerance(ids: np.ndarray, dist: np.ndarray, off: np.ndarray, blend: np.ndarray) -> float:
    """The smallest tolerance at which `LabelSpace._second_pass` leaves no pixel unresolved.

    A pixel is resolved once the tolerance reaches its own distance, or its distance to a mix of two anchored
    neighbours, or once both at most `_MAX_FAR_NEIGHBOURS` of its neighbours are beyond it and `_MAJORITY` neighbours
    of one class are within it. All only get easier as the tolerance grows, so the answer is the largest, over the
    pixels, of what each one needs.

    Args:
        ids: ``(..., H, W)`` first-pass classes (exact ids, nearest ids elsewhere).
        dist: ``(..., H, W)`` distance of each pixel to its nearest palette colour (0 for exact pixels).
        off: ``(K,)`` flat indices of the off-palette pixels.
        blend: ``(K,)`` their distances to a mix of two anchored neighbours (the first array of `LabelSpace._blends`).
    """
    d_off = np.minimum(dist.reshape(-1)[off], blend)
    order = np.argsort(-d_off, kind="stable")
    need, chunk = 0.0, 1 << 16
    for start in range(0, len(order), chunk):
        part = order[start : start + chunk]
        if d_off[part[0]] <= need:
            break  # the rest need no more than `need`
        nb_dist = _neighbours(dist, off[part], 0.0)
        nb_ids = _neighbours(ids, off[part], _OUTSIDE)
        by_dist = np.argsort(nb_dist, axis=1, kind="stable")
        nb_dist = np.take_along_axis(nb_dist, by_dist, 1)
        nb_ids = np.take_along_axis(nb_ids, by_dist, 1)
        few_far = nb_dist[:, len(_OFFSETS) - 1 - _MAX_FAR_NEIGHBOURS]
        # rank of each neighbour among those of its class, nearest first: the _MAJORITY-th one of a class is the
        # tolerance at which that class has a majority
        rank = ((nb_ids[:, :, None] == nb_ids[:, None, :]) & _EARLIER).sum(2)
        hit = (rank >= _MAJORITY) & (nb_ids > _OUTSIDE)
        majority = np.where(hit.any(1), nb_dist[np.arange(len(part)), hit.argmax(1)], np.inf)
        need = max(need, float(np.minimum(d_off[part], np.maximum(few_far, majority)).max()))
    return need


def _round_up(tolerance: float) -> float:
    """A tolerance rounded up to the next multiple of 5, at least 0.5 above it (so distances just past it pass)."""
    return float(5 * np.ceil((tolerance + 0.5) / 5))


def generate_palette(num_colors: int) -> np.ndarray:
    """Deterministic, pairwise-distinct palette (the PASCAL VOC bit-interleaving colour map, started at 1).

    Colour ``k`` spreads the bits of ``k + 1`` over the high bits of R, G and B, so neighbouring ids get very
    different colours, no colour is black (black stays free for "unlabeled") and all colours are distinct for
    ``num_colors < 2**24``.

    Returns:
        `np.ndarray` uint8 of shape ``(num_colors, 3)``.
    """
    if num_colors < 0:
        raise ValueError(f"num_colors must be >= 0, got {num_colors}")
    ids = np.arange(1, num_colors + 1, dtype=np.int64)
    palette = np.zeros((num_colors, 3), dtype=np.int64)
    for bit in range(8):
        for channel in range(3):
            palette[:, channel] |= ((ids >> (3 * bit + channel)) & 1) << (7 - bit)
    return palette.astype(np.uint8)


@dataclass(frozen=True, eq=False)
class LabelSpace:
    """Class names, colours and ignore value of one label-map convention.

    Args:
        name: Registry name, e.g. ``"ade20k"``.
        names: ``names[k]`` is the class name of raw id ``k``; ``len(names)`` is `num_classes`. Names must be unique.
        palette: uint8 array ``(num_classes, 3)`` with the RGB colour of every id, or ``None`` for a space that has
            no colour coding (colour images are then rejected and `colorize` uses `generate_palette`).
        ignore_index: The value meaning "unlabeled" (e.g. 255), outside ``0..num_classes-1``; ``None`` if the
            dataset has none.
        ignore_color: Colour drawn for ``ignore_index`` (and decoded back to it when no class uses that colour).
        description: Free text (provenance, conventions).
        alias_colors: Extra colours that decode to an id but are never drawn, e.g. the colour another tool uses for
            the same class. Mapping ``(r, g, b) -> id``.
    """

    name: str
    names: tuple[str, ...]
    palette: np.ndarray | None = None
    ignore_index: int | None = None
    ignore_color: Color = (0, 0, 0)
    description: str = ""
    alias_colors: Mapping[Color, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = tuple(str(n) for n in self.names)
        if not names:
            raise ValueError(f"label space {self.name!r}: `names` is empty; give one name per class id")
        dupes = sorted(n for n, count in Counter(names).items() if count > 1)
        if dupes:
            raise ValueError(f"label space {self.name!r}: class names must be unique, repeated: {dupes}")
        object.__setattr__(self, "names", names)
        if self.palette is not None:
            palette = np.asarray(self.palette)
            if palette.shape != (len(names), 3):
                raise ValueError(
                    f"label space {self.name!r}: palette has shape {palette.shape} but {len(names)} names were "
                    f"given; the palette needs one RGB row per class: shape ({len(names)}, 3)"
                )
            if palette.size and (palette.min() < 0 or palette.max() > 255 or not np.all(palette == np.round(palette))):
                raise ValueError(f"label space {self.name!r}: palette values must be integers in 0..255")
            palette = palette.astype(np.uint8)
            palette.setflags(write=False)
            object.__setattr__(self, "palette", palette)
        if self.ignore_index is not None:
            if isinstance(self.ignore_index, bool) or not isinstance(self.ignore_index, (int, np.integer)):
                raise ValueError(f"label space {self.name!r}: ignore_index must be an int or None")
            object.__setattr__(self, "ignore_index", int(self.ignore_index))
            if 0 <= self.ignore_index < len(names):
                raise ValueError(
                    f"label space {self.name!r}: ignore_index {self.ignore_index} is a class id (0..{len(names) - 1}); "
                    "it must lie outside the class range, e.g. 255"
                )
        object.__setattr__(self, "ignore_color", _as_color(self.ignore_color, f"{self.name!r} ignore_color"))
        aliases = {_as_color(c, f"{self.name!r} alias colour"): int(i) for c, i in dict(self.alias_colors).items()}
        bad = sorted(i for i in aliases.values() if not 0 <= i < len(names))
        if bad:
            raise ValueError(f"label space {self.name!r}: alias_colors point to ids {bad} outside 0..{len(names) - 1}")
        object.__setattr__(self, "alias_colors", aliases)

    # ------------------------------------------------------------------ basic properties
    @property
    def num_classes(self) -> int:
        """Number of class ids (``len(names)``); valid ids are ``0..num_classes-1`` (plus `ignore_index`)."""
        return len(self.names)

    @property
    def id2label(self) -> dict[int, str]:
        """``{id: name}`` for every class id."""
        return dict(enumerate(self.names))

    @property
    def label2id(self) -> dict[str, int]:
        """``{name: id}`` for every class id."""
        return {n: i for i, n in enumerate(self.names)}

    @property
    def valid_range(self) -> str:
        """Human-readable range of accepted values, e.g. ``"0..181 (+ 255 = unlabeled)"``."""
        text = f"0..{self.num_classes - 1}"
        return text if self.ignore_index is None else f"{text} (+ {self.ignore_index} = unlabeled)"

    @cached_property
    def duplicate_colors(self) -> dict[Color, tuple[int, ...]]:
        """Colours used by more than one id, ``{colour: ids}``; colour decoding picks the lowest of those ids."""
        if self.palette is None:
            return {}
        owners: dict[Color, list[int]] = {}
        for i, c in enumerate(self.palette.tolist()):
            owners.setdefault(tuple(c), []).append(i)
        return {c: tuple(ids) for c, ids in owners.items() if len(ids) > 1}

    def __repr__(self) -> str:
        return (
            f"LabelSpace(name={self.name!r}, num_classes={self.num_classes}, ignore_index={self.ignore_index}, "
            f"palette={'yes' if self.palette is not None else 'no'})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LabelSpace):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash((self.name, self.names, self.ignore_index))

    # ------------------------------------------------------------------ drawing / decoding
    @cached_property
    def _draw_lut(self) -> np.ndarray:
        # Row k = colour of id k; one extra row for the ignore value.
        palette = self.palette if self.palette is not None else generate_palette(self.num_classes)
        return np.concatenate([palette, np.asarray([self.ignore_color], dtype=np.uint8)])

    @cached_property
    def _color_table(self) -> tuple[np.ndarray, np.ndarray]:
        """Sorted packed colours and the id each decodes to (lowest id wins, then aliases, then ignore)."""
        decode: dict[int, int] = {}
        for i, c in enumerate(self.palette.tolist()):
            decode.setdefault(int(_pack(np.asarray(c))), i)
        for c, i in self.alias_colors.items():
            decode.setdefault(int(_pack(np.asarray(c))), i)
        if self.ignore_index is not None:
            decode.setdefault(int(_pack(np.asarray(self.ignore_color))), self.ignore_index)
        keys = np.asarray(sorted(decode), dtype=np.int32)
        return keys, np.asarray([decode[int(k)] for k in keys], dtype=np.int64)

    def contains_colors(self, colors: Any) -> np.ndarray:
        """Whether each RGB colour decodes exactly (palette, alias or ignore colour).

        Args:
            colors: uint8-valued array ``(..., 3)``.

        Returns:
            `np.ndarray` bool of shape ``colors.shape[:-1]`` (all False for a space without palette).
        """
        colors = np.asarray(colors)
        if self.palette is None:
            return np.zeros(colors.shape[:-1], dtype=bool)
        return np.isin(_pack(colors), self._color_table[0])

    def colorize(self, ids: Any) -> np.ndarray:
        """Draw a label map with the palette.

        Args:
            ids: Integer ids, numpy array or torch tensor of any shape (usually ``(H, W)``).

        Returns:
            `np.ndarray` uint8 of shape ``ids.shape + (3,)``. `ignore_index` pixels get `ignore_color`; spaces
            without a palette are drawn with `generate_palette`.

        Raises:
            ValueError: if an id is outside the label space (the message names the values).
        """
        arr = _to_numpy_ids(ids, what="label map")
        self.validate(arr)
        index = arr if self.ignore_index is None else np.where(arr == self.ignore_index, self.num_classes, arr)
        return self._draw_lut[index]

    def encode_colors(self, rgb: Any, tolerance: float = 0.0) -> np.ndarray:
        """Turn a colour-coded label image into ids.

        Args:
            rgb: uint8-valued array ``(H, W, 3)`` (or ``(..., H, W, 3)``, or ``(N, 3)`` colours) of RGB colours.
            tolerance: ``0`` (default) accepts only exact palette colours. ``> 0`` snaps every other colour to the
                nearest palette colour (ignore colour and alias colours included) if its Euclidean RGB distance is at
                most ``tolerance``, then looks at each pixel's 8 neighbours: an edge pixel whose colour is a mix of
                the classes beside it takes the one it is closer to (not a third class whose colour happens to be
                nearest), and a snapped pixel that no neighbour shares, or a lone pixel beyond the tolerance (at most
                one such neighbour), takes the most common class around it when at least 3 neighbours have it.
                Exact palette colours never change and 1-px lines keep their class. This is for JPEG-compressed,
                anti-aliased or resampled maps; errors suggest the tolerance that works.

        Returns:
            `np.ndarray` int64 of shape ``rgb.shape[:-1]``. Colours shared by several ids decode to the lowest id
            (see `duplicate_colors`).

        Raises:
            ColorDecodingError: (a ``ValueError``) for an image that looks like a photo rather than a label map
                (whatever the tolerance), and for colours that are not in the palette (or beyond ``tolerance`` and
                not settled by the vote). The message says how much of the image is off the palette, the likely
                cause and the fix, and lists the colours with pixel counts and their nearest palette colour; its
                ``suggested_tolerance`` is the tolerance that decodes the image, where a tolerance is the fix.
            ValueError: for a space without palette and for arrays that are not RGB colours.
        """
        if self.palette is None:
            raise ValueError(
                f"label space {self.name!r} has no palette, so a colour image cannot be decoded; give an index map "
                "(mode L/P/I PNG or an integer array) or a label space with a palette"
            )
        arr = np.asarray(rgb.detach().cpu() if _is_torch(rgb) else rgb)
        if arr.ndim < 1 or arr.shape[-1] != 3:
            raise ValueError(f"encode_colors expects an RGB array of shape (H, W, 3), got shape {arr.shape}")
        integral = arr.dtype.kind in "ui" or (arr.dtype.kind == "f" and np.array_equal(arr, np.round(arr)))
        if not integral or (arr.size and (arr.min() < 0 or arr.max() > 255)):
            raise ValueError(
                f"encode_colors expects integer RGB values 0..255 (uint8), got dtype {arr.dtype}"
                + (f" with values {arr.min()}..{arr.max()}" if arr.size and arr.dtype.kind in "uif" else "")
                + "; a float image in [0, 1] must be scaled by 255 first"
            )
        if tolerance < 0:
            raise ValueError(f"tolerance must be >= 0, got {tolerance}")
        keys = _pack(arr)
        table_keys, table_ids = self._color_table
        pos = np.minimum(np.searchsorted(table_keys, keys), len(table_keys) - 1)
        out = table_ids[pos]
        unmatched = table_keys[pos] != keys
        if not unmatched.any():
            return out  # exact colours: a lookup, nothing else
        off = np.flatnonzero(unmatched)
        off_keys = keys.reshape(-1)[off]
        colors, inverse, counts = np.unique(off_keys, return_inverse=True, return_counts=True)
        inverse = inverse.reshape(-1)
        nearest, dist, nearby = self._nearest_colors(colors)
        self._refuse_photo(keys, unmatched, len(colors), counts[dist > _PHOTO_NEAR].sum() / len(off))
        out.reshape(-1)[off] = nearest[inverse]
        pixel_dist = np.zeros(keys.shape)
        pixel_dist.reshape(-1)[off] = dist[inverse]
        spatial = keys.ndim >= 2  # an image: neighbours can vote
        blend = None
        unresolved = None
        if tolerance > 0:
            if spatial:
                blend = self._blends(keys, out, pixel_dist, off, nearby[inverse])
                unresolved = self._second_pass(out, pixel_dist, off, off_keys, blend, tolerance)
            else:
                unresolved = dist[inverse] > tolerance
            if not unresolved.any():
                return out
            out.reshape(-1)[off] = nearest[inverse]  # back to the first pass for `_min_tolerance`
        cause, fixable = self._likely_cause(keys.size, counts, dist)
        suggested = None
        if fixable:
            if spatial:
                blend = self._blends(keys, out, pixel_dist, off, nearby[inverse]) if blend is None else blend
                suggested = _round_up(_min_tolerance(out, pixel_dist, off, blend[0]))  # local mixes resolve
            else:
                suggested = _round_up(float(dist.max()))
        raise self._decoding_error(
            keys.size, colors, counts, nearest, dist, inverse, unresolved, tolerance, cause, suggested
        )

    def _refuse_photo(self, keys: np.ndarray, unmatched: np.ndarray, n_colors: int, far_share: float) -> None:
        """Raise `ColorDecodingError` if the image looks like a photo rather than a colour-coded label map.

        A label map is flat regions, one colour per class; JPEG, anti-aliasing and resampling only disturb the
        pixels near region edges, and another palette only changes the colours. So in a label map nearly every
        off-palette pixel lies near a flat patch (3x3 pixels of one exact colour), and its flat patches hold few
        distinct colours. A photo has thousands of colours in texture (far from any flat patch) or in smooth
        gradients (flat patches in many slightly different colours), most of them far from the palette (a label
        map with noise on every pixel has no flat patch either, but stays close to its palette). Thresholds:
        `_PHOTO_*`, measured on the real samples.

        Args:
            keys: ``(..., H, W)`` packed colours; ``unmatched``: which pixels are off the palette.
            n_colors: How many distinct off-palette colours there are.
            far_share: The share of the off-palette pixels farther than `_PHOTO_NEAR` from every palette colour.
        """
        if keys.ndim < 2 or n_colors < _PHOTO_MIN_COLORS or far_share < _PHOTO_MIN_FAR:
            return
        flat = _same_neighbours(keys) == len(_OFFSETS)
        near_flat = np.count_nonzero(_dilate(flat, _PHOTO_RADIUS) & unmatched) / np.count_nonzero(unmatched)
        flat_colors = len(np.unique(keys[flat & unmatched]))
        if near_flat >= _PHOTO_MIN_NEAR_FLAT and flat_colors <= _PHOTO_MAX_FLAT_COLORS:
            return
        structure = (
            f"only {near_flat:.0%} of its off-palette pixels lie within {_PHOTO_RADIUS} pixels of a flat patch"
            if near_flat < _PHOTO_MIN_NEAR_FLAT
            else f"its flat patches hold {flat_colors:,} slightly different colours (smooth gradients)"
        )
        raise ColorDecodingError(
            f"this looks like a photo, not a colour-coded label map: {n_colors:,} colours off the palette of label "
            f"space {self.name!r}, and {structure}, while a label map has one flat colour per class. To start from "
            "a photo, segment it first with a semantic segmentation model that predicts the classes of "
            f"{self.name!r}, and pass its class ids (an (H, W) integer array or a mode L PNG) as the label map; no "
            "colour tolerance turns a photo into a label map.",
            None,
        )

    def _blends(
        self, keys: np.ndarray, ids: np.ndarray, dist: np.ndarray, off: np.ndarray, nearby: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """How well each off-palette pixel's colour is a mix of an anchored neighbour's colour and another colour.

        Only pixels whose class no anchored neighbour has are looked at (the others blend into their own class).

        Args:
            keys: ``(..., H, W)`` packed colours; ``ids``, ``dist``: first-pass classes and distances, same shape.
            off: ``(K,)`` flat indices of the off-palette pixels.
            nearby: ``(K, k)`` indices into `_color_table` of the palette colours nearest each of them.

        Returns:
            Four ``(K,)`` arrays: the distance from the colour to the nearest mix of two anchored neighbours' colours
            (inf where not looked at) and the class of the end it is closer to; the same where the other end may
            also be one of the ``nearby`` palette colours (a thin stroke that no neighbour shows exactly), with the
            distance inf where that end is the pixel's own first-pass class.
        """
        n_nb = len(_OFFSETS)
        local, local_ids = np.full(len(off), np.inf), ids.reshape(-1)[off]
        wide, wide_ids = local.copy(), local_ids.copy()
        anchored = dist <= _ANCHOR
        look = np.flatnonzero(_same_neighbours(ids, anchored).reshape(-1)[off] == 0)
        table_keys, table_ids = self._color_table
        for start in range(0, len(look), 1 << 14):  # bounds the (3, n, 8, 8 + k) temporaries to ~20 MB
            part = look[start : start + (1 << 14)]
            flat = off[part]
            valid = _neighbours(anchored, flat, False)
            nb_ids = _neighbours(ids, flat, _OUTSIDE)
            nb_rgb = _rgb(_neighbours(keys, flat, 0))
            # channels split: (n, 8, 8 + k) arithmetic per channel is faster than reducing a trailing axis of 3
            x = _rgb(keys.reshape(-1)[flat]).astype(np.float32).T[:, :, None, None]  # (3, n, 1, 1)
            a = np.moveaxis(nb_rgb.astype(np.float32), -1, 0)[:, :, :, None]  # (3, n, 8, 1)
            b = np.concatenate([nb_rgb, _rgb(table_keys[nearby[part]])], 1).astype(np.float32)
            b_ids = np.concatenate([nb_ids, table_ids[nearby[part]]], 1)
            b_valid = np.concatenate([valid, np.ones(nearby[part].shape, bool)], 1)
            ab = np.moveaxis(b, -1, 0)[:, :, None, :] - a  # (3, n, 8, 8 + k)
            xa = x - a
            t = (xa[0] * ab[0] + xa[1] * ab[1] + xa[2] * ab[2]) / np.maximum(
                ab[0] * ab[0] + ab[1] * ab[1] + ab[2] * ab[2], 1e-6
            )
            np.clip(t, 0.0, 1.0, out=t)
            e = xa - t * ab
            r = np.sqrt(e[0] * e[0] + e[1] * e[1] + e[2] * e[2])
            r[~(valid[:, :, None] & b_valid[:, None, :])] = np.inf
            rows = np.arange(len(part))
            for far_ends, dist_out, ids_out in ((n_nb, local, local_ids), (b_ids.shape[1], wide, wide_ids)):
                best = r[:, :, :far_ends].reshape(len(part), -1).argmin(1)
                i, j = np.divmod(best, far_ends)
                ids_out[part] = np.where(t[rows, i, j] < 0.5, nb_ids[rows, i], b_ids[rows, j])
                dist_out[part] = r[rows, i, j]
        wide[wide_ids == ids.reshape(-1)[off]] = np.inf
        return local, local_ids, wide, wide_ids

    def _second_pass(
        self,
        ids: np.ndarray,
        dist: np.ndarray,
        off: np.ndarray,
        off_keys: np.ndarray,
        blend: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
        tolerance: float,
    ) -> np.ndarray:
        """Settle blends and specks of tolerant decoding in place (see the comment above `_ANCHOR`).

        Args:
            ids: ``(..., H, W)`` first-pass classes (exact ids, nearest ids elsewhere); updated in place.
            dist: ``(..., H, W)`` distance of each pixel to its nearest palette colour (0 for exact pixels).
            off: ``(K,)`` flat indices of the off-palette pixels; ``off_keys`` their packed colours.
            blend: `_blends` of the off-palette pixels.
            tolerance: Pixels farther than this from every palette colour have no first-pass class.

        Returns:
            ``(K,)`` bool: the off-palette pixels beyond the tolerance that neither step settled.
        """
        d_off = dist.reshape(-1)[off]
        far = d_off > tolerance
        local, local_ids, wide, wide_ids = blend
        # beyond the tolerance: a mix of two classes around it; within: the mix may also take in a nearby colour
        blended = np.where(far, local <= tolerance, wide < d_off)
        blend_ids = np.where(far, local_ids, wide_ids)
        first = ids.copy()
        first.reshape(-1)[off[far]] = _FAR
        # for a pixel beyond the tolerance: how many of its neighbours are beyond it too
        support = _same_neighbours(first).reshape(-1)[off]
        specks = np.flatnonzero(~blended & (far | (support < _KEEP_SUPPORT)))
        nb = _neighbours(first, off[specks], _OUTSIDE)
        voter = nb > _OUTSIDE
        votes = (nb[:, :, None] == nb[:, None, :]).sum(2) * voter
        # ties between the most common classes go to the class whose colour is nearest the pixel's
        class_ids, class_colors = self._class_colors
        candidates = class_colors[np.searchsorted(class_ids, np.where(voter, nb, class_ids[0]))]
        d2 = ((candidates - _rgb(off_keys[specks])[:, None, :]) ** 2).sum(-1)  # < 2**18
        best = (votes * (1 << 20) - d2).argmax(1)
        rows = np.arange(len(specks))
        settled = (votes[rows, best] >= _MAJORITY) & (~far[specks] | (support[specks] <= _MAX_FAR_NEIGHBOURS))
        ids.reshape(-1)[off[blended]] = blend_ids[blended]
        ids.reshape(-1)[off[specks[settled]]] = nb[rows, best][settled]
        unresolved = far & ~blended
        unresolved[specks[settled]] = False
        return unresolved

    @cached_property
    def _class_colors(self) -> tuple[np.ndarray, np.ndarray]:
        """Sorted ids that colours decode to, and the colour drawn for each (int64 ``(n, 3)``)."""
        ids = np.unique(self._color_table[1])
        rows = np.where((ids >= 0) & (ids < self.num_classes), ids, self.num_classes)  # the ignore row
        return ids, self._draw_lut[rows].astype(np.int64)

    def _nearest_colors(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Nearest decodable colours of packed colours ``(n,)``.

        Returns:
            The nearest one's id ``(n,)`` and Euclidean RGB distance ``(n,)``, and the indices into `_color_table`
            of the `_BLEND_CANDIDATES` nearest ones ``(n, k)`` (the far ends of blends, see `_blends`).
        """
        table_keys, table_ids = self._color_table
        # Candidates in id order so that argmin (first minimum) breaks ties towards the lowest id.
        order = np.argsort(table_ids, kind="stable")
        cand = _rgb(table_keys[order]).astype(np.float64)
        k = min(_BLEND_CANDIDATES, len(cand))
        ids, dists = np.empty(len(keys), np.int64), np.empty(len(keys), np.float64)
        nearby = np.empty((len(keys), k), np.int64)
        chunk = max(1, 2**20 // max(1, len(cand)))  # bound the (chunk, candidates, 3) temporary to ~25 MB
        for start in range(0, len(keys), chunk):
            d2 = ((_rgb(keys[start : start + chunk])[:, None, :] - cand[None, :, :]) ** 2).sum(-1)
            best = d2.argmin(1)
            ids[start : start + chunk] = table_ids[order][best]
            dists[start : start + chunk] = np.sqrt(d2[np.arange(len(d2)), best])
            nearby[start : start + chunk] = order[np.argpartition(d2, k - 1, axis=1)[:, :k]]
        return ids, dists, nearby

    def _color_name(self, i: int) -> str:
        return "unlabeled" if i == self.ignore_index else self.names[i]

    def _decoding_error(
        self,
        total: int,
        colors: np.ndarray,
        counts: np.ndarray,
        nearest: np.ndarray,
        dist: np.ndarray,
        inverse: np.ndarray,
        unresolved: np.ndarray | None,
        tolerance: float,
        cause: str,
        suggested: float | None,
    ) -> ColorDecodingError:
        """The error for off-palette colours: how much of the image, the likely cause, the fix, the colours.

        Args:
            total: Pixels in the image.
            colors, counts, nearest, dist: The distinct off-palette colours (packed), their pixel counts, nearest
                ids and distances.
            inverse: Index into ``colors`` of each off-palette pixel.
            unresolved: Which off-palette pixels the tolerance and the vote left undecided (None at tolerance 0).
            tolerance: The tolerance that failed.
            cause: `_likely_cause` in words.
            suggested: The tolerance that decodes the image, or None where a tolerance is not the fix.
        """
        if unresolved is None:
            listed, listed_counts = np.arange(len(colors)), counts
        else:
            listed, listed_counts = np.unique(inverse[unresolved], return_counts=True)
        shown = "; ".join(
            f"{_unpack(colors[j])} on {_fmt_count(int(n))} (nearest: id {int(nearest[j])} "
            f"{self._color_name(int(nearest[j]))!r} at distance {dist[j]:.1f})"
            for k in np.argsort(-listed_counts, kind="stable")[:_MAX_LISTED]
            for j, n in [(listed[k], listed_counts[k])]
        )
        more = f" and {len(listed) - _MAX_LISTED} more" if len(listed) > _MAX_LISTED else ""
        if suggested is not None:
            fix = (
                f"tolerance={suggested:g} decodes it (each off-palette pixel takes the nearest palette colour, and "
                "stray specks the class around them)"
            )
        else:
            fix = (
                "pass the label space the image was drawn with, or give an index map (mode L/P PNG or an integer "
                "array) instead of a colour image; a tolerance would force these colours onto unrelated classes"
            )
        if tolerance > 0:
            bad = int(listed_counts.sum())
            return ColorDecodingError(
                f"{len(listed)} colour(s) ({_fmt_count(bad)}, {_fmt_share(bad, total)} of the image) are farther "
                f"than tolerance={tolerance:g} from every colour of label space {self.name!r}, in clusters too "
                f"large to be specks of the classes around them: {shown}{more}. Likely cause: {cause}; "
                + (f"raise the tolerance: {fix}." if suggested is not None else f"{fix}."),
                suggested,
            )
        n_off = int(counts.sum())
        return ColorDecodingError(
            f"{_fmt_share(n_off, total)} of the image ({n_off:,} of {_fmt_count(total)}, {len(colors):,} "
            f"colour(s)) is not in the palette of label space {self.name!r} ({self.num_classes} classes). Likely "
            f"cause: {cause}. Fix: {fix}"
            + ("; or give an index map (mode L/P PNG or an integer array)" if suggested is not None else "")
            + f". Off-palette colours, most common first: {shown}{more}.",
            suggested,
        )

    @staticmethod
    def _likely_cause(total: int, counts: np.ndarray, dist: np.ndarray) -> tuple[str, bool]:
        """Why colours are off the palette, from the distinct off-palette colours' pixel counts and distances to it.

        Returns:
            The cause in words, and whether a tolerance is the fix (not for a map drawn with another palette).
        """
        n_off = int(counts.sum())
        # Another palette paints whole regions in colours far from this one; blends and JPEG noise are neither
        # that far nor that frequent (one anti-aliased edge holds at most one image side's worth of one blend).
        flat_far = (counts >= _FLAT_COLOR_SHARE * total) & (dist > _FAR_FROM_PALETTE)
        if counts[flat_far].sum() >= _OTHER_PALETTE_SHARE * total:
            return "another palette (whole regions are drawn in colours far from every colour of this one)", False
        # JPEG shifts flat regions by a few units, so many pixels sit just off their palette colour; anti-aliasing
        # leaves regions exact and blends only their edges.
        if n_off >= _JPEG_OFF_SHARE * total and counts[dist <= _JPEG_SHIFT].sum() >= 0.5 * n_off:
            return "lossy (JPEG) compression (flat regions shifted by a few units, ringing along class edges)", True
        return "anti-aliasing or resampling (blends of neighbouring class colours along class edges)", True

    # ------------------------------------------------------------------ validation
    def validate(self, ids: Any, *, allow_ignore: bool = True) -> None:
        """Check that every value of ``ids`` is a class id (or `ignore_index` when ``allow_ignore``).

        Args:
            ids: Integer label map (numpy array or torch tensor, any shape, any device).
            allow_ignore: Whether `ignore_index` values are accepted.

        Raises:
            ValueError: naming the offending values, their pixel count, this label space and its valid range, with a
            hint when the values look like an RGB image, a 0/255 mask, 1-based ids or instance ids.
        """
        if _is_torch(ids):
            if ids.dtype.is_floating_point or ids.dtype.is_complex or str(ids.dtype) == "torch.bool":
                raise ValueError(f"label map must hold integer ids, got a tensor of dtype {ids.dtype}")
            if ids.numel() == 0:
                return
            bad_mask = (ids < 0) | (ids >= self.num_classes)
            if allow_ignore and self.ignore_index is not None:
                bad_mask &= ids != self.ignore_index
            if not bool(bad_mask.any()):
                return
            values, counts = ids[bad_mask].unique(return_counts=True)
            values, counts = values.cpu().numpy(), counts.cpu().numpy()
            present = ids.unique().cpu().numpy()
            shape = tuple(ids.shape)
        else:
            arr = np.asarray(ids)
            if arr.dtype.kind not in "iu":
                raise ValueError(f"label map must hold integer ids, got an array of dtype {arr.dtype}")
            if arr.size == 0:
                return
            lo, hi = int(arr.min()), int(arr.max())
            if lo >= 0 and hi < self.num_classes:
                return  # fast path: no per-value work for valid maps
            bad_mask = (arr < 0) | (arr >= self.num_classes)
            if allow_ignore and self.ignore_index is not None:
                bad_mask &= arr != self.ignore_index
            if not bad_mask.any():
                return
            values, counts = np.unique(arr[bad_mask], return_counts=True)
            present = np.unique(arr)
            shape = arr.shape
        raise ValueError(self._range_error(values, counts, present, shape, allow_ignore))

    def _range_error(
        self, values: np.ndarray, counts: np.ndarray, present: np.ndarray, shape: tuple, allow_ignore: bool
    ) -> str:
        listed = ", ".join(str(int(v)) for v in values[:_MAX_LISTED])
        more = f", ... ({len(values)} distinct values)" if len(values) > _MAX_LISTED else ""
        msg = (
            f"label map has ids [{listed}{more}] ({_fmt_count(int(counts.sum()))}) outside the range "
            f"{self.valid_range if allow_ignore else f'0..{self.num_classes - 1}'} of label space {self.name!r}."
        )
        hints = []
        vals = {int(v) for v in present}
        if len(shape) >= 3 and shape[-1] in (3, 4) and max(vals) <= 255:
            hints.append(
                "the array has a last dimension of size 3/4, so it looks like an RGB(A) colour image: decode colours "
                "with label_space.encode_colors(rgb) (LabelMapProcessor does this for colour images)"
            )
        bad_values = {int(v) for v in values}
        if self.ignore_index in bad_values:
            hints.append(f"{self.ignore_index} is this space's ignore value, which is not accepted here")
        elif 255 in bad_values and vals <= {0, 1, 255}:
            hints.append("it looks like a 0/255 binary mask: use (mask > 0) as 0/1 ids, or merge part masks first")
        elif 255 in bad_values and self.ignore_index is None:
            hints.append(
                "255 usually marks unlabeled pixels, but this label space has no ignore_index: map 255 to a class, "
                "or use a label space with ignore_index=255"
            )
        if min(vals) >= 1 and max(vals) == self.num_classes:
            hints.append(
                f"the ids look 1-based (1..{self.num_classes}): subtract 1 if the dataset numbers classes from 1 "
                "(CMP Facades PNGs do)"
            )
        if min(vals) < 0:
            hints.append("negative ids are never valid (was 1 subtracted from a map that uses 0 for 'unlabeled'?)")
        if max(vals) >= 1000:
            hints.append(
                "values >= 1000 look like instance ids (Cityscapes instanceIds = class * 1000 + instance): pass that "
                "map as the instance map and the labelIds map as the label map"
            )
        hints.append(
            "check that the map was made for this label space or pass the right one "
            f"(built-in: {', '.join(list_label_spaces())})"
        )
        return msg + " Hint: " + "; ".join(hints) + "."

    # ------------------------------------------------------------------ (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict (for ``config.json`` / ``preprocessor_config.json``); inverse of `from_dict`."""
        return {
            "name": self.name,
            "names": list(self.names),
            "palette": None if self.palette is None else self.palette.tolist(),
            "ignore_index": self.ignore_index,
            "ignore_color": list(self.ignore_color),
            "description": self.description,
            "alias_colors": [[list(c), i] for c, i in self.alias_colors.items()],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LabelSpace:
        """Rebuild a space from `to_dict` output. Only ``names`` is required (``name`` defaults to ``"custom"``)."""
        if not isinstance(data, Mapping) or "names" not in data:
            raise ValueError(
                "a label-space dict needs at least a 'names' list (one class name per id), e.g. "
                "{'name': 'my-space', 'names': ['background', 'road', ...], 'palette': [[0, 0, 0], ...]}; "
                f"got {type(data).__name__} with keys {sorted(data) if isinstance(data, Mapping) else []}"
            )
        unknown = sorted(set(data) - {f for f in cls.__dataclass_fields__})
        if unknown:
            raise ValueError(f"unknown label-space keys {unknown}; valid keys: {sorted(cls.__dataclass_fields__)}")
        palette = data.get("palette")
        return cls(
            name=str(data.get("name", "custom")),
            names=tuple(data["names"]),
            palette=None if palette is None else np.asarray(palette),
            ignore_index=data.get("ignore_index"),
            ignore_color=tuple(data.get("ignore_color", (0, 0, 0))),
            description=str(data.get("description", "")),
            alias_colors={tuple(c): int(i) for c, i in data.get("alias_colors", [])},
        )

    @classmethod
    def custom(
        cls,
        names: Sequence[str],
        palette: Any = None,
        ignore_index: int | None = None,
        *,
        name: str = "custom",
        ignore_color: Color = (0, 0, 0),
        description: str = "",
    ) -> LabelSpace:
        """A user-defined space. Without ``palette`` the colours come from `generate_palette` (deterministic)."""
        names = tuple(names)
        return cls(
            name=name,
            names=names,
            palette=generate_palette(len(names)) if palette is None else np.asarray(palette),
            ignore_index=ignore_index,
            ignore_color=ignore_color,
            description=description,
        )


def decode_color_label(rgb: np.ndarray, space: LabelSpace | None, *, what: str, tolerance: float = 0.0,
                       hint: str | Callable[[float], str] = "") -> np.ndarray:
    """Ids of an RGB label image `(H, W, 3)` uint8: a grey image (equal channels) is an index map saved as RGB,
    unless every grey level in it is a palette colour; anything else is decoded with the palette of `space`.

    Args:
        rgb: the image.
        space: the label space whose palette decodes colours (None: only grey index maps are accepted).
        what: how to name the input in errors.
        tolerance: `LabelSpace.encode_colors` tolerance for anti-aliased colours.
        hint: appended to colour-decoding errors that a tolerance fixes: how the caller sets it, as text or as a
            function of the suggested tolerance.

    Raises:
        ColorDecodingError: colours that do not decode (message prefixed with ``what``, ``suggested_tolerance`` kept).
        ValueError: a colour image without a label space with a palette.
    """
    grey = rgb[..., 0]
    if np.array_equal(grey, rgb[..., 1]) and np.array_equal(grey, rgb[..., 2]):
        levels = np.repeat(np.unique(grey)[:, None], 3, axis=1)
        if space is None or space.palette is None or not space.contains_colors(levels).all():
            return grey.astype(np.int64)
    if space is None:
        raise ValueError(
            f"{what} is a colour image but no label space with a palette was given to decode its colours; pass "
            "label_space=... (e.g. 'cityscapes'), or give index maps (mode L/P PNGs of class ids)"
        )
    if space.palette is None:
        raise ValueError(
            f"{what} is a colour image but label space {space.name!r} has no palette to decode colours with; "
            "give an index map (mode L/P PNG or an integer array) or use a label space with a palette"
        )
    try:
        return space.encode_colors(rgb, tolerance=tolerance)
    except ColorDecodingError as err:
        suggested = err.suggested_tolerance
        extra = "" if suggested is None else hint(suggested) if callable(hint) else hint
        raise ColorDecodingError(f"{what}: {err}{extra}", suggested) from None
    except ValueError as err:
        raise ValueError(f"{what}: {err}") from None


def _as_color(c: Iterable[int], what: str) -> Color:
    t = tuple(int(v) for v in c)
    if len(t) != 3 or not all(0 <= v <= 255 for v in t):
        raise ValueError(f"{what} must be three ints in 0..255, got {c!r}")
    return t  # type: ignore[return-value]


def _to_numpy_ids(ids: Any, what: str) -> np.ndarray:
    """Integer numpy view of a numpy array / torch tensor; rejects floats, bools and non-arrays."""
    if _is_torch(ids):
        ids = ids.detach().cpu().numpy()
    arr = np.asarray(ids)
    if arr.dtype.kind not in "iu":
        raise ValueError(f"{what} must hold integer ids, got dtype {arr.dtype}")
    return arr


# ====================================================================== built-in data
# ADE20K SceneParse150: class names and colours as in the ADE20K toolkit / mmsegmentation `ADE20KDataset` /
# controlnet_aux `ade_palette()`; entry k is raw id k + 1 (raw id 0 is "other", black in ADE20K tools).
_ADE20K_NAMES = (
    "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed", "windowpane", "grass", "cabinet", "sidewalk",
    "person", "earth", "door", "table", "mountain", "plant", "curtain", "chair", "car", "water", "painting", "sofa",
    "shelf", "house", "sea", "mirror", "rug", "field", "armchair", "seat", "fence", "desk", "rock", "wardrobe", "lamp",
    "bathtub", "railing", "cushion", "base", "box", "column", "signboard", "chest of drawers", "counter", "sand",
    "sink", "skyscraper", "fireplace", "refrigerator", "grandstand", "path", "stairs", "runway", "case",
    "pool table", "pillow", "screen door", "stairway", "river", "bridge", "bookcase", "blind", "coffee table",
    "toilet", "flower", "book", "hill", "bench", "countertop", "stove", "palm", "kitchen island", "computer",
    "swivel chair", "boat", "bar", "arcade machine", "hovel", "bus", "towel", "light", "truck", "tower", "chandelier",
    "awning", "streetlight", "booth", "television receiver", "airplane", "dirt track", "apparel", "pole", "land",
    "bannister", "escalator", "ottoman", "bottle", "buffet", "poster", "stage", "van", "ship", "fountain",
    "conveyer belt", "canopy", "washer", "plaything", "swimming pool", "stool", "barrel", "basket", "waterfall",
    "tent", "bag", "minibike", "cradle", "oven", "ball", "food", "step", "tank", "trade name", "microwave", "pot",
    "animal", "bicycle", "lake", "dishwasher", "screen", "blanket", "sculpture", "hood", "sconce", "vase",
    "traffic light", "tray", "ashcan", "fan", "pier", "crt screen", "plate", "monitor", "bulletin board", "shower",
    "radiator", "glass", "clock", "flag",
)  # fmt: skip
_ADE20K_PALETTE = (
    (120, 120, 120), (180, 120, 120), (6, 230, 230), (80, 50, 50), (4, 200, 3), (120, 120, 80),
    (140, 140, 140), (204, 5, 255), (230, 230, 230), (4, 250, 7), (224, 5, 255), (235, 255, 7),
    (150, 5, 61), (120, 120, 70), (8, 255, 51), (255, 6, 82), (143, 255, 140), (204, 255, 4),
    (255, 51, 7), (204, 70, 3), (0, 102, 200), (61, 230, 250), (255, 6, 51), (11, 102, 255),
    (255, 7, 71), (255, 9, 224), (9, 7, 230), (220, 220, 220), (255, 9, 92), (112, 9, 255),
    (8, 255, 214), (7, 255, 224), (255, 184, 6), (10, 255, 71), (255, 41, 10), (7, 255, 255),
    (224, 255, 8), (102, 8, 255), (255, 61, 6), (255, 194, 7), (255, 122, 8), (0, 255, 20),
    (255, 8, 41), (255, 5, 153), (6, 51, 255), (235, 12, 255), (160, 150, 20), (0, 163, 255),
    (140, 140, 140), (250, 10, 15), (20, 255, 0), (31, 255, 0), (255, 31, 0), (255, 224, 0),
    (153, 255, 0), (0, 0, 255), (255, 71, 0), (0, 235, 255), (0, 173, 255), (31, 0, 255),
    (11, 200, 200), (255, 82, 0), (0, 255, 245), (0, 61, 255), (0, 255, 112), (0, 255, 133),
    (255, 0, 0), (255, 163, 0), (255, 102, 0), (194, 255, 0), (0, 143, 255), (51, 255, 0),
    (0, 82, 255), (0, 255, 41), (0, 255, 173), (10, 0, 255), (173, 255, 0), (0, 255, 153),
    (255, 92, 0), (255, 0, 255), (255, 0, 245), (255, 0, 102), (255, 173, 0), (255, 0, 20),
    (255, 184, 184), (0, 31, 255), (0, 255, 61), (0, 71, 255), (255, 0, 204), (0, 255, 194),
    (0, 255, 82), (0, 10, 255), (0, 112, 255), (51, 0, 255), (0, 194, 255), (0, 122, 255),
    (0, 255, 163), (255, 153, 0), (0, 255, 10), (255, 112, 0), (143, 255, 0), (82, 0, 255),
    (163, 255, 0), (255, 235, 0), (8, 184, 170), (133, 0, 255), (0, 255, 92), (184, 0, 255),
    (255, 0, 31), (0, 184, 255), (0, 214, 255), (255, 0, 112), (92, 255, 0), (0, 224, 255),
    (112, 224, 255), (70, 184, 160), (163, 0, 255), (153, 0, 255), (71, 255, 0), (255, 0, 163),
    (255, 204, 0), (255, 0, 143), (0, 255, 235), (133, 255, 0), (255, 0, 235), (245, 0, 255),
    (255, 0, 122), (255, 245, 0), (10, 190, 212), (214, 255, 0), (0, 204, 255), (20, 0, 255),
    (255, 255, 0), (0, 153, 255), (0, 41, 255), (0, 255, 204), (41, 0, 255), (41, 255, 0),
    (173, 0, 255), (0, 245, 255), (71, 0, 255), (122, 0, 255), (0, 255, 184), (0, 92, 255),
    (184, 255, 0), (0, 133, 255), (255, 214, 0), (25, 194, 194), (102, 255, 0), (92, 0, 255),
)  # fmt: skip

# Cityscapes labelIds 0..33 (cityscapesScripts helpers/labels.py): (name, trainId, colour). "license plate" has
# id -1 there (never written to gtFine labelIds PNGs, plates are labelled "car"); SPADE/pix2pixHD use label_nc=35
# and draw id 34 as the licence plate, so it is id 34 here, trainId 255.
_CITYSCAPES = (
    ("unlabeled", 255, (0, 0, 0)), ("ego vehicle", 255, (0, 0, 0)), ("rectification border", 255, (0, 0, 0)),
    ("out of roi", 255, (0, 0, 0)), ("static", 255, (0, 0, 0)), ("dynamic", 255, (111, 74, 0)),
    ("ground", 255, (81, 0, 81)), ("road", 0, (128, 64, 128)), ("sidewalk", 1, (244, 35, 232)),
    ("parking", 255, (250, 170, 160)), ("rail track", 255, (230, 150, 140)), ("building", 2, (70, 70, 70)),
    ("wall", 3, (102, 102, 156)), ("fence", 4, (190, 153, 153)), ("guard rail", 255, (180, 165, 180)),
    ("bridge", 255, (150, 100, 100)), ("tunnel", 255, (150, 120, 90)), ("pole", 5, (153, 153, 153)),
    ("polegroup", 255, (153, 153, 153)), ("traffic light", 6, (250, 170, 30)), ("traffic sign", 7, (220, 220, 0)),
    ("vegetation", 8, (107, 142, 35)), ("terrain", 9, (152, 251, 152)), ("sky", 10, (70, 130, 180)),
    ("person", 11, (220, 20, 60)), ("rider", 12, (255, 0, 0)), ("car", 13, (0, 0, 142)), ("truck", 14, (0, 0, 70)),
    ("bus", 15, (0, 60, 100)), ("caravan", 255, (0, 0, 90)), ("trailer", 255, (0, 0, 110)),
    ("train", 16, (0, 80, 100)), ("motorcycle", 17, (0, 0, 230)), ("bicycle", 18, (119, 11, 32)),
    ("license plate", 255, (0, 0, 142)),
)  # fmt: skip

#: ``CITYSCAPES_LABELID_TO_TRAINID[label_id]`` is the trainId (0..18, 255 = ignored) of a Cityscapes labelId 0..34.
CITYSCAPES_LABELID_TO_TRAINID = np.asarray([t for _, t, _ in _CITYSCAPES], dtype=np.int64)
CITYSCAPES_LABELID_TO_TRAINID.setflags(write=False)

# COCO-Stuff-164k (nightrome/cocostuff labels.txt, ids 1..182): stuffthingmaps store id - 1, so raw id k here is
# labels.txt id k + 1; 255 = unlabeled. The 11 thing ids removed from COCO keep their official names but never occur.
_COCO_STUFF_NAMES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "street sign", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep",
    "cow", "elephant", "bear", "zebra", "giraffe", "hat", "backpack", "umbrella", "shoe", "eye glasses", "handbag",
    "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove",
    "skateboard", "surfboard", "tennis racket", "bottle", "plate", "wine glass", "cup", "fork", "knife", "spoon",
    "bowl", "banana", "apple", "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake",
    "chair", "couch", "potted plant", "bed", "mirror", "dining table", "window", "desk", "toilet", "door", "tv",
    "laptop", "mouse", "remote", "keyboard", "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator",
    "blender", "book", "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush", "hair brush", "banner",
    "blanket", "branch", "bridge", "building-other", "bush", "cabinet", "cage", "cardboard", "carpet",
    "ceiling-other", "ceiling-tile", "cloth", "clothes", "clouds", "counter", "cupboard", "curtain", "desk-stuff",
    "dirt", "door-stuff", "fence", "floor-marble", "floor-other", "floor-stone", "floor-tile", "floor-wood", "flower",
    "fog", "food-other", "fruit", "furniture-other", "grass", "gravel", "ground-other", "hill", "house", "leaves",
    "light", "mat", "metal", "mirror-stuff", "moss", "mountain", "mud", "napkin", "net", "paper", "pavement",
    "pillow", "plant-other", "plastic", "platform", "playingfield", "railing", "railroad", "river", "road", "rock",
    "roof", "rug", "salad", "sand", "sea", "shelf", "sky-other", "skyscraper", "snow", "solid-other", "stairs",
    "stone", "straw", "structural-other", "table", "tent", "textile-other", "towel", "tree", "vegetable",
    "wall-brick", "wall-concrete", "wall-other", "wall-panel", "wall-stone", "wall-tile", "wall-wood", "water-other",
    "waterdrops", "window-blind", "window-other", "wood",
)  # fmt: skip
#: Raw COCO-Stuff ids of the 11 thing classes that were removed from COCO (never present in stuffthingmaps).
COCO_STUFF_UNUSED_IDS = (11, 25, 28, 29, 44, 65, 67, 68, 70, 82, 90)
# The colours SPADE/GauGAN visualise COCO-Stuff with: the VOC colour map of id + 1, except five classes that got
# hand-picked "natural" colours.
_COCO_STUFF_SPECIAL_COLORS = {
    "sea": (54, 62, 167), "sky-other": (95, 219, 255), "tree": (140, 104, 47), "clouds": (170, 170, 170),
    "grass": (29, 195, 49),
}  # fmt: skip

# CelebAMask-HQ, official order (CelebAMask-HQ preprocessing g_mask.py, also SEAN): id k + 1 = _CELEBAMASK_PARTS[k];
# later parts are painted over earlier ones when merging part masks.
_CELEBAMASK_PARTS = (
    "skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "l_ear", "r_ear", "mouth", "u_lip", "l_lip", "hair",
    "hat", "ear_r", "neck_l", "neck", "cloth",
)  # fmt: skip
# Official CelebAMask-HQ visualisation colours, by part name.
_CELEBAMASK_COLORS = {
    "background": (0, 0, 0), "skin": (204, 0, 0), "nose": (76, 153, 0), "eye_g": (204, 204, 0),
    "l_eye": (51, 51, 255), "r_eye": (204, 0, 204), "l_brow": (0, 255, 255), "r_brow": (255, 204, 204),
    "l_ear": (102, 51, 0), "r_ear": (255, 0, 0), "mouth": (102, 204, 0), "u_lip": (255, 255, 0),
    "l_lip": (0, 0, 153), "hair": (0, 0, 204), "hat": (255, 51, 153), "ear_r": (0, 204, 204), "neck_l": (0, 51, 0),
    "neck": (255, 153, 51), "cloth": (0, 204, 0),
}  # fmt: skip
# SEAN's colour maps (its UI and imgs/colormaps) draw r_brow as (51, 255, 255) instead; accepted when decoding.
_CELEBAMASK_ALIAS_COLORS = {"r_brow": (51, 255, 255)}
# CoCosNet's `all_parts_except_glasses` index maps (data/celebahq_dataset.py parts list; checked on its sample maps:
# l_eye/r_eye masks land on 5/6, the top of the head on 2 = hair). eye_g (16) is not in those maps: CoCosNet adds
# the glasses mask as an extra one-hot channel 16.
_CELEBAMASK_COCOSNET_ORDER = (
    "background", "skin", "hair", "l_brow", "r_brow", "l_eye", "r_eye", "l_ear", "r_ear", "nose", "u_lip", "mouth",
    "l_lip", "neck", "cloth", "hat", "eye_g", "ear_r", "neck_l",
)  # fmt: skip

# CMP Facade Database, base set: the PNGs store 1..12 in this order (label_names.txt); here 0-based.
_FACADES_NAMES = (
    "background", "facade", "window", "door", "cornice", "sill", "balcony", "blind", "deco", "molding", "pillar", "shop",
)  # fmt: skip
# A 12-step blue->red "jet" ramp in class order. It reproduces the look of CMP/pix2pix facade label images but is
# not verified byte-exact against the CMP palette PNGs: decode those with a tolerance, or use their P-mode indices.
_FACADES_PALETTE = (
    (0, 0, 170), (0, 0, 255), (0, 85, 255), (0, 170, 255), (0, 255, 255), (85, 255, 170), (170, 255, 85),
    (255, 255, 0), (255, 170, 0), (255, 85, 0), (255, 0, 0), (170, 0, 0),
)  # fmt: skip


def _coco_stuff_palette() -> np.ndarray:
    palette = generate_palette(len(_COCO_STUFF_NAMES))
    for name, color in _COCO_STUFF_SPECIAL_COLORS.items():
        palette[_COCO_STUFF_NAMES.index(name)] = color
    return palette


def _celebamask_space(name: str, order: tuple[str, ...], description: str) -> LabelSpace:
    return LabelSpace(
        name=name,
        names=order,
        palette=np.asarray([_CELEBAMASK_COLORS[n] for n in order]),
        description=description,
        alias_colors={c: order.index(n) for n, c in _CELEBAMASK_ALIAS_COLORS.items()},
    )


_BUILTINS: tuple[tuple[LabelSpace, tuple[str, ...]], ...] = (
    (
        LabelSpace(
            name="ade20k",
            names=("other",) + _ADE20K_NAMES,
            palette=np.asarray(((0, 0, 0),) + _ADE20K_PALETTE),
            description=(
                "ADE20K / SceneParse150 raw annotation ids: 0 = 'other' (not one of the 150 classes), 1..150 = "
                "classes, as SPADE, CoCosNet and OASIS feed them (151 one-hot channels). Palette: the standard ADE20K "
                "150-colour table (mmsegmentation, ControlNet-seg `ade_palette()`), black for 'other'. road (7) and "
                "skyscraper (49) share (140, 140, 140); colour decoding gives road. Hugging Face's 'reduce_labels' "
                "maps (0..149, 255) are these ids minus 1."
            ),
        ),
        ("ade20k-150", "ade", "ade150", "scene-parse-150", "sceneparse150"),
    ),
    (
        LabelSpace(
            name="cityscapes",
            names=tuple(n for n, _, _ in _CITYSCAPES),
            palette=np.asarray([c for _, _, c in _CITYSCAPES]),
            description=(
                "Cityscapes labelIds 0..33 (gtFine *_labelIds.png) plus 34 = 'license plate' (id -1 in "
                "cityscapesScripts, never written to gtFine PNGs), i.e. the 35 ids of SPADE/pix2pixHD "
                "(label_nc 35). Official colours; ids 0-4 are all black, pole/polegroup and car/license plate "
                "share colours: colour decoding gives the lowest id (unlabeled, pole, car)."
            ),
        ),
        ("cityscapes-35", "cityscapes-labelids", "cityscapes-labelid"),
    ),
    (
        LabelSpace(
            name="cityscapes-trainid",
            names=tuple(n for n, t, _ in _CITYSCAPES if t != 255),
            palette=np.asarray([c for _, t, c in _CITYSCAPES if t != 255]),
            ignore_index=255,
            description=(
                "Cityscapes trainIds: the 19 evaluation classes (0 road .. 18 bicycle), 255 = ignored (void and "
                "ignored labelIds). Official colours. Convert labelIds with cityscapes_label_to_trainid()."
            ),
        ),
        ("cityscapes-19", "cityscapes-train", "cityscapes-trainids"),
    ),
    (
        LabelSpace(
            name="coco-stuff",
            names=_COCO_STUFF_NAMES,
            palette=_coco_stuff_palette(),
            ignore_index=255,
            description=(
                "COCO-Stuff-164k stuffthingmaps ids: 0..181 = COCO category id - 1 (0 person .. 90 hair brush are "
                "things, 91 banner .. 181 wood are stuff), 255 = unlabeled (SPADE's don't-care channel). Ids "
                f"{list(COCO_STUFF_UNUSED_IDS)} are thing classes removed from COCO and never occur. Palette: the "
                "colours SPADE/GauGAN draw COCO-Stuff with (PASCAL-VOC colour map of id + 1, hand-picked colours for "
                "sea, sky-other, tree, clouds, grass); unlabeled is black."
            ),
        ),
        ("cocostuff", "coco-stuff-182", "coco-stuff-164k", "coco"),
    ),
    (
        _celebamask_space(
            "celebamask-hq",
            ("background",) + _CELEBAMASK_PARTS,
            "CelebAMask-HQ 19 classes in the official order (CelebAMask-HQ preprocessing, SEAN): 0 background, "
            "1 skin, 2 nose, 3 eye_g, 4 l_eye, 5 r_eye, 6 l_brow, 7 r_brow, 8 l_ear, 9 r_ear, 10 mouth, 11 u_lip, "
            "12 l_lip, 13 hair, 14 hat, 15 ear_r, 16 neck_l, 17 neck, 18 cloth. Official CelebAMask-HQ colours; "
            "SEAN's r_brow colour (51, 255, 255) also decodes to 7.",
        ),
        ("celebamask-hq-sean", "celebamask", "celeba-hq", "celebamaskhq"),
    ),
    (
        _celebamask_space(
            "celebamask-hq-cocosnet",
            _CELEBAMASK_COCOSNET_ORDER,
            "CelebAMask-HQ 19 classes in CoCosNet's order (its all_parts_except_glasses maps): 0 background, 1 skin, "
            "2 hair, 3 l_brow, 4 r_brow, 5 l_eye, 6 r_eye, 7 l_ear, 8 r_ear, 9 nose, 10 u_lip, 11 mouth, 12 l_lip, "
            "13 neck, 14 cloth, 15 hat, 16 eye_g, 17 ear_r, 18 neck_l. CoCosNet reads glasses from the separate "
            "eye_g mask into one-hot channel 16 on top of the other parts; an index map cannot hold that overlap, "
            "so here eye_g pixels are 16. Colours follow the part names (same as 'celebamask-hq'). Convert with "
            "convert_celebamask_order().",
        ),
        ("celebahq-cocosnet", "cocosnet-celebahq"),
    ),
    (
        LabelSpace(
            name="facades",
            names=_FACADES_NAMES,
            palette=np.asarray(_FACADES_PALETTE),
            description=(
                "CMP Facade Database base set, 12 classes, 0-based: the CMP PNGs store 1..12 (subtract 1). pix2pix "
                "trains on colour renderings of those maps; the palette here is a 12-step jet ramp in class order "
                "that mimics them (not verified byte-exact)."
            ),
        ),
        ("cmp-facades", "cmp-facade", "facade"),
    ),
)

# ====================================================================== registry
_REGISTRY: dict[str, LabelSpace] = {}
_ALIASES: dict[str, str] = {}


def _key(name: str) -> str:
    return re.sub(r"[\s_]+", "-", name.strip().lower())


def register_label_space(space: LabelSpace, *, aliases: Iterable[str] = (), overwrite: bool = False) -> None:
    """Make ``space`` available to `get_label_space` under ``space.name`` and ``aliases`` (case-insensitive).

    Raises:
        ValueError: if a name is taken by a different space and ``overwrite`` is False.
    """
    key = _key(space.name)
    for alias in (space.name, *aliases):
        taken = _ALIASES.get(_key(alias))
        if taken is not None and taken != key and not overwrite:
            raise ValueError(f"label-space name {alias!r} already refers to {taken!r}; pass overwrite=True to replace")
    if key in _REGISTRY and _REGISTRY[key] != space and not overwrite:
        raise ValueError(f"a different label space {space.name!r} is already registered; pass overwrite=True")
    _REGISTRY[key] = space
    for alias in (space.name, *aliases):
        _ALIASES[_key(alias)] = key


def list_label_spaces() -> list[str]:
    """Names of all registered label spaces (aliases not included), sorted."""
    return sorted(s.name for s in _REGISTRY.values())


def get_label_space(space: str | Mapping[str, Any] | LabelSpace) -> LabelSpace:
    """Resolve a label space given as a registered name/alias, a `LabelSpace.to_dict` dict, or a `LabelSpace`.

    Raises:
        ValueError: for unknown names (listing the known ones) and malformed dicts.
    """
    if isinstance(space, LabelSpace):
        return space
    if isinstance(space, Mapping):
        return LabelSpace.from_dict(space)
    if isinstance(space, str):
        key = _ALIASES.get(_key(space))
        if key is None:
            aliases = sorted(a for a, k in _ALIASES.items() if a != k)
            raise ValueError(
                f"unknown label space {space!r}; known: {', '.join(list_label_spaces())} "
                f"(aliases: {', '.join(aliases)}). Register your own with register_label_space(LabelSpace.custom(...))"
            )
        return _REGISTRY[key]
    raise ValueError(
        f"label_space must be a name, a dict from LabelSpace.to_dict() or a LabelSpace, got {type(space).__name__}"
    )


for _space, _aliases in _BUILTINS:
    register_label_space(_space, aliases=_aliases)


# ====================================================================== dataset helpers
def _remap(ids: Any, lut: np.ndarray) -> Any:
    """Apply a lookup table to numpy / torch ids, keeping the container type (and device for torch)."""
    if _is_torch(ids):
        import torch

        return torch.tensor(lut, device=ids.device)[ids.long()]
    return lut[np.asarray(ids)]


def cityscapes_label_to_trainid(ids: Any) -> Any:
    """Map Cityscapes labelIds (0..34, see the ``"cityscapes"`` space) to trainIds (0..18, 255 = ignored).

    Args:
        ids: Integer numpy array or torch tensor, any shape.

    Returns:
        Same container type and shape, int64.
    """
    get_label_space("cityscapes").validate(ids)
    return _remap(ids, CITYSCAPES_LABELID_TO_TRAINID)


def convert_celebamask_order(
    ids: Any,
    src: str | LabelSpace = "celebamask-hq-cocosnet",
    dst: str | LabelSpace = "celebamask-hq",
) -> Any:
    """Renumber a CelebAMask-HQ label map from one class order to another, matching classes by name.

    Args:
        ids: Integer numpy array or torch tensor in ``src`` order, any shape.
        src, dst: The two orders, e.g. ``"celebamask-hq-cocosnet"`` and ``"celebamask-hq"`` (any two spaces with the
            same class names work).

    Returns:
        Same container type and shape, int64, in ``dst`` order.
    """
    src, dst = get_label_space(src), get_label_space(dst)
    if set(src.names) != set(dst.names):
        raise ValueError(
            f"label spaces {src.name!r} and {dst.name!r} do not have the same class names, so ids cannot be "
            f"matched by name (only in {src.name!r}: {sorted(set(src.names) - set(dst.names))}; only in "
            f"{dst.name!r}: {sorted(set(dst.names) - set(src.names))})"
        )
    src.validate(ids, allow_ignore=False)
    lut = np.asarray([dst.label2id[n] for n in src.names], dtype=np.int64)
    return _remap(ids, lut)


def merge_part_masks(part_masks: Mapping[str, Any], space: str | LabelSpace = "celebamask-hq") -> np.ndarray:
    """Merge CelebAMask-HQ per-part binary masks into one index map.

    Parts are painted in the official CelebAMask-HQ order (skin, nose, eye_g, l_eye, r_eye, l_brow, r_brow, l_ear,
    r_ear, mouth, u_lip, l_lip, hair, hat, ear_r, neck_l, neck, cloth): a later part overwrites an earlier one where
    they overlap, as the official preprocessing does. Unpainted pixels are background (0).

    Args:
        part_masks: ``{part name: mask}``, masks ``(H, W)`` or ``(H, W, 3)`` (the released RGB 0/255 PNGs; the first
            channel is used), non-zero = part. Any subset of the 18 parts; PIL images are accepted.
        space: Target class order: ``"celebamask-hq"`` (official) or ``"celebamask-hq-cocosnet"``.

    Returns:
        `np.ndarray` int64 ``(H, W)`` with the ids of ``space``.
    """
    space = get_label_space(space)
    unknown = sorted(set(part_masks) - set(_CELEBAMASK_PARTS))
    if unknown:
        raise ValueError(f"unknown CelebAMask-HQ part names {unknown}; valid parts: {', '.join(_CELEBAMASK_PARTS)}")
    missing = sorted(set(part_masks) - set(space.names))
    if missing:
        raise ValueError(f"label space {space.name!r} has no classes {missing}; use a CelebAMask-HQ label space")
    if not part_masks:
        raise ValueError("no part masks given")
    masks = {}
    for part in _CELEBAMASK_PARTS:  # official painting order
        if part in part_masks:
            mask = np.asarray(part_masks[part])
            if mask.ndim not in (2, 3):
                raise ValueError(f"mask {part!r} must be (H, W) or (H, W, 3), got shape {mask.shape}")
            masks[part] = mask[..., 0] if mask.ndim == 3 else mask
    shapes = {m.shape for m in masks.values()}
    if len(shapes) > 1:
        raise ValueError(f"part masks have different shapes {sorted(shapes)}; resize them to one size first")
    out = np.zeros(shapes.pop(), dtype=np.int64)
    for part, mask in masks.items():
        out[mask != 0] = space.label2id[part]
    return out
