"""Segment photos with any transformers segmenter (or a callable) into a labelsynth label space.

One adapter serves the photo workflow (segment a photo, edit its map, resynthesise it in the photo's style) and
mIoU (`labelsynth.metrics`), so both read a segmenter's output through the same code and the same class tables.

```python
from labelsynth import segment

result = segment("photo.jpg", segmenter="nvidia/segformer-b0-finetuned-ade-512-512", label_space="ade20k")
result.label_map          # int64 (H, W) ids of "ade20k" at the photo's size
result.instance_map       # int64 (H, W) segment ids (panoptic segmenters) or None
```

**Segmenters.** ``segmenter`` is a Hub id or folder, a loaded model, a `SegmenterAdapter`, or a callable:

* ``AutoModelForSemanticSegmentation`` models (SegFormer, UperNet, DPT, BEiT, ...): the image processor resizes and
  normalises the photo as the segmenter was trained; the logits are bilinearly resized to the photo's size before the
  arg-max.
* Universal segmenters (Mask2Former, MaskFormer, OneFormer): the image processor's
  ``post_process_semantic_segmentation`` gives the class map and, with ``instances=True``,
  ``post_process_panoptic_segmentation`` the instance map (segment ids, 0 = no segment). OneFormer gets the task
  text ``"semantic"`` / ``"panoptic"``.
* a callable ``images FloatTensor[B, 3, H, W] in [-1, 1] -> logits [B, C, h, w]`` or ids ``[B, h, w]``; pass its
  ``id2label`` (or ``source_space``) so its classes can be mapped.

**Into the label space.** A segmenter's classes are mapped by class name through `labelsynth.label_space_mappings`:

1. The segmenter's own label space is recognised from its ``id2label`` (class count and names; generic
   ``LABEL_k`` names by count alone):

   | segmenter classes | its space | ids |
   |---|---|---|
   | 150 ADE20K classes (``wall`` .. ``flag``) | ``ade20k-reduced`` | ADE20K raw id = segmenter id + 1 |
   | 19 Cityscapes classes (``road`` .. ``bicycle``) | ``cityscapes-trainid`` | trainId -> labelId by name |
   | 171 COCO-Stuff classes | ``coco-stuff-171`` | contiguous 171 -> COCO-Stuff-182 ids by name |
   | 133 COCO-panoptic classes | ``coco-panoptic`` | detectron2's contiguous ids, by name |

2. From that space to the target, the registered table (`get_label_space_mapping`, identity when equal; one
   intermediate space is allowed, e.g. COCO-Stuff-171 -> 182 -> ADE20K). For an unrecognised segmenter, its
   class names are matched to the target's names directly (case, spaces and ``;``-separated synonyms ignored).
3. Segmenter classes without a counterpart become the target's don't-care value: its ``ignore_index``, or
   ADE20K ``other`` / Cityscapes ``unlabeled``. A space with neither refuses them with a ``ValueError`` that lists
   them.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .label_space_mappings import get_label_space_mapping, list_label_space_mappings
from .label_spaces import LabelSpace, get_label_space

__all__ = [
    "KNOWN_SEGMENTER_SPACES",
    "SegmentationResult",
    "SegmenterAdapter",
    "SegmenterMapping",
    "load_segmenter",
    "photo_style_inputs",
    "segment",
    "segmenter_mapping",
]

#: Label spaces a segmenter's ``id2label`` is recognised as (see the module docstring), by class count.
KNOWN_SEGMENTER_SPACES = ("ade20k-reduced", "cityscapes-trainid", "coco-stuff-171", "coco-panoptic")
_UNIVERSAL_TYPES = ("mask2former", "maskformer", "oneformer")
_DONT_CARE_CLASSES = ("other", "unlabeled")  # classes that mean "none of the others" (ADE20K, Cityscapes labelIds)
_MATCH_SHARE = 0.8  # share of a known space's names an id2label must share to be recognised as that space
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


# ============================================================================================ class mapping
def _norm(name: str) -> str:
    return re.sub(r"[\s_]+", " ", str(name).strip().lower())


def _name_keys(name: str) -> list[str]:
    """A class name and its synonyms (``"windowpane;window"`` -> both), normalised."""
    full = _norm(name)
    return [full] + [_norm(part) for part in re.split(r"[;,]", full) if _norm(part) and _norm(part) != full]


def _is_generic(names: Sequence[str]) -> bool:
    return all(re.fullmatch(r"label ?\d+", _norm(n)) for n in names)


def _dont_care_id(space: LabelSpace) -> int | None:
    if space.ignore_index is not None:
        return space.ignore_index
    for name in _DONT_CARE_CLASSES:
        if name in space.label2id:
            return space.label2id[name]
    return None


@dataclass(frozen=True)
class SegmenterMapping:
    """Segmenter class ids -> ids of a label space.

    Attributes:
        lut: int64 ``(num_segmenter_classes,)``; ``lut[k]`` is the target id of segmenter class k.
        target: the target label space.
        source_space: the label space the segmenter was recognised as (``None``: matched by name directly).
        unmapped: segmenter class names that went to the don't-care value.
        description: one line saying how the mapping was made (for reports).
    """

    lut: np.ndarray
    target: LabelSpace
    source_space: str | None
    unmapped: tuple[str, ...]
    description: str

    def __call__(self, ids: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
        """Map segmenter ids (any shape; numpy or torch) to target ids (int64, same container)."""
        if isinstance(ids, torch.Tensor):
            return torch.as_tensor(self.lut, device=ids.device)[ids.long()]
        return self.lut[np.asarray(ids)]


def _recognise(names: Sequence[str]) -> str | None:
    for candidate in KNOWN_SEGMENTER_SPACES:
        space = get_label_space(candidate)
        if space.num_classes != len(names):
            continue
        if _is_generic(names):
            return candidate
        hits = sum(_norm(space.names[i]) in _name_keys(n) for i, n in enumerate(names))
        if hits >= _MATCH_SHARE * len(names):
            return candidate
    return None


def _space_lut(source: LabelSpace, target: LabelSpace) -> tuple[np.ndarray, str] | None:
    """LUT source id -> target id through registered tables (direct, or via one intermediate space)."""
    registered = list_label_space_mappings()
    if source == target:
        return np.arange(source.num_classes, dtype=np.int64), "identity"
    if (source.name, target.name) in registered:
        return get_label_space_mapping(source, target).lut()[: source.num_classes], f"{source.name} -> {target.name}"
    for first, middle in registered:
        if first == source.name and (middle, target.name) in registered:
            lut_a = get_label_space_mapping(source, middle).lut()[: source.num_classes]
            second = get_label_space_mapping(middle, target)
            lut_b = second.lut()
            # A class dropped on the first hop lands on the middle space's ignore value, which the second table
            # covers (it maps to the second mapping's unmapped id).
            return lut_b[lut_a], f"{source.name} -> {middle} -> {target.name}"
    return None


def segmenter_mapping(id2label: Mapping[int, str] | Sequence[str], label_space: str | LabelSpace,
                      source_space: str | LabelSpace | None = None) -> SegmenterMapping:
    """How a segmenter's classes become ids of `label_space` (see the module docstring).

    Args:
        id2label: The segmenter's class names (``config.id2label`` or a list, index = segmenter id).
        label_space: Target label space.
        source_space: The segmenter's label space when known (skips recognition), e.g. ``"ade20k-reduced"``.

    Returns:
        A `SegmenterMapping`.

    Raises:
        ValueError: segmenter classes have no counterpart and the target has no don't-care value (the message
            lists them), or no class matches at all.
    """
    if isinstance(id2label, Mapping):
        count = max(int(k) for k in id2label) + 1 if id2label else 0
        names = [str(id2label.get(i, id2label.get(str(i), f"LABEL_{i}"))) for i in range(count)]  # type: ignore
    else:
        names = [str(n) for n in id2label]
    if not names:
        raise ValueError("the segmenter has no classes (empty id2label)")
    target = get_label_space(label_space)
    dont_care = _dont_care_id(target)
    source_name = get_label_space(source_space).name if source_space is not None else _recognise(names)
    if source_name is not None:
        source = get_label_space(source_name)
        if source.num_classes != len(names):
            raise ValueError(f"source_space {source.name!r} has {source.num_classes} classes but the segmenter has "
                             f"{len(names)}")
        found = _space_lut(source, target)
        if found is not None:
            lut, how = found
            # Ids off the target's classes (its ignore value, or a mapping's unmapped value) are don't-care.
            dropped = tuple(names[i] for i in range(len(names))
                            if lut[i] >= target.num_classes or (dont_care is not None and lut[i] == dont_care))
            if any(lut[i] >= target.num_classes for i in range(len(names))) and target.ignore_index is None:
                raise ValueError(f"segmenter classes {list(dropped)} have no counterpart in {target.name!r}, which "
                                 "has no don't-care value")
            return SegmenterMapping(lut.astype(np.int64), target, source.name, dropped,
                                    f"segmenter recognised as {source.name}; {how}")
    # Direct name matching (unknown segmenters, or known spaces with no registered table to the target).
    index = {}
    for i, name in enumerate(target.names):
        for key in _name_keys(name):
            index.setdefault(key, i)
    lut = np.empty(len(names), dtype=np.int64)
    unmatched = []
    for k, name in enumerate(names):
        hit = next((index[key] for key in _name_keys(name) if key in index), None)
        if hit is None:
            unmatched.append(name)
            hit = -1
        lut[k] = hit
    if len(unmatched) == len(names):
        raise ValueError(
            f"none of the segmenter's {len(names)} classes ({', '.join(names[:6])}, ...) is a class of label space "
            f"{target.name!r}; use a segmenter trained on {target.name} classes, or pass label_space= the space the "
            "segmenter predicts"
        )
    if unmatched:
        if dont_care is None:
            raise ValueError(
                f"segmenter classes {unmatched} have no counterpart in label space {target.name!r}, which has no "
                "don't-care value to send them to; use a segmenter trained on its classes, or register a mapping "
                "with labelsynth.label_space_mappings.register_label_space_mapping"
            )
        lut[lut < 0] = dont_care
    return SegmenterMapping(lut, target, None, tuple(unmatched), f"segmenter classes matched by name to {target.name}")


# ============================================================================================ the adapter
def _is_universal(model: Any) -> bool:
    return getattr(getattr(model, "config", None), "model_type", "") in _UNIVERSAL_TYPES


class SegmenterAdapter:
    """Wraps a segmenter as ``images [B, 3, H, W] in [-1, 1] -> LongTensor[B, H, W]`` (segmenter ids) at the
    images' resolution, plus `predict` for photos of any sizes with instance maps.

    Args:
        segmenter: a transformers ``AutoModelForSemanticSegmentation`` model, a Mask2Former / MaskFormer / OneFormer
            (universal segmentation) model, or a callable ``images [B, 3, H, W] in [-1, 1] -> logits [B, C, h, w]``
            (float; upsampled bilinearly) or ids ``[B, h, w]`` / ``[B, 1, h, w]`` (integer; nearest), or an object
            with a ``logits`` attribute.
        processor: the model's image processor (resize and normalisation as the segmenter was trained, and the
            post-processing of universal models). If omitted it is loaded from ``segmenter.name_or_path`` when
            possible; a semantic model without one only gets ImageNet mean/std at the image's own size (a warning
            says so); a universal model without one is an error.
        num_classes: number of classes (default: ``config.num_labels``, or the length of `id2label`).
        id2label: class names of a callable (transformers models have ``config.id2label``).
        source_space: the label space the segmenter predicts, when its names do not say it.
    """

    def __init__(self, segmenter: Any, processor: Any = None, num_classes: int | None = None,
                 id2label: Mapping[int, str] | Sequence[str] | None = None,
                 source_space: str | LabelSpace | None = None) -> None:
        self.segmenter = segmenter
        config = getattr(segmenter, "config", None)
        self.is_transformers = config is not None and hasattr(segmenter, "forward") and hasattr(config, "num_labels")
        self.is_universal = self.is_transformers and _is_universal(segmenter)
        if self.is_transformers and processor is None:
            processor = _try_load_processor(segmenter, required=self.is_universal)
        self.processor = processor
        if id2label is None and self.is_transformers:
            id2label = {int(k): str(v) for k, v in config.id2label.items()}
        if id2label is None and source_space is not None:
            id2label = get_label_space(source_space).names
        if isinstance(id2label, Sequence) and not isinstance(id2label, str):
            id2label = dict(enumerate(id2label))
        self.id2label: dict[int, str] | None = dict(id2label) if id2label is not None else None
        if num_classes is None and self.is_transformers:
            num_classes = int(config.num_labels)
        if num_classes is None and self.id2label:
            num_classes = max(self.id2label) + 1
        self.num_classes = num_classes
        self.source_space = source_space
        if self.is_transformers:
            segmenter.eval()

    @property
    def name(self) -> str:
        if self.is_transformers:
            return str(getattr(self.segmenter, "name_or_path", "") or type(self.segmenter).__name__)
        return getattr(self.segmenter, "__name__", type(self.segmenter).__name__)

    def mapping(self, label_space: str | LabelSpace) -> SegmenterMapping:
        """`segmenter_mapping` of this segmenter's classes into `label_space`."""
        if self.id2label is None:
            raise ValueError(f"segmenter {self.name} has no class names: pass id2label= (its class names) or "
                             "source_space= (the label space it predicts) so its ids can be mapped")
        return segmenter_mapping(self.id2label, label_space, source_space=self.source_space)

    # ---------------------------------------------------------------- running
    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Segmenter ids ``LongTensor[B, H, W]`` of images ``[B, 3, H, W]`` in [-1, 1] (the mIoU path)."""
        if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[1] != 3:
            shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
            raise ValueError(f"images must be [B, 3, H, W] in [-1, 1], got shape {shape}")
        size = (int(images.shape[-2]), int(images.shape[-1]))
        if not self.is_transformers:
            return _to_label_map(self.segmenter(images), size)
        arrays = list(_to_uint8(images))
        if self.is_universal:
            return torch.stack(self._universal(arrays, instances=False)[0])
        return _to_label_map(self._semantic_logits(arrays), size)

    @torch.no_grad()
    def predict(self, photos: Sequence[np.ndarray], instances: bool = False
                ) -> tuple[list[torch.Tensor], list[torch.Tensor] | None]:
        """Segment uint8 RGB photos ``(H_i, W_i, 3)`` (sizes may differ).

        Returns:
            ``(ids, instance_maps)``: per photo a ``LongTensor[H_i, W_i]`` of segmenter ids, and (universal models
            with ``instances=True``) a ``LongTensor[H_i, W_i]`` of panoptic segment ids (0 = no segment), else
            ``None``.
        """
        if self.is_universal:
            return self._universal(list(photos), instances=instances)
        if self.is_transformers and self.processor is not None:
            logits = self._semantic_logits(list(photos))  # the processor resizes every photo to one size
            return [_to_label_map(logits[i : i + 1], p.shape[:2])[0] for i, p in enumerate(photos)], None
        out = []
        for photo in photos:  # without a processor the photos keep their own (possibly different) sizes
            images = torch.from_numpy(np.array(photo)).permute(2, 0, 1)[None].float() / 127.5 - 1
            out.append(self(images)[0])
        return out, None

    def _device_dtype(self) -> tuple[torch.device, torch.dtype]:
        parameter = next(self.segmenter.parameters())
        return parameter.device, parameter.dtype

    def _semantic_logits(self, arrays: list[np.ndarray]) -> torch.Tensor:
        device, dtype = self._device_dtype()
        if self.processor is not None:
            pixel_values = self.processor(images=arrays, return_tensors="pt")["pixel_values"]
        else:
            mean = torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1)
            std = torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1)
            images = torch.stack([torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1) for a in arrays])
            pixel_values = (images.float() / 255 - mean) / std
        output = self.segmenter(pixel_values=pixel_values.to(device, dtype))
        return output.logits.float()

    def _universal(self, arrays: list[np.ndarray], instances: bool
                   ) -> tuple[list[torch.Tensor], list[torch.Tensor] | None]:
        device, dtype = self._device_dtype()
        sizes = [tuple(a.shape[:2]) for a in arrays]
        oneformer = self.segmenter.config.model_type == "oneformer"

        def run(task: str) -> Any:
            kwargs = {"task_inputs": [task] * len(arrays)} if oneformer else {}
            inputs = self.processor(images=arrays, return_tensors="pt", **kwargs)
            inputs = {k: v.to(device, dtype) if v.is_floating_point() else v.to(device) for k, v in inputs.items()
                      if isinstance(v, torch.Tensor)}
            return self.segmenter(**inputs)

        outputs = run("semantic")
        semantic = self.processor.post_process_semantic_segmentation(_float_outputs(outputs), target_sizes=sizes)
        semantic = [s.long().cpu() for s in semantic]
        if not instances:
            return semantic, None
        if oneformer:
            outputs = run("panoptic")
        panoptic = self.processor.post_process_panoptic_segmentation(_float_outputs(outputs), target_sizes=sizes)
        instance_maps = []
        for item in panoptic:
            segments = item["segmentation"].long().cpu()
            instance_maps.append(torch.where(segments < 0, torch.zeros_like(segments), segments))
        return semantic, instance_maps


def _float_outputs(outputs: Any) -> Any:
    """bf16 outputs -> float32 (the processors' post-processing runs numpy-style float ops)."""
    for key in ("class_queries_logits", "masks_queries_logits"):
        value = getattr(outputs, key, None)
        if isinstance(value, torch.Tensor):
            setattr(outputs, key, value.float())
    return outputs


def _to_uint8(images: torch.Tensor) -> np.ndarray:
    """``[B, 3, H, W]`` in [-1, 1] -> uint8 ``(B, H, W, 3)``, what image processors are given at training time."""
    arrays = ((images.detach().float().cpu() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
    return arrays.permute(0, 2, 3, 1).numpy()


def _try_load_processor(model: Any, required: bool = False) -> Any:
    name = getattr(model, "name_or_path", None)
    reason = "the model has no name_or_path"
    if name:
        try:
            from transformers import AutoImageProcessor, AutoProcessor

            loader = AutoProcessor if getattr(model.config, "model_type", "") == "oneformer" else AutoImageProcessor
            return loader.from_pretrained(name)
        except Exception as err:  # noqa: BLE001 - offline, no preprocessor_config.json, ...
            reason = f"loading it from {name!r} failed: {err}"
    if required:
        raise ValueError(f"{type(model).__name__} needs its image processor for the post-processing ({reason}); "
                         "pass processor=AutoImageProcessor.from_pretrained(<the segmenter's id or folder>)")
    warnings.warn(
        f"no image processor for the segmenter ({reason}): images are normalised with ImageNet mean/std at their own "
        "size; pass the segmenter's processor for results that match its training", UserWarning, stacklevel=3,
    )
    return None


def _to_label_map(output: Any, size: tuple[int, int]) -> torch.Tensor:
    """Segmenter output (logits, ids, or an object/tuple/dict holding logits) -> ``LongTensor[B, *size]``."""
    size = (int(size[0]), int(size[1]))
    if hasattr(output, "logits"):
        output = output.logits
    elif isinstance(output, (tuple, list)):
        output = output[0]
    elif isinstance(output, Mapping):
        output = output["logits"]
    if not isinstance(output, torch.Tensor):
        output = torch.as_tensor(np.asarray(output))
    if output.is_floating_point():
        if output.dim() != 4:
            raise ValueError(f"segmenter logits must be [B, C, h, w], got shape {tuple(output.shape)}")
        if tuple(output.shape[-2:]) != size:
            output = F.interpolate(output.float(), size=size, mode="bilinear", align_corners=False)
        return output.argmax(dim=1).long().cpu()
    if output.dim() == 4 and output.shape[1] == 1:
        output = output[:, 0]
    if output.dim() != 3:
        raise ValueError(f"a segmenter label map must be [B, h, w], got shape {tuple(output.shape)}")
    if tuple(output.shape[-2:]) != size:
        output = F.interpolate(output[:, None].float(), size=size, mode="nearest")[:, 0]
    return output.long().cpu()


def load_segmenter(segmenter: Any, *, processor: Any = None, device: str | torch.device | None = None,
                   dtype: torch.dtype | str | None = None, id2label: Mapping[int, str] | Sequence[str] | None = None,
                   source_space: str | LabelSpace | None = None) -> SegmenterAdapter:
    """A `SegmenterAdapter` from a Hub id / folder, a loaded model, an adapter (returned as is) or a callable.

    Ids and folders load with ``AutoModelForSemanticSegmentation``, or ``AutoModelForUniversalSegmentation`` for
    Mask2Former / MaskFormer / OneFormer, and their processor (``AutoImageProcessor``; ``AutoProcessor`` for
    OneFormer). `device` / `dtype` (e.g. ``"cuda"``, ``torch.bfloat16``) move transformers models.

    Raises:
        ValueError: the location cannot be loaded as a segmenter.
    """
    if isinstance(segmenter, SegmenterAdapter):
        return segmenter
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    if isinstance(segmenter, (str, os.PathLike)):
        from transformers import (
            AutoConfig,
            AutoImageProcessor,
            AutoModelForSemanticSegmentation,
            AutoModelForUniversalSegmentation,
            AutoProcessor,
        )

        location = os.fspath(segmenter)
        path = Path(location).expanduser()
        source = str(path) if path.is_dir() else location
        try:
            config = AutoConfig.from_pretrained(source)
            universal = config.model_type in _UNIVERSAL_TYPES
            loader = AutoModelForUniversalSegmentation if universal else AutoModelForSemanticSegmentation
            model = loader.from_pretrained(source)
        except (OSError, ValueError, KeyError) as err:
            raise ValueError(f"segmenter {location!r}: cannot load it as a transformers segmentation model "
                             f"(AutoModelForSemanticSegmentation / Mask2Former / MaskFormer / OneFormer): {err}"
                             ) from None
        if processor is None:
            try:
                loader = AutoProcessor if config.model_type == "oneformer" else AutoImageProcessor
                processor = loader.from_pretrained(source)
            except (OSError, ValueError) as err:
                raise ValueError(f"segmenter {location!r}: cannot load its image processor: {err}") from None
        segmenter = model
    if isinstance(segmenter, torch.nn.Module) and hasattr(segmenter, "config"):
        segmenter = segmenter.to(device=device, dtype=dtype) if device is not None or dtype is not None else segmenter
    elif not callable(segmenter):
        raise ValueError(f"segmenter must be a Hub id, a folder, a transformers segmentation model or a callable, "
                         f"got {type(segmenter).__name__}")
    return SegmenterAdapter(segmenter, processor, id2label=id2label, source_space=source_space)


# ============================================================================================ segment()
@dataclass
class SegmentationResult:
    """One segmented photo, in a labelsynth label space.

    Attributes:
        label_map: int64 ``(H, W)`` ids of `label_space` at the photo's size.
        instance_map: int64 ``(H, W)`` segment ids (0 = no segment) from a panoptic segmenter, else ``None``.
        label_space: the target label space.
        segmenter: the segmenter's name.
        mapping: how its classes were mapped (`SegmenterMapping`; ``mapping.unmapped`` went to don't-care).
        segmenter_ids: int64 ``(H, W)`` ids as the segmenter predicted them (before mapping).
    """

    label_map: np.ndarray
    instance_map: np.ndarray | None
    label_space: LabelSpace
    segmenter: str
    mapping: SegmenterMapping
    segmenter_ids: np.ndarray = field(repr=False)

    def colorize(self) -> Any:
        """The label map drawn with the label space's palette (PIL RGB image)."""
        import PIL.Image

        return PIL.Image.fromarray(self.label_space.colorize(self.label_map))

    def save(self, path: str | os.PathLike, colorized: bool = False) -> None:
        """Write the label map as an index PNG (16-bit when ids exceed 255), or in the palette with `colorized`."""
        import PIL.Image

        if colorized:
            self.colorize().save(path)
            return
        ids = self.label_map
        image = PIL.Image.fromarray(ids.astype(np.uint8)) if int(ids.max(initial=0)) <= 255 else \
            PIL.Image.fromarray(ids.astype(np.uint16))
        image.save(path)


def _load_photo(photo: Any, index: int) -> np.ndarray:
    """A photo (path, PIL image, uint8 ``(H, W, 3)`` array, ``(3, H, W)`` tensor in [0, 1]) -> uint8 RGB array."""
    import PIL.Image
    import PIL.ImageOps

    what = f"photo #{index}"
    if isinstance(photo, (str, os.PathLike)):
        if not os.path.isfile(photo):
            raise ValueError(f"{what}: {os.fspath(photo)} is not a file")
        with PIL.Image.open(photo) as image:
            return np.asarray(PIL.ImageOps.exif_transpose(image).convert("RGB"))
    if isinstance(photo, PIL.Image.Image):
        return np.asarray(photo.convert("RGB"))
    if isinstance(photo, torch.Tensor):
        if photo.dim() != 3 or photo.shape[0] != 3:
            raise ValueError(f"{what}: a tensor photo must be (3, H, W) in [0, 1], got {tuple(photo.shape)}")
        return (photo.detach().float().cpu().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    array = np.asarray(photo)
    if array.ndim != 3 or array.shape[-1] != 3 or array.dtype != np.uint8:
        raise ValueError(f"{what}: an array photo must be uint8 (H, W, 3) RGB, got {array.dtype} {array.shape}")
    return array


def segment(
    photos: Any,
    segmenter: Any,
    label_space: str | LabelSpace,
    *,
    processor: Any = None,
    device: str | torch.device | None = None,
    dtype: torch.dtype | str | None = None,
    batch_size: int = 4,
    instances: bool = True,
    id2label: Mapping[int, str] | Sequence[str] | None = None,
    source_space: str | LabelSpace | None = None,
) -> SegmentationResult | list[SegmentationResult]:
    """Segment photo(s) and map the result into `label_space` (see the module docstring).

    Args:
        photos: One photo or a list: paths, PIL images, uint8 ``(H, W, 3)`` arrays, ``(3, H, W)`` tensors in [0, 1].
        segmenter: Hub id or folder, a transformers segmentation model, a `SegmenterAdapter`, or a callable
            ``images FloatTensor[B, 3, H, W] in [-1, 1] -> logits [B, C, h, w] or ids [B, h, w]`` (then give
            `id2label` or `source_space`).
        label_space: The label space of the result (e.g. the model's: ``"ade20k"``, ``"cityscapes"``).
        processor: The segmenter's image processor (default: loaded with it).
        device, dtype: Where and in what precision a transformers segmenter runs (e.g. ``"cuda"``,
            ``torch.bfloat16``).
        batch_size: Photos per forward pass.
        instances: Also compute instance maps where the segmenter can (panoptic post-processing).
        id2label, source_space: Class names / label space of a callable segmenter.

    Returns:
        A `SegmentationResult` (a list of them for a list of photos).

    Raises:
        ValueError: unreadable photos, a segmenter that cannot be loaded, or classes that cannot be mapped.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    single = not isinstance(photos, (list, tuple))
    items = [photos] if single else list(photos)
    if not items:
        raise ValueError("no photos given; pass a path, image or array (or a non-empty list)")
    adapter = load_segmenter(segmenter, processor=processor, device=device, dtype=dtype, id2label=id2label,
                             source_space=source_space)
    mapping = adapter.mapping(label_space)
    results = []
    for start in range(0, len(items), batch_size):
        arrays = [_load_photo(p, start + i) for i, p in enumerate(items[start : start + batch_size])]
        ids, instance_maps = adapter.predict(arrays, instances=instances)
        for i, predicted in enumerate(ids):
            if int(predicted.max()) >= len(mapping.lut) or int(predicted.min()) < 0:
                raise ValueError(f"the segmenter predicted ids up to {int(predicted.max())} but has "
                                 f"{len(mapping.lut)} classes; give its id2label")
            instance = instance_maps[i].numpy().astype(np.int64) if instance_maps is not None else None
            results.append(SegmentationResult(
                label_map=np.asarray(mapping(predicted.numpy()), dtype=np.int64), instance_map=instance,
                label_space=mapping.target, segmenter=adapter.name, mapping=mapping,
                segmenter_ids=predicted.numpy().astype(np.int64),
            ))
    return results[0] if single else results


# ============================================================================================ style from the photo
def photo_style_inputs(model: Any, photo: Any, photo_label_map: Any, label_map: Any = None, *,
                       new_region_style: str | int | None = None, processor: Any = None) -> dict[str, Any]:
    """Pipeline keyword arguments that take the style from the photo itself (reconstruction / editing).

    * SPADE-VAE (``config.use_vae``) and pix2pixHD with its feature encoder: ``style_image=photo`` (the encoder's
      latent of the whole photo).
    * SEAN: per-region styles encoded from the photo and its segmentation. Classes in `label_map` (the edited map)
      but not in the photo have no style of their own: they take the style of the class `new_region_style` (a class
      name or id present in the photo), or, by default, **the mean of the photo's region styles** (its average look).
      Regions kept from the photo keep their own style.
    * CoCosNet: ``exemplar=photo, exemplar_label_map=photo_label_map``.
    * A segmentation ControlNet (`labelsynth.diffusion.ControlNetSegPipeline`): ``image=photo``, img2img with the
      photo as init image (pass ``strength=`` to the pipeline as well to choose how much of it is re-noised).

    Args:
        model: The labelsynth model (or a ``"label-to-image"`` pipeline).
        photo: The photo (path, PIL image, uint8 array).
        photo_label_map: Its segmentation in the model's label space (e.g. ``segment(...).label_map``).
        label_map: The (edited) map that will be generated; SEAN needs it to fill new regions.
        new_region_style: SEAN: class whose photo style new regions take (default: the mean of the photo's styles).
        processor: The model's `LabelMapProcessor` (default: the pipeline's, or one built from the config).

    Returns:
        ``{input name: value}`` to pass to the pipeline with `label_map`.

    Raises:
        ValueError: the model takes no style source (e.g. pix2pix, CRN, OASIS), or `new_region_style` is not a class
            of the photo.
    """
    from .diffusion.pipeline_controlnet_seg import ControlNetSegPipeline  # torch only; diffusers when loading

    if isinstance(model, ControlNetSegPipeline):
        return {"image": photo}
    pipe_processor = getattr(model, "image_processor", None)
    model = getattr(model, "model", model)
    accepted = getattr(model, "pipeline_inputs", {})
    config = model.config
    kind = type(model).__name__
    if "exemplar" in accepted:
        return {"exemplar": photo, "exemplar_label_map": photo_label_map}
    if "styles" in accepted:  # SEAN
        if label_map is None:
            return {"style_image": photo, "style_label_map": photo_label_map}
        return {"styles": _sean_photo_styles(model, processor or pipe_processor, photo, photo_label_map, label_map,
                                             new_region_style)}
    if "style_image" in accepted and (getattr(config, "use_vae", False) or getattr(model, "encoder", None) is not None
                                      or getattr(config, "use_features", False)):
        return {"style_image": photo}
    raise ValueError(
        f"{kind} takes no style source, so it cannot take the photo's look: use a model with a style encoder "
        "(SPADE with use_vae=True, SEAN) or an exemplar (CoCosNet); this model generates from the label map alone"
    )


def _sean_photo_styles(model: Any, processor: Any, photo: Any, photo_label_map: Any, label_map: Any,
                       new_region_style: str | int | None) -> Any:
    if processor is None:
        from .processing import LabelMapProcessor

        processor = LabelMapProcessor(label_space=model.config.label_space, size=tuple(model.config.image_size))
    photo_ids = processor(photo_label_map, return_tensors="pt")["label_map"]
    target_ids = processor(label_map, size={"height": photo_ids.shape[-2], "width": photo_ids.shape[-1]},
                           return_tensors="pt")["label_map"]
    image = processor.preprocess_images(photo, tuple(photo_ids.shape[-2:]), what="photo")
    with torch.no_grad():
        styles = model.encode_styles(image.to(model.device, model.dtype), photo_ids.to(model.device))
    codes = styles.codes.clone()
    num_classes = codes.shape[2]
    # Classes of the photo (its style exists) and of the map to generate; ignore values are no class.
    present = torch.bincount(photo_ids[photo_ids < num_classes].flatten(), minlength=num_classes) > 0
    wanted = torch.bincount(target_ids[target_ids < num_classes].flatten(), minlength=num_classes) > 0
    new = (wanted & ~present).nonzero().flatten()
    if len(new):
        if new_region_style is None:
            fill = codes[:, :, present.to(codes.device)].mean(dim=2)
        else:
            names = list(styles.class_names)
            index = names.index(new_region_style) if isinstance(new_region_style, str) and \
                new_region_style in names else new_region_style
            if not isinstance(index, int) or not 0 <= index < num_classes or not bool(present[index]):
                shown = [names[i] for i in present.nonzero().flatten().tolist()]
                raise ValueError(f"new_region_style {new_region_style!r} is not a class of the photo; choose one of "
                                 f"{shown}")
            fill = codes[:, :, index]
        codes[:, :, new.to(codes.device)] = fill[:, :, None]
    return type(styles)(codes, styles.block_names, styles.class_names)
