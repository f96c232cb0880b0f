"""Evaluation metrics for semantic image synthesis: FID, KID, mIoU / pixel accuracy, PSNR, SSIM, RMSE.

```python
from labelsynth.metrics import InceptionFeatureExtractor, evaluate_model

results = evaluate_model(
    model, rows,                                        # rows: {"image", "label", "instance"?} dicts or a Dataset
    metrics=("fid", "kid", "miou"),
    inception=InceptionFeatureExtractor("pt_inception-2015-12-05-6726825d.pth"),
    segmenter=segformer, segmenter_processor=segformer_processor,
)
```

Building blocks: `frechet_distance`, `FeatureStatistics`, `compute_fid`, `compute_kid` (`fid`); `FIDInceptionV3`,
`load_fid_inception`, `InceptionFeatureExtractor` (`inception`); `SegmentationMetric`, `segment_images`,
`make_label_mapping` (`segmentation`); `psnr`, `ssim`, `rmse` (`image`).

``evaluate`` modules wrapping FID and mIoU ship inside the package: ``evaluate.load(evaluate_module_path("fid"))``
(see `evaluate_module_path`).

scipy is only needed for ``frechet_distance(..., method="sqrtm")``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# Public name -> the submodule that defines it: imported on first access, so that `import labelsynth.metrics` (and
# the `labelsynth evaluate` argument parser) does not import torch.
_EXPORTS = {
    "ALL_METRICS": "evaluation",
    "DEFAULT_METRICS": "evaluation",
    "evaluate_model": "evaluation",
    "resolve_label_mapping": "evaluation",
    "FeatureStatistics": "fid",
    "compute_fid": "fid",
    "compute_kid": "fid",
    "frechet_distance": "fid",
    "mmd2_unbiased": "fid",
    "polynomial_kernel": "fid",
    "psnr": "image",
    "rmse": "image",
    "ssim": "image",
    "FID_INCEPTION_NUM_CLASSES": "inception",
    "FID_INCEPTION_NUM_PARAMETERS": "inception",
    "FID_WEIGHTS_FILENAME": "inception",
    "INCEPTION_WEIGHTS_ENV": "inception",
    "FIDInceptionV3": "inception",
    "InceptionFeatureExtractor": "inception",
    "find_inception_weights": "inception",
    "load_fid_inception": "inception",
    "LABEL_MAPPINGS": "segmentation",
    "SegmentationMetric": "segmentation",
    "SegmenterAdapter": "segmentation",
    "ade20k_to_segmenter_ids": "segmentation",
    "make_label_mapping": "segmentation",
    "segment_images": "segmentation",
}


EVALUATE_MODULES = {"fid": "labelsynth_fid", "mean_iou": "labelsynth_mean_iou"}


def evaluate_module_path(name: str) -> str:
    """Folder of a bundled ``evaluate`` module, for ``evaluate.load(...)`` (works offline).

    Args:
        name: ``"fid"`` (FID/KID of two image sets with the FID Inception) or ``"mean_iou"`` (mIoU of label maps).
    """
    if name not in EVALUATE_MODULES:
        raise ValueError(f"unknown evaluate module {name!r}; available: {sorted(EVALUATE_MODULES)}")
    return str(Path(__file__).resolve().parent / "evaluate_modules" / EVALUATE_MODULES[name])


__all__ = [
    "ALL_METRICS",
    "DEFAULT_METRICS",
    "EVALUATE_MODULES",
    "FID_INCEPTION_NUM_CLASSES",
    "FID_INCEPTION_NUM_PARAMETERS",
    "FID_WEIGHTS_FILENAME",
    "INCEPTION_WEIGHTS_ENV",
    "LABEL_MAPPINGS",
    "FIDInceptionV3",
    "FeatureStatistics",
    "InceptionFeatureExtractor",
    "SegmentationMetric",
    "SegmenterAdapter",
    "ade20k_to_segmenter_ids",
    "compute_fid",
    "compute_kid",
    "evaluate_model",
    "evaluate_module_path",
    "find_inception_weights",
    "frechet_distance",
    "load_fid_inception",
    "make_label_mapping",
    "mmd2_unbiased",
    "polynomial_kernel",
    "psnr",
    "resolve_label_mapping",
    "rmse",
    "segment_images",
    "ssim",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value
