"""``labelsynth export onnx``: write a GAN generator as an ONNX file for onnxruntime and other non-Python clients."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ._common import CLIError, resolve_model_argument

__all__ = ["add_parser", "export_onnx"]


def _size(text: str) -> tuple[int, int]:
    """``HxW`` (e.g. ``256x512``) -> ``(H, W)``."""
    parts = text.lower().split("x")
    try:
        height, width = (int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HxW such as 256x512, got {text!r}") from None
    if height < 1 or width < 1:
        raise argparse.ArgumentTypeError(f"height and width must be >= 1, got {text!r}")
    return height, width


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Register ``export`` (with its format ``onnx``) on the CLI's sub-command parsers."""
    parser = commands.add_parser(
        "export", help="export a model to run outside Python (ONNX)",
        description="Export a labelsynth GAN generator to another runtime's format.",
    )
    formats = parser.add_subparsers(dest="format", metavar="FORMAT", required=True)
    onnx = formats.add_parser(
        "onnx", help="an ONNX graph: label ids (+ the model's other inputs) in, images in [-1, 1] out",
        description=(
            "Write the generator as an ONNX file: it takes the int64 label id map [B, H, W] (and the instance map, "
            "style image, exemplar or noise the model needs), builds the one-hot map and instance edges inside, and "
            "outputs images [B, 3, H, W] in [-1, 1]. The batch is dynamic, and height/width where the model accepts "
            "several sizes. The file's metadata (labelsynth.*) holds the label space, the palette and the config. "
            "Needs the export extra: pip install 'labelsynth[export]'."
        ),
    )
    onnx.add_argument("--model", default=None,
                      help="model folder, registered id or Hub id (default: the built-in spade-cityscapes-tiny)")
    onnx.add_argument("-o", "--output", required=True, help="the .onnx file to write")
    onnx.add_argument("--dtype", choices=("fp32", "fp16"), default="fp32",
                      help="float precision of the graph (default: fp32; fp16 halves the file, for GPU runtimes)")
    onnx.add_argument("--size", type=_size, default=None, metavar="HxW",
                      help="size traced (default: the model's native size)")
    onnx.add_argument("--static-size", action="store_true", help="fix height and width to the traced size")
    onnx.set_defaults(handler=export_onnx)
    return parser


def export_onnx(args: argparse.Namespace) -> Path:
    """Load the model in float32 and export it; returns the written path.

    Raises:
        CLIError: bad output path, missing onnx packages, a model that cannot be loaded or exported.
    """
    output = Path(args.output)
    if output.suffix.lower() != ".onnx":
        raise CLIError(f"-o {args.output}: give a file name ending in .onnx")
    if output.is_dir():
        raise CLIError(f"-o {args.output} is a folder; give a file name such as {output / 'generator.onnx'}")
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as err:
        raise CLIError(f"export onnx needs the onnx and onnxscript packages ({err}); install them with "
                       "pip install 'labelsynth[export]'") from None
    import torch
    from transformers import AutoModel

    from ..modeling_utils import LabelSynthPreTrainedModel
    from ..registration import ensure_registered

    location = resolve_model_argument(args.model)
    if (Path(location) / "model_index.json").is_file():
        raise CLIError(f"--model {args.model}: a diffusers pipeline; export onnx takes the labelsynth GAN generators")
    ensure_registered()
    try:
        model = AutoModel.from_pretrained(location, dtype=torch.float32)
    except (OSError, ValueError) as err:
        raise CLIError(f"--model {args.model or location}: cannot load it: {err}") from None
    if not isinstance(model, LabelSynthPreTrainedModel):
        raise CLIError(f"--model {args.model}: {type(model).__name__} is not a labelsynth generator")
    try:
        path = model.export_onnx(output, dtype=args.dtype, example_size=args.size, dynamic_size=not args.static_size)
    except (TypeError, ValueError) as err:
        raise CLIError(f"--model {args.model or 'spade-cityscapes-tiny'}: {err}") from None
    from ..export.onnx import read_metadata

    meta = read_metadata(path)
    inputs = ", ".join(f"{i['name']} {i['dtype']} [{', '.join(map(str, i['shape']))}]" for i in meta["inputs"])
    print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB, {args.dtype}): {inputs} -> images "
          f"[batch, 3, height, width] in [-1, 1]; label space {meta['label_space']['name']!r}", file=sys.stderr)
    return path
