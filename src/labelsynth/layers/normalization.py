"""Normalization layers of the SPADE family, with an exact fast path for inference and training.

`SPADE` (Park et al., 2019) normalises activations with a parameter-free norm and modulates them with a per-pixel
scale and shift predicted from the label map:

    out = norm(x) * (1 + gamma(seg)) + beta(seg),   gamma, beta = conv(relu(conv(seg)))

Two implementations give the same numbers (max abs difference ~1e-6 in float32):

* the **plain path** is the paper's computation on the one-hot map: the reference (and `fast_training = False`).
* the **fast path** (inference and training) exploits that the input is one-hot and piecewise constant:
  1. a 3x3 conv over a one-hot map is a sum of 9 embedding lookups (`embedding_bag`), instead of a 151-channel conv;
  2. gamma and beta share one matrix; an eval-mode BatchNorm (fixed statistics) is folded into them, so a layer is one
     `x * scale + shift` pass;
  3. where the label is constant over the 5x5 receptive field of gamma/beta (the interior of regions: most pixels),
     gamma/beta depend on the class alone and come from a per-class table; the 3x3 conv on the hidden features is
     evaluated only at the remaining boundary pixels.
  The per-resolution bookkeeping (label ids, boundary pixels, gather indices) is built once per forward in a
  `SemanticLayout` and shared by every SPADE layer at that resolution.
  Every step is a gather, a matrix product or an element-wise op of the weights, so it is differentiable: with
  gradients on (training) the tables are rebuilt from the weights on every forward and the weights' gradients flow
  back through lookups (scatter-adds) and the boundary pixels' product. The convs that read the one-hot map and the
  gamma/beta convs are three quarters of the SPADE generator's FLOPs; interior pixels need none of them.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .inference_cache import tensor_versions
from .small_ops import single_threaded, small_op_threads

PARAM_FREE_NORMS = ("batch", "syncbatch", "instance", "positional", "none")
PADDING_MODES = ("zeros", "reflect")
# Training takes the fast path at a resolution where at most this fraction of the pixels are boundary pixels (below
# it, 256x256 ADE20K maps at ngf 16: SPADE generator steps 3x faster; above it, tiny models and maps of small
# regions were slower than with the plain convs).
TRAINING_BOUNDARY_FRACTION = 0.5


def param_free_norm(kind: str, num_features: int) -> nn.Module:
    """Normalization without affine parameters (SPADE's `param_free_norm`).

    Args:
        kind: ``"batch"`` or ``"syncbatch"`` (BatchNorm2d without affine; ``syncbatch`` is converted to
            `torch.nn.SyncBatchNorm` by the trainer on multi-GPU, as the original used synchronized BN),
            ``"instance"``, ``"positional"`` (PONO: per pixel over the channels, see `labelsynth.layers.pono`;
            CoCosNet) or ``"none"`` (identity).
        num_features: channels C of the [B, C, H, W] input.
    """
    if kind in ("batch", "syncbatch"):
        return nn.BatchNorm2d(num_features, affine=False)
    if kind == "instance":
        return nn.InstanceNorm2d(num_features, affine=False)
    if kind == "positional":
        from .pono import PositionalNorm2d

        return PositionalNorm2d()
    if kind == "none":  # a SPADE used only for its gamma/beta (SEAN's inner SPADE branch)
        return nn.Identity()
    raise ValueError(f"unknown parameter-free norm {kind!r}; expected one of {PARAM_FREE_NORMS}")


@dataclass
class LayoutLevel:
    """The label map at one feature resolution, prepared for the fast SPADE path.

    Attributes:
        size: (h, w) of this level.
        keys: `LongTensor[B*h*w]`, one key per pixel (channel index, times 2 plus the edge bit when edges are used).
        boundary: `LongTensor[N]` flat indices of the pixels whose gamma/beta receptive field is not label-constant.
        bag_indices: `LongTensor[M, k*k]` embedding-table indices of the M pixels whose hidden features the boundary
            pixels need (the boundary dilated by the kernel); out-of-image taps hit a zero row.
        patch_indices: `LongTensor[N, k*k]` rows of those M hidden vectors (M = an extra zero row for out-of-image
            neighbours) forming each boundary pixel's k x k patch.
    """

    size: tuple[int, int]
    keys: torch.Tensor
    boundary: torch.Tensor
    bag_indices: torch.Tensor
    patch_indices: torch.Tensor


class SemanticLayout:
    """Label map (+ instance edges) cached per feature resolution for the fast SPADE path.

    Args:
        channels (`LongTensor[B, H, W]`): semantic channel index of every pixel.
        edges (`FloatTensor[B, 1, H, W]`, *optional*): binary instance-edge map (the extra last input channel).
        num_label_channels: number of one-hot channels (`label_nc` + don't care).
        kernel_size: SPADE conv kernel size (3 in all released models).
        padding_mode: padding of the SPADE convs, "zeros" (SPADE) or "reflect" (CoCosNet); out-of-image taps read a
            zero row or the reflected pixel.
    """

    def __init__(
        self, channels: torch.Tensor, edges: torch.Tensor | None, num_label_channels: int, kernel_size: int = 3,
        padding_mode: str = "zeros",
    ) -> None:
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {PADDING_MODES}, got {padding_mode!r}")
        self.padding_mode = padding_mode
        keys = channels.long()
        if edges is not None:
            keys = keys * 2 + edges[:, 0].long()
        self.num_keys = num_label_channels * (2 if edges is not None else 1)
        self.has_edges = edges is not None
        self.kernel_size = kernel_size
        self._full_keys = keys
        self._levels: dict[tuple[int, int], LayoutLevel] = {}

    def level(self, size: tuple[int, int]) -> LayoutLevel:
        size = (int(size[0]), int(size[1]))
        if size not in self._levels:
            # ~70 small index operations per level (~2 ms in all on one thread): kept off the thread pool, see
            # `labelsynth.layers.small_ops`; on CUDA the count does not matter.
            with single_threaded() if self._full_keys.device.type == "cpu" else contextlib.nullcontext():
                self._levels[size] = self._build_level(size)
        return self._levels[size]

    def dense(self, size: tuple[int, int], dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The semantic input as a dense one-hot map `[B, num_label_channels (+1 edge), h, w]` at `size`."""
        keys = self.level(size).keys.view(-1, *size)
        labels = keys // 2 if self.has_edges else keys
        num_labels = self.num_keys // 2 if self.has_edges else self.num_keys
        dense = torch.zeros(keys.shape[0], num_labels, *size, dtype=dtype, device=keys.device)
        dense.scatter_(1, labels.unsqueeze(1), 1.0)
        if self.has_edges:
            dense = torch.cat([dense, (keys % 2).unsqueeze(1).to(dtype)], dim=1)
        return dense

    def _build_level(self, size: tuple[int, int]) -> LayoutLevel:
        keys = self._full_keys
        if tuple(keys.shape[-2:]) != size:
            # Nearest resize picks one source pixel for all channels, so resizing the key map is the same as
            # resizing the one-hot map (+ edge channel); keys are small integers, exact in float32.
            keys = F.interpolate(keys[:, None].float(), size=size, mode="nearest")[:, 0].long()
        b, h, w = keys.shape
        k, pad = self.kernel_size, self.kernel_size // 2
        device = keys.device

        # gamma/beta at p see keys within radius 2*pad; constant there (and inside the image) -> a per-key table entry.
        boundary_mask = ~_constant_windows(keys, 2 * pad)
        boundary = boundary_mask.reshape(-1).nonzero().squeeze(1)

        # Hidden features are needed on the boundary dilated by the kernel; number those pixels 0..M-1.
        needed_mask = _dilate(boundary_mask, pad)
        needed = needed_mask.reshape(-1).nonzero().squeeze(1)
        compact = torch.full((b * h * w + 1,), needed.numel(), dtype=torch.long, device=device)
        compact[needed] = torch.arange(needed.numel(), device=device)  # index b*h*w (outside) -> zero row M

        offsets = [(dy - pad, dx - pad) for dy in range(k) for dx in range(k)]

        def neighbours(flat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            """Flat indices of the k x k neighbours of `flat` pixels, and whether each lies inside the image."""
            bi, rem = flat // (h * w), flat % (h * w)
            y = rem[:, None] // w + torch.tensor([o[0] for o in offsets], device=device)
            x = rem[:, None] % w + torch.tensor([o[1] for o in offsets], device=device)
            if self.padding_mode == "reflect":  # -1 -> 1 and h -> h - 2: the taps read reflected pixels
                y = torch.where(y < 0, -y, torch.where(y >= h, 2 * (h - 1) - y, y))
                x = torch.where(x < 0, -x, torch.where(x >= w, 2 * (w - 1) - x, x))
            inside = (y >= 0) & (y < h) & (x >= 0) & (x < w)
            return bi[:, None] * (h * w) + y.clamp(0, h - 1) * w + x.clamp(0, w - 1), inside

        # First conv as an embedding-bag: tap t of pixel p reads key(p + offset_t) from table t (pad key: zero row).
        flat_keys = keys.reshape(-1)
        nbr, inside = neighbours(needed)
        tap_keys = torch.where(inside, flat_keys[nbr], torch.full_like(nbr, self.num_keys))
        bag_indices = tap_keys + torch.arange(k * k, device=device) * (self.num_keys + 1)

        nbr, inside = neighbours(boundary)
        patch_indices = torch.where(inside, compact[nbr], torch.full_like(nbr, needed.numel()))
        return LayoutLevel(size, flat_keys, boundary, bag_indices, patch_indices)


def _constant_windows(keys: torch.Tensor, radius: int) -> torch.Tensor:
    """`BoolTensor[B, H, W]`: whether the (2 radius + 1)^2 window around each pixel of `keys [B, H, W]` lies inside
    the image and holds a single key. Built from comparisons of neighbouring pixels (a window is constant when every
    row of it is, and its centre column is), a few boolean passes instead of max/min pooling."""
    h, w = keys.shape[1:]
    span = 2 * radius + 1
    if radius == 0:
        return torch.ones_like(keys, dtype=torch.bool)
    constant = torch.zeros_like(keys, dtype=torch.bool)
    if h < span or w < span:
        return constant
    rows = keys[:, :, 1:] == keys[:, :, :-1]  # [B, H, W - 1]: pixel equals its right neighbour
    columns = keys[:, 1:] == keys[:, :-1]  # [B, H - 1, W]: pixel equals the one below
    # [B, H, W - span + 1]: the span pixels from column x on agree (likewise downwards for `column_runs`).
    row_runs, column_runs = rows[:, :, :w - span + 1].clone(), columns[:, :h - span + 1].clone()
    for shift in range(1, span - 1):
        row_runs &= rows[:, :, shift:shift + w - span + 1]
        column_runs &= columns[:, shift:shift + h - span + 1]
    window = column_runs[:, :, radius:w - radius].clone()  # the centre column, [B, H - span + 1, W - span + 1]
    for shift in range(span):
        window &= row_runs[:, shift:shift + h - span + 1]
    constant[:, radius:h - radius, radius:w - radius] = window
    return constant


def _dilate(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """`mask [B, H, W]` (bool) dilated by a (2 radius + 1)^2 square: a row pass, then a column pass."""
    out = mask.clone()
    for shift in range(1, radius + 1):
        out[:, :, shift:] |= mask[:, :, :-shift]
        out[:, :, :-shift] |= mask[:, :, shift:]
    rows = out.clone()
    for shift in range(1, radius + 1):
        out[:, shift:] |= rows[:, :-shift]
        out[:, :-shift] |= rows[:, shift:]
    return out


def table_precision(t: torch.Tensor) -> torch.Tensor:
    """`t` in the precision the fast path's tables are built in: float32 (float64 stays float64)."""
    return t if t.dtype == torch.float64 else t.float()


@dataclass
class _FastTables:
    """SPADE weights rearranged for the fast path (see `SPADE._tables`)."""

    version: tuple
    embedding: torch.Tensor  # [k*k*(num_keys+1), hidden] float32, shared bias folded into tap 0
    constant_scale: torch.Tensor  # [num_keys, C] in the activation dtype
    constant_shift: torch.Tensor  # [num_keys, C]
    gamma_beta_weight: torch.Tensor  # [k*k*hidden, 2C] in the activation dtype
    gamma_beta_bias: torch.Tensor  # [2C] float32, 1 added to the gamma half
    norm_scale: torch.Tensor | None  # [C] float32: eval BatchNorm as x * norm_scale + norm_shift, or None
    norm_shift: torch.Tensor | None
    fused: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None  # see `_fused_tables`, made on first use


def _fused_tables(tables: _FastTables) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`(constant [num_keys, 2C], weight [k*k*hidden, 2C], bias [2C])` with the norm folded in: a pixel's
    `(scale | shift)` row is `constant[key]` inside a region and `patches @ weight + bias` at a boundary.

    One table and one matrix product for both halves (instead of separate scale and shift lookups plus a folding
    pass per boundary) keeps the fast path to a few large operations: each costs a parallel region, and on a loaded
    CPU many small regions are what makes the fast path lose (issue 17). The weight is in the activation dtype, the
    bias in float32; kept on `tables` so the SPADE layers' cached tables fold once."""
    if tables.fused is None:
        weight, bias = table_precision(tables.gamma_beta_weight), tables.gamma_beta_bias
        if tables.norm_scale is not None:
            # scale = (1 + gamma) * s and shift = beta + (1 + gamma) * t are linear in the hidden features
            gamma_w, beta_w = weight.chunk(2, dim=1)
            gamma_b, beta_b = bias.chunk(2)
            weight = torch.cat([gamma_w * tables.norm_scale, beta_w + gamma_w * tables.norm_shift], dim=1)
            bias = torch.cat([gamma_b * tables.norm_scale, beta_b + gamma_b * tables.norm_shift])
        constant = torch.cat([tables.constant_scale, tables.constant_shift], dim=1).contiguous()
        tables.fused = (constant, weight.to(tables.gamma_beta_weight.dtype).contiguous(), bias.contiguous())
    return tables.fused


class SPADE(nn.Module):
    """Spatially-adaptive (de)normalization.

    Args:
        norm_nc: channels C of the normalised activation.
        label_nc: channels of the semantic input (`semantic_nc`: one-hot labels, don't care, instance edges).
        kernel_size: kernel of the three convs (`spade...3x3` in the original option string).
        hidden_nc: width of the shared hidden layer (128 in all released models).
        norm: parameter-free norm, see `param_free_norm`.
        padding_mode: padding of the three convs: "zeros" (SPADE) or "reflect" (CoCosNet).

    Shapes: `forward(x [B, C, H, W], segmap [B, label_nc, h, w]) -> [B, C, H, W]`; the segmap is nearest-resized.
    """

    def __init__(self, norm_nc: int, label_nc: int, kernel_size: int = 3, hidden_nc: int = 128, norm: str = "syncbatch",
                 padding_mode: str = "zeros"):
        super().__init__()
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {PADDING_MODES}, got {padding_mode!r}")
        pad = kernel_size // 2
        self.padding_mode = padding_mode
        self.param_free_norm = param_free_norm(norm, norm_nc)
        self.mlp_shared = nn.Sequential(
            nn.Conv2d(label_nc, hidden_nc, kernel_size, padding=pad, padding_mode=padding_mode), nn.ReLU())
        self.mlp_gamma = nn.Conv2d(hidden_nc, norm_nc, kernel_size, padding=pad, padding_mode=padding_mode)
        self.mlp_beta = nn.Conv2d(hidden_nc, norm_nc, kernel_size, padding=pad, padding_mode=padding_mode)
        self._fast_tables: _FastTables | None = None

    def modulation(self, segmap: torch.Tensor, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Plain path: gamma, beta `[B, C, H, W]` from the one-hot semantic map."""
        if tuple(segmap.shape[-2:]) != tuple(size):
            segmap = F.interpolate(segmap, size=size, mode="nearest")
        hidden = self.mlp_shared(segmap)
        return self.mlp_gamma(hidden), self.mlp_beta(hidden)

    def forward(self, x: torch.Tensor, segmap: torch.Tensor | SemanticLayout) -> torch.Tensor:
        size = tuple(x.shape[-2:])
        if isinstance(segmap, SemanticLayout) and self.training:
            level = segmap.level(size)
            if level.boundary.numel() > TRAINING_BOUNDARY_FRACTION * level.keys.numel():
                # In training, where most pixels are boundary pixels (low resolutions, small regions) gathering their
                # patches and scattering their gradients back costs more than the plain convs.
                segmap = segmap.dense(size, x.dtype)
        if isinstance(segmap, SemanticLayout):
            scale, shift, norm_folded = self.fast_modulation(segmap, size, x.dtype)
            with small_op_threads(2 * x.numel(), x.device):
                return torch.addcmul(shift, x if norm_folded else self.param_free_norm(x), scale)
        gamma, beta = self.modulation(segmap, size)
        return self.param_free_norm(x) * (1 + gamma) + beta

    # ----------------------------------------------------------------------------------------------- fast path
    def _folds_norm(self) -> bool:
        """Eval-mode BatchNorm is a fixed per-channel affine map, so it folds into the modulation."""
        norm = self.param_free_norm
        return isinstance(norm, nn.BatchNorm2d) and not norm.training and norm.track_running_stats

    def fast_modulation(self, layout: SemanticLayout, size: tuple[int, int], dtype: torch.dtype = torch.float32
                        ) -> tuple[torch.Tensor, torch.Tensor, bool]:
        """Fast path: per-pixel `scale, shift`, each `[B, C, H, W]`: the two halves of one pixel-major
        `[B, H, W, 2C]` buffer (channels-last order, so element-wise ops keep channels-last outputs). Differentiable
        with respect to the weights when gradients are on.

        When the parameter-free norm is an eval-mode BatchNorm it is folded in (`norm_folded=True`) and
        `x * scale + shift` is the layer output; otherwise `norm(x) * scale + shift` is, with `scale = 1 + gamma` and
        `shift = beta` as in `modulation`. Tables are built in float32; `dtype` is the activations' dtype.
        """
        if layout.padding_mode != self.padding_mode:
            raise ValueError(f"the SemanticLayout pads with {layout.padding_mode!r} but this SPADE layer with "
                             f"{self.padding_mode!r}")
        level = layout.level(size)
        tables = self._tables(layout, dtype)
        h, w = size
        b = level.keys.numel() // (h * w)

        constant, weight, bias = _fused_tables(tables)
        # Gathers and element-wise passes with little work run on one thread (`labelsynth.layers.small_ops`); the
        # matrix product always has work for every thread.
        device, hidden_nc = level.keys.device, tables.embedding.shape[1]
        with small_op_threads(level.keys.numel() * constant.shape[1], device):
            modulation = F.embedding(level.keys, constant)  # [B*h*w, 2C]: (scale | shift) of every pixel
        if level.boundary.numel():
            with small_op_threads(level.bag_indices.shape[0] * hidden_nc, device):
                hidden = torch.relu_(F.embedding_bag(level.bag_indices, tables.embedding, mode="sum"))  # [M, hidden]
                hidden = F.pad(hidden, (0, 0, 0, 1))  # row M: zeros, for out-of-image neighbours
            with small_op_threads(level.patch_indices.numel() * hidden_nc, device):
                patches = hidden[level.patch_indices].flatten(1).to(dtype)  # [N, k*k*hidden]
            # The bias is added after the product (in float32, as the tables are built), not fused in by addmm:
            # addmm's results varied with the batch's boundary-pixel count, which made an image depend on its
            # batch (tests/metrics: evaluation independent of the batch size).
            gamma_beta = (table_precision(torch.mm(patches, weight)) + bias).to(dtype)
            with small_op_threads(gamma_beta.numel(), device):
                modulation[level.boundary] = gamma_beta
        # [B*h*w, 2C] rows are pixels: as [B, C, h, w] each half is a channels-last view, no copy needed.
        scale, shift = modulation.view(b, h, w, -1).permute(0, 3, 1, 2).chunk(2, dim=1)
        return scale, shift, tables.norm_scale is not None

    def _key_rows(self, per_tap: torch.Tensor, layout: SemanticLayout) -> torch.Tensor:
        """`[k*k, num_keys, hidden]`: the hidden contribution of a pixel with each key of `layout` seen through each
        tap, from the shared conv's weight as `per_tap [k*k, in_nc, hidden]` (differentiable)."""
        taps, in_nc, hidden_nc = per_tap.shape
        num_labels = in_nc - 1 if layout.has_edges else in_nc
        rows = per_tap[:, :num_labels]
        if layout.has_edges:  # key 2l + e: label l's column, plus the edge channel's when e = 1
            rows = torch.stack([rows, rows + per_tap[:, num_labels:]], dim=2).reshape(taps, 2 * num_labels, hidden_nc)
        if rows.shape[1] != layout.num_keys:
            raise ValueError(
                f"SPADE layer expects {in_nc} semantic channels but the label layout has {layout.num_keys} keys"
            )
        return rows

    def _params(self) -> tuple[tuple[torch.Tensor, ...], bool]:
        """The six weights the tables derive from, and whether the tables must carry their gradients (then they are
        built on every forward, not cached)."""
        params = (self.mlp_shared[0].weight, self.mlp_shared[0].bias, self.mlp_gamma.weight, self.mlp_gamma.bias,
                  self.mlp_beta.weight, self.mlp_beta.bias)
        return params, torch.is_grad_enabled() and any(p.requires_grad for p in params)

    def _tables(self, layout: SemanticLayout, dtype: torch.dtype) -> _FastTables:
        """Weights rearranged for the fast path; rebuilt only when a weight or statistic changes (tensor versions),
        or on every call when they must carry gradients."""
        params, differentiable = self._params()
        fold = self._folds_norm()
        tracked = params + ((self.param_free_norm.running_mean, self.param_free_norm.running_var) if fold else ())
        version = (*tensor_versions(*tracked), layout.has_edges, dtype, fold)
        if not differentiable and self._fast_tables is not None and self._fast_tables.version == version:
            return self._fast_tables
        shared_w, shared_b, gamma_w, gamma_b, beta_w, beta_b = (
            table_precision(p if differentiable else p.detach()) for p in params)
        hidden_nc, in_nc, k, _ = shared_w.shape
        label_rows = self._key_rows(shared_w.permute(2, 3, 1, 0).reshape(k * k, in_nc, hidden_nc), layout)
        zero_row = label_rows.new_zeros(k * k, 1, hidden_nc)
        embedding = torch.cat([label_rows, zero_row], dim=1)
        # Every bag holds exactly one tap-0 entry, so adding the bias to all tap-0 rows adds it once per pixel.
        embedding[0] += shared_b
        embedding = embedding.reshape(-1, hidden_nc)

        gb_w = torch.cat([gamma_w, beta_w], dim=0)  # [2C, hidden, k, k]: one matmul for gamma and beta
        gb_b = torch.cat([gamma_b + 1, beta_b], dim=0)  # the +1 of (1 + gamma) folded into the bias
        constant_hidden = torch.relu(label_rows.sum(0) + shared_b)  # [num_keys, hidden]
        constant_scale, constant_shift = torch.addmm(gb_b, constant_hidden, gb_w.sum(dim=(2, 3)).t()).chunk(2, dim=1)
        norm_scale = norm_shift = None
        if fold:
            norm = self.param_free_norm
            norm_scale = torch.rsqrt(table_precision(norm.running_var) + norm.eps)
            norm_shift = -table_precision(norm.running_mean) * norm_scale
            constant_scale, constant_shift = (constant_scale * norm_scale,
                                              torch.addcmul(constant_shift, constant_scale, norm_shift))
        gb_matrix = gb_w.permute(2, 3, 1, 0).reshape(k * k * hidden_nc, -1)
        tables = _FastTables(version, embedding, constant_scale.to(dtype).contiguous(),
                             constant_shift.to(dtype).contiguous(), gb_matrix.to(dtype).contiguous(), gb_b,
                             norm_scale, norm_shift)
        if not differentiable:
            self._fast_tables = tables
        return tables
