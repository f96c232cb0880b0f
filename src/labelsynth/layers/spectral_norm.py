"""Spectral normalization (Miyato et al. 2018) as a parametrization that trains like the original GAN code bases.

`torch.nn.utils.parametrizations.spectral_norm` updates `u` before `v` in its power iteration, while the legacy hook
(`torch.nn.utils.spectral_norm`) that SPADE, SEAN, CoCosNet and OASIS were trained with updates `v` from `u` first;
with one iteration per call the two give different sigmas, so training steps differ. This module follows the legacy
order and initialisation while keeping the parametrization's state-dict keys (`parametrizations.weight.original`,
`parametrizations.weight.0._u`, `parametrizations.weight.0._v`), which transformers' loading leaves alone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize


class SpectralNorm(nn.Module):
    """`weight / sigma(weight)`, sigma estimated by power iteration (one step per training forward).

    Args:
        weight: the weight it will parametrize (for shapes).
        dim: the output dimension (0 for Conv2d/Linear, 1 for ConvTranspose2d).
        n_power_iterations: power-iteration steps per training forward.
        eps: epsilon of the vector normalisation.
    """

    def __init__(self, weight: torch.Tensor, dim: int = 0, n_power_iterations: int = 1, eps: float = 1e-12):
        super().__init__()
        self.dim, self.n_power_iterations, self.eps = dim, n_power_iterations, eps
        matrix = self._matrix(weight)
        height, width = matrix.shape
        # Legacy initialisation: random normalised u, v, no warm-up iterations.
        self.register_buffer("_u", F.normalize(weight.new_empty(height).normal_(0, 1), dim=0, eps=eps))
        self.register_buffer("_v", F.normalize(weight.new_empty(width).normal_(0, 1), dim=0, eps=eps))

    def _matrix(self, weight: torch.Tensor) -> torch.Tensor:
        if self.dim != 0:
            weight = weight.movedim(self.dim, 0)
        return weight.flatten(1)

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        matrix = self._matrix(weight)
        if self.training:
            with torch.no_grad():
                for _ in range(self.n_power_iterations):
                    # v first, then u: the order of the legacy hook the original models were trained with.
                    self._v.copy_(F.normalize(torch.mv(matrix.t(), self._u), dim=0, eps=self.eps))
                    self._u.copy_(F.normalize(torch.mv(matrix, self._v), dim=0, eps=self.eps))
        u, v = self._u.clone(), self._v.clone()
        sigma = torch.dot(u, torch.mv(matrix, v))
        return weight / sigma


def spectral_norm(module: nn.Module, dim: int | None = None, n_power_iterations: int = 1, eps: float = 1e-12
                  ) -> nn.Module:
    """Register `SpectralNorm` on `module.weight` (dim 1 for transposed convolutions, else 0)."""
    if dim is None:
        dim = 1 if isinstance(module, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)) else 0
    parametrize.register_parametrization(module, "weight", SpectralNorm(module.weight, dim, n_power_iterations, eps))
    return module
