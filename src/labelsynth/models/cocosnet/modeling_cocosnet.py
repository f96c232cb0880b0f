"""CoCosNet (Zhang et al., CVPR 2020): exemplar-based image synthesis through a learned cross-domain correspondence.

Read top to bottom: the building blocks of the correspondence network (domain adaptors, residual blocks), the
correspondence network itself (features -> cosine correlation -> soft warping of the exemplar), the translation
network (a SPADE generator conditioned on the warped exemplar and the label map), the inference fast path, the
`CoCosNetModel` that joins both networks, and the `CoCosNetDiscriminator` used for training.

Memory: the correspondence compares every position of the label's feature grid with every position of the
exemplar's (64 x 64 = 4096 positions at 256 x 256), so the correlation matrix is 4096 x 4096 floats = 64 MiB per
image, plus as much for its softmax; the translation network's self-attention at 128 x 128 holds a
16384 x 4096 matrix (256 MiB per image). Both grow with the square of the number of pixels.
"""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from ...hub import ModelCardInfo
from ...inputs import DemoInput, DemoSpec
from ...layers.attention import SelfAttention2d
from ...layers.blocks import SPADEResnetBlock, inference_conv, maybe_spectral_norm
from ...layers.discriminators import MultiscaleDiscriminator
from ...layers.inference_cache import cached_derivation, frozen_inference, tensor_versions
from ...layers.normalization import SPADE, SemanticLayout
from ...layers.onehot import onehot_conv2d
from ...layers.winograd import PreparedConv2d
from ...modeling_utils import LabelSynthPreTrainedModel, LabelToImageOutput, one_hot_channels
from .configuration_cocosnet import CoCosNetConfig

_EPS = sys.float_info.epsilon  # the original's epsilon in every L2 normalisation


def feature_normalize(features: torch.Tensor) -> torch.Tensor:
    """L2-normalise every feature vector `[B, C, ...]` over dim 1 (CoCosNet's `feature_normalize`)."""
    return features / (torch.norm(features, 2, 1, keepdim=True) + _EPS)


# ------------------------------------------------------------------------------------------- building blocks
def _adaptor_conv(in_nc: int, out_nc: int, kernel_size: int, stride: int, norm: str) -> nn.Sequential:
    """Conv (padding 1) + parameter-free norm, the adaptors' plain layers; no bias when a norm follows."""
    spectral = norm.startswith("spectral")
    subnorm = norm.removeprefix("spectral") or "none"
    conv = maybe_spectral_norm(nn.Conv2d(in_nc, out_nc, kernel_size, stride=stride, padding=1,
                                         bias=subnorm == "none"), spectral)
    if subnorm == "instance":
        return nn.Sequential(conv, nn.InstanceNorm2d(out_nc, affine=False))
    if subnorm == "batch":
        return nn.Sequential(conv, nn.BatchNorm2d(out_nc))
    if subnorm != "none":
        raise ValueError(f"unknown adaptor norm {norm!r}; expected spectralinstance, instance, batch or none")
    return nn.Sequential(conv)


class DomainAdaptor(nn.Module):
    """Maps one domain (label maps or photos) to the shared correspondence feature space.

    Five convs (3x3; the 2nd and 4th with `adaptor_kernel_size` and stride 2, the 4th stride 1 when
    `warp_stride` = 2) with LeakyReLU(0.2) between them, ngf -> 2 -> 4 -> 8 -> 8 ngf channels, then three SPADE
    residual blocks (8 -> 8 -> 8 -> 4 ngf) conditioned on the adaptor's own input.

    Shapes: `forward(x [B, in_channels, H, W], condition) -> [B, 4 * ngf, H / warp_stride, W / warp_stride]`;
    `condition` is what the SPADE layers see: `x` itself (the fast path runs the same layers through
    `_fast_adaptor`).
    """

    def __init__(self, in_channels: int, config: CoCosNetConfig):
        super().__init__()
        nf, k2 = config.ngf, config.adaptor_kernel_size
        norm = config.adaptor_norm
        self.layer1 = _adaptor_conv(in_channels, nf, 3, 1, norm)
        self.layer2 = _adaptor_conv(nf, 2 * nf, k2, 2, norm)
        self.layer3 = _adaptor_conv(2 * nf, 4 * nf, 3, 1, norm)
        self.layer4 = _adaptor_conv(4 * nf, 8 * nf, k2 if config.warp_stride == 4 else 3,
                                    2 if config.warp_stride == 4 else 1, norm)
        self.layer5 = _adaptor_conv(8 * nf, 8 * nf, 3, 1, norm)

        def block(fin: int, fout: int) -> SPADEResnetBlock:
            return SPADEResnetBlock(fin, fout, in_channels, spectral_norm=config.spectral_norm,
                                    norm=config.param_free_norm, spade_kernel_size=config.spade_kernel_size,
                                    spade_hidden_nc=config.spade_hidden_nc, padding_mode="reflect")

        self.head_0 = block(8 * nf, 8 * nf)
        self.G_middle_0 = block(8 * nf, 8 * nf)
        self.G_middle_1 = block(8 * nf, 4 * nf)

    def forward(self, x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        x = self.layer1(x)
        for layer in (self.layer2, self.layer3, self.layer4, self.layer5):
            x = layer(F.leaky_relu(x, 0.2))
        for block in (self.head_0, self.G_middle_0, self.G_middle_1):
            x = block(x, condition)
        return x


class CorrespondenceResidualBlock(nn.Module):
    """`prelu(x + IN(conv(prelu(IN(conv(x))))))` with reflection-padded 3x3 convs and one shared PReLU.

    Shapes: `forward(x [B, C, H, W]) -> [B, C, H, W]`.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, padding_mode="reflect")
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, padding_mode="reflect")
        self.prelu = nn.PReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.prelu(F.instance_norm(self.conv1(x)))
        out = F.instance_norm(self.conv2(out))
        return self.prelu(out + x)


# ------------------------------------------------------------------------------------ correspondence network
@dataclass
class CorrespondenceOutput:
    """What the correspondence network computes.

    Attributes:
        warped_exemplar (`[B, 3, H, W]`): the exemplar warped onto the label map's layout, upsampled to the image.
        correlation (`[B, hw, hw]`): temperature-scaled cosine similarities (logits of the warping softmax), when
            asked for.
        warped_exemplar_label (`[B, num_label_channels, h, w]`): the exemplar's one-hot label map warped with the same
            weights (CoCosNet's `warp_mask`), when asked for and the exemplar label map is known.
        label_features / exemplar_features (`[B, 4 * ngf, h, w]`): the normalised adaptor outputs.
        warp_cycle (`[B, 3, h, w]`): the warped exemplar (on the grid) warped back by the reverse correspondence
            (softmax of the similarities over the label positions), when asked for: the warp-cycle loss compares it
            with the pooled exemplar.
    """

    warped_exemplar: torch.Tensor
    correlation: torch.Tensor | None = None
    warped_exemplar_label: torch.Tensor | None = None
    label_features: torch.Tensor | None = None
    exemplar_features: torch.Tensor | None = None
    warp_cycle: torch.Tensor | None = None


class CorrespondenceNetwork(nn.Module):
    """Cross-domain correspondence: where in the exemplar does each position of the label map find its look?

    1. Domain adaptors map the one-hot label map and the exemplar photo to L2-normalised features on a grid
       `image / warp_stride` (64 x 64 at 256 x 256).
    2. With `maskmix`, the (nearest-downsampled) label map, resp. the exemplar's label map or small noise, is
       concatenated and four residual blocks mix them; 1x1 convs `theta` (label side) and `phi` (exemplar side)
       project to the matching space.
    3. Each position's `match_kernel` x `match_kernel` neighbourhood of features is centred and L2-normalised; the
       cosine similarities of all pairs divided by `temperature` go through a softmax over the exemplar positions.
    4. The exemplar, average-pooled to the grid, is warped by those weights and upsampled back to the image.
    """

    def __init__(self, config: CoCosNetConfig):
        super().__init__()
        self.config = config
        semantic_nc = config.num_label_channels
        self.label_adaptor = DomainAdaptor(semantic_nc, config)
        self.exemplar_adaptor = DomainAdaptor(3, config)
        # 4 * ngf = 256 at the released width (the original hard-codes 256 for both).
        feature_nc = 4 * config.ngf
        mix_nc = feature_nc + (semantic_nc if config.maskmix else 0)
        self.blocks = nn.ModuleList(CorrespondenceResidualBlock(mix_nc) for _ in range(4))
        self.theta = nn.Conv2d(mix_nc, feature_nc, 1)
        self.phi = nn.Conv2d(mix_nc, feature_nc, 1)

    # The steps, usable on their own (training computes the domain-alignment loss on the adaptor features).
    def adapt_label(self, semantics: torch.Tensor) -> torch.Tensor:
        """Normalised label features `[B, 4ngf, h, w]` of a one-hot semantic map `[B, L, H, W]`."""
        return feature_normalize(self.label_adaptor(semantics, semantics))

    def adapt_exemplar(self, image: torch.Tensor) -> torch.Tensor:
        """Normalised exemplar features `[B, 4ngf, h, w]` of an image `[B, 3, H, W]` in [-1, 1]."""
        return feature_normalize(self.exemplar_adaptor(image, image))

    def mix(self, features: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """The residual blocks on `cat(features, mask)` (`mask` at the grid size; ignored without maskmix)."""
        x = torch.cat([features, mask], dim=1) if self.config.maskmix else features
        for block in self.blocks:
            x = block(x)
        return x

    def _unfolded(self, x: torch.Tensor) -> torch.Tensor:
        """`[B, C * k * k, hw]` neighbourhood vectors, centred and L2-normalised."""
        k = self.config.match_kernel
        x = F.unfold(x, kernel_size=k, padding=k // 2) if k > 1 else x.flatten(2)
        dim = 1 if self.config.correlation_centering == "channels" else -1
        x = x - x.mean(dim=dim, keepdim=True)
        return x / (torch.norm(x, 2, 1, keepdim=True) + _EPS)

    def correlation(self, label_mixed: torch.Tensor, exemplar_mixed: torch.Tensor) -> torch.Tensor:
        """Temperature-scaled cosine similarity `[B, hw (label), hw (exemplar)]` of the mixed features."""
        theta = self._unfolded(self.theta(label_mixed))
        phi = self._unfolded(self.phi(exemplar_mixed))
        return torch.matmul(theta.transpose(1, 2), phi) / self.config.correlation_temperature

    def warp(self, weights: torch.Tensor, source: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """`weights [B, hw, h'w'] @ source [B, C, h', w']` -> `[B, C, *size]` (size = the label-side grid)."""
        b, c = source.shape[:2]
        warped = torch.matmul(weights, source.flatten(2).transpose(1, 2))  # [B, hw, C]
        return warped.transpose(1, 2).reshape(b, c, *size).contiguous()

    def warp_back(self, logits: torch.Tensor, warped: torch.Tensor) -> torch.Tensor:
        """The grid-level warped exemplar `[B, C, h, w]` carried back to the exemplar's grid by the reverse
        correspondence `softmax(logits^T)` (each exemplar position's weights over the label positions)."""
        return self.warp(torch.softmax(logits.transpose(1, 2), dim=-1), warped, tuple(warped.shape[-2:]))

    def upsample(self, warped: torch.Tensor) -> torch.Tensor:
        """Grid -> image resolution (nearest, or bilinear with `warp_upsampling="bilinear"`)."""
        mode = self.config.warp_upsampling
        return F.interpolate(warped, scale_factor=self.config.warp_stride, mode=mode,
                             **({"align_corners": False} if mode == "bilinear" else {}))

    def forward(self, semantics: torch.Tensor, exemplar: torch.Tensor, exemplar_semantics: torch.Tensor | None,
                mask_noise: torch.Tensor | None = None, output_correlation: bool = False,
                output_warped_label: bool = False, output_warp_cycle: bool = False) -> CorrespondenceOutput:
        """Plain path (training and reference).

        Args:
            semantics (`[B, L, H, W]`): one-hot label map.
            exemplar (`[B, 3, H, W]`): exemplar image in [-1, 1].
            exemplar_semantics (`[B, L, H, W]`, *optional*): the exemplar's one-hot label map.
            mask_noise (`[B, L, h, w]`, *optional*): used instead of the exemplar's label map on the exemplar side
                (the `noise_for_mask` mode); required when `maskmix` and `exemplar_semantics` is None.
        """
        label_features = self.adapt_label(semantics)
        exemplar_features = self.adapt_exemplar(exemplar)
        grid = tuple(label_features.shape[-2:])
        seg = F.interpolate(semantics, size=grid, mode="nearest")
        exemplar_mask = mask_noise
        if exemplar_mask is None and self.config.maskmix:
            exemplar_mask = F.interpolate(exemplar_semantics, size=grid, mode="nearest")
        logits = self.correlation(self.mix(label_features, seg), self.mix(exemplar_features, exemplar_mask))
        weights = torch.softmax(logits, dim=-1)
        pooled = F.avg_pool2d(exemplar, self.config.warp_stride)
        warped_grid = self.warp(weights, pooled, grid)
        warped_label = None
        if output_warped_label and exemplar_semantics is not None:
            warped_label = self.warp(weights, F.interpolate(exemplar_semantics, size=grid, mode="nearest"), grid)
        return CorrespondenceOutput(self.upsample(warped_grid), logits if output_correlation else None, warped_label,
                                    label_features, exemplar_features,
                                    self.warp_back(logits, warped_grid) if output_warp_cycle else None)


# ---------------------------------------------------------------------------------------- translation network
class CoCosNetGenerator(nn.Module):
    """The translation network: SPADE's generator with every SPADE layer conditioned on `cat(warped exemplar,
    one-hot label map)` (3 + L channels), reflection padding, PONO and self-attention before `up_2`.

    Channel plan (nf = ngf): fc (conv3x3 of the condition resized to image / 32) -> head_0 (16nf) -> up ->
    G_middle_0, G_middle_1 (16nf) -> up -> up_0 (8nf) -> up -> up_1 (4nf) -> up -> [attention] -> up_2 (2nf) ->
    up -> up_3 (nf) -> LeakyReLU(0.2) -> conv3x3 -> tanh.

    Shapes: `forward(condition [B, 3 + L, H, W]) -> [B, 3, H, W]` (plain path); the fast path passes a
    `GuidedLayout` instead.
    """

    def __init__(self, config: CoCosNetConfig):
        super().__init__()
        nf = config.ngf
        condition_nc = 3 + config.num_label_channels
        self.fc = nn.Conv2d(condition_nc, 16 * nf, 3, padding=1)

        def block(fin: int, fout: int) -> SPADEResnetBlock:
            return SPADEResnetBlock(fin, fout, condition_nc, spectral_norm=config.spectral_norm,
                                    norm=config.param_free_norm, spade_kernel_size=config.spade_kernel_size,
                                    spade_hidden_nc=config.spade_hidden_nc, padding_mode="reflect")

        self.head_0 = block(16 * nf, 16 * nf)
        self.G_middle_0 = block(16 * nf, 16 * nf)
        self.G_middle_1 = block(16 * nf, 16 * nf)
        self.up_0 = block(16 * nf, 8 * nf)
        self.up_1 = block(8 * nf, 4 * nf)
        self.attn = SelfAttention2d(4 * nf, config.spectral_norm) if config.use_attention else None
        self.up_2 = block(4 * nf, 2 * nf)
        self.up_3 = block(2 * nf, nf)
        self.conv_img = nn.Conv2d(nf, 3, 3, padding=1)

    @staticmethod
    def _up(x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2, mode="nearest")

    def forward(self, condition: torch.Tensor | GuidedLayout) -> torch.Tensor:
        if isinstance(condition, GuidedLayout):
            return _fast_generator_forward(self, condition)
        latent = tuple(s // 32 for s in condition.shape[-2:])
        x = self.fc(F.interpolate(condition, size=latent, mode="nearest"))
        x = self.head_0(x, condition)
        x = self.G_middle_0(self._up(x), condition)
        x = self.G_middle_1(x, condition)
        x = self.up_0(self._up(x), condition)
        x = self.up_1(self._up(x), condition)
        x = self._up(x)
        if self.attn is not None:
            x = self.attn(x)
        x = self.up_2(x, condition)
        x = self.up_3(self._up(x), condition)
        return torch.tanh(self.conv_img(F.leaky_relu(x, 0.2)))


# ------------------------------------------------------------------------------------------ inference fast path
# The same computation with the structure of the inputs exploited (exact up to float summation order, max abs
# difference ~1e-5 on the image). Used in eval mode without gradients; `model.fast_inference = False` disables it.
#   * convolutions over one-hot channels are embedding lookups (`labelsynth.layers.onehot`): the label adaptor's
#     first conv and every SPADE hidden layer of the translation network (151 of its 154 input channels);
#   * the label adaptor's SPADE layers run SPADE's fast path (per-class tables, convolutions only at boundaries);
#   * the 3x3-neighbourhood cosine correlation is computed from one 256-channel Gram matrix shifted over the 9 taps
#     instead of a 2304-channel matrix product (9x fewer multiply-adds), with the neighbourhood means and norms from
#     box sums;
#   * the self-attention sees a 2x nearest-upsampled map, so it runs on the coarse grid (`forward_upsampled`);
#   * wide 3x3 convolutions run by Winograd's F(4x4, 3x3) (`labelsynth.layers.winograd`, through `PreparedConv2d`);
#   * gamma and beta of every SPADE layer are one convolution, activations are channels-last, spectral-norm weights
#     are computed once, norm statistics are two-pass means over contiguous channels, the correspondence's
#     407-channel residual blocks run zero-padded to 416 channels.
class GuidedLayout:
    """A SPADE condition for the fast path: label ids (optional) and dense guidance channels, per resolution.

    The translation network's condition is `cat(warped exemplar, one_hot(label))`; the exemplar adaptor's is the
    exemplar image alone (`channels=None`).

    Args:
        channels (`LongTensor[B, H, W]`, *optional*): semantic channel index of every pixel (the one-hot part).
        guide (`FloatTensor[B, D, H, W]`): the dense channels placed before the one-hot ones.
    """

    def __init__(self, channels: torch.Tensor | None, guide: torch.Tensor):
        self.channels, self.guide = channels, guide
        self._levels: dict[tuple[int, int], tuple[torch.Tensor | None, torch.Tensor]] = {}

    def level(self, size: tuple[int, int]) -> tuple[torch.Tensor | None, torch.Tensor]:
        """`(channels [B, h, w] or None, guide [B, D, h, w] channels-last)` nearest-resized to `size`."""
        size = (int(size[0]), int(size[1]))
        if size not in self._levels:
            channels, guide = self.channels, self.guide
            if tuple(guide.shape[-2:]) != size:
                guide = F.interpolate(guide, size=size, mode="nearest")
                if channels is not None:
                    # Nearest resizing picks the same source pixel for every channel: ids resize like the one-hot map.
                    channels = F.interpolate(channels[:, None].float(), size=size, mode="nearest")[:, 0].long()
            self._levels[size] = (channels, guide.contiguous(memory_format=torch.channels_last))
        return self._levels[size]


def _fused_gamma_beta(spade: SPADE) -> PreparedConv2d:
    """The conv `cat(W_gamma, W_beta)` with bias `cat(b_gamma + 1, b_beta)`, cached until a weight changes."""
    params = (spade.mlp_gamma.weight, spade.mlp_gamma.bias, spade.mlp_beta.weight, spade.mlp_beta.bias)
    return cached_derivation(spade, "_fused_gamma_beta", tensor_versions(*params), lambda: PreparedConv2d(
        torch.cat([params[0], params[2]]).detach(), torch.cat([params[1] + 1, params[3]]).detach()))


def _guided_spade(spade: SPADE, x: torch.Tensor, normalized: torch.Tensor, layout: GuidedLayout) -> torch.Tensor:
    """SPADE on `cat(guide, one_hot)` with the one-hot part of the hidden conv as a lookup; `normalized` is
    `spade.param_free_norm(x)` (shared by the layers of a block that see the same x)."""
    channels, guide = layout.level(tuple(x.shape[-2:]))
    shared = spade.mlp_shared[0]
    if channels is None:
        hidden = torch.relu_(inference_conv(shared, guide))
    else:
        hidden = torch.relu_(onehot_conv2d(channels, shared.weight, shared.bias, dense=guide, padding_mode="reflect"))
    gamma_beta_conv = _fused_gamma_beta(spade)
    pad = gamma_beta_conv.weight.shape[-1] // 2
    gamma_beta = gamma_beta_conv(F.pad(hidden, (pad,) * 4, mode="reflect"))
    scale, shift = gamma_beta.chunk(2, dim=1)
    return torch.addcmul(shift, normalized, scale)


def _fast_block(block: SPADEResnetBlock, x: torch.Tensor, layout: GuidedLayout) -> torch.Tensor:
    """`SPADEResnetBlock.forward` with `_guided_spade` layers; the input's PONO is computed once for norm_0/norm_s."""
    normalized = block.norm_0.param_free_norm(x)
    x_s = x
    if block.learned_shortcut:
        x_s = inference_conv(block.conv_s, _guided_spade(block.norm_s, x, normalized, layout))
    dx = inference_conv(block.conv_0, F.leaky_relu(_guided_spade(block.norm_0, x, normalized, layout), 0.2))
    dx = inference_conv(block.conv_1, F.leaky_relu(
        _guided_spade(block.norm_1, dx, block.norm_1.param_free_norm(dx), layout), 0.2))
    return x_s + dx


def _fast_generator_forward(generator: CoCosNetGenerator, layout: GuidedLayout) -> torch.Tensor:
    size = tuple(layout.channels.shape[-2:])
    latent = (size[0] // 32, size[1] // 32)
    channels, warped = layout.level(latent)
    fc = generator.fc
    x = onehot_conv2d(channels, fc.weight, fc.bias, dense=warped, padding_mode="zeros")
    x = _fast_block(generator.head_0, x, layout)
    x = _fast_block(generator.G_middle_0, generator._up(x), layout)
    x = _fast_block(generator.G_middle_1, x, layout)
    x = _fast_block(generator.up_0, generator._up(x), layout)
    x = _fast_block(generator.up_1, generator._up(x), layout)
    x = generator.attn.forward_upsampled(x) if generator.attn is not None else generator._up(x)
    x = _fast_block(generator.up_2, x.contiguous(memory_format=torch.channels_last), layout)
    x = _fast_block(generator.up_3, generator._up(x), layout)
    return torch.tanh(inference_conv(generator.conv_img, F.leaky_relu(x, 0.2)))


def _box_sum(x: torch.Tensor, k: int) -> torch.Tensor:
    """Sum over each k x k neighbourhood (zeros outside), `[B, 1, h, w]` -> same shape."""
    return F.avg_pool2d(x, k, stride=1, padding=k // 2, count_include_pad=True) * (k * k)


def _shifted_gram_correlation(theta: torch.Tensor, phi: torch.Tensor, k: int, temperature: float) -> torch.Tensor:
    """Cosine similarity `[B, hw, hw]` of the channel-centred k x k neighbourhood vectors of `theta` and `phi`
    (`[B, C, h, w]`, zeros outside the image), divided by `temperature`, as `_unfolded` + matmul computes it.

    With a_i the unfolded vector of position i (D = C k^2 entries) and m_i its mean:
    `<a_i - m_i, b_j - m_j> = sum_t <theta(i + t), phi(j + t)> - D m_i m_j`, and the sum over the taps t is the
    Gram matrix of the C-channel features summed along k^2 diagonal shifts. The shifts are separable (the sum over
    the k x k taps is the sum over the k row offsets of the sum over the k column offsets), so two passes of k
    shifted adds do it; every step works in place on two hw x hw buffers (64 MiB each at 256 x 256).
    """
    b, c, h, w = theta.shape
    depth = c * k * k
    gram = torch.bmm(theta.flatten(2).transpose(1, 2), phi.flatten(2))  # [B, hw (label), hw (exemplar)]
    summed, source = gram.clone(), gram
    for axis in (2, 1):  # columns (x), then rows (y), of both positions in the [B, h, w, h, w] view
        size = (w, h)[axis == 1]
        target, src = summed.view(b, h, w, h, w), source.view(b, h, w, h, w)
        for shift in range(1, k // 2 + 1):
            ahead = [slice(None)] * 5
            behind = [slice(None)] * 5
            ahead[axis] = ahead[axis + 2] = slice(shift, size)
            behind[axis] = behind[axis + 2] = slice(0, size - shift)
            target[tuple(behind)] += src[tuple(ahead)]
            target[tuple(ahead)] += src[tuple(behind)]
        if axis == 2:
            source, summed = summed, gram.copy_(summed)  # the row pass reads the column sums, writes over gram
    dots = summed

    def stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean = _box_sum(x.sum(1, keepdim=True), k).flatten(1) / depth
        square = _box_sum(x.pow(2).sum(1, keepdim=True), k).flatten(1)
        norm = (square - depth * mean.pow(2)).clamp_min(0).sqrt() + _EPS
        return mean, norm

    mean_t, norm_t = stats(theta)
    mean_p, norm_p = stats(phi)
    dots.baddbmm_(mean_t[:, :, None], mean_p[:, None, :], alpha=-depth)
    return dots.div_(norm_t[:, :, None]).div_(norm_p[:, None, :] * temperature)


def _fast_adaptor(adaptor: DomainAdaptor, first_layer: torch.Tensor,
                  condition: SemanticLayout | GuidedLayout) -> torch.Tensor:
    """`DomainAdaptor.forward` from layer1's conv output, channels-last, with the blocks' fast paths."""
    x = adaptor.layer1[1:](first_layer.contiguous(memory_format=torch.channels_last))
    for layer in (adaptor.layer2, adaptor.layer3, adaptor.layer4, adaptor.layer5):
        x = layer[1:](inference_conv(layer[0], F.leaky_relu(x, 0.2)))
    for block in (adaptor.head_0, adaptor.G_middle_0, adaptor.G_middle_1):
        x = block(x, condition) if isinstance(condition, SemanticLayout) else _fast_block(block, x, condition)
    return x


_CHANNEL_ALIGNMENT = 16  # oneDNN's convolutions are much faster on channel counts that are multiples of 16


def _padded_block_convs(block: CorrespondenceResidualBlock, channels: int) -> tuple[PreparedConv2d, PreparedConv2d]:
    """The block's convs zero-padded to `channels` in and out, cached until a weight changes."""
    params = (block.conv1.weight, block.conv1.bias, block.conv2.weight, block.conv2.bias)
    extra = channels - params[0].shape[0]

    def pad() -> tuple[PreparedConv2d, PreparedConv2d]:
        return tuple(
            PreparedConv2d(F.pad(weight.detach(), (0, 0, 0, 0, 0, extra, 0, extra)), F.pad(bias.detach(), (0, extra)))
            for weight, bias in (params[:2], params[2:]))

    return cached_derivation(block, "_padded_convs", (channels, tensor_versions(*params)), pad)


def _instance_norm(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """`F.instance_norm(x)` of a channels-last `x [B, C, H, W]` by two-pass statistics over the pixels (several
    times faster on CPU than `torch.var_mean` over the strided spatial dimensions)."""
    b, c, h, w = x.shape
    pixels = x.permute(0, 2, 3, 1).reshape(b, h * w, c)
    centred = pixels - pixels.mean(dim=1, keepdim=True)
    var = (centred * centred).mean(dim=1, keepdim=True)
    return (centred * torch.rsqrt(var + eps)).view(b, h, w, c).permute(0, 3, 1, 2)


def _fast_mix(network: CorrespondenceNetwork, features: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """`network.mix` with the channels zero-padded to a multiple of 16 (407 -> 416 at ADE20K) and channels-last.
    The padded channels stay exactly zero through every block (zero weights, zero inputs), so the result is the
    same; they are dropped at the end."""
    x = torch.cat([features, mask], dim=1) if network.config.maskmix else features
    num = x.shape[1]
    padded = -(-num // _CHANNEL_ALIGNMENT) * _CHANNEL_ALIGNMENT
    x = F.pad(x, (0, 0, 0, 0, 0, padded - num)).contiguous(memory_format=torch.channels_last)
    for block in network.blocks:
        conv1, conv2 = _padded_block_convs(block, padded)
        out = block.prelu(_instance_norm(conv1(F.pad(x, (1, 1, 1, 1), mode="reflect"))))
        out = _instance_norm(conv2(F.pad(out, (1, 1, 1, 1), mode="reflect")))
        x = block.prelu(out + x)
    return x[:, :num]


def _fast_correspondence(network: CorrespondenceNetwork, channels: torch.Tensor, exemplar: torch.Tensor,
                         exemplar_channels: torch.Tensor | None, mask_noise: torch.Tensor | None,
                         output_correlation: bool, output_warped_label: bool,
                         output_warp_cycle: bool = False) -> CorrespondenceOutput:
    config = network.config
    num_channels = config.num_label_channels
    adaptor = network.label_adaptor
    layout = SemanticLayout(channels, None, num_channels, config.spade_kernel_size, padding_mode="reflect")
    conv1 = adaptor.layer1[0]
    first = onehot_conv2d(channels, conv1.weight, conv1.bias, padding_mode="zeros")
    label_features = feature_normalize(_fast_adaptor(adaptor, first, layout))
    image_adaptor = network.exemplar_adaptor
    first = inference_conv(image_adaptor.layer1[0], exemplar.contiguous(memory_format=torch.channels_last))
    exemplar_features = feature_normalize(_fast_adaptor(image_adaptor, first, GuidedLayout(None, exemplar)))
    grid = tuple(label_features.shape[-2:])

    def grid_one_hot(ids: torch.Tensor) -> torch.Tensor:
        ids = F.interpolate(ids[:, None].float(), size=grid, mode="nearest")[:, 0].long()
        return one_hot_channels(ids, num_channels, dtype=label_features.dtype)

    label_mixed = _fast_mix(network, label_features, grid_one_hot(channels))
    exemplar_mask = mask_noise if mask_noise is not None or not config.maskmix else grid_one_hot(exemplar_channels)
    exemplar_mixed = _fast_mix(network, exemplar_features, exemplar_mask)
    theta, phi = network.theta(label_mixed), network.phi(exemplar_mixed)
    if config.correlation_centering == "channels":
        logits = _shifted_gram_correlation(theta, phi, config.match_kernel, config.correlation_temperature)
    else:
        logits = torch.matmul(network._unfolded(theta).transpose(1, 2), network._unfolded(phi)) / config.correlation_temperature
    weights = torch.softmax(logits, dim=-1)
    warped_grid = network.warp(weights, F.avg_pool2d(exemplar, config.warp_stride), grid)
    warped_label = None
    if output_warped_label and exemplar_channels is not None:
        warped_label = network.warp(weights, grid_one_hot(exemplar_channels), grid)
    return CorrespondenceOutput(network.upsample(warped_grid), logits if output_correlation else None, warped_label,
                                label_features, exemplar_features,
                                network.warp_back(logits, warped_grid) if output_warp_cycle else None)


# -------------------------------------------------------------------------------------------------- the model
@dataclass
class CoCosNetOutput(LabelToImageOutput):
    """Output of `CoCosNetModel`.

    Args:
        images (`FloatTensor[B, 3, H, W]`): generated images in [-1, 1].
        warped_exemplar (`FloatTensor[B, 3, H, W]`): the exemplar warped onto the label map (in [-1, 1]).
        warped_exemplar_label (`FloatTensor[B, L, h, w]`, *optional*): the exemplar's label map warped with the same
            weights (soft class probabilities on the correspondence grid), with `output_warped_label=True` and an
            exemplar label map.
        correlation (`FloatTensor[B, hw, hw]`, *optional*): the temperature-scaled similarities, with
            `output_correlation=True`.
        label_features, alignment_features (`FloatTensor[B, 4 * ngf, h, w]`, *optional*): with an `alignment_image`
            (training): the label adaptor's features and the exemplar adaptor's features of that image, for the
            domain-alignment loss.
        warp_cycle (`FloatTensor[B, 3, h, w]`, *optional*): with `output_warp_cycle=True`: the warped exemplar
            carried back onto the exemplar's grid by the reverse correspondence (warp-cycle loss).
    """

    warped_exemplar: torch.FloatTensor | None = None
    warped_exemplar_label: torch.FloatTensor | None = None
    correlation: torch.FloatTensor | None = None
    label_features: torch.FloatTensor | None = None
    alignment_features: torch.FloatTensor | None = None
    warp_cycle: torch.FloatTensor | None = None


COCOSNET_CARD_INFO = ModelCardInfo(
    architecture="CoCosNet",
    paper_title="Cross-domain Correspondence Learning for Exemplar-based Image Translation",
    paper_url="https://arxiv.org/abs/2004.05571",
    arxiv_id="2004.05571",
    authors=("Pan Zhang", "Bo Zhang", "Dong Chen", "Lu Yuan", "Fang Wen"),
    original_repo="https://github.com/microsoft/CoCosNet",
    weights_license="mit",
    description=(
        "CoCosNet generates a photo from a semantic label map in the style of an exemplar photo. A correspondence "
        "network maps the label map and the exemplar to a shared feature space, matches every position of the "
        "label map with the exemplar by cosine similarity and warps the exemplar onto the layout; a SPADE "
        "translation network conditioned on the warped exemplar and the label map renders the image."
    ),
    citation=(
        "@inproceedings{zhang2020cross,\n  title={Cross-domain Correspondence Learning for Exemplar-based Image "
        "Translation},\n  author={Zhang, Pan and Zhang, Bo and Chen, Dong and Yuan, Lu and Wen, Fang},\n  "
        "booktitle={Proceedings of the IEEE/CVF Conference on Computer Vision and Pattern Recognition},\n  "
        "pages={5143--5153},\n  year={2020}\n}"
    ),
    tags=("cocosnet", "exemplar-based"),
    # Table 1 of the paper (ADE20K, 256x256); SPADE scores FID 33.9 / SWD 19.7 in the same table.
    paper_metrics=(
        {"dataset": "ADE20K", "metric": "FID", "value": 26.4, "source": "CoCosNet paper, Table 1"},
        {"dataset": "ADE20K", "metric": "SWD", "value": 10.5, "source": "CoCosNet paper, Table 1"},
    ),
    usage_arguments='exemplar="photo.jpg", exemplar_label_map="photo_label.png"',
    usage_note=(
        "`photo.jpg` is the exemplar whose appearance is warped onto the label map, `photo_label.png` its label map "
        "in the same label space (optional: without it the correspondence sees seeded noise instead, the "
        "noise_for_mask mode, best with a model trained for it)."
    ),
    limitations=(
        ("The correspondence is a 4096 x 4096 matrix at 256 x 256 (64 MiB per image) and grows with the square of "
         "the pixel count."),
        ("The CPU fast path keeps Winograd-transformed copies of the wide 3x3 layers (1.6 GB next to the 0.6 GB "
         "of weights); `labelsynth.layers.winograd.set_winograd_enabled(False)` or `model.fast_inference = False` "
         "run without them."),
    ),
)


class CoCosNetPreTrainedModel(LabelSynthPreTrainedModel):
    config_class = CoCosNetConfig
    base_model_prefix = "cocosnet"
    model_card_info = COCOSNET_CARD_INFO


class CoCosNetModel(CoCosNetPreTrainedModel):
    """CoCosNet: a label map and an exemplar photo (with or without its label map) in, a photo out.

    `model.correspondence` (the original's `netCorr`) warps the exemplar onto the label map; `model.generator`
    (`netG`) renders the image from the warped exemplar and the label map. Without the exemplar's label map the
    exemplar side of the correspondence sees N(0, 0.01^2) noise instead (the original's `--noise_for_mask` test
    mode), drawn from `generator` or given as `mask_noise`.

    The fast inference path (module comment above `GuidedLayout`) is used automatically in eval mode when gradients
    are off (as the pipeline does); `model.fast_inference = False` forces the plain computation.
    """

    pipeline_inputs: ClassVar[dict[str, str]] = {"exemplar": "image", "exemplar_label_map": "label",
                                                 "mask_noise": "tensor"}

    def __init__(self, config: CoCosNetConfig):
        super().__init__(config)
        self.correspondence = CorrespondenceNetwork(config)
        self.generator = CoCosNetGenerator(config)
        self.fast_inference = True
        self.post_init()

    @classmethod
    def demo_spec(cls, config: CoCosNetConfig) -> DemoSpec:
        """What the Gradio demo shows besides the label map (`labelsynth.inputs`): the exemplar (required) and its
        label map; the seed matters when the exemplar side sees noise (no exemplar label map, or a noise_for_mask
        model)."""
        return DemoSpec(inputs={
            "exemplar": DemoInput("Exemplar photo", required=True,
                                  info="The output takes its appearance from this photo, warped onto the label map"),
            "exemplar_label_map": DemoInput(
                "Exemplar's label map (optional)",
                info="Its segmentation in this label space; without it the correspondence sees noise instead"),
        }, stochastic=config.maskmix)

    def _uses_fast_path(self) -> bool:
        return self.fast_inference and frozen_inference(self)

    def _check_size(self, size: tuple[int, int]) -> None:
        factor = max(32, 4 * self.config.warp_stride)
        if size[0] % factor or size[1] % factor or min(size) < 2 * factor:
            expected = tuple(self.config.image_size)
            raise ValueError(
                f"label_map is {size[0]}x{size[1]} (HxW); CoCosNet needs sizes divisible by {factor} and at least "
                f"{2 * factor} (its reflection padding needs a 2x2 starting grid); its native size is "
                f"{expected[0]}x{expected[1]} (LabelMapProcessor resizes to it)"
            )

    def _exemplar(self, exemplar: torch.Tensor | None, batch_size: int, size: tuple[int, int]) -> torch.Tensor:
        if exemplar is None:
            raise ValueError(
                "CoCosNet needs an exemplar image (exemplar=[B, 3, H, W] in [-1, 1], or exemplar=<path/PIL image> in "
                "the pipeline): the output takes its appearance from it"
            )
        if exemplar.dim() == 3:
            exemplar = exemplar.unsqueeze(0)
        if exemplar.dim() != 4 or exemplar.shape[1] != 3:
            raise ValueError(f"exemplar must be an RGB image batch [B, 3, H, W] in [-1, 1], got shape "
                             f"{tuple(exemplar.shape)}")
        if exemplar.shape[0] != batch_size:
            raise ValueError(f"exemplar has batch size {exemplar.shape[0]} but label_map has {batch_size}")
        if tuple(exemplar.shape[-2:]) != tuple(size):
            raise ValueError(f"exemplar is {exemplar.shape[-2]}x{exemplar.shape[-1]} (HxW) but label_map is "
                             f"{size[0]}x{size[1]}; resize it to the label map's size (the pipeline and "
                             "LabelMapProcessor do this)")
        return exemplar.to(self.device, self.dtype)

    def _mask_noise(self, mask_noise: torch.Tensor | None, batch_size: int, size: tuple[int, int],
                    generator: torch.Generator | None) -> torch.Tensor:
        grid = (size[0] // self.config.warp_stride, size[1] // self.config.warp_stride)
        shape = (batch_size, self.config.num_label_channels, *grid)
        if mask_noise is None:
            device = generator.device if generator is not None else self.device
            return (torch.randn(shape, generator=generator, device=device) * self.config.mask_noise_std).to(
                self.device, self.dtype)
        if tuple(mask_noise.shape) != shape:
            raise ValueError(f"mask_noise must have shape {shape} (batch, label channels, correspondence grid), got "
                             f"{tuple(mask_noise.shape)}")
        return mask_noise.to(self.device, self.dtype)

    def forward(
        self,
        label_map: torch.Tensor,
        exemplar: torch.Tensor | None = None,
        exemplar_label_map: torch.Tensor | None = None,
        mask_noise: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        output_warped_label: bool = False,
        output_correlation: bool = False,
        output_warp_cycle: bool = False,
        alignment_image: torch.Tensor | None = None,
        return_dict: bool = True,
    ) -> CoCosNetOutput | tuple:
        """Generate images in the style of exemplars.

        Args:
            label_map (`LongTensor[B, H, W]`): raw label ids of the model's label space.
            exemplar (`FloatTensor[B, 3, H, W]` in [-1, 1]): the exemplar photos, same size as the label map.
            exemplar_label_map (`LongTensor[B, H, W]`, *optional*): the exemplars' label maps. Without it (or with a
                `noise_for_mask` model) the exemplar side uses noise instead.
            mask_noise (`FloatTensor[B, L, H / warp_stride, W / warp_stride]`, *optional*): that noise, already scaled
                (N(0, 0.01^2) in the original); drawn from `generator` when needed and omitted.
            generator (`torch.Generator`, *optional*): source of the noise.
            output_warped_label (`bool`): also return the exemplar label map warped by the correspondence.
            output_correlation (`bool`): also return the correlation logits `[B, hw, hw]`.
            output_warp_cycle (`bool`): also return the warped exemplar carried back by the reverse correspondence
                (`[B, 3, h, w]`, the warp-cycle loss's input).
            alignment_image (`FloatTensor[B, 3, H, W]`, *optional*): training: the label maps' real photos; their
                exemplar-adaptor features are returned with the label features (domain-alignment loss).

        Returns:
            `CoCosNetOutput` with `images` and `warped_exemplar` (`[B, 3, H, W]` in [-1, 1]).
        """
        channels = self.prepare_label_channels(label_map)
        size = tuple(channels.shape[-2:])
        self._check_size(size)
        batch_size = channels.shape[0]
        exemplar = self._exemplar(exemplar, batch_size, size)
        exemplar_channels = None
        if exemplar_label_map is not None:
            exemplar_channels = self.prepare_label_channels(exemplar_label_map)
            if tuple(exemplar_channels.shape) != tuple(channels.shape):
                raise ValueError(f"exemplar_label_map has shape {tuple(exemplar_channels.shape)} but label_map has "
                                 f"{tuple(channels.shape)}; give one map per exemplar, at the label map's size")
        use_noise = self.config.maskmix and (exemplar_channels is None or self.config.noise_for_mask)
        noise = self._mask_noise(mask_noise, batch_size, size, generator) if use_noise else None

        # In eval mode spectral norm is a fixed rescaling: compute each normalised weight once per forward.
        cache = parametrize.cached() if not self.training else contextlib.nullcontext()
        with cache:
            if self._uses_fast_path():
                corr = _fast_correspondence(self.correspondence, channels, exemplar, exemplar_channels, noise,
                                            output_correlation, output_warped_label, output_warp_cycle)
                images = self.generator(GuidedLayout(channels, corr.warped_exemplar))
            else:
                num_channels = self.config.num_label_channels
                semantics = one_hot_channels(channels, num_channels, dtype=self.dtype)
                exemplar_semantics = (one_hot_channels(exemplar_channels, num_channels, dtype=self.dtype)
                                      if exemplar_channels is not None else None)
                corr = self.correspondence(semantics, exemplar, exemplar_semantics, noise, output_correlation,
                                           output_warped_label, output_warp_cycle)
                images = self.generator(torch.cat([corr.warped_exemplar, semantics], dim=1))
            alignment_features = None
            if alignment_image is not None:
                alignment_features = self.correspondence.adapt_exemplar(alignment_image.to(self.device, self.dtype))
        if not return_dict:
            return (images, corr.warped_exemplar, corr.warped_exemplar_label, corr.correlation)
        return CoCosNetOutput(images=images, warped_exemplar=corr.warped_exemplar,
                              warped_exemplar_label=corr.warped_exemplar_label, correlation=corr.correlation,
                              label_features=corr.label_features if alignment_image is not None else None,
                              alignment_features=alignment_features, warp_cycle=corr.warp_cycle)


# ----------------------------------------------------------------------------------------------- discriminator
class _AttentionPatchDiscriminator(nn.Module):
    """One scale of CoCosNet's discriminator: a PatchGAN whose last feature stage sees self-attended features."""

    def __init__(self, patch: nn.Module, attention: nn.Module | None):
        super().__init__()
        self.stages = patch.stages
        self.attn = attention

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        last = len(self.stages) - 2  # the stride-1 feature stage before the logits
        for i, stage in enumerate(self.stages):
            if i == last and self.attn is not None:
                x = self.attn(x)
            x = stage(x)
            features.append(x)
        return features


class CoCosNetDiscriminator(CoCosNetPreTrainedModel):
    """Multi-scale PatchGAN (padding 1) on `cat(one-hot label map, image)`, with self-attention before the last
    feature stage of each scale when `use_attention`. (The original also builds a segmentation decoder `dec` per scale
    that its losses never use; it is left out.)

    Shapes: `forward(semantics [B, L, H, W], images [B, 3, H, W]) -> list[list[Tensor]]` (per scale, every stage's
    output; the last holds the patch logits).
    """

    main_input_name = "semantics"

    def __init__(self, config: CoCosNetConfig):
        super().__init__(config)
        multiscale = MultiscaleDiscriminator(
            config.num_label_channels + 3, num_d=config.num_d, ndf=config.ndf, n_layers=config.n_layers_d,
            norm=config.discriminator_norm, padding=1,
        )
        attention_nc = min(config.ndf * 2 ** (config.n_layers_d - 2), 512)
        spectral = config.discriminator_norm.startswith("spectral")
        self.discriminators = nn.ModuleList(
            _AttentionPatchDiscriminator(d, SelfAttention2d(attention_nc, spectral) if config.use_attention else None)
            for d in multiscale.discriminators
        )
        self.post_init()

    def forward(self, semantics: torch.Tensor, images: torch.Tensor) -> list[list[torch.Tensor]]:
        x = torch.cat([semantics, images], dim=1)
        outputs = []
        for i, discriminator in enumerate(self.discriminators):
            if i:
                x = F.avg_pool2d(x, kernel_size=3, stride=2, padding=1, count_include_pad=False)
            outputs.append(discriminator(x))
        return outputs
