"""Painting label maps with a label space's palette: brush classes, canvas -> ids with snapping, legends, limits.

Pure numpy (no Gradio), so every rule here is unit-tested without a browser:

- `brush_classes`: one brush per palette colour. Several ids can share a colour (Cityscapes' black void classes,
  pole/polegroup); a painted colour decodes to the lowest of them, so only that id gets a brush.
- `canvas_to_label_map`: browser brushes anti-alias stroke edges, so a canvas holds blends of two palette colours
  besides the colours themselves. Exact palette colours decode directly; every other pixel takes the nearest colour
  *among those present exactly on the canvas* (a blend lies between the two colours it mixes, and restricting the
  candidates keeps it from snapping to a third class that happens to be close in RGB).
- `painted_instance_map`: a painted map has no instance ids; regions that still show the example it started from
  keep the example's instance ids, painted pixels count as one instance per class.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import numpy as np

from ..label_spaces import LabelSpace

__all__ = [
    "BrushClass",
    "brush_classes",
    "canvas_to_label_map",
    "check_image_size",
    "legend_html",
    "painted_instance_map",
    "size_limit_text",
    "to_hex",
]

# Above this many exactly-present colours, snapping falls back to the whole palette (a canvas that is not painted
# with a few brushes, e.g. a photo uploaded as background).
_MAX_PRESENT_COLORS = 64
_NEAREST_CHUNK = 1 << 15  # rows of colours compared at once against the candidate colours


@dataclass(frozen=True)
class BrushClass:
    """A paintable class: its label id, name and colour (``"#rrggbb"``)."""

    id: int
    name: str
    color: str

    @property
    def title(self) -> str:
        """Drop-down text, e.g. ``"26 car"``."""
        return f"{self.id} {self.name}"


def to_hex(rgb: tuple[int, int, int] | np.ndarray) -> str:
    """``(r, g, b)`` -> ``"#rrggbb"``."""
    r, g, b = (int(c) for c in rgb)
    return f"#{r:02x}{g:02x}{b:02x}"


def brush_classes(space: LabelSpace) -> list[BrushClass]:
    """One brush per distinct palette colour, for the lowest id that uses it (the id the colour decodes to).

    Raises:
        ValueError: the label space has no palette (nothing to paint with).
    """
    if space.palette is None:
        raise ValueError(
            f"label space {space.name!r} has no palette, so its label maps cannot be painted; upload index maps instead"
        )
    seen: set[tuple[int, ...]] = set()
    brushes = []
    for i, color in enumerate(space.palette.tolist()):
        if tuple(color) not in seen:
            seen.add(tuple(color))
            brushes.append(BrushClass(i, space.names[i], to_hex(color)))
    return brushes


def _nearest(colors: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Index into `candidates` (K, 3) of the nearest RGB colour of each of `colors` (N, 3) (ties: first).

    Works in row chunks so that memory stays O(chunk * K), whatever N (a canvas of random colours has N ~ H * W).
    """
    candidates = candidates.astype(np.int32)
    out = np.empty(len(colors), dtype=np.int64)
    for start in range(0, len(colors), _NEAREST_CHUNK):
        chunk = colors[start:start + _NEAREST_CHUNK].astype(np.int32)
        d2 = np.zeros((len(chunk), len(candidates)), dtype=np.int32)  # at most 3 * 255**2: fits int32
        for channel in range(3):
            d2 += (chunk[:, None, channel] - candidates[None, :, channel]) ** 2
        out[start:start + len(chunk)] = d2.argmin(1)
    return out


def canvas_to_label_map(canvas: np.ndarray, space: LabelSpace, reference: np.ndarray | None = None) -> np.ndarray:
    """Decode a painted canvas to label ids, snapping anti-aliased colours (see the module docstring).

    Args:
        canvas: uint8 ``(H, W, 3)`` or ``(H, W, 4)`` (alpha is ignored: the editor's background is opaque).
        space: The label space whose palette was used to paint.
        reference: int ``(H, W)`` ids of the map the canvas started from (an example or upload), or None. Where
            the canvas still shows the reference's colour, the reference id is kept, so ids that share a colour
            (Cityscapes pole/polegroup) survive the round trip; a reference of another size is ignored.

    Returns:
        int64 ``(H, W)`` label ids (the ignore value where the label space's ignore colour was painted).

    Raises:
        ValueError: the canvas is not an RGB(A) uint8 image, or the label space has no palette.
    """
    canvas = np.asarray(canvas)
    if canvas.ndim != 3 or canvas.shape[-1] not in (3, 4) or canvas.dtype != np.uint8:
        raise ValueError(f"the painted canvas must be a uint8 (H, W, 3) or (H, W, 4) image, got {canvas.dtype} "
                         f"{canvas.shape}")
    if space.palette is None:
        raise ValueError(f"label space {space.name!r} has no palette; painted canvases cannot be decoded")
    rgb = np.ascontiguousarray(canvas[..., :3])
    flat = rgb.reshape(-1, 3)
    exact = space.contains_colors(flat)
    ids = np.empty(len(flat), dtype=np.int64)
    if exact.any():
        ids[exact] = space.encode_colors(flat[exact])
    if exact.all():
        return _keep_reference(ids.reshape(rgb.shape[:2]), rgb, space, reference)

    present, counts = np.unique(flat[exact], axis=0, return_counts=True)
    if len(present) == 0 or len(present) > _MAX_PRESENT_COLORS:
        present = np.unique(space.palette, axis=0)
    else:
        present = present[np.argsort(-counts, kind="stable")]  # ties go to the colour covering more pixels
    # Unique off-palette colours via packed 24-bit keys (a 1-D unique; np.unique(axis=0) is far slower and larger).
    off_rgb = flat[~exact].astype(np.int32)
    keys, inverse = np.unique((off_rgb[:, 0] << 16) | (off_rgb[:, 1] << 8) | off_rgb[:, 2], return_inverse=True)
    del off_rgb
    off = np.stack([keys >> 16, (keys >> 8) & 255, keys & 255], axis=1).astype(np.uint8)
    snapped = present[_nearest(off, present)]
    ids[~exact] = space.encode_colors(snapped)[inverse.reshape(-1)]
    return _keep_reference(ids.reshape(rgb.shape[:2]), rgb, space, reference)


def _keep_reference(ids: np.ndarray, rgb: np.ndarray, space: LabelSpace, reference: np.ndarray | None) -> np.ndarray:
    if reference is None or np.shape(reference) != ids.shape:
        return ids
    reference = np.asarray(reference, dtype=np.int64)
    unchanged = (rgb == space.colorize(reference)).all(-1)
    return np.where(unchanged, reference, ids)


def painted_instance_map(
    label_map: np.ndarray, reference_label: np.ndarray | None = None, reference_instance: np.ndarray | None = None
) -> np.ndarray:
    """Instance ids for a painted label map.

    Where the painted map still equals the reference (the example it was painted over), the reference's instance
    ids are kept; elsewhere the label id itself is the instance id (one instance per class, the rule the CLI
    suggests for maps without instances).

    Args:
        label_map: int ``(H, W)`` painted label ids.
        reference_label, reference_instance: int ``(H, W)`` maps of the example the canvas started from, or None.

    Returns:
        int64 ``(H, W)`` instance ids.
    """
    label_map = np.asarray(label_map, dtype=np.int64)
    if reference_label is None or reference_instance is None:
        return label_map.copy()
    reference_label, reference_instance = np.asarray(reference_label), np.asarray(reference_instance)
    if reference_label.shape != label_map.shape or reference_instance.shape != label_map.shape:
        return label_map.copy()
    return np.where(label_map == reference_label, reference_instance.astype(np.int64), label_map)


def size_limit_text(max_pixels: int) -> str:
    """The demo's pixel limit and what to do about it, as the end of a refusal message."""
    side = int(max_pixels**0.5)
    return (
        f"this demo accepts at most {max_pixels / 1e6:.1f} megapixels (e.g. {side}x{side}). Downscale it first "
        "(nearest-neighbour for label and instance maps, so that ids are not blended); the model works at its own "
        "resolution anyway."
    )


def check_image_size(width: int, height: int, max_pixels: int, what: str) -> None:
    """Refuse images larger than `max_pixels` (before decoding them) with a message that says what to do.

    Raises:
        ValueError: ``width * height > max_pixels`` or an empty image.
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"the {what} is empty ({width}x{height}); upload an image with at least one pixel")
    if width * height > max_pixels:
        raise ValueError(
            f"the {what} is {width}x{height} ({width * height / 1e6:.1f} megapixels); {size_limit_text(max_pixels)}"
        )


def legend_html(brushes: list[BrushClass], space: LabelSpace) -> str:
    """An HTML legend of the brush colours with ids and names (ids sharing a colour are named with it)."""
    aliases: dict[int, list[str]] = {}
    for ids in space.duplicate_colors.values():
        aliases[ids[0]] = [space.names[i] for i in ids[1:]]
    items = []
    for brush in brushes:
        extra = f" (also: {', '.join(aliases[brush.id])})" if aliases.get(brush.id) else ""
        items.append(
            f'<span class="ls-swatch" style="display:inline-flex;align-items:center;margin:2px 8px 2px 0">'
            f'<span style="display:inline-block;width:14px;height:14px;margin-right:4px;border:1px solid #888;'
            f'background:{brush.color}"></span>{brush.id} {html.escape(brush.name + extra)}</span>'
        )
    return '<div class="ls-legend" style="line-height:1.6">' + "".join(items) + "</div>"
