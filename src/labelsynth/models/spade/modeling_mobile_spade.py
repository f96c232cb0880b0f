"""Compressed GauGAN (GAN Compression, Li et al., CVPR 2020): SPADE's generator with searched narrow widths and
separable convs in its normalization layers (the original's `sub_mobile_spade` generator).

Read top to bottom: the generator (a stack of `MobileSPADEResnetBlock`s upsampled x2 between blocks), then the
`MobileSPADEModel` that turns label ids into images. There is no discriminator or style encoder: the released model
is a distilled student, used for inference (training it needs the GAN Compression distillation, not here).
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ...hub import ModelCardInfo
from ...layers.blocks import inference_conv
from ...layers.inference_cache import frozen_inference
from ...layers.mobile_spade import MobileSPADEResnetBlock
from ...layers.normalization import SemanticLayout
from ...modeling_utils import LabelSynthPreTrainedModel, LabelToImageOutput, one_hot_channels
from .configuration_mobile_spade import MobileSPADEConfig
from .configuration_spade import UPSAMPLING_LAYERS


class MobileSPADEGenerator(nn.Module):
    """Latent grid (the downsampled label map through a 3x3 conv) -> 7 MobileSPADE residual blocks -> RGB.

    With widths w = `config.stage_widths` and hidden widths 2 * `config.channels`: fc -> w[0]; head_0, G_middle_0,
    G_middle_1 keep w[0] (inner width w[1..3], identity shortcut); up_0..up_3 go to w[4..7] (conv shortcut); then
    LeakyReLU(0.2), conv3x3 -> 3 and tanh.

    Shapes: `forward(seg, latent_size=(h, w)) -> [B, 3, h * 2**n, w * 2**n]` where `seg` is the one-hot semantic
    map `[B, semantic_nc, H, W]` (plain path) or a `SemanticLayout` (fast path).
    """

    def __init__(self, config: MobileSPADEConfig):
        super().__init__()
        self.num_upsampling = UPSAMPLING_LAYERS[config.num_upsampling_layers]
        widths, hidden = config.stage_widths, [2 * c for c in config.channels]
        self.fc = nn.Conv2d(config.semantic_nc, widths[0], 3, padding=1)

        def block(index: int, in_nc: int, learned_shortcut: bool) -> MobileSPADEResnetBlock:
            out_nc = widths[index] if learned_shortcut else in_nc
            return MobileSPADEResnetBlock(in_nc, widths[index], out_nc, config.semantic_nc, hidden[index],
                                          learned_shortcut, norm=config.param_free_norm)

        self.head_0 = block(1, widths[0], False)
        self.G_middle_0 = block(2, widths[0], False)
        self.G_middle_1 = block(3, widths[0], False)
        self.up_0 = block(4, widths[0], True)
        self.up_1 = block(5, widths[4], True)
        self.up_2 = block(6, widths[5], True)
        self.up_3 = block(7, widths[6], True)
        self.conv_img = nn.Conv2d(widths[7], 3, 3, padding=1)

    def forward(self, seg: torch.Tensor | SemanticLayout, latent_size: tuple[int, int]) -> torch.Tensor:
        fast = isinstance(seg, SemanticLayout)
        if fast:
            # channels-last activations match the fast path's pixel-major scale/shift
            x = inference_conv(self.fc, seg.dense(latent_size, dtype=self.fc.weight.dtype)
                               .contiguous(memory_format=torch.channels_last))
        else:
            x = self.fc(F.interpolate(seg, size=latent_size, mode="nearest"))
        x = self.head_0(x, seg)
        x = self.G_middle_0(x, seg, upsample=True)
        x = self.G_middle_1(x, seg, upsample=self.num_upsampling > 5)
        for stage in (self.up_0, self.up_1, self.up_2, self.up_3):
            x = stage(x, seg, upsample=True)
        x = F.leaky_relu(x, 0.2, inplace=fast)  # the fast path's x is the last block's own output
        return torch.tanh(inference_conv(self.conv_img, x) if fast else self.conv_img(x))


MOBILE_SPADE_CARD_INFO = ModelCardInfo(
    architecture="Compressed GauGAN",
    paper_title="GAN Compression: Efficient Architectures for Interactive Conditional GANs",
    paper_url="https://arxiv.org/abs/2003.08936",
    arxiv_id="2003.08936",
    authors=("Muyang Li", "Ji Lin", "Yaoyao Ding", "Zhijian Liu", "Jun-Yan Zhu", "Song Han"),
    original_repo="https://github.com/mit-han-lab/gan-compression",
    # The code is BSD-style, but its GauGAN files carry NVIDIA's CC BY-NC-SA 4.0 header and the weights were
    # distilled from NVIDIA's CC BY-NC-SA 4.0 SPADE teacher; no separate terms are stated for the weights.
    weights_license="cc-by-nc-sa-4.0",
    description=(
        "A compressed GauGAN/SPADE generator found by GAN Compression: a student distilled from the full SPADE "
        "Cityscapes generator, with searched narrow widths and depthwise-separable convs in its SPADE layers "
        "(21.0 M parameters and about 31 G MACs instead of 93 M and 281 G), for interactive editing."
    ),
    citation=(
        "@inproceedings{li2020gan,\n  title={GAN Compression: Efficient Architectures for Interactive Conditional "
        "GANs},\n  author={Li, Muyang and Lin, Ji and Ding, Yaoyao and Liu, Zhijian and Zhu, Jun-Yan and Han, "
        "Song},\n  booktitle={Proceedings of the IEEE Conference on Computer Vision and Pattern Recognition},\n"
        "  year={2020}\n}"
    ),
    tags=("spade", "gaugan", "gan-compression"),
    paper_metrics=(
        {"dataset": "Cityscapes", "metric": "mIoU", "value": 60.29,
         "source": "GAN Compression README (retrained compressed GauGAN, 21.0M parameters)"},
        {"dataset": "Cityscapes", "metric": "FID", "value": 56.43,
         "source": "GAN Compression README (retrained compressed GauGAN, 21.0M parameters)"},
        {"dataset": "Cityscapes", "metric": "mIoU", "value": 61.22,
         "source": "GAN Compression paper model (20.4M parameters), README table"},
    ),
)


class MobileSPADEModel(LabelSynthPreTrainedModel):
    """Compressed GauGAN image synthesis from a label map (deterministic: no latent).

    The fast inference path (`labelsynth.layers.mobile_spade`) is used in eval mode when gradients are off (as the
    pipeline runs); set `model.fast_inference = False` for the plain computation.
    """

    config_class = MobileSPADEConfig
    base_model_prefix = "mobile_spade"
    model_card_info = MOBILE_SPADE_CARD_INFO
    pipeline_inputs: ClassVar[dict[str, str]] = {"instance_map": "instance"}

    def __init__(self, config: MobileSPADEConfig):
        super().__init__(config)
        self.generator = MobileSPADEGenerator(config)
        self.fast_inference = True
        self.post_init()

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

    def forward(self, label_map: torch.Tensor, instance_map: torch.Tensor | None = None,
                generator: torch.Generator | None = None, return_dict: bool = True) -> LabelToImageOutput | tuple:
        """Generate images.

        Args:
            label_map (`LongTensor[B, H, W]`): raw label ids of the model's label space (Cityscapes labelIds).
            instance_map (`LongTensor[B, H, W]`, *optional*): instance ids; required when `use_instance_edges`.
            generator (`torch.Generator`, *optional*): accepted for the pipeline's uniform call; the model draws
                no randomness.

        Returns:
            `LabelToImageOutput` with `images` `[B, 3, H, W]` in [-1, 1].
        """
        channels = self.prepare_label_channels(label_map)
        size = tuple(channels.shape[-2:])
        latent_size = self._latent_size(size)
        edges = self.prepare_instance_edges(instance_map, size)
        if self._uses_fast_path():
            seg = SemanticLayout(channels, edges, self.config.num_label_channels, 3)
        else:
            seg = one_hot_channels(channels, self.config.num_label_channels, dtype=self.dtype)
            if edges is not None:
                seg = torch.cat([seg, edges.to(self.dtype)], dim=1)
        images = self.generator(seg, latent_size)
        if not return_dict:
            return (images,)
        return LabelToImageOutput(images=images)
