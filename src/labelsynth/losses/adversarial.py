"""Adversarial objectives on (multi-scale) patch discriminator outputs.

Per-scale losses, with ``x`` the logits of one scale and every mean taken over all its elements:

=============  ==============================  ==============================  ==============================
mode           D, real                         D, fake                         G (fake, target real)
=============  ==============================  ==============================  ==============================
``hinge``      ``mean(relu(1 - x))``           ``mean(relu(1 + x))``           ``-mean(x)``
``ls``         ``mean((x - 1)^2)``             ``mean(x^2)``                   ``mean((x - 1)^2)``
``original``   ``BCEWithLogits(x, 1)``         ``BCEWithLogits(x, 0)``         ``BCEWithLogits(x, 1)``
``w``          ``-mean(x)``                    ``mean(x)``                     ``-mean(x)``
=============  ==============================  ==============================  ==============================

(Geometric GAN / Lim & Ye 2017 hinge; least squares, Mao et al. 2017; original non-saturating GAN, Goodfellow et
al. 2014; Wasserstein critic, Arjovsky et al. 2017.) Targets 1/0 are ``real_label``/``fake_label``.

Across scales (``D_1 .. D_K`` of a multi-scale discriminator):

* ``scale_reduction="mean"`` (default): ``(1/K) * sum_k loss_k`` — SPADE, SEAN, CoCosNet (their ``GANLoss``
  averages over the discriminators); also pix2pix (one discriminator, so it does not matter).
* ``scale_reduction="sum"``: ``sum_k loss_k`` — pix2pixHD (its ``GANLoss`` adds the LSGAN loss of every scale).

How the two D terms are combined is left to the caller: SPADE/SEAN/CoCosNet use ``D_real + D_fake``;
pix2pix and pix2pixHD use ``0.5 * (D_real + D_fake)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["GAN_MODES", "DiscriminatorOutputs", "GANLoss", "final_logits"]

GAN_MODES = ("hinge", "ls", "original", "w")
_ALIASES = {"lsgan": "ls", "vanilla": "original", "bce": "original", "wgan": "w", "wgangp": "w"}

# A plain logits tensor (one scale), a list over scales of logits, or a list over scales of feature lists whose last
# entry is the logits (what `MultiscaleDiscriminator` returns).
DiscriminatorOutputs = torch.Tensor | Sequence[torch.Tensor | Sequence[torch.Tensor]]


def final_logits(outputs: DiscriminatorOutputs) -> list[torch.Tensor]:
    """The patch logits of every scale.

    A tensor is one scale. A list is a list over scales whose entries are either the logits or the list of every
    stage's output (the last being the logits). Note that the output of a single :class:`NLayerDiscriminator` (a list
    of its stages' features) must be wrapped, ``[features]``, or it would be read as one scale per stage.
    """
    if isinstance(outputs, torch.Tensor):
        return [outputs]
    if not isinstance(outputs, Sequence) or len(outputs) == 0:
        raise ValueError(f"expected discriminator outputs (a tensor or a non-empty list), got {type(outputs).__name__}")
    logits = []
    for scale in outputs:
        if not isinstance(scale, torch.Tensor):
            if not isinstance(scale, Sequence) or len(scale) == 0:
                raise ValueError("each scale must be a logits tensor or a non-empty list of stage outputs")
            scale = scale[-1]
        logits.append(scale)
    return logits


class GANLoss(nn.Module):
    """GAN loss for the discriminator and the generator sides (see the module docstring for the exact formulas).

    Args:
        mode: ``"hinge"`` (SPADE default), ``"ls"`` (pix2pixHD, ``"lsgan"``), ``"original"`` (pix2pix ``"vanilla"``;
            BCE with logits, numerically stable) or ``"w"`` (Wasserstein, ``"wgangp"`` without the penalty).
        scale_reduction: ``"mean"`` over discriminator scales (SPADE family) or ``"sum"`` (pix2pixHD).
        real_label, fake_label: targets of the ``ls`` and ``original`` modes.

    ``forward(outputs, target_is_real, for_discriminator=True)`` follows SPADE's ``GANLoss.__call__``: for ``hinge``
    the generator side (``for_discriminator=False``) requires ``target_is_real=True`` and gives ``-mean(x)``; the other
    modes ignore ``for_discriminator``. Computed in float32 whatever the autocast dtype. Returns a 0-dim tensor.
    """

    def __init__(self, mode: Literal["hinge", "ls", "original", "w"] = "hinge", *,
                 scale_reduction: Literal["mean", "sum"] = "mean", real_label: float = 1.0, fake_label: float = 0.0):
        super().__init__()
        mode = _ALIASES.get(mode, mode)
        if mode not in GAN_MODES:
            raise ValueError(f"unknown GAN mode {mode!r}; expected one of {GAN_MODES} (or aliases {sorted(_ALIASES)})")
        if scale_reduction not in ("mean", "sum"):
            raise ValueError(f"scale_reduction must be 'mean' or 'sum', got {scale_reduction!r}")
        self.mode = mode
        self.scale_reduction = scale_reduction
        self.real_label = float(real_label)
        self.fake_label = float(fake_label)

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}, scale_reduction={self.scale_reduction!r}"

    def _single_scale(self, x: torch.Tensor, target_is_real: bool, for_discriminator: bool) -> torch.Tensor:
        x = x.float()
        if self.mode == "hinge":
            if not for_discriminator:
                if not target_is_real:
                    raise ValueError("the hinge generator loss is defined for target_is_real=True only")
                return -x.mean()
            return F.relu(1.0 - x).mean() if target_is_real else F.relu(1.0 + x).mean()
        if self.mode == "w":
            return -x.mean() if target_is_real else x.mean()
        target = torch.full_like(x, self.real_label if target_is_real else self.fake_label)
        if self.mode == "ls":
            return F.mse_loss(x, target)
        return F.binary_cross_entropy_with_logits(x, target)

    def forward(self, outputs: DiscriminatorOutputs, target_is_real: bool,
                for_discriminator: bool = True) -> torch.Tensor:
        # Inputs are cast to float32, and the ops below are float32 under autocast anyway.
        losses = [self._single_scale(x, target_is_real, for_discriminator) for x in final_logits(outputs)]
        total = torch.stack(losses).sum()
        return total / len(losses) if self.scale_reduction == "mean" else total

    def discriminator_loss(self, outputs: DiscriminatorOutputs, target_is_real: bool) -> torch.Tensor:
        """D's loss on real (``target_is_real=True``) or fake outputs."""
        return self(outputs, target_is_real, for_discriminator=True)

    def generator_loss(self, fake_outputs: DiscriminatorOutputs) -> torch.Tensor:
        """G's loss on D's outputs for generated images (hinge: ``-mean(D(fake))``; others: fake labelled real)."""
        return self(fake_outputs, True, for_discriminator=False)

