"""``labelsynth segment``: a photo's label map in a labelsynth label space, from any transformers segmenter.

```bash
labelsynth segment photo.jpg --segmenter nvidia/segformer-b0-finetuned-ade-512-512 --label-space ade20k -o label.png
```
The label map is written as an index PNG of the space's ids (what ``generate --label`` and the demo read); edit it
(or its ``--colorized`` copy) and generate from it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ._common import DEVICES, DTYPES, CLIError, check_input_file, check_output_path, resolve_device

__all__ = ["add_parser", "run_segment", "segment_photo"]


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Register ``segment`` on the CLI's sub-command parsers."""
    parser = commands.add_parser(
        "segment",
        help="segment a photo into a label map of a label space (any transformers segmenter)",
        description=(
            "Segment a photo with a transformers segmenter (AutoModelForSemanticSegmentation such as SegFormer or "
            "UperNet, or Mask2Former / MaskFormer / OneFormer) and write its label map in a labelsynth label space: "
            "the segmenter's classes are mapped by name (ADE20K raw id = segmenter id + 1, Cityscapes trainId -> "
            "labelId, COCO-Stuff 171 -> 182, ...); classes without a counterpart become the space's don't-care "
            "value. See docs/segmentation.md."
        ),
    )
    parser.add_argument("photo", help="the photo (any image PIL reads)")
    parser.add_argument("--segmenter", required=True, metavar="ID_OR_PATH",
                        help="transformers segmenter: Hub id or folder (offline: must be in the Hugging Face cache)")
    parser.add_argument("--label-space", required=True, metavar="NAME",
                        help="label space of the output, e.g. ade20k, cityscapes, coco-stuff, coco-panoptic")
    parser.add_argument("-o", "--output", required=True, metavar="PATH", help="index PNG of label ids")
    parser.add_argument("--colorized", metavar="PATH", help="also write the map drawn with the space's palette")
    parser.add_argument("--instance-output", metavar="PATH",
                        help="also write the instance map (16-bit PNG of segment ids; panoptic segmenters only)")
    parser.add_argument("--device", choices=DEVICES, default="auto")
    parser.add_argument("--dtype", choices=DTYPES, default="float32", help="segmenter weights dtype")
    parser.set_defaults(handler=run_segment)
    return parser


def segment_photo(photo: str, segmenter: str, label_space: Any, device: str, dtype: str = "float32",
                  flag: str = "--segmenter") -> Any:
    """`labelsynth.segment` with its errors as `CLIError`\\ s (shared by ``segment``, ``generate --from-photo``)."""
    import torch

    from ..segmentation import segment

    try:
        return segment(photo, segmenter, label_space, device=device, dtype=getattr(torch, dtype))
    except ValueError as err:
        raise CLIError(f"{flag} {segmenter}: {err}") from None


def run_segment(args: argparse.Namespace) -> Any:
    """Run ``labelsynth segment``; returns the `SegmentationResult`."""
    check_input_file(args.photo, "photo")
    for flag, path in (("-o/--output", args.output), ("--colorized", args.colorized),
                       ("--instance-output", args.instance_output)):
        if path is not None:
            check_output_path(path, flag)
            if Path(path).suffix.lower() != ".png":
                raise CLIError(f"{flag} {path}: label maps must be saved losslessly; use a .png name")
    from ..label_spaces import get_label_space

    try:
        space = get_label_space(args.label_space)
    except ValueError as err:
        raise CLIError(f"--label-space {args.label_space}: {err}") from None
    result = segment_photo(args.photo, args.segmenter, space, resolve_device(args.device), args.dtype)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    result.save(args.output)
    height, width = result.label_map.shape
    print(f"wrote {args.output} ({width}x{height} {space.name} ids; {result.mapping.description})")
    if result.mapping.unmapped:
        shown = ", ".join(result.mapping.unmapped[:10]) + (" ..." if len(result.mapping.unmapped) > 10 else "")
        print(f"note: segmenter classes without a {space.name} counterpart are don't-care: {shown}", file=sys.stderr)
    if args.colorized:
        result.colorize().save(args.colorized)
        print(f"wrote {args.colorized} (colorized)")
    if args.instance_output:
        if result.instance_map is None:
            raise CLIError(f"--instance-output: {args.segmenter} is a semantic segmenter and gives no instances; use a "
                           "panoptic one (Mask2Former / OneFormer COCO-panoptic) or drop --instance-output")
        import numpy as np
        import PIL.Image

        PIL.Image.fromarray(result.instance_map.astype(np.uint16)).save(args.instance_output)
        print(f"wrote {args.instance_output} (instance map)")
    return result
