"""Contextual loss (Mechrez et al., ECCV 2018) in the form CoCosNet trains with (its `ContextualLoss_forward`).

For feature maps X (generated) and Y (exemplar), `[B, C, H, W]`, with N = H * W positions:

1. centre both with Y's mean: per position over the channels (``centering="channels"``, CoCosNet with ``--PONO``)
   or per channel over the positions (``"positions"``);
2. L2-normalise every feature vector; cosine distance ``d_ij = 1 - <x_i, y_j>``;
3. relative distance ``d~_ij = d_ij / (min_k d_ik + eps)`` (eps = 1e-3);
4. affinity ``w_ij = exp((1 - d~_ij) / h)``, normalised over j: ``A_ij = w_ij / sum_k w_ik`` (bandwidth h = 0.1);
5. ``CX = mean_i max_j A_ij`` and the loss is ``-log(CX)`` per sample.

It asks every generated feature to find a close exemplar feature somewhere, without spatial alignment. The cost is
an N x N matrix per sample: CoCosNet applies it on VGG-19 relu3_2 (average-pooled 2x), relu4_2 and relu5_2 features
(weights 2, 4, 8; `cocosnet_contextual_loss`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F

__all__ = ["COCOSNET_CONTEXTUAL_WEIGHTS", "cocosnet_contextual_loss", "contextual_loss"]

_EPS = 2.220446049250313e-16  # the original's sys.float_info.epsilon in the L2 normalisation
# relu3_2 (average-pooled 2x), relu4_2, relu5_2 -> weights 2, 4, 8 (and relu2_2 pooled 4x -> 1 with --use_22ctx)
COCOSNET_CONTEXTUAL_WEIGHTS = {"relu2_2": 1.0, "relu3_2": 2.0, "relu4_2": 4.0, "relu5_2": 8.0}
_POOLING = {"relu2_2": 4, "relu3_2": 2, "relu4_2": 1, "relu5_2": 1}


def contextual_loss(x: torch.Tensor, y: torch.Tensor, bandwidth: float = 0.1,
                    centering: Literal["channels", "positions"] = "channels", eps: float = 1e-3) -> torch.Tensor:
    """Per-sample contextual loss `[B]` of features `x` w.r.t. `y` (both `[B, C, H, W]`, computed in float32).

    `y` is the target (its gradient is not needed; pass it detached).
    """
    if x.shape != y.shape:
        raise ValueError(f"x {tuple(x.shape)} and y {tuple(y.shape)} must have the same shape")
    if centering not in ("channels", "positions"):
        raise ValueError(f"centering must be 'channels' or 'positions', got {centering!r}")
    x, y = x.float(), y.float()
    b, c = x.shape[:2]
    mean = y.mean(dim=1, keepdim=True) if centering == "channels" else y.flatten(2).mean(-1)[..., None, None]
    x, y = x - mean, y - mean
    x = (x / (x.norm(dim=1, keepdim=True) + _EPS)).reshape(b, c, -1)
    y = (y / (y.norm(dim=1, keepdim=True) + _EPS)).reshape(b, c, -1)
    distance = 1 - torch.bmm(x.transpose(1, 2), y)  # [B, N, N]
    relative = distance / (distance.min(dim=-1, keepdim=True).values + eps)
    affinity = torch.softmax((1 - relative) / bandwidth, dim=-1)  # = exp(.) / sum exp(.), numerically safer
    return -torch.log(affinity.max(dim=-1).values.mean(dim=1))


def cocosnet_contextual_loss(fake_features: dict[str, torch.Tensor], exemplar_features: dict[str, torch.Tensor],
                             layers: Sequence[str] = ("relu3_2", "relu4_2", "relu5_2"),
                             centering: Literal["channels", "positions"] = "channels") -> torch.Tensor:
    """CoCosNet's multi-layer contextual loss: `sum_l w_l * mean_b CX(fake_l, exemplar_l)` over VGG-19 layers
    (relu3_2 pooled 2x, relu2_2 pooled 4x), weights in `COCOSNET_CONTEXTUAL_WEIGHTS`. Exemplar features are
    detached. The loss weight (`lambda_vgg * ctx_w` = 10) is applied by the caller."""
    total = None
    for layer in layers:
        if layer not in COCOSNET_CONTEXTUAL_WEIGHTS:
            raise ValueError(f"unknown contextual layer {layer!r}; expected some of {sorted(COCOSNET_CONTEXTUAL_WEIGHTS)}")
        fake, target = fake_features[layer], exemplar_features[layer].detach()
        pool = _POOLING[layer]
        if pool > 1:
            fake, target = F.avg_pool2d(fake, pool), F.avg_pool2d(target, pool)
        term = contextual_loss(fake, target, centering=centering).mean() * COCOSNET_CONTEXTUAL_WEIGHTS[layer]
        total = term if total is None else total + term
    if total is None:
        raise ValueError("no layers given")
    return total
