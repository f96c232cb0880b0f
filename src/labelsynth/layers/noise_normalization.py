"""SPADE conditioned on `[noise z, one-hot label]` (OASIS's 3D noise), with an exact fast inference path.

OASIS (Schönfeld, Sushko et al., ICLR 2021) concatenates a noise map in front of the one-hot label map and feeds the
result to the first conv and to every SPADE layer. The noise is piecewise constant: one vector per image, or a few
vectors per image when a region is re-sampled. So the fast SPADE path of `labelsynth.layers.normalization` carries
over once every pixel is keyed by its *(label, noise vector)* pair instead of its label alone:

* the hidden layer's 3x3 conv over `[z, one-hot]` is, per tap, the label's weight column plus the noise vector seen
  through that tap's weights; both depend only on the key, so the per-tap embedding table has one row per key;
* where the key is constant over the 5x5 receptive field of gamma/beta, gamma/beta come from a per-key table;
* keys are numbered among the pairs that occur in the batch (`torch.unique`), so the tables hold only those rows
  (a few dozen per image) and are rebuilt every forward (the noise changes every forward) at negligible cost,
  while the weight rearrangements are cached until a weight changes.

A spatial noise map with many distinct vectors (e.g. i.i.d. noise per pixel) has no such structure;
`NoiseSemanticLayout.from_noise` then returns None and the model takes the plain path.
"""

from __future__ import annotations

import torch

from .inference_cache import cached_derivation, tensor_versions
from .normalization import SPADE, SemanticLayout, _FastTables, table_precision

__all__ = ["MAX_NOISE_VECTORS", "NoiseSPADE", "NoiseSemanticLayout"]

# Distinct noise vectors in one batch above which the fast path is not worth it (the tables grow with them).
MAX_NOISE_VECTORS = 256


def _projection(dim: int, device: torch.device) -> torch.Tensor:
    """A fixed random direction `[dim]` (float64) that pixels' noise vectors are grouped by."""
    return torch.randn(dim, dtype=torch.float64, generator=torch.Generator().manual_seed(0)).to(device)


class NoiseSemanticLayout(SemanticLayout):
    """Label map + piecewise-constant noise, keyed per pixel by its (label channel, noise vector) pair.

    Args:
        channels (`LongTensor[B, H, W]`): semantic channel index of every pixel (0 .. num_label_channels - 1).
        vectors (`FloatTensor[V, D]`): the distinct noise vectors.
        vector_index (`LongTensor[B, H, W]`): row of `vectors` at every pixel.
        num_label_channels: channels L of the one-hot part.
        kernel_size: SPADE conv kernel size.

    Attributes:
        key_labels (`LongTensor[K]`): label channel of each key.
        key_vectors (`FloatTensor[K, D]`): noise vector of each key.
    """

    def __init__(self, channels: torch.Tensor, vectors: torch.Tensor, vector_index: torch.Tensor,
                 num_label_channels: int, kernel_size: int = 3) -> None:
        combined = vector_index.long() * num_label_channels + channels.long()
        unique, inverse = torch.unique(combined, return_inverse=True)
        super().__init__(inverse.view_as(channels), None, unique.numel(), kernel_size)
        self.num_label_channels = num_label_channels
        self.key_labels = unique % num_label_channels
        self.key_vectors = vectors[unique // num_label_channels]

    @classmethod
    def from_noise(cls, channels: torch.Tensor, noise: torch.Tensor, num_label_channels: int, kernel_size: int = 3,
                   max_vectors: int = MAX_NOISE_VECTORS) -> NoiseSemanticLayout | None:
        """The layout of `channels` with `noise` `[B, D]` (one vector per image) or `[B, D, H, W]` (a spatial map at
        the label map's size); None when the map holds more than `max_vectors` distinct vectors."""
        b, h, w = channels.shape
        if noise.dim() == 2:
            index = torch.arange(b, device=channels.device).view(b, 1, 1).expand(b, h, w)
            return cls(channels, noise, index, num_label_channels, kernel_size)
        pixels = noise.permute(0, 2, 3, 1).reshape(-1, noise.shape[1])
        # Group pixels by a random projection of their vector: one sort of scalars, ~5x faster than torch.unique's
        # lexicographic sort of rows. Distinct projections imply distinct vectors; the converse is checked exactly.
        projections, index = torch.unique(pixels.double() @ _projection(noise.shape[1], pixels.device),
                                          return_inverse=True)
        if projections.numel() > max_vectors:
            return None
        representative = torch.empty(projections.numel(), dtype=torch.long, device=pixels.device)
        representative.scatter_(0, index, torch.arange(index.numel(), device=pixels.device))
        vectors = pixels[representative]
        if not torch.equal(vectors[index], pixels):  # two different vectors projected alike: group them exactly
            vectors, index = torch.unique(pixels, dim=0, return_inverse=True)
            if vectors.shape[0] > max_vectors:
                return None
        return cls(channels, vectors, index.view(b, h, w), num_label_channels, kernel_size)

    def dense(self, size: tuple[int, int], dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The semantic input `[B, D + L, h, w]` at `size`: the noise map, then the one-hot labels."""
        keys = self.level(size).keys.view(-1, *size)
        noise = self.key_vectors.to(dtype)[keys].permute(0, 3, 1, 2)
        one_hot = torch.zeros(keys.shape[0], self.num_label_channels, *size, dtype=dtype, device=keys.device)
        one_hot.scatter_(1, self.key_labels[keys].unsqueeze(1), 1.0)
        return torch.cat([noise, one_hot], dim=1)


class NoiseSPADE(SPADE):
    """`SPADE` whose semantic input is `[noise z (D channels), one-hot labels (L channels)]` (OASIS).

    Same parameters, state-dict keys and plain path as `SPADE` (`label_nc` = D + L); the fast path takes a
    `NoiseSemanticLayout` (or a plain `SemanticLayout` when there is no noise part).
    """

    def _weight_tables(self, dtype: torch.dtype) -> tuple:
        """Weights rearranged for the fast path, independent of the input; cached until a weight changes (built on
        every call when they must carry gradients)."""
        params, differentiable = self._params()
        fold = self._folds_norm()
        tracked = params + ((self.param_free_norm.running_mean, self.param_free_norm.running_var) if fold else ())

        def build() -> tuple:
            shared_w, shared_b, gamma_w, gamma_b, beta_w, beta_b = (
                table_precision(p if differentiable else p.detach()) for p in params)
            hidden_nc, in_nc, k, _ = shared_w.shape
            per_tap = shared_w.permute(2, 3, 1, 0).reshape(k * k, in_nc, hidden_nc)  # [taps, D + L, hidden]
            gb_w = torch.cat([gamma_w, beta_w], dim=0)  # [2C, hidden, k, k]
            gb_b = torch.cat([gamma_b + 1, beta_b], dim=0)  # the +1 of (1 + gamma) folded into the bias
            gb_sum = gb_w.sum(dim=(2, 3)).t().contiguous()  # gamma/beta of a key-constant neighbourhood
            gb_matrix = gb_w.permute(2, 3, 1, 0).reshape(k * k * hidden_nc, -1).to(dtype).contiguous()
            norm_scale = norm_shift = None
            if fold:
                norm = self.param_free_norm
                norm_scale = torch.rsqrt(table_precision(norm.running_var) + norm.eps)
                norm_shift = -table_precision(norm.running_mean) * norm_scale
            return per_tap, shared_b, gb_sum, gb_b, gb_matrix, norm_scale, norm_shift

        if differentiable:
            return build()
        return cached_derivation(self, "_noise_weight_tables", (tensor_versions(*tracked), dtype, fold), build)

    def _key_rows(self, per_tap: torch.Tensor, layout: SemanticLayout) -> torch.Tensor:
        if not isinstance(layout, NoiseSemanticLayout):
            return super()._key_rows(per_tap, layout)
        num_noise = per_tap.shape[1] - layout.num_label_channels
        if num_noise != layout.key_vectors.shape[1]:
            raise ValueError(
                f"SPADE layer expects {per_tap.shape[1]} semantic channels but the layout has "
                f"{layout.key_vectors.shape[1]} noise + {layout.num_label_channels} label channels"
            )
        # Hidden contribution of each key through each tap: its label's weight column + its noise vector's product.
        return per_tap[:, num_noise:][:, layout.key_labels] + torch.matmul(layout.key_vectors.to(per_tap.dtype),
                                                                           per_tap[:, :num_noise])

    def _tables(self, layout: SemanticLayout, dtype: torch.dtype) -> _FastTables:
        if not isinstance(layout, NoiseSemanticLayout):
            return super()._tables(layout, dtype)
        per_tap, shared_b, gb_sum, gb_b, gb_matrix, norm_scale, norm_shift = self._weight_tables(dtype)
        rows = self._key_rows(per_tap, layout)
        taps, _, hidden_nc = rows.shape
        embedding = torch.cat([rows, rows.new_zeros(taps, 1, hidden_nc)], dim=1)  # + the zero row of padding
        embedding[0] += shared_b  # every bag holds exactly one tap-0 entry: the bias is added once per pixel
        constant_hidden = torch.relu(rows.sum(0) + shared_b)  # [K, hidden]
        constant_scale, constant_shift = torch.addmm(gb_b, constant_hidden, gb_sum).chunk(2, dim=1)
        if norm_scale is not None:
            constant_scale, constant_shift = (constant_scale * norm_scale,
                                              torch.addcmul(constant_shift, constant_scale, norm_shift))
        return _FastTables(None, embedding.reshape(-1, hidden_nc), constant_scale.to(dtype).contiguous(),
                           constant_shift.to(dtype).contiguous(), gb_matrix, gb_b, norm_scale, norm_shift)
