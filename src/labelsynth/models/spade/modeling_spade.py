"""SPADE / GauGAN (Park et al., CVPR 2019): generator, VAE style encoder and multi-scale discriminator.

Read top to bottom: the style encoder, the generator (a stack of `SPADEResnetBlock`s upsampled x2 between blocks),
then the `SPADEModel` that turns label ids into images, and the `SPADEDiscriminator` used for training.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from ...hub import ModelCardInfo
from ...inputs import DemoInput, DemoSpec
from ...layers.blocks import SPADEResnetBlock, maybe_spectral_norm
from ...layers.discriminators import MultiscaleDiscriminator
from ...layers.inference_cache import frozen_inference
from ...layers.normalization import SemanticLayout
from ...layers.small_ops import small_op_threads
from ...modeling_utils import LabelSynthPreTrainedModel, LabelToImageOutput, check_finite, one_hot_channels
from .configuration_spade import UPSAMPLING_LAYERS, SPADEConfig


class SPADEStyleEncoder(nn.Module):
    """VAE encoder from a style image to the posterior N(mu, exp(logvar)) over z.

    Stride-2 conv3x3 stages 3 -> ngf -> 2ngf -> 4ngf -> 8ngf -> 8ngf (-> 8ngf), each followed by a norm and
    LeakyReLU(0.2), then two linear heads over the flattened 4x4 map. The input is bilinearly resized to a fixed
    square (256 for the released 6-stage encoders) so the heads see 4x4.

    Shapes: `forward(image [B, 3, H, W] in [-1, 1]) -> (mu [B, z_dim], logvar [B, z_dim])`.
    """

    def __init__(self, config: SPADEConfig):
        super().__init__()
        ndf = config.ngf
        # The sixth stage exists for images at least 256 wide, as in the original.
        num_stages = 6 if config.image_size[1] >= 256 else 5
        self.input_size = 4 * 2**num_stages
        spectral = config.encoder_norm.startswith("spectral")
        subnorm = config.encoder_norm.removeprefix("spectral")
        widths = [3, ndf, ndf * 2, ndf * 4, ndf * 8, ndf * 8, ndf * 8][: num_stages + 1]
        for i in range(num_stages):
            conv = maybe_spectral_norm(
                nn.Conv2d(widths[i], widths[i + 1], 3, stride=2, padding=1, bias=subnorm == "none"), spectral
            )
            norm = nn.InstanceNorm2d(widths[i + 1], affine=False) if subnorm == "instance" else nn.Identity()
            self.add_module(f"layer{i + 1}", nn.Sequential(conv, norm))
        self.num_stages = num_stages
        self.fc_mu = nn.Linear(ndf * 8 * 4 * 4, config.z_dim)
        self.fc_var = nn.Linear(ndf * 8 * 4 * 4, config.z_dim)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if tuple(image.shape[-2:]) != (self.input_size, self.input_size):
            image = F.interpolate(image, size=(self.input_size, self.input_size), mode="bilinear")
        x = self.layer1(image)
        for i in range(2, self.num_stages + 1):
            x = getattr(self, f"layer{i}")(F.leaky_relu(x, 0.2))
        x = F.leaky_relu(x, 0.2).flatten(1)
        return self.fc_mu(x), self.fc_var(x)


class SPADEGenerator(nn.Module):
    """The SPADE generator: latent grid -> 7 (or 8) SPADE residual blocks with x2 nearest upsampling -> RGB.

    Channel plan with nf = ngf: head_0, G_middle_0, G_middle_1 at 16nf; up_0 -> 8nf, up_1 -> 4nf, up_2 -> 2nf,
    up_3 -> nf (and up_4 -> nf/2 for "most"); then LeakyReLU(0.2), conv3x3 -> 3 and tanh.

    Shapes: `forward(seg, z=None, latent_size=(h, w)) -> [B, 3, h * 2**n, w * 2**n]` where `seg` is the one-hot
    semantic map `[B, semantic_nc, H, W]` (plain path) or a `SemanticLayout` (fast path, in inference and in
    training), and `z [B, z_dim]` the latent for VAE models.
    """

    def __init__(self, config: SPADEConfig):
        super().__init__()
        nf = config.ngf
        self.config = config
        self.num_upsampling = UPSAMPLING_LAYERS[config.num_upsampling_layers]
        if config.use_vae:
            latent_h, latent_w = (s // config.upsampling_factor for s in config.image_size)
            self.fc = nn.Linear(config.z_dim, 16 * nf * latent_h * latent_w)
        else:
            self.fc = nn.Conv2d(config.semantic_nc, 16 * nf, 3, padding=1)

        def block(fin: int, fout: int) -> SPADEResnetBlock:
            return SPADEResnetBlock(fin, fout, config.semantic_nc, spectral_norm=config.spectral_norm,
                                    norm=config.param_free_norm, spade_kernel_size=config.spade_kernel_size,
                                    spade_hidden_nc=config.spade_hidden_nc)

        self.head_0 = block(16 * nf, 16 * nf)
        self.G_middle_0 = block(16 * nf, 16 * nf)
        self.G_middle_1 = block(16 * nf, 16 * nf)
        self.up_0 = block(16 * nf, 8 * nf)
        self.up_1 = block(8 * nf, 4 * nf)
        self.up_2 = block(4 * nf, 2 * nf)
        self.up_3 = block(2 * nf, nf)
        final_nc = nf
        if config.num_upsampling_layers == "most":
            self.up_4 = block(nf, nf // 2)
            final_nc = nf // 2
        self.conv_img = nn.Conv2d(final_nc, 3, 3, padding=1)

    @staticmethod
    def _up(x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2, mode="nearest")

    def forward(self, seg: torch.Tensor | SemanticLayout, z: torch.Tensor | None, latent_size: tuple[int, int]
                ) -> torch.Tensor:
        nf = self.config.ngf
        if self.config.use_vae:
            x = self.fc(z).view(z.shape[0], 16 * nf, *latent_size)
        elif isinstance(seg, SemanticLayout):
            x = self.fc(seg.dense(latent_size, dtype=self.fc.weight.dtype))
        else:
            x = self.fc(F.interpolate(seg, size=latent_size, mode="nearest"))

        up = self._up
        if isinstance(seg, SemanticLayout) and frozen_inference(self):
            # The fast path produces gamma/beta pixel-major; keeping activations channels-last matches them.
            x = x.contiguous(memory_format=torch.channels_last)

            def up(x: torch.Tensor) -> torch.Tensor:
                with small_op_threads(4 * x.numel(), x.device):  # low resolutions: one thread (small_ops)
                    return self._up(x)
        x = self.head_0(x, seg)
        x = up(x)
        x = self.G_middle_0(x, seg)
        if self.num_upsampling > 5:
            x = up(x)
        x = self.G_middle_1(x, seg)
        for stage in (self.up_0, self.up_1, self.up_2, self.up_3):
            x = stage(up(x), seg)
        if self.num_upsampling > 6:
            x = self.up_4(up(x), seg)
        return torch.tanh(self.conv_img(F.leaky_relu(x, 0.2)))


SPADE_CARD_INFO = ModelCardInfo(
    architecture="SPADE",
    paper_title="Semantic Image Synthesis with Spatially-Adaptive Normalization",
    paper_url="https://arxiv.org/abs/1903.07291",
    arxiv_id="1903.07291",
    authors=("Taesung Park", "Ming-Yu Liu", "Ting-Chun Wang", "Jun-Yan Zhu"),
    original_repo="https://github.com/NVlabs/SPADE",
    weights_license="cc-by-nc-sa-4.0",
    description=(
        "SPADE (GauGAN) generates a photo from a semantic label map. Every normalization layer of the generator is "
        "modulated by a per-pixel scale and shift predicted from the label map, so the layout survives the whole "
        "network. With a VAE style encoder, a style image (or a random latent) controls the appearance."
    ),
    citation=(
        "@inproceedings{park2019SPADE,\n  title={Semantic Image Synthesis with Spatially-Adaptive Normalization},\n"
        "  author={Park, Taesung and Liu, Ming-Yu and Wang, Ting-Chun and Zhu, Jun-Yan},\n"
        "  booktitle={Proceedings of the IEEE Conference on Computer Vision and Pattern Recognition},\n  year={2019}\n}"
    ),
    tags=("spade", "gaugan"),
    # Figures of Table 1 of the paper as quoted in public discussions (NVlabs/SPADE and SEAN issue threads).
    paper_metrics=(
        {"dataset": "ADE20K", "metric": "mIoU", "value": 38.5, "source": "SPADE paper, Table 1"},
        {"dataset": "ADE20K", "metric": "pixel accuracy", "value": 79.9, "source": "SPADE paper, Table 1"},
        {"dataset": "ADE20K", "metric": "FID", "value": 33.9, "source": "SPADE paper, Table 1"},
        {"dataset": "Cityscapes", "metric": "mIoU", "value": 62.3, "source": "SPADE paper, Table 1"},
        {"dataset": "Cityscapes", "metric": "pixel accuracy", "value": 81.9, "source": "SPADE paper, Table 1"},
        {"dataset": "Cityscapes", "metric": "FID", "value": 71.8, "source": "SPADE paper, Table 1"},
        {"dataset": "COCO-Stuff", "metric": "FID", "value": 22.6, "source": "SPADE paper, Table 1"},
    ),
)


class SPADEPreTrainedModel(LabelSynthPreTrainedModel):
    config_class = SPADEConfig
    base_model_prefix = "spade"
    model_card_info = SPADE_CARD_INFO


class SPADEModel(SPADEPreTrainedModel):
    """SPADE / GauGAN image synthesis from a label map (and optionally a style image or latent z).

    The fast inference path (see `labelsynth.layers.normalization`) is used automatically in eval mode when
    gradients are off (`torch.no_grad()` / `torch.inference_mode()`, as the pipeline does); set
    `model.fast_inference = False` to force the paper's plain computation. Training mode runs the SPADE layers' fast
    path too (same values and gradients up to float summation order); `model.fast_training = False` trains on the
    dense one-hot map as the paper does.
    """

    def __init__(self, config: SPADEConfig):
        super().__init__(config)
        self.generator = SPADEGenerator(config)
        self.encoder = SPADEStyleEncoder(config) if config.use_vae else None
        self.fast_inference = True
        self.fast_training = True
        self.post_init()

    @classmethod
    def demo_spec(cls, config: SPADEConfig) -> DemoSpec:
        """What the Gradio demo shows besides the label map (`labelsynth.inputs`): the instance map comes from
        `use_instance_edges` by default; a style image and the seed matter only with a VAE (z is sampled)."""
        style = DemoInput("Style image (optional)", info="The encoder takes the appearance from this image; "
                          "without it, z is drawn from the seed.")
        return DemoSpec(inputs={"style_image": style if config.use_vae else None}, stochastic=config.use_vae)

    def _uses_layout(self) -> bool:
        """A `SemanticLayout` instead of the dense one-hot map: the fast path, in inference or in training."""
        if self.training:
            return self.fast_training
        return self.fast_inference and not torch.is_grad_enabled()

    def _latent_size(self, size: tuple[int, int]) -> tuple[int, int]:
        factor = self.config.upsampling_factor
        expected = tuple(self.config.image_size)
        if self.config.use_vae and tuple(size) != expected:
            raise ValueError(
                f"label_map is {size[0]}x{size[1]} (HxW) but this VAE model generates exactly "
                f"{expected[0]}x{expected[1]}; resize the label map (LabelMapProcessor does this)"
            )
        if size[0] % factor or size[1] % factor:
            raise ValueError(
                f"label_map is {size[0]}x{size[1]} (HxW); this model needs sizes divisible by {factor} "
                f"(num_upsampling_layers={self.config.num_upsampling_layers!r}); its native size is "
                f"{expected[0]}x{expected[1]} (LabelMapProcessor resizes to it)"
            )
        return size[0] // factor, size[1] // factor

    def _sample_z(self, batch_size: int, noise: torch.Tensor | None, generator: torch.Generator | None,
                  name: str) -> torch.Tensor:
        shape = (batch_size, self.config.z_dim)
        if noise is None:
            device = generator.device if generator is not None else self.device
            noise = torch.randn(shape, generator=generator, device=device)
        if tuple(noise.shape) != shape:
            raise ValueError(f"noise ({name}) must have shape {shape}, got {tuple(noise.shape)}")
        return check_finite(noise, f"noise ({name})").to(self.device, self.dtype)

    def encode_style(self, style_image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior `(mu, logvar)`, each `[B, z_dim]`, of a style image `[B, 3, H, W]` in [-1, 1]."""
        if self.encoder is None:
            raise ValueError(
                "this SPADE model has no style encoder (use_vae=False), so it cannot take a style image; "
                "convert the VAE checkpoint with its latest_net_E.pth (labelsynth convert spade ... --use-vae)"
            )
        if style_image.dim() != 4 or style_image.shape[1] != 3:
            raise ValueError(f"style_image must be [B, 3, H, W] in [-1, 1], got shape {tuple(style_image.shape)}")
        return self.encoder(style_image.to(self.device, self.dtype))

    def forward(
        self,
        label_map: torch.Tensor,
        instance_map: torch.Tensor | None = None,
        style_image: torch.Tensor | None = None,
        noise: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        return_dict: bool = True,
    ) -> LabelToImageOutput | tuple:
        """Generate images.

        Args:
            label_map (`LongTensor[B, H, W]`): raw label ids of the model's label space.
            instance_map (`LongTensor[B, H, W]`, *optional*): instance ids; required when `use_instance_edges`.
            style_image (`FloatTensor[B, 3, H', W']` in [-1, 1], *optional*): VAE models only: z is sampled from the
                encoder's posterior, `z = mu + noise * exp(logvar / 2)`.
            noise (`FloatTensor[B, z_dim]`, *optional*): VAE models: z itself (no style image) or the
                reparameterisation noise (with a style image). Drawn from `generator` when omitted.
            generator (`torch.Generator`, *optional*): source of randomness for reproducible sampling.

        Returns:
            `LabelToImageOutput` with `images` `[B, 3, H, W]` in [-1, 1] (and `mu`, `logvar` with a style image).
        """
        channels = self.prepare_label_channels(label_map)
        size = tuple(channels.shape[-2:])
        latent_size = self._latent_size(size)
        edges = self.prepare_instance_edges(instance_map, size)
        batch_size = channels.shape[0]

        mu = logvar = z = None
        if style_image is not None:
            mu, logvar = self.encode_style(style_image)
            if mu.shape[0] != batch_size:
                raise ValueError(f"style_image has batch size {mu.shape[0]} but label_map has {batch_size}")
            eps = self._sample_z(batch_size, noise, generator, "reparameterisation noise")
            z = mu + eps * torch.exp(0.5 * logvar)
        elif self.config.use_vae:
            z = self._sample_z(batch_size, noise, generator, "z")

        if self._uses_layout():
            seg = SemanticLayout(channels, edges, self.config.num_label_channels, self.config.spade_kernel_size)
        else:
            seg = one_hot_channels(channels, self.config.num_label_channels, dtype=self.dtype)
            if edges is not None:
                seg = torch.cat([seg, edges.to(self.dtype)], dim=1)

        # In eval mode spectral norm is a fixed rescaling: compute each normalised weight once per forward.
        cache = parametrize.cached() if not self.training else contextlib.nullcontext()
        with cache:
            images = self.generator(seg, z, latent_size)
        if not return_dict:
            return (images, mu, logvar)
        return LabelToImageOutput(images=images, mu=mu, logvar=logvar)


class SPADEDiscriminator(SPADEPreTrainedModel):
    """Multi-scale PatchGAN discriminator of SPADE, on `cat(semantic input, image)`.

    Shapes: `forward(semantics [B, semantic_nc, H, W], images [B, 3, H, W]) -> list[list[Tensor]]` (per scale, the
    features of every stage; the last entry of each scale holds the patch logits).
    """

    main_input_name = "semantics"

    def __init__(self, config: SPADEConfig):
        super().__init__(config)
        self.discriminator = MultiscaleDiscriminator(
            config.semantic_nc + 3, num_d=config.num_d, ndf=config.ndf, n_layers=config.n_layers_d,
            norm=config.discriminator_norm, padding=2,
        )
        self.post_init()

    def forward(self, semantics: torch.Tensor, images: torch.Tensor) -> list[list[torch.Tensor]]:
        return self.discriminator(torch.cat([semantics, images], dim=1))
