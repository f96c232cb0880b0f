"""pix2pixHD (Wang et al., CVPR 2018): coarse-to-fine generator, instance-wise feature encoder with its feature bank,
and the multi-scale discriminator.

Read top to bottom: the conv blocks, the global generator G1, the local enhancer G2 and the generator that stacks
them, the feature encoder (G1's layout without residual blocks, followed by instance-wise average pooling), the
feature-bank sampling, then `Pix2PixHDModel` (label ids -> image) and `Pix2PixHDDiscriminator` (for training).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ...hub import ModelCardInfo
from ...inputs import DemoInput, DemoSpec, PerClassChoice
from ...layers.blocks import ResnetBlock, norm_2d
from ...layers.discriminators import MultiscaleDiscriminator
from ...modeling_utils import LabelSynthPreTrainedModel, LabelToImageOutput, _as_batched_map, one_hot_channels
from .configuration_pix2pixhd import Pix2PixHDConfig

# An int (the same cluster for every instance) or {instance id or class id: cluster index}.
ClusterChoice = int | Mapping[int, int]


class ConvNormReLU(nn.Module):
    """`relu(norm(conv(x)))`, the unit every pix2pixHD network is built from (keys `conv.*`, `norm.*`)."""

    def __init__(self, conv: nn.Module, norm: str):
        super().__init__()
        self.conv = conv
        self.norm = norm_2d(norm, conv.out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.norm(self.conv(x)))


def _stem(in_nc: int, out_nc: int, norm: str) -> ConvNormReLU:
    """7x7 conv on the reflection-padded input."""
    return ConvNormReLU(nn.Conv2d(in_nc, out_nc, 7, padding=3, padding_mode="reflect"), norm)


def _down(in_nc: int, out_nc: int, norm: str) -> ConvNormReLU:
    """3x3 stride-2 conv (zero padding): halves the size."""
    return ConvNormReLU(nn.Conv2d(in_nc, out_nc, 3, stride=2, padding=1), norm)


def _up(in_nc: int, out_nc: int, norm: str) -> ConvNormReLU:
    """3x3 stride-2 transposed conv: doubles the size."""
    return ConvNormReLU(nn.ConvTranspose2d(in_nc, out_nc, 3, stride=2, padding=1, output_padding=1), norm)


def _to_output(in_nc: int, out_nc: int) -> nn.Conv2d:
    """7x7 conv on the reflection-padded input (followed by tanh)."""
    return nn.Conv2d(in_nc, out_nc, 7, padding=3, padding_mode="reflect")


def downsample_input(x: torch.Tensor) -> torch.Tensor:
    """The input pyramid of the local enhancers and of the multi-scale discriminator: 3x3 average pooling with
    stride 2, padding not counted."""
    return F.avg_pool2d(x, kernel_size=3, stride=2, padding=1, count_include_pad=False)


class Pix2PixHDGlobalGenerator(nn.Module):
    """The global generator G1: an encoder-residual-decoder network (Johnson et al. 2016).

    stem: 7x7 conv in -> ngf; `n_downsampling` stride-2 convs doubling the width; `n_blocks` `ResnetBlock`s at
    `ngf * 2**n_downsampling`; `n_downsampling` transposed convs halving it back to ngf; every conv followed by the
    norm and ReLU. Then a 7x7 conv -> `out_nc` and tanh, unless `with_output=False` (inside local enhancers, where
    its ngf-channel features are handed on).

    Shapes: `forward(x [B, in_nc, H, W]) -> [B, out_nc, H, W]` in [-1, 1] (or `[B, ngf, H, W]` features), with H and
    W multiples of `2**n_downsampling`.
    """

    def __init__(self, in_nc: int, out_nc: int, ngf: int, n_downsampling: int, n_blocks: int, norm: str,
                 with_output: bool = True):
        super().__init__()
        self.stem = _stem(in_nc, ngf, norm)
        self.downsample = nn.ModuleList(_down(ngf * 2**i, ngf * 2 ** (i + 1), norm) for i in range(n_downsampling))
        bottleneck = ngf * 2**n_downsampling
        self.res_blocks = nn.ModuleList(ResnetBlock(bottleneck, norm) for _ in range(n_blocks))
        self.upsample = nn.ModuleList(_up(ngf * 2 ** (i + 1), ngf * 2**i, norm) for i in reversed(range(n_downsampling)))
        self.to_output = _to_output(ngf, out_nc) if with_output else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for layer in (*self.downsample, *self.res_blocks, *self.upsample):
            x = layer(x)
        return torch.tanh(self.to_output(x)) if self.to_output is not None else x


class Pix2PixHDLocalEnhancer(nn.Module):
    """A local enhancer G2: runs at twice the resolution of the network it wraps.

    Its front end (7x7 conv in -> ngf, stride-2 conv -> 2 ngf) sees the input at its own resolution; the result is
    **added** to the wrapped network's 2ngf-channel features, then `n_blocks` residual blocks at 2 ngf and a
    transposed conv back to ngf; the outermost enhancer ends with a 7x7 conv -> 3 and tanh.

    Shapes: `forward(x [B, in_nc, H, W], inner [B, 2 ngf, H/2, W/2]) -> [B, 3, H, W]` (outermost) or
    `[B, ngf, H, W]`.
    """

    def __init__(self, in_nc: int, ngf: int, n_blocks: int, norm: str, out_nc: int | None):
        super().__init__()
        self.stem = _stem(in_nc, ngf, norm)
        self.downsample = _down(ngf, ngf * 2, norm)
        self.res_blocks = nn.ModuleList(ResnetBlock(ngf * 2, norm) for _ in range(n_blocks))
        self.upsample = _up(ngf * 2, ngf, norm)
        self.to_output = _to_output(ngf, out_nc) if out_nc is not None else None

    def forward(self, x: torch.Tensor, inner: torch.Tensor) -> torch.Tensor:
        x = self.downsample(self.stem(x)) + inner
        for block in self.res_blocks:
            x = block(x)
        x = self.upsample(x)
        return torch.tanh(self.to_output(x)) if self.to_output is not None else x


class Pix2PixHDGenerator(nn.Module):
    """G = G1 alone ("global") or G1 wrapped in `n_local_enhancers` local enhancers ("local", coarse to fine).

    With local enhancers the input pyramid is built by `downsample_input`; G1 (width `ngf * 2**n_local_enhancers`,
    without its output conv) runs on the coarsest level and each enhancer, innermost first
    (`local_enhancers[0]`), doubles the resolution.

    Shapes: `forward(x [B, generator_input_nc, H, W]) -> [B, 3, H, W]` in [-1, 1].
    """

    def __init__(self, config: Pix2PixHDConfig):
        super().__init__()
        in_nc, num_local = config.generator_input_nc, config.num_local_enhancers
        self.global_generator = Pix2PixHDGlobalGenerator(
            in_nc, 3, config.global_ngf, config.n_downsample_global, config.n_blocks_global, config.norm,
            with_output=num_local == 0,
        )
        self.local_enhancers = nn.ModuleList(
            Pix2PixHDLocalEnhancer(in_nc, config.ngf * 2 ** (num_local - n), config.n_blocks_local, config.norm,
                                   out_nc=3 if n == num_local else None)
            for n in range(1, num_local + 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pyramid = [x]
        for _ in self.local_enhancers:
            pyramid.append(downsample_input(pyramid[-1]))
        out = self.global_generator(pyramid[-1])
        for level, enhancer in zip(reversed(pyramid[:-1]), self.local_enhancers):
            out = enhancer(level, out)
        return out


def instance_average_pool(features: torch.Tensor, segments: torch.Tensor) -> torch.Tensor:
    """Replace every feature vector by its mean over the segment (instance) it belongs to.

    Args:
        features (`FloatTensor[B, C, H, W]`): per-pixel features.
        segments (`LongTensor[B, H, W]`): segment ids (instance ids, or label ids for label-wise pooling).

    Returns:
        `FloatTensor[B, C, H, W]`, constant over each segment of each image. Differentiable (the mean's gradient
        is spread over the segment), as the encoder is trained through it.
    """
    pooled = []
    for feature, segment in zip(features, segments):
        _, inverse = torch.unique(segment, return_inverse=True)
        inverse = inverse.flatten()
        count = torch.bincount(inverse).to(feature.dtype)
        sums = feature.new_zeros(feature.shape[0], count.numel()).index_add_(1, inverse, feature.flatten(1))
        pooled.append((sums / count)[:, inverse].view_as(feature))
    return torch.stack(pooled)


class Pix2PixHDEncoder(Pix2PixHDGlobalGenerator):
    """The instance-wise feature encoder E: G1's layout without residual blocks (image -> `feat_num` channels, tanh),
    followed by `instance_average_pool`, so each instance gets one feature vector (its appearance code).

    Shapes: `forward(image [B, 3, H, W] in [-1, 1], segments LongTensor[B, H, W]) -> [B, feat_num, H, W]`.
    """

    def __init__(self, config: Pix2PixHDConfig):
        super().__init__(3, config.feat_num, config.nef, config.n_downsample_e, 0, config.norm)

    def forward(self, image: torch.Tensor, segments: torch.Tensor) -> torch.Tensor:
        return instance_average_pool(super().forward(image), segments)


def segment_classes(segments: torch.Tensor, channels: torch.Tensor, num_classes: int
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Segment ids of one image, the class of each (its most frequent label) and every pixel's segment index.

    Args:
        segments (`LongTensor[H, W]`), channels (`LongTensor[H, W]` of label channel indices).

    Returns:
        `(ids [S], classes [S], inverse [H, W])` with ids sorted ascending.
    """
    ids, inverse = torch.unique(segments, return_inverse=True)
    pairs = inverse.flatten() * num_classes + channels.flatten()
    votes = torch.bincount(pairs, minlength=ids.numel() * num_classes).view(ids.numel(), num_classes)
    return ids, votes.argmax(dim=1), inverse


@dataclass
class Pix2PixHDOutput(LabelToImageOutput):
    """`LabelToImageOutput` plus the feature map the generator was given.

    Args:
        features (`FloatTensor[B, feat_num, H, W]`, *optional*): the per-instance features (sampled from the
            feature bank, encoded from a style image, or passed in); None for models without the feature encoder.
    """

    features: torch.FloatTensor | None = None


PIX2PIXHD_CARD_INFO = ModelCardInfo(
    architecture="pix2pixHD",
    paper_title="High-Resolution Image Synthesis and Semantic Manipulation with Conditional GANs",
    paper_url="https://arxiv.org/abs/1711.11585",
    arxiv_id="1711.11585",
    authors=("Ting-Chun Wang", "Ming-Yu Liu", "Jun-Yan Zhu", "Andrew Tao", "Jan Kautz", "Bryan Catanzaro"),
    original_repo="https://github.com/NVIDIA/pix2pixHD",
    license_url="https://github.com/NVIDIA/pix2pixHD/blob/master/LICENSE.txt",
    weights_license="bsd",
    description=(
        "pix2pixHD generates a high-resolution photo from a semantic label map and instance boundaries. A global "
        "generator works at half resolution and local enhancers refine it coarse to fine; a multi-scale "
        "discriminator with feature matching trains it. With the instance feature encoder, each instance gets an "
        "appearance code, picked at inference from per-class k-means clusters of the training set's codes."
    ),
    citation=(
        "@inproceedings{wang2018pix2pixHD,\n  title={High-Resolution Image Synthesis and Semantic Manipulation with "
        "Conditional GANs},\n  author={Wang, Ting-Chun and Liu, Ming-Yu and Zhu, Jun-Yan and Tao, Andrew and Kautz, "
        "Jan and Catanzaro, Bryan},\n  booktitle={Proceedings of the IEEE Conference on Computer Vision and Pattern "
        "Recognition},\n  year={2018}\n}"
    ),
    tags=("pix2pixhd",),
    # Table 1 of the paper: PSPNet segmentation of the synthesized Cityscapes images (2048x1024); the real images
    # score 84.29 / 0.6857, pix2pix 78.34 / 0.3948, CRN 70.55 / 0.3483.
    paper_metrics=(
        {"dataset": "Cityscapes", "metric": "pixel accuracy (PSPNet)", "value": 83.78,
         "source": "pix2pixHD paper, Table 1"},
        {"dataset": "Cityscapes", "metric": "mean IoU (PSPNet)", "value": 0.6389, "source": "pix2pixHD paper, Table 1"},
    ),
)


class Pix2PixHDPreTrainedModel(LabelSynthPreTrainedModel):
    config_class = Pix2PixHDConfig
    base_model_prefix = "pix2pixhd"
    model_card_info = PIX2PIXHD_CARD_INFO

    def _init_weights(self, module: nn.Module) -> None:
        """The original init: conv weights N(0, 0.02), BatchNorm weights N(1, 0.02) and biases 0; conv biases keep
        PyTorch's default init."""
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(module.weight, 0.0, 0.02)
        elif isinstance(module, nn.BatchNorm2d) and module.affine:
            nn.init.normal_(module.weight, 1.0, 0.02)
            nn.init.zeros_(module.bias)


class Pix2PixHDModel(Pix2PixHDPreTrainedModel):
    """pix2pixHD image synthesis from a label map and an instance map (and, with the feature encoder, per-instance
    appearance features).

    With `config.feature_mode`, the generator also takes `feat_num` feature channels, constant over each instance.
    They come, in this order of precedence, from `features` (an explicit map), `style_image` (encoded and pooled
    over the instances, the original's `--use_encoded_image`), or the **feature bank**: per class, up to
    `n_clusters` k-means centres of the training set's instance features (`labelsynth cluster-features`, or a
    converted `features_clustered_010.npy`). From the bank, `cluster` picks the centre of every instance (an int
    for all of them, or `{instance or class id: index}`); instances left unspecified get a centre drawn at random
    from `generator` (the original's `sample_features`). The bank is stored as two buffers of the model
    (`feature_clusters`, `feature_cluster_counts`) so it travels in `model.safetensors` with the weights.
    """

    pipeline_inputs: ClassVar[dict[str, str]] = {
        "instance_map": "instance", "features": "tensor", "cluster": "value", "style_image": "image",
    }

    def __init__(self, config: Pix2PixHDConfig):
        super().__init__(config)
        self.generator = Pix2PixHDGenerator(config)
        self.encoder = Pix2PixHDEncoder(config) if config.use_features else None
        if config.use_features:
            num_classes = config.num_label_channels
            self.register_buffer("feature_clusters", torch.zeros(num_classes, config.n_clusters, config.feat_num))
            self.register_buffer("feature_cluster_counts", torch.zeros(num_classes, dtype=torch.long))
        self.post_init()

    @classmethod
    def demo_spec(cls, config: Pix2PixHDConfig, model: Pix2PixHDModel | None = None) -> DemoSpec:
        """What the Gradio demo shows besides the label map (`labelsynth.inputs`). Models without the feature
        encoder are deterministic and show only the instance map. With it: a style photo (its encoded features), and
        a cluster per class chosen among the clusters the loaded model's feature bank holds for that class (classes
        left unset get a cluster drawn from the seed); the feature map itself stays hidden."""
        if not config.use_features:
            return DemoSpec(inputs={"features": None, "cluster": None, "style_image": None}, stochastic=False)
        bank = model.feature_bank() if model is not None else {}
        style = DemoInput("Style photo (optional)", required=not bank,
                          info="A photo aligned with the label map: its encoded per-instance features set the "
                          "appearance (instead of the feature clusters)")
        cluster = None
        if bank:
            ignore = config.ignore_index
            options = {label if label < config.label_nc else ignore: [(f"cluster {k}", k) for k in range(len(c))]
                       for label, c in sorted(bank.items())}
            cluster = DemoInput("Feature cluster per class (optional)", control=PerClassChoice(options),
                                info="The appearance of every instance of a class (k-means centres of the training "
                                "set's instance features); classes left unset get a cluster drawn from the seed")
        return DemoSpec(inputs={"features": None, "cluster": cluster, "style_image": style}, stochastic=bool(bank))

    # ------------------------------------------------------------------------------------------ feature bank
    def set_feature_clusters(self, centres: Mapping[int, torch.Tensor]) -> None:
        """Fill the feature bank: `{class channel index: centres [k, feat_num]}` (k <= n_clusters); classes not
        given get no clusters (their instances get zero features)."""
        self._require_features("a feature bank")
        clusters = torch.zeros_like(self.feature_clusters)
        counts = torch.zeros_like(self.feature_cluster_counts)
        for label, centre in centres.items():
            centre = torch.as_tensor(centre, dtype=clusters.dtype)
            if not 0 <= int(label) < clusters.shape[0]:
                raise ValueError(f"feature clusters given for class {label}, outside 0..{clusters.shape[0] - 1}")
            if centre.dim() != 2 or centre.shape[1] != self.config.feat_num or centre.shape[0] > self.config.n_clusters:
                raise ValueError(
                    f"class {label}: centres must be [k <= n_clusters={self.config.n_clusters}, "
                    f"feat_num={self.config.feat_num}], got {tuple(centre.shape)}"
                )
            clusters[int(label), : centre.shape[0]] = centre
            counts[int(label)] = centre.shape[0]
        self.feature_clusters.copy_(clusters)
        self.feature_cluster_counts.copy_(counts)

    def feature_bank(self) -> dict[int, torch.Tensor]:
        """The feature bank as `{class channel index: centres [k, feat_num]}` (classes with clusters only)."""
        self._require_features("a feature bank")
        return {label: self.feature_clusters[label, :count].clone()
                for label, count in enumerate(self.feature_cluster_counts.tolist()) if count}

    def _require_features(self, what: str) -> None:
        if not self.config.use_features:
            raise ValueError(
                f"this pix2pixHD model has no feature encoder (feature_mode=None), so it has no {what}; features, "
                "cluster and style_image apply to models trained with --instance_feat / --label_feat"
            )

    def _choose_cluster(self, instance_id: int, label: int, count: int, cluster: ClusterChoice | None,
                        generator: torch.Generator | None) -> int:
        raw_label = label if label < self.config.label_nc else self.config.ignore_index
        if isinstance(cluster, Mapping):
            index = cluster.get(instance_id, cluster.get(raw_label))
        else:
            index = cluster
        if index is None:
            device = generator.device if generator is not None else "cpu"
            return int(torch.randint(count, (1,), generator=generator, device=device))
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < count:
            raise ValueError(
                f"cluster {index!r} for instance {instance_id} (class {raw_label}) is not an index of the feature "
                f"bank, which holds {count} cluster(s) for this class; use 0..{count - 1}"
            )
        return index

    def sample_features(self, label_map: torch.Tensor, segments: torch.Tensor, cluster: ClusterChoice | None = None,
                        generator: torch.Generator | None = None) -> torch.Tensor:
        """Feature map from the feature bank, one centre per instance.

        Args:
            label_map (`LongTensor[B, H, W]`): raw label ids.
            segments (`LongTensor[B, H, W]`): the instance map ("instance" mode) or the label map ("label" mode).
            cluster: an int (that centre for every instance) or `{instance id or class id: centre}` (an instance id
                takes precedence over its class id); instances not covered get a random centre from `generator`.
            generator: source of the random choices (instances in ascending id order, image by image).

        Returns:
            `FloatTensor[B, feat_num, H, W]`; instances of classes without clusters get zeros.
        """
        self._require_features("a feature bank")
        if not bool(self.feature_cluster_counts.any()):
            raise ValueError(
                "this model's feature bank is empty: run `labelsynth cluster-features` on its training data (or "
                "convert the original features_clustered_010.npy), or pass features= or style_image="
            )
        channels = self.prepare_label_channels(label_map)
        segments = _as_batched_map(segments, "instance_map").to(channels.device)
        if segments.shape != channels.shape:
            raise ValueError(f"instance_map {tuple(segments.shape)} must have the shape of the label map "
                             f"{tuple(channels.shape)} (B, H, W); resize both with nearest interpolation")
        counts = self.feature_cluster_counts.tolist()
        maps = []
        for segment, channel in zip(segments, channels):
            ids, classes, inverse = segment_classes(segment, channel, self.config.num_label_channels)
            vectors = self.feature_clusters.new_zeros(ids.numel(), self.config.feat_num)
            for j, (instance_id, label) in enumerate(zip(ids.tolist(), classes.tolist())):
                if counts[label]:
                    index = self._choose_cluster(instance_id, label, counts[label], cluster, generator)
                    vectors[j] = self.feature_clusters[label, index]
            maps.append(vectors[inverse].permute(2, 0, 1))
        return torch.stack(maps).to(self.dtype)

    def encode_features(self, image: torch.Tensor, segments: torch.Tensor) -> torch.Tensor:
        """Encode an image aligned with the label map: `[B, feat_num, H, W]`, constant over every segment
        (instance ids in "instance" mode, label ids in "label" mode)."""
        self._require_features("feature encoder")
        if image.dim() != 4 or image.shape[1] != 3:
            raise ValueError(f"style_image must be [B, 3, H, W] in [-1, 1], got shape {tuple(image.shape)}")
        segments = _as_batched_map(segments, "instance_map").to(self.device)
        if image.shape[0] != segments.shape[0] or tuple(image.shape[-2:]) != tuple(segments.shape[-2:]):
            raise ValueError(
                f"style_image {tuple(image.shape)} must have the batch size and HxW of the label map "
                f"{tuple(segments.shape)} (it is encoded over the label map's instances; the pipeline resizes it)"
            )
        return self.encoder(image.to(self.device, self.dtype), segments)

    # ------------------------------------------------------------------------------------------ generation
    def _check_size(self, size: tuple[int, int]) -> None:
        factor = self.config.size_divisor
        if size[0] % factor or size[1] % factor:
            fitted = tuple(max(factor, round(s / factor) * factor) for s in size)
            raise ValueError(
                f"label_map is {size[0]}x{size[1]} (HxW); this model needs sizes divisible by {factor} "
                f"({self.config._divisor_reason()}), e.g. {fitted[0]}x{fitted[1]}. Its native size is "
                f"{self.config.image_size[0]}x{self.config.image_size[1]} (LabelMapProcessor resizes to it)"
            )

    def _feature_input(self, label_map: torch.Tensor, instance_map: torch.Tensor | None,
                       features: torch.Tensor | None, cluster: ClusterChoice | None, style_image: torch.Tensor | None,
                       generator: torch.Generator | None, shape: tuple[int, int, int]) -> torch.Tensor:
        batch, height, width = shape
        if features is not None:
            features = features.unsqueeze(0) if features.dim() == 3 else features
            expected = (batch, self.config.feat_num, height, width)
            if tuple(features.shape) != expected:
                raise ValueError(f"features must have shape {expected} (B, feat_num, H, W), got "
                                 f"{tuple(features.shape)}")
            return features.to(self.device, self.dtype)
        if self.config.feature_mode == "label":
            segments = label_map
        elif instance_map is None:
            raise ValueError(
                "this model pools its features over instances (feature_mode='instance'), so it needs an instance_map "
                "(or explicit features=); without instances, pass the label map itself as instance_map"
            )
        else:
            segments = instance_map
        if style_image is not None:
            return self.encode_features(style_image, segments)
        return self.sample_features(label_map, segments, cluster, generator)

    def forward(
        self,
        label_map: torch.Tensor,
        instance_map: torch.Tensor | None = None,
        features: torch.Tensor | None = None,
        cluster: ClusterChoice | None = None,
        style_image: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        return_dict: bool = True,
    ) -> Pix2PixHDOutput | tuple:
        """Generate images.

        Args:
            label_map (`LongTensor[B, H, W]`): raw label ids; H and W multiples of `config.size_divisor`.
            instance_map (`LongTensor[B, H, W]`, *optional*): instance ids (e.g. Cityscapes ``class * 1000 + i``);
                required for instance edges and for instance-wise features.
            features (`FloatTensor[B, feat_num, H, W]`, *optional*): the feature channels themselves.
            cluster (`int` or `dict`, *optional*): feature-bank centre per instance (see `sample_features`).
            style_image (`FloatTensor[B, 3, H, W]` in [-1, 1], *optional*): a photo aligned with the label map whose
                encoded, instance-pooled features are used (reconstructs its appearance).
            generator (`torch.Generator`, *optional*): source of the random cluster choices.

        Returns:
            `Pix2PixHDOutput` with `images` `[B, 3, H, W]` in [-1, 1] and the `features` used.
        """
        channels = self.prepare_label_channels(label_map)
        size = tuple(channels.shape[-2:])
        self._check_size(size)
        edges = self.prepare_instance_edges(instance_map, size)
        parts = [one_hot_channels(channels, self.config.num_label_channels, dtype=self.dtype)]
        if edges is not None:
            parts.append(edges.to(self.dtype))
        feature_map = None
        if self.config.use_features:
            feature_map = self._feature_input(label_map, instance_map, features, cluster, style_image, generator,
                                              tuple(channels.shape))
            parts.append(feature_map)
        elif features is not None or cluster is not None or style_image is not None:
            self._require_features("feature input (features / cluster / style_image)")
        images = self.generator(torch.cat(parts, dim=1))
        if not return_dict:
            return (images, feature_map)
        return Pix2PixHDOutput(images=images, features=feature_map)


class Pix2PixHDDiscriminator(Pix2PixHDPreTrainedModel):
    """pix2pixHD's multi-scale PatchGAN on `cat(semantic input, image)` (the encoded features are not shown to it).

    `num_d` PatchGANs of `n_layers_d` stride-2 stages + one stride-1 stage + the logits conv (4x4 kernels, padding 2,
    biased convs, InstanceNorm after all but the first stage, LeakyReLU 0.2, no sigmoid: LSGAN); scale k sees the
    input average-pooled k times (`discriminator.discriminators.0` is the full-resolution one).

    Shapes: `forward(semantics [B, semantic_nc, H, W], images [B, 3, H, W]) -> list[list[Tensor]]` (per scale, the
    `n_layers_d + 2` stage outputs, the last being the patch logits).
    """

    main_input_name = "semantics"

    def __init__(self, config: Pix2PixHDConfig):
        super().__init__(config)
        self.discriminator = MultiscaleDiscriminator(
            config.semantic_nc + 3, num_d=config.num_d, ndf=config.ndf, n_layers=config.n_layers_d + 1,
            norm=config.norm, padding=2, conv_bias=True,
        )
        self.post_init()

    def forward(self, semantics: torch.Tensor, images: torch.Tensor) -> list[list[torch.Tensor]]:
        return self.discriminator(torch.cat([semantics, images], dim=1))
