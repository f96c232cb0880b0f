"""``labelsynth convert <architecture>``: an original checkpoint -> a labelsynth model folder.

Each architecture's converter module (``labelsynth.models.<family>.convert_<family>_original_checkpoint``) provides
``add_arguments(parser)`` and ``run(args)``; the first paragraph of its docstring is the sub-command's help. The
modules import torch, so they are imported only when their sub-command is parsed (`_ConverterParser`): the help of
``labelsynth`` and ``labelsynth convert`` reads the docstrings from the source files instead.
"""

from __future__ import annotations

import argparse
import ast
import importlib
from pathlib import Path
from types import ModuleType
from typing import Any

from ._common import CLIError

__all__ = ["CONVERTERS", "add_parser", "convert"]

# One line per architecture: its converter module.
CONVERTERS: dict[str, str] = {
    "spade": "labelsynth.models.spade.convert_spade_original_checkpoint",
    "cocosnet": "labelsynth.models.cocosnet.convert_cocosnet_original_checkpoint",
    "sean": "labelsynth.models.sean.convert_sean_original_checkpoint",
    "pix2pix": "labelsynth.models.pix2pix.convert_pix2pix_original_checkpoint",
    "crn": "labelsynth.models.crn.convert_crn_original_checkpoint",
    "pix2pixhd": "labelsynth.models.pix2pixhd.convert_pix2pixhd_original_checkpoint",
    "oasis": "labelsynth.models.oasis.convert_oasis_original_checkpoint",
    "mobilespade": "labelsynth.models.spade.convert_mobile_spade_original_checkpoint",
}
_PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the folder holding the labelsynth package


def _load_converter(name: str) -> ModuleType:
    return importlib.import_module(CONVERTERS[name])


def _summary(name: str) -> str:
    """First paragraph of the converter module's docstring, read from its source without importing it."""
    source = (_PACKAGE_ROOT / (CONVERTERS[name].replace(".", "/") + ".py")).read_text(encoding="utf-8")
    docstring = ast.get_docstring(ast.parse(source)) or name
    return " ".join(docstring.strip().split("\n\n")[0].split())


class _ConverterParser(argparse.ArgumentParser):
    """The parser of one ``convert <architecture>`` sub-command; adds the converter's options on first use."""

    def __init__(self, *args: Any, architecture: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._architecture: str | None = architecture

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        if self._architecture is not None:
            _load_converter(self._architecture).add_arguments(self)
            self._architecture = None
        return super().parse_known_args(args, namespace)


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Register ``convert <architecture>`` on the CLI's sub-command parsers."""
    conv = commands.add_parser(
        "convert",
        help="convert an original checkpoint to a labelsynth model folder",
        description="Convert a checkpoint of an original implementation to a labelsynth model folder.",
    )
    architectures = conv.add_subparsers(dest="architecture", metavar="ARCHITECTURE", required=True,
                                        parser_class=_ConverterParser)
    for name in CONVERTERS:
        summary = _summary(name)
        sub = architectures.add_parser(name, help=summary, description=summary, architecture=name)
        sub.set_defaults(handler=convert)
    return conv


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
