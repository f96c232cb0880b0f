"""``labelsynth generate``: images from a label map with any labelsynth model (the built-in one by default)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ._common import (
    DEVICES,
    DTYPES,
    PROG,
    CLIError,
    check_input_file,
    check_output_path,
    non_negative_float,
    positive_int,
    resolve_device,
    resolve_model_argument,
    seed,
)

__all__ = ["add_parser", "generate"]

# File inputs of `generate`: (option, argparse dest, the pipeline input it feeds). Which ones a model takes is
# declared by its class (`pipeline_inputs`); giving one it does not take is an error, not silently ignored.
_FILE_INPUTS = (
    ("--instance", "instance", "instance_map"),
    ("--style", "style", "style_image"),
    ("--style-label", "style_label", "style_label_map"),
    ("--exemplar", "exemplar", "exemplar"),
    ("--exemplar-label", "exemplar_label", "exemplar_label_map"),
)


def _cluster_spec(text: str) -> int | dict[int, int]:
    """`--cluster`: "K" (cluster K for every instance) or "ID=K,ID=K" (instance or class id -> cluster)."""
    try:
        if "=" not in text:
            return int(text)
        return {int(key): int(value) for key, value in (item.split("=") for item in text.split(","))}
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected K or ID=K,ID=K,... with integers, got {text!r}") from None


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Register ``generate`` on the CLI's sub-command parsers."""
    gen = commands.add_parser(
        "generate",
        help="generate images from a label map",
        description=(
            "Generate images from a label map with a labelsynth model, through "
            "transformers.pipeline('label-to-image'). --model takes a folder, a registered id (labelsynth models "
            "lists them; spade-cityscapes-tiny is the built-in model) or a Hub id; offline (HF_HUB_OFFLINE=1) a Hub "
            "id must already be in the Hugging Face cache."
        ),
    )
    gen.add_argument("--model", default=None,
                     help="model folder (config.json, model.safetensors, preprocessor_config.json), registered id "
                          "such as spade-cityscapes-tiny, or Hub id such as org/spade-ade20k (default: the built-in "
                          "model spade-cityscapes-tiny, a small demonstration SPADE for Cityscapes street maps)")
    gen.add_argument("--label", required=True, metavar="PATH",
                     help="label map: index PNG (mode L/P/I;16) of raw ids, or a colour PNG in the model's palette")
    gen.add_argument("--instance", metavar="PATH",
                     help="instance map (models with instance edges, e.g. Cityscapes *_instanceIds.png); same size as "
                          "the label map. Without it such models take the class regions of the label map as "
                          "instances (touching objects of one class then merge)")
    gen.add_argument("--style", metavar="PATH", help="style image (SPADE-VAE, SEAN)")
    gen.add_argument("--style-label", metavar="PATH",
                     help="label map of the style image (SEAN; default: the --label map itself)")
    gen.add_argument("--exemplar", metavar="PATH", help="exemplar photo whose appearance is transferred (CoCosNet)")
    gen.add_argument("--exemplar-label", metavar="PATH",
                     help="label map of the exemplar (CoCosNet; without it the model guesses the correspondence)")
    gen.add_argument("--cluster", type=_cluster_spec, metavar="K|ID=K,...",
                     help="pix2pixHD with the feature encoder: the feature-bank cluster of every instance (K), or per "
                          "instance / class id (26=3,26001=0); instances not given get a random cluster (--seed)")
    gen.add_argument("--seed", type=seed, default=0, help="random seed (default: 0); image i uses seed + i")
    gen.add_argument("--num-images", type=positive_int, default=1, metavar="N",
                     help="generate N images with seeds seed, seed+1, ... saved as <out>_0.png, <out>_1.png, ...")
    gen.add_argument("--device", choices=DEVICES, default="auto",
                     help="where to run (default: auto = cuda when available, else cpu)")
    gen.add_argument("--dtype", choices=DTYPES, default="float32", help="model weights dtype (default: float32)")
    gen.add_argument("--color-tolerance", type=non_negative_float, metavar="T",
                     help="snap colours of a colour-coded label map within RGB distance T to the nearest palette "
                          "colour (default: the processor's setting, normally 0 = exact colours)")
    gen.add_argument("-o", "--output", required=True, metavar="PATH",
                     help="output image (format from the extension, e.g. .png)")
    gen.add_argument("--save-colorized-label", metavar="PATH",
                     help="also save the label map as the model sees it (resized), drawn with the label-space palette")
    gen.set_defaults(handler=generate)
    return gen


def _load_pipeline(model: str, location: str, device: str, dtype: str) -> Any:
    """``labelsynth.pipeline("label-to-image", ...)`` with loading failures turned into `CLIError`\\ s.

    `model` is what the user typed (for messages), `location` what `resolve_model_argument` made of it.
    """
    import torch
    from huggingface_hub import is_offline_mode

    from ..registration import pipeline

    is_local = Path(location).is_dir()
    try:
        return pipeline("label-to-image", model=location, device=device, dtype=getattr(torch, dtype))
    except OSError as err:
        if is_local:
            raise CLIError(f"cannot load the model in {model}: {err}") from None
        if is_offline_mode():
            from huggingface_hub.constants import HF_HUB_CACHE

            raise CLIError(
                f"--model {model}: not a local folder, not a registered id (`labelsynth models` would list it), "
                f"and not found in the Hugging Face cache ({HF_HUB_CACHE}). Offline (HF_HUB_OFFLINE=1) a Hub id must "
                f"already be in the cache: download it once while online (`hf download {model}`), or point --model "
                "at a folder"
            ) from None
        raise CLIError(f"--model {model}: not a local folder, and it could not be loaded from the Hub: {err}") from None
    except ValueError as err:  # e.g. a config.json without a labelsynth model_type
        raise CLIError(f"--model {model}: {err}") from None


def _output_paths(output: str, count: int) -> list[Path]:
    path = Path(output)
    if count == 1:
        return [path]
    return [path.with_name(f"{path.stem}_{i}{path.suffix}") for i in range(count)]


def _input_error(err: ValueError, args: argparse.Namespace) -> CLIError:
    """A processor/model `ValueError` as a `CLIError` that names the offending file by its CLI option, once.

    Processor messages start with what they are about ("label map: ...", "label map #0 has ...", "style image: ..."):
    that subject becomes the option and its file, so the message does not say "label map" twice.
    """
    import re

    from ..label_spaces import ColorDecodingError

    message = str(err)
    named = [("label map", "--label", args.label)] + [
        (input_name.replace("_", " "), flag, getattr(args, dest)) for flag, dest, input_name in _FILE_INPUTS
    ] + [(input_name, flag, getattr(args, dest)) for flag, dest, input_name in _FILE_INPUTS]
    for what, flag, path in sorted(named, key=lambda item: -len(item[0])):  # longest first: "style image" vs "style"
        match = re.match(rf"{re.escape(what)}(?: #\d+)?(?::\s*| )", message)
        if path is not None and match:
            rest = message[match.end():]
            message = f"{flag} {path}: {rest}" if match.group().rstrip().endswith(":") else f"{flag} {path} {rest}"
            break
    if isinstance(err, ColorDecodingError):
        message = re.sub(r"\s*\(LabelMapProcessor: [^)]*\)", "", message)  # the Python spelling of the option
        if err.suggested_tolerance is not None:
            message += f" On the command line: --color-tolerance {err.suggested_tolerance:g}."
    elif "tolerance" in message:
        message += " On the command line: --color-tolerance T."
    return CLIError(message)


def generate(args: argparse.Namespace) -> list[Path]:
    """Run ``labelsynth generate``: load the pipeline, generate ``args.num_images`` images and save them.

    Args:
        args: the parsed ``generate`` options (see `add_parser`).

    Returns:
        The paths of the written images (``-o`` itself for one image, ``<stem>_<i><suffix>`` for several).

    Raises:
        CLIError: for missing or invalid inputs, an unavailable device, or a model that cannot be loaded.
    """
    check_input_file(args.label, "--label")
    for flag, dest, _ in _FILE_INPUTS:
        check_input_file(getattr(args, dest), flag)
    check_output_path(args.output, "-o/--output")
    if args.save_colorized_label:
        check_output_path(args.save_colorized_label, "--save-colorized-label")
    location = resolve_model_argument(args.model)
    model_name = args.model or "spade-cityscapes-tiny"
    if args.model is None:
        print(f"{PROG}: using the built-in model (spade-cityscapes-tiny, a small demonstration SPADE for Cityscapes "
              "street maps); pass --model for another", file=sys.stderr)
    device = resolve_device(args.device)

    pipe = _load_pipeline(model_name, location, device, args.dtype)
    processor = pipe.image_processor
    if args.color_tolerance is not None:
        processor.color_tolerance = args.color_tolerance
    config = pipe.model.config
    accepted = getattr(pipe.model, "pipeline_inputs", {})
    if args.instance is not None and not getattr(config, "use_instance_edges", True):
        print(f"note: {model_name} does not use instance edges; --instance is ignored", file=sys.stderr)

    count = args.num_images
    per_item: dict[str, Any] = {}
    for flag, dest, input_name in _FILE_INPUTS:
        path = getattr(args, dest)
        if path is None or (dest == "instance" and input_name not in accepted):
            continue
        if input_name not in accepted:
            takes = ", ".join(f for f, _, name in _FILE_INPUTS if name in accepted) or "only --label"
            raise CLIError(f"{flag}: {type(pipe.model).__name__} ({model_name}) takes no "
                           f"{input_name.replace('_', ' ')}; it takes {takes}")
        per_item[input_name] = path if count == 1 else [path] * count
    if args.cluster is not None:
        if "cluster" not in accepted:
            raise CLIError(f"--cluster: {type(pipe.model).__name__} ({model_name}) has no feature clusters (only "
                           "pix2pixHD models trained with the feature encoder do)")
        per_item["cluster"] = args.cluster if count == 1 else [args.cluster] * count
    labels = args.label if count == 1 else [args.label] * count
    try:
        images = pipe(labels, seed=args.seed, **per_item)
        colorized = processor.colorize(processor(args.label)["label_map"][0]) if args.save_colorized_label else None
    except ValueError as err:
        raise _input_error(err, args) from None
    if count == 1:
        images = [images]
    if count > 1 and not getattr(config, "use_vae", True) and args.style is None:
        print(f"note: {model_name} is deterministic (no latent to sample), so the {count} images are identical",
              file=sys.stderr)

    paths = _output_paths(args.output, count)
    for image, path in zip(images, paths):
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path)
        print(f"wrote {path} ({image.width}x{image.height})")
    if colorized is not None:
        label_path = Path(args.save_colorized_label)
        label_path.parent.mkdir(parents=True, exist_ok=True)
        colorized.save(label_path)
        print(f"wrote {label_path} (colorized label map, {colorized.width}x{colorized.height})")
    return paths
