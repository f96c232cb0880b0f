"""The ``labelsynth`` command line.

```bash
labelsynth generate --label street_label.png -o out.png                  # the built-in model (offline)
labelsynth generate --model spade-ade20k --label ADE_val_00001232.png -o out.png
labelsynth generate --model org/spade-cityscapes --label labelIds.png --instance instanceIds.png -o city.png
labelsynth generate --model org/spade-vae --label label.png --style photo.jpg --num-images 4 -o styled.png
labelsynth convert spade checkpoints/ade20k_pretrained converted/spade-ade20k --preset ade20k
labelsynth ingest ade20k /data/ADEChallengeData2016 --output data/ade20k
labelsynth evaluate --model converted/spade-ade20k --dataset data/ade20k --split validation --metrics fid,miou,psnr
labelsynth models
labelsynth download spade-ade20k                 # official release -> converted, cached
labelsynth segment photo.jpg --segmenter nvidia/segformer-b0-finetuned-ade-512-512 --label-space ade20k -o label.png
labelsynth --version
```

One module per sub-command (``labelsynth.cli.<command>``: ``add_parser`` and the handler); the helpers they share
live in the leaf module `labelsynth.cli._common`. Building the parser imports neither torch nor transformers, so
``--help`` and argument errors answer at once; handlers import what they need.

User errors (missing files, bad label maps, unknown models) print one ``labelsynth: error: ...`` line on stderr and
exit with status 2, like argparse's own usage errors; unexpected failures keep their traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ._common import EXIT_USAGE, PROG, CLIError
from .convert import CONVERTERS

__all__ = ["CONVERTERS", "CLIError", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The ``labelsynth`` argument parser with all its sub-commands."""
    from .. import __version__
    from ..data.ingestion import add_cli_parser as add_ingest_parser
    from ..metrics.cli import add_cli_parser as add_evaluate_parser
    from . import cluster_features, convert, demo, download, generate, models
    from . import export as export_command
    from . import segment as segment_command

    parser = argparse.ArgumentParser(
        prog=PROG, description="Semantic image synthesis (label map -> image) with labelsynth models."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    generate.add_parser(commands)
    convert.add_parser(commands)
    add_ingest_parser(commands)
    add_evaluate_parser(commands)
    cluster_features.add_parser(commands)
    demo.add_parser(commands)
    models.add_parser(commands)
    download.add_parser(commands)
    export_command.add_parser(commands)
    segment_command.add_parser(commands)
    return parser


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
