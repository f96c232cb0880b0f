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
    resolve_dtype,
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


def _strength(text: str) -> float:
    """`--strength`: a number in (0, 1]."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {text!r}")
    return value


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
    gen.add_argument("--label", metavar="PATH",
                     help="label map: index PNG (mode L/P/I;16) of raw ids, or a colour PNG in the model's palette "
                          "(required unless --from-photo; with it, the edited map to generate)")
    photo = gen.add_argument_group(
        "from a photo", "segment a photo and resynthesise it (or --label, its edited map) in the photo's style: "
        "SPADE-VAE and pix2pixHD encode it, SEAN takes its per-region styles, CoCosNet uses it as exemplar, a "
        "segmentation ControlNet starts img2img from it (the map is segmented into --label-space)")
    photo.add_argument("--from-photo", metavar="PATH", help="the photo (its segmentation is the label map)")
    photo.add_argument("--segmenter", metavar="ID_OR_PATH",
                       help="transformers segmenter for --from-photo (Hub id or folder; see `labelsynth segment`)")
    photo.add_argument("--new-region-style", metavar="CLASS",
                       help="SEAN: classes of --label absent from the photo take this photo class's style (default: "
                            "the mean of the photo's region styles)")
    photo.add_argument("--strength", type=_strength, metavar="S",
                       help="diffusion models: how much of the photo img2img re-noises, in (0, 1]; 1 keeps nothing "
                            "of it, lower keeps more (default: 0.75; int(steps * S) denoising steps run)")
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
    diffusion = gen.add_argument_group(
        "diffusion models (segmentation ControlNets, e.g. lllyasviel/control_v11p_sd15_seg)")
    diffusion.add_argument("--label-space", metavar="NAME",
                           help="label space of --label (e.g. cityscapes, coco-stuff, ade20k; default: the "
                                "ControlNet's palette space); mapped to the ControlNet's palette by class name")
    diffusion.add_argument("--prompt", help="text prompt (default: the names of the classes in the label map)")
    diffusion.add_argument("--negative-prompt", metavar="TEXT", help="what the image should not show")
    diffusion.add_argument("--steps", type=positive_int, default=20, metavar="N",
                           help="denoising steps (default: 20)")
    diffusion.add_argument("--guidance", type=non_negative_float, default=7.5, metavar="S",
                           help="classifier-free guidance scale (default: 7.5)")
    diffusion.add_argument("--controlnet-scale", type=non_negative_float, default=1.0, metavar="S",
                           help="ControlNet conditioning scale (default: 1.0)")
    diffusion.add_argument("--scheduler", choices=("ddim", "pndm", "unipc", "euler", "euler-ancestral", "dpm++"),
                           help="sampler (default: the base model's)")
    diffusion.add_argument("--base-model", metavar="ID_OR_PATH",
                           help="Stable Diffusion base for a ControlNet whose base is not known "
                                "(e.g. stable-diffusion-v1-5/stable-diffusion-v1-5)")
    diffusion.add_argument("--palette", choices=("ade20k", "coco-panoptic"),
                           help="palette protocol of the ControlNet (control_v11p_sd15_seg also reads coco-panoptic)")
    resample = gen.add_argument_group(
        "re-roll a region (models with region-wise noise, e.g. OASIS)",
        "noise from --seed everywhere, from --resample-seed inside the region: only the region (and a fading margin "
        "around it) changes")
    resample.add_argument("--resample-class", type=int, action="append", metavar="ID",
                          help="re-roll the pixels of this class id of the label space (repeat for several)")
    resample.add_argument("--resample-mask", metavar="PATH",
                          help="re-roll the non-zero pixels of this mask image (the label map's size)")
    resample.add_argument("--resample-seed", type=seed, metavar="N",
                          help="seed of the re-rolled region's noise (default: continues --seed's random stream); "
                               "image i uses N + i")
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


# Options that only diffusion models take, with their defaults (a GAN refuses a changed one).
_DIFFUSION_OPTIONS = {"label_space": None, "prompt": None, "negative_prompt": None, "steps": 20, "guidance": 7.5,
                      "controlnet_scale": 1.0, "scheduler": None, "base_model": None, "palette": None,
                      "strength": None}


def _load_pipeline(model: str, location: str, device: str, dtype: str, **extra: Any) -> Any:
    """``labelsynth.pipeline("label-to-image", ...)`` with loading failures turned into `CLIError`\\ s.

    `model` is what the user typed (for messages), `location` what `resolve_model_argument` made of it.
    """
    import torch
    from huggingface_hub import is_offline_mode

    from ..registration import pipeline

    is_local = Path(location).is_dir()
    try:
        return pipeline("label-to-image", model=location, device=device,
                        dtype=getattr(torch, resolve_dtype(dtype, device)), **extra)
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
    except ImportError as err:  # a ControlNet without the diffusion extra
        raise CLIError(f"--model {model} is a diffusers ControlNet: {err}; install it with "
                       "pip install 'labelsynth[diffusion]'") from None


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
    if args.label is None and getattr(args, "from_photo", None) is None:
        raise CLIError("give a label map (--label PATH) or a photo to segment (--from-photo PATH --segmenter ID)")
    check_input_file(args.label, "--label")
    check_input_file(getattr(args, "from_photo", None), "--from-photo")
    if getattr(args, "from_photo", None) is not None and args.segmenter is None:
        raise CLIError("--from-photo needs --segmenter ID_OR_PATH (a transformers segmenter for the model's label "
                       "space; see `labelsynth segment --help`)")
    for flag, dest, _ in _FILE_INPUTS:
        check_input_file(getattr(args, dest), flag)
    check_input_file(args.resample_mask, "--resample-mask")
    check_output_path(args.output, "-o/--output")
    if args.save_colorized_label:
        check_output_path(args.save_colorized_label, "--save-colorized-label")
    from ..diffusion.detect import find_controlnet

    if args.model is not None and find_controlnet(args.model) is not None:
        return _generate_diffusion(args, args.model, args.model, resolve_device(args.device))
    location = resolve_model_argument(args.model)
    model_name = args.model or "spade-cityscapes-tiny"
    if args.model is None:
        print(f"{PROG}: using the built-in model (spade-cityscapes-tiny, a small demonstration SPADE for Cityscapes "
              "street maps); pass --model for another", file=sys.stderr)
    device = resolve_device(args.device)
    changed = [f"--{name.replace('_', '-')}" for name, default in _DIFFUSION_OPTIONS.items()
               if getattr(args, name, default) != default]
    if changed:
        raise CLIError(f"{', '.join(changed)}: only diffusion models (segmentation ControlNets) take "
                       f"{'this option' if len(changed) == 1 else 'these options'}; {model_name} is a labelsynth GAN")
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
    label: Any = args.label
    if getattr(args, "from_photo", None) is not None:
        label, photo_inputs = _from_photo(args, pipe, model_name, device)
        per_item.update({k: v if count == 1 else [v] * count for k, v in photo_inputs.items()})
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
    region_name = _resample_inputs(args, accepted, per_item, count, f"{type(pipe.model).__name__} ({model_name})")
    labels = label if count == 1 else [label] * count
    try:
        images = pipe(labels, seed=args.seed, **per_item)
        colorized = processor.colorize(processor(label)["label_map"][0]) if args.save_colorized_label else None
    except ValueError as err:
        if region_name is not None and str(err).startswith(f"{region_name}:"):  # the region's class ids or mask
            given = (f"--resample-mask {args.resample_mask}" if args.resample_mask is not None else
                     " ".join(f"--resample-class {c}" for c in args.resample_class))
            raise CLIError(f"{given}: {str(err)[len(region_name) + 1:].strip()}") from None
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


def _resample_inputs(args: argparse.Namespace, accepted: dict[str, str], per_item: dict[str, Any], count: int,
                     model: str) -> str | None:
    """``--resample-class/--resample-mask/--resample-seed`` -> the model's "region" and "seed" pipeline inputs (added to
    `per_item`); returns the region input's name (None when no region is given)."""
    classes, mask = args.resample_class, args.resample_mask
    if classes is None and mask is None:
        if args.resample_seed is not None:
            raise CLIError("--resample-seed is the seed of a re-rolled region: give the region too (--resample-class "
                           "ID or --resample-mask PATH), or drop --resample-seed")
        return None
    flag = "--resample-mask" if classes is None else "--resample-class"
    if classes is not None and mask is not None:
        raise CLIError("--resample-class and --resample-mask both give the region to re-roll; give one of them")
    region_name = next((name for name, kind in accepted.items() if kind == "region"), None)
    seed_name = next((name for name, kind in accepted.items() if kind == "seed"), None)
    if region_name is None:
        raise CLIError(f"{flag}: {model} has no noise to re-sample by region (only models with a spatial noise map, "
                       "such as OASIS, re-roll a region); drop the --resample-* options")
    region = classes if mask is None else mask
    per_item[region_name] = region if count == 1 else [region] * count
    if args.resample_seed is not None and seed_name is not None:
        per_item[seed_name] = args.resample_seed  # one int: image i uses resample_seed + i
    return region_name


def _from_photo(args: argparse.Namespace, pipe: Any, model_name: str, device: str) -> tuple[Any, dict[str, Any]]:
    """``--from-photo``: segment the photo into the model's label space; the label map to generate (``--label`` if
    given, else the segmentation) and the pipeline inputs that take the style from the photo."""
    from ..segmentation import photo_style_inputs
    from .segment import segment_photo

    taken = [flag for flag, dest, _ in _FILE_INPUTS if dest != "instance" and getattr(args, dest) is not None]
    if taken:
        raise CLIError(f"{', '.join(taken)}: --from-photo already takes the style from the photo; drop "
                       f"{'it' if len(taken) == 1 else 'them'}")
    result = segment_photo(args.from_photo, args.segmenter, pipe.image_processor.label_space, device, args.dtype)
    label = result.label_map if args.label is None else args.label
    try:
        inputs = photo_style_inputs(pipe, args.from_photo, result.label_map, label,
                                    new_region_style=args.new_region_style)
    except ValueError as err:
        raise CLIError(f"--from-photo: {model_name}: {err}") from None
    print(f"segmented {args.from_photo} into {result.label_space.name} ({result.mapping.description})",
          file=sys.stderr)
    return label, inputs


def _generate_diffusion(args: argparse.Namespace, model_name: str, location: str, device: str) -> list[Path]:
    """`generate` for a segmentation ControlNet: same label-map handling and outputs, plus prompt and sampler."""
    taken = [flag for flag, dest, _ in _FILE_INPUTS if getattr(args, dest) is not None]
    if args.cluster is not None:
        taken.append("--cluster")
    taken += [f"--{name.replace('_', '-')}" for name in ("resample_class", "resample_mask", "resample_seed")
              if getattr(args, name) is not None]
    if args.new_region_style is not None:
        taken.append("--new-region-style")
    if taken:
        raise CLIError(f"{', '.join(taken)}: {model_name} is a segmentation ControlNet; it takes --label (or "
                       "--from-photo) and a --prompt, not these inputs")
    if args.strength is not None and args.from_photo is None:
        raise CLIError("--strength is how much of the photo img2img re-noises: give the photo too (--from-photo PATH "
                       "--segmenter ID), or drop --strength")
    if args.from_photo is not None:
        from ..diffusion.pipeline_controlnet_seg import DEFAULT_STRENGTH

        strength = DEFAULT_STRENGTH if args.strength is None else args.strength
        if int(args.steps * strength) < 1:  # before loading anything
            raise CLIError(f"--steps {args.steps} with --strength {strength:g}: img2img runs int(steps * strength) = 0 "
                           f"denoising steps; use --steps {int(-(-1 // strength))} or more, or a higher --strength")
    extra = {key: value for key, value in (("base_model", args.base_model), ("palette", args.palette),
                                           ("scheduler", args.scheduler), ("label_space", args.label_space))
             if value is not None}
    pipe = _load_pipeline(model_name, location, device, args.dtype, **extra)
    if args.color_tolerance is not None:
        pipe.image_processor.color_tolerance = args.color_tolerance
    count = args.num_images
    label, photo_inputs = args.label, {}
    if args.from_photo is not None:  # img2img: the photo's segmentation (or --label, its edit) from the photo
        label, photo_inputs = _from_photo(args, pipe, model_name, device)
    try:
        prompt = args.prompt if args.prompt is not None else pipe.default_prompt(label)
        if args.prompt is None:
            print(f"prompt (from the label map's classes): {prompt}", file=sys.stderr)
        images = pipe([label] * count, prompt=prompt, negative_prompt=args.negative_prompt, seed=args.seed,
                      num_inference_steps=args.steps, guidance_scale=args.guidance,
                      controlnet_conditioning_scale=args.controlnet_scale, strength=args.strength, **photo_inputs)
        control = pipe.control_image(label) if args.save_colorized_label else None
    except ValueError as err:
        raise _input_error(err, args) from None
    paths = _output_paths(args.output, count)
    for image, path in zip(images, paths):
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path)
        print(f"wrote {path} ({image.width}x{image.height})")
    if control is not None:
        label_path = Path(args.save_colorized_label)
        label_path.parent.mkdir(parents=True, exist_ok=True)
        control.save(label_path)
        print(f"wrote {label_path} (the ControlNet's {pipe.palette.name} control image, "
              f"{control.width}x{control.height})")
    return paths
