"""CRN, the cascaded refinement network (Chen & Koltun, ICCV 2017).

Read top to bottom: the refinement module, the generator (a chain of modules from a 4x8 grid up to the image size,
each fed the upsampled features of the previous one and the label map at its own resolution), then `CRNModel`,
which turns label ids into k images at once. There is no discriminator: CRN is trained with a perceptual loss
alone (`labelsynth.losses.diversity`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ...hub import ModelCardInfo
from ...inputs import Choice, DemoInput, DemoSpec
from ...modeling_utils import LabelSynthPreTrainedModel, LabelToImageOutput, one_hot_channels
from .configuration_crn import CRNConfig


class CRNRefinementModule(nn.Module):
    """Two [3x3 conv (no bias) -> layer norm -> LeakyReLU(0.2)] layers at one resolution.

    The layer norm is TF-slim's `layer_norm` as the original uses it: statistics over (C, H, W) of each sample,
    a learned scale and shift per channel -- i.e. `GroupNorm` with a single group.

    Shapes: `forward(x [B, in_channels, H, W]) -> [B, channels, H, W]`.
    """

    def __init__(self, in_channels: int, channels: int, eps: float = 1e-12, negative_slope: float = 0.2):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, padding=1, bias=False)
        self.norm1 = nn.GroupNorm(1, channels, eps=eps)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.norm2 = nn.GroupNorm(1, channels, eps=eps)
        self.negative_slope = negative_slope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.norm1(self.conv1(x)), self.negative_slope)
        return F.leaky_relu(self.norm2(self.conv2(x)), self.negative_slope)


def label_pyramid(semantics: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """The semantic map at `levels` resolutions, finest first, each the 2x2 area average of the previous one.

    The original area-resizes (`tf.image.resize_area`) by exactly 2 at every module, so a downsampled map holds the
    fraction of each class in a cell (the channels still sum to one).
    """
    pyramid = [semantics]
    for _ in range(levels - 1):
        pyramid.append(F.avg_pool2d(pyramid[-1], 2))
    return pyramid


class CRNGenerator(nn.Module):
    """Refinement modules from the coarsest grid to the image size, then a 1x1 conv to 3k channels.

    Module i (coarsest = 0) sees `cat(bilinear-upsampled features of module i-1, semantic map at its size)`; the
    first sees the semantic map alone. Upsampling is bilinear with `align_corners=True`, as the original's
    `tf.image.resize_bilinear(..., align_corners=True)`. The head has no activation: images are its raw output
    (the original's `(x + 1) / 2 * 255` maps exactly this range to 0..255).

    Shapes: `forward(semantics [B, semantic_nc, H, W]) -> [B, k, 3, H, W]`, with H, W divisible by
    `config.downsampling_factor`.
    """

    def __init__(self, config: CRNConfig):
        super().__init__()
        widths = config.module_channels
        in_channels = [config.semantic_nc] + [w + config.semantic_nc for w in widths[:-1]]
        self.blocks = nn.ModuleList(
            CRNRefinementModule(cin, cout, config.layer_norm_eps, config.negative_slope)
            for cin, cout in zip(in_channels, widths)
        )
        self.num_outputs = config.num_outputs
        self.head = nn.Conv2d(widths[-1], 3 * config.num_outputs, 1)

    def forward(self, semantics: torch.Tensor) -> torch.Tensor:
        pyramid = label_pyramid(semantics, len(self.blocks))
        x = None
        for block, labels in zip(self.blocks, reversed(pyramid)):
            if x is not None:
                x = F.interpolate(x, size=labels.shape[-2:], mode="bilinear", align_corners=True)
                labels = torch.cat([x, labels], dim=1)
            x = block(labels)
        out = self.head(x)
        batch, _, height, width = out.shape
        # The original's head lays its 3k channels out colour-major (channel c * k + j is colour c of image j).
        return out.view(batch, 3, self.num_outputs, height, width).transpose(1, 2)


@dataclass
class CRNOutput(LabelToImageOutput):
    """Output of `CRNModel`.

    Args:
        images (`FloatTensor[B, 3, H, W]`): the selected image of each label map (see `output_index`), clipped to
            [-1, 1] as the original clips its outputs to 0..255.
        candidates (`FloatTensor[B, k, 3, H, W]`): all k images generated in the one pass, unclipped (what the
            diversity loss trains).
        output_index (`LongTensor[B]`): which candidate `images` holds.
    """

    candidates: torch.FloatTensor | None = None
    output_index: torch.LongTensor | None = None


CRN_CARD_INFO = ModelCardInfo(
    architecture="CRN",
    paper_title="Photographic Image Synthesis with Cascaded Refinement Networks",
    paper_url="https://arxiv.org/abs/1707.09405",
    arxiv_id="1707.09405",
    authors=("Qifeng Chen", "Vladlen Koltun"),
    original_repo="https://github.com/CQFIO/PhotographicImageSynthesis",
    weights_license="mit",
    description=(
        "CRN (cascaded refinement network) synthesizes a photo from a semantic label map with a feed-forward "
        "chain of refinement modules, from a 4x8 grid up to the full resolution, each seeing the label map at its "
        "own scale. It is trained without a discriminator, by a VGG-19 feature-matching loss; the 256p models "
        "produce 9 different images of one layout in a single pass (diversity loss)."
    ),
    citation=(
        "@inproceedings{chen2017photographic,\n  title={Photographic Image Synthesis with Cascaded Refinement "
        "Networks},\n  author={Chen, Qifeng and Koltun, Vladlen},\n  booktitle={IEEE International Conference on "
        "Computer Vision (ICCV)},\n  year={2017}\n}"
    ),
    tags=("crn", "cascaded-refinement-network"),
    limitations=(
        "The released models generate at a fixed 1:2 aspect ratio (Cityscapes / GTA5 street scenes).",
        ("The 256p models generate 9 images per label map in one pass: the pipeline's `seed` picks one of them, "
         "`output_index=j` (0..8) selects image j, and `CRNModel(...).candidates` holds all of them."),
        "There is no noise input: the same label map and `output_index` always give the same image.",
    ),
    # The CRN paper reports user studies (pairwise preferences) rather than these scores; the SPADE paper's Table 1
    # re-evaluated CRN on Cityscapes (DRN-D-105 segmentation, FID).
    paper_metrics=tuple(
        {"dataset": "Cityscapes", "metric": metric, "value": value, "source": "SPADE paper, Table 1 (CRN row)"}
        for metric, value in (("mIoU", 52.4), ("pixel accuracy", 77.1), ("FID", 104.7))
    ),
)


class CRNPreTrainedModel(LabelSynthPreTrainedModel):
    config_class = CRNConfig
    base_model_prefix = "crn"
    model_card_info = CRN_CARD_INFO

    def _init_weights(self, module: nn.Module) -> None:
        """TF-slim's defaults, as the original: Xavier-uniform convs, zero biases, layer norm scale 1 / shift 0."""
        if isinstance(module, nn.Conv2d):
            nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.GroupNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


class CRNModel(CRNPreTrainedModel):
    """CRN image synthesis: one label map in, k images out in one pass (k = `config.num_outputs`).

    `images` holds one of the k candidates per label map: `output_index` picks it; without it, a `generator`
    draws it at random (so the pipeline's `seed` chooses among the k images); with neither, candidate 0.
    `candidates` always holds all k. The network itself is deterministic.
    """

    pipeline_inputs: ClassVar[dict[str, str]] = {"output_index": "value"}

    def __init__(self, config: CRNConfig):
        super().__init__(config)
        self.generator = CRNGenerator(config)
        self.post_init()

    @classmethod
    def demo_spec(cls, config: CRNConfig) -> DemoSpec:
        """What the Gradio demo shows besides the label map (`labelsynth.inputs`): with k > 1 images per pass, which
        one to show (drawn from the seed unless picked); k = 1 models are deterministic and show nothing else."""
        k = config.num_outputs
        if k == 1:
            return DemoSpec(inputs={"output_index": None}, stochastic=False)
        pick = DemoInput("Output image", control=Choice([("drawn from the seed", "")] +
                                                        [(f"image {i} of {k}", i) for i in range(k)]),
                         info=f"The network makes {k} different images of the label map in one pass")
        return DemoSpec(inputs={"output_index": pick}, deterministic_when={"output_index": tuple(range(k))})

    def build_semantic_input(self, label_map: torch.Tensor, instance_map: torch.Tensor | None = None) -> torch.Tensor:
        """One-hot semantic input `FloatTensor[B, semantic_nc, H, W]` (20 channels for the released models).

        Ids are validated against the label space, then mapped to channels by `config.label_to_channel`
        (Cityscapes labelIds -> 19 trainId channels + void).
        """
        if instance_map is not None:
            raise ValueError("CRN takes no instance map; pass the label map alone")
        channels = self.prepare_label_channels(label_map)
        if self.config.label_to_channel is not None:
            table = torch.tensor(self.config.label_to_channel, device=channels.device)
            channels = table[channels]
        return one_hot_channels(channels, self.config.semantic_nc, dtype=self.dtype)

    def _check_size(self, size: tuple[int, int]) -> None:
        factor = self.config.downsampling_factor
        if size[0] % factor or size[1] % factor:
            expected = tuple(self.config.image_size)
            raise ValueError(
                f"label_map is {size[0]}x{size[1]} (HxW); this CRN has {len(self.config.module_channels)} refinement "
                f"modules and needs sizes divisible by {factor}; its native size is {expected[0]}x{expected[1]} "
                "(LabelMapProcessor resizes to it)"
            )

    def _select(self, batch_size: int, output_index: int | torch.Tensor | None,
                generator: torch.Generator | None) -> torch.Tensor:
        k = self.config.num_outputs
        if output_index is None:
            if generator is None:
                return torch.zeros(batch_size, dtype=torch.long)
            return torch.randint(k, (batch_size,), generator=generator, device=generator.device).cpu()
        index = torch.as_tensor(output_index, dtype=torch.long).cpu().reshape(-1)
        if index.numel() == 1:
            index = index.expand(batch_size)
        if index.numel() != batch_size:
            raise ValueError(f"output_index must be one int or one per label map ({batch_size}), got {index.numel()}")
        if bool(((index < 0) | (index >= k)).any()):
            raise ValueError(f"output_index must lie in 0..{k - 1} (this model generates {k} images), got "
                             f"{index.tolist()}")
        return index

    def forward(
        self,
        label_map: torch.Tensor,
        output_index: int | torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        return_dict: bool = True,
    ) -> CRNOutput | tuple:
        """Generate images.

        Args:
            label_map (`LongTensor[B, H, W]`): raw label ids of the model's label space (Cityscapes labelIds for
                the released models). H and W must be divisible by `config.downsampling_factor`.
            output_index (`int` or `LongTensor[B]`, *optional*): which of the k candidates goes to `images`.
            generator (`torch.Generator`, *optional*): draws `output_index` when it is not given.

        Returns:
            `CRNOutput` with `images [B, 3, H, W]` in [-1, 1], `candidates [B, k, 3, H, W]` and `output_index`
            (the tuple `(images, candidates, output_index)` with `return_dict=False`).
        """
        semantics = self.build_semantic_input(label_map)
        self._check_size(tuple(semantics.shape[-2:]))
        index = self._select(semantics.shape[0], output_index, generator)
        candidates = self.generator(semantics)
        images = candidates[torch.arange(candidates.shape[0]), index.to(candidates.device)].clamp(-1, 1)
        if not return_dict:
            return (images, candidates, index)
        return CRNOutput(images=images, candidates=candidates, output_index=index)
