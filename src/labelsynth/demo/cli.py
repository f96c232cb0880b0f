"""``labelsynth demo``: serve the Gradio demo of a model (the built-in one by default)."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_cli_parser", "run_demo"]


def add_cli_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``demo`` sub-command on an ``argparse`` sub-parsers object; returns its parser."""
    from ..cli import positive_int

    parser = subparsers.add_parser(
        "demo",
        help="serve the Gradio demo of a model (paint or upload a label map, generate)",
        description=(
            "Serve the Gradio demo of a labelsynth model: paint a label map with the model's palette or upload one, "
            "add the model's extra inputs (instance map, style image, ...), and generate. Offline "
            "(HF_HUB_OFFLINE=1) the model must be a local folder or a Hub id already in the Hugging Face cache."
        ),
    )
    parser.add_argument("--model", default=None,
                        help="model folder, Hub id, or a registered id such as spade-ade20k (default: the built-in "
                             "Cityscapes demo model, which works offline)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default: 127.0.0.1; 0.0.0.0 to serve the network)")
    parser.add_argument("--port", type=int, default=None, help="port (default: 7860 or the next free one)")
    parser.add_argument("--share", action="store_true", help="also create a public gradio.live link (needs network)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32")
    parser.add_argument("--max-variations", type=positive_int, default=4, metavar="N",
                        help="largest 'variations' choice for models with a latent (default: 4)")
    parser.set_defaults(handler=run_demo)
    return parser


def _resolve_model(model: str | None) -> str | None:
    """A registered id becomes its packaged folder or Hub id; folders are checked like `labelsynth generate` does."""
    from ..cli import _check_model_location
    from ..hub.registry import get_checkpoint

    if model is None:
        return None
    try:
        entry = get_checkpoint(model)
    except KeyError:
        _check_model_location(model)
        return model
    return str(entry.weights_folder or entry.hub_id)


def run_demo(args: argparse.Namespace, *, block: bool = True) -> Any:
    """Build the demo from the parsed options and launch it; returns the `gr.Blocks` (after it stops when blocking).

    Raises:
        CLIError: the model cannot be found or loaded, or the device is unavailable.
    """
    from ..cli import CLIError, _resolve_device
    from .app import build_demo

    model = _resolve_model(args.model)
    device = _resolve_device(args.device)
    try:
        demo = build_demo(model, device=device, dtype=args.dtype, max_variations=args.max_variations)
    except OSError as err:
        raise CLIError(f"--model {args.model}: cannot load it: {err}") from None
    except ValueError as err:
        raise CLIError(f"--model {args.model}: {err}") from None
    demo.launch(server_name=args.host, server_port=args.port, share=args.share, prevent_thread_lock=not block)
    return demo
