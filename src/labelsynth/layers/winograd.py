"""3x3 convolutions by Winograd's minimal filtering F(4x4, 3x3) (Lavin & Gray, CVPR 2016), on CPU: for inference,
and for frozen networks that pass gradients to their input (the VGG of perceptual losses).

A direct 3x3 convolution spends 9 multiply-adds per output pixel and input channel. Winograd's algorithm computes
each 4x4 output tile from the 6x6 input tile around it with 36 products instead of 144:

    Y = A^T [ (G g G^T) * (B^T d B) ] A        (d: 6x6 input tile, g: 3x3 filter, *: elementwise)

Summed over input channels, the elementwise products become 36 matrix products `[tiles, C_in] @ [C_in, C_out]`,
one per tile position, so the large layers run with 4x fewer multiply-adds. The input and output transforms cost
memory traffic proportional to C_in + C_out, which is why `winograd_pays` leaves thin layers at high resolution to
the direct convolution. The whole convolution is six tensor operations (tile gather, input transform as one matrix
product with `B^T (x) B^T`, the 36 products as one batched product, output transform, interleave): a version with
hundreds of small element-wise passes ran as fast on an idle CPU but 2-3x slower on a loaded one, where every
parallel region waits for its slowest thread (`benchmarks/bench_spade_inference.py --background-load`).

Accuracy: the interpolation points 0, +-1, +-1/2 (Barabasz et al., "Error analysis and improving the accuracy of
Winograd convolution", 2020) keep every entry of B and A a small power-of-two fraction; the float32 error of one
layer is a few times that of direct summation (~1e-4 vs ~1.5e-5 on unit-variance outputs of a 4608-term sum), and
the generators' outputs stay within ~1e-5 of the direct computation (normalisation layers do not amplify it).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .inference_cache import cached_derivation, tensor_versions
from .small_ops import small_op_threads

__all__ = ["PreparedConv2d", "conv3x3_by_winograd_where_it_pays", "set_winograd_enabled", "winograd_conv3x3",
           "winograd_conv3x3_trainable", "winograd_pays", "winograd_weight"]

_TILE = 4  # output tile m; the input tile is m + 2 = 6
# G (6x3) of F(4, 3) with points 0, 1, -1, 1/2, -1/2 and infinity, and the matching B^T (6x6) and A^T (4x6).
_G = ((4.0, 0.0, 0.0),
      (2 / 3, 2 / 3, 2 / 3),
      (2 / 3, -2 / 3, 2 / 3),
      (-8 / 3, -4 / 3, -2 / 3),
      (-8 / 3, 4 / 3, -2 / 3),
      (0.0, 0.0, 1.0))
_BT = ((1 / 4, 0.0, -5 / 4, 0.0, 1.0, 0.0),
       (0.0, -1 / 4, -1 / 4, 1.0, 1.0, 0.0),
       (0.0, 1 / 4, -1 / 4, -1.0, 1.0, 0.0),
       (0.0, -1 / 2, -1.0, 1 / 2, 1.0, 0.0),
       (0.0, 1 / 2, -1.0, -1 / 2, 1.0, 0.0),
       (0.0, 1 / 4, 0.0, -5 / 4, 0.0, 1.0))
_AT = ((1.0, 1.0, 1.0, 1.0, 1.0, 0.0),
       (0.0, 1.0, -1.0, 1 / 2, -1 / 2, 0.0),
       (0.0, 1.0, 1.0, 1 / 4, 1 / 4, 0.0),
       (0.0, 1.0, -1.0, 1 / 8, -1 / 8, 1.0))
# A^T's column 1 is all ones: a bias added to the products of tile position (1, 1) reaches every output pixel once.
_BIAS_POSITION = 1 * 6 + 1
_TRANSFORMS: dict[tuple[torch.dtype, torch.device], tuple[torch.Tensor, torch.Tensor]] = {}


def _tile_transforms(dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """`B^T (x) B^T` `[36, 36]` and `A^T (x) A^T` `[16, 36]` (Kronecker products): the 2-D input and output
    transforms of a tile flattened row-major, each one matrix product. Entries are products of small powers of two
    (and 5/4), exact in every float dtype."""
    key = (dtype, device)
    if key not in _TRANSFORMS:
        bt = torch.tensor(_BT, dtype=torch.float64)
        at = torch.tensor(_AT, dtype=torch.float64)
        _TRANSFORMS[key] = (torch.kron(bt, bt).to(dtype=dtype, device=device),
                            torch.kron(at, at).to(dtype=dtype, device=device))
    return _TRANSFORMS[key]


def winograd_pays(in_channels: int, out_channels: int, height: int, width: int) -> bool:
    """Whether F(4x4, 3x3) beats oneDNN's direct convolution for this layer (float32, CPU).

    The saving grows with C_in * C_out, the transforms' cost with C_in + C_out (per pixel), and a layer needs some work
    to pay for its few extra tensor operations. Measured on 2 AMD EPYC cores, AVX2 (`benchmarks/bench_winograd.py`, 1
    and 2 threads): 416 -> 416 and 512 -> 512 at 64x64 run 2.2x and 2.4x faster, 128 -> 2048 at 16x16 1.2-1.4x,
    1024 -> 1024 at 4x4 4-4.5x and at 8x8 4.3-4.6x (oneDNN's direct kernel spends 38 ms on the 0.15 G multiply-adds of
    the 4x4 layer at 1 thread: large weights at few pixels run far below its peak), 256 -> 256 at 16x16 1.2x; 512 -> 512
    at 4x8 (0.96x), 256 -> 256 at 8x8 (0.8x), 128 -> 1024 at 8x8 (0.9x) and thin layers such as 128 -> 128 at 256x256
    (0.75x) or 96 -> 96 at 64x128 (0.84x at 2 threads) stay direct. 256 -> 128 at 128x128 is a toss-up (1.1x with AVX2
    only, 0.67x with AVX-512, whose direct convolutions run ~2x faster; 2 Xeon cores) and stays direct. The small layers
    near the work bound (2^24) were measured with AVX2 only; with AVX-512 the ~1.2x ones may be a wash.
    """
    return (in_channels * out_channels >= 100 * (in_channels + out_channels)
            and in_channels * out_channels * height * width >= 2 ** 24)


def winograd_weight(weight: torch.Tensor) -> torch.Tensor:
    """The filter transform `G g G^T` of a `[C_out, C_in, 3, 3]` weight: `[36, C_out, C_in, 1, 1]` (one
    1x1-convolution weight per tile position), computed in float64 and rounded once to `weight`'s dtype."""
    if weight.dim() != 4 or weight.shape[-2:] != (3, 3):
        raise ValueError(f"winograd_weight needs a [C_out, C_in, 3, 3] weight, got {tuple(weight.shape)}")
    g = torch.tensor(_G, dtype=torch.float64, device=weight.device)
    transformed = torch.einsum("ik,ockl,jl->ijoc", g, weight.detach().double(), g)  # [6, 6, C_out, C_in]
    return transformed.reshape(len(_G) ** 2, *weight.shape[:2], 1, 1).to(weight.dtype).contiguous()


def winograd_conv3x3(x: torch.Tensor, transformed_weight: torch.Tensor, bias: torch.Tensor | None = None,
                     padding: int = 0) -> torch.Tensor:
    """`F.conv2d(x, weight, bias, padding=padding)` (stride 1) for a 3x3 `weight`, given `winograd_weight(weight)`.

    Args:
        x (`Tensor[B, C_in, H + 2 - 2 * padding, W + 2 - 2 * padding]`): the input (channels-last avoids a copy).
        transformed_weight (`Tensor[36, C_out, C_in, 1, 1]`): `winograd_weight(weight)`.
        bias (`Tensor[C_out]`, *optional*).
        padding: zeros added on every side.

    Returns:
        `Tensor[B, C_out, H, W]` in channels-last memory format.
    """
    b, c, in_h, in_w = x.shape
    h, w = in_h + 2 * padding - 2, in_w + 2 * padding - 2
    n, m = _TILE + 2, _TILE
    out_channels = transformed_weight.shape[1]
    if transformed_weight.shape[0] != n * n or transformed_weight.shape[2] != c:
        raise ValueError(f"input has {c} channels; the transformed weight {tuple(transformed_weight.shape)} expects "
                         f"{transformed_weight.shape[2]} (build it with winograd_weight)")
    # Sizes that are not multiples of the tile: zero rows/columns complete the last tiles; their output is cropped.
    # One pad does both that and the convolution's padding.
    tiles_h, tiles_w = -(-h // m), -(-w // m)
    extra_h, extra_w = tiles_h * m - h, tiles_w * m - w
    if padding or extra_h or extra_w:
        x = F.pad(x, (padding, padding + extra_w, padding, padding + extra_h))
    pixels = x.permute(0, 2, 3, 1).contiguous()  # [B, H + 2, W + 2, C]; no copy when x is channels-last
    input_transform, output_transform = _tile_transforms(x.dtype, x.device)
    num_tiles = b * tiles_h * tiles_w

    # A handful of large operations rather than hundreds of small ones: each parallel region costs a fork/join,
    # and on a loaded CPU a region waits for its slowest thread, so many small regions lose most under contention.
    # Tap (i, j) of tile (ty, tx) is pixel (m * ty + i, m * tx + j): one strided view, gathered by one copy.
    # Few tiles (low resolutions): the gathers and transforms are small, one thread does them (`small_ops`).
    sb, sh, sw, sc = pixels.stride()
    with small_op_threads(n * n * num_tiles * c, x.device):
        taps = pixels.as_strided((n, n, b, tiles_h, tiles_w, c), (sh, sw, sb, m * sh, m * sw, sc)).reshape(n * n, -1)
        transformed = torch.mm(input_transform, taps).view(n * n, num_tiles, c)  # B^T d B of every tile, channel
    # One matrix product [tiles, C_in] @ [C_in, C_out] per tile position, all 36 in one batched call.
    weight = transformed_weight.view(n * n, out_channels, c).transpose(1, 2)
    if bias is not None:
        bias_term = bias.new_zeros(n * n, 1, out_channels)
        bias_term[_BIAS_POSITION, 0] = bias
        products = torch.baddbmm(bias_term, transformed, weight)
    else:
        products = torch.bmm(transformed, weight)
    del transformed
    # A^T M A, then the 4x4 output tiles interleaved into the image (one copy).
    with small_op_threads(n * n * num_tiles * out_channels, x.device):
        tiles = torch.mm(output_transform, products.view(n * n, -1)).view(m, m, b, tiles_h, tiles_w, out_channels)
        out = tiles.permute(2, 3, 0, 4, 1, 5).reshape(b, m * tiles_h, m * tiles_w, out_channels)
    return out[:, :h, :w].permute(0, 3, 1, 2)


def _winograd_runs(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether a 3x3 convolution of `x` with `weight` goes by Winograd: enabled, float32 on CPU, and `winograd_pays`."""
    return (_ENABLED and x.device.type == "cpu" and x.dtype == torch.float32 and weight.dtype == torch.float32
            and winograd_pays(weight.shape[1], weight.shape[0], x.shape[-2], x.shape[-1]))


class _WinogradConv3x3(torch.autograd.Function):
    """`F.conv2d(x, weight, bias, padding=padding)` by F(4x4, 3x3) in both directions: the input's gradient is
    itself a 3x3 convolution (of the output gradient, with the kernel transposed and flipped, padding 2 - padding),
    so it runs by Winograd too; the weight's and bias's gradients, when asked for, come from the direct convolution
    backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, padding: int,
                transformed: torch.Tensor, transformed_for_input_grad: torch.Tensor) -> torch.Tensor:
        ctx.padding, ctx.has_bias = padding, bias is not None
        ctx.transformed_for_input_grad = transformed_for_input_grad
        ctx.save_for_backward(x if ctx.needs_input_grad[1] else None, weight)
        return winograd_conv3x3(x, transformed, bias, padding=padding)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, weight = ctx.saved_tensors
        grad_x = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_x = winograd_conv3x3(grad, ctx.transformed_for_input_grad, padding=2 - ctx.padding)
        if ctx.needs_input_grad[1] or ctx.needs_input_grad[2]:
            _, grad_weight, grad_bias = torch.ops.aten.convolution_backward(
                grad, x, weight, [weight.shape[0]] if ctx.has_bias else None, [1, 1], [ctx.padding] * 2, [1, 1],
                False, [0, 0], 1, [False, ctx.needs_input_grad[1], ctx.needs_input_grad[2]])
        return grad_x, grad_weight, grad_bias, None, None, None


def winograd_conv3x3_trainable(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                               transformed: tuple[torch.Tensor, torch.Tensor], padding: int = 1) -> torch.Tensor:
    """`F.conv2d(x, weight, bias, padding=padding)` for a 3x3 `weight` (stride 1, padding 0 or 1), differentiable:
    Winograd forward and Winograd input gradient (see `_WinogradConv3x3`).

    Args:
        transformed: `(winograd_weight(weight), winograd_weight(weight.transpose(0, 1).flip(-2, -1)))`, rebuilt by the
            caller whenever `weight` changes.
    Returns:
        `Tensor[B, C_out, H, W]` in channels-last memory format.
    """
    if padding not in (0, 1):
        raise ValueError(f"padding must be 0 or 1, got {padding}")
    return _WinogradConv3x3.apply(x, weight, bias, padding, *transformed)


def conv3x3_by_winograd_where_it_pays(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """`conv(x)`, by F(4x4, 3x3) (forward and input gradient, so also in training) where that is faster: a 3x3
    convolution with stride 1 and padding 1 (any padding mode), float32 on CPU, `winograd_pays` for its size, and
    Winograd enabled (`set_winograd_enabled`). Directly otherwise. The same result up to float rounding.

    Meant for frozen weights (a perceptual loss's VGG): the transformed weights are cached on `conv` and rebuilt
    when its weight changes, so a layer that trains pays the transform at every step (tried on pix2pixHD's
    1024-channel residual blocks at 16x32 pixels: a training iteration took 3x longer).
    """
    weight = conv.weight
    # Not while torch.compile / torch.export trace the model: they get the plain convolution to fuse or export.
    if not (conv.kernel_size == (3, 3) and conv.stride == (1, 1) and conv.dilation == (1, 1) and conv.groups == 1
            and conv.padding == (1, 1) and not torch.compiler.is_compiling() and _winograd_runs(x, weight)):
        return conv(x)
    padding = 1
    if conv.padding_mode != "zeros":
        x, padding = F.pad(x, (1, 1, 1, 1), mode=conv.padding_mode), 0
    transformed = cached_derivation(
        conv, "_winograd_weights", tensor_versions(weight),
        lambda: (winograd_weight(weight), winograd_weight(weight.transpose(0, 1).flip(-2, -1))))
    return winograd_conv3x3_trainable(x, weight, conv.bias, transformed, padding)


class PreparedConv2d:
    """A convolution's weights prepared for inference: `prepared(x)` is `F.conv2d(x, weight, bias, ...)`, by
    F(4x4, 3x3) where `winograd_pays` (float32 on CPU, without gradients, while `set_winograd_enabled(True)`), and
    directly otherwise. Both forms of the weight are made on first use only: the transformed one (4x the size of
    the 3x3 weight) where Winograd runs, the direct one in `memory_format` where it does not.

    Args:
        weight (`Tensor[C_out, C_in, k, k]`), bias (`Tensor[C_out]`, *optional*): detached inference weights.
        stride, padding, dilation, groups: as `F.conv2d`; Winograd applies to stride 1, dilation 1, one group and
            zero padding 0 or 1.
        memory_format: layout of the weight the direct convolution gets (channels-last for channels-last
            activations, so that oneDNN does not reorder it at every call).
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None = None, stride: int | tuple[int, int] = 1,
                 padding: int | tuple[int, int] = 0, dilation: int | tuple[int, int] = 1, groups: int = 1,
                 memory_format: torch.memory_format = torch.channels_last):
        self.weight, self.bias = weight, bias
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups
        self.memory_format = memory_format
        pad = _pair(padding)
        self._winograd_padding = pad[0] if (
            weight.shape[-2:] == (3, 3) and _pair(stride) == (1, 1) and _pair(dilation) == (1, 1) and groups == 1
            and pad[0] == pad[1] and pad[0] in (0, 1)) else None
        self._winograd_weight: torch.Tensor | None = None
        self._direct_weight: torch.Tensor | None = None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        pad = self._winograd_padding
        if pad is not None and not torch.is_grad_enabled() and _winograd_runs(x, self.weight):
            if self._winograd_weight is None:
                self._winograd_weight = winograd_weight(self.weight)
            return winograd_conv3x3(x, self._winograd_weight, self.bias, padding=pad)
        if self._direct_weight is None:
            self._direct_weight = self.weight.contiguous(memory_format=self.memory_format)
        return F.conv2d(x, self._direct_weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


_ENABLED = True


def set_winograd_enabled(enabled: bool) -> None:
    """Switch Winograd convolutions on (the default) or off for every `PreparedConv2d`, e.g. to save the memory of
    the transformed weights (about 1.6 GB for CoCosNet) at the cost of speed. Already transformed weights stay
    cached until the model's fast-path caches are rebuilt."""
    global _ENABLED
    _ENABLED = bool(enabled)


def _pair(value: int | tuple[int, int]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)
