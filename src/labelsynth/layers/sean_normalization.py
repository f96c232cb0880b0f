"""SEAN normalization (Zhu et al., "SEAN: Image Synthesis with Semantic Region-Adaptive Normalization", CVPR 2020).

SEAN (called ACE in the original code) modulates a normalised activation with a blend of two per-pixel scale/shift
pairs: one from a *style map* that places each region's style code (a 512-d vector per class, from the style
encoder) over that class's pixels, one from the label map alone, as in SPADE:

    x'    = x + noise * noise_var                                     (noise: N(0, 1) map [B, 1, H, W], noise_var [C])
    style = relu(W_j s_j + b_j) at every pixel of class j             (a separate linear map per class)
    gamma = a_g * conv_gamma(style) + (1 - a_g) * gamma_spade(seg),   a_g = sigmoid(blending_gamma)
    beta  = a_b * conv_beta(style)  + (1 - a_b) * beta_spade(seg),    a_b = sigmoid(blending_beta)
    out   = norm(x') * (1 + gamma) + beta

The per-class linear maps run as one batched matrix product over all classes (no loop over batch x classes).

Two implementations give the same numbers (float32 round-off):

* the **plain path** builds the 512-channel style map and convolves it: the paper's computation, used for training.
* the **fast path** (inference) uses that everything a layer adds to its input is a function of the label map around
  the pixel: gamma and beta at a pixel depend only on the classes in its 5x5 neighbourhood (two 3x3 convolutions
  deep; one for the style branch) and on the image's style codes. A face map at 256x256 has ~65k pixels but only
  ~3k distinct 5x5 neighbourhoods ("patterns", most pixels lie inside a region) built from <1k distinct 3x3 windows.
  So every layer computes gamma/beta once per pattern:
  1. SPADE branch: the hidden features (ReLU of the 3x3 conv over the one-hot map, an embedding-bag sum) once per
     distinct 3x3 window, their products with the 9 taps of the gamma/beta conv (one matrix product), then per
     pattern the sum of the 9 neighbouring windows' tap products;
  2. style branch: the 3x3 conv of the piecewise-constant style map is, per pattern, a sum of 9 (tap, class) rows
     `W_tap @ relu(W_j s_j + b_j)` (one batched matrix product per layer instead of a 512-channel conv);
  3. the two are blended, eval-mode BatchNorm (fixed statistics) is folded in, and one table lookup per pixel gives
     the layer's scale and shift: the layer output is `(x + noise) * scale + shift`.
  The patterns of each resolution are found once per forward (`SEANLayout`) and shared by every layer there.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .normalization import SPADE, SemanticLayout, param_free_norm
from .onehot import _shifted_keys


def sample_noise_map(batch_size: int, size: tuple[int, int], generator: torch.Generator | None = None,
                     device: torch.device | str | None = None) -> torch.Tensor:
    """One SEAN noise map: `N(0, 1)` values `FloatTensor[batch_size, 1, H, W]` (float32, contiguous).

    The values are drawn as the original code draws them (`randn(B, W, H)`, then transposed to H x W), so a model
    that draws its layers' maps in call order from `torch.Generator().manual_seed(s)` on the CPU sees the same noise
    as the original code after `torch.manual_seed(s)`.

    Args:
        batch_size: B.
        size: (H, W) of the layer's activation.
        generator: the random source; None uses torch's global generator.
        device: where to draw; default the generator's device (the CPU without a generator).
    """
    if device is None:
        device = generator.device if generator is not None else "cpu"
    noise = torch.randn(batch_size, size[1], size[0], generator=generator, device=device)
    return noise.transpose(1, 2).unsqueeze(1).contiguous()


def _rank(codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Dense ranks of `codes` (`LongTensor[N]`): ids 0..U-1 of the distinct values, and one index where each occurs."""
    ordered, order = torch.sort(codes, stable=True)  # stable: measured faster than the default sort on the CPU
    first = torch.ones_like(ordered, dtype=torch.bool)
    torch.ne(ordered[1:], ordered[:-1], out=first[1:])
    ids = torch.empty_like(codes)
    ids[order] = torch.cumsum(first, 0) - 1
    return ids, order[first]


def distinct_rows(columns: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Number the distinct rows of a table of non-negative integers, given by its columns (`LongTensor[m, N]`).

    Returns:
        `ids` (`LongTensor[N]`): 0..U-1, equal for equal rows; `representatives` (`LongTensor[U]`): a row index of
        every id. The columns are read as the digits of one int64 code per row (renumbered densely whenever the next
        digit would overflow), so the cost is a few sorts of N numbers (`torch.unique(dim=0)` is much slower).
    """
    codes, bound = None, 1  # codes < bound
    for column, base in zip(columns, (columns.amax(dim=1) + 1).tolist()):
        if bound * base >= 2**62:
            codes, representatives = _rank(codes)
            bound = representatives.numel()
        codes = column if codes is None else codes * base + column
        bound *= base
    return _rank(codes)


def _number_rows(columns: torch.Tensor, interior: torch.Tensor, interior_ids: torch.Tensor, num_interior: int
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Ids of the rows of `columns` (`LongTensor[m, N]`): `interior_ids` (< `num_interior`) where `interior`, else
    `num_interior` + the number of the row among the distinct other rows. Also returns a row index of each of those
    other ids. Only the (few) non-interior rows are sorted."""
    ids = interior_ids.clone()
    others = (~interior).nonzero().squeeze(1)
    if not others.numel():
        return ids, others
    other_ids, representatives = distinct_rows(columns[:, others])
    ids[others] = other_ids + num_interior
    return ids, others[representatives]


@dataclass
class PatternLevel:
    """The label map at one feature resolution, as the fast SEAN path needs it.

    A *window* is the k x k block of classes around a pixel (what SPADE's hidden conv sees), a *pattern* the image
    index plus the windows of the pixel's k x k neighbours (what gamma/beta see). Both are numbered: ids below J
    (windows) or B*J (patterns) are the constant ones inside a region of class j (image b), `b*J + j`; the ids after
    them number the distinct others, near region boundaries.

    Attributes:
        pixel_patterns: `LongTensor[B*h*w]` pattern id of every pixel.
        hidden_taps: `LongTensor[U3, k*k]` rows `tap * (J + 1) + class` of SPADE's first-conv table for every
            window (class J: outside the image).
        spade_taps: `LongTensor[U5, k*k]` rows `tap * (U3 + 1) + window id` for every pattern (window U3: a neighbour
            outside the image, whose hidden features are zero padding).
        style_taps: `LongTensor[U5, k*k]` rows `tap * (B*J + 1) + b*J + class` of the style tables for every pattern
            (row B*J of a tap: outside the image).
    """

    pixel_patterns: torch.Tensor
    hidden_taps: torch.Tensor
    spade_taps: torch.Tensor
    style_taps: torch.Tensor


class SEANLayout(SemanticLayout):
    """`SemanticLayout` plus the per-resolution patterns of SEAN's fast path (see the module docstring).

    Args:
        channels (`LongTensor[B, H, W]`): semantic channel index (= style class) of every pixel.
        num_label_channels: number of classes J.
        kernel_size: kernel of the SPADE and style convolutions.
    """

    def __init__(self, channels: torch.Tensor, num_label_channels: int, kernel_size: int = 3) -> None:
        super().__init__(channels, None, num_label_channels, kernel_size)
        self._patterns: dict[tuple[int, int], PatternLevel] = {}
        self._scratch: dict[tuple[str, torch.dtype], torch.Tensor] = {}

    def scratch(self, name: str, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        """A temporary tensor of `shape`, the same memory at every call with this `name` (its previous contents are
        overwritten). Large fresh allocations are slow: the operating system maps and zeroes their pages."""
        numel = math.prod(shape)
        buffer = self._scratch.get((name, dtype))
        if buffer is None or buffer.numel() < numel:
            buffer = self._scratch[name, dtype] = torch.empty(numel, dtype=dtype, device=self._full_keys.device)
        return buffer[:numel].view(shape)

    def patterns(self, size: tuple[int, int]) -> PatternLevel:
        """The `PatternLevel` at feature size `size` (built once per layout)."""
        size = (int(size[0]), int(size[1]))
        if size not in self._patterns:
            self._patterns[size] = self._build_patterns(size)
        return self._patterns[size]

    def _build_patterns(self, size: tuple[int, int]) -> PatternLevel:
        keys = self._full_keys
        if tuple(keys.shape[-2:]) != size:  # nearest resize of the class map = of the one-hot map
            keys = F.interpolate(keys[:, None].float(), size=size, mode="nearest")[:, 0].long()
        b, h, w = keys.shape
        k, num_classes = self.kernel_size, self.num_keys
        device = keys.device
        taps = torch.arange(k * k, device=device)
        classes = torch.arange(num_classes, device=device)

        # Windows: the classes under every tap (class J outside the image, so border windows are never constant).
        windows = _shifted_keys(keys, k, "zeros", pad_key=num_classes).flatten(1)  # [k*k, B*h*w]
        centre = windows[k * k // 2]
        window_ids, window_rows = _number_rows(windows, (windows == centre).all(0), centre, num_classes)
        num_windows = num_classes + window_rows.numel()

        # Patterns: image index + the window ids of the k x k neighbours (window U3 outside the image).
        neighbours = _shifted_keys(window_ids.view(b, h, w), k, "zeros", pad_key=num_windows).flatten(1)
        image = torch.arange(b, device=device).repeat_interleave(h * w)
        interior = (neighbours == window_ids).all(0) & (window_ids < num_classes)
        pattern_ids, pattern_rows = _number_rows(torch.cat([image[None], neighbours]), interior,
                                                 image * num_classes + window_ids, b * num_classes)

        # Table rows: constant windows/patterns (one per class, per image for patterns), then the others.
        constant_patterns = classes.repeat(b)[:, None].expand(-1, k * k)
        pattern_windows = torch.cat([constant_patterns, neighbours[:, pattern_rows].t()])
        pattern_classes = torch.cat([constant_patterns, windows[:, pattern_rows].t()])
        pattern_images = torch.cat([torch.arange(b, device=device).repeat_interleave(num_classes),
                                    image[pattern_rows]])[:, None]
        style_rows = torch.where(pattern_classes < num_classes, pattern_images * num_classes + pattern_classes,
                                 b * num_classes)
        return PatternLevel(
            pixel_patterns=pattern_ids,
            hidden_taps=torch.cat([classes[:, None].expand(-1, k * k), windows[:, window_rows].t()])
            + taps * (num_classes + 1),
            spade_taps=pattern_windows + taps * (num_windows + 1),
            style_taps=style_rows + taps * (b * num_classes + 1),
        )


class SEANNormalization(nn.Module):
    """SEAN / ACE normalization: region-style and semantic (SPADE) modulation, blended, with noise injection.

    Args:
        norm_nc: channels C of the normalised activation.
        semantic_nc: channels of the one-hot semantic input (= number of style classes J).
        use_style: with the style branch; False gives SPADE modulation only (the original's last ResBlock).
        style_dim: length of a region style code (512 in the original).
        kernel_size: kernel of the SPADE convs and of `conv_gamma` / `conv_beta` (3).
        hidden_nc: width of the SPADE branch's shared hidden layer (128).
        norm: parameter-free norm, see `labelsynth.layers.normalization.param_free_norm` (the original hard-codes
            synchronized BatchNorm).

    Shapes: `forward(x [B, C, H, W], seg, styles [B, J, style_dim] | None, noise) -> [B, C, H, W]`, `seg` the
    one-hot map `[B, J, h, w]` (nearest-resized to H x W) or a `SEANLayout`; `noise` (optional) this layer's map
    `[B or 1, 1, H, W]` (see `sample_noise_map`), or a mapping `{layer: map}` in which the layer finds its own map (how
    a generator hands each layer its map through ResBlocks that pass the same arguments to all their norms).
    """

    def __init__(self, norm_nc: int, semantic_nc: int, use_style: bool = True, style_dim: int = 512,
                 kernel_size: int = 3, hidden_nc: int = 128, norm: str = "syncbatch"):
        super().__init__()
        self.use_style = use_style
        self.param_free_norm = param_free_norm(norm, norm_nc)
        # SPADE branch: only its gamma/beta are used (its own norm would be dead weight).
        self.spade = SPADE(norm_nc, semantic_nc, kernel_size, hidden_nc, norm="none")
        self.noise_var = nn.Parameter(torch.zeros(norm_nc))  # noise strength per channel, starts at 0
        # Blending logits (sigmoid(0) = 0.5). Also present without style branch, as in the released weights.
        self.blending_gamma = nn.Parameter(torch.zeros(1))
        self.blending_beta = nn.Parameter(torch.zeros(1))
        if use_style:
            # One Linear(style_dim, style_dim) per class, stacked: weight[j] is class j's [out, in] matrix.
            bound = 1 / math.sqrt(style_dim)
            self.style_weight = nn.Parameter(torch.empty(semantic_nc, style_dim, style_dim).uniform_(-bound, bound))
            self.style_bias = nn.Parameter(torch.empty(semantic_nc, style_dim).uniform_(-bound, bound))
            pad = kernel_size // 2
            self.conv_gamma = nn.Conv2d(style_dim, norm_nc, kernel_size, padding=pad)
            self.conv_beta = nn.Conv2d(style_dim, norm_nc, kernel_size, padding=pad)

    def class_styles(self, styles: torch.Tensor) -> torch.Tensor:
        """`relu(W_j s_j + b_j)` for every image and class at once: `[B, J, D] -> [B, J, D]`."""
        per_class = torch.baddbmm(self.style_bias.unsqueeze(1), styles.transpose(0, 1),
                                  self.style_weight.transpose(1, 2))  # [J, B, D]
        return torch.relu(per_class).transpose(0, 1)

    def forward(self, x: torch.Tensor, seg: torch.Tensor | SEANLayout, styles: torch.Tensor | None = None,
                noise: torch.Tensor | Mapping[nn.Module, torch.Tensor] | None = None) -> torch.Tensor:
        if self.use_style and styles is None:
            raise ValueError("this SEAN normalization layer needs style codes [B, num_classes, style_dim]")
        if isinstance(noise, Mapping):
            noise = noise[self]
        if noise is not None:
            noise = noise.to(x.device, x.dtype)
        if isinstance(seg, SEANLayout):
            scale, shift, norm_folded = self._fast_modulation(seg, tuple(x.shape[-2:]), styles, x.dtype)
            if noise is not None:  # x + noise into a channels-last buffer reused by every layer (x is needed again)
                b, c, h, w = x.shape
                noisy = seg.scratch("noisy", (b, h, w, c), x.dtype).permute(0, 3, 1, 2)
                x = torch.addcmul(x, noise, self.noise_var.view(1, -1, 1, 1), out=noisy)
            return shift.addcmul_(x if norm_folded else self.param_free_norm(x), scale)
        if noise is not None:
            x = torch.addcmul(x, noise, self.noise_var.view(1, -1, 1, 1))
        normalized = self.param_free_norm(x)
        segmap = F.interpolate(seg, size=x.shape[-2:], mode="nearest")
        gamma_spade, beta_spade = self.spade.modulation(segmap, tuple(x.shape[-2:]))
        if not self.use_style:
            return normalized * (1 + gamma_spade) + beta_spade
        # Style map: each pixel gets its class's transformed code (the map is one-hot, so this is a lookup).
        style_map = torch.einsum("bjd,bjhw->bdhw", self.class_styles(styles), segmap)
        gamma_alpha, beta_alpha = torch.sigmoid(self.blending_gamma), torch.sigmoid(self.blending_beta)
        gamma = gamma_alpha * self.conv_gamma(style_map) + (1 - gamma_alpha) * gamma_spade
        beta = beta_alpha * self.conv_beta(style_map) + (1 - beta_alpha) * beta_spade
        return normalized * (1 + gamma) + beta

    # ----------------------------------------------------------------------------------------------- fast path
    @torch.no_grad()
    def _fast_modulation(self, layout: SEANLayout, size: tuple[int, int], styles: torch.Tensor | None,
                         dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, bool]:
        """Fast path: per-pixel `scale, shift` (each `[B, C, h, w]`, channels-last memory layout) from per-pattern
        tables.

        `norm(x) * scale + shift` is the layer output, with `scale = 1 + gamma`, `shift = beta`; when the norm is an
        eval-mode BatchNorm it is folded in (`norm_folded=True`) and `x * scale + shift` is.
        """
        patterns = layout.patterns(size)
        # Per pattern: the sum of its k*k neighbours' tap rows (the biases sit in the tap-0 rows, met once per bag).
        gamma_beta = F.embedding_bag(patterns.spade_taps, self._spade_tap_tables(layout, patterns, dtype),
                                     mode="sum")  # [U5, 2C]: [1 + gamma, beta] of the SPADE branch
        if self.use_style:
            style = F.embedding_bag(patterns.style_taps, self._style_tap_tables(styles), mode="sum")
            channels = gamma_beta.shape[1] // 2
            alpha = torch.cat([torch.sigmoid(self.blending_gamma).expand(channels),
                               torch.sigmoid(self.blending_beta).expand(channels)]).float()
            gamma_beta.lerp_(style, alpha)
        scale, shift = gamma_beta.chunk(2, dim=1)
        norm = self.param_free_norm
        norm_folded = isinstance(norm, nn.BatchNorm2d) and not norm.training and norm.track_running_stats
        if norm_folded:  # norm(x) = (x - mean) * inv_std with fixed statistics
            inv_std = torch.rsqrt(norm.running_var.float() + norm.eps)
            shift = torch.addcmul(shift, scale, -norm.running_mean.float() * inv_std)
            scale = scale * inv_std
        h, w = size
        b = patterns.pixel_patterns.numel() // (h * w)

        def per_pixel(table: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
            # rows are pixels: as [B, C, h, w] this is the channels-last layout, no copy needed
            rows = torch.index_select(table.to(dtype), 0, patterns.pixel_patterns, out=out)
            return rows.view(b, h, w, -1).permute(0, 3, 1, 2)

        # The scale lives only until the layer output is computed: it goes to a buffer reused by every layer.
        scale = per_pixel(scale, out=layout.scratch("scale", (b * h * w, scale.shape[1]), dtype))
        return scale, per_pixel(shift), norm_folded

    def _spade_tap_tables(self, layout: SEANLayout, patterns: PatternLevel, dtype: torch.dtype) -> torch.Tensor:
        """SPADE branch: `[k*k * (U3 + 1), 2C]` (float32) contributions of every window's hidden features through
        every tap of the gamma/beta conv (row U3 of a tap: a neighbour outside the image); bias (+1 for gamma) in the
        tap-0 rows."""
        spade = self.spade._tables(layout, dtype)  # SPADE's own fast-path tables (rebuilt only when weights change)
        hidden_nc, out_nc = spade.embedding.shape[1], spade.gamma_beta_bias.numel()
        hidden = torch.relu_(F.embedding_bag(patterns.hidden_taps, spade.embedding, mode="sum"))  # [U3, hidden]
        hidden = F.pad(hidden, (0, 0, 0, 1)).to(dtype)  # zero features outside the image
        per_tap = torch.matmul(hidden, spade.gamma_beta_weight.view(-1, hidden_nc, out_nc)).float()  # [k*k, U3+1, 2C]
        per_tap[0] += spade.gamma_beta_bias
        return per_tap.flatten(0, 1)

    def _style_tap_tables(self, styles: torch.Tensor) -> torch.Tensor:
        """Style branch: `[k*k * (B*J + 1), 2C]` (float32) contributions `W_tap @ relu(W_j s_j + b_j)` of every
        (image, class) code through every tap of `conv_gamma`/`conv_beta` (row B*J of a tap: outside the image);
        bias (+1 for gamma) in the tap-0 rows."""
        codes = self.class_styles(styles.to(self.style_weight.dtype)).flatten(0, 1)  # [B*J, D]
        # One product per output channel, reading the large conv weight as stored ([C, D, k*k], no copy).
        per_tap = torch.cat([torch.bmm(conv.weight.view(conv.out_channels, codes.shape[1], -1).transpose(1, 2),
                                       codes.t().expand(conv.out_channels, -1, -1))
                             for conv in (self.conv_gamma, self.conv_beta)])  # [2C, k*k, B*J]
        tap_tables = F.pad(per_tap.permute(1, 2, 0).float(), (0, 0, 0, 1))  # [k*k, B*J + 1, 2C]
        tap_tables[0] += torch.cat([self.conv_gamma.bias + 1, self.conv_beta.bias]).float()
        return tap_tables.flatten(0, 1)
