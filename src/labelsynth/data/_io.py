"""Decoding and encoding helpers shared by the data adapters, the folder layouts and the paired transforms.

Everything here turns one *cell* of a dataset row (a PIL image, a numpy array, a file path, or a ``datasets`` image
dict ``{"bytes": ..., "path": ...}``) into the representation the rest of ``labelsynth.data`` works with:

* images -> RGB `PIL.Image.Image`;
* label maps -> int64 ``(H, W)`` arrays of ids in a `LabelSpace` (index images are read as they are; colour-coded
  RGB images are decoded with `LabelSpace.encode_colors`);
* instance maps -> int64 ``(H, W)`` arrays (8/16/32-bit, values kept exactly).

This module imports neither ``datasets`` nor ``torch`` (tensors are accepted duck-typed).
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import PIL.Image

from ..label_spaces import LabelSpace, decode_color_label

__all__ = [
    "UnreadableImageError",
    "check_image_file",
    "decode_image",
    "decode_instance",
    "decode_label",
    "encode_index_map",
    "is_color_label",
    "open_image_file",
    "row_name",
]

# PIL modes whose pixel values are ids (P: the palette indices are the ids, the palette colours are ignored).
INDEX_MODES = ("L", "P", "I", "I;16", "I;16L", "I;16B", "I;16N", "F")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


class UnreadableImageError(ValueError):
    """An image file that Pillow cannot decode: corrupt, truncated, not an image, or over the decoded-pixel limit."""


def open_image_file(source: Any, what: str) -> PIL.Image.Image:
    """Open and fully decode one image file (path or file object), refusing images over Pillow's decoded-pixel
    limit ``PIL.Image.MAX_IMAGE_PIXELS`` before decoding them, and turning Pillow's errors into one message.

    Raises:
        UnreadableImageError: corrupt, truncated, not an image, or over the pixel limit; messages start with ``what``.
    """
    limit = PIL.Image.MAX_IMAGE_PIXELS  # read at call time: users may raise it for trusted files
    image = None
    try:
        with warnings.catch_warnings():
            # Pillow only warns between 1x and 2x the limit; we refuse from 1x, with a message of our own below.
            warnings.simplefilter("ignore", PIL.Image.DecompressionBombWarning)
            image = PIL.Image.open(source)
        if limit is not None and image.width * image.height > limit:
            raise PIL.Image.DecompressionBombError(f"{image.width}x{image.height} pixels")
        image.load()
    except PIL.Image.DecompressionBombError:
        size = (
            f"{image.width}x{image.height} = {image.width * image.height} pixels"
            if image is not None
            else "more than twice that many pixels"
        )
        raise UnreadableImageError(
            f"{what} is too large to decode ({size}, over the decoded-pixel limit PIL.Image.MAX_IMAGE_PIXELS = "
            f"{limit}, which guards against decompression bombs); raise PIL.Image.MAX_IMAGE_PIXELS only if you "
            "trust the file"
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError) as err:  # UnidentifiedImageError is an OSError
        raise UnreadableImageError(f"{what} cannot be decoded (corrupt, truncated or not an image: {err})") from None
    return image


def check_image_file(path: str | os.PathLike, *, what: str | None = None) -> tuple[int, int]:
    """Decode an image file fully (bounded by ``PIL.Image.MAX_IMAGE_PIXELS``) and return its ``(height, width)``.

    Raises:
        UnreadableImageError: corrupt, truncated, not an image, or over the pixel limit; the message names the file.
    """
    what = what or f"image file {os.fspath(path)!r}"
    with open_image_file(path, what) as image:
        return image.height, image.width


def _open(value: Any, what: str) -> Any:
    """Open paths and ``datasets`` image dicts; pass everything else through."""
    if isinstance(value, Mapping) and ("bytes" in value or "path" in value):
        if value.get("bytes") is not None:
            return open_image_file(io.BytesIO(value["bytes"]), what)
        value = value.get("path")
        if value is None:
            raise ValueError(f"{what}: the image dict holds neither bytes nor a path")
    if isinstance(value, (str, os.PathLike)):
        if not os.path.isfile(value):
            raise ValueError(f"{what}: file {os.fspath(value)!r} does not exist")
        return open_image_file(value, what if os.fspath(value) in what else f"{what} ({os.fspath(value)!r})")
    return value


def _to_numpy(value: Any) -> Any:
    if type(value).__module__.startswith("torch"):
        return value.detach().cpu().numpy()
    if isinstance(value, (list, tuple)):
        return np.asarray(value)
    return value


def _integral(arr: np.ndarray, what: str) -> np.ndarray:
    if arr.size == 0:
        raise ValueError(f"{what} is empty (shape {arr.shape})")
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all() or not np.array_equal(arr, np.round(arr)):
            raise ValueError(f"{what} holds non-integer values; label and instance maps must hold integer ids")
    elif arr.dtype.kind not in "iu":
        raise ValueError(f"{what} has dtype {arr.dtype}; label and instance maps must hold integer ids")
    return arr.astype(np.int64)


def is_color_label(value: Any) -> bool:
    """Whether a label cell is colour-coded (an RGB/RGBA image or a uint8 ``(H, W, 3|4)`` array)."""
    if isinstance(value, PIL.Image.Image):
        return value.mode in ("RGB", "RGBA", "RGBX")
    arr = _to_numpy(value)
    return isinstance(arr, np.ndarray) and arr.ndim == 3 and arr.shape[-1] in (3, 4)


def decode_label(
    value: Any, label_space: LabelSpace | None = None, *, what: str = "label", color_tolerance: float = 0.0
) -> np.ndarray:
    """One label cell -> int64 ``(H, W)`` ids.

    Index images (PIL ``L``/``P``/``I;16``/``I``/integral ``F``, 2-D integer arrays) are taken as they are.
    Colour-coded images (``RGB``/``RGBA``, ``(H, W, 3)`` uint8 arrays) are decoded with ``label_space``'s palette
    (exactly, or within ``color_tolerance``); an RGB image whose channels are all equal is a grey index map saved as
    RGB, unless every grey level in it is a palette colour. No range check here: call `LabelSpace.validate`.

    Raises:
        ValueError: for missing files, unsupported modes, colour images without a label space with a palette, and
        colours outside the palette; messages start with ``what``.
    """
    value = _to_numpy(_open(value, what))
    if isinstance(value, PIL.Image.Image):
        mode = value.mode
        if mode in ("LA", "PA"):
            value, mode = value.getchannel(0), mode[0]
        if mode in INDEX_MODES:
            return _integral(np.asarray(value), what)
        if mode in ("RGB", "RGBA", "RGBX"):
            value = np.asarray(value.convert("RGB"))
        elif mode == "1":
            raise ValueError(
                f"{what} is a 1-bit (mode '1') binary mask; a label map needs class ids: save it as mode L with the "
                "class ids (CelebAMask-HQ part masks: use the 'celebamask-hq' layout, which merges them)"
            )
        else:
            raise ValueError(
                f"{what} has PIL mode {mode!r}; label maps must be index images (L, P, I;16, I) or colour-coded RGB"
            )
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{what}: unsupported label of type {type(value).__name__}; give a PIL image, array or path")
    if value.ndim == 3 and value.shape[-1] in (3, 4):
        rgb = value[..., :3]
        if rgb.dtype != np.uint8:
            rgb = _integral(rgb, what)
            if rgb.size and (rgb.min() < 0 or rgb.max() > 255):
                raise ValueError(f"{what}: colour label values must be 0..255, got {rgb.min()}..{rgb.max()}")
            rgb = rgb.astype(np.uint8)
        return decode_color_label(rgb, label_space, what=what, tolerance=color_tolerance,
                                  hint=" (data: pass color_tolerance=... to snap near colours)")
    if value.ndim == 3 and value.shape[0] == 1:
        value = value[0]
    if value.ndim != 2:
        raise ValueError(f"{what}: array of shape {value.shape}; a label map must be (H, W) ids or (H, W, 3) colours")
    return _integral(value, what)


def decode_instance(value: Any, *, what: str = "instance map") -> np.ndarray:
    """One instance cell -> int64 ``(H, W)`` (8/16/32-bit values kept exactly; grey RGB accepted)."""
    value = _to_numpy(_open(value, what))
    if isinstance(value, PIL.Image.Image):
        if value.mode in INDEX_MODES:
            return _integral(np.asarray(value), what)
        if value.mode == "RGB":
            value = np.asarray(value)
        else:
            raise ValueError(
                f"{what} has PIL mode {value.mode!r}; instance maps must be single-channel integer images (L, I;16, I)"
            )
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{what}: unsupported instance map of type {type(value).__name__}")
    if value.ndim == 3 and value.shape[-1] == 3:
        if not (np.array_equal(value[..., 0], value[..., 1]) and np.array_equal(value[..., 0], value[..., 2])):
            raise ValueError(f"{what} is a colour image; instance maps must be single-channel integer maps")
        value = value[..., 0]
    if value.ndim == 3 and value.shape[0] == 1:
        value = value[0]
    if value.ndim != 2:
        raise ValueError(f"{what}: array of shape {value.shape}; an instance map must be (H, W)")
    return _integral(value, what)


def decode_image(value: Any, *, what: str = "image") -> PIL.Image.Image:
    """One image cell -> RGB `PIL.Image.Image` (uint8 arrays ``(H, W, 3)`` / ``(H, W)`` accepted)."""
    value = _open(value, what)
    if isinstance(value, PIL.Image.Image):
        return value if value.mode == "RGB" else value.convert("RGB")
    arr = _to_numpy(value)
    if isinstance(arr, np.ndarray) and arr.dtype == np.uint8 and (arr.ndim == 2 or arr.shape[-1] in (3, 4)):
        return PIL.Image.fromarray(arr).convert("RGB")
    raise ValueError(f"{what}: unsupported image of type {type(value).__name__}; give a PIL image, path or uint8 array")


def encode_index_map(arr: np.ndarray, path: str | None = None) -> dict[str, Any]:
    """int ids -> a ``datasets`` image dict holding a lossless index image.

    8-bit ``L`` PNG when all values are in 0..255, 16-bit PNG (decoded as ``I;16``) up to 65535, else a 32-bit
    TIFF (mode ``I``). ``path`` is only a name kept in the dict.
    """
    arr = np.asarray(arr)
    lo, hi = (int(arr.min()), int(arr.max())) if arr.size else (0, 0)
    buffer = io.BytesIO()
    if lo >= 0 and hi <= 255:
        PIL.Image.fromarray(arr.astype(np.uint8), mode="L").save(buffer, format="PNG")
    elif lo >= 0 and hi <= 65535:
        PIL.Image.fromarray(arr.astype(np.uint16)).save(buffer, format="PNG")
    else:
        if lo < -(2**31) or hi >= 2**31:
            raise ValueError(f"ids {lo}..{hi} do not fit a 32-bit index image")
        PIL.Image.fromarray(arr.astype(np.int32)).save(buffer, format="TIFF")
    return {"bytes": buffer.getvalue(), "path": path}


def row_name(row: Mapping[str, Any], index: int | None = None) -> str:
    """A human name for a row in error messages: its ``image_id``, else its label/image file name, else its index."""
    parts = []
    image_id = row.get("image_id")
    if image_id not in (None, ""):
        parts.append(f"image_id {image_id!r}")
    for key in ("label", "image"):
        cell = row.get(key)
        name = getattr(cell, "filename", None) or (cell.get("path") if isinstance(cell, Mapping) else None)
        if isinstance(cell, (str, os.PathLike)):
            name = os.fspath(cell)
        if name:
            parts.append(f"{key} file {name!r}")
            break
    head = "row" if index is None else f"row {index}"
    return f"{head} ({', '.join(parts)})" if parts else head
