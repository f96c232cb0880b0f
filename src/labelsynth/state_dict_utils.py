"""Checking a state dict against a model before loading, with one readable message for every problem."""

from __future__ import annotations

import pickle
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import torch


def _shown(items: Sequence[str], limit: int) -> str:
    return ", ".join(items[:limit]) + (", ..." if len(items) > limit else "")


def state_dict_mismatch(expected: Mapping[str, torch.Tensor], given: Mapping[str, torch.Tensor], *,
                        optional: Callable[[str], bool] = lambda key: False, limit: int = 10) -> str | None:
    """None when `given` has exactly the keys and shapes of `expected`; else a description of the differences.

    Args:
        expected: the model's `state_dict()`.
        given: the state dict to load.
        optional: keys of `expected` that may be absent from `given`.
        limit: how many keys of each kind to name.

    Returns:
        e.g. ``"missing keys (1): a.bias; unexpected keys (2): b, c; shape mismatches (1): d.weight: file (3, 4) vs
        model (4, 4)"``, or None.
    """
    missing = [k for k in expected if k not in given and not optional(k)]
    unexpected = [k for k in given if k not in expected]
    mismatched = [f"{k}: file {tuple(given[k].shape)} vs model {tuple(v.shape)}" for k, v in expected.items()
                  if k in given and tuple(given[k].shape) != tuple(v.shape)]
    parts = [f"{name} ({len(keys)}): {_shown(keys, limit)}" for name, keys in
             (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", mismatched)) if keys]
    return "; ".join(parts) or None


def _unsafe_global(message: str) -> str:
    """`` (e.g. `mymodule.MyClass`)`` for the first global torch's safe unpickler refused, else ``""``."""
    match = re.search(r"(?:Unsupported global: GLOBAL|Unsupported class) ([\w.]+)", message)
    return f" (e.g. `{match.group(1)}`)" if match else ""


def load_torch_state_dict(path: str | Path, what: str | None = None) -> dict[str, torch.Tensor]:
    """A `.pth` state dict (a ``{"state_dict": ...}`` wrapper too) loaded safely, on the CPU.

    `torch.load(weights_only=True)` never runs code from the file; when it refuses one, the error says so and that
    the file is refused -- never torch's advice to retry with ``weights_only=False``, which would run it.

    Args:
        path: the file.
        what: how errors name it (default: the path).

    Raises:
        ValueError: unreadable, unsafe, or not a mapping of names to tensors.
    """
    what = what or str(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, KeyError, ValueError, EOFError, OSError) as err:
        if "weights_only" in str(err) or "Weights only load failed" in str(err):
            raise ValueError(
                f"{what}: the file holds pickled objects other than tensors and plain containers"
                f"{_unsafe_global(str(err))}, which cannot be loaded safely; it is refused. Use a plain state_dict "
                "of tensors (torch.save(model.state_dict(), ...)) or a .safetensors file"
            ) from None
        raise ValueError(f"{what} is not a PyTorch checkpoint that torch.load can read ({err!r})") from None
    if isinstance(state, Mapping) and isinstance(state.get("state_dict"), Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{what} is not a plain state_dict of tensors (got {type(state).__name__})")
    return dict(state)
