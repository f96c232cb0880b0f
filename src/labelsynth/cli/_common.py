"""What every ``labelsynth`` sub-command shares: the user-error type, argument types, input/output/device/model checks.

A leaf module: it imports nothing from labelsynth at module level and neither torch nor transformers, so building
the parser (``--help``, argument errors) stays fast; the checks that need torch import it when they run.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

__all__ = ["DEVICES", "DTYPES", "EXIT_USAGE", "PROG", "CLIError", "check_input_file", "check_output_path",
           "non_negative_float", "positive_int", "resolve_device", "resolve_dtype", "resolve_model_argument", "seed"]

PROG = "labelsynth"
EXIT_USAGE = 2  # argparse's status for usage errors; used for every user error
DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("float32", "bfloat16")
_MAX_SEED = 2**63 - 1


class CLIError(Exception):
    """A user error: printed as ``labelsynth: error: <message>`` (no traceback), exit status 2."""


# ---------------------------------------------------------------------------------------------------- argument types
def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0:  # also refuses NaN
        raise argparse.ArgumentTypeError(f"must be >= 0 (a max RGB distance), got {text!r}")
    return value


def _bounded_int(text: str, low: int, high: int | None, bounds: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < low or (high is not None and value > high):
        raise argparse.ArgumentTypeError(f"must be {bounds}, got {text}")
    return value


def positive_int(text: str) -> int:
    return _bounded_int(text, 1, None, ">= 1")


def seed(text: str) -> int:
    """A random seed: an integer in 0 .. 2**63 - 1 (what `torch.Generator.manual_seed` takes)."""
    return _bounded_int(text, 0, _MAX_SEED, f"between 0 and {_MAX_SEED} (2**63 - 1)")


# ---------------------------------------------------------------------------------------------------- checks
def check_input_file(path: str | None, flag: str) -> None:
    """`path` (if given) is an existing file; else a `CLIError` naming `flag`."""
    if path is None:
        return
    if not os.path.exists(path):
        raise CLIError(f"{flag} {path}: no such file")
    if not os.path.isfile(path):
        raise CLIError(f"{flag} {path} is a folder; give an image file")


def check_output_path(path: str, flag: str) -> None:
    """`path` names a file in an image format PIL can write."""
    import PIL.Image

    extension = Path(path).suffix.lower()
    if extension not in PIL.Image.registered_extensions():
        raise CLIError(f"{flag} {path}: unknown image format {extension or '(no extension)'!r}; use e.g. .png or .jpg")
    if Path(path).is_dir():
        raise CLIError(f"{flag} {path} is a folder; give a file name such as {Path(path) / 'out.png'}")


def resolve_device(device: str) -> str:
    """``auto`` -> cuda when available, else cpu; ``cuda`` without CUDA is a `CLIError`."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise CLIError("--device cuda: CUDA is not available here (no GPU, or torch built without CUDA); use --device cpu")
    return device


def resolve_dtype(dtype: str, device: str) -> str:
    """The ``--dtype`` to load with on `device`: ``bfloat16`` on a CPU that only emulates it (no AVX512-BF16/AMX)
    becomes ``float32`` with a warning on stderr, unless ``LABELSYNTH_ALLOW_SLOW_BF16=1`` keeps it (then the warning
    says how much slower it runs); see `labelsynth.utils.precision.cpu_dtype`."""
    import warnings

    import torch

    from ..utils.precision import cpu_dtype

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        chosen = cpu_dtype(getattr(torch, dtype), device, what=f"--dtype {dtype}")
    for warning in caught:
        print(f"{PROG}: warning: {warning.message}", file=sys.stderr)
    return str(chosen).removeprefix("torch.")


def _looks_like_path(model: str) -> bool:
    """Whether `model` is meant as a local path rather than a Hub id (``org/name`` or ``name``)."""
    return (
        model.startswith((".", "~", "/", os.sep))
        or (os.altsep is not None and os.altsep in model)
        or model.count("/") > 1
        or os.path.isabs(model)
    )


def resolve_model_argument(model: str | None, flag: str = "--model") -> str:
    """What to load for ``--model``: the built-in model when None, a folder, a registered id's weights, or a Hub id.

    Folders that cannot hold a model and unavailable registered checkpoints are `CLIError`\\ s here, before anything
    heavy is loaded; Hub ids are left to the loader.
    """
    from ..hub.resolve import ModelNotAvailableError, resolve_model

    if model is None:
        from ..examples import BUILTIN_MODEL

        return str(BUILTIN_MODEL)
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file() and not (path / "model_index.json").is_file():
            raise CLIError(
                f"{flag} {model}: the folder has no config.json, so it is not a saved model (nor a diffusers pipeline: "
                "no model_index.json); give the folder written by save_pretrained / `labelsynth convert` "
                "(config.json, model.safetensors, preprocessor_config.json)"
            )
        return str(path)
    if path.exists():
        raise CLIError(f"{flag} {model} is a file; give the model folder that holds it (or a Hub id)")
    try:
        resolved = resolve_model(model)
    except ModelNotAvailableError as err:
        raise CLIError(f"{flag} {err}") from None
    if resolved == model and _looks_like_path(model):
        raise CLIError(f"{flag} {model}: no such folder")
    return resolved
