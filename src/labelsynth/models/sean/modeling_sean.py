"""SEAN (Zhu et al., CVPR 2020): region style encoder, SEAN generator and multi-scale discriminator.

Read top to bottom: the style encoder (image -> one style code per class), the generator (SPADE's ResBlock layout
with SEAN normalization; the last block is SPADE-only, as in the original), then `SEANModel`, which turns label ids
and a style (image or `SEANStyles`) into images, and the `SEANDiscriminator` used for training.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from ...hub import ModelCardInfo
from ...inputs import Choice, ClassSubset, DemoInput, DemoSpec
from ...label_spaces import get_label_space
from ...layers.blocks import SPADEResnetBlock
from ...layers.discriminators import MultiscaleDiscriminator
from ...layers.inference_cache import frozen_inference
from ...layers.sean_normalization import SEANLayout, SEANNormalization, sample_noise_map
from ...modeling_utils import (
    LabelSynthPreTrainedModel,
    LabelToImageOutput,
    check_finite,
    check_tensor_set,
    one_hot_channels,
)
from ..spade.configuration_spade import UPSAMPLING_LAYERS
from .configuration_sean import STYLE_BLOCKS, SEANConfig
from .styles import SEANStyles


def region_average(features: torch.Tensor, channels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Mean feature vector of every class region, per image (zeros for absent classes).

    Args:
        features (`FloatTensor[B, D, h, w]`): feature map.
        channels (`LongTensor[B, H, W]`): class index per pixel, nearest-resized to h x w.
        num_classes: J.

    Returns:
        `FloatTensor[B, J, D]`.
    """
    h, w = features.shape[-2:]
    if tuple(channels.shape[-2:]) != (h, w):
        channels = F.interpolate(channels[:, None].float(), size=(h, w), mode="nearest")[:, 0].long()
    masks = one_hot_channels(channels, num_classes, dtype=features.dtype).flatten(2)  # [B, J, h*w]
    sums = torch.bmm(masks, features.flatten(2).transpose(1, 2))  # [B, J, D]: all regions in one product
    return sums / masks.sum(-1, keepdim=True).clamp(min=1)


class SEANStyleEncoder(nn.Module):
    """Style encoder (the original's `Zencoder`): image -> feature map -> per-class average ("style matrix").

    conv3x3 (reflection pad) 3 -> ngf, two stride-2 conv3x3 (ngf -> 2ngf -> 4ngf), a stride-2 transposed conv3x3
    (4ngf -> 8ngf), each followed by InstanceNorm and LeakyReLU(0.2); then conv3x3 (reflection pad) -> style_dim and
    tanh. The feature map has half the input resolution (128x128 for 256x256 images).

    Shapes: `forward(image [B, 3, H, W] in [-1, 1], channels LongTensor[B, H', W']) -> [B, num_classes, style_dim]`.
    """

    def __init__(self, config: SEANConfig):
        super().__init__()
        ngf = config.style_encoder_ngf
        self.num_classes = config.num_style_classes
        self.conv_in = nn.Conv2d(3, ngf, 3)
        self.down_0 = nn.Conv2d(ngf, 2 * ngf, 3, stride=2, padding=1)
        self.down_1 = nn.Conv2d(2 * ngf, 4 * ngf, 3, stride=2, padding=1)
        self.up = nn.ConvTranspose2d(4 * ngf, 8 * ngf, 3, stride=2, padding=1, output_padding=1)
        self.conv_out = nn.Conv2d(8 * ngf, config.style_dim, 3)

    def feature_map(self, image: torch.Tensor) -> torch.Tensor:
        """`[B, 3, H, W] -> [B, style_dim, H/2, W/2]` in [-1, 1]."""
        x = self.conv_in(F.pad(image, (1, 1, 1, 1), mode="reflect"))
        for conv in (self.down_0, self.down_1, self.up):
            x = F.leaky_relu(F.instance_norm(x), 0.2)  # InstanceNorm without affine parameters
            x = conv(x)
        x = F.leaky_relu(F.instance_norm(x), 0.2)
        return torch.tanh(self.conv_out(F.pad(x, (1, 1, 1, 1), mode="reflect")))

    def forward(self, image: torch.Tensor, channels: torch.Tensor) -> torch.Tensor:
        return region_average(self.feature_map(image), channels, self.num_classes)


class SEANGenerator(nn.Module):
    """SEAN generator: downsampled label map -> conv3x3 -> 7 ResBlocks with x2 nearest upsampling -> RGB.

    SPADE's layout (head_0, G_middle_0, G_middle_1 at 16nf; up_0 -> 8nf, up_1 -> 4nf, up_2 -> 2nf, up_3 -> nf), with
    SEAN normalization in every ResBlock; up_3's normalizations have no style branch. Then LeakyReLU(0.2),
    conv3x3 -> 3, tanh.

    Shapes: `forward(seg, styles [B, len(STYLE_BLOCKS), J, style_dim], latent_size, noise) -> [B, 3, H, W]` with
    `seg` the one-hot map `[B, J, H, W]` (plain path) or a `SEANLayout` (fast path) and `noise` (optional) one map
    `[B or 1, 1, h, w]` per normalization layer, named as in `noise_layers`.
    """

    def __init__(self, config: SEANConfig):
        super().__init__()
        nf = config.ngf
        self.num_upsampling = UPSAMPLING_LAYERS[config.num_upsampling_layers]
        self.fc = nn.Conv2d(config.semantic_nc, 16 * nf, 3, padding=1)

        def block(fin: int, fout: int, use_style: bool = True) -> SPADEResnetBlock:
            def norm_layer(channels: int) -> SEANNormalization:
                return SEANNormalization(channels, config.semantic_nc, use_style=use_style, style_dim=config.style_dim,
                                         kernel_size=config.spade_kernel_size, hidden_nc=config.spade_hidden_nc,
                                         norm=config.param_free_norm)

            return SPADEResnetBlock(fin, fout, config.semantic_nc, spectral_norm=config.spectral_norm,
                                    norm_layer=norm_layer)

        self.head_0 = block(16 * nf, 16 * nf)
        self.G_middle_0 = block(16 * nf, 16 * nf)
        self.G_middle_1 = block(16 * nf, 16 * nf)
        self.up_0 = block(16 * nf, 8 * nf)
        self.up_1 = block(8 * nf, 4 * nf)
        self.up_2 = block(4 * nf, 2 * nf)
        self.up_3 = block(2 * nf, nf, use_style=False)
        self.conv_img = nn.Conv2d(nf, 3, 3, padding=1)

    @staticmethod
    def _up(x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2, mode="nearest")

    def noise_layers(self, latent_size: tuple[int, int]) -> dict[str, tuple[int, int]]:
        """The SEAN normalization layers, in the order they run, with the size (h, w) of their activations.

        Names are module paths under the generator ("head_0.norm_0", ..., "up_0.norm_s", ...): per block the
        shortcut's norm (blocks that change width) first, then norm_0 and norm_1, as `forward` runs them.
        """
        layers, factor = {}, 1
        for name in ("head_0", "G_middle_0", "G_middle_1", "up_0", "up_1", "up_2", "up_3"):
            # forward upsamples before G_middle_0, before G_middle_1 only with "more" layers, and before every up_*
            if name != "head_0" and (name != "G_middle_1" or self.num_upsampling > 5):
                factor *= 2
            block = getattr(self, name)
            for norm in ("norm_s", "norm_0", "norm_1") if block.learned_shortcut else ("norm_0", "norm_1"):
                layers[f"{name}.{norm}"] = (latent_size[0] * factor, latent_size[1] * factor)
        return layers

    def forward(self, seg: torch.Tensor | SEANLayout, styles: torch.Tensor, latent_size: tuple[int, int],
                noise: Mapping[str, torch.Tensor] | None = None) -> torch.Tensor:
        if noise is not None:  # keyed by the layer modules, where each norm of a ResBlock finds its own map
            noise = {self.get_submodule(name): value for name, value in noise.items()}
        if isinstance(seg, SEANLayout):
            x = self.fc(seg.dense(latent_size, dtype=self.fc.weight.dtype))
            # The fast path produces gamma/beta pixel-major; keeping activations channels-last matches them.
            x = x.contiguous(memory_format=torch.channels_last)
        else:
            x = self.fc(F.interpolate(seg, size=latent_size, mode="nearest"))
        blocks = dict(zip(STYLE_BLOCKS, styles.unbind(1)))
        x = self.head_0(x, seg, styles=blocks["head_0"], noise=noise)
        x = self._up(x)
        x = self.G_middle_0(x, seg, styles=blocks["G_middle_0"], noise=noise)
        if self.num_upsampling > 5:
            x = self._up(x)
        x = self.G_middle_1(x, seg, styles=blocks["G_middle_1"], noise=noise)
        for name in ("up_0", "up_1", "up_2"):
            x = getattr(self, name)(self._up(x), seg, styles=blocks[name], noise=noise)
        x = self.up_3(self._up(x), seg, noise=noise)
        return torch.tanh(self.conv_img(F.leaky_relu(x, 0.2)))


SEAN_CARD_INFO = ModelCardInfo(
    architecture="SEAN",
    paper_title="SEAN: Image Synthesis with Semantic Region-Adaptive Normalization",
    paper_url="https://arxiv.org/abs/1911.12861",
    arxiv_id="1911.12861",
    authors=("Peihao Zhu", "Rameen Abdal", "Yipeng Qin", "Peter Wonka"),
    original_repo="https://github.com/ZPdesu/SEAN",
    weights_license="cc-by-nc-sa-4.0",
    description=(
        "SEAN generates a photo from a semantic label map and a style image. A style encoder turns the style image "
        "into one style code per semantic region; every normalization layer of the generator is modulated by those "
        "codes, placed over their regions, blended with SPADE's label-only modulation. Region styles can be "
        "swapped between images, interpolated and mixed per block."
    ),
    citation=(
        "@inproceedings{zhu2020sean,\n  title={SEAN: Image Synthesis with Semantic Region-Adaptive Normalization},\n"
        "  author={Zhu, Peihao and Abdal, Rameen and Qin, Yipeng and Wonka, Peter},\n"
        "  booktitle={IEEE/CVF Conference on Computer Vision and Pattern Recognition (CVPR)},\n  year={2020}\n}"
    ),
    tags=("sean", "style-transfer", "face-editing"),
    # Table 1 of the paper: reconstruction (style image = the label map's own photo), CelebAMask-HQ test set;
    # SPADE scores FID 31.50 in the same table. Not comparable with label-only synthesis figures.
    paper_metrics=(
        {"dataset": "CelebAMask-HQ", "metric": "FID (reconstruction)", "value": 17.66,
         "source": "SEAN paper, Table 1"},
    ),
    usage_arguments='style_image="face.jpg", seed=0',
    usage_note=(
        "`face.jpg` gives the style: one code per region is encoded from it (with its own label map as "
        "`style_label_map=`, or the label map itself when omitted). The seed drives the noise injection "
        "(`noise=model.sample_noise(...)` passes the maps explicitly); `add_noise=False` turns it off."
    ),
)


@dataclass
class SEANOutput(LabelToImageOutput):
    """`LabelToImageOutput` plus the style codes the images were made with.

    Args:
        images (`FloatTensor[B, 3, H, W]`): generated images in [-1, 1].
        styles (`SEANStyles`): the region style codes used (encoded from the style image, or the ones passed in).
    """

    styles: SEANStyles | None = None


class SEANPreTrainedModel(LabelSynthPreTrainedModel):
    config_class = SEANConfig
    base_model_prefix = "sean"
    model_card_info = SEAN_CARD_INFO

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, SEANNormalization):
            nn.init.zeros_(module.noise_var)
            nn.init.zeros_(module.blending_gamma)
            nn.init.zeros_(module.blending_beta)
            if module.use_style:
                # Xavier-normal(gain) of each class's Linear(style_dim, style_dim), as the original's per-class fc_mu.
                dim = module.style_weight.shape[-1]
                nn.init.normal_(module.style_weight, 0.0, self.init_gain * (2.0 / (2 * dim)) ** 0.5)
                nn.init.zeros_(module.style_bias)


class SEANModel(SEANPreTrainedModel):
    """SEAN image synthesis from a label map and region styles (a style image with its label map, or `SEANStyles`).

    The fast inference path (see `labelsynth.layers.sean_normalization`) is used automatically in eval mode when
    gradients are off (`torch.no_grad()` / `torch.inference_mode()`, as the pipeline does); set
    `model.fast_inference = False` to force the paper's plain computation.

    Noise injection (on by default, as in the original) draws one map per normalization layer from `generator`;
    `sample_noise` draws the same maps up front, to pass (or edit) as `forward(noise=...)`.
    """

    # `noise` is a dict of tensors, which the pipeline passes unchanged ("value"); the model moves it to its device.
    pipeline_inputs: ClassVar[dict[str, str]] = {
        "style_image": "image", "style_label_map": "label", "styles": "value", "add_noise": "value",
        "region_style_image": "image", "region_style_label_map": "label", "region_style_classes": "value",
        "noise": "value",
    }

    def __init__(self, config: SEANConfig):
        super().__init__(config)
        self.encoder = SEANStyleEncoder(config)  # the style encoder (named as SPADE's)
        self.generator = SEANGenerator(config)
        self.fast_inference = True
        self.post_init()

    @classmethod
    def demo_spec(cls, config: SEANConfig) -> DemoSpec:
        """What the Gradio demo shows besides the label map (`labelsynth.inputs`): the style image (required)
        and its label map, a second image styling only the picked regions, and the noise switch; the seed matters
        only with noise."""
        return DemoSpec(
            inputs={
                "style_image": DemoInput("Style image", required=True,
                                         info="The appearance source: one style code per region of its label map"),
                "style_label_map": DemoInput(
                    "Style image's label map (optional)",
                    info="Its segmentation in this label space; without it the label map itself is used (right "
                    "when the style image is the photo of that label map)"),
                "styles": None,  # style-code objects come from the Python API
                "noise": None,  # noise maps come from the seed (explicit maps from the Python API)
                "add_noise": DemoInput("Noise injection", info="SEAN adds noise in every layer, also at test time",
                                       control=Choice([("on, as the original (the seed changes the image)", True),
                                                       ("off (deterministic)", False)])),
                "region_style_image": DemoInput(
                    "Region style image (optional)",
                    info="A second appearance source, for the regions picked below only"),
                "region_style_label_map": DemoInput(
                    "Region style image's label map (optional)",
                    info="Its segmentation; without it the label map itself is used"),
                "region_style_classes": DemoInput(
                    "Regions styled by the region style image", control=ClassSubset(),
                    info="These classes take their style codes from the region style image, all others from the "
                    "style image"),
            },
            deterministic_when={"add_noise": (False,)},
        )

    @property
    def class_names(self) -> tuple[str, ...]:
        """Names of the style classes (the label space's names, or ids when it has fewer)."""
        names = get_label_space(self.config.label_space).names
        if len(names) >= self.config.num_style_classes:
            return tuple(names[: self.config.num_style_classes])
        return tuple(str(i) for i in range(self.config.num_style_classes))

    def _uses_fast_path(self) -> bool:
        return self.fast_inference and frozen_inference(self)

    def _latent_size(self, size: tuple[int, int]) -> tuple[int, int]:
        factor = self.config.upsampling_factor
        if size[0] % factor or size[1] % factor:
            expected = tuple(self.config.image_size)
            raise ValueError(
                f"label_map is {size[0]}x{size[1]} (HxW); this model needs sizes divisible by {factor} "
                f"(num_upsampling_layers={self.config.num_upsampling_layers!r}); its native size is "
                f"{expected[0]}x{expected[1]} (LabelMapProcessor resizes to it)"
            )
        return size[0] // factor, size[1] // factor

    def encode_styles(self, style_image: torch.Tensor, label_map: torch.Tensor) -> SEANStyles:
        """Region style codes of a style image, one per class of its label map.

        Args:
            style_image (`FloatTensor[B, 3, H, W]` in [-1, 1]): H and W divisible by 4.
            label_map (`LongTensor[B, H', W']`): the style image's segmentation in the model's label space
                (nearest-resized to the encoder's feature map).

        Returns:
            `SEANStyles` with codes `[B, 6, num_classes, style_dim]` (the same codes for every block).
        """
        if not isinstance(style_image, torch.Tensor) or style_image.dim() != 4 or style_image.shape[1] != 3:
            shape = tuple(style_image.shape) if isinstance(style_image, torch.Tensor) else type(style_image).__name__
            raise ValueError(f"style_image must be a [B, 3, H, W] tensor in [-1, 1], got {shape}")
        if style_image.shape[-2] % 4 or style_image.shape[-1] % 4:
            raise ValueError(
                f"style_image is {style_image.shape[-2]}x{style_image.shape[-1]}; the style encoder needs sizes "
                "divisible by 4 (resize it to the label map's size; the pipeline does this)"
            )
        channels = self.prepare_label_channels(label_map)
        if channels.shape[0] != style_image.shape[0]:
            raise ValueError(
                f"style_image has batch size {style_image.shape[0]} but its label map has {channels.shape[0]}"
            )
        codes = self.encoder(style_image.to(self.device, self.dtype), channels)
        return SEANStyles.from_region_codes(codes, STYLE_BLOCKS, self.class_names)

    def noise_shapes(self, batch_size: int = 1, size: tuple[int, int] | None = None
                     ) -> dict[str, tuple[int, int, int, int]]:
        """Shapes of the noise maps `forward(noise=...)` takes: `{layer name: (batch_size, 1, h, w)}`.

        Args:
            batch_size: number of label maps B.
            size: (H, W) of the label maps (default `config.image_size`); divisible by 32 (64 with "more" layers).

        Returns:
            One entry per SEAN normalization layer, in the order they run (the order `generator` draws them): for a
            256x256 label map "head_0.norm_0", "head_0.norm_1" at 8x8, ..., "up_3.norm_s", "up_3.norm_0",
            "up_3.norm_1" at 256x256 (18 layers).
        """
        latent_size = self._latent_size(tuple(self.config.image_size) if size is None else tuple(size))
        return {name: (batch_size, 1, h, w) for name, (h, w) in self.generator.noise_layers(latent_size).items()}

    def sample_noise(self, batch_size: int = 1, size: tuple[int, int] | None = None,
                     generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Draw the noise maps of one forward pass, as `forward(generator=...)` draws them.

        `model(label_map, ..., noise=model.sample_noise(B, size, generator=g))` gives the same images, bit for bit,
        as `model(label_map, ..., generator=g')` with `g'` seeded like `g`. Each map is `N(0, 1)` noise drawn in the
        original's layout, in layer order (a CPU generator seeded with s gives the original code's noise after
        `torch.manual_seed(s)`).

        Args:
            batch_size: number of label maps B (a batch-1 set is shared by every image of a larger batch).
            size: (H, W) of the label maps (default `config.image_size`).
            generator: the random source; None uses torch's global generator.

        Returns:
            `{layer name: FloatTensor[batch_size, 1, h, w]}` (float32, on the generator's device, or the model's
            without a generator), keyed and ordered as `noise_shapes`.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        device = generator.device if generator is not None else self.device
        return {name: sample_noise_map(b, (h, w), generator, device)
                for name, (b, _, h, w) in self.noise_shapes(batch_size, size).items()}

    def _check_noise(self, noise: Mapping[str, torch.Tensor], batch_size: int, size: tuple[int, int]
                     ) -> dict[str, torch.Tensor]:
        """Validate explicit noise maps against the layers of this model at this label-map size."""
        return check_tensor_set(
            noise, self.noise_shapes(batch_size, size), argument="noise", element="map",
            dtype_ok=torch.Tensor.is_floating_point, dtype_name="floating-point", size=size,
            hint="model.sample_noise(batch_size, size, generator) draws a complete set",
        )

    def _check_styles(self, styles: SEANStyles, batch_size: int) -> torch.Tensor:
        if not isinstance(styles, SEANStyles):
            raise TypeError(f"styles must be SEANStyles (from encode_styles or SEANStyles.load), got "
                            f"{type(styles).__name__}")
        expected = (len(STYLE_BLOCKS), self.config.num_style_classes, self.config.style_dim)
        if tuple(styles.codes.shape[1:]) != expected:
            raise ValueError(f"styles have codes {tuple(styles.codes.shape)}; this model needs [B, {expected[0]}, "
                             f"{expected[1]}, {expected[2]}]")
        codes = styles.codes.to(self.device, self.dtype)
        if codes.shape[0] == 1 and batch_size > 1:
            codes = codes.expand(batch_size, -1, -1, -1)
        if codes.shape[0] != batch_size:
            raise ValueError(f"styles have batch size {codes.shape[0]} but label_map has {batch_size}")
        return codes

    def forward(
        self,
        label_map: torch.Tensor,
        style_image: torch.Tensor | None = None,
        style_label_map: torch.Tensor | None = None,
        styles: SEANStyles | None = None,
        add_noise: bool = True,
        region_style_image: torch.Tensor | None = None,
        region_style_label_map: torch.Tensor | None = None,
        region_style_classes: Sequence[int | str] | None = None,
        noise: Mapping[str, torch.Tensor] | None = None,
        generator: torch.Generator | None = None,
        return_dict: bool = True,
    ) -> SEANOutput | tuple:
        """Generate images.

        Args:
            label_map (`LongTensor[B, H, W]`): raw label ids of the model's label space (sizes divisible by 32).
            style_image (`FloatTensor[B, 3, H', W']` in [-1, 1], *optional*): the appearance source.
            style_label_map (`LongTensor[B, H'', W'']`, *optional*): the style image's segmentation; defaults to
                `label_map` (reconstruction, as the original's test mode).
            styles (`SEANStyles`, *optional*): region style codes instead of a style image (batch 1 is broadcast).
            add_noise (`bool`): SEAN's noise injection (on in the original, also at test time); False switches it
                off, which makes the output deterministic.
            region_style_image (`FloatTensor[B, 3, H', W']` in [-1, 1], *optional*): a second style image whose codes
                replace those of `region_style_classes` (in every block): `styles.swap(region_style_classes,
                encode_styles(region_style_image, region_style_label_map))`.
            region_style_label_map (`LongTensor[B, H'', W'']`, *optional*): its segmentation; defaults to
                `label_map`.
            region_style_classes (list of class ids or names, *optional*): the regions styled by
                `region_style_image`; required with it.
            noise (`dict[str, FloatTensor[B, 1, h, w]]`, *optional*): the noise maps, one per normalization layer,
                instead of drawing them from `generator` (which is then unused); names and shapes as
                `noise_shapes(B, (H, W))`, a batch-1 map is shared by every image. `sample_noise` draws them.
                Not allowed with `add_noise=False`.
            generator (`torch.Generator`, *optional*): source of the noise (torch's global generator when None).

        Returns:
            `SEANOutput` with `images` `[B, 3, H, W]` in [-1, 1] and the `styles` used.
        """
        if (style_image is None) == (styles is None):
            raise ValueError(
                "SEAN needs exactly one style source: style_image (with style_label_map, its segmentation; default "
                "the label map itself) or styles (SEANStyles from encode_styles)"
            )
        channels = self.prepare_label_channels(label_map)
        size = tuple(channels.shape[-2:])
        latent_size = self._latent_size(size)
        if noise is not None:
            if not add_noise:
                raise ValueError("noise maps were given but add_noise=False switches noise injection off; pass "
                                 "one or the other")
            noise = self._check_noise(noise, channels.shape[0], size)
            for key, value in noise.items():
                check_finite(value, f"noise[{key!r}]")
        if styles is None:
            styles = self.encode_styles(style_image, label_map if style_label_map is None else style_label_map)
        codes = self._check_styles(styles, channels.shape[0])
        if region_style_image is not None or region_style_label_map is not None or region_style_classes:
            if region_style_image is None or not region_style_classes:
                raise ValueError(
                    "region_style_image and region_style_classes go together (region_style_label_map only with "
                    "them): the classes (ids or names) say which regions take their style from the region style image"
                )
            source = self.encode_styles(region_style_image, label_map if region_style_label_map is None
                                        else region_style_label_map)
            styles = SEANStyles(codes, styles.block_names, styles.class_names).swap(list(region_style_classes), source)
            codes = styles.codes

        if self._uses_fast_path():
            seg = SEANLayout(channels, self.config.num_label_channels, self.config.spade_kernel_size)
        else:
            seg = one_hot_channels(channels, self.config.num_label_channels, dtype=self.dtype)
        if add_noise and noise is None:  # all maps up front: the per-layer draws in order (nothing else draws)
            noise = self.sample_noise(channels.shape[0], size, generator)
        # In eval mode spectral norm is a fixed rescaling: compute each normalised weight once per forward.
        cache = parametrize.cached() if not self.training else contextlib.nullcontext()
        with cache:
            images = self.generator(seg, codes, latent_size, noise)
        if not return_dict:
            return (images, styles)
        return SEANOutput(images=images, styles=styles)


class SEANDiscriminator(SEANPreTrainedModel):
    """SEAN's multi-scale PatchGAN on `cat(one-hot label map, image)` (SPADE's, with SEAN's 3 stride-2 stages).

    Shapes: `forward(semantics [B, semantic_nc, H, W], images [B, 3, H, W]) -> list[list[Tensor]]` (per scale, the
    features of every stage; the last entry of each scale holds the patch logits).
    """

    main_input_name = "semantics"

    def __init__(self, config: SEANConfig):
        super().__init__(config)
        self.discriminator = MultiscaleDiscriminator(
            config.semantic_nc + 3, num_d=config.num_d, ndf=config.ndf, n_layers=config.n_layers_d,
            norm=config.discriminator_norm, padding=2, last_stride_one=False,
        )
        self.post_init()

    def forward(self, semantics: torch.Tensor, images: torch.Tensor) -> list[list[torch.Tensor]]:
        return self.discriminator(torch.cat([semantics, images], dim=1))
