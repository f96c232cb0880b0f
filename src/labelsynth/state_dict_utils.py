"""Checking a state dict against a model before loading, with one readable message for every problem."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

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
