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

from .evaluation import ALL_METRICS, DEFAULT_METRICS, evaluate_model, resolve_label_mapping
from .fid import FeatureStatistics, compute_fid, compute_kid, frechet_distance, mmd2_unbiased, polynomial_kernel
from .image import psnr, rmse, ssim
from .inception import (
    FID_INCEPTION_NUM_CLASSES,
    FID_INCEPTION_NUM_PARAMETERS,
    FID_WEIGHTS_FILENAME,
    INCEPTION_WEIGHTS_ENV,
    FIDInceptionV3,
    InceptionFeatureExtractor,
    find_inception_weights,
    load_fid_inception,
)
from .segmentation import (
    LABEL_MAPPINGS,
    SegmentationMetric,
    SegmenterAdapter,
    ade20k_to_segmenter_ids,
    make_label_mapping,
    segment_images,
)

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
