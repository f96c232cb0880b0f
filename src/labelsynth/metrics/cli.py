"""``labelsynth evaluate``: score a model on a dataset split with FID, KID, mIoU, PSNR, SSIM.

```bash
labelsynth evaluate --model converted/spade-ade20k --dataset <source> --split validation \\
    --metrics fid,kid,miou --inception-weights ~/weights/pt_inception-2015-12-05-6726825d.pth \\
    --segmenter nvidia/segformer-b5-finetuned-ade-640-640 --output metrics.json
```

Wire it into the main parser with ``add_cli_parser(subparsers)``; the sub-command's handler is `run` (set as
``handler`` default). User errors raise ``labelsynth.cli.CLIError``; ``--model`` takes what ``labelsynth generate --model`` takes.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..cli._common import DEVICES, CLIError, positive_int, resolve_device, resolve_model_argument

__all__ = ["add_cli_parser", "run"]

_MAPPINGS = ("auto", "identity", "ade20k", "cityscapes")


def _metric_list(text: str) -> list[str]:
    from .evaluation import ALL_METRICS

    names = [name.strip().lower() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in ALL_METRICS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown metric(s) {unknown or text!r}; choose from {', '.join(ALL_METRICS)}")
    return names


def add_cli_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``evaluate`` sub-command on an ``argparse`` sub-parsers object; returns its parser."""
    parser = subparsers.add_parser(
        "evaluate",
        help="score a model on a dataset split (FID, KID, mIoU, PSNR, SSIM)",
        description=(
            "Generate one image per dataset row at the model's resolution and score them: FID/KID against the "
            "row photos (FID Inception, pytorch-fid input handling), mIoU/accuracy of a segmenter on the generated "
            "images against the label maps (nearest-resized to the generated resolution), PSNR/SSIM against the "
            "row photos. Numbers are comparable to published ones only with the FID Inception weights and the "
            "papers' segmenters."
        ),
    )
    parser.add_argument("--model", required=True,
                        help="model folder (save_pretrained output), registered id (e.g. spade-cityscapes-tiny, the "
                             "built-in model) or Hub id")
    parser.add_argument("--dataset", required=True, help="dataset source, as accepted by "
                                                         "labelsynth.data.load_training_dataset")
    parser.add_argument("--split", default="validation", help="dataset split (default: validation)")
    parser.add_argument("--metrics", type=_metric_list, default=None,
                        help="comma-separated: fid,kid,miou,miou_real,psnr,ssim,rmse (default: fid,kid,psnr,ssim, "
                             "plus miou when --segmenter is given)")
    parser.add_argument("--inception-weights", metavar="PATH",
                        help="pt_inception-2015-12-05-6726825d.pth for FID/KID (default: $LABELSYNTH_INCEPTION_"
                             "WEIGHTS, then the torch hub cache, else pytorch-fid's release file, downloaded there "
                             "once and hash-checked)")
    parser.add_argument("--random-inception", action="store_true",
                        help="FID/KID with random Inception weights when no weights file is here (no download; smoke "
                             "tests only: the numbers are not comparable to published ones)")
    parser.add_argument("--segmenter", metavar="ID_OR_PATH",
                        help="transformers segmenter for mIoU (AutoModelForSemanticSegmentation, Mask2Former, "
                             "MaskFormer, OneFormer); the adapter `labelsynth segment` uses. Not the papers' segmenters unless "
                             "stated: see docs/segmentation.md")
    parser.add_argument("--segmenter-processor", metavar="ID_OR_PATH",
                        help="its image processor (default: the --segmenter location)")
    parser.add_argument("--label-mapping", choices=_MAPPINGS, default="auto",
                        help="dataset label ids -> segmenter ids (auto: ADE20K raw 1..150 -> 0..149 for 150-class "
                             "segmenters, Cityscapes labelIds -> trainIds for 19-class ones, else identity)")
    parser.add_argument("--batch-size", type=positive_int, default=8)
    parser.add_argument("--num-samples", type=positive_int, default=None, help="score only the first N rows")
    parser.add_argument("--seed", type=int, default=0, help="base seed; row i uses seed + i (default 0)")
    parser.add_argument("--use-style", action="store_true",
                        help="feed each row's photo as style image (style-encoder / VAE models: reconstruction)")
    parser.add_argument("--kid-subsets", type=positive_int, default=100)
    parser.add_argument("--kid-subset-size", type=positive_int, default=1000)
    parser.add_argument("--device", choices=DEVICES, default="auto")
    parser.add_argument("--save-images", metavar="DIR", help="also write the generated images to DIR as PNG")
    parser.add_argument("--output", "-o", metavar="PATH", help="write the results as JSON to PATH")
    parser.set_defaults(handler=run)
    return parser


def _load_model(location: str, device: str) -> tuple[Any, Any]:
    from transformers import AutoImageProcessor, AutoModel

    from ..registration import ensure_registered

    ensure_registered()
    source = resolve_model_argument(location)
    try:
        model = AutoModel.from_pretrained(source)
    except (OSError, ValueError) as err:
        raise CLIError(f"--model {location}: cannot load the model: {err}") from None
    try:
        processor = AutoImageProcessor.from_pretrained(source)
    except (OSError, ValueError):
        processor = None  # evaluate_model builds one from the config
    return model.to(device).eval(), processor


def _load_segmenter(location: str, processor_location: str | None, device: str) -> tuple[Any, Any]:
    """The segmenter as a `labelsynth.segmentation.SegmenterAdapter` (the one the photo workflow uses): any
    AutoModelForSemanticSegmentation, or Mask2Former / MaskFormer / OneFormer."""
    from ..segmentation import load_segmenter

    processor = None
    if processor_location:
        from transformers import AutoImageProcessor

        try:
            processor = AutoImageProcessor.from_pretrained(processor_location)
        except (OSError, ValueError) as err:
            raise CLIError(f"--segmenter-processor {processor_location}: cannot load the image processor: {err}"
                           ) from None
    try:
        return load_segmenter(location, processor=processor, device=device), None
    except ValueError as err:
        raise CLIError(f"--segmenter {location}: {err}") from None


def _load_rows(source: str, split: str) -> Iterable[Mapping[str, Any]]:
    try:
        from ..data import load_training_dataset
    except ImportError as err:
        raise CLIError(f"--dataset needs labelsynth.data.load_training_dataset, which is not available ({err})"
                         ) from None
    try:
        return load_training_dataset(source, split=split)
    except (OSError, ValueError, KeyError) as err:
        raise CLIError(f"--dataset {source} (split {split}): {err}") from None


def _summary(results: Mapping[str, Any]) -> list[str]:
    lines = [f"evaluated {results['num_samples']} images at {results['resolution'][0]}x{results['resolution'][1]}"]
    for key in ("fid", "kid", "miou", "pixel_accuracy", "mean_accuracy", "miou_real", "psnr", "ssim", "rmse"):
        if key in results and results[key] is not None:
            value = results[key]
            extra = f" ± {results['kid_std']:.5f}" if key == "kid" else ""
            lines.append(f"  {key:<15} {value:.5f}{extra}" if isinstance(value, float) and math.isfinite(value)
                         else f"  {key:<15} {value}")
    if "fid_comparable" in results and not results["fid_comparable"]:
        lines.append("  note: FID/KID used random Inception weights: not comparable to published numbers")
    if "segmenter" in results:
        lines.append(f"  segmenter: {results['segmenter']} (label mapping: {results['label_mapping']})")
    return lines


def _jsonable(value: Any) -> Any:
    """Strict JSON: non-finite floats (e.g. PSNR of identical images) become the strings "inf"/"-inf"/"nan"."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, Mapping):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def run(args: argparse.Namespace, rows: Iterable[Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """Run ``labelsynth evaluate`` with parsed options; returns the results dict (also written to ``--output``).

    Args:
        args: options parsed by the parser of `add_cli_parser`.
        rows: dataset rows to use instead of loading ``--dataset`` (tests, custom data).
    """
    from .evaluation import evaluate_model
    from .inception import (
        FID_WEIGHTS_FILENAME,
        INCEPTION_WEIGHTS_ENV,
        InceptionFeatureExtractor,
        find_inception_weights,
    )

    metrics = args.metrics or (["fid", "kid", "psnr", "ssim"] + (["miou"] if args.segmenter else []))
    if {"miou", "miou_real"} & set(metrics) and not args.segmenter:
        raise CLIError("--metrics miou needs --segmenter (a transformers semantic-segmentation model id or folder)")
    if args.output:
        output = Path(args.output)
        if output.is_dir():
            raise CLIError(f"--output {args.output} is a folder; give a file name such as {output / 'metrics.json'}")
    device = resolve_device(args.device)

    inception = None
    if {"fid", "kid"} & set(metrics):
        from ..hub.download import DownloadError

        try:
            weights = find_inception_weights(args.inception_weights, download=not args.random_inception)
        except DownloadError as err:
            raise CLIError(
                f"FID/KID need the Inception weights {FID_WEIGHTS_FILENAME} (pytorch-fid's port of the TensorFlow "
                f"2015-12-05 graph), which are not here and could not be downloaded ({err}): pass --inception-weights "
                f"PATH or set {INCEPTION_WEIGHTS_ENV}. For a smoke test without them add --random-inception (numbers "
                "not comparable), or drop fid,kid from --metrics"
            ) from None
        if weights is None:
            inception = InceptionFeatureExtractor(None, device=device)
        else:
            try:
                inception = InceptionFeatureExtractor(weights, device=device)
            except (FileNotFoundError, ValueError) as err:
                raise CLIError(f"--inception-weights: {err}") from None

    segmenter = segmenter_processor = None
    if args.segmenter:
        segmenter, segmenter_processor = _load_segmenter(args.segmenter, args.segmenter_processor, device)
    model, processor = _load_model(args.model, device)
    if rows is None:
        rows = _load_rows(args.dataset, args.split)

    try:
        results = evaluate_model(
            model, rows, metrics, inception=inception, segmenter=segmenter, segmenter_processor=segmenter_processor,
            label_mapping=args.label_mapping, processor=processor, batch_size=args.batch_size,
            num_samples=args.num_samples, seed=args.seed, use_style=args.use_style, kid_subsets=args.kid_subsets,
            kid_subset_size=args.kid_subset_size, save_images_to=args.save_images,
        )
    except ValueError as err:
        raise CLIError(f"evaluate: {err}") from None
    results = {"model": args.model, "dataset": args.dataset, "split": args.split, **results}

    for line in _summary(results):
        print(line)
    if args.output:
        output = Path(args.output)
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(_jsonable(results), indent=2, allow_nan=False) + "\n")
        print(f"wrote {output}")
    return results
