"""Weights rearranged for inference (fused, padded, transformed), cached on the module they are derived from and
rebuilt when a source tensor changes."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TypeVar

import torch
from torch import nn

__all__ = ["cached_derivation", "frozen_inference", "tensor_versions"]

T = TypeVar("T")


def frozen_inference(module: nn.Module) -> bool:
    """Whether `module` runs as pure inference: eval mode and no autograd, so nothing needs gradients or advances
    training state (BatchNorm statistics, spectral norm's power iteration), and weights may be rearranged once and
    cached. The fast inference paths take effect only then."""
    return not module.training and not torch.is_grad_enabled()


def tensor_versions(*tensors: torch.Tensor) -> tuple:
    """A key that changes when one of `tensors` is modified in place (an optimizer step, `load_state_dict`),
    replaced, cast or moved."""
    return tuple((t._version, t.data_ptr(), t.dtype, t.device) for t in tensors)


def cached_derivation(module: nn.Module, name: str, key: Hashable, build: Callable[[], T]) -> T:
    """`build()`, kept in `module.__dict__[name]` and returned again while `key` is unchanged.

    The plain attribute (not a buffer or submodule) keeps the derived tensors out of the state dict, `.to()` and
    parameter counts; `key` (usually from `tensor_versions`) says when they are stale.
    """
    cached = module.__dict__.get(name)
    if cached is None or cached[0] != key:
        cached = (key, build())
        module.__dict__[name] = cached
    return cached[1]
