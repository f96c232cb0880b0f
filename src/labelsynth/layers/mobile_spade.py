"""Mobile SPADE layers of GAN Compression (Li et al., CVPR 2020): separable convs in SPADE, narrow residual blocks.

`MobileSPADE` is SPADE whose gamma and beta convs are depthwise-separable (depthwise 3x3 -> InstanceNorm -> 1x1):

    out = norm(x) * (1 + gamma) + beta,   gamma = pw_g(inorm(dw_g(h))),  beta = pw_b(inorm(dw_b(h))),
    h = relu(conv3x3(seg))

Fast inference path (exact up to float32 rounding), built on `SemanticLayout` like `SPADE`'s:
  1. h at the pixels that need it is a sum of 9 embedding lookups of the one-hot map;
  2. where the labels are constant over the 5x5 receptive field of gamma/beta (the layout's interior), the depthwise
     output is a per-class vector; the InstanceNorm statistics (per image and channel, over all pixels) are then
     sums over class counts plus the boundary pixels, computed in float64;
  3. InstanceNorm, the 1x1 convs, the +1 and an eval-mode BatchNorm fold into one per-image table of `scale, shift`
     per class; only boundary pixels run the depthwise tap sum and the 1x1 matmul.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import inference_conv
from .inference_cache import cached_derivation, tensor_versions
from .normalization import LayoutLevel, SemanticLayout, param_free_norm

__all__ = ["MobileSPADE", "MobileSPADEResnetBlock", "SeparableConv2d"]


class SeparableConv2d(nn.Module):
    """Depthwise kxk conv (with bias) -> InstanceNorm2d (no affine, no running statistics) -> 1x1 conv (with bias).

    Shapes: `forward(x [B, C_in, H, W]) -> [B, C_out, H, W]` (zero padding keeps the size).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3):
        super().__init__()
        self.depthwise = nn.Conv2d(in_channels, in_channels, kernel_size, padding=kernel_size // 2,
                                   groups=in_channels)
        self.norm = nn.InstanceNorm2d(in_channels, affine=False)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.norm(self.depthwise(x)))


class MobileSPADE(nn.Module):
    """SPADE with separable gamma/beta convs (the sub-network form of GAN Compression's mobile SPADE).

    Args:
        norm_nc: channels C of the normalised activation (and of gamma/beta).
        label_nc: channels of the semantic input (one-hot labels, don't care, instance edges).
        hidden_nc: width of the shared hidden conv.
        kernel_size: kernel of the shared conv and of the depthwise convs.
        norm: parameter-free norm, see `labelsynth.layers.normalization.param_free_norm`.

    Shapes: `forward(x [B, C, H, W], segmap [B, label_nc, h, w] | SemanticLayout) -> [B, C, H, W]`.
    """

    def __init__(self, norm_nc: int, label_nc: int, hidden_nc: int, kernel_size: int = 3, norm: str = "syncbatch"):
        super().__init__()
        self.param_free_norm = param_free_norm(norm, norm_nc)
        self.mlp_shared = nn.Sequential(nn.Conv2d(label_nc, hidden_nc, kernel_size, padding=kernel_size // 2),
                                        nn.ReLU())
        self.mlp_gamma = SeparableConv2d(hidden_nc, norm_nc, kernel_size)
        self.mlp_beta = SeparableConv2d(hidden_nc, norm_nc, kernel_size)

    def forward(self, x: torch.Tensor, segmap: torch.Tensor | SemanticLayout) -> torch.Tensor:
        if isinstance(segmap, SemanticLayout):
            scale, shift, folded = self.fast_modulation(segmap, tuple(x.shape[-2:]), x.dtype)
            return torch.addcmul(shift, x if folded else self.param_free_norm(x), scale)
        if tuple(segmap.shape[-2:]) != tuple(x.shape[-2:]):
            segmap = F.interpolate(segmap, size=x.shape[-2:], mode="nearest")
        hidden = self.mlp_shared(segmap)
        return self.param_free_norm(x) * (1 + self.mlp_gamma(hidden)) + self.mlp_beta(hidden)

    # ----------------------------------------------------------------------------------------------- fast path
    def _folds_norm(self) -> bool:
        norm = self.param_free_norm
        return isinstance(norm, nn.BatchNorm2d) and not norm.training and norm.track_running_stats

    def _tables(self, layout: SemanticLayout) -> dict[str, Any]:
        """Weights rearranged for the fast path (float32), rebuilt when a weight or statistic changes; with an eval
        BatchNorm (`norm_folded`) folded into the 1x1 matrix so that the layer output is `x * scale + shift`."""
        shared = self.mlp_shared[0]
        fold = self._folds_norm()
        tracked = [*self.mlp_shared.parameters(), *self.mlp_gamma.parameters(), *self.mlp_beta.parameters()]
        if fold:
            tracked += [self.param_free_norm.running_mean, self.param_free_norm.running_var]
        key = (tensor_versions(*tracked), layout.has_edges, fold)

        def build() -> dict[str, Any]:
            weight, bias = shared.weight.detach().float(), shared.bias.detach().float()
            hidden_nc, in_nc, k, _ = weight.shape
            num_labels = in_nc - 1 if layout.has_edges else in_nc
            per_tap = weight.permute(2, 3, 1, 0).reshape(k * k, in_nc, hidden_nc)  # [tap, channel, hidden]
            rows = per_tap[:, :num_labels]
            if layout.has_edges:  # key = 2 * label + edge bit
                rows = torch.stack([rows, rows + per_tap[:, num_labels:]], dim=2).reshape(k * k, -1, hidden_nc)
            if rows.shape[1] != layout.num_keys:
                raise ValueError(f"MobileSPADE layer expects {in_nc} semantic channels but the label layout has "
                                 f"{layout.num_keys} keys")
            embedding = torch.cat([rows, rows.new_zeros(k * k, 1, hidden_nc)], dim=1)
            embedding[0] += bias  # one tap-0 entry per bag: the bias is added once per pixel
            # Depthwise taps of gamma and beta side by side: [tap, 2 * hidden].
            dw_w = torch.cat([m.depthwise.weight.detach().float().reshape(hidden_nc, k * k).t()
                              for m in (self.mlp_gamma, self.mlp_beta)], dim=1)
            dw_b = torch.cat([m.depthwise.bias.detach().float() for m in (self.mlp_gamma, self.mlp_beta)])
            # Interior pixels: hidden and the depthwise output depend on the key alone.
            constant_dw = torch.relu(rows.sum(0) + bias).repeat(1, 2) * dw_w.sum(0) + dw_b  # [num_keys, 2 hidden]
            # Block-diagonal 1x1 convs: [2 hidden, 2C] (gamma | beta); +1 of (1 + gamma) in the bias.
            pw_g, pw_b = (m.pointwise.weight.detach().float()[:, :, 0, 0] for m in (self.mlp_gamma, self.mlp_beta))
            channels = pw_g.shape[0]
            pointwise = torch.zeros(2 * hidden_nc, 2 * channels)
            pointwise[:hidden_nc, :channels] = pw_g.t()
            pointwise[hidden_nc:, channels:] = pw_b.t()
            pw_bias = torch.cat([self.mlp_gamma.pointwise.bias.detach().float() + 1,
                                 self.mlp_beta.pointwise.bias.detach().float()])
            pointwise = pointwise.to(weight.device)
            tables = {"embedding": embedding.reshape(-1, hidden_nc), "dw_w": dw_w, "dw_b": dw_b,
                      "constant_dw": constant_dw}
            if fold:  # BN(x) * s + t = x * (s * a) + (t + s * c): columns [s * a | t + s * c] of the matrix
                norm = self.param_free_norm
                a = torch.rsqrt(norm.running_var.float() + norm.eps)
                c = -norm.running_mean.float() * a
                scale_cols, shift_cols = pointwise[:, :channels], pointwise[:, channels:]
                pointwise = torch.cat([scale_cols * a, shift_cols + scale_cols * c], dim=1)
                scale_bias, shift_bias = pw_bias[:channels], pw_bias[channels:]
                pw_bias = torch.cat([scale_bias * a, shift_bias + scale_bias * c])
            tables.update(pointwise=pointwise, pw_bias=pw_bias, norm_folded=fold)
            return tables

        return cached_derivation(self, "_fast_tables", key, build)

    @torch.no_grad()
    def fast_modulation(self, layout: SemanticLayout, size: tuple[int, int], dtype: torch.dtype = torch.float32
                        ) -> tuple[torch.Tensor, torch.Tensor, bool]:
        """Fast path (inference only): per-pixel `scale, shift` (each `[B, C, H, W]`, channels-last memory layout)
        such that the layer output is `x * scale + shift` when the BatchNorm is folded (`True` returned), else
        `norm(x) * scale + shift`."""
        if layout.padding_mode != "zeros":
            raise ValueError(f"MobileSPADE pads with zeros but the SemanticLayout pads with {layout.padding_mode!r}")
        level = layout.level(size)
        tables = self._tables(layout)
        h, w = size
        pixels = h * w
        batch = level.keys.numel() // pixels
        num_keys = layout.num_keys

        # Depthwise output at boundary pixels: hidden at the needed pixels, then the k x k tap sum, tap by tap (a
        # gathered [N, k*k, hidden] tensor through einsum runs as a slow batched matmul on CPU).
        hidden_nc = tables["dw_w"].shape[1] // 2
        boundary_dw = None
        if level.boundary.numel():
            hidden = torch.relu_(F.embedding_bag(level.bag_indices, tables["embedding"], mode="sum"))
            hidden = F.pad(hidden, (0, 0, 0, 1))  # row M: zeros, for out-of-image taps
            boundary_dw = tables["dw_b"].expand(level.boundary.numel(), -1).clone()  # [N, gamma | beta]
            dw_gamma, dw_beta = boundary_dw[:, :hidden_nc], boundary_dw[:, hidden_nc:]
            for tap in range(level.patch_indices.shape[1]):
                tap_hidden = hidden.index_select(0, level.patch_indices[:, tap])
                dw_gamma.addcmul_(tap_hidden, tables["dw_w"][tap, :hidden_nc])
                dw_beta.addcmul_(tap_hidden, tables["dw_w"][tap, hidden_nc:])

        # InstanceNorm statistics per image over all pixels: interior pixels through their key counts, boundary
        # pixels summed, in float64 (float32 column sums over ~10^5 pixels cost digits). Squares are taken around a
        # reference near the mean (the interior mean), so that E[(d - ref)^2] - (E[d] - ref)^2 does not cancel.
        counts, per_image = _interior_counts(level, batch, pixels, num_keys)
        constant = tables["constant_dw"].double()
        interior = counts.sum(1, keepdim=True)
        reference = (counts @ constant) / interior.clamp_min(1)  # [B, 2 hidden]
        centred = constant[None] - reference[:, None]  # [B, num_keys, 2 hidden]
        total = (counts[:, :, None] * centred).sum(1)
        total_sq = (counts[:, :, None] * centred.square()).sum(1)
        runs = boundary_dw.split(per_image) if boundary_dw is not None else ()
        for image, run in enumerate(runs):  # boundary indices are sorted: one contiguous run per image
            run_centred = run.double() - reference[image]
            total[image] += run_centred.sum(0)
            total_sq[image] += torch.linalg.vecdot(run_centred.t(), run_centred.t())
        offset = total / pixels  # E[d] - reference
        inv_std = torch.rsqrt((total_sq / pixels - offset.square()).clamp_min(0) + self.mlp_gamma.norm.eps).float()
        mean = (reference + offset).float()

        # Per image: InstanceNorm, then the 1x1 matrix (BatchNorm folded in). Centring before scaling keeps float32
        # exact where a channel's variance is small (folding 1/std into the matrix would cancel large terms).
        matrix, bias = tables["pointwise"], tables["pw_bias"]
        channels = matrix.shape[1] // 2
        scale_table, shift_table = [], []
        boundary_out = []
        for image in range(batch):
            normalized = (tables["constant_dw"] - mean[image]) * inv_std[image]
            scale_shift = torch.addmm(bias, normalized, matrix)  # [num_keys, 2C]
            scale_table.append(scale_shift[:, :channels])
            shift_table.append(scale_shift[:, channels:])
            if runs:
                normalized = runs[image].sub_(mean[image]).mul_(inv_std[image])
                boundary_out.append(torch.addmm(bias, normalized, matrix).to(dtype))
        keys = level.keys if batch == 1 else level.keys + _image_offsets(level, batch, pixels, num_keys)
        scale = F.embedding(keys, torch.cat(scale_table).to(dtype))  # [B*h*w, C]
        shift = F.embedding(keys, torch.cat(shift_table).to(dtype))
        if boundary_out:
            boundary_out = torch.cat(boundary_out)
            scale[level.boundary] = boundary_out[:, :channels]
            shift[level.boundary] = boundary_out[:, channels:]
        # Rows are pixels: viewed as [B, C, h, w] this is the channels-last layout.
        return (scale.view(batch, h, w, -1).permute(0, 3, 1, 2), shift.view(batch, h, w, -1).permute(0, 3, 1, 2),
                tables["norm_folded"])


def _image_offsets(level: LayoutLevel, batch: int, pixels: int, num_keys: int) -> torch.Tensor:
    """`image * num_keys` for every pixel of a batch: keys into per-image tables."""
    return torch.arange(batch, device=level.keys.device).repeat_interleave(pixels) * num_keys


def _interior_counts(level: LayoutLevel, batch: int, pixels: int, num_keys: int) -> tuple[torch.Tensor, list[int]]:
    """Per image, how many interior pixels carry each key (`[B, num_keys]` float64), and the number of boundary
    pixels per image; computed once per level and kept on it (every layer at that resolution needs them)."""
    cached = level.__dict__.get("_mobile_spade_counts")
    if cached is None:
        offsets = _image_offsets(level, batch, pixels, num_keys)
        interior = torch.ones_like(level.keys, dtype=torch.bool)
        interior[level.boundary] = False
        counts = torch.bincount((level.keys + offsets)[interior], minlength=batch * num_keys)
        per_image = torch.bincount(level.boundary // pixels, minlength=batch).tolist()
        cached = (counts.view(batch, num_keys).double(), per_image)
        level.__dict__["_mobile_spade_counts"] = cached
    return cached


class MobileSPADEResnetBlock(nn.Module):
    """Residual block of the compressed GauGAN: SPADE block layout with its own channel widths.

    main:     MobileSPADE -> LeakyReLU(0.2) -> conv3x3 (in_nc -> mid_nc) -> MobileSPADE -> LeakyReLU(0.2)
              -> conv3x3 (mid_nc -> out_nc)
    shortcut: identity (`learned_shortcut=False`, then out_nc == in_nc), or MobileSPADE -> conv1x1 without bias.

    Args:
        in_nc, mid_nc, out_nc: widths of the input, the inner activation and the output.
        semantic_nc: channels of the semantic input.
        hidden_nc: width of the MobileSPADE layers' shared hidden conv.
        learned_shortcut: a conv shortcut (the upsampling blocks) instead of the identity.
        norm: parameter-free norm inside MobileSPADE.

    Shapes: `forward(x [B, in_nc, H, W], seg) -> [B, out_nc, H, W]`, `seg` a one-hot map or a `SemanticLayout`.
    """

    def __init__(self, in_nc: int, mid_nc: int, out_nc: int, semantic_nc: int, hidden_nc: int,
                 learned_shortcut: bool, norm: str = "syncbatch"):
        super().__init__()
        if not learned_shortcut and out_nc != in_nc:
            raise ValueError(f"an identity shortcut needs out_nc == in_nc, got {out_nc} and {in_nc}")
        self.learned_shortcut = learned_shortcut
        self.conv_0 = nn.Conv2d(in_nc, mid_nc, 3, padding=1)
        self.conv_1 = nn.Conv2d(mid_nc, out_nc, 3, padding=1)
        if learned_shortcut:
            self.conv_s = nn.Conv2d(in_nc, out_nc, 1, bias=False)
            self.norm_s = MobileSPADE(in_nc, semantic_nc, hidden_nc, norm=norm)
        self.norm_0 = MobileSPADE(in_nc, semantic_nc, hidden_nc, norm=norm)
        self.norm_1 = MobileSPADE(mid_nc, semantic_nc, hidden_nc, norm=norm)

    def forward(self, x: torch.Tensor, seg: torch.Tensor | SemanticLayout) -> torch.Tensor:
        fast = isinstance(seg, SemanticLayout)

        def conv(module: nn.Conv2d, inp: torch.Tensor) -> torch.Tensor:
            return inference_conv(module, inp) if fast else module(inp)

        x_s = conv(self.conv_s, self.norm_s(x, seg)) if self.learned_shortcut else x
        dx = conv(self.conv_0, F.leaky_relu(self.norm_0(x, seg), 0.2))
        dx = conv(self.conv_1, F.leaky_relu(self.norm_1(dx, seg), 0.2))
        return x_s + dx
