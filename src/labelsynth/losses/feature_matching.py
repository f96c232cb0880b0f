"""Discriminator feature matching (Wang et al. 2018, pix2pixHD; reused by SPADE, SEAN, CoCosNet).

For discriminator outputs ``F_k^j`` (scale ``k = 1..K``, stage ``j``; the last stage, the logits, is excluded)::

    loss = sum_k sum_{j < J_k} (w_k / num_d) * criterion(F_k^j(fake), F_k^j(real).detach())

with ``criterion`` the element-mean L1 and ``num_d = K`` by default:

* SPADE / SEAN / CoCosNet: ``w_k = 1`` (``layer_weight=1.0``, the default).
* pix2pixHD: ``w_k = 4 / (n_layers_D + 1)`` = 4 / (number of intermediate stages) (``layer_weight="pix2pixhd"``,
  computed per scale from the outputs; 1.0 for its default ``n_layers_D=3``).

The loss weight (``lambda_feat = 10`` in all of them) is applied by the caller.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import torch
import torch.nn.functional as F

__all__ = ["feature_matching_loss"]

_CRITERIA: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {"l1": F.l1_loss, "mse": F.mse_loss}


def feature_matching_loss(
    fake_outputs: Sequence[Sequence[torch.Tensor]],
    real_outputs: Sequence[Sequence[torch.Tensor]],
    *,
    num_d: int | None = None,
    layer_weight: float | Literal["pix2pixhd"] = 1.0,
    criterion: Literal["l1", "mse"] | Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = "l1",
) -> torch.Tensor:
    """Feature-matching loss between D's outputs for generated and real inputs.

    Args:
        fake_outputs, real_outputs: per scale, the list of every stage's output, the last being the logits (what
            :class:`~labelsynth.layers.discriminators.MultiscaleDiscriminator` returns). A single
            :class:`NLayerDiscriminator`'s list must be wrapped (``[features]``). Real features are detached.
        num_d: divisor (defaults to the number of scales).
        layer_weight: per-stage weight, a number or ``"pix2pixhd"`` (``4 / number of intermediate stages``).
        criterion: ``"l1"`` (all the originals), ``"mse"`` or a callable ``(fake, real) -> scalar``.

    Returns a 0-dim float32 tensor (features are cast to float32).
    """
    if isinstance(fake_outputs, torch.Tensor) or isinstance(real_outputs, torch.Tensor):
        raise TypeError("feature matching needs per-scale lists of stage outputs, not a tensor")
    if len(fake_outputs) != len(real_outputs) or len(fake_outputs) == 0:
        raise ValueError(f"fake and real outputs must have the same non-zero number of scales, got "
                         f"{len(fake_outputs)} and {len(real_outputs)}")
    if isinstance(criterion, str):
        if criterion not in _CRITERIA:
            raise ValueError(f"unknown criterion {criterion!r}; expected one of {sorted(_CRITERIA)} or a callable")
        criterion = _CRITERIA[criterion]
    if isinstance(layer_weight, str) and layer_weight != "pix2pixhd":
        raise ValueError(f"layer_weight must be a number or 'pix2pixhd', got {layer_weight!r}")
    num_d = len(fake_outputs) if num_d is None else num_d
    total: torch.Tensor | None = None
    for k, (fake_scale, real_scale) in enumerate(zip(fake_outputs, real_outputs)):
        if isinstance(fake_scale, torch.Tensor) or isinstance(real_scale, torch.Tensor):
            raise TypeError(f"scale {k}: expected a list of stage outputs, got a tensor (logits alone carry no "
                            "intermediate features)")
        if len(fake_scale) != len(real_scale):
            raise ValueError(f"scale {k}: {len(fake_scale)} fake vs {len(real_scale)} real stage outputs")
        num_intermediate = len(fake_scale) - 1
        if num_intermediate < 1:
            continue
        weight = 4.0 / num_intermediate if layer_weight == "pix2pixhd" else float(layer_weight)
        for j in range(num_intermediate):
            term = criterion(fake_scale[j].float(), real_scale[j].detach().float()) * (weight / num_d)
            total = term if total is None else total + term
    if total is None:
        raise ValueError("no intermediate discriminator features to match (every scale has only its logits)")
    return total
