"""pix2pix (Isola et al., CVPR 2017): U-Net generator and 70x70 PatchGAN discriminator, for label -> image.

Read top to bottom: the U-Net levels and generator, then `Pix2PixModel`, which turns label ids into the generator
input (a palette rendering or one-hot channels) and runs the U-Net in the chosen test mode, and the
`Pix2PixDiscriminator` used for training (the shared `NLayerDiscriminator` with pix2pix's options).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...hub import ModelCardInfo
from ...inputs import Choice, DemoInput, DemoSpec
from ...label_spaces import get_label_space
from ...layers.discriminators import NLayerDiscriminator
from ...modeling_utils import LabelSynthPreTrainedModel, LabelToImageOutput, check_tensor_set, one_hot_channels
from .configuration_pix2pix import TEST_MODES, Pix2PixConfig

DROPOUT_P = 0.5  # hard-coded in the original


def _norm_layer(norm: str, channels: int) -> nn.Module:
    # InstanceNorm without affine or running statistics, as the current original code builds it.
    return nn.BatchNorm2d(channels) if norm == "batch" else nn.InstanceNorm2d(channels, affine=False)


def _normalize(norm: nn.Module | None, x: torch.Tensor, batch_statistics: bool) -> torch.Tensor:
    """Apply `norm`; an eval-mode BatchNorm uses the batch's statistics when `batch_statistics` (buffers untouched)."""
    if norm is None:
        return x
    if batch_statistics and isinstance(norm, nn.modules.batchnorm._BatchNorm) and not norm.training:
        return F.batch_norm(x, None, None, norm.weight, norm.bias, training=True, eps=norm.eps)
    return norm(x)


def sample_dropout_mask(shape: tuple[int, ...], generator: torch.Generator | None = None,
                        device: torch.device | str | None = None) -> torch.Tensor:
    """A dropout keep-mask (`BoolTensor[shape]`, True = kept) for p = 0.5, drawn as torch's CPU dropout draws it.

    torch's dropout draws a Bernoulli(1 - p) mask of the input's shape (`bernoulli_` on a float tensor), so a CPU
    generator seeded like the original's global RNG reproduces its masks.

    Args:
        shape: the shape of the activation.
        generator: the random source; None uses torch's global generator.
        device: where to draw; default the generator's device (the CPU without a generator).
    """
    if device is None:
        device = generator.device if generator is not None else "cpu"
    return torch.empty(shape, device=device).bernoulli_(1 - DROPOUT_P, generator=generator).bool()


def _dropout(x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Dropout with p = 0.5 and the given keep-mask (`[B or 1, C, H, W]`, True/1 = kept): kept values are scaled
    by 1 / (1 - p), as torch's dropout does."""
    return x * keep.to(x.device, x.dtype).div(1 - DROPOUT_P)


class UNetLevel(nn.Module):
    """One level of the U-Net: `down` halves the resolution on the way in, `up` doubles it on the way out.

    down: conv4x4 stride 2 (in_nc -> inner_nc) [+ norm]
    up:   transposed conv4x4 stride 2 (up_in_nc -> out_nc) [+ norm] [+ dropout]

    The activations around them (LeakyReLU(0.2) before `down`, ReLU before `up`) and the skip concatenation are
    applied by `UNetGenerator`.
    """

    def __init__(self, in_nc: int, inner_nc: int, up_in_nc: int, out_nc: int, *, norm: str, down_norm: bool,
                 up_norm: bool, up_bias: bool, dropout: bool):
        super().__init__()
        # As in the original, convs have biases only with InstanceNorm (a following BatchNorm would cancel them).
        conv_bias = norm == "instance"
        self.down_conv = nn.Conv2d(in_nc, inner_nc, 4, stride=2, padding=1, bias=conv_bias)
        self.down_norm = _norm_layer(norm, inner_nc) if down_norm else None
        self.up_conv = nn.ConvTranspose2d(up_in_nc, out_nc, 4, stride=2, padding=1, bias=up_bias or conv_bias)
        self.up_norm = _norm_layer(norm, out_nc) if up_norm else None
        self.dropout = dropout

    def down(self, x: torch.Tensor, batch_statistics: bool) -> torch.Tensor:
        return _normalize(self.down_norm, self.down_conv(x), batch_statistics)

    def up(self, x: torch.Tensor, batch_statistics: bool, dropout_mask: torch.Tensor | None) -> torch.Tensor:
        x = _normalize(self.up_norm, self.up_conv(x), batch_statistics)
        return _dropout(x, dropout_mask) if dropout_mask is not None else x


class UNetGenerator(nn.Module):
    """The pix2pix U-Net: `num_downs` levels with skip connections between mirrored layers.

    With e_k the output of level k's `down` and u_k that of its `up` (n = num_downs levels, k = 0 outermost):

        e_0 = down_0(x),  e_k = down_k(LeakyReLU(e_{k-1}))
        u_{n-1} = up_{n-1}(ReLU(e_{n-1})),  u_k = up_k(ReLU(cat(e_k, u_{k+1}))),  output = tanh(u_0)

    Level k has width ngf * min(2**k, 8). The outermost level has no norms and a biased up-conv to `output_nc`; the
    innermost (1x1 for a 256x256 input with n = 8) has no down norm; levels 4 .. n-2 (the 8*ngf levels next to
    the bottleneck) apply dropout after their up path when `use_dropout`.

    Shapes: `forward(x [B, input_nc, H, W]) -> [B, output_nc, H, W]` in [-1, 1], H and W divisible by 2**num_downs;
    the dropout masks of level k are `[B, ngf * min(2**(k-1), 8), H / 2**k, W / 2**k]` (`dropout_mask_shapes`).
    """

    def __init__(self, input_nc: int, output_nc: int = 3, num_downs: int = 8, ngf: int = 64, norm: str = "batch",
                 use_dropout: bool = True):
        super().__init__()
        widths = [ngf * min(2**k, 8) for k in range(num_downs)]
        self.levels = nn.ModuleList()
        for k in range(num_downs):
            outermost, innermost = k == 0, k == num_downs - 1
            self.levels.append(UNetLevel(
                in_nc=input_nc if outermost else widths[k - 1],
                inner_nc=widths[k],
                up_in_nc=widths[k] if innermost else 2 * widths[k],  # the skip doubles the up path's input
                out_nc=output_nc if outermost else widths[k - 1],
                norm=norm,
                down_norm=not (outermost or innermost),
                up_norm=not outermost,
                up_bias=outermost,
                dropout=use_dropout and 4 <= k < num_downs - 1,
            ))

    def dropout_mask_shapes(self, batch_size: int, size: tuple[int, int]) -> dict[str, tuple[int, int, int, int]]:
        """`{"levels.k": (B, C, H / 2**k, W / 2**k)}` for the levels with dropout, innermost first (the order
        `forward` applies them); empty without dropout."""
        return {f"levels.{k}": (batch_size, level.up_conv.out_channels, size[0] >> k, size[1] >> k)
                for k, level in reversed(list(enumerate(self.levels))) if level.dropout}

    def forward(self, x: torch.Tensor, *, batch_statistics: bool = False,
                dropout_masks: Mapping[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Run the U-Net.

        Args:
            x: generator input `[B, input_nc, H, W]`.
            batch_statistics: eval-mode BatchNorm uses the batch's statistics (the original's test mode).
            dropout_masks: keep-masks of the dropout levels (names and shapes as `dropout_mask_shapes`); None runs
                without dropout. In training mode pass masks (dropout is part of training).
        """
        skips = []
        for k, level in enumerate(self.levels):
            x = level.down(F.leaky_relu(x, 0.2) if k else x, batch_statistics)
            skips.append(x)
        x = skips.pop()
        for k in reversed(range(len(self.levels))):
            if k < len(self.levels) - 1:
                x = torch.cat([skips.pop(), x], dim=1)
            mask = dropout_masks[f"levels.{k}"] if dropout_masks is not None and self.levels[k].dropout else None
            x = self.levels[k].up(F.relu(x), batch_statistics, mask)
        return torch.tanh(x)


PIX2PIX_CARD_INFO = ModelCardInfo(
    architecture="pix2pix",
    paper_title="Image-to-Image Translation with Conditional Adversarial Networks",
    paper_url="https://arxiv.org/abs/1611.07004",
    arxiv_id="1611.07004",
    authors=("Phillip Isola", "Jun-Yan Zhu", "Tinghui Zhou", "Alexei A. Efros"),
    original_repo="https://github.com/junyanz/pytorch-CycleGAN-and-pix2pix",
    weights_license="bsd-2-clause",
    license_url="https://github.com/junyanz/pytorch-CycleGAN-and-pix2pix/blob/master/LICENSE",
    description=(
        "pix2pix translates a label map into a photo with a U-Net generator (an encoder-decoder with skip "
        "connections between mirrored layers) trained against a 70x70 PatchGAN discriminator plus an L1 loss. "
        "The label map enters either as its palette colour rendering (as the original label->photo models were "
        "trained) or as one-hot channels. In its original test mode dropout stays on and BatchNorm uses the "
        "statistics of the test batch, so outputs vary with the seed."
    ),
    citation=(
        "@inproceedings{isola2017image,\n  title={Image-to-Image Translation with Conditional Adversarial Networks},\n"
        "  author={Isola, Phillip and Zhu, Jun-Yan and Zhou, Tinghui and Efros, Alexei A},\n"
        "  booktitle={Proceedings of the IEEE Conference on Computer Vision and Pattern Recognition},\n  year={2017}\n}"
    ),
    tags=("pix2pix", "u-net", "patchgan"),
    # Table 1 of the paper (loss ablation, Cityscapes labels -> photo, 256x256): FCN-8s scores of the synthesized
    # photos; ground truth photos score 0.80 / 0.26 / 0.21.
    paper_metrics=(
        {"dataset": "Cityscapes", "metric": "per-pixel accuracy (FCN)", "value": 0.66,
         "source": "pix2pix paper, Table 1 (L1+cGAN)"},
        {"dataset": "Cityscapes", "metric": "per-class accuracy (FCN)", "value": 0.23,
         "source": "pix2pix paper, Table 1 (L1+cGAN)"},
        {"dataset": "Cityscapes", "metric": "class IoU (FCN)", "value": 0.17,
         "source": "pix2pix paper, Table 1 (L1+cGAN)"},
    ),
)


class Pix2PixPreTrainedModel(LabelSynthPreTrainedModel):
    config_class = Pix2PixConfig
    base_model_prefix = "pix2pix"
    model_card_info = PIX2PIX_CARD_INFO

    def _init_weights(self, module: nn.Module) -> None:
        """The original's `--init_type normal`: N(0, 0.02) conv weights, zero biases, BatchNorm weights N(1, 0.02)."""
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(module.weight, 0.0, 0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.modules.batchnorm._BatchNorm) and module.affine:
            nn.init.normal_(module.weight, 1.0, 0.02)
            nn.init.zeros_(module.bias)


class Pix2PixModel(Pix2PixPreTrainedModel):
    """pix2pix image synthesis from a label map.

    Eval mode follows `config.test_mode` (or `forward(test_mode=...)`): "original" keeps dropout (masks from
    `generator`, or passed as `dropout_masks`, see `sample_dropout_masks`) and batch-statistics BatchNorm, like the
    original `test.py`; "eval" is deterministic inference with the running statistics.
    """

    # Besides the label map, the pipeline/CLI pass instance maps (models with instance edges), the test mode and
    # explicit dropout masks (a dict of tensors, passed unchanged; the model moves it to its device).
    pipeline_inputs: ClassVar[dict[str, str]] = {"instance_map": "instance", "test_mode": "value",
                                                 "dropout_masks": "value"}

    def __init__(self, config: Pix2PixConfig):
        super().__init__(config)
        self.generator = UNetGenerator(config.generator_input_nc, 3, num_downs=config.num_downs, ngf=config.ngf,
                                       norm=config.norm, use_dropout=config.use_dropout)
        # Colour encoding: row c is the colour of semantic channel c (the ids, then the don't-care channel).
        space = get_label_space(config.label_space)
        if config.input_encoding == "color" and config.label_nc > space.num_classes:
            raise ValueError(
                f"label_nc={config.label_nc} but label space {space.name!r} has only {space.num_classes} colours; "
                "the colour encoding needs a palette entry per id (use a larger label space or input_encoding="
                "'one_hot')"
            )
        colors = space.colorize(np.arange(min(config.label_nc, space.num_classes)))
        self._palette = np.concatenate([colors, np.asarray([space.ignore_color], dtype=np.uint8)])
        self.post_init()

    @classmethod
    def demo_spec(cls, config: Pix2PixConfig) -> DemoSpec:
        """What the Gradio demo shows besides the label map (`labelsynth.inputs`): the test mode; the seed
        matters only in the original mode (dropout masks drawn from it)."""
        mode = DemoInput("Test mode", info="original: dropout on and batch statistics, as the original test.py "
                         "(the seed changes the image); eval: deterministic, with the running statistics",
                         control=Choice([("original (dropout, batch statistics)", "original"),
                                         ("eval (deterministic)", "eval")], default=config.test_mode))
        # Dropout masks come from the seed (explicit masks from the Python API).
        return DemoSpec(inputs={"test_mode": mode, "dropout_masks": None}, deterministic_when={"test_mode": ("eval",)})

    def label_input(self, label_map: torch.Tensor, instance_map: torch.Tensor | None = None) -> torch.Tensor:
        """The generator input built from label ids (also the discriminator's condition).

        Args:
            label_map (`LongTensor[B, H, W]`): raw ids of the model's label space.
            instance_map (`LongTensor[B, H, W]`, *optional*): instance ids, needed when `use_instance_edges`.

        Returns:
            `FloatTensor[B, generator_input_nc, H, W]`: "color": the palette rendering in [-1, 1], computed as the
            original's `ToTensor` + `Normalize(0.5, 0.5)` computes it from the colour image; "one_hot": one-hot
            channels; then the instance-edge channel when used.
        """
        channels = self.prepare_label_channels(label_map)
        if self.config.input_encoding == "color":
            palette = torch.as_tensor(self._palette[: self.config.num_label_channels], device=channels.device)
            palette = (palette.float() / 255 - 0.5) / 0.5
            inputs = palette[channels].permute(0, 3, 1, 2).to(self.dtype)
        else:
            inputs = one_hot_channels(channels, self.config.num_label_channels, dtype=self.dtype)
        edges = self.prepare_instance_edges(instance_map, tuple(channels.shape[-2:]))
        if edges is not None:
            inputs = torch.cat([inputs, edges.to(self.dtype)], dim=1)
        return inputs.contiguous()

    def _check_size(self, size: tuple[int, int]) -> None:
        factor = self.config.size_divisor
        if size[0] % factor or size[1] % factor:
            native = self.config.image_size
            raise ValueError(
                f"label_map is {size[0]}x{size[1]} (HxW); this U-Net with num_downs={self.config.num_downs} needs "
                f"sides divisible by {factor}; its native size is {native[0]}x{native[1]} (LabelMapProcessor "
                "resizes to it)"
            )

    def dropout_mask_shapes(self, batch_size: int = 1, size: tuple[int, int] | None = None
                            ) -> dict[str, tuple[int, int, int, int]]:
        """Shapes of the dropout masks `forward(dropout_masks=...)` takes: `{"levels.k": (B, C, H / 2**k, W / 2**k)}`.

        Args:
            batch_size: number of label maps B.
            size: (H, W) of the label maps (default `config.image_size`), divisible by 2**num_downs.

        Returns:
            One entry per U-Net level with dropout, innermost first (the order the masks are applied and drawn):
            for `unet_256` at 256x256, "levels.6" (512 x 4 x 4), "levels.5" (512 x 8 x 8), "levels.4"
            (512 x 16 x 16); empty when `use_dropout=False`.
        """
        size = tuple(self.config.image_size) if size is None else tuple(size)
        self._check_size(size)
        return self.generator.dropout_mask_shapes(batch_size, size)

    def sample_dropout_masks(self, batch_size: int = 1, size: tuple[int, int] | None = None,
                             generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Draw the dropout masks of one forward pass, as `forward(generator=...)` draws them.

        `model(label_map, dropout_masks=model.sample_dropout_masks(B, size, generator=g))` gives the same images,
        bit for bit, as `model(label_map, generator=g')` with `g'` seeded like `g` (in the original test mode).

        Args:
            batch_size: number of label maps B (a batch-1 set is shared by every image of a larger batch).
            size: (H, W) of the label maps (default `config.image_size`).
            generator: the random source; None uses torch's global generator.

        Returns:
            `{"levels.k": BoolTensor[batch_size, C, H / 2**k, W / 2**k]}` keep-masks (True = kept), on the
            generator's device (the model's without a generator), keyed and ordered as `dropout_mask_shapes`.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        device = generator.device if generator is not None else self.device
        return {name: sample_dropout_mask(shape, generator, device)
                for name, shape in self.dropout_mask_shapes(batch_size, size).items()}

    def _check_dropout_masks(self, masks: Mapping[str, torch.Tensor], batch_size: int, size: tuple[int, int]
                             ) -> dict[str, torch.Tensor]:
        """Validate explicit dropout masks against the dropout levels of this model at this label-map size."""
        expected = self.dropout_mask_shapes(batch_size, size)
        if isinstance(masks, Mapping) and not expected:
            raise ValueError("dropout_masks were given but this model has no dropout (use_dropout=False)")
        masks = check_tensor_set(
            masks, expected, argument="dropout_masks", element="mask",
            dtype_ok=lambda mask: not mask.is_complex(), dtype_name="bool (or 0/1)", size=size,
            hint="model.sample_dropout_masks(batch_size, size, generator) draws a complete set",
        )
        for name, mask in masks.items():
            if mask.dtype != torch.bool and bool(((mask != 0) & (mask != 1)).any()):
                raise ValueError(f"dropout_masks[{name!r}] must hold only 0 and 1 (1 keeps an activation, scaled "
                                 f"by 1 / (1 - p) = 2, as dropout with p = 0.5 does); use a bool tensor")
        return masks

    def forward(
        self,
        label_map: torch.Tensor,
        instance_map: torch.Tensor | None = None,
        test_mode: str | None = None,
        dropout_masks: Mapping[str, torch.Tensor] | None = None,
        generator: torch.Generator | None = None,
        return_dict: bool = True,
    ) -> LabelToImageOutput | tuple:
        """Generate images.

        Args:
            label_map (`LongTensor[B, H, W]`): raw label ids of the model's label space; H and W divisible by
                2**num_downs (256 for unet_256).
            instance_map (`LongTensor[B, H, W]`, *optional*): instance ids; required when `use_instance_edges`.
            test_mode (`str`, *optional*): "original" or "eval" for this call in eval mode (default
                `config.test_mode`); ignored in training mode, which always uses dropout and batch statistics.
            dropout_masks (`dict[str, BoolTensor[B, C, h, w]]`, *optional*): the dropout keep-masks instead of
                drawing them from `generator` (which is then unused); names and shapes as
                `dropout_mask_shapes(B, (H, W))`, a batch-1 mask is shared by every image. `sample_dropout_masks`
                draws them. Only where dropout runs (test mode "original", or training mode): a call in test mode
                "eval", or a model without dropout, refuses them with a ValueError.
            generator (`torch.Generator`, *optional*): source of the dropout masks (global RNG when None).

        Returns:
            `LabelToImageOutput` with `images` `[B, 3, H, W]` in [-1, 1].
        """
        mode = self.config.test_mode if test_mode is None else test_mode
        if mode not in TEST_MODES:
            raise ValueError(f"test_mode must be one of {TEST_MODES}, got {mode!r}")
        inputs = self.label_input(label_map, instance_map)
        batch_size, size = inputs.shape[0], tuple(inputs.shape[-2:])
        self._check_size(size)
        stochastic = self.training or mode == "original"
        if dropout_masks is not None:
            if not stochastic:
                raise ValueError("dropout_masks were given but this call runs test_mode='eval', which has no "
                                 "dropout; use test_mode='original' (dropout on, as the original test.py) or drop "
                                 "dropout_masks")
            dropout_masks = self._check_dropout_masks(dropout_masks, batch_size, size)
        elif stochastic:  # all masks up front: the per-level draws in order (nothing else draws)
            dropout_masks = self.sample_dropout_masks(batch_size, size, generator)
        images = self.generator(inputs, batch_statistics=stochastic, dropout_masks=dropout_masks)
        if not return_dict:
            return (images,)
        return LabelToImageOutput(images=images)


class Pix2PixDiscriminator(Pix2PixPreTrainedModel):
    """The 70x70 PatchGAN of pix2pix on `cat(generator input, image)`.

    Conv4x4 stride 2 (ndf) + LeakyReLU(0.2); `n_layers_d - 1` more stride-2 convs with norm, widths doubling up to
    8 * ndf; one stride-1 conv with norm; a stride-1 conv to 1 channel (padding 1 everywhere). With the default
    3 layers a 256x256 input gives 30x30 patch logits.

    Shapes: `forward(label_input [B, generator_input_nc, H, W], images [B, 3, H, W]) -> list[list[Tensor]]`: one
    scale holding every stage's output, the last being the logits (the layout `GANLoss` reads).
    """

    main_input_name = "label_input"

    def __init__(self, config: Pix2PixConfig):
        super().__init__(config)
        # Our NLayerDiscriminator counts the stride-1 stage in `n_layers`: pix2pix's n_layers_D + 1.
        self.discriminator = NLayerDiscriminator(
            config.discriminator_input_nc, ndf=config.ndf, n_layers=config.n_layers_d + 1, norm=config.norm,
            padding=1, conv_bias=True if config.norm == "instance" else None, max_channels=8 * config.ndf,
        )
        self.post_init()

    def forward(self, label_input: torch.Tensor, images: torch.Tensor) -> list[list[torch.Tensor]]:
        return [self.discriminator(torch.cat([label_input, images], dim=1))]
