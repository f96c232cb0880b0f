"""Segmentation-based evaluation of semantic image synthesis: mIoU and pixel accuracy of a segmenter on generated
images against the input label maps (the protocol of pix2pixHD / SPADE / OASIS).

**Protocol.** A semantic segmentation network is run on each *generated* image at the generated resolution (its
logits are bilinearly resized to that resolution before the arg-max); the ground truth is the label map the image
was generated from, nearest-resized to the same resolution (which it already is when it went through
`LabelMapProcessor`) and mapped to the segmenter's class ids with a *label mapping* (e.g. Cityscapes labelIds ->
trainIds, ADE20K raw ids 1..150 -> 0..149 with 0 ignored). Confusion matrices are summed over the whole set before
IoUs are taken (dataset-level mIoU, as mmsegmentation and ``evaluate``'s ``mean_iou`` compute it).

Numbers depend on the segmenter: the papers used DRN-D-105 (Cityscapes), UperNet-101 (ADE20K) and DeepLab-v2
(COCO-Stuff); any other network gives numbers that are only comparable among themselves. Report which one you used.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

from ..segmentation import SegmenterAdapter

__all__ = [
    "LABEL_MAPPINGS",
    "SegmentationMetric",
    "SegmenterAdapter",
    "ade20k_to_segmenter_ids",
    "make_label_mapping",
    "segment_images",
]

DEFAULT_IGNORE_INDEX = 255


class SegmentationMetric:
    """Accumulates a confusion matrix and reports mIoU, pixel accuracy and per-class IoU.

    Args:
        num_classes: number of classes; valid ids are ``0 .. num_classes - 1``.
        ignore_index: ground-truth value of pixels that are not scored (255 by default). Ground-truth values outside
            the class range other than `ignore_index` raise an error; so do predictions outside the range.

    Definitions (``C[g, p]`` = number of pixels of ground-truth class g predicted as p, ignored pixels excluded):

    * IoU of class c = ``C[c, c] / (sum_p C[c, p] + sum_g C[g, c] - C[c, c])``. A class that appears **neither in the
      ground truth nor in the predictions** (empty union) has no IoU (NaN) and is **excluded** from the mean; a class
      that is only predicted (false positives) or only present in the ground truth counts with IoU 0.
    * ``mean_iou``: mean IoU over the classes that have one.
    * ``pixel_accuracy``: correctly predicted pixels / scored pixels (``evaluate``'s ``overall_accuracy``).
    * ``mean_accuracy``: mean over classes present in the ground truth of ``C[c, c] / sum_p C[c, p]``.

    Example:
        >>> metric = SegmentationMetric(num_classes=3)
        >>> _ = metric.update(torch.tensor([[0, 1], [2, 2]]), torch.tensor([[0, 1], [1, 255]]))
        >>> metric.compute()["mean_iou"]  # IoUs 1, 1/2, 0 (class 2 only predicted)
        0.5
    """

    def __init__(self, num_classes: int, ignore_index: int | None = DEFAULT_IGNORE_INDEX) -> None:
        if int(num_classes) < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = int(num_classes)
        self.ignore_index = ignore_index
        if ignore_index is not None and 0 <= ignore_index < self.num_classes:
            raise ValueError(f"ignore_index {ignore_index} is a class id (0..{self.num_classes - 1}); use a value "
                             "outside the class range such as 255")
        self.confusion = torch.zeros(self.num_classes, self.num_classes, dtype=torch.int64)

    def reset(self) -> None:
        self.confusion.zero_()

    def update(self, predictions: Any, references: Any) -> SegmentationMetric:
        """Add predicted and ground-truth label maps of the same shape (any shape, e.g. ``[B, H, W]``).

        Both may be numpy arrays or torch tensors of integer ids. Returns self.
        """
        pred = _as_long_tensor(predictions, "predictions")
        ref = _as_long_tensor(references, "references")
        if pred.shape != ref.shape:
            raise ValueError(
                f"predictions {tuple(pred.shape)} and references {tuple(ref.shape)} differ in shape; resize the "
                "ground truth to the prediction's size with nearest interpolation first"
            )
        pred, ref = pred.reshape(-1).cpu(), ref.reshape(-1).cpu()
        keep = ref != self.ignore_index if self.ignore_index is not None else torch.ones_like(ref, dtype=torch.bool)
        pred, ref = pred[keep], ref[keep]
        for name, values in (("references", ref), ("predictions", pred)):
            bad = (values < 0) | (values >= self.num_classes)
            if bool(bad.any()):
                shown = torch.unique(values[bad])[:6].tolist()
                extra = f" or ignore_index {self.ignore_index}" if name == "references" else ""
                raise ValueError(
                    f"{name} contain ids {shown} outside 0..{self.num_classes - 1}{extra}; map the labels to the "
                    "segmenter's classes (label_mapping) or set num_classes"
                )
        index = ref * self.num_classes + pred
        self.confusion += torch.bincount(index, minlength=self.num_classes ** 2).reshape(self.num_classes,
                                                                                         self.num_classes)
        return self

    def merge(self, other: SegmentationMetric) -> SegmentationMetric:
        if other.num_classes != self.num_classes:
            raise ValueError(f"cannot merge a {other.num_classes}-class metric into a {self.num_classes}-class one")
        self.confusion += other.confusion
        return self

    def compute(self) -> dict[str, Any]:
        """``{"mean_iou", "pixel_accuracy", "mean_accuracy", "per_class_iou", "per_class_accuracy",
        "num_scored_pixels", "num_classes_scored"}``; per-class lists hold NaN for classes without a value."""
        confusion = self.confusion.double()
        true_positive = torch.diagonal(confusion)
        gt_area = confusion.sum(dim=1)
        pred_area = confusion.sum(dim=0)
        union = gt_area + pred_area - true_positive
        nan = torch.full_like(true_positive, float("nan"))
        iou = torch.where(union > 0, true_positive / union.clamp(min=1), nan)
        accuracy = torch.where(gt_area > 0, true_positive / gt_area.clamp(min=1), nan)
        total = float(confusion.sum())
        scored = ~torch.isnan(iou)
        return {
            "mean_iou": float(iou[scored].mean()) if bool(scored.any()) else float("nan"),
            "pixel_accuracy": float(true_positive.sum()) / total if total else float("nan"),
            "mean_accuracy": float(accuracy[~torch.isnan(accuracy)].mean()) if bool((gt_area > 0).any())
            else float("nan"),
            "per_class_iou": iou.tolist(),
            "per_class_accuracy": accuracy.tolist(),
            "num_scored_pixels": int(total),
            "num_classes_scored": int(scored.sum()),
        }


def _as_long_tensor(x: Any, name: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        tensor = x
    else:
        tensor = torch.from_numpy(np.ascontiguousarray(np.asarray(x)))
    if tensor.is_floating_point() or tensor.is_complex() or tensor.dtype == torch.bool:
        raise ValueError(f"{name} must hold integer class ids, got dtype {tensor.dtype}")
    return tensor.long()


# --------------------------------------------------------------------------------------------- label mappings
def _table_mapping(source: str, target: str) -> Callable[..., Any]:
    """Ground-truth ids of `source` -> segmenter ids of `target` through the `labelsynth.label_space_mappings` table
    (the one `labelsynth.segmentation` reads the other way); unmapped ids and `ignore_index` -> `ignore_index`."""

    def apply(ids: Any, ignore_index: int = DEFAULT_IGNORE_INDEX) -> Any:
        from ..label_space_mappings import get_label_space_mapping

        mapping = get_label_space_mapping(source, target)
        table = mapping.lut()[: mapping.source.num_classes]
        table = np.where(table == mapping.unmapped_id, ignore_index, table)
        lut = np.full(max(len(table), ignore_index + 1), ignore_index, dtype=np.int64)
        lut[: len(table)] = table
        if isinstance(ids, torch.Tensor):
            ids = ids.long()
            if bool(((ids < 0) | (ids >= len(lut))).any()):
                raise ValueError(f"{source} label ids outside 0..{len(lut) - 1}")
            return torch.as_tensor(lut, device=ids.device)[ids]
        ids = np.asarray(ids).astype(np.int64)
        if ids.size and (ids.min() < 0 or ids.max() >= len(lut)):
            raise ValueError(f"{source} label ids outside 0..{len(lut) - 1}")
        return lut[ids]

    return apply


_ADE20K_TO_SEGMENTER = _table_mapping("ade20k", "ade20k-reduced")


def ade20k_to_segmenter_ids(ids: Any, ignore_index: int = DEFAULT_IGNORE_INDEX) -> Any:
    """ADE20K raw ids (0 = "other", 1..150 = SceneParse150 classes) -> segmenter ids 0..149, 0 -> `ignore_index`.

    This is the ``reduce_labels`` convention of ADE20K segmenters (mmsegmentation, transformers' SegFormer/UperNet
    ADE20K checkpoints, ``evaluate``'s ``mean_iou(reduce_labels=True)``): the ``ade20k -> ade20k-reduced`` table of
    `labelsynth.label_space_mappings`. An existing `ignore_index` stays ignored. Numpy in, numpy out; torch in,
    torch out.
    """
    return _ADE20K_TO_SEGMENTER(ids, ignore_index=ignore_index)


_cityscapes = _table_mapping("cityscapes", "cityscapes-trainid")


def _identity(ids: Any, ignore_index: int = DEFAULT_IGNORE_INDEX) -> Any:
    return ids


LABEL_MAPPINGS: dict[str, Callable[..., Any]] = {
    "identity": _identity,
    "none": _identity,
    "ade20k": ade20k_to_segmenter_ids,
    "cityscapes": _cityscapes,
}


def make_label_mapping(spec: str | Callable[[Any], Any] | Mapping[int, int] | Sequence[int] | np.ndarray | None,
                       ignore_index: int = DEFAULT_IGNORE_INDEX) -> Callable[[torch.Tensor], torch.Tensor]:
    """Turn a label-mapping spec into a function ``LongTensor -> LongTensor`` (ground-truth ids -> segmenter ids).

    Args:
        spec: ``None`` / ``"identity"`` (ids already are the segmenter's), ``"ade20k"`` (raw 1..150 -> 0..149,
            0 ignored), ``"cityscapes"`` (labelIds 0..33 -> trainIds 0..18, others ignored, via
            the `labelsynth.label_space_mappings` tables), a callable (applied as is), a dict
            ``{gt_id: segmenter_id}`` (ids not in it become `ignore_index`), a lookup table (array/list indexed by
            the ground-truth id), or ``"<space> -> <space>"`` naming a registered label-space table (e.g.
            ``"coco-stuff -> coco-stuff-171"``).
        ignore_index: the value unmapped pixels get.
    """
    if spec is None:
        spec = "identity"
    if isinstance(spec, str) and "->" in spec:  # "<space> -> <space>": a registered label-space table
        source, target = (part.strip() for part in spec.split("->", 1))
        function = _table_mapping(source, target)
        function(np.zeros(1, dtype=np.int64), ignore_index=ignore_index)  # unknown spaces/tables fail here
        return lambda ids: _to_tensor_like(function(ids, ignore_index=ignore_index), ids)
    if isinstance(spec, str):
        key = spec.lower().replace("_", "-")
        key = {"ade20k-150": "ade20k", "ade": "ade20k", "cityscapes-trainid": "cityscapes"}.get(key, key)
        if key not in LABEL_MAPPINGS:
            raise ValueError(f"unknown label mapping {spec!r}; use one of {sorted(LABEL_MAPPINGS)}, a callable, a "
                             "dict {gt_id: segmenter_id} or a lookup table")
        function = LABEL_MAPPINGS[key]
        return lambda ids: _to_tensor_like(function(ids, ignore_index=ignore_index), ids)
    if callable(spec):
        return lambda ids: _to_tensor_like(spec(ids), ids)
    if isinstance(spec, Mapping):
        size = max(max(int(k) for k in spec) + 1, ignore_index + 1) if spec else ignore_index + 1
        lut = np.full(size, ignore_index, dtype=np.int64)
        for key, value in spec.items():
            lut[int(key)] = int(value)
    else:
        lut = np.asarray(spec, dtype=np.int64)
        if lut.ndim != 1:
            raise ValueError(f"a label-mapping lookup table must be 1-D, got shape {lut.shape}")
        if lut.shape[0] <= ignore_index:
            lut = np.concatenate([lut, np.full(ignore_index + 1 - lut.shape[0], ignore_index, dtype=np.int64)])
            lut[ignore_index] = ignore_index
    table = torch.from_numpy(lut)

    def apply(ids: torch.Tensor) -> torch.Tensor:
        ids = ids.long()
        if bool(((ids < 0) | (ids >= table.shape[0])).any()):
            raise ValueError(f"label ids outside the mapping table (0..{table.shape[0] - 1})")
        return table.to(ids.device)[ids]

    return apply


def _to_tensor_like(result: Any, like: torch.Tensor) -> torch.Tensor:
    if isinstance(result, torch.Tensor):
        return result.long().to(like.device)
    return torch.as_tensor(np.asarray(result), dtype=torch.long, device=like.device)


# --------------------------------------------------------------------------------------------- segmenters
# `SegmenterAdapter` lives in `labelsynth.segmentation`: the photo workflow and mIoU share it.


def segment_images(images: torch.Tensor, segmenter: Any, processor: Any = None) -> torch.Tensor:
    """Predicted class ids ``LongTensor[B, H, W]`` of images ``[B, 3, H, W]`` in [-1, 1], at the images' resolution.

    `segmenter` is a `SegmenterAdapter`, a transformers semantic-segmentation model (with its `processor`) or a
    callable; see `SegmenterAdapter`.
    """
    adapter = segmenter if isinstance(segmenter, SegmenterAdapter) else SegmenterAdapter(segmenter, processor)
    return adapter(images)
