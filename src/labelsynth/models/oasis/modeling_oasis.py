"""OASIS (Schönfeld, Sushko et al., ICLR 2021): SPADE generator with 3D noise, and the U-Net segmentation
discriminator with N+1 class outputs.

Read top to bottom: the label convention (don't-care channel 0), the generator (a `[noise, one-hot]` map feeds the
first conv and every SPADE layer of six residual blocks), the `OASISModel` that turns label ids (+ noise) into images
and re-samples the noise of a region, then the `OASISDiscriminator` used for training.
"""

from __future__ import annotations

import contextlib
import numbers
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from ...hub import ModelCardInfo
from ...inputs import DemoInput, DemoSpec, Number, RegionPicker
from ...layers.blocks import SPADEResnetBlock, maybe_spectral_norm
from ...layers.inference_cache import frozen_inference
from ...layers.noise_normalization import NoiseSemanticLayout, NoiseSPADE
from ...layers.resampling_conv import conv3x3_avg_pool2, nearest_up2_conv3x3
from ...modeling_utils import (
    LabelSynthPreTrainedModel,
    LabelToImageOutput,
    _as_batched_map,
    check_finite,
    one_hot_channels,
)
from .configuration_oasis import DISCRIMINATOR_FACTOR, GENERATOR_FACTOR, NUM_RES_BLOCKS, OASISConfig


def oasis_label_channels(label_map: torch.Tensor, config: OASISConfig) -> torch.Tensor:
    """Raw label ids -> OASIS channel indices: `id + label_shift`, and `ignore_index` -> 0 (don't care).

    Args:
        label_map (`LongTensor[B, H, W]` or `[H, W]`): raw ids of the model's label space.
        config: the model configuration.

    Returns:
        `LongTensor[B, H, W]` of channel indices in ``0 .. num_label_channels - 1``.
    """
    label_map = _as_batched_map(label_map, "label_map")
    ignored = label_map == config.ignore_index
    bad = ~ignored & ((label_map < 0) | (label_map > config.max_label_id))
    if not torch.compiler.is_exporting() and bool(bad.any()):  # an exported graph cannot branch on data
        values = torch.unique(label_map[bad])
        shown = ", ".join(str(v) for v in values[:8].tolist()) + (", ..." if values.numel() > 8 else "")
        raise ValueError(
            f"label_map has ids [{shown}] in {int(bad.sum())} pixels outside the model's label range "
            f"0..{config.max_label_id} (and {config.ignore_index} for unlabeled pixels; label space "
            f"{config.label_space!r}). Check that the map uses this model's label space (raw ADE20K ids 0..150, "
            "Cityscapes labelIds 0..34, COCO-Stuff ids 0..181) and is an index map, not a colour image."
        )
    return torch.where(ignored, torch.zeros_like(label_map), label_map + config.label_shift)


def _nearest(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return x if tuple(x.shape[-2:]) == tuple(size) else F.interpolate(x, size=size, mode="nearest")


class OASISGenerator(nn.Module):
    """The OASIS generator: `[z, one-hot]` resized to the latent grid -> conv3x3 -> six SPADE residual blocks with x2
    nearest upsampling between them -> LeakyReLU(0.2), conv3x3 -> 3, tanh.

    Widths with nf = ngf: fc -> 16nf, blocks 16nf -> 16nf -> 16nf -> 8nf -> 4nf -> 2nf -> nf; the blocks whose width
    changes (2..5) have a learned 1x1 shortcut. Every SPADE layer sees the full `[z, one-hot]` map (z_dim + L
    channels) nearest-resized to its resolution.

    Shapes: `forward(seg, latent_size) -> [B, 3, 32 h, 32 w]` for `latent_size = (h, w)`, where `seg` is the dense
    semantic input `[B, z_dim + L, H, W]` (plain path) or a `NoiseSemanticLayout` (fast path, in inference
    and in training).
    """

    def __init__(self, config: OASISConfig):
        super().__init__()
        nf = config.ngf
        self.config = config
        in_nc = config.z_dim + config.num_label_channels
        widths = [16 * nf, 16 * nf, 16 * nf, 8 * nf, 4 * nf, 2 * nf, nf]
        self.fc = nn.Conv2d(in_nc, 16 * nf, 3, padding=1)

        def norm_layer(channels: int) -> NoiseSPADE:
            return NoiseSPADE(channels, in_nc, config.spade_kernel_size, config.spade_hidden_nc,
                              norm=config.param_free_norm)

        self.body = nn.ModuleList(
            SPADEResnetBlock(widths[i], widths[i + 1], in_nc, spectral_norm=config.spectral_norm,
                             norm_layer=norm_layer)
            for i in range(NUM_RES_BLOCKS)
        )
        self.conv_img = nn.Conv2d(nf, 3, 3, padding=1)

    def forward(self, seg: torch.Tensor | NoiseSemanticLayout, latent_size: tuple[int, int]) -> torch.Tensor:
        if isinstance(seg, NoiseSemanticLayout):
            x = self.fc(seg.dense(latent_size, dtype=self.fc.weight.dtype))
            if frozen_inference(self):
                # The fast path produces gamma/beta pixel-major; keeping activations channels-last matches them.
                x = x.contiguous(memory_format=torch.channels_last)
        else:
            x = self.fc(_nearest(seg, latent_size))
        for i, block in enumerate(self.body):
            x = block(x, seg)
            if i < len(self.body) - 1:
                x = F.interpolate(x, scale_factor=2, mode="nearest")
        return torch.tanh(self.conv_img(F.leaky_relu(x, 0.2)))

    @torch.no_grad()
    def influence(self, changed: torch.Tensor) -> torch.Tensor:
        """Output pixels that can depend on the semantic input (noise or labels) at the pixels marked in `changed`.

        Built by following the network's structure (eval mode, where BatchNorm is per pixel; with InstanceNorm every
        pixel depends on the whole image and all are returned): the input reaches
        each layer by nearest resizing, a SPADE layer reads it through two k x k convs, each 3x3 conv widens a
        region by one pixel at its resolution and upsampling by the resize factor. Outside the returned region
        the output does not depend on `changed` pixels at all.

        Shapes: `changed (BoolTensor[B, H, W]) -> BoolTensor[B, H, W]`.
        """
        if self.config.param_free_norm == "instance":  # per-image statistics: every pixel sees every other
            return torch.ones_like(changed, dtype=torch.bool)
        region = changed[:, None].float()
        size = tuple(region.shape[-2:])
        spade_radius = 2 * (self.config.spade_kernel_size // 2)

        def dilate(x: torch.Tensor, radius: int) -> torch.Tensor:
            return F.max_pool2d(x, 2 * radius + 1, stride=1, padding=radius) if radius else x

        x = dilate(_nearest(region, (size[0] // GENERATOR_FACTOR, size[1] // GENERATOR_FACTOR)), 1)
        for i, block in enumerate(self.body):
            spade = torch.maximum(x, dilate(_nearest(region, tuple(x.shape[-2:])), spade_radius))
            main = dilate(torch.maximum(dilate(spade, 1), spade), 1)
            x = torch.maximum(spade if block.learned_shortcut else x, main)
            if i < len(self.body) - 1:
                x = F.interpolate(x, scale_factor=2, mode="nearest")
        return dilate(x, 1)[:, 0] > 0


OASIS_CARD_INFO = ModelCardInfo(
    architecture="OASIS",
    paper_title="You Only Need Adversarial Supervision for Semantic Image Synthesis",
    paper_url="https://arxiv.org/abs/2012.04781",
    arxiv_id="2012.04781",
    authors=("Edgar Schönfeld", "Vadim Sushko", "Dan Zhang", "Juergen Gall", "Bernt Schiele", "Anna Khoreva"),
    original_repo="https://github.com/boschresearch/OASIS",
    license_url="https://github.com/boschresearch/OASIS/blob/master/LICENSE",
    # The code is AGPL-3.0; the released checkpoints (Dropbox zips linked from its README) state no separate licence.
    weights_license="agpl-3.0",
    description=(
        "OASIS generates a photo from a semantic label map with a SPADE generator whose input is the one-hot label "
        "map with a 3D noise map concatenated in front of it. Different noise gives different appearances of one "
        "layout, and re-sampling the noise inside one region changes only that region. It is trained against a "
        "segmentation discriminator that labels every pixel with one of the N classes or 'fake'."
    ),
    citation=(
        "@inproceedings{schonfeld2021you,\n"
        "  title={You Only Need Adversarial Supervision for Semantic Image Synthesis},\n"
        "  author={Sch{\\\"o}nfeld, Edgar and Sushko, Vadim and Zhang, Dan and Gall, Juergen and Schiele, Bernt and "
        "Khoreva, Anna},\n"
        "  booktitle={International Conference on Learning Representations},\n  year={2021}\n}"
    ),
    tags=("oasis", "3d-noise"),
    paper_metrics=(
        {"dataset": "ADE20K", "metric": "FID", "value": 28.3, "source": "OASIS paper (ICLR 2021)"},
        {"dataset": "ADE20K", "metric": "mIoU", "value": 48.8, "source": "OASIS paper (ICLR 2021)"},
        {"dataset": "Cityscapes", "metric": "FID", "value": 47.7, "source": "OASIS paper (ICLR 2021)"},
        {"dataset": "Cityscapes", "metric": "mIoU", "value": 69.3, "source": "OASIS paper (ICLR 2021)"},
        {"dataset": "COCO-Stuff", "metric": "FID", "value": 17.0, "source": "OASIS paper (ICLR 2021)"},
    ),
    limitations=(
        ("The original code is AGPL-3.0 and its checkpoints are published without a separate weight licence; "
         "treat converted weights as covered by the authors' release terms."),
        ("The label map uses the original conventions: channel 0 is 'don't care' (ADE20K 'other', unlabeled 255), "
         "COCO-Stuff ids are shifted by one inside the model."),
    ),
)


class OASISPreTrainedModel(LabelSynthPreTrainedModel):
    config_class = OASISConfig
    base_model_prefix = "oasis"
    model_card_info = OASIS_CARD_INFO


class OASISModel(OASISPreTrainedModel):
    """OASIS image synthesis from a label map and 3D noise.

    The noise is `[B, z_dim]` (one vector per image, broadcast over the image, as the original samples it) or a
    spatial map `[B, z_dim, H, W]` at the label map's resolution, e.g. from `resample_noise`; without it, one vector
    per image is drawn from `generator`.

    The fast inference path (`labelsynth.layers.noise_normalization`) is used automatically in eval mode when
    gradients are off (`torch.no_grad()` / `torch.inference_mode()`, as the pipeline does); set
    `model.fast_inference = False` to force the paper's plain computation. Training mode runs the SPADE layers' fast
    path too (same values and gradients up to float summation order); `model.fast_training = False` trains on the
    dense map as the paper does.
    """

    # `resample` (a region: class ids or a mask) and `resample_seed` re-roll one region; `pipeline_forward_inputs`
    # turns them into a spatial noise map for `forward`.
    pipeline_inputs: ClassVar[dict[str, str]] = {"noise": "tensor", "resample": "region", "resample_seed": "seed"}

    def __init__(self, config: OASISConfig):
        super().__init__(config)
        self.generator = OASISGenerator(config)
        self.fast_inference = True
        self.fast_training = True
        self.post_init()

    @classmethod
    def demo_spec(cls, config: OASISConfig) -> DemoSpec:
        """What the Gradio demo shows besides the label map (`labelsynth.inputs`): the seed draws the 3D noise; the
        picked classes and the painted region are re-rolled with their own seed."""
        return DemoSpec(
            inputs={
                "noise": None,  # from the seed (explicit maps from the Python API)
                "resample": DemoInput(
                    # The label also names the input in the generated Space READMEs (demos/oasis-*/README.md).
                    "Re-roll these classes (optional)", control=RegionPicker(),
                    info="Or paint the region below. The re-rolled pixels get noise from the re-roll seed, the rest "
                    "from the seed: only they (and a fading margin around them) change"),
                "resample_seed": DemoInput("Re-roll seed", control=Number(0, 2**31 - 1, 1),
                                           info="Used for the classes picked and the region painted"),
            },
            stochastic=True,
            notes="The seed draws the 3D noise: each seed gives another appearance. Pick classes to re-roll, or paint "
                  "a region over the latest result, to change only their look (the rest of the image stays put, up "
                  "to a fading margin around them).",
        )

    def pipeline_forward_inputs(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """The pipeline's prepared per-image inputs -> `forward` arguments: a `resample` region (class ids or
        `BoolTensor[1, H, W]`) becomes a spatial `noise` map (`resample_noise`): the base noise (`noise`, or drawn
        from `generator` as `forward` draws it) everywhere, new noise from `resample_seed` (a `torch.Generator`;
        default: the continued `generator`) inside the region."""
        inputs = dict(inputs)
        region = inputs.pop("resample", None)
        new_generator = inputs.pop("resample_seed", None)
        if region is None:
            if new_generator is not None:
                raise ValueError("resample_seed is the seed of a re-rolled region: give the region too (resample= "
                                 "class ids or a mask), or drop resample_seed")
            return inputs
        generator = inputs.get("generator")
        inputs["noise"] = self.resample_noise(
            inputs["label_map"], region, noise=inputs.get("noise"), generator=generator,
            new_generator=new_generator if new_generator is not None else generator)
        return inputs

    def prepare_label_channels(self, label_map: torch.Tensor) -> torch.Tensor:
        """OASIS channel indices `LongTensor[B, H, W]` on the model's device (`oasis_label_channels`)."""
        return oasis_label_channels(label_map.to(self.device), self.config)

    def build_semantic_input(self, label_map: torch.Tensor, *, noise: torch.Tensor | None = None,
                             generator: torch.Generator | None = None) -> torch.Tensor:
        """The generator's dense input `FloatTensor[B, z_dim + num_label_channels, H, W]`: noise, then one-hot."""
        channels = self.prepare_label_channels(label_map)
        noise = self._noise(channels.shape, noise, generator)
        return self._dense_input(channels, noise)

    def _uses_layout(self) -> bool:
        """A `NoiseSemanticLayout` instead of the dense map: the fast path, in inference or in training."""
        if self.training:
            return self.fast_training
        return self.fast_inference and not torch.is_grad_enabled()

    def _latent_size(self, size: tuple[int, int]) -> tuple[int, int]:
        if size[0] % GENERATOR_FACTOR or size[1] % GENERATOR_FACTOR:
            expected = tuple(self.config.image_size)
            raise ValueError(
                f"label_map is {size[0]}x{size[1]} (HxW); OASIS needs sizes divisible by {GENERATOR_FACTOR}; its "
                f"native size is {expected[0]}x{expected[1]} (LabelMapProcessor resizes to it)"
            )
        return size[0] // GENERATOR_FACTOR, size[1] // GENERATOR_FACTOR

    def sample_noise(self, batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """One noise vector per image, `FloatTensor[batch_size, z_dim]` ~ N(0, I), drawn from `generator` (on its
        device) or the global RNG; this is the draw `forward` makes when no noise is given."""
        device = generator.device if generator is not None else self.device
        noise = torch.randn((batch_size, self.config.z_dim), generator=generator, device=device)
        return noise.to(self.device, self.dtype)

    def _noise(self, shape: Sequence[int], noise: torch.Tensor | None, generator: torch.Generator | None,
               name: str = "noise") -> torch.Tensor:
        """Checked noise `[B, z_dim]` or `[B, z_dim, H, W]` for label channels of `shape` `(B, H, W)`."""
        b, h, w = shape
        if noise is None:
            return self.sample_noise(b, generator)
        if not isinstance(noise, torch.Tensor) or not noise.is_floating_point():
            raise ValueError(f"{name} must be a float tensor [B, z_dim] or [B, z_dim, H, W], got "
                             f"{getattr(noise, 'dtype', type(noise).__name__)}")
        z = self.config.z_dim
        if tuple(noise.shape) not in ((b, z), (b, z, h, w)):
            raise ValueError(
                f"{name} must have shape ({b}, {z}) (one vector per image) or ({b}, {z}, {h}, {w}) (a spatial map "
                f"at the label map's size), got {tuple(noise.shape)}"
            )
        return check_finite(noise, name).to(self.device, self.dtype)

    def _dense_input(self, channels: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        h, w = channels.shape[-2:]
        if noise.dim() == 2:
            noise = noise[:, :, None, None].expand(-1, -1, h, w)
        one_hot = one_hot_channels(channels, self.config.num_label_channels, dtype=self.dtype)
        return torch.cat([noise.to(self.dtype), one_hot], dim=1)

    def resample_noise(
        self,
        label_map: torch.Tensor,
        region: torch.Tensor | int | Sequence[int],
        noise: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        new_noise: torch.Tensor | None = None,
        new_generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """A spatial noise map in which the pixels of `region` take new noise: re-rolls the look of one region.

        The map has the label map's resolution (one noise vector per label pixel; the network resizes it with the
        label map). Passed as `noise=` to `forward`, pixels outside `influence_region(region mask)` come out
        exactly as with the base noise.

        Args:
            label_map (`LongTensor[B, H, W]`): raw label ids (for the size and for class-id regions).
            region (`BoolTensor[B, H, W]` or `[H, W]`, or class ids): the pixels to re-sample: a mask, or raw
                label ids (an int, a sequence of ints or an integer tensor) whose pixels are re-sampled.
            noise (`FloatTensor[B, z_dim]` or `[B, z_dim, H, W]`, *optional*): the base noise; drawn from
                `generator` exactly as `forward` draws it when omitted (so `forward(label_map, generator=g)` and
                `forward(label_map, noise=resample_noise(label_map, region, generator=g'))` agree outside the
                region when `g` and `g'` are seeded alike).
            generator (`torch.Generator`, *optional*): source of the base noise.
            new_noise (`FloatTensor[B, z_dim]` or `[B, z_dim, H, W]`, *optional*): the noise of the region; one
                vector per image is drawn from `new_generator` when omitted.
            new_generator (`torch.Generator`, *optional*): source of the region's noise (e.g. seeded with the
                pipeline's `resample_seed`).

        Returns:
            `FloatTensor[B, z_dim, H, W]`.
        """
        channels = self.prepare_label_channels(label_map)
        h, w = channels.shape[-2:]
        mask = self.region_mask(label_map, region)
        base = self._noise(channels.shape, noise, generator)
        new = self._noise(channels.shape, new_noise, new_generator, name="new_noise")
        if base.dim() == 2:
            base = base[:, :, None, None].expand(-1, -1, h, w)
        if new.dim() == 2:
            new = new[:, :, None, None].expand(-1, -1, h, w)
        return torch.where(mask[:, None], new, base)

    def region_mask(self, label_map: torch.Tensor, region: torch.Tensor | int | Sequence[int]) -> torch.Tensor:
        """`BoolTensor[B, H, W]` of a region given as a boolean mask (`[B, H, W]`, or `[H, W]` for every image) or
        as raw label ids (int, sequence of ints, integer tensor) of `label_map`."""
        ids = _as_batched_map(label_map, "label_map").to(self.device)
        if isinstance(region, torch.Tensor) and region.dtype == torch.bool:
            mask = region.to(self.device)
            if mask.dim() == 2:
                mask = mask.unsqueeze(0)
            if mask.dim() != 3 or tuple(mask.shape[-2:]) != tuple(ids.shape[-2:]) or mask.shape[0] not in (
                    1, ids.shape[0]):
                raise ValueError(f"region mask has shape {tuple(region.shape)}; for label_map {tuple(ids.shape)} it "
                                 f"must be [{ids.shape[0]}, {ids.shape[1]}, {ids.shape[2]}] or [{ids.shape[1]}, "
                                 f"{ids.shape[2]}] (True = re-sample)")
            return mask.expand_as(ids)
        if isinstance(region, torch.Tensor):
            if region.is_floating_point() or region.is_complex():
                raise ValueError(f"region must be a boolean mask or integer class ids, got dtype {region.dtype}")
            classes = region.to(self.device).flatten().long()
        else:
            values = [region] if isinstance(region, numbers.Integral) else list(region)
            if not values or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in values):
                raise ValueError(f"region must be a boolean mask, a class id or a non-empty sequence of class ids, "
                                 f"got {region!r}")
            classes = torch.tensor([int(v) for v in values], device=self.device)
        return torch.isin(ids, classes)

    def influence_region(self, changed: torch.Tensor) -> torch.Tensor:
        """Output pixels that may change when the noise (or labels) change at `changed` (`BoolTensor[B, H, W]`);
        every other pixel is reproduced exactly (plain path; the fast path within ~1e-5). See
        `OASISGenerator.influence`. The spill is wide because the first blocks work on the latent grid (one cell =
        32 x 32 pixels): a region's spill reaches up to ~170 pixels before it and ~210 after it along each axis, so
        at 256x256 any region can reach every pixel in principle (in practice the change fades with distance)."""
        if changed.dtype != torch.bool or changed.dim() != 3:
            raise ValueError(f"changed must be a BoolTensor [B, H, W], got {changed.dtype} {tuple(changed.shape)}")
        self._latent_size(tuple(changed.shape[-2:]))
        return self.generator.influence(changed.to(self.device))

    def forward(
        self,
        label_map: torch.Tensor,
        noise: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        return_dict: bool = True,
    ) -> LabelToImageOutput | tuple:
        """Generate images.

        Args:
            label_map (`LongTensor[B, H, W]`): raw label ids of the model's label space (see `OASISConfig` for the
                channel convention); sides divisible by 32.
            noise (`FloatTensor[B, z_dim]` or `[B, z_dim, H, W]`, *optional*): the 3D noise, one vector per image
                (broadcast over the image) or a spatial map at the label map's resolution. Drawn from `generator`,
                one vector per image, when omitted.
            generator (`torch.Generator`, *optional*): source of randomness for reproducible sampling.

        Returns:
            `LabelToImageOutput` with `images` `[B, 3, H, W]` in [-1, 1].
        """
        channels = self.prepare_label_channels(label_map)
        latent_size = self._latent_size(tuple(channels.shape[-2:]))
        noise = self._noise(channels.shape, noise, generator)

        seg = None
        if self._uses_layout():
            seg = NoiseSemanticLayout.from_noise(channels, noise, self.config.num_label_channels,
                                                 self.config.spade_kernel_size)
        if seg is None:  # gradients on in eval mode, or a spatial noise map with too many distinct vectors
            seg = self._dense_input(channels, noise)

        # In eval mode spectral norm is a fixed rescaling: compute each normalised weight once per forward.
        cache = parametrize.cached() if not self.training else contextlib.nullcontext()
        with cache:
            images = self.generator(seg, latent_size)
        if not return_dict:
            return (images,)
        return LabelToImageOutput(images=images)


class OASISDiscriminatorBlock(nn.Module):
    """Residual block of the OASIS discriminator (no normalisation layers).

    main:     [LeakyReLU(0.2), except in the first block] -> [nearest x2 for "up"] -> conv3x3 -> LeakyReLU(0.2) ->
              conv3x3 -> [avg-pool 2x2 for "down"]
    shortcut: [nearest x2 for "up"] -> conv1x1 with bias (only when fin != fout) -> [avg-pool for "down"]; the first
              block pools before its 1x1 conv.

    That is the original's order; `forward` computes the same thing with the resampling folded into the convolutions
    (see there).

    Args:
        fin, fout: input / output channels.
        sampling: "down" (encoder) or "up" (decoder).
        first: the encoder's first block (on the image itself).
        spectral_norm: spectral normalisation on the three convs.

    Shapes: `forward(x [B, fin, H, W]) -> [B, fout, H/2, W/2]` ("down") or `[B, fout, 2H, 2W]` ("up").
    """

    def __init__(self, fin: int, fout: int, sampling: str, first: bool = False, spectral_norm: bool = True):
        super().__init__()
        if sampling not in ("down", "up"):
            raise ValueError(f"sampling must be 'down' or 'up', got {sampling!r}")
        self.sampling, self.first = sampling, first
        self.learned_shortcut = fin != fout
        self.conv1 = maybe_spectral_norm(nn.Conv2d(fin, fout, 3, padding=1), spectral_norm)
        self.conv2 = maybe_spectral_norm(nn.Conv2d(fout, fout, 3, padding=1), spectral_norm)
        if self.learned_shortcut:
            self.conv_s = maybe_spectral_norm(nn.Conv2d(fin, fout, 1), spectral_norm)

    def _resample(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, 2) if self.sampling == "down" else F.interpolate(x, scale_factor=2, mode="nearest")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The resampling is folded into the convolutions next to it (`layers/resampling_conv.py`): the 1x1 shortcut
        # runs at the lower resolution, and the 3x3 conv that follows an upsampling or precedes a pooling runs as
        # one convolution at the lower resolution: 0.44x the multiply-adds of the original order, same result.
        if self.sampling == "down":  # pool, then the 1x1 conv
            shortcut = self._resample(x)
            shortcut = self.conv_s(shortcut) if self.learned_shortcut else shortcut
        else:  # the 1x1 conv, then upsample
            shortcut = self._resample(self.conv_s(x) if self.learned_shortcut else x)
        h = x if self.first else F.leaky_relu(x, 0.2)
        if self.sampling == "up":
            h = nearest_up2_conv3x3(h, self.conv1.weight, self.conv1.bias)
        else:
            h = self.conv1(h)
        h = F.leaky_relu(h, 0.2)
        if self.sampling == "down":
            return shortcut + conv3x3_avg_pool2(h, self.conv2.weight, self.conv2.bias)
        return shortcut + self.conv2(h)


class OASISDiscriminator(OASISPreTrainedModel):
    """The OASIS segmentation discriminator: a U-Net on the image alone that classifies every pixel as one of the
    `num_label_channels` semantic channels (index c + 1 for channel c, the don't-care channel 0 included) or as
    "fake" (index 0): N+1 logits per pixel.

    Encoder: six "down" blocks 3 -> 2, 2, 4, 4, 8, 8 x ndf (256x256 -> 4x4). Decoder: six "up" blocks, each after
    the first taking `[encoder skip, decoder features]`: 8ndf -> 8ndf, 16ndf -> 4ndf, 8ndf -> 4ndf, 8ndf -> 2ndf,
    4ndf -> 2ndf, 4ndf -> ndf; then a plain 1x1 conv to N+1 logits at full resolution.

    Shapes: `forward(images [B, 3, H, W] in [-1, 1]) -> logits [B, num_label_channels + 1, H, W]`, H and W
    multiples of 64. The training targets: label channel + 1 for real images (and for the generator's loss), 0 for
    generated ones.
    """

    main_input_name = "images"

    def __init__(self, config: OASISConfig):
        super().__init__(config)
        ndf, sn = config.ndf, config.spectral_norm
        widths = [3, 2 * ndf, 2 * ndf, 4 * ndf, 4 * ndf, 8 * ndf, 8 * ndf]
        self.body_down = nn.ModuleList(
            OASISDiscriminatorBlock(widths[i], widths[i + 1], "down", first=i == 0, spectral_norm=sn)
            for i in range(NUM_RES_BLOCKS)
        )
        ups = [(widths[-1], widths[-2])]
        ups += [(2 * widths[-1 - i], widths[-2 - i]) for i in range(1, NUM_RES_BLOCKS - 1)]
        ups += [(2 * widths[1], ndf)]
        self.body_up = nn.ModuleList(OASISDiscriminatorBlock(fin, fout, "up", spectral_norm=sn) for fin, fout in ups)
        self.layer_up_last = nn.Conv2d(ndf, config.num_label_channels + 1, 1)
        self.post_init()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be [B, 3, H, W] in [-1, 1], got shape {tuple(images.shape)}")
        if images.shape[-2] % DISCRIMINATOR_FACTOR or images.shape[-1] % DISCRIMINATOR_FACTOR:
            raise ValueError(f"images are {images.shape[-2]}x{images.shape[-1]}; the OASIS discriminator needs sides "
                             f"divisible by {DISCRIMINATOR_FACTOR} (it halves the resolution six times)")
        x = images.to(self.dtype)
        skips = []
        for block in self.body_down:
            x = block(x)
            skips.append(x)
        x = self.body_up[0](x)
        for i in range(1, len(self.body_up)):
            x = self.body_up[i](torch.cat([skips[-1 - i], x], dim=1))
        return self.layer_up_last(x)
