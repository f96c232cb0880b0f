"""``labelsynth models``: the registered model ids, what they are, and whether their weights are here."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "list_models"]


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Register ``models`` on the CLI's sub-command parsers."""
    parser = commands.add_parser(
        "models",
        help="list the registered model ids (usable as --model and in pipeline(...))",
        description="List every registered model id with its family, dataset preset, the licence of its weights "
                    "and where its weights are: built into the package, converted in the cache (with their size), in the Hugging Face cache, or not here (then `labelsynth download ID` fetches them).",
    )
    parser.set_defaults(handler=list_models)
    return parser


def _folder_size(folder: Path) -> str:
    size = sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())
    return f"{size / 2**20:.1f} MiB"


def list_models(args: argparse.Namespace) -> list[dict[str, str]]:
    """Print one row per registered checkpoint; returns the rows."""
    from huggingface_hub import try_to_load_from_cache

    from ..hub.fetch import cached_model_folder
    from ..hub.registry import CHECKPOINTS, model_card_info
    from ..hub.releases import RELEASES

    rows = []
    for entry in CHECKPOINTS:
        if entry.weights_folder is not None:
            where = f"built in ({_folder_size(entry.weights_folder)})"
        elif (converted := cached_model_folder(entry.id)) is not None:
            where = f"cached ({_folder_size(converted)})"
        elif isinstance(try_to_load_from_cache(entry.hub_id, "config.json"), str):
            where = "in the Hugging Face cache"
        elif entry.id in RELEASES:
            where = f"not here: `labelsynth download {entry.id}` ({RELEASES[entry.id].approximate_size})"
        else:
            where = "not here"
        rows.append({"id": entry.id, "family": entry.model_class.removesuffix("Model"), "preset": entry.preset or "-",
                     "weights licence": model_card_info(entry).weights_license or "-", "weights": where})
    widths = {key: max(len(key), *(len(row[key]) for row in rows)) for key in rows[0]}
    print("  ".join(key.ljust(width) for key, width in widths.items()).rstrip())
    for row in rows:
        print("  ".join(row[key].ljust(width) for key, width in widths.items()).rstrip())
    return rows
