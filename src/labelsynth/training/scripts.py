"""What the training scripts under `training/` share: their data flags and the rows these select, a fixed validation
batch, the metrics scored at validation time (`--eval_metrics`), the VGG network of the perceptual loss, the
description of the run for the model card, and the trainer over paired (label map, photo) rows built from these."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from ..data import PairedTransform, load_training_dataset
from .arguments import training_arguments_from
from .modules import GANTrainingModule
from .trainer import GANTrainer


def add_data_arguments(parser: argparse.ArgumentParser, dataset_examples: str, validation_split: bool = True,
                       flip_note: str = "") -> argparse._ArgumentGroup:
    """Add the "data" flags that `training_rows` and `validation_rows` read, and return the group (scripts add their
    resize flags to it).

    Args:
        dataset_examples: the original dataset folders the script knows, for `--dataset`'s help.
        validation_split: offer `--validation_split` (not where validation needs the training rows, e.g. exemplars).
        flip_note: appended to `--no_flip`'s help (what the original did).
    """
    data = parser.add_argument_group("data")
    data.add_argument("--dataset", required=True,
                      help="Hub dataset id (offline: already cached), parquet/imagefolder/saved dataset folder, or an "
                           f"original dataset folder ({dataset_examples})")
    data.add_argument("--dataset_kind", default=None,
                      help="force the dataset layout/schema (see labelsynth.data); detected when omitted")
    data.add_argument("--split", default="train", help="dataset split to train on")
    if validation_split:
        data.add_argument("--validation_split", default=None,
                          help="split for validation images (default: training rows)")
    data.add_argument("--max_train_samples", type=int, default=None, help="use only the first N rows")
    data.add_argument("--no_flip", action="store_true", help="disable random horizontal flips" + flip_note)
    return data


def training_rows(args: argparse.Namespace, label_space: str) -> Any:
    """The rows of `--dataset` (`--dataset_kind`, `--split`), only the first `--max_train_samples` when given."""
    rows = load_training_dataset(args.dataset, kind=args.dataset_kind, split=args.split, label_space=label_space)
    if args.max_train_samples:
        rows = rows.select(range(min(args.max_train_samples, len(rows))))
    return rows


def validation_rows(args: argparse.Namespace, label_space: str, train_rows: Any) -> Any:
    """The rows of `--validation_split` when the script has that flag and it is set, else the training rows."""
    split = getattr(args, "validation_split", None)
    if not split:
        return train_rows
    return load_training_dataset(args.dataset, kind=args.dataset_kind, split=split, label_space=label_space)


def check_instance_maps(args: argparse.Namespace, rows: Any, needs: Sequence[tuple[str, str | None]]) -> None:
    """Stop at the start of a run, not at its first step, when the model needs instance maps that `rows` lack.

    Args:
        args: the script's arguments (`--dataset` names the data in the message).
        rows: training or validation rows; rows without an ``instance`` column have no instance maps (rows whose
            columns are unknown, e.g. some streaming datasets, are not checked).
        needs: ``(what needs instance maps, the flag that turns it off or None)`` for each part of the model that
            reads them, e.g. ``("instance edges (preset 'cityscapes')", "--no_instance")``; empty: no check.

    Raises:
        ValueError: naming what needs instance maps and the flags that do without them.
    """
    columns = getattr(rows, "column_names", None)
    if not needs or columns is None or "instance" in columns:
        return
    flags = [flag for _, flag in needs if flag]
    fix = f"pass {' and '.join(flags)} to train without them, or " if flags else ""
    raise ValueError(
        f"--dataset {args.dataset} has no instance maps, but the model uses {' and '.join(what for what, _ in needs)}: "
        f"{fix}give a dataset with instance maps (an 'instance' column; in an original dataset folder: instances/ "
        "beside images/ and labels/, Cityscapes' gtFine/*_instanceIds.png, or pix2pixHD's <split>_inst/)"
    )


def validation_batch(module: GANTrainingModule, view: Callable[[Any], dict[str, Any]], rows: Any,
                     count: int) -> dict[str, Any] | None:
    """The first `count` rows through `view` (a transform without random flips or crops, so that every validation
    shows the same images), collated; None when there are no rows or `count` is 0."""
    count = min(count, len(rows))
    return module.collate_fn([view(rows[i]) for i in range(count)]) if count else None


def add_evaluation_arguments(parser: argparse.ArgumentParser, metrics_note: str = "") -> argparse._ArgumentGroup:
    """Add the flags `evaluation_fn` reads: ``--eval_metrics``, ``--eval_samples``, ``--inception_weights`` and
    ``--segmenter``, and return their group.

    Args:
        metrics_note: appended to `--eval_metrics`'s help (what the metrics mean for this model).
    """
    group = parser.add_argument_group("evaluation during training (at every --validation_steps)")
    group.add_argument("--eval_metrics", default=None,
                       help="comma-separated metrics of labelsynth.metrics.evaluate_model scored on the validation "
                            "rows (the EMA generator with --ema_decay), e.g. psnr,ssim or fid,kid,miou (fid/kid "
                            "need the Inception weights, miou needs --segmenter); logged as eval/<metric> to the "
                            "--report_to trackers" + metrics_note)
    group.add_argument("--eval_samples", type=int, default=64, help="validation rows used for the metrics")
    group.add_argument("--inception_weights", default=None,
                       help="pt_inception-2015-12-05 weights for FID/KID; without it: $LABELSYNTH_INCEPTION_WEIGHTS "
                            "or the torch hub cache, downloaded there once")
    group.add_argument("--segmenter", default=None,
                       help="transformers segmentation model id/path for mIoU (semantic, Mask2Former, MaskFormer, "
                            "OneFormer)")
    return group


def evaluation_fn(args: argparse.Namespace, rows: Any, *, use_style: bool = False
                  ) -> Callable[[torch.nn.Module], dict[str, float]] | None:
    """The trainer's `evaluate_fn` for the flags of `add_evaluation_arguments`, or None without `--eval_metrics`.

    The flags are checked here, at the start of the run, and the Inception network and the segmenter are loaded
    once (on the main process, the only one that validates), not at every validation.

    Args:
        args: the script's arguments (also `--seed` and `--validation_steps`).
        rows: the validation rows (``image`` / ``label`` / ``instance``?); the first `--eval_samples` are scored.
        use_style: feed each row's photo as the style image (SEAN, pix2pixHD's feature encoder: reconstruction).

    Returns:
        ``evaluate(generator) -> {metric: value}``: `labelsynth.metrics.evaluate_model` on the generator the trainer
        validates (its EMA copy when EMA is on), keeping the numeric results (e.g. ``psnr``, ``fid``, ``kid_std``,
        ``num_samples``).

    Raises:
        ValueError: an unknown or empty metric list, miou without `--segmenter`, `--eval_samples` below 1,
            `--validation_steps 0` (the metrics would never run), or Inception weights / a segmenter that cannot
            be had.
    """
    if not args.eval_metrics:
        return None
    from ..metrics import ALL_METRICS, evaluate_model

    metrics = [m.strip().lower() for m in args.eval_metrics.split(",") if m.strip()]
    unknown = sorted(set(metrics) - set(ALL_METRICS))
    if unknown or not metrics:
        raise ValueError(f"--eval_metrics {args.eval_metrics!r}: unknown metrics {unknown}; give a comma-separated "
                         f"list of {', '.join(ALL_METRICS)}")
    if {"miou", "miou_real"} & set(metrics) and not args.segmenter:
        raise ValueError("--eval_metrics miou needs --segmenter (a transformers segmentation model id or folder)")
    if args.eval_samples < 1:
        raise ValueError(f"--eval_samples must be at least 1, got {args.eval_samples}")
    if not args.validation_steps:
        raise ValueError("--eval_metrics runs at every --validation_steps, which is 0 here: give --validation_steps N")
    inception = segmenter = None
    if int(os.environ.get("RANK", "0")) == 0:
        if {"fid", "kid"} & set(metrics):
            from ..hub.download import DownloadError
            from ..metrics.inception import InceptionFeatureExtractor, find_inception_weights

            try:
                weights = find_inception_weights(args.inception_weights, download=True)
            except DownloadError as err:
                raise ValueError(f"--eval_metrics fid/kid need the Inception weights, which are not here and could "
                                 f"not be downloaded ({err}): pass --inception_weights /path/to/"
                                 "pt_inception-2015-12-05-6726825d.pth") from None
            inception = InceptionFeatureExtractor(weights)
        if args.segmenter:
            from ..segmentation import load_segmenter

            segmenter = load_segmenter(args.segmenter)

    def evaluate(generator: torch.nn.Module) -> dict[str, float]:
        results = evaluate_model(generator, rows, metrics, inception=inception, segmenter=segmenter,
                                 num_samples=args.eval_samples, seed=args.seed, use_style=use_style)
        # Flags of the protocol (use_style, quantize, fid_comparable) are not measurements.
        return {k: v for k, v in results.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}

    return evaluate


def run_card_info(args: argparse.Namespace, script: str, argv: Sequence[str] | None = None) -> dict[str, Any]:
    """`extra_card_kwargs` describing the run: the Hub dataset (when `--dataset` is a Hub id, not a local folder),
    the command that reproduces it and its number of steps."""
    command = f"accelerate launch training/{script} " + shlex.join(sys.argv[1:] if argv is None else argv)
    hub_dataset = "/" in args.dataset and not Path(args.dataset).exists()
    return {"datasets": [args.dataset] if hub_dataset else None,
            "training": {"command": command, "steps": args.max_train_steps}}


VGG_WEIGHTS_HELP = ("torchvision-layout VGG19 weights (vgg19-dcbb9e9d.pth) as a path or Hub id; default: torchvision's "
                    "ImageNet file, downloaded once into the torch hub cache (the VGG loss is off, with a message, "
                    "when it cannot be had); --lambda_vgg 0 turns the loss off")


def perceptual_vgg(weights: str | None, lambda_vgg: float, *, pool: str = "max",
                   loader: Callable[[str], Any] | None = None) -> Any:
    """The VGG19 of the perceptual loss, or None when the loss is off; says at start which one it is.

    Args:
        weights: ``--vgg_weights`` (a file, folder or Hub id); None for torchvision's ImageNet weights, fetched once
            (`labelsynth.hub.auxiliary`). Offline without them the loss is turned off with a message, not an error.
        lambda_vgg: the loss weight; 0 turns it off.
        pool: ``"max"`` (torchvision) or ``"avg"`` (CRN).
        loader: reads `weights` instead of ``load_vgg19(weights, pool=pool)`` (CoCosNet's Caffe-layout file).
    """
    from ..hub.auxiliary import VGG19_IMAGENET, fetch_auxiliary_weights
    from ..hub.download import DownloadError
    from ..layers.vgg import load_vgg19

    def say(message: str) -> None:
        if int(os.environ.get("RANK", "0")) == 0:
            print(message, file=sys.stderr)

    if lambda_vgg <= 0:
        say("VGG perceptual loss: off (--lambda_vgg 0)")
        return None
    if weights is None:
        try:
            weights = str(fetch_auxiliary_weights(VGG19_IMAGENET))
        except DownloadError as err:
            say(f"VGG perceptual loss: OFF: the ImageNet VGG19 weights are not here and could not be downloaded ({err})."
                " The run trains without the paper's VGG term; pass --vgg_weights /path/to/vgg19-dcbb9e9d.pth to use "
                "it, or --lambda_vgg 0 to silence this message")
            return None
    say(f"VGG perceptual loss: on (lambda {lambda_vgg:g}, weights {weights})")
    return loader(weights) if loader is not None else load_vgg19(weights, pool=pool)


def paired_gan_trainer(module: GANTrainingModule, args: argparse.Namespace, argv: Sequence[str] | None, script: str,
                       rows: Any, val_rows: Any, transform_options: dict[str, Any],
                       evaluate_fn: Callable[[torch.nn.Module], dict[str, float]] | None = None,
                       **training_overrides: Any) -> GANTrainer:
    """The trainer of a script whose rows are (label map, photo) pairs: `PairedTransform(**transform_options)` with
    random flips (unless `--no_flip`) for training, the same view without flips and with `--seed`'s crops for the
    fixed validation batch, and the run described on the model card. `training_overrides` go to
    `training_arguments_from` (e.g. ``ddp_find_unused_parameters=True``)."""
    transform = PairedTransform(flip=not args.no_flip, **transform_options)
    fixed_view = PairedTransform(flip=False, seed=args.seed, **transform_options)  # same crops at every validation
    val_batch = validation_batch(module, fixed_view.apply, val_rows, args.num_validation_images)
    training_args = training_arguments_from(args, **training_overrides,
                                            extra_card_kwargs=run_card_info(args, script, argv))
    return GANTrainer(module, training_args, rows, transform.apply, validation_batch=val_batch,
                      evaluate_fn=evaluate_fn)
