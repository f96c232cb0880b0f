"""`evaluate_model`: the one evaluation protocol of labelsynth (used by ``labelsynth evaluate`` and the trainer).

Protocol, for each dataset row ``{"image": photo, "label": label map, "instance"?: instance map}``:

1. The label map (and instance map) is resized with nearest-neighbour to the model's resolution
   (``config.image_size``) by the model's `LabelMapProcessor`; the row's photo is resized **the same way** (same
   geometry: "fixed" resize or "keep_aspect" resize + centre crop; bicubic, PIL) and scaled to [-1, 1].
2. The model generates one image from the label map (+ instance map; + the row's own photo as style image when
   ``use_style=True``, for style-encoder models: the reconstruction setting of SEAN-style tables). Randomness (z or
   the posterior noise) is drawn per row from ``seed + row index``, so results do not depend on the batch size.
3. Generated images are quantised to 8 bits (as if saved to PNG) unless ``quantize=False``.
4. Metrics at the generated resolution:
   * ``fid``, ``kid``: Inception features of the generated images vs the resized real photos (pytorch-fid input
     handling: bilinear resize to 299, [-1, 1]); FID with float64 statistics, KID as the mean (and std) of the
     unbiased MMD^2 over ``kid_subsets`` subsets of ``min(kid_subset_size, N)`` images.
   * ``miou`` (with ``pixel_accuracy``, ``mean_accuracy``, ``per_class_iou``): the segmenter's prediction on each
     generated image vs the resized label map mapped to the segmenter's ids (``label_mapping``; "auto" picks the
     ADE20K / Cityscapes mapping from the model's label space and the segmenter's class count).
     ``miou_real`` scores the segmenter on the real photos with the same labels: the reference a generator is
     measured against.
   * ``psnr``, ``ssim``, ``rmse``: per-image comparison with the row's resized photo (``data_range`` 2 for [-1, 1];
     RMSE is reported on the [0, 1] scale), averaged over images.

FID/KID computed with random Inception weights (``inception="random"``), or mIoU from a segmenter other than the
papers', are **not comparable to published numbers**; the result says which weights and segmenter were used.
"""

from __future__ import annotations

import inspect
import math
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .fid import compute_fid, compute_kid, kid_subset_size
from .image import psnr, rmse, ssim
from .inception import FID_WEIGHTS_FILENAME, INCEPTION_WEIGHTS_ENV, InceptionFeatureExtractor, find_inception_weights
from .segmentation import SegmentationMetric, SegmenterAdapter, make_label_mapping

__all__ = ["ALL_METRICS", "DEFAULT_METRICS", "evaluate_model", "resolve_label_mapping"]

DEFAULT_METRICS = ("fid", "kid", "miou", "psnr", "ssim")
ALL_METRICS = ("fid", "kid", "miou", "miou_real", "psnr", "ssim", "rmse")
_LABEL_KEYS = ("label", "label_map")
_INSTANCE_KEYS = ("instance", "instance_map")
_IMAGE_KEYS = ("image", "photo")


def resolve_label_mapping(spec: Any, label_space_name: str | None, num_classes: int | None) -> Any:
    """``"auto"`` -> ``"ade20k"`` for ADE20K models scored by a 150-class segmenter, ``"cityscapes"`` for Cityscapes
    (labelIds) models scored by a 19-class segmenter, else ``"identity"``. Other specs are returned unchanged."""
    if not (isinstance(spec, str) and spec.lower() == "auto"):
        return spec
    name = (label_space_name or "").lower()
    if name.startswith("ade20k") and num_classes == 150:
        return "ade20k"
    if name in ("cityscapes", "cityscapes-35") and num_classes == 19:
        return "cityscapes"
    return "identity"


def _first(row: Mapping[str, Any], keys: Sequence[str], what: str, required: bool = True) -> Any:
    for key in keys:
        if key in row and row[key] is not None:
            return row[key]
    if required:
        raise ValueError(f"dataset row has no {what} (looked for keys {list(keys)}; row keys: {sorted(row)})")
    return None


def _unwrap(model_or_pipeline: Any, processor: Any) -> tuple[Any, Any]:
    if hasattr(model_or_pipeline, "model") and hasattr(model_or_pipeline, "image_processor"):
        return model_or_pipeline.model, processor or model_or_pipeline.image_processor
    model = model_or_pipeline
    if processor is None:
        from ..processing import LabelMapProcessor

        config = model.config
        processor = LabelMapProcessor(label_space=config.label_space, size=tuple(config.image_size))
    return model, processor


def _resolve_inception(inception: Any) -> InceptionFeatureExtractor | Any:
    if isinstance(inception, str) and inception == "random":
        return InceptionFeatureExtractor(None)
    if inception is None:
        from ..hub.download import DownloadError

        try:
            path = find_inception_weights(None, download=True)
        except DownloadError as err:
            raise ValueError(
                f"FID/KID need the Inception weights {FID_WEIGHTS_FILENAME}, which are not here and could not be "
                f"downloaded ({err}): pass inception=<path> (or set {INCEPTION_WEIGHTS_ENV}), or inception='random' "
                "for random weights (not comparable to published numbers)"
            ) from None
        return InceptionFeatureExtractor(path)
    if isinstance(inception, (str, os.PathLike)):
        return InceptionFeatureExtractor(inception)
    if not callable(inception):
        raise TypeError(f"inception must be an InceptionFeatureExtractor, a weights path, 'random' or None, got "
                        f"{type(inception).__name__}")
    return inception


def _quantize(images: torch.Tensor) -> torch.Tensor:
    return ((images.float().clamp(-1, 1) + 1) * 127.5).round() / 127.5 - 1


def _accepts(function: Any, name: str) -> bool:
    try:
        return name in inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False


def _json_float(value: float) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def evaluate_model(
    model_or_pipeline: Any,
    rows: Iterable[Mapping[str, Any]],
    metrics: Sequence[str] = DEFAULT_METRICS,
    *,
    inception: Any = None,
    segmenter: Any = None,
    segmenter_processor: Any = None,
    num_classes: int | None = None,
    label_mapping: Any = "auto",
    ignore_index: int = 255,
    processor: Any = None,
    batch_size: int = 8,
    num_samples: int | None = None,
    seed: int = 0,
    use_style: bool = False,
    quantize: bool = True,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    save_images_to: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Generate an image for each dataset row and score the set (see the module docstring for the protocol).

    Args:
        model_or_pipeline: a labelsynth model (e.g. `SPADEModel`) or a ``"label-to-image"`` pipeline.
        rows: iterable of mappings with ``"image"`` (PIL image / array: the real photo), ``"label"`` (label map in
            any form `LabelMapProcessor` accepts) and optionally ``"instance"`` (instance map). A
            ``datasets.Dataset`` works as is.
        metrics: any of ``"fid", "kid", "miou", "miou_real", "psnr", "ssim", "rmse"``.
        inception: for fid/kid: an `InceptionFeatureExtractor` (or any callable ``images [B,3,H,W] in [-1,1] ->
            [B, d]``), the path of the FID weights, ``"random"`` (random weights; not comparable), or None (look up
            ``$LABELSYNTH_INCEPTION_WEIGHTS`` and the torch hub cache, else raise).
        segmenter: for miou: a transformers semantic or universal (Mask2Former, ...) segmentation model, a
            `SegmenterAdapter`, or a callable (see `labelsynth.segmentation.SegmenterAdapter`, the adapter the photo
            workflow uses too).
        segmenter_processor: the segmenter's image processor (transformers models).
        num_classes: the segmenter's class count (default: ``segmenter.config.num_labels``).
        label_mapping: ground-truth ids -> segmenter ids: ``"auto"`` (default), ``"identity"``, ``"ade20k"``,
            ``"cityscapes"``, ``"<space> -> <space>"``, a callable, a dict or a lookup table (see
            `make_label_mapping`). ``"auto"`` also finds the table to a segmenter recognised as another known space
            (e.g. ``"coco-stuff -> coco-stuff-171"``).
        ignore_index: ground-truth value excluded from mIoU.
        processor: the model's `LabelMapProcessor` (default: the pipeline's, or one built from the model config).
        batch_size: images generated and scored at once.
        num_samples: score only the first N rows (default: all).
        seed: base seed; row i uses ``seed + i``.
        use_style: feed each row's photo as the style image (style-encoder models only).
        quantize: round generated images to 8 bits before scoring (as saving PNGs does).
        kid_subsets, kid_subset_size: KID subsets (size capped at the number of images).
        save_images_to: optional folder; generated images are written there as ``{index:06d}.png``.

    Returns:
        A JSON-serialisable dict: the requested metrics (``fid``; ``kid`` and ``kid_std``; ``miou``,
        ``pixel_accuracy``, ``mean_accuracy``, ``per_class_iou`` (name -> IoU or None); ``miou_real`` ...;
        ``psnr``, ``ssim``, ``rmse``), and the protocol: ``num_samples``, ``resolution`` [H, W], ``seed``,
        ``use_style``, ``quantize``, ``inception_weights`` / ``fid_comparable``, ``segmenter``, ``label_mapping``,
        and ``notes`` (caveats such as a small-sample FID or rows without instance maps) when there are any.
    """
    metrics = tuple(dict.fromkeys(m.strip().lower() for m in metrics))
    unknown = sorted(set(metrics) - set(ALL_METRICS))
    if unknown or not metrics:
        raise ValueError(f"unknown metrics {unknown}; choose from {list(ALL_METRICS)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    model, processor = _unwrap(model_or_pipeline, processor)
    config = model.config
    resolution = tuple(int(s) for s in config.image_size)

    extractor = _resolve_inception(inception) if {"fid", "kid"} & set(metrics) else None
    adapter = None
    mapping_name = None
    if {"miou", "miou_real"} & set(metrics):
        if segmenter is None:
            raise ValueError("miou needs a segmenter (a transformers AutoModelForSemanticSegmentation or a callable)")
        adapter = segmenter if isinstance(segmenter, SegmenterAdapter) else SegmenterAdapter(
            segmenter, segmenter_processor, num_classes)
        classes = num_classes or adapter.num_classes
        if classes is None:
            raise ValueError("miou with a callable segmenter needs num_classes")
        mapping_name = resolve_label_mapping(label_mapping, processor.label_space.name, classes)
        if mapping_name == "identity" and label_mapping == "auto":
            mapping_name = _segmenter_table(adapter, processor.label_space) or mapping_name
        map_labels = make_label_mapping(mapping_name, ignore_index=ignore_index)
        seg_fake = SegmentationMetric(classes, ignore_index)
        seg_real = SegmentationMetric(classes, ignore_index)

    if use_style and getattr(model, "encoder", None) is None and not getattr(config, "use_vae", False):
        raise ValueError("use_style needs a model with a style encoder (e.g. SPADE with use_vae=True)")
    needs_instances = bool(getattr(config, "use_instance_edges", False))
    pass_noise = bool(getattr(config, "use_vae", False)) and _accepts(model.forward, "noise")
    pass_generator = _accepts(model.forward, "generator")
    z_dim = getattr(config, "z_dim", None)
    save_dir = Path(save_images_to) if save_images_to is not None else None
    if save_dir is not None:
        save_dir.mkdir(parents=True, exist_ok=True)

    real_features: list[np.ndarray] = []
    fake_features: list[np.ndarray] = []
    per_image: dict[str, list[torch.Tensor]] = {"psnr": [], "ssim": [], "rmse": []}
    notes: list[str] = []
    count = 0

    def run_batch(batch: list[Mapping[str, Any]], start: int) -> None:
        labels = [_first(row, _LABEL_KEYS, "label map") for row in batch]
        photos = [_first(row, _IMAGE_KEYS, "image") for row in batch]
        instances = [_first(row, _INSTANCE_KEYS, "instance map", required=False) for row in batch]
        if needs_instances and any(inst is None for inst in instances):
            if "instance_fallback" not in notes:
                notes.append("instance_fallback")
            instances = [lab if inst is None else inst for lab, inst in zip(labels, instances)]
        features = processor(labels, instance_maps=instances if needs_instances else None, style_images=photos,
                             size={"height": resolution[0], "width": resolution[1]}, return_tensors="pt")
        label_map = features["label_map"]
        real = features["style_image"]
        device = model.device
        kwargs: dict[str, Any] = {}
        if needs_instances:
            kwargs["instance_map"] = features["instance_map"].to(device)
        if use_style:
            kwargs["style_image"] = real.to(device, model.dtype)
        if pass_noise and z_dim:
            kwargs["noise"] = torch.stack([
                torch.randn(int(z_dim), generator=torch.Generator().manual_seed(seed + start + i))
                for i in range(len(batch))
            ]).to(device, model.dtype)
        elif pass_generator:
            kwargs["generator"] = torch.Generator().manual_seed(seed + start)
        output = model(label_map.to(device), **kwargs)
        fake = (output.images if hasattr(output, "images") else output[0]).detach().float().cpu()
        if quantize:
            fake = _quantize(fake)
        if save_dir is not None:
            arrays = ((fake + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
            import PIL.Image

            for i, array in enumerate(arrays):
                PIL.Image.fromarray(array, mode="RGB").save(save_dir / f"{start + i:06d}.png")
        if extractor is not None:
            real_features.append(np.asarray(extractor(real), dtype=np.float64))
            fake_features.append(np.asarray(extractor(fake), dtype=np.float64))
        if adapter is not None:
            target = map_labels(label_map)
            if "miou" in metrics:
                seg_fake.update(adapter(fake), target)
            if "miou_real" in metrics:
                seg_real.update(adapter(real), target)
        if "psnr" in metrics:
            per_image["psnr"].append(psnr(fake, real, data_range=2.0, reduction="none"))
        if "ssim" in metrics:
            per_image["ssim"].append(ssim(fake, real, data_range=2.0, reduction="none"))
        if "rmse" in metrics:
            per_image["rmse"].append(rmse(fake, real, data_range=2.0, reduction="none"))

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            batch: list[Mapping[str, Any]] = []
            for row in rows:
                if num_samples is not None and count + len(batch) >= num_samples:
                    break
                batch.append(row)
                if len(batch) == batch_size:
                    run_batch(batch, count)
                    count += len(batch)
                    batch = []
            if batch:
                run_batch(batch, count)
                count += len(batch)
    finally:
        model.train(was_training)
    if count == 0:
        raise ValueError("no dataset rows to evaluate")

    results: dict[str, Any] = {"num_samples": count, "resolution": list(resolution), "seed": seed,
                               "use_style": use_style, "quantize": quantize}
    if extractor is not None:
        real_all, fake_all = np.concatenate(real_features), np.concatenate(fake_features)
        if isinstance(extractor, InceptionFeatureExtractor):
            results["inception_weights"] = extractor.weights_source
            results["inception_weights_sha256"] = extractor.weights_sha256
        else:
            name = getattr(extractor, "__name__", type(extractor).__name__)
            results["inception_weights"] = f"custom feature extractor {name}: not comparable to published FID/KID"
        results["fid_comparable"] = bool(getattr(extractor, "comparable", False))
        if "fid" in metrics:
            if count < 2:
                raise ValueError("FID needs at least 2 images")
            results["fid"] = compute_fid(real_all, fake_all)
            if count < real_all.shape[1]:
                notes.append("small_sample_fid")
        if "kid" in metrics:
            mean, std = compute_kid(real_all, fake_all, subsets=kid_subsets, subset_size=kid_subset_size, seed=seed)
            results.update(kid=mean, kid_std=std, kid_subsets=kid_subsets,
                           kid_subset_size=kid_subset_size_used(count, kid_subset_size))
    if adapter is not None:
        names = _class_names(adapter)
        results["segmenter"] = adapter.name
        results["label_mapping"] = mapping_name if isinstance(mapping_name, str) else "custom"
        results["segmenter_num_classes"] = seg_fake.num_classes
        for key, metric in (("miou", seg_fake), ("miou_real", seg_real)):
            if key not in metrics:
                continue
            scores = metric.compute()
            prefix = "" if key == "miou" else "real_"
            results[key] = _json_float(scores["mean_iou"])
            results[f"{prefix}pixel_accuracy"] = _json_float(scores["pixel_accuracy"])
            results[f"{prefix}mean_accuracy"] = _json_float(scores["mean_accuracy"])
            results[f"{prefix}per_class_iou"] = {
                names.get(i, str(i)): _json_float(v) for i, v in enumerate(scores["per_class_iou"])
            }
    for key, values in per_image.items():
        if key in metrics:
            results[key] = float(torch.cat(values).mean())
    if notes:
        results["notes"] = [_NOTES[n] for n in notes]
    if isinstance(extractor, InceptionFeatureExtractor) and not extractor.comparable:
        warnings.warn("FID/KID were computed with random Inception weights: not comparable to published numbers",
                      UserWarning, stacklevel=2)
    return results


def kid_subset_size_used(num_images: int, requested: int) -> int:
    return kid_subset_size(num_images, num_images, requested)


_NOTES = {
    "instance_fallback": "rows without an instance map used their label map as instance map (every class region "
                         "counts as one instance)",
    "small_sample_fid": "FID from fewer images than feature dimensions: the covariances are rank-deficient and FID "
                        "is biased upwards; compare only FIDs computed from the same number of images",
}


def _segmenter_table(adapter: SegmenterAdapter, label_space: Any) -> str | None:
    """``"<model space> -> <segmenter space>"`` when the segmenter is recognised as another known label space with a
    registered table (e.g. a COCO-Stuff model scored by a 171-class MaskFormer), else None."""
    from ..label_space_mappings import list_label_space_mappings

    if adapter.id2label is None and adapter.source_space is None:
        return None
    try:
        source = adapter.mapping(label_space).source_space
    except ValueError:
        return None
    if source is None or source == label_space.name:
        return None
    return f"{label_space.name} -> {source}" if (label_space.name, source) in list_label_space_mappings() else None


def _class_names(adapter: SegmenterAdapter) -> dict[int, str]:
    return {int(k): str(v) for k, v in (adapter.id2label or {}).items()}
