"""Mobile SPADE layers of GAN Compression (Li et al., CVPR 2020): separable convs in SPADE, narrow residual blocks.

`MobileSPADE` is SPADE whose gamma and beta convs are depthwise-separable (depthwise 3x3 -> InstanceNorm -> 1x1):

    out = norm(x) * (1 + gamma) + beta,   gamma = pw_g(inorm(dw_g(h))),  beta = pw_b(inorm(dw_b(h))),
    h = relu(conv3x3(seg))

Fast inference path (exact up to float32 rounding), built on `SemanticLayout` like `SPADE`'s:
  1. h at the pixels that need it is a sum of 9 embedding lookups of the one-hot map;
  2. where the labels are constant over the 5x5 receptive field of gamma/beta (the layout's interior), the depthwise
     output is a per-class vector; elsewhere it depends only on the 5x5 key window, so boundary pixels are grouped
     by window ("patterns") and each group is computed once; the InstanceNorm statistics (per image and channel,
     over all pixels) are sums over class and pattern counts, in float64;
  3. InstanceNorm, the 1x1 convs, the +1 and an eval-mode BatchNorm fold into one per-image table of `scale, shift`
     rows, per class and per pattern;
  4. the table is applied per chunk of pixels (gather, multiply-add), fused with the block's LeakyReLU, x2 nearest
     upsampling and shortcut 1x1 conv; the blocks keep their largest intermediates' buffers between calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
            return self.fast_forward(x, segmap)
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
        BatchNorm, its affine map `(a, c)` (`norm_affine`), which `_project` folds into the table rows so that the
        layer output is `x * scale + shift`."""
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
            # Last row: zeros, for one bag that gives the zero hidden vector that out-of-image depthwise taps read.
            embedding = torch.cat([embedding.reshape(-1, hidden_nc), embedding.new_zeros(1, hidden_nc)])
            dw_w = torch.stack([m.depthwise.weight.detach().float().reshape(hidden_nc, k * k).t()
                                for m in (self.mlp_gamma, self.mlp_beta)])  # [gamma | beta, tap, hidden]
            dw_b = torch.cat([m.depthwise.bias.detach().float() for m in (self.mlp_gamma, self.mlp_beta)])
            # Interior pixels: hidden and the depthwise output depend on the key alone.
            constant_dw = torch.relu(rows.sum(0) + bias).repeat(1, 2) * dw_w.sum(1).reshape(-1) + dw_b
            # The two 1x1 convs as [hidden, C] matrices (applied separately: one [2 hidden, 2C] block-diagonal matrix
            # would spend half its multiply-adds on zeros); +1 of (1 + gamma) in the bias.
            pw_gamma, pw_beta = (m.pointwise.weight.detach().float()[:, :, 0, 0].t().contiguous()
                                 for m in (self.mlp_gamma, self.mlp_beta))
            pw_bias = torch.cat([self.mlp_gamma.pointwise.bias.detach().float() + 1,
                                 self.mlp_beta.pointwise.bias.detach().float()])
            norm_affine = None
            if fold:  # eval BatchNorm as x * a + c: the layer output is x * (s * a) + (t + s * c)
                norm = self.param_free_norm
                a = torch.rsqrt(norm.running_var.float() + norm.eps)
                norm_affine = (a, -norm.running_mean.float() * a)
            return {"embedding": embedding, "dw_w": dw_w, "dw_b": dw_b, "constant_dw": constant_dw,
                    "pw_gamma": pw_gamma, "pw_beta": pw_beta, "pw_bias": pw_bias, "norm_affine": norm_affine}

        return cached_derivation(self, "_fast_tables", key, build)

    @torch.no_grad()
    def modulation_table(self, layout: SemanticLayout, size: tuple[int, int]) -> tuple[torch.Tensor, bool]:
        """Fast path (inference only): the layer's `scale | shift` rows `[B * num_keys + U, 2C]` (float32) that
        `_LevelRows.rows` indexes per pixel: one row per image and key for the interior pixels, then one per boundary
        pattern (boundary pixels with the same key window). The layer output is `x * scale + shift` when the
        BatchNorm is folded (`True` returned), else `norm(x) * scale + shift`."""
        if layout.padding_mode != "zeros":
            raise ValueError(f"MobileSPADE pads with zeros but the SemanticLayout pads with {layout.padding_mode!r}")
        level = layout.level(size)
        rows = _level_rows(level, layout, size)
        tables = self._tables(layout)
        batch, pixels, num_keys = rows.batch, size[0] * size[1], layout.num_keys
        constant = tables["constant_dw"]
        hidden_nc = constant.shape[1] // 2

        # Depthwise output of each boundary pattern [U, gamma | beta]: the hidden vectors it reads (the zero vector
        # for out-of-image taps), then the k x k tap sum tap by tap, in row chunks whose temporaries stay small.
        boundary_dw = constant.new_empty(rows.pattern_counts.numel(), 2 * hidden_nc)
        if boundary_dw.shape[0]:
            hidden = torch.relu_(F.embedding_bag(rows.bags, tables["embedding"], mode="sum"))
            dw_w, step = tables["dw_w"], _chunk_rows(hidden_nc)
            for start in range(0, boundary_dw.shape[0], step):
                chunk = boundary_dw[start:start + step]
                chunk.copy_(tables["dw_b"].expand_as(chunk))
                dw_gamma, dw_beta = chunk[:, :hidden_nc], chunk[:, hidden_nc:]
                tap_hidden = hidden.new_empty(chunk.shape[0], hidden_nc)
                for tap in range(rows.taps.shape[0]):
                    torch.index_select(hidden, 0, rows.taps[tap, start:start + step], out=tap_hidden)
                    dw_gamma.addcmul_(tap_hidden, dw_w[0, tap])
                    dw_beta.addcmul_(tap_hidden, dw_w[1, tap])

        # InstanceNorm statistics per image over all pixels: interior pixels through their key counts, boundary
        # patterns through theirs, in float64 (float32 column sums over ~10^5 pixels cost digits). Squares are taken
        # around a reference near the mean (the interior mean), so that E[(d - ref)^2] - (E[d] - ref)^2 does not
        # cancel.
        counts = rows.counts
        interior = counts.sum(1, keepdim=True)
        constant64 = constant.double()
        reference = (counts @ constant64) / interior.clamp_min(1)  # [B, 2 hidden]
        centred = constant64[None] - reference[:, None]  # [B, num_keys, 2 hidden]
        total = (counts[:, :, None] * centred).sum(1)
        total_sq = (counts[:, :, None] * centred.square()).sum(1)
        step = _chunk_rows(4 * hidden_nc)  # float64 copies
        for image, (lo, hi) in enumerate(rows.runs):  # patterns weighted by their pixel counts
            for start in range(lo, hi, step):
                stop = min(start + step, hi)
                run_centred = boundary_dw[start:stop].double().sub_(reference[image])
                weights = rows.pattern_counts[start:stop]
                total[image] += weights @ run_centred
                total_sq[image] += weights @ run_centred.square_()
        offset = total / pixels  # E[d] - reference
        inv_std = torch.rsqrt((total_sq / pixels - offset.square()).clamp_min(0) + self.mlp_gamma.norm.eps).float()
        mean = (reference + offset).float()

        # InstanceNorm, then the 1x1 convs (BatchNorm folded in), written straight into the table. Centring
        # before scaling keeps float32 exact where a channel's variance is small (folding 1/std into the matrix
        # would cancel large terms).
        table = constant.new_empty(batch * num_keys + boundary_dw.shape[0], 2 * tables["pw_gamma"].shape[1])
        for image, (lo, hi) in enumerate(rows.runs):
            _project((constant - mean[image]) * inv_std[image], tables, table[image * num_keys:(image + 1) * num_keys])
            boundary_dw[lo:hi].sub_(mean[image]).mul_(inv_std[image])
        _project(boundary_dw, tables, table[batch * num_keys:])
        return table, tables["norm_affine"] is not None

    @torch.no_grad()
    def fast_forward(self, x: torch.Tensor, layout: SemanticLayout, *, upsample: bool = False,
                     negative_slope: float | None = None, pointwise: nn.Conv2d | None = None,
                     out: torch.Tensor | None = None) -> torch.Tensor:
        """Fast path of `forward` (inference only), with three optional fusions: `upsample` (x is at half the size:
        x2 nearest upsampling first, never materialised), `negative_slope` (a LeakyReLU after the layer) and
        `pointwise` (a 1x1 conv after that, e.g. a block's shortcut conv).

        The per-pixel `scale, shift` rows are gathered from `modulation_table` and applied to chunks of pixels whose
        temporaries stay in cache (large fresh tensors cost page faults on every call).

        Shapes: `x [B, C, h, w]` -> `[B, C', H, W]` channels-last, `(H, W) = (2h, 2w)` with `upsample` else
        `(h, w)`, `C'` the pointwise conv's output channels or C; `out` (optional, channels-last `[B, C', H, W]`,
        may be `x` when neither upsampling nor a pointwise conv change the shape) receives the result.
        """
        size = (2 * x.shape[-2], 2 * x.shape[-1]) if upsample else tuple(x.shape[-2:])
        table, folded = self.modulation_table(layout, size)
        if not folded:
            x = self.param_free_norm(F.interpolate(x, scale_factor=2, mode="nearest") if upsample else x)
            upsample = False
        x = x.contiguous(memory_format=torch.channels_last)
        batch, channels = x.shape[:2]
        out_channels = channels
        if pointwise is not None:
            if pointwise.kernel_size != (1, 1) or pointwise.groups != 1 or pointwise.in_channels != channels:
                raise ValueError(f"pointwise must be a 1x1 conv from {channels} channels without groups")
            out_channels = pointwise.out_channels
            weight = pointwise.weight.detach().to(x.dtype)[:, :, 0, 0].t()  # [C, C']
            bias = pointwise.bias.detach().to(x.dtype) if pointwise.bias is not None else None
        shape = (batch, out_channels, *size)
        if out is None:
            out = torch.empty(shape, dtype=x.dtype, device=x.device, memory_format=torch.channels_last)
        elif tuple(out.shape) != shape or not out.is_contiguous(memory_format=torch.channels_last):
            raise ValueError(f"out must be a channels-last tensor of shape {shape}")
        table = table.to(x.dtype)
        level_rows = _level_rows(layout.level(size), layout, size)
        source = x.permute(0, 2, 3, 1).reshape(-1, channels)  # pixel rows (a view: x is channels-last)
        target = out.permute(0, 2, 3, 1).view(-1, out_channels)
        step = _chunk_rows(4 * channels + out_channels)
        for start in range(0, target.shape[0], step):
            stop = start + step
            scale_shift = F.embedding(level_rows.rows[start:stop], table)
            inputs = (F.embedding(level_rows.upsampled_source(x.shape[-2:])[start:stop], source) if upsample
                      else source[start:stop])
            chunk = torch.addcmul(scale_shift[:, channels:], inputs, scale_shift[:, :channels],
                                  out=None if pointwise is not None else target[start:stop])
            if negative_slope is not None:
                F.leaky_relu_(chunk, negative_slope)
            if pointwise is not None:
                if bias is None:
                    torch.mm(chunk, weight, out=target[start:stop])
                else:
                    torch.addmm(bias, chunk, weight, out=target[start:stop])
        return out


def _project(normed: torch.Tensor, tables: dict[str, Any], out: torch.Tensor) -> None:
    """Table rows `out [N, 2C]` = `scale | shift` of the normalised depthwise outputs `normed [N, gamma | beta
    hidden]`: `1 + gamma | beta` by the two 1x1 convs, then, with an eval BatchNorm `x * a + c` before the
    modulation, `scale = (1 + gamma) * a` and `shift = beta + (1 + gamma) * c`."""
    hidden_nc, channels = tables["pw_gamma"].shape
    scale, shift = out[:, :channels], out[:, channels:]
    torch.addmm(tables["pw_bias"][:channels], normed[:, :hidden_nc], tables["pw_gamma"], out=scale)
    torch.addmm(tables["pw_bias"][channels:], normed[:, hidden_nc:], tables["pw_beta"], out=shift)
    if tables["norm_affine"] is not None:
        a, c = tables["norm_affine"]
        shift.addcmul_(scale, c)
        scale.mul_(a)


_CHUNK_ELEMENTS = 1 << 19  # 2 MiB of float32: chunk temporaries are reused by the allocator and stay in cache


def _chunk_rows(width: int) -> int:
    """Rows per chunk for temporaries `width` floats wide."""
    return max(1, _CHUNK_ELEMENTS // width)


@dataclass
class _LevelRows:
    """Per-resolution bookkeeping of the MobileSPADE fast path (label-dependent only, shared by every layer at that
    resolution; kept on the `LayoutLevel`).

    A boundary pixel's depthwise output depends only on the keys in its (2k-1) x (2k-1) window (its hidden inputs'
    receptive field; out-of-image positions read as an extra key), so boundary pixels with the same window share
    it: the layers compute it once per distinct window (a "pattern"; about a quarter of the boundary pixels at
    256x512 on Cityscapes, where straight edges repeat the same window).

    Attributes:
        batch: images B.
        size: (h, w) of the level.
        counts: `[B, num_keys]` float64, interior pixels per image and key.
        pattern_counts: `[U]` float64, boundary pixels per pattern (each pattern belongs to one image).
        runs: per image, the `[start, stop)` range of its patterns.
        rows: `LongTensor[B*h*w]` table row of each pixel: `image * num_keys + key` inside regions,
            `B * num_keys + u` for a boundary pixel of pattern u.
        bags: `LongTensor[M', k*k]` embedding bags of the hidden vectors the patterns read (the zero bag included).
        taps: `LongTensor[k*k, U]` per tap, the bag each pattern reads (contiguous per tap).
    """

    batch: int
    size: tuple[int, int]
    counts: torch.Tensor
    pattern_counts: torch.Tensor
    runs: list[tuple[int, int]]
    rows: torch.Tensor
    bags: torch.Tensor
    taps: torch.Tensor
    _sources: dict[tuple[int, int], torch.Tensor] = field(default_factory=dict)

    def upsampled_source(self, low_size: tuple[int, int]) -> torch.Tensor:
        """`LongTensor[B*h*w]`: the pixel row of a `low_size` map that x2 nearest upsampling copies to each pixel."""
        low_size = (int(low_size[0]), int(low_size[1]))
        if low_size not in self._sources:
            (h, w), (low_h, low_w) = self.size, low_size
            device = self.rows.device
            y = torch.arange(h, device=device) // 2 * low_w
            x = torch.arange(w, device=device) // 2
            image = torch.arange(self.batch, device=device) * (low_h * low_w)
            self._sources[low_size] = (image[:, None, None] + y[None, :, None] + x[None, None, :]).reshape(-1)
        return self._sources[low_size]


_HASH_BASE = 1_000_003


def _wrap_int64(value: int) -> int:
    """`value` modulo 2**64 as a signed 64-bit integer (what int64 tensor arithmetic wraps to)."""
    value %= 1 << 64
    return value - (1 << 64) if value >= 1 << 63 else value


def _boundary_patterns(level: LayoutLevel, layout: SemanticLayout, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Group the boundary pixels by image and (2k-1) x (2k-1) key window: `(inverse [N], representative [U])`,
    patterns sorted by image. Grouped by a hash of the window, then checked exactly; a hash collision (not seen in
    practice) makes every boundary pixel its own pattern."""
    (h, w), radius = level.size, 2 * (layout.kernel_size // 2)
    span = 2 * radius + 1
    boundary, device = level.boundary, level.keys.device
    keys = F.pad(level.keys.view(batch, h, w), (radius,) * 4, value=layout.num_keys)  # out of image: extra key
    padded_w = w + 2 * radius
    image, pixel = boundary // (h * w), boundary % (h * w)
    corner = image * keys[0].numel() + pixel // w * padded_w + pixel % w  # window's top-left in the padded map
    offsets = torch.tensor([dy * padded_w + dx for dy in range(span) for dx in range(span)], device=device)
    window = keys.view(-1)[corner[:, None] + offsets]  # [N, span * span] keys
    # A polynomial hash in wrapping int64 arithmetic, verified below; the image index is part of the key.
    powers = torch.tensor([_wrap_int64(_HASH_BASE ** i) for i in range(span * span, 0, -1)], device=device)
    digest = (window * powers).sum(1) + image
    unique, inverse = torch.unique(digest, return_inverse=True)
    representative = torch.empty_like(unique)
    representative[inverse] = torch.arange(boundary.numel(), device=device)  # any member of each group
    if not torch.equal(window[representative[inverse]], window) or not torch.equal(image[representative[inverse]],
                                                                                   image):
        inverse = torch.arange(boundary.numel(), device=device)
        return inverse, inverse
    # Sort the patterns by image so that each image's patterns form one run.
    by_image = torch.argsort(image[representative], stable=True)
    rank = torch.empty_like(by_image)
    rank[by_image] = torch.arange(by_image.numel(), device=device)
    return rank[inverse], representative[by_image]


def _level_rows(level: LayoutLevel, layout: SemanticLayout, size: tuple[int, int]) -> _LevelRows:
    """The `_LevelRows` of `level`, computed on first use."""
    cached = level.__dict__.get("_mobile_spade_rows")
    if cached is None:
        pixels, num_keys = size[0] * size[1], layout.num_keys
        batch = level.keys.numel() // pixels
        device = level.keys.device
        rows = level.keys + torch.arange(batch, device=device).repeat_interleave(pixels) * num_keys
        interior = torch.ones_like(rows, dtype=torch.bool)
        interior[level.boundary] = False
        counts = torch.bincount(rows[interior], minlength=batch * num_keys).view(batch, num_keys).double()
        inverse, representative = _boundary_patterns(level, layout, batch)
        rows[level.boundary] = batch * num_keys + inverse
        pattern_counts = torch.bincount(inverse, minlength=representative.numel()).double()
        ends = torch.bincount(level.boundary[representative] // pixels, minlength=batch).cumsum(0).tolist()
        # The hidden vectors the patterns read: level bags (the level's last hidden row, M, is the zero vector: a bag
        # of the embedding's last row, zero, after k*k tables of num_keys + 1 rows), numbered compactly.
        taps = layout.kernel_size ** 2
        zero_bag = torch.full((1, taps), taps * (num_keys + 1), dtype=torch.long, device=device)
        bags = torch.cat([level.bag_indices.view(-1, taps), zero_bag])
        used, compact = torch.unique(level.patch_indices[representative], return_inverse=True)
        cached = _LevelRows(batch, size, counts, pattern_counts, list(zip([0, *ends[:-1]], ends)), rows, bags[used],
                            compact.view(-1, taps).t().contiguous())
        level.__dict__["_mobile_spade_rows"] = cached
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

    def forward(self, x: torch.Tensor, seg: torch.Tensor | SemanticLayout, upsample: bool = False) -> torch.Tensor:
        """`upsample`: x is at half the size and is upsampled x2 (nearest) first; on the fast path a conv shortcut
        block reads the half-size x directly (the upsampled map is never materialised)."""
        if not isinstance(seg, SemanticLayout):
            if upsample:
                x = F.interpolate(x, scale_factor=2, mode="nearest")
            x_s = self.conv_s(self.norm_s(x, seg)) if self.learned_shortcut else x
            dx = self.conv_0(F.leaky_relu(self.norm_0(x, seg), 0.2))
            dx = self.conv_1(F.leaky_relu(self.norm_1(dx, seg), 0.2))
            return x_s + dx
        if upsample and not self.learned_shortcut:  # the identity shortcut needs the upsampled map itself
            x, upsample = F.interpolate(x, scale_factor=2, mode="nearest"), False
        size = (2 * x.shape[-2], 2 * x.shape[-1]) if upsample else tuple(x.shape[-2:])
        buffers = {"norm_0": self._take_buffer("norm_0", (x.shape[0], x.shape[1], *size), x)}
        x_s = x
        if self.learned_shortcut:
            buffers["shortcut"] = self._take_buffer("shortcut", (x.shape[0], self.conv_s.out_channels, *size), x)
            x_s = self.norm_s.fast_forward(x, seg, upsample=upsample, pointwise=self.conv_s, out=buffers["shortcut"])
        dx = inference_conv(self.conv_0, self.norm_0.fast_forward(x, seg, upsample=upsample, negative_slope=0.2,
                                                                  out=buffers["norm_0"]))
        # dx is this block's own intermediate: modulated in place
        in_place = dx if dx.is_contiguous(memory_format=torch.channels_last) else None
        dx = inference_conv(self.conv_1, self.norm_1.fast_forward(dx, seg, negative_slope=0.2, out=in_place))
        dx.add_(x_s)
        self.__dict__["_fast_buffers"].update(buffers)  # kept for the next call
        return dx

    def _take_buffer(self, name: str, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        """A channels-last buffer for an intermediate that dies inside this block, kept between fast-path calls: the
        largest activations are tens of MB, and fresh memory of that size costs page faults on every call. Taken out
        of the store while in use (`dict.pop` is atomic), so that a concurrent call gets a fresh one instead of
        sharing it; `forward` puts it back at the end."""
        buffer = self.__dict__.setdefault("_fast_buffers", {}).pop(name, None)
        if buffer is None or tuple(buffer.shape) != shape or buffer.dtype != like.dtype or buffer.device != like.device:
            buffer = torch.empty(shape, dtype=like.dtype, device=like.device, memory_format=torch.channels_last)
        return buffer
