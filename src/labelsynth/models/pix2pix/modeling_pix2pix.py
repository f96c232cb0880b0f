"""pix2pix (Isola et al., CVPR 2017): U-Net generator and 70x70 PatchGAN discriminator, for label -> image.

Read top to bottom: the U-Net levels and generator, then `Pix2PixModel`, which turns label ids into the generator
input (a palette rendering or one-hot channels) and runs the U-Net in the chosen test mode, and the
`Pix2PixDiscriminator` used for training (the shared `NLayerDiscriminator` with pix2pix's options).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...demo.spec import Choice, DemoInput, DemoSpec
from ...hub import ModelCardInfo
from ...label_spaces import get_label_space
from ...layers.discriminators import NLayerDiscriminator
from ...modeling_utils import LabelSynthPreTrainedModel, LabelToImageOutput, one_hot_channels
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


def _dropout(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Dropout with p = 0.5 whose mask comes from `generator` (the global RNG when None).

    Computed as torch's CPU dropout does it (Bernoulli(1 - p) mask, scaled by 1 / (1 - p)), so a generator seeded
    like the original's global RNG reproduces its masks on the CPU.
    """
    device = generator.device if generator is not None else x.device
    noise = torch.empty(x.shape, dtype=x.dtype, device=device).bernoulli_(1 - DROPOUT_P, generator=generator)
    return x * noise.div_(1 - DROPOUT_P).to(x.device)


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

    def up(self, x: torch.Tensor, batch_statistics: bool, dropout: bool, generator: torch.Generator | None
           ) -> torch.Tensor:
        x = _normalize(self.up_norm, self.up_conv(x), batch_statistics)
        return _dropout(x, generator) if self.dropout and dropout else x


class UNetGenerator(nn.Module):
    """The pix2pix U-Net: `num_downs` levels with skip connections between mirrored layers.

    With e_k the output of level k's `down` and u_k that of its `up` (n = num_downs levels, k = 0 outermost):

        e_0 = down_0(x),  e_k = down_k(LeakyReLU(e_{k-1}))
        u_{n-1} = up_{n-1}(ReLU(e_{n-1})),  u_k = up_k(ReLU(cat(e_k, u_{k+1}))),  output = tanh(u_0)

    Level k has width ngf * min(2**k, 8). The outermost level has no norms and a biased up-conv to `output_nc`; the
    innermost (1x1 for a 256x256 input with n = 8) has no down norm; levels 4 .. n-2 (the 8*ngf levels next to
    the bottleneck) apply dropout after their up path when `use_dropout`.

    Shapes: `forward(x [B, input_nc, H, W]) -> [B, output_nc, H, W]` in [-1, 1], H and W divisible by 2**num_downs.
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

    def forward(self, x: torch.Tensor, *, batch_statistics: bool = False, dropout: bool = False,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """Run the U-Net.

        Args:
            x: generator input `[B, input_nc, H, W]`.
            batch_statistics: eval-mode BatchNorm uses the batch's statistics (the original's test mode).
            dropout: apply dropout (masks from `generator`); in training mode pass True.
            generator: source of the dropout masks.
        """
        skips = []
        for k, level in enumerate(self.levels):
            x = level.down(F.leaky_relu(x, 0.2) if k else x, batch_statistics)
            skips.append(x)
        x = skips.pop()
        for k in reversed(range(len(self.levels))):
            if k < len(self.levels) - 1:
                x = torch.cat([skips.pop(), x], dim=1)
            x = self.levels[k].up(F.relu(x), batch_statistics, dropout, generator)
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
    `generator`) and batch-statistics BatchNorm, like the original `test.py`; "eval" is deterministic inference with
    the running statistics.
    """

    # Besides the label map, the pipeline/CLI pass instance maps (models with instance edges) and the test mode.
    pipeline_inputs: ClassVar[dict[str, str]] = {"instance_map": "instance", "test_mode": "value"}

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
        """What the Gradio demo shows besides the label map (`labelsynth.demo.spec`): the test mode; the seed
        matters only in the original mode (dropout masks drawn from it)."""
        mode = DemoInput("Test mode", info="original: dropout on and batch statistics, as the original test.py "
                         "(the seed changes the image); eval: deterministic, with the running statistics",
                         control=Choice([("original (dropout, batch statistics)", "original"),
                                         ("eval (deterministic)", "eval")], default=config.test_mode))
        return DemoSpec(inputs={"test_mode": mode}, deterministic_when={"test_mode": ("eval",)})

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

    def forward(
        self,
        label_map: torch.Tensor,
        instance_map: torch.Tensor | None = None,
        test_mode: str | None = None,
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
            generator (`torch.Generator`, *optional*): source of the dropout masks (global RNG when None).

        Returns:
            `LabelToImageOutput` with `images` `[B, 3, H, W]` in [-1, 1].
        """
        mode = self.config.test_mode if test_mode is None else test_mode
        if mode not in TEST_MODES:
            raise ValueError(f"test_mode must be one of {TEST_MODES}, got {mode!r}")
        inputs = self.label_input(label_map, instance_map)
        self._check_size(tuple(inputs.shape[-2:]))
        stochastic = self.training or mode == "original"
        images = self.generator(inputs, batch_statistics=stochastic, dropout=stochastic, generator=generator)
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
