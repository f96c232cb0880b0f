"""The ``labelsynth`` command line.

```bash
labelsynth generate --model path/or/org/spade-ade20k --label ADE_val_00001232.png -o out.png
labelsynth generate --model org/spade-cityscapes --label labelIds.png --instance instanceIds.png -o city.png
labelsynth generate --model org/spade-vae --label label.png --style photo.jpg --num-images 4 -o styled.png
labelsynth convert spade checkpoints/ade20k_pretrained converted/spade-ade20k --preset ade20k
labelsynth ingest ade20k /data/ADEChallengeData2016 --output data/ade20k
labelsynth evaluate --model converted/spade-ade20k --dataset data/ade20k --split validation --metrics fid,miou,psnr
labelsynth --version
```

User errors (missing files, bad label maps, unknown models) print one ``labelsynth: error: ...`` line on stderr and
exit with status 2, like argparse's own usage errors; unexpected failures keep their traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = ["CONVERTERS", "CLIError", "build_parser", "convert", "generate", "main"]

PROG = "labelsynth"
EXIT_USAGE = 2  # argparse's status for usage errors; used for every user error

# Checkpoint converters of `labelsynth convert <architecture>`: one line per architecture. Each module provides
# `add_arguments(parser)` and `run(args)`; the first paragraph of its docstring is the sub-command's help.
CONVERTERS: dict[str, str] = {
    "spade": "labelsynth.models.spade.convert_spade_original_checkpoint",
    "cocosnet": "labelsynth.models.cocosnet.convert_cocosnet_original_checkpoint",
    "sean": "labelsynth.models.sean.convert_sean_original_checkpoint",
    "pix2pix": "labelsynth.models.pix2pix.convert_pix2pix_original_checkpoint",
    "crn": "labelsynth.models.crn.convert_crn_original_checkpoint",
    "pix2pixhd": "labelsynth.models.pix2pixhd.convert_pix2pixhd_original_checkpoint",
}

_DTYPES = ("float32", "bfloat16")
# File inputs of `generate`: (option, argparse dest, the pipeline input it feeds). Which ones a model takes is
# declared by its class (`pipeline_inputs`); giving one it does not take is an error, not silently ignored.
_FILE_INPUTS = (
    ("--instance", "instance", "instance_map"),
    ("--style", "style", "style_image"),
    ("--style-label", "style_label", "style_label_map"),
    ("--exemplar", "exemplar", "exemplar"),
    ("--exemplar-label", "exemplar_label", "exemplar_label_map"),
)
_DEVICES = ("auto", "cpu", "cuda")


class CLIError(Exception):
    """A user error: printed as ``labelsynth: error: <message>`` (no traceback), exit status 2."""


# ---------------------------------------------------------------------------------------------------- parser
def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0:  # also refuses NaN
        raise argparse.ArgumentTypeError(f"must be >= 0 (a max RGB distance), got {text!r}")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text!r}")
    return value


def _cluster_spec(text: str) -> int | dict[int, int]:
    """`--cluster`: "K" (cluster K for every instance) or "ID=K,ID=K" (instance or class id -> cluster)."""
    try:
        if "=" not in text:
            return int(text)
        return {int(key): int(value) for key, value in (item.split("=") for item in text.split(","))}
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected K or ID=K,ID=K,... with integers, got {text!r}") from None


def _version() -> str:
    from . import __version__

    return __version__


def _load_converter(name: str) -> ModuleType:
    return importlib.import_module(CONVERTERS[name])


def build_parser() -> argparse.ArgumentParser:
    """The ``labelsynth`` argument parser with its ``generate`` and ``convert <architecture>`` sub-commands."""
    parser = argparse.ArgumentParser(
        prog=PROG, description="Semantic image synthesis (label map -> image) with labelsynth models."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    gen = commands.add_parser(
        "generate",
        help="generate images from a label map",
        description=(
            "Generate images from a label map with a labelsynth model, through "
            "transformers.pipeline('label-to-image'). Offline (HF_HUB_OFFLINE=1) the model must be a local folder or "
            "a Hub id already in the Hugging Face cache."
        ),
    )
    gen.add_argument("--model", default=None,
                     help="model folder (config.json, model.safetensors, preprocessor_config.json) or Hub id such as "
                          "org/spade-ade20k (default: the built-in Cityscapes demo model, see labelsynth.examples)")
    gen.add_argument("--label", required=True, metavar="PATH",
                     help="label map: index PNG (mode L/P/I;16) of raw ids, or a colour PNG in the model's palette")
    gen.add_argument("--instance", metavar="PATH", help="instance map (models with instance edges, e.g. Cityscapes "
                                                        "*_instanceIds.png); same size as the label map")
    gen.add_argument("--style", metavar="PATH", help="style image (SPADE-VAE, SEAN)")
    gen.add_argument("--style-label", metavar="PATH",
                     help="label map of the style image (SEAN; default: the --label map itself)")
    gen.add_argument("--exemplar", metavar="PATH", help="exemplar photo whose appearance is transferred (CoCosNet)")
    gen.add_argument("--exemplar-label", metavar="PATH",
                     help="label map of the exemplar (CoCosNet; without it the model guesses the correspondence)")
    gen.add_argument("--cluster", type=_cluster_spec, metavar="K|ID=K,...",
                     help="pix2pixHD with the feature encoder: the feature-bank cluster of every instance (K), or per "
                          "instance / class id (26=3,26001=0); instances not given get a random cluster (--seed)")
    gen.add_argument("--seed", type=int, default=0, help="random seed (default: 0); image i uses seed + i")
    gen.add_argument("--num-images", type=positive_int, default=1, metavar="N",
                     help="generate N images with seeds seed, seed+1, ... saved as <out>_0.png, <out>_1.png, ...")
    gen.add_argument("--device", choices=_DEVICES, default="auto",
                     help="where to run (default: auto = cuda when available, else cpu)")
    gen.add_argument("--dtype", choices=_DTYPES, default="float32", help="model weights dtype (default: float32)")
    gen.add_argument("--color-tolerance", type=_non_negative_float, metavar="T",
                     help="snap colours of a colour-coded label map within RGB distance T to the nearest palette "
                          "colour (default: the processor's setting, normally 0 = exact colours)")
    gen.add_argument("-o", "--output", required=True, metavar="PATH",
                     help="output image (format from the extension, e.g. .png)")
    gen.add_argument("--save-colorized-label", metavar="PATH",
                     help="also save the label map as the model sees it (resized), drawn with the label-space palette")
    gen.set_defaults(handler=generate)

    conv = commands.add_parser(
        "convert",
        help="convert an original checkpoint to a labelsynth model folder",
        description="Convert a checkpoint of an original implementation to a labelsynth model folder.",
    )
    architectures = conv.add_subparsers(dest="architecture", metavar="ARCHITECTURE", required=True)
    for name in CONVERTERS:
        module = _load_converter(name)
        summary = " ".join((module.__doc__ or name).strip().split("\n\n")[0].split())
        sub = architectures.add_parser(name, help=summary, description=summary)
        module.add_arguments(sub)
        sub.set_defaults(handler=convert)

    # Sub-commands owned by their packages (each sets its own handler); imported lazily only to build the parser.
    from .data.ingestion import add_cli_parser as add_ingest_parser
    from .demo.cli import add_cli_parser as add_demo_parser
    from .metrics.cli import add_cli_parser as add_evaluate_parser
    from .models.pix2pixhd.feature_clustering import add_cli_parser as add_cluster_features_parser

    add_ingest_parser(commands)
    add_evaluate_parser(commands)
    add_cluster_features_parser(commands)
    add_demo_parser(commands)
    return parser


# ---------------------------------------------------------------------------------------------------- generate
def _check_input_file(path: str | None, flag: str) -> None:
    if path is None:
        return
    if not os.path.exists(path):
        raise CLIError(f"{flag} {path}: no such file")
    if not os.path.isfile(path):
        raise CLIError(f"{flag} {path}: not a file")


def _check_output_path(path: str, flag: str) -> None:
    import PIL.Image

    extension = Path(path).suffix.lower()
    if extension not in PIL.Image.registered_extensions():
        raise CLIError(f"{flag} {path}: unknown image format {extension or '(no extension)'!r}; use e.g. .png or .jpg")
    if Path(path).is_dir():
        raise CLIError(f"{flag} {path} is a folder; give a file name such as {Path(path) / 'out.png'}")


def _resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise CLIError("--device cuda: CUDA is not available here (no GPU, or torch built without CUDA); use --device cpu")
    return device


def _looks_like_path(model: str) -> bool:
    """Whether `model` is meant as a local path rather than a Hub id (``org/name`` or ``name``)."""
    return (
        model.startswith((".", "~", "/", os.sep))
        or (os.altsep is not None and os.altsep in model)
        or model.count("/") > 1
        or os.path.isabs(model)
    )


def _check_model_location(model: str) -> None:
    """Fail early on local folders that cannot hold a model; Hub ids are left to the loader."""
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise CLIError(
                f"--model {model}: the folder has no config.json, so it is not a saved model; give the folder "
                "written by save_pretrained / `labelsynth convert` (config.json, model.safetensors, "
                "preprocessor_config.json)"
            )
        return
    if path.exists():
        raise CLIError(f"--model {model} is a file; give the model folder that holds it (or a Hub id)")
    if _looks_like_path(model):
        raise CLIError(f"--model {model}: no such folder")


def _load_pipeline(model: str, device: str, dtype: str) -> Any:
    """``transformers.pipeline("label-to-image", ...)`` with loading failures turned into `CLIError`s."""
    import torch
    from huggingface_hub import is_offline_mode
    from transformers import pipeline  # the "label-to-image" task was registered when labelsynth was imported

    _check_model_location(model)
    is_local = Path(model).expanduser().is_dir()
    try:
        return pipeline(
            "label-to-image", model=str(Path(model).expanduser()) if is_local else model, device=device,
            dtype=getattr(torch, dtype),
        )
    except OSError as err:
        if is_local:
            raise CLIError(f"cannot load the model in {model}: {err}") from None
        if is_offline_mode():
            from huggingface_hub.constants import HF_HUB_CACHE

            raise CLIError(
                f"--model {model}: not a local folder, and not found in the Hugging Face cache ({HF_HUB_CACHE}). "
                "Offline (HF_HUB_OFFLINE=1) the model must be a local folder or a Hub id that is already in the HF "
                f"cache: download it once while online (e.g. `hf download {model}`), or point --model at a folder"
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
    """A processor/model `ValueError` as a `CLIError` that names the offending file and the CLI option to use."""
    message = str(err)
    named = [("label map", "--label", args.label)] + [
        (what, flag, getattr(args, dest))
        for flag, dest, input_name in _FILE_INPUTS
        for what in (input_name, input_name.replace("_", " "))
    ]
    for what, flag, path in sorted(named, key=lambda item: -len(item[0])):  # longest first: "style image" vs "style"
        if path is not None and message.startswith(what):
            message = f"{flag} {path}: {message}"
            break
    if "tolerance" in message:
        message += " On the command line: --color-tolerance T."
    return CLIError(message)


def generate(args: argparse.Namespace) -> list[Path]:
    """Run ``labelsynth generate``: load the pipeline, generate ``args.num_images`` images and save them.

    Args:
        args: the parsed ``generate`` options (see `build_parser`).

    Returns:
        The paths of the written images (``-o`` itself for one image, ``<stem>_<i><suffix>`` for several).

    Raises:
        CLIError: for missing or invalid inputs, an unavailable device, or a model that cannot be loaded.
    """
    _check_input_file(args.label, "--label")
    for flag, dest, _ in _FILE_INPUTS:
        _check_input_file(getattr(args, dest), flag)
    _check_output_path(args.output, "-o/--output")
    if args.save_colorized_label:
        _check_output_path(args.save_colorized_label, "--save-colorized-label")
    device = _resolve_device(args.device)
    if args.model is None:
        from .examples import BUILTIN_MODEL

        args.model = str(BUILTIN_MODEL)
        print(f"{PROG}: using the built-in demo model ({BUILTIN_MODEL.name}); pass --model for another",
              file=sys.stderr)

    pipe = _load_pipeline(args.model, device, args.dtype)
    processor = pipe.image_processor
    if args.color_tolerance is not None:
        processor.color_tolerance = args.color_tolerance
    config = pipe.model.config
    if getattr(config, "use_instance_edges", False) and args.instance is None:
        raise CLIError(
            f"{args.model} was trained with instance edges and needs --instance (an instance-id map of the same size "
            "as the label map, e.g. Cityscapes *_instanceIds.png); without instances, pass the label map itself "
            f"(--instance {args.label}) so that every class region counts as one instance"
        )

    if args.instance is not None and not getattr(config, "use_instance_edges", True):
        print(f"note: {args.model} does not use instance edges; --instance is ignored", file=sys.stderr)

    count = args.num_images
    accepted = getattr(pipe.model, "pipeline_inputs", {})
    per_item: dict[str, Any] = {}
    for flag, dest, input_name in _FILE_INPUTS:
        path = getattr(args, dest)
        if path is None or (dest == "instance" and input_name not in accepted):
            continue
        if input_name not in accepted:
            takes = ", ".join(f for f, _, name in _FILE_INPUTS if name in accepted) or "only --label"
            raise CLIError(f"{flag}: {type(pipe.model).__name__} ({args.model}) takes no {input_name.replace('_', ' ')}"
                           f"; it takes {takes}")
        per_item[input_name] = path if count == 1 else [path] * count
    if args.cluster is not None:
        if "cluster" not in accepted:
            raise CLIError(f"--cluster: {type(pipe.model).__name__} ({args.model}) has no feature clusters (only "
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
        print(f"note: {args.model} is deterministic (no latent to sample), so the {count} images are identical",
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


# ---------------------------------------------------------------------------------------------------- convert
def convert(args: argparse.Namespace) -> Any:
    """Run ``labelsynth convert <architecture>``: hand the parsed options to that architecture's converter.

    Args:
        args: the parsed options; ``args.architecture`` names an entry of `CONVERTERS`.

    Returns:
        Whatever the converter's ``run`` returns (the converted model).

    Raises:
        CLIError: when the checkpoint is missing or does not match the chosen options.
    """
    module = _load_converter(args.architecture)
    try:
        result = module.run(args)
    except (FileNotFoundError, ValueError) as err:
        raise CLIError(f"convert {args.architecture}: {err}") from None
    print(f"wrote {args.output_dir}" + (f" and pushed it to {args.push_to_hub}" if getattr(args, "push_to_hub", None)
                                         else ""))
    return result


# ---------------------------------------------------------------------------------------------------- entry point
def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``labelsynth`` console script.

    Args:
        argv: the arguments (without the program name); ``sys.argv[1:]`` when None.

    Returns:
        The exit status: 0 on success, 2 for usage and user errors (message on stderr, no traceback).
        ``--help`` and ``--version`` return 0 instead of raising `SystemExit`, so in-process callers get a status.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    try:
        args.handler(args)
    except CLIError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    return 0


if __name__ == "__main__":
    sys.exit(main())
