"""pix2pixHD configuration (Wang et al., "High-Resolution Image Synthesis and Semantic Manipulation with Conditional
GANs", CVPR 2018)."""

from __future__ import annotations

from typing import Any

from ...configuration_utils import (
    MAX_CHANNELS,
    MAX_DISCRIMINATOR_LAYERS,
    MAX_SCALES,
    LabelSynthConfig,
    check_choice,
    check_int,
)

GENERATOR_TYPES = ("global", "local")
FEATURE_MODES = (None, "instance", "label")
NORMS = ("instance", "batch")
MAX_BLOCKS = 32  # residual blocks per network: 3.5x the original's 9 at the global generator's bottleneck
MAX_LOCAL_ENHANCERS = 4  # each doubles the resolution: 4 take a 512p global generator to 8192p
MAX_FEATURES = 256  # encoded feature channels (3 in the original) and feature-bank clusters per class (10)

# The Cityscapes recipes of the original scripts (scripts/train_512p.sh, train_1024p_24G.sh, *_feat.sh). Only the
# 1024p generator was released (label2city_1024p).
_CITYSCAPES = dict(label_space="cityscapes", label_nc=35, contain_dontcare_label=False, use_instance_edges=True)
PIX2PIXHD_PRESETS: dict[str, dict[str, Any]] = {
    "cityscapes-512p": dict(**_CITYSCAPES, image_size=(512, 1024), generator_type="global", ngf=64, num_d=2),
    "cityscapes-1024p": dict(**_CITYSCAPES, image_size=(1024, 2048), generator_type="local", ngf=32, num_d=3),
    "cityscapes-512p-feat": dict(**_CITYSCAPES, image_size=(512, 1024), generator_type="global", ngf=64, num_d=2,
                                 feature_mode="instance"),
    "cityscapes-1024p-feat": dict(**_CITYSCAPES, image_size=(1024, 2048), generator_type="local", ngf=32, num_d=3,
                                  feature_mode="instance"),
}
_PRESET_ALIASES = {"cityscapes": "cityscapes-1024p", "label2city_1024p": "cityscapes-1024p",
                   "label2city_512p": "cityscapes-512p"}


class Pix2PixHDConfig(LabelSynthConfig):
    """Configuration of `Pix2PixHDModel` (generator, optional feature encoder and feature bank) and
    `Pix2PixHDDiscriminator`.

    Label-space fields (`label_space`, `label_nc`, `contain_dontcare_label`, `ignore_index`, `use_instance_edges`,
    `image_size`) are documented in `LabelSynthConfig`; pix2pixHD's Cityscapes models use the 35 labelIds with
    instance edges (`--label_nc 35`, not `--no_instance`). Original option names are given in brackets.

    Args:
        generator_type (`str`): "global" (the global generator G1 alone, 512p) or "local" (G1 inside
            `n_local_enhancers` local enhancers G2, 1024p) [`--netG`].
        ngf (`int`): width of the outermost generator layer [`--ngf`; 64 for "global", 32 for "local", where the
            global generator inside is then `ngf * 2**n_local_enhancers` wide].
        n_downsample_global (`int`): stride-2 convs of the global generator [`--n_downsample_global`, 4].
        n_blocks_global (`int`): residual blocks at the bottleneck of the global generator [`--n_blocks_global`, 9].
        n_local_enhancers (`int`): local enhancers around the global generator, each doubling the resolution
            [`--n_local_enhancers`, 1]. Only used when `generator_type="local"`.
        n_blocks_local (`int`): residual blocks of each local enhancer [`--n_blocks_local`, 3].
        norm (`str`): "instance" (InstanceNorm without affine parameters, the default) or "batch", for the
            generator, the encoder and the discriminator [`--norm`].
        feature_mode (`str` or None): the instance-wise feature encoder: "instance" pools the encoder's output over
            each instance of the instance map [`--instance_feat`], "label" over each label region [`--label_feat`];
            None disables it. With it, `feat_num` channels are appended to the generator input and a per-class
            feature bank (k-means centres, see `labelsynth cluster-features`) lets inference pick the appearance
            of every instance.
        feat_num (`int`): channels of the encoded features [`--feat_num`, 3].
        nef (`int`): width of the encoder's first layer [`--nef`, 16].
        n_downsample_e (`int`): stride-2 convs of the encoder [`--n_downsample_E`, 4].
        n_clusters (`int`): maximum number of feature clusters per class in the feature bank [`--n_clusters`, 10].
        ndf (`int`): width of the discriminator's first layer [`--ndf`, 64].
        n_layers_d (`int`): stride-2 convs of each PatchGAN [`--n_layers_D`, 3]; each scale returns
            `n_layers_d + 2` feature maps (the last being the patch logits).
        num_d (`int`): number of discriminator scales [`--num_D`; 2 at 512p, 3 at 1024p].
    """

    model_type = "pix2pixhd"
    presets = PIX2PIXHD_PRESETS
    preset_aliases = _PRESET_ALIASES
    family = "pix2pixHD"

    def __init__(
        self,
        label_space: str | dict[str, Any] = "cityscapes",
        label_nc: int = 35,
        contain_dontcare_label: bool = False,
        ignore_index: int = 255,
        use_instance_edges: bool = True,
        image_size: tuple[int, int] | list[int] = (512, 1024),
        generator_type: str = "global",
        ngf: int = 64,
        n_downsample_global: int = 4,
        n_blocks_global: int = 9,
        n_local_enhancers: int = 1,
        n_blocks_local: int = 3,
        norm: str = "instance",
        feature_mode: str | None = None,
        feat_num: int = 3,
        nef: int = 16,
        n_downsample_e: int = 4,
        n_clusters: int = 10,
        ndf: int = 64,
        n_layers_d: int = 3,
        num_d: int = 2,
        **kwargs: Any,
    ) -> None:
        self.generator_type = generator_type
        self.ngf = ngf
        self.n_downsample_global = n_downsample_global
        self.n_blocks_global = n_blocks_global
        self.n_local_enhancers = n_local_enhancers
        self.n_blocks_local = n_blocks_local
        self.norm = norm
        self.feature_mode = feature_mode
        self.feat_num = feat_num
        self.nef = nef
        self.n_downsample_e = n_downsample_e
        self.n_clusters = n_clusters
        self.ndf = ndf
        self.n_layers_d = n_layers_d
        self.num_d = num_d
        super().__init__(label_space=label_space, label_nc=label_nc, contain_dontcare_label=contain_dontcare_label,
                         ignore_index=ignore_index, use_instance_edges=use_instance_edges, image_size=image_size,
                         **kwargs)

    def validate(self) -> None:
        """`LabelSynthConfig.validate` plus pix2pixHD's fields, the width at the generator's and the encoder's
        bottleneck, and the image-size multiple of the generator (and encoder)."""
        super().validate()
        self.generator_type = check_choice("generator_type", self.generator_type, GENERATOR_TYPES)
        self.feature_mode = check_choice("feature_mode", self.feature_mode, FEATURE_MODES)
        self.norm = check_choice("norm", self.norm, NORMS)
        self.n_local_enhancers = check_int("n_local_enhancers", self.n_local_enhancers, 0, MAX_LOCAL_ENHANCERS)
        self.n_blocks_global = check_int("n_blocks_global", self.n_blocks_global, 0, MAX_BLOCKS)
        self.n_blocks_local = check_int("n_blocks_local", self.n_blocks_local, 0, MAX_BLOCKS)
        # The bottlenecks are the widest layers: the global generator's has ngf * 2**(n_downsample_global + local
        # enhancers) channels, the encoder's nef * 2**n_downsample_e; both at most MAX_CHANNELS = 2**max_doublings.
        max_doublings = MAX_CHANNELS.bit_length() - 1
        self.n_downsample_global = check_int(
            "n_downsample_global", self.n_downsample_global, 0, max_doublings - self.num_local_enhancers,
            reason=f"the generator's bottleneck has ngf * 2**(n_downsample_global + local enhancers="
            f"{self.num_local_enhancers}) channels, at most {MAX_CHANNELS}")
        doublings = self.n_downsample_global + self.num_local_enhancers
        self.ngf = check_int("ngf", self.ngf, 1, MAX_CHANNELS >> doublings,
                             reason=f"the generator's bottleneck has ngf * 2**(n_downsample_global="
                             f"{self.n_downsample_global} + local enhancers={self.num_local_enhancers}) channels, "
                             f"at most {MAX_CHANNELS}")
        self.feat_num = check_int("feat_num", self.feat_num, 1, MAX_FEATURES)
        self.n_downsample_e = check_int("n_downsample_e", self.n_downsample_e, 0, max_doublings,
                                        reason=f"the encoder's bottleneck has nef * 2**n_downsample_e channels, at "
                                        f"most {MAX_CHANNELS}")
        self.nef = check_int("nef", self.nef, 1, MAX_CHANNELS >> self.n_downsample_e,
                             reason=f"the encoder's bottleneck has nef * 2**n_downsample_e={self.n_downsample_e} "
                             f"channels, at most {MAX_CHANNELS}")
        self.n_clusters = check_int("n_clusters", self.n_clusters, 1, MAX_FEATURES)
        self.ndf = check_int("ndf", self.ndf, 1, MAX_CHANNELS)
        self.n_layers_d = check_int("n_layers_d", self.n_layers_d, 1, MAX_DISCRIMINATOR_LAYERS)
        self.num_d = check_int("num_d", self.num_d, 1, MAX_SCALES)
        factor = self.size_divisor
        if self.image_size[0] % factor or self.image_size[1] % factor:
            raise ValueError(f"image_size {tuple(self.image_size)} must be divisible by {factor} "
                             f"({self._divisor_reason()})")

    @property
    def use_features(self) -> bool:
        """Whether encoded instance features are part of the generator input."""
        return self.feature_mode is not None

    @property
    def num_local_enhancers(self) -> int:
        """Local enhancers actually built (0 for the global generator)."""
        return self.n_local_enhancers if self.generator_type == "local" else 0

    @property
    def global_ngf(self) -> int:
        """Width of the global generator's first layer (`ngf * 2**n_local_enhancers` inside local enhancers)."""
        return self.ngf * 2**self.num_local_enhancers

    @property
    def generator_input_nc(self) -> int:
        """Generator input channels: semantic input (one-hot + don't care + edges) + encoded features."""
        return self.semantic_nc + (self.feat_num if self.use_features else 0)

    @property
    def size_divisor(self) -> int:
        """Image sizes must be multiples of this: every stride-2 conv must halve the size exactly so that the
        transposed convs give it back (and the local enhancers' pyramid lines up)."""
        factor = 2 ** (self.n_downsample_global + self.num_local_enhancers)
        if self.use_features:
            factor = max(factor, 2**self.n_downsample_e)
        return factor

    def _divisor_reason(self) -> str:
        reason = f"2**(n_downsample_global={self.n_downsample_global}"
        if self.num_local_enhancers:
            reason += f" + n_local_enhancers={self.num_local_enhancers}"
        reason += ")"
        if self.use_features:
            reason += f", and 2**n_downsample_e={self.n_downsample_e} for the feature encoder"
        return reason
