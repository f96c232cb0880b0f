"""`LabelMapProcessor`: turns whatever a user has into validated label-map tensors, and model outputs into images.

Everything enters the library here, once: index PNGs, palette (``P``) PNGs, colour-coded PNGs, 16/32-bit instance
PNGs, numpy arrays, torch tensors, painted canvases. Out come ``label_map`` (``LongTensor[B, H, W]`` of raw ids of
the processor's label space), optionally ``instance_map`` (``LongTensor[B, H, W]``) and ``style_image``
(``FloatTensor[B, 3, H, W]`` in ``[-1, 1]``). Every bad input raises a ``ValueError`` that names the problem and the
fix, before anything reaches torch.

**Label-map forms.** PIL mode ``L``, ``P`` (the palette indices *are* the ids; the palette colours are ignored),
``I;16``, ``I`` and integral ``F`` images are index maps. ``RGB``/``RGBA`` images and uint8 ``(H, W, 3)`` arrays are
colour-coded and decoded through the label-space palette (exactly, or within ``color_tolerance``; alpha is ignored).
An RGB image whose three channels are identical is a grey index map saved as RGB -- unless every grey level in it is
a palette colour (ADE20K and COCO-Stuff have a few grey classes), in which case it is decoded as colours. Float
arrays are accepted when every value is an integer. Label maps must be lossless: a JPEG file read as an index map is
refused (JPEG changes ids at every edge); colour-coded JPEGs need ``color_tolerance``.

**Array shapes.** One label map is an integer array/tensor ``(H, W)``, ``(1, H, W)``, ``(H, W, 1)`` or
``(1, 1, H, W)``, or a uint8 ``(H, W, 3/4)`` colour image. A batch is a *list* of maps (the pipeline and the CLI take
only that form: one input, one image). The processor API also takes an explicit ``(B, H, W)`` / ``(B, 1, H, W)``
integer batch; a 3-D array whose last axis is 2..4 but is not uint8 could be either ``(H, W, C)`` or a batch of
2-4 thin maps, so it is refused with the fix.

**Limits.** Every input (file header, PIL image, array) may hold at most `MAX_INPUT_PIXELS` pixels per map, checked
before decoding, and one call's output batch at most `MAX_INPUT_PIXELS` pixels in all. Unreadable, truncated and
non-image files raise a ``ValueError`` that names the file.

**Resizing.** Label and instance maps are resized with nearest-neighbour *index arithmetic* (no interpolation, no
float round trip, so 32-bit instance ids survive). The source pixel of output pixel ``x`` is PIL's choice for
``Image.NEAREST`` on 8/32-bit images (``floor`` of a running sum that starts at ``scale / 2`` and adds
``scale = in / out`` per pixel, i.e. pixel centres, like torch's ``nearest-exact``; torch's plain ``nearest`` samples
``floor(x * scale)``, half a pixel off), so maps resized here equal what the original SPADE/pix2pixHD loaders got
from PIL. (PIL computes ``I;16`` images with a direct product that can pick the neighbouring pixel at exact
half-pixel ties; label and instance maps use one convention here so their edges stay aligned.) Style images are
resized by PIL (bicubic by default) and scaled to ``[-1, 1]``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, ClassVar

import numpy as np
import PIL.Image
import torch
from transformers.image_processing_utils import BaseImageProcessor, BatchFeature
from transformers.processing_utils import ImagesKwargs

from .hub.resolve import resolve_model
from .label_spaces import LabelSpace, decode_color_label, get_label_space

__all__ = ["LabelMapProcessor"]

_RESIZE_MODES = ("fixed", "keep_aspect", "none")
_OUTPUT_TYPES = ("pil", "np", "pt")
_INDEX_MODES = ("L", "P", "I", "I;16", "I;16L", "I;16B", "I;16N", "F")
# Largest decoded map (or output batch), in pixels: 8192x8192, 512 MiB as int64 ids. Bounds memory for any input.
MAX_INPUT_PIXELS = 8192 * 8192


def _check_pixels(count: int, what: str, detail: str) -> None:
    """Refuse an input (or batch) of more than `MAX_INPUT_PIXELS` pixels, before it is decoded or allocated."""
    if count > MAX_INPUT_PIXELS:
        raise ValueError(f"{what} is too large: {detail} = {count} pixels, more than the limit of {MAX_INPUT_PIXELS} "
                         "(MAX_INPUT_PIXELS, 8192x8192); downscale it first (label maps: with nearest-neighbour)")


class LabelMapProcessorKwargs(ImagesKwargs, total=False):
    """Options of `LabelMapProcessor` beyond the standard image-processor ones (used by ``from_pretrained``)."""

    label_space: str | dict | None
    resize_mode: str | None
    color_tolerance: float | None
    image_resample: int | str | None


@lru_cache(maxsize=256)
def _nearest_index(n_in: int, n_out: int) -> np.ndarray:
    """Source index of each of ``n_out`` output pixels, as PIL ``Image.NEAREST`` picks it for 8/32-bit images."""
    scale = n_in / n_out
    # np.cumsum adds sequentially in float64 like PIL's C loop, so ties at exact half pixels fall the same way.
    coords = np.cumsum(np.concatenate([[scale * 0.5], np.full(n_out - 1, scale)]))
    index = np.minimum(coords.astype(np.int64), n_in - 1)
    index.setflags(write=False)
    return index


def _fmt_size(hw: tuple[int, int]) -> str:
    return f"{hw[1]}x{hw[0]}"


def _resample(value: Any) -> int:
    if isinstance(value, str):
        try:
            return int(PIL.Image.Resampling[value.upper()])
        except KeyError:
            names = ", ".join(r.name.lower() for r in PIL.Image.Resampling)
            raise ValueError(f"unknown image_resample {value!r}; use one of {names}") from None
    return int(PIL.Image.Resampling(int(value)))


def _size_dict(size: Any) -> dict[str, int]:
    if isinstance(size, int) and not isinstance(size, bool):
        h = w = size
    elif isinstance(size, dict) and set(size) == {"height", "width"}:
        h, w = size["height"], size["width"]
    elif isinstance(size, Sequence) and len(size) == 2:
        h, w = size
    else:
        raise ValueError(f"size must be an int, (height, width) or {{'height': h, 'width': w}}, got {size!r}")
    if not all(isinstance(v, (int, np.integer)) and v > 0 for v in (h, w)):
        raise ValueError(f"size must hold positive ints, got {size!r}")
    from .configuration_utils import MAX_IMAGE_SIDE  # the largest image_size a model accepts

    if max(h, w) > MAX_IMAGE_SIDE:
        raise ValueError(f"size must be at most {MAX_IMAGE_SIDE} pixels per side (as a model's image_size), "
                         f"got height={h}, width={w}")
    return {"height": int(h), "width": int(w)}


def _either(plural: Any, singular: Any, plural_name: str, singular_name: str) -> Any:
    """The value of an argument that has two accepted names (``instance_maps=`` / ``instance_map=``)."""
    if plural is not None and singular is not None:
        raise ValueError(f"got both {plural_name}= and {singular_name}=; they are the same argument, give one")
    return singular if singular is not None else plural


def _integer_ids(arr: np.ndarray, what: str) -> np.ndarray:
    """int64 copy of an id array; floats must be integral, bools/complex/objects are refused with a hint."""
    if arr.size == 0:
        raise ValueError(f"{what} is empty (shape {arr.shape}); give a map with at least one pixel")
    kind = arr.dtype.kind
    if kind == "b":
        raise ValueError(
            f"{what} is a boolean mask; a label map needs integer class ids: use mask.astype(np.int64) for 0/1 ids, "
            "or np.where(mask, class_id, background_id)"
        )
    if kind == "f":
        if not np.isfinite(arr).all() or not np.array_equal(arr, np.round(arr)):
            frac = arr[np.isfinite(arr) & (arr != np.round(arr))]
            example = f" (e.g. {float(frac.flat[0]):g})" if frac.size else " (NaN/inf)"
            hint = (
                " It looks like ids scaled to [0, 1] (ToTensor divides by 255): multiply by 255 and round."
                if arr.min() >= 0 and arr.max() <= 1
                else ""
            )
            raise ValueError(f"{what} holds non-integer values{example}; it must hold integer ids.{hint}")
    elif kind not in "iu":
        raise ValueError(f"{what} has dtype {arr.dtype}; it must hold integer ids")
    return arr.astype(np.int64)


def _open(path: str | os.PathLike, what: str) -> PIL.Image.Image:
    """Open and decode an image file; any unreadable, oversized or corrupt file is a ValueError naming it."""
    name = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"{what}: file {name!r} does not exist")
    try:
        with warnings.catch_warnings():  # Pillow's own bomb warning/error: MAX_INPUT_PIXELS is checked below instead
            warnings.simplefilter("ignore", PIL.Image.DecompressionBombWarning)
            image = PIL.Image.open(path)  # lazy: reads the header only
    except PIL.Image.DecompressionBombError:
        raise ValueError(f"{what}: file {name!r} is too large (a decompression bomb): more than "
                         f"{MAX_INPUT_PIXELS} pixels (MAX_INPUT_PIXELS)") from None
    except (OSError, SyntaxError, ValueError) as err:  # UnidentifiedImageError is an OSError
        raise ValueError(f"{what}: file {name!r} is not a readable image ({err}); give a PNG/JPEG/... image") from None
    _check_pixels(image.width * image.height, f"{what}: file {name!r}", f"{image.width}x{image.height}")
    if image.width == 0 or image.height == 0:
        raise ValueError(f"{what}: file {name!r} is empty ({image.width}x{image.height})")
    try:
        image.load()
    except (OSError, SyntaxError, ValueError, MemoryError, EOFError) as err:
        raise ValueError(f"{what}: file {name!r} is corrupt or truncated ({err}); re-export the image") from None
    return image


def _check_image(image: PIL.Image.Image, what: str) -> None:
    """Size-check a PIL image given directly, and decode it now so that a lazy, corrupt one fails here."""
    _check_pixels(image.width * image.height, what, f"{image.width}x{image.height}")
    try:
        image.load()
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        raise ValueError(f"{what}: the image cannot be decoded ({err}); it is corrupt or truncated") from None


class LabelMapProcessor(BaseImageProcessor):
    r"""Image processor for semantic image synthesis models (label map in, image out).

    Args:
        label_space: Built-in label-space name (``"ade20k"``, ``"cityscapes"``, ``"coco-stuff"``, ...), a
            `LabelSpace` or its ``to_dict()``. Stored as a dict in ``preprocessor_config.json`` so that custom spaces
            round-trip.
        size: Output ``{"height": h, "width": w}`` (or an int / ``(h, w)``); default 256x256.
        resize_mode: ``"fixed"`` resizes to `size` ignoring the aspect ratio (SPADE's ``preprocess_mode fixed``/
            ``resize``); ``"keep_aspect"`` scales so the map covers `size`, then centre-crops to it; ``"none"`` keeps
            the input size (checking that it suits the model is the model's job; a batch must then share one size).
        color_tolerance: Max Euclidean RGB distance for snapping off-palette colours of colour-coded label images to
            the nearest palette colour (``0`` = exact colours only).
        image_resample: PIL filter for style images (default bicubic); label and instance maps always use nearest.

    Example:
        >>> processor = LabelMapProcessor(label_space="ade20k", size=256)
        >>> batch = processor("ADE_val_00001232.png")  # doctest: +SKIP
        >>> batch["label_map"].shape  # doctest: +SKIP
        torch.Size([1, 256, 256])
    """

    model_input_names: ClassVar[list[str]] = ["label_map", "instance_map", "style_image"]
    valid_kwargs = LabelMapProcessorKwargs

    def __init__(
        self,
        label_space: str | dict | LabelSpace = "ade20k",
        size: int | tuple[int, int] | dict[str, int] | None = None,
        resize_mode: str = "fixed",
        color_tolerance: float = 0.0,
        image_resample: int | str = PIL.Image.Resampling.BICUBIC,
        **kwargs: Any,
    ) -> None:
        kwargs.pop("image_processor_type", None)  # written by to_dict; the class itself says it
        super().__init__(**kwargs)
        self.label_space = label_space
        self.size = _size_dict({"height": 256, "width": 256} if size is None else size)
        self.resize_mode = self._check_resize_mode(resize_mode)
        self.color_tolerance = self._check_tolerance(color_tolerance)
        self.image_resample = _resample(image_resample)

    @property
    def label_space(self) -> LabelSpace:
        """The `LabelSpace` label maps are validated, decoded and coloured with (assign a name, dict or space)."""
        return self._label_space

    @label_space.setter
    def label_space(self, value: str | dict | LabelSpace) -> None:
        self._label_space = get_label_space(value)

    @staticmethod
    def _check_resize_mode(mode: str) -> str:
        if mode not in _RESIZE_MODES:
            raise ValueError(f"resize_mode must be one of {_RESIZE_MODES}, got {mode!r}")
        return mode

    @staticmethod
    def _check_tolerance(tolerance: float) -> float:
        if not isinstance(tolerance, (int, float)) or isinstance(tolerance, bool) or tolerance < 0:
            raise ValueError(f"color_tolerance must be a number >= 0 (max RGB distance), got {tolerance!r}")
        return float(tolerance)

    def to_dict(self) -> dict[str, Any]:
        """Config dict for ``preprocessor_config.json``; the label space is stored as `LabelSpace.to_dict()`."""
        output = super().to_dict()
        del output["_label_space"]
        output["label_space"] = self.label_space.to_dict()
        return output

    def __repr__(self) -> str:
        """A few lines: the label space by name and class count (its palette is in `to_dict`, not here)."""
        space = self.label_space
        fields = {key: value for key, value in self.to_dict().items()
                  if key not in ("label_space", "image_processor_type")}
        if "size" in fields:
            fields["size"] = f"height={self.size['height']}, width={self.size['width']}"
        if "image_resample" in fields:
            fields["image_resample"] = PIL.Image.Resampling(self.image_resample).name.lower()
        lines = [f"label_space: {space.name} ({space.num_classes} classes)"]
        lines += [f"{key}: {value}" for key, value in fields.items()]
        return f"{type(self).__name__}(\n" + "".join(f"  {line}\n" for line in lines) + ")"

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, *args: Any,
                        **kwargs: Any) -> LabelMapProcessor:
        """`BaseImageProcessor.from_pretrained` that also takes labelsynth's registered model ids
        (see `labelsynth.hub.resolve.resolve_model`) besides folders and Hub ids."""
        return super().from_pretrained(resolve_model(pretrained_model_name_or_path), *args, **kwargs)

    # ------------------------------------------------------------------ public API
    def __call__(self, label_maps: Any, *args: Any, **kwargs: Any) -> BatchFeature:
        """Same as `preprocess`."""
        return self.preprocess(label_maps, *args, **kwargs)

    def preprocess(
        self,
        label_maps: Any,
        instance_maps: Any = None,
        style_images: Any = None,
        return_tensors: str | None = "pt",
        size: int | tuple[int, int] | dict[str, int] | None = None,
        resize_mode: str | None = None,
        color_tolerance: float | None = None,
        image_resample: int | str | None = None,
        *,
        instance_map: Any = None,
        style_image: Any = None,
    ) -> BatchFeature:
        """Validate, decode and resize a batch of label maps (and optional instance maps / style images).

        Args:
            label_maps: One label map or a list of them: file path, PIL image, numpy array or torch tensor (see the
                module docstring for the accepted forms); an explicit ``(B, H, W)`` integer array/tensor counts as B
                maps.
            instance_maps: Optional, one per label map and of the same size: 8/16/32-bit PNG paths or images, integer
                arrays or tensors (Cityscapes ``class * 1000 + id`` values are kept exactly).
            style_images: Optional, one per label map, any size (resized to the label map's output size): paths,
                PIL images, uint8 ``(H, W, 3)`` / float ``[0, 1]`` arrays, ``(3, H, W)`` tensors (uint8 or float in
                ``[0, 1]``).
            return_tensors: ``"pt"`` (torch tensors) or ``"np"`` / ``None`` (numpy arrays).
            size, resize_mode, color_tolerance, image_resample: Override the processor's settings for this call.
            instance_map, style_image: The singular names the pipeline and the models use, accepted here too (for
                one map or a list, like the plural ones; give one name or the other).

        Returns:
            `BatchFeature` with ``label_map`` int64 ``[B, H, W]``, and when given ``instance_map`` int64
            ``[B, H, W]`` and ``style_image`` float32 ``[B, 3, H, W]`` in ``[-1, 1]``.
        """
        if return_tensors not in ("pt", "np", None):
            raise ValueError(f"return_tensors must be 'pt', 'np' or None, got {return_tensors!r}")
        instance_maps = _either(instance_maps, instance_map, "instance_maps", "instance_map")
        style_images = _either(style_images, style_image, "style_images", "style_image")
        size = self.size if size is None else _size_dict(size)
        mode = self.resize_mode if resize_mode is None else self._check_resize_mode(resize_mode)
        tolerance = self.color_tolerance if color_tolerance is None else self._check_tolerance(color_tolerance)
        resample = self.image_resample if image_resample is None else _resample(image_resample)

        labels = [
            arr
            for i, item in enumerate(self._items(label_maps, "label map"))
            for arr in self._load_label(item, f"label map #{i}", tolerance)
        ]
        if not labels:
            raise ValueError("no label maps given; pass a path, image, array or tensor (or a non-empty list)")
        for i, arr in enumerate(labels):
            try:
                self.label_space.validate(arr)
            except ValueError as err:
                raise ValueError(f"label map{f' #{i}' if len(labels) > 1 else ''}: {err}") from None

        instances = None
        if instance_maps is not None:
            instances = [
                arr
                for i, item in enumerate(self._items(instance_maps, "instance map"))
                for arr in self._load_instance(item, f"instance map #{i}")
            ]
            self._check_count(len(instances), len(labels), "instance map")
            for i, (inst, lab) in enumerate(zip(instances, labels)):
                if inst.shape != lab.shape:
                    raise ValueError(
                        f"instance map{f' #{i}' if len(labels) > 1 else ''} is {_fmt_size(inst.shape)} but "
                        f"label map is {_fmt_size(lab.shape)} (width x height); an instance map must be the same size "
                        "as its label map (they are resized together)"
                    )
        styles = None
        if style_images is not None:
            styles = [
                img
                for i, item in enumerate(self._items(style_images, "style image"))
                for img in self._load_style(item, f"style image #{i}")
            ]
            self._check_count(len(styles), len(labels), "style image")

        if mode == "none" and len({arr.shape for arr in labels}) > 1:
            sizes = ", ".join(_fmt_size(arr.shape) for arr in labels)
            raise ValueError(
                f"with resize_mode='none' a batch must share one size, got label maps of sizes {sizes} (width x "
                "height); use resize_mode='fixed' or 'keep_aspect' with a size, or process the maps one at a time"
            )

        out_pixels = sum(int(np.prod(self._geometry(lab.shape, size, mode)[1][2:])) for lab in labels)
        _check_pixels(out_pixels, f"the batch of {len(labels)} label map(s)", "its output size")
        out_labels, out_instances, out_styles = [], [], []
        for i, lab in enumerate(labels):
            resize_hw, crop = self._geometry(lab.shape, size, mode)
            out_labels.append(self._resize_ids(lab, resize_hw, crop))
            if instances is not None:
                out_instances.append(self._resize_ids(instances[i], resize_hw, crop))
            if styles is not None:
                out_styles.append(self._resize_style(styles[i], crop[2:], mode, resample))

        data = {"label_map": np.stack(out_labels)}
        if instances is not None:
            data["instance_map"] = np.stack(out_instances)
        if styles is not None:
            data["style_image"] = np.stack(out_styles)
        if return_tensors == "pt":
            data = {k: torch.from_numpy(v) for k, v in data.items()}
        return BatchFeature(data=data)

    def preprocess_images(
        self, images: Any, size: tuple[int, int], return_tensors: str | None = "pt", what: str = "image"
    ) -> torch.Tensor | np.ndarray:
        """Load RGB images (style images, exemplars) and resize them to a label map's output size.

        Args:
            images: One image or a list: paths, PIL images, uint8 ``(H, W, 3)`` / float ``[0, 1]`` arrays, ``(3, H, W)``
                tensors (the forms `preprocess` accepts for ``style_images``).
            size: ``(height, width)`` of the processed label map they go with.
            return_tensors: ``"pt"`` or ``"np"`` / ``None``.
            what: How error messages name the images (e.g. ``"exemplar"``).

        Returns:
            float32 ``[B, 3, height, width]`` in ``[-1, 1]``, cropped like the label map under ``resize_mode``.
        """
        loaded = [
            img for i, item in enumerate(self._items(images, what)) for img in self._load_style(item, f"{what} #{i}")
        ]
        if not loaded:
            raise ValueError(f"no {what} given; pass a path, image, array or tensor (or a non-empty list)")
        mode = "fixed" if self.resize_mode == "none" else self.resize_mode
        _check_pixels(len(loaded) * int(size[0]) * int(size[1]), f"the batch of {len(loaded)} {what}(s)",
                      "its output size")
        out = np.stack([self._resize_style(img, tuple(size), mode, self.image_resample) for img in loaded])
        return torch.from_numpy(out) if return_tensors == "pt" else out

    def postprocess(self, images: torch.Tensor, output_type: str = "pil") -> Any:
        """Convert generator outputs to images.

        Args:
            images: ``FloatTensor[B, 3, H, W]`` (or ``[3, H, W]``) in ``[-1, 1]``, any float dtype and device.
            output_type: ``"pil"`` -> list of RGB `PIL.Image`; ``"np"`` -> uint8 array ``(B, H, W, 3)``;
                ``"pt"`` -> float32 tensor ``[B, 3, H, W]`` in ``[0, 1]`` on the input's device (not quantised).

        uint8 values are ``((x + 1) * 127.5).round().clamp(0, 255)``.
        """
        if output_type not in _OUTPUT_TYPES:
            raise ValueError(f"output_type must be one of {_OUTPUT_TYPES}, got {output_type!r}")
        if not isinstance(images, torch.Tensor):
            raise TypeError(f"postprocess expects a torch tensor [B, 3, H, W] in [-1, 1], got {type(images).__name__}")
        if images.dim() == 3:
            images = images.unsqueeze(0)
        if images.dim() != 4 or images.shape[1] != 3 or not images.is_floating_point():
            raise ValueError(
                f"postprocess expects a float tensor [B, 3, H, W] in [-1, 1], got {images.dtype} {tuple(images.shape)}"
            )
        images = images.detach().float()
        if output_type == "pt":
            return ((images + 1) / 2).clamp(0, 1)
        array = ((images + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        if output_type == "np":
            return array
        return [PIL.Image.fromarray(a, mode="RGB") for a in array]

    def colorize(self, label_map: Any) -> PIL.Image.Image:
        """Draw one label map (any form `preprocess` accepts, or a ``[1, H, W]`` batch) with the palette.

        Returns:
            RGB `PIL.Image` of the map's own size (no resizing).
        """
        maps = [arr for item in self._items(label_map, "label map")
                for arr in self._load_label(item, "label map", self.color_tolerance)]
        if len(maps) != 1:
            raise ValueError(f"colorize draws one label map, got {len(maps)}; call it once per map")
        return PIL.Image.fromarray(self.label_space.colorize(maps[0]), mode="RGB")

    # ------------------------------------------------------------------ input normalisation
    @staticmethod
    def _items(inputs: Any, what: str) -> list[Any]:
        if isinstance(inputs, (list, tuple)):
            if not inputs:
                raise ValueError(f"empty list of {what}s; give at least one")
            return list(inputs)
        return [inputs]

    @staticmethod
    def _check_count(got: int, expected: int, what: str) -> None:
        if got != expected:
            raise ValueError(
                f"got {expected} label map(s) but {got} {what}(s); give exactly one {what} per label map (or none)"
            )

    @staticmethod
    def _unsupported(item: Any, what: str, accepted: str) -> ValueError:
        return ValueError(f"{what}: unsupported input of type {type(item).__name__}; accepted: {accepted}")

    def _load_label(self, item: Any, what: str, tolerance: float = 0.0) -> list[np.ndarray]:
        """One input item -> list of int64 ``(H, W)`` id maps (an item may hold an explicit batch)."""
        if isinstance(item, (str, os.PathLike)):
            item = _open(item, what)
        if isinstance(item, PIL.Image.Image):
            _check_image(item, what)
            if item.format == "JPEG" and item.mode in _INDEX_MODES:
                raise ValueError(
                    f"{what} is a JPEG index map; JPEG compression changes class ids along every edge, so label maps "
                    "must be lossless: use the original PNG (or re-save from the source ids as PNG)"
                )
            return [self._pil_ids(item, what, tolerance)]
        if isinstance(item, torch.Tensor):
            return self._tensor_ids(item, what)
        if isinstance(item, np.ndarray):
            if item.ndim in (3, 4) and item.shape[-1] in (3, 4) and item.dtype == np.uint8:
                _check_pixels(int(np.prod(item.shape[:-1])), what, f"array of shape {item.shape}")
                rgb = item[..., :3]
                return [self._decode_rgb(x, what, tolerance) for x in (rgb if item.ndim == 4 else [rgb])]
            return self._array_ids(item, what)
        raise self._unsupported(
            item, what, "file path, PIL image (L/P/I;16/I/RGB/RGBA), numpy array or torch tensor of integer ids"
        )

    def _pil_ids(self, image: PIL.Image.Image, what: str, tolerance: float) -> np.ndarray:
        mode = image.mode
        if mode in ("LA", "PA"):
            image, mode = image.getchannel(0), mode[0]
        if mode in _INDEX_MODES:
            # P images: the palette indices are the ids (the embedded palette colours are ignored).
            return _integer_ids(np.asarray(image), what)
        if mode in ("RGB", "RGBA", "RGBX"):
            return self._decode_rgb(np.asarray(image.convert("RGB")), what, tolerance)
        if mode == "1":
            raise ValueError(
                f"{what} is a 1-bit (mode '1') image, i.e. a binary mask; a label map needs class ids: save it as "
                "mode L with the class ids, or pass np.asarray(image).astype(np.int64) for 0/1 ids"
            )
        raise ValueError(
            f"{what} has PIL mode {mode!r}; label maps must be index images (L, P, I;16, I) or colour-coded RGB: "
            "convert it first, e.g. image.convert('RGB') for colour-coded maps"
        )

    def _decode_rgb(self, rgb: np.ndarray, what: str, tolerance: float) -> np.ndarray:
        """Colour-coded (H, W, 3) uint8 -> ids; equal-channel images are grey index maps unless all greys are colours."""
        if rgb.size == 0:
            raise ValueError(f"{what} is empty (shape {rgb.shape}); give a map with at least one pixel")
        def hint(suggested: float) -> str:  # appended where a tolerance is the fix
            return f" (LabelMapProcessor: set color_tolerance={suggested:g} on the processor or per call.)"

        return decode_color_label(rgb, self.label_space, what=what, tolerance=tolerance, hint=hint)

    @staticmethod
    def _id_shape(shape: tuple[int, ...], what: str, kind: str) -> tuple[int, ...]:
        """The ``(B, H, W)`` batch shape of an id array/tensor of `shape`; ambiguous and other shapes are refused."""
        given = shape = tuple(int(n) for n in shape)
        if len(shape) == 4 and shape[1] == 1:
            shape = (shape[0], *shape[2:])
        elif len(shape) == 3 and shape[-1] == 1 and shape[0] != 1:
            shape = (1, *shape[:2])  # (H, W, 1): one map with a channel axis
        elif len(shape) == 2:
            shape = (1, *shape)
        o, c = ("[", "]") if kind == "tensor" else ("(", ")")
        if len(shape) != 3:
            raise ValueError(
                f"{what}: {kind} of shape {given}; label-map {kind}s must be {o}H, W{c} or {o}B, H, W{c} / "
                f"{o}B, 1, H, W{c} integer ids (one map may also be {o}H, W, 1{c}), or a uint8 numpy (H, W, 3) "
                "colour image; a batch is best a list of maps (the pipeline and CLI take only lists); one-hot maps: "
                "argmax over the class axis"
            )
        if shape[-1] in (2, 3, 4) and shape[0] > 4:
            raise ValueError(
                f"{what}: {kind} of shape {given} is ambiguous: an (H, W, {shape[-1]}) image or {shape[0]} maps of "
                f"width {shape[-1]}? Colour-coded maps must be uint8 (H, W, 3); integer ids must be (H, W); pass a "
                f"batch as a list of (H, W) maps"
            )
        _check_pixels(shape[0] * shape[1] * shape[2], what, f"{kind} of shape {given}")
        return shape

    @staticmethod
    def _tensor_ids(tensor: torch.Tensor, what: str) -> list[np.ndarray]:
        t = tensor.detach()
        shape = LabelMapProcessor._id_shape(tuple(t.shape), what, "tensor")
        if t.dtype == torch.bool:
            raise ValueError(f"{what} is a boolean tensor; a label map needs integer class ids: use mask.long()")
        if t.is_quantized:
            raise ValueError(f"{what} is a quantized {t.dtype} tensor; a label map needs integer class ids (int64)")
        if t.is_floating_point() and t.dtype not in (torch.float16, torch.float32, torch.float64):
            t = t.float()  # bfloat16 / float8 have no numpy dtype
        arr = t.cpu().numpy()
        return [_integer_ids(a, what) for a in arr.reshape(shape)]

    @staticmethod
    def _array_ids(arr: np.ndarray, what: str) -> list[np.ndarray]:
        shape = LabelMapProcessor._id_shape(arr.shape, what, "array")
        return [_integer_ids(a, what) for a in arr.reshape(shape)]

    def _load_instance(self, item: Any, what: str) -> list[np.ndarray]:
        if isinstance(item, (str, os.PathLike)):
            item = _open(item, what)
        if isinstance(item, PIL.Image.Image):
            _check_image(item, what)
            if item.format == "JPEG":
                raise ValueError(f"{what} is a JPEG; JPEG compression changes instance ids along every edge, so "
                                 "instance maps must be lossless: use the original PNG")
            if item.mode in _INDEX_MODES:
                return [_integer_ids(np.asarray(item), what)]
            if item.mode == "RGB":
                rgb = np.asarray(item)
                if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]):
                    return [_integer_ids(rgb[..., 0], what)]
            raise ValueError(
                f"{what} has PIL mode {item.mode!r}; instance maps must be single-channel integer images "
                "(L, I;16 or I PNGs) or integer arrays"
            )
        if isinstance(item, torch.Tensor):
            return self._tensor_ids(item, what)
        if isinstance(item, np.ndarray):
            return self._array_ids(item, what)
        raise self._unsupported(item, what, "file path, PIL image (L/I;16/I), numpy array or torch tensor of ints")

    def _load_style(self, item: Any, what: str) -> list[PIL.Image.Image]:
        if isinstance(item, (str, os.PathLike)):
            item = _open(item, what)
        if isinstance(item, PIL.Image.Image):
            _check_image(item, what)
            if item.width == 0 or item.height == 0:
                raise ValueError(f"{what} is empty ({item.width}x{item.height})")
            return [item.convert("RGB")]
        if isinstance(item, torch.Tensor):
            t = item.detach().cpu()
            if t.dim() == 3:
                t = t.unsqueeze(0)
            if t.dim() != 4 or t.shape[1] != 3:
                raise ValueError(
                    f"{what}: tensor of shape {tuple(item.shape)}; style tensors must be [3, H, W] or [B, 3, H, W]"
                )
            t = t.permute(0, 2, 3, 1)
            return self._load_style((t.float() if t.is_floating_point() else t).numpy(), what)
        if isinstance(item, np.ndarray):
            arr = item
            if arr.ndim == 2 or (arr.ndim == 3 and arr.shape[-1] in (3, 4)):
                arr = arr[None]
            # (B, H, W) pixels, before the grey -> RGB copy below allocates anything
            _check_pixels(int(np.prod(arr.shape[:3], dtype=object)), what, f"array of shape {item.shape}")
            if arr.ndim == 3:  # batch of grey images
                arr = np.repeat(arr[..., None], 3, axis=-1)
            if arr.ndim != 4 or arr.shape[-1] not in (3, 4) or arr.size == 0:
                raise ValueError(f"{what}: array of shape {item.shape}; style arrays must be (H, W, 3) or (B, H, W, 3)")
            if arr.dtype.kind == "f":
                if not np.isfinite(arr).all():  # NaN/inf would silently become black pixels
                    raise ValueError(f"{what}: {int((~np.isfinite(arr)).sum())} non-finite value(s) (NaN/inf); "
                                     "style images must hold finite values in [0, 1] (or uint8 0..255)")
                if arr.min() < 0 or arr.max() > 1:
                    raise ValueError(
                        f"{what}: float values {arr.min():.3g}..{arr.max():.3g} are outside [0, 1]; float style images "
                        "must be in [0, 1] (a [-1, 1] image x: pass (x + 1) / 2), or pass uint8 0..255"
                    )
                arr = np.round(arr * 255)
            elif arr.dtype != np.uint8:
                raise ValueError(f"{what}: dtype {arr.dtype}; style arrays must be uint8 0..255 or float in [0, 1]")
            return [PIL.Image.fromarray(a[..., :3].astype(np.uint8), mode="RGB") for a in arr]
        raise self._unsupported(item, what, "file path, PIL image, uint8/float numpy array or torch tensor")

    # ------------------------------------------------------------------ geometry
    @staticmethod
    def _geometry(
        hw: tuple[int, int], size: dict[str, int], mode: str
    ) -> tuple[tuple[int, int], tuple[int, int, int, int]]:
        """(resized height, width) and the crop (top, left, height, width) taken from the resized map."""
        h, w = hw
        th, tw = size["height"], size["width"]
        if mode == "none":
            return (h, w), (0, 0, h, w)
        if mode == "fixed":
            return (th, tw), (0, 0, th, tw)
        # keep_aspect: the scaled map covers the target, the longer side is cropped centrally.
        if th * w >= tw * h:
            rh, rw = th, max(tw, round(w * th / h))
        else:
            rh, rw = max(th, round(h * tw / w)), tw
        return (rh, rw), ((rh - th) // 2, (rw - tw) // 2, th, tw)

    @staticmethod
    def _resize_ids(arr: np.ndarray, resize_hw: tuple[int, int], crop: tuple[int, int, int, int]) -> np.ndarray:
        (rh, rw), (top, left, ch, cw) = resize_hw, crop
        if (rh, rw) == arr.shape and (ch, cw) == arr.shape:
            return arr
        rows = _nearest_index(arr.shape[0], rh)[top : top + ch]
        cols = _nearest_index(arr.shape[1], rw)[left : left + cw]
        return arr[np.ix_(rows, cols)]

    def _resize_style(self, image: PIL.Image.Image, out_hw: tuple[int, int], mode: str, resample: int) -> np.ndarray:
        """Resize (bicubic by default) a style image to the label map's output size -> float32 [3, H, W] in [-1, 1]."""
        th, tw = out_hw
        if mode == "keep_aspect":
            (rh, rw), (top, left, _, _) = self._geometry((image.height, image.width), {"height": th, "width": tw}, mode)
            image = image.resize((rw, rh), resample=resample).crop((left, top, left + tw, top + th))
        elif image.size != (tw, th):
            image = image.resize((tw, th), resample=resample)
        return (np.asarray(image, dtype=np.float32) / 127.5 - 1.0).transpose(2, 0, 1)
