"""``labelsynth demo``: serve the Gradio demo of a model (the built-in one by default)."""

from __future__ import annotations

import argparse
from typing import Any

from ._common import DEVICES, DTYPES, CLIError, positive_int, resolve_device, resolve_dtype, resolve_model_argument

__all__ = ["add_parser", "run_demo"]


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Register ``demo`` on the CLI's sub-command parsers."""
    parser = commands.add_parser(
        "demo",
        help="serve the Gradio demo of a model (paint or upload a label map, generate)",
        description=(
            "Serve the Gradio demo of a labelsynth model: paint a label map with the model's palette or upload one, "
            "add the model's extra inputs (instance map, style image, ...), and generate. --model takes a folder, a "
            "registered id or a Hub id; offline (HF_HUB_OFFLINE=1) a Hub id must already be in the Hugging Face "
            "cache."
        ),
    )
    parser.add_argument("--model", default=None,
                        help="model folder, Hub id, or a registered id such as spade-ade20k (default: the built-in "
                             "model spade-cityscapes-tiny, which works offline)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default: 127.0.0.1; 0.0.0.0 to serve the network)")
    parser.add_argument("--port", type=int, default=None, help="port (default: 7860 or the next free one)")
    parser.add_argument("--share", action="store_true", help="also create a public gradio.live link (needs network)")
    parser.add_argument("--device", choices=DEVICES, default="auto")
    parser.add_argument("--dtype", choices=DTYPES, default="float32")
    parser.add_argument("--base-model", metavar="ID_OR_PATH",
                        help="Stable Diffusion base of a segmentation ControlNet (default: from the ControlNet)")
    parser.add_argument("--segmenter", metavar="ID_OR_PATH",
                        help="adds 'Start from a photo': this transformers segmenter (Hub id or folder) puts an "
                             "uploaded photo's map on the canvas; generating takes the photo's style (SPADE-VAE, "
                             "SEAN, CoCosNet) or starts from the photo (segmentation ControlNets: img2img)")
    parser.add_argument("--max-variations", type=positive_int, default=4, metavar="N",
                        help="largest 'variations' choice for models with a latent (default: 4)")
    parser.set_defaults(handler=run_demo)
    return parser


def run_demo(args: argparse.Namespace, *, block: bool = True) -> Any:
    """Build the demo from the parsed options and launch it; returns the `gr.Blocks` (after it stops when blocking).

    Raises:
        CLIError: the model cannot be found or loaded, or the device is unavailable.
    """
    from ..demo.app import build_demo

    model = resolve_model_argument(args.model)
    device = resolve_device(args.device)
    dtype = resolve_dtype(args.dtype, device)
    try:
        demo = build_demo(model, device=device, dtype=dtype, max_variations=args.max_variations,
                          base_model=args.base_model,
                          **({"segmenter": args.segmenter} if getattr(args, "segmenter", None) else {}))
    except OSError as err:
        raise CLIError(f"--model {args.model}: cannot load it: {err}") from None
    except ValueError as err:
        if getattr(args, "segmenter", None) and ("segmenter" in str(err).lower() or "style source" in str(err)):
            raise CLIError(f"--segmenter {args.segmenter}: {err}") from None
        raise CLIError(f"--model {args.model}: {err}") from None
    demo.launch(server_name=args.host, server_port=args.port, share=args.share, prevent_thread_lock=not block)
    return demo
