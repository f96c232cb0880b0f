"""Paired training transforms: the same random resize/crop/flip for the image, the label map and the instance map.

Rows in the common format ``{"image": RGB image, "label": ids, "instance": ids (optional)}`` become
``{"pixel_values": FloatTensor[3, H, W] in [-1, 1], "label_map": LongTensor[H, W], "instance_map": LongTensor[H, W]}``
as the original SPADE/pix2pixHD/SEAN/CoCosNet loaders made them:

* the geometry (resize size, crop box, flip) is drawn **once per row** from the label map's size and applied to all
  three maps;
* label and instance maps are resized with nearest-neighbour *index arithmetic* that reproduces PIL's
  ``Image.NEAREST`` (`labelsynth.processing`'s helper, shared with `LabelMapProcessor`), so no value is ever
  interpolated: only ids present in the source map can appear, and 16/32-bit instance ids survive exactly;
* the image is resized with PIL bicubic (as ``transforms.Resize(..., BICUBIC)`` in the originals) and scaled to
  ``[-1, 1]``;
* label ids are raw ids of the label space; the ignore value (255 for COCO-Stuff) is kept as is (the model routes
  it to its don't-care channel). No one-hot encoding happens here.

Modes (``mode=``; ``size=(H, W)`` is the output size, ``load_size`` the intermediate resize):

* ``"resize_and_crop"`` (SPADE's default ``preprocess_mode``): resize to ``load_size`` ignoring the aspect ratio,
  then a random ``size`` crop (ADE20K / COCO-Stuff: ``load_size=286, size=256``). Without ``load_size`` this is a
  plain resize to ``size``.
* ``"fixed"``: resize straight to ``size`` (Cityscapes 512x256: ``size=(256, 512)``); no crop.
* ``"keep_aspect"``: scale (keeping the aspect ratio) so the map covers ``load_size`` (default ``size``): the short
  side gets the load size; then a random ``size`` crop.
* ``"none"``: no resize or crop (the image is resized to the label map's size when they differ).

``flip=True`` flips horizontally with probability 1/2.

**Randomness and reproducibility.** Every random draw comes from the transform's own `random.Random`, seeded from
``seed`` (an int), or from a caller's ``generator`` (a seeded `torch.Generator` or `random.Random`, from which one seed
is drawn at construction). In the main process (``num_workers=0``) the draws follow that stream, so a run is
reproducible. In a `torch.utils.data.DataLoader` worker the transform reseeds itself once per worker from
``(seed, worker seed)``; the worker seed is derived by torch from the loader's base seed, so give the loader a seeded
``generator=`` (or call ``torch.manual_seed``) to make multi-worker runs reproducible too, and workers never share a
random stream. `sample_params` + `apply` give explicit control (e.g. to replay one row's augmentation).

Use with ``datasets``: ``dataset.with_transform(transform)`` (map-style) or ``dataset.map(transform)`` (streaming),
or simply `apply_transform`; batch with `collate_fn`. Transforms are picklable (DataLoader workers, ``accelerate``).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import PIL.Image
import torch

from ..label_spaces import LabelSpace, get_label_space
from ..processing import _nearest_index
from ._io import decode_image, decode_instance, decode_label, row_name

__all__ = ["PairedTransform", "TransformParams", "apply_transform", "collate_fn"]

MODES = ("resize_and_crop", "fixed", "keep_aspect", "none")
_MAP_COLUMNS = ("image", "label", "instance")


def _hw(size: Any, what: str) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        h = w = int(size)
    elif isinstance(size, Mapping) and set(size) == {"height", "width"}:
        h, w = size["height"], size["width"]
    elif isinstance(size, Sequence) and not isinstance(size, str) and len(size) == 2:
        h, w = size
    else:
        raise ValueError(f"{what} must be an int or (height, width), got {size!r}")
    if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0 for v in (h, w)):
        raise ValueError(f"{what} must hold positive ints, got {size!r}")
    return int(h), int(w)


def _resample(value: Any) -> int:
    if isinstance(value, str):
        try:
            return int(PIL.Image.Resampling[value.upper()])
        except KeyError:
            raise ValueError(
                f"unknown image_resample {value!r}; use one of {', '.join(r.name.lower() for r in PIL.Image.Resampling)}"
            ) from None
    return int(PIL.Image.Resampling(int(value)))


@dataclass(frozen=True)
class TransformParams:
    """The geometry drawn for one row, in label-map coordinates.

    Attributes:
        resize: ``(height, width)`` the label map (and instance map, and image) is resized to.
        crop: ``(top, left, height, width)`` of the crop taken from the resized map.
        flip: Whether the crop is flipped horizontally.
    """

    resize: tuple[int, int]
    crop: tuple[int, int, int, int]
    flip: bool


class PairedTransform:
    """Resize / random-crop / flip an image, its label map and its instance map with the same parameters.

    Args:
        size: Output ``(height, width)`` (an int means square). Ignored with ``mode="none"``.
        load_size: Intermediate size for ``"resize_and_crop"`` / ``"keep_aspect"`` (an int sets the short side of
            a box with ``size``'s aspect ratio, e.g. 286 for a 256x256 crop); default: ``size`` (no crop).
        mode: ``"resize_and_crop"`` | ``"fixed"`` | ``"keep_aspect"`` | ``"none"`` (see the module docstring).
        flip: Random horizontal flip (probability 1/2).
        label_space: The `LabelSpace` (or name) the label ids are in: labels are checked against it (``validate``)
            and colour-coded labels are decoded with its palette. ``None`` skips both.
        seed: Seed of the transform's random stream (an int).
        generator: Alternatively a seeded `torch.Generator` or `random.Random` to draw the seed from.
        validate: Check every label map against ``label_space`` (a clear error names the row, the bad ids and the
            fix); leave on unless the data was validated at ingest time.
        color_tolerance: Max RGB distance for snapping colours of colour-coded labels (``0`` = exact colours).
        image_resample: PIL filter for the image (default ``"bicubic"``); labels/instances always use nearest.
        use_instance: Emit ``instance_map`` when the row has an instance map.
        passthrough_columns: Row columns copied unchanged into the output (e.g. ``image_id`` for logging).
        aspect_tolerance: Relative aspect-ratio difference allowed between an image and its label map of different
            sizes (CelebA-HQ: 1024x1024 photos with 512x512 masks). Larger differences are an error.
    """

    def __init__(
        self,
        size: int | tuple[int, int] = 256,
        load_size: int | tuple[int, int] | None = None,
        mode: str = "resize_and_crop",
        flip: bool = True,
        *,
        label_space: str | Mapping[str, Any] | LabelSpace | None = None,
        seed: int | None = None,
        generator: torch.Generator | random.Random | None = None,
        validate: bool = True,
        color_tolerance: float = 0.0,
        image_resample: int | str = "bicubic",
        use_instance: bool = True,
        passthrough_columns: Sequence[str] = ("image_id",),
        aspect_tolerance: float = 0.02,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.mode = mode
        self.size = _hw(size, "size")
        if load_size is None:
            self.load_size = self.size
        elif isinstance(load_size, (int, np.integer)) and not isinstance(load_size, bool):
            short = min(self.size)
            self.load_size = (round(self.size[0] * load_size / short), round(self.size[1] * load_size / short))
        else:
            self.load_size = _hw(load_size, "load_size")
        if mode in ("resize_and_crop", "keep_aspect") and (
            self.load_size[0] < self.size[0] or self.load_size[1] < self.size[1]
        ):
            raise ValueError(
                f"load_size {self.load_size} is smaller than size {self.size} (height, width); the crop is taken "
                "from the map resized to load_size, so load_size must be >= size"
            )
        self.flip = bool(flip)
        self.label_space = None if label_space is None else get_label_space(label_space)
        self.validate = bool(validate)
        if not isinstance(color_tolerance, (int, float)) or color_tolerance < 0:
            raise ValueError(f"color_tolerance must be a number >= 0, got {color_tolerance!r}")
        self.color_tolerance = float(color_tolerance)
        self.image_resample = _resample(image_resample)
        self.use_instance = bool(use_instance)
        self.passthrough_columns = tuple(passthrough_columns)
        self.aspect_tolerance = float(aspect_tolerance)
        self.reseed(self._seed_from(seed, generator))

    # ------------------------------------------------------------------ randomness
    @staticmethod
    def _seed_from(seed: int | None, generator: Any) -> int:
        if seed is not None and generator is not None:
            raise ValueError("give either seed or generator, not both")
        if seed is not None:
            return int(seed)
        if isinstance(generator, torch.Generator):
            return int(torch.randint(0, 2**62, (1,), generator=generator).item())
        if isinstance(generator, random.Random):
            return generator.getrandbits(62)
        if generator is not None:
            raise ValueError(f"generator must be a torch.Generator or random.Random, got {type(generator).__name__}")
        return random.SystemRandom().getrandbits(62)

    def reseed(self, seed: int) -> None:
        """Restart the random stream from ``seed`` (workers then derive their streams from it)."""
        self.seed = int(seed)
        self._rng = random.Random(self.seed)
        self._worker_key: tuple[int, int] | None = None

    def _stream(self) -> random.Random:
        info = torch.utils.data.get_worker_info()
        if info is not None and self._worker_key != (info.id, info.seed):
            # One independent, reproducible stream per worker (worker seeds come from the loader's base seed).
            self._worker_key = (info.id, info.seed)
            self._rng = random.Random(f"labelsynth-{self.seed}-{info.seed}")
        return self._rng

    # ------------------------------------------------------------------ geometry
    def sample_params(self, label_hw: tuple[int, int], rng: random.Random | None = None) -> TransformParams:
        """Draw the geometry for a label map of size ``label_hw = (height, width)``.

        Args:
            label_hw: Size of the label map before the transform.
            rng: Random stream to draw from (default: the transform's own).
        """
        h, w = int(label_hw[0]), int(label_hw[1])
        rng = self._stream() if rng is None else rng
        th, tw = self.size
        if self.mode == "none":
            resize, (th, tw) = (h, w), (h, w)
        elif self.mode == "fixed":
            resize = (th, tw)
        elif self.mode == "resize_and_crop":
            resize = self.load_size
        else:  # keep_aspect: cover load_size keeping the aspect ratio (short side -> load size)
            lh, lw = self.load_size
            scale = max(lh / h, lw / w)
            resize = (max(lh, round(h * scale)), max(lw, round(w * scale)))
        top = rng.randint(0, resize[0] - th) if resize[0] > th else 0
        left = rng.randint(0, resize[1] - tw) if resize[1] > tw else 0
        flip = rng.random() < 0.5 if self.flip else False
        return TransformParams(resize=resize, crop=(top, left, th, tw), flip=flip)

    # ------------------------------------------------------------------ application
    def apply(self, row: Mapping[str, Any], params: TransformParams | None = None, *, index: int | None = None,
              rng: random.Random | None = None) -> dict:
        """Transform one row (``params`` default: drawn with `sample_params`, from ``rng`` when given).

        The trainer passes an ``rng`` seeded per (seed, epoch, index) so that a resumed run re-draws the same crops.

        Returns:
            ``{"pixel_values", "label_map"[, "instance_map"]}`` tensors plus the pass-through columns.
        """
        name = row_name(row, index)
        if "label" not in row or row["label"] is None:
            raise ValueError(f"{name} has no label map (column 'label'); every training row needs one")
        if "image" not in row or row["image"] is None:
            raise ValueError(f"{name} has no image (column 'image'); every training row needs one")
        label = decode_label(
            row["label"], self.label_space, what=f"{name}: label", color_tolerance=self.color_tolerance
        )
        if self.validate and self.label_space is not None:
            try:
                self.label_space.validate(label)
            except ValueError as err:
                raise ValueError(f"{name}: {err}") from None
        image = decode_image(row["image"], what=f"{name}: image")
        h, w = label.shape
        if image.size != (w, h):
            iw, ih = image.size
            if abs((iw / ih) / (w / h) - 1) > self.aspect_tolerance:
                raise ValueError(
                    f"{name}: image is {iw}x{ih} but its label map is {w}x{h} (width x height); they must have the "
                    "same size (or the same aspect ratio, e.g. 1024x1024 photos with 512x512 masks): check that the "
                    "image and label files belong together"
                )
        instance = None
        if self.use_instance and row.get("instance") is not None:
            instance = decode_instance(row["instance"], what=f"{name}: instance map")
            if instance.shape != label.shape:
                raise ValueError(
                    f"{name}: instance map is {instance.shape[1]}x{instance.shape[0]} but the label map is {w}x{h} "
                    "(width x height); an instance map must be exactly the size of its label map"
                )
        if params is None:
            params = self.sample_params((h, w), rng)
        (rh, rw), (top, left, ch, cw) = params.resize, params.crop
        if top < 0 or left < 0 or top + ch > rh or left + cw > rw:
            raise ValueError(f"crop {params.crop} does not fit the resized size {params.resize}")
        rows = _nearest_index(h, rh)[top : top + ch]
        cols = _nearest_index(w, rw)[left : left + cw]
        if params.flip:
            cols = cols[::-1]
        index_grid = np.ix_(rows, cols)
        out: dict[str, Any] = {}
        if image.size != (rw, rh):
            image = image.resize((rw, rh), resample=self.image_resample)
        if (top, left, ch, cw) != (0, 0, rh, rw):
            image = image.crop((left, top, left + cw, top + ch))
        if params.flip:
            image = image.transpose(PIL.Image.Transpose.FLIP_LEFT_RIGHT)
        pixels = np.asarray(image, dtype=np.float32).transpose(2, 0, 1) / 127.5 - 1.0
        out["pixel_values"] = torch.from_numpy(np.ascontiguousarray(pixels))
        out["label_map"] = torch.from_numpy(np.ascontiguousarray(label[index_grid]))
        if instance is not None:
            out["instance_map"] = torch.from_numpy(np.ascontiguousarray(instance[index_grid]))
        for key in self.passthrough_columns:
            if key in row:
                out[key] = row[key]
        return out

    def __call__(self, batch: Mapping[str, Any]) -> dict:
        """Transform a batch dict of lists (``set_transform``/``with_transform``) or a single row (``map``)."""
        if not isinstance(batch, Mapping):
            raise TypeError(f"PairedTransform expects a row or batch dict, got {type(batch).__name__}")
        if not isinstance(batch.get("label"), list):
            return self.apply(batch)
        keys = list(batch)
        n = len(batch["label"])
        results = [self.apply({k: batch[k][i] for k in keys}) for i in range(n)]
        out: dict[str, list] = {}
        for key in ("pixel_values", "label_map", "instance_map", *self.passthrough_columns):
            if any(key in r for r in results):
                out[key] = [r.get(key) for r in results]
        return out

    def __repr__(self) -> str:
        return (
            f"PairedTransform(size={self.size}, load_size={self.load_size}, mode={self.mode!r}, flip={self.flip}, "
            f"label_space={None if self.label_space is None else self.label_space.name!r}, seed={self.seed})"
        )


def collate_fn(examples: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Stack transformed rows into a batch for `torch.utils.data.DataLoader`.

    Returns:
        ``pixel_values`` ``[B, 3, H, W]``, ``label_map`` ``[B, H, W]`` (int64), ``instance_map`` ``[B, H, W]`` when
        every row has one; other keys (e.g. ``image_id``) as lists.

    Raises:
        ValueError: when rows differ in size (use a fixed ``size``) or only some rows have instance maps.
    """
    if not examples:
        raise ValueError("collate_fn got an empty batch")
    out: dict[str, Any] = {}
    for key in examples[0]:
        values = [ex.get(key) for ex in examples]
        if key in ("pixel_values", "label_map", "instance_map"):
            missing = sum(v is None for v in values)
            if missing:
                raise ValueError(
                    f"{missing} of {len(values)} rows in this batch have no {key}; either every row has an instance "
                    "map or none (set PairedTransform(use_instance=False) to drop them)"
                )
            shapes = {tuple(v.shape) for v in values}
            if len(shapes) > 1:
                raise ValueError(
                    f"rows of this batch have different {key} shapes {sorted(shapes)}; give the PairedTransform a "
                    "fixed output size (mode 'fixed', 'resize_and_crop' or 'keep_aspect') or use batch_size=1"
                )
            out[key] = torch.stack(values)
        else:
            out[key] = values
    for key in ("instance_map",):
        if key not in out and any(key in ex for ex in examples):
            raise ValueError("only some rows of this batch have an instance_map; give every row one or none")
    return out


def apply_transform(dataset: Any, transform: PairedTransform) -> Any:
    """Attach ``transform`` to a ``datasets`` dataset: ``with_transform`` for a map-style `datasets.Dataset`,
    ``map`` (lazy, per row) for an `datasets.IterableDataset`. Returns the new dataset (the input is unchanged).
    """
    if hasattr(dataset, "with_transform") and hasattr(dataset, "__getitem__"):
        return dataset.with_transform(transform)
    if hasattr(dataset, "map"):
        columns = dataset.column_names
        remove = [c for c in columns if c in _MAP_COLUMNS or c in transform.passthrough_columns] if columns else None
        return dataset.map(transform, remove_columns=remove)
    raise TypeError(f"apply_transform expects a datasets.Dataset or IterableDataset, got {type(dataset).__name__}")
