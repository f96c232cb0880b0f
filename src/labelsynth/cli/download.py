"""``labelsynth download``: fetch and convert official releases into the cache, ahead of use (or offline later)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ._common import CLIError

__all__ = ["add_parser", "download"]


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Register ``download`` on the CLI's sub-command parsers."""
    parser = commands.add_parser(
        "download",
        help="download and convert registered models' official weights into the cache",
        description="Download the official release of registered model ids (from the original authors' links), "
                    "convert it with labelsynth's converter and keep the converted folder in the cache "
                    "($HF_HOME/labelsynth/models), where every --model, pipeline(...) and from_pretrained find it, "
                    "also offline. Prints the weights' licence.",
    )
    parser.add_argument("ids", nargs="*", metavar="ID", help="registered model ids (see `labelsynth models`)")
    parser.add_argument("--all", action="store_true", help="every registered id that has an official release")
    parser.add_argument("--url", help="fetch the release from this mirror URL or local file instead of the published "
                                      "link, or from a local folder holding the release's files (a release of "
                                      "several files, or a Google Drive folder downloaded by hand); one ID only")
    parser.add_argument("--force", action="store_true", help="download and convert again even when cached")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    parser.set_defaults(handler=download)
    return parser


def download(args: argparse.Namespace) -> list[Path]:
    """Run ``labelsynth download``; returns the converted folders."""
    from ..hub.fetch import ReleaseError, fetch_release
    from ..hub.registry import get_checkpoint
    from ..hub.releases import RELEASES, get_release

    if args.all and args.ids:
        raise CLIError("give model ids or --all, not both")
    ids = list(RELEASES) if args.all else args.ids
    if not ids:
        raise CLIError(f"name at least one model id (with an official release: {', '.join(RELEASES)}) or --all")
    if args.url and len(ids) != 1:
        raise CLIError("--url gives the file of one release: name exactly one model id with it")
    for model_id in ids:
        try:
            get_release(model_id)
        except KeyError as err:
            try:
                entry = get_checkpoint(model_id)
            except KeyError:
                raise CLIError(err.args[0]) from None
            if entry.weights_folder is not None:
                raise CLIError(f"{model_id} is built into labelsynth: nothing to download") from None
            raise CLIError(err.args[0]) from None
    folders = []
    for model_id in ids:
        release = get_release(model_id)
        print(f"{model_id}: weights released under {release.license}", file=sys.stderr)
        try:
            folder = fetch_release(model_id, url=args.url, progress=args.progress, force=args.force)
        except ReleaseError as err:
            raise CLIError(str(err)) from None
        print(f"{model_id}: {folder}")
        folders.append(folder)
    return folders
