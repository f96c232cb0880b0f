"""OASIS configuration (Schönfeld, Sushko et al., "You Only Need Adversarial Supervision for Semantic Image
Synthesis", ICLR 2021)."""

from __future__ import annotations

from typing import Any

from ...configuration_utils import (
    MAX_CHANNELS,
    MAX_LATENT_DIM,
    LabelSynthConfig,
    check_int,
)
from ..spade.configuration_spade import SPADEBlocksMixin

# The generator and the discriminator have six residual blocks (the original `--num_res_blocks`, 6; its channel
# lists are written for six): G upsamples x2 five times from its latent grid, D downsamples x2 six times.
NUM_RES_BLOCKS = 6
GENERATOR_FACTOR = 2 ** (NUM_RES_BLOCKS - 1)
DISCRIMINATOR_FACTOR = 2**NUM_RES_BLOCKS
# Parameter-free norms inside the generator's SPADE layers (the original `--param_free_norm`).
OASIS_NORMS = ("syncbatch", "batch", "instance")

# Dataset presets of the released checkpoints (the original dataloaders' settings). All three have a don't-care
# channel 0; COCO-Stuff's stored ids 0..181 are shifted by one (`label_shift=1`) and 255 becomes channel 0.
OASIS_PRESETS: dict[str, dict[str, Any]] = {
    "ade20k": {"label_space": "ade20k", "label_nc": 150, "contain_dontcare_label": True, "label_shift": 0,
               "image_size": (256, 256)},
    "cityscapes": {"label_space": "cityscapes", "label_nc": 34, "contain_dontcare_label": True, "label_shift": 0,
                   "image_size": (256, 512)},
    "coco-stuff": {"label_space": "coco-stuff", "label_nc": 182, "contain_dontcare_label": True, "label_shift": 1,
                   "image_size": (256, 256)},
}
_PRESET_ALIASES = {"coco": "coco-stuff", "cocostuff": "coco-stuff", "coco_stuff": "coco-stuff", "ade": "ade20k"}


class OASISConfig(SPADEBlocksMixin, LabelSynthConfig):
    """Configuration of `OASISModel` (generator) and `OASISDiscriminator`.

    **Label convention.** OASIS has `num_label_channels = label_nc + 1` one-hot channels (the original `semantic_nc`:
    151 ADE20K, 35 Cityscapes, 183 COCO-Stuff) and **channel 0 is "don't care"**. A raw id `k` of the label space goes
    to channel `k + label_shift`, and `ignore_index` (255) to channel 0: ADE20K ids 0..150 (0 = "other") and
    Cityscapes labelIds 0..34 are used as they are, COCO-Stuff ids 0..181 are shifted by one (as the original
    dataloader does). `label_nc` and `contain_dontcare_label` keep the original dataloaders' values
    (150 / 34 / 182, True); unlike the SPADE family the don't-care channel is the first one, not the last.

    Other label-space fields are documented in `LabelSynthConfig`. Original option names are given in brackets.

    Args:
        label_shift (`int`): added to every raw id to get its channel (1 for COCO-Stuff, else 0).
        ngf (`int`): base width of the generator [`--channels_G`, 64]; blocks of 16, 16, 16, 8, 4, 2, 1 x ngf.
        z_dim (`int`): channels of the 3D noise concatenated in front of the one-hot map [`--z_dim`, 64].
        param_free_norm (`str`): normalisation inside SPADE: "syncbatch" (the original's default; plain
            BatchNorm on one device, SyncBatchNorm on several), "batch" or "instance" [`--param_free_norm`].
        spectral_norm (`bool`): spectral normalisation on G's residual-block convs and D's convs (the original's
            inverse of `--no_spectral_norm`).
        spade_kernel_size (`int`): kernel of the SPADE convs [`--spade_ks`, 3].
        spade_hidden_nc (`int`): width of SPADE's shared hidden layer (128, hard-coded in the original).
        ndf (`int`): discriminator width unit: encoder widths 2, 2, 4, 4, 8, 8 x ndf and decoder output ndf. The
            original's widths are fixed (128 .. 512, 64) and equal these at ndf = 64; its `--channels_D` is unused.

    The image size must be a multiple of 32 (the generator's latent grid is `image_size / 32`); the discriminator
    takes images whose sides are multiples of 64.
    """

    model_type = "oasis"
    presets = OASIS_PRESETS
    preset_aliases = _PRESET_ALIASES
    family = "OASIS"

    def __init__(
        self,
        label_space: str | dict[str, Any] = "ade20k",
        label_nc: int = 150,
        contain_dontcare_label: bool = True,
        ignore_index: int = 255,
        use_instance_edges: bool = False,
        image_size: tuple[int, int] | list[int] = (256, 256),
        label_shift: int = 0,
        ngf: int = 64,
        z_dim: int = 64,
        param_free_norm: str = "syncbatch",
        spectral_norm: bool = True,
        spade_kernel_size: int = 3,
        spade_hidden_nc: int = 128,
        ndf: int = 64,
        **kwargs: Any,
    ) -> None:
        self.label_shift = label_shift
        self.ngf = ngf
        self.z_dim = z_dim
        self.param_free_norm = param_free_norm
        self.spectral_norm = spectral_norm
        self.spade_kernel_size = spade_kernel_size
        self.spade_hidden_nc = spade_hidden_nc
        self.ndf = ndf
        super().__init__(label_space=label_space, label_nc=label_nc, contain_dontcare_label=contain_dontcare_label,
                         ignore_index=ignore_index, use_instance_edges=use_instance_edges, image_size=image_size,
                         **kwargs)

    def validate(self) -> None:
        """`LabelSynthConfig.validate` plus OASIS's fields and the image-size multiple of the latent grid."""
        super().validate()
        if not self.contain_dontcare_label:
            raise ValueError("OASIS models have a don't-care channel 0 (contain_dontcare_label=True in all of its "
                             "dataloaders); set contain_dontcare_label=True")
        if self.use_instance_edges:
            raise ValueError("OASIS takes no instance edges (its input is noise + one-hot labels); set "
                             "use_instance_edges=False")
        self.label_shift = check_int("label_shift", self.label_shift, 0, 1,
                                     reason="1 for COCO-Stuff's shifted ids, else 0")
        if 0 <= self.ignore_index <= self.max_label_id:
            raise ValueError(f"ignore_index {self.ignore_index} is a class id (0..{self.max_label_id}); use an id "
                             "outside the classes, e.g. 255")
        self._check_spade_blocks(OASIS_NORMS)
        self.z_dim = check_int("z_dim", self.z_dim, 1, MAX_LATENT_DIM)
        self.ndf = check_int("ndf", self.ndf, 1, MAX_CHANNELS // 16,
                             reason=f"the decoder's widest input has 16 * ndf channels, at most {MAX_CHANNELS}")
        if self.image_size[0] % GENERATOR_FACTOR or self.image_size[1] % GENERATOR_FACTOR:
            raise ValueError(f"image_size {tuple(self.image_size)} must be divisible by {GENERATOR_FACTOR} (the "
                             "generator upsamples its latent grid x2 five times)")

    @property
    def max_label_id(self) -> int:
        """Largest raw label id with a channel (`num_label_channels - 1 - label_shift`)."""
        return self.num_label_channels - 1 - self.label_shift


# The preset lookup as a function, for `labelsynth.training.oasis`.
resolve_preset = OASISConfig.resolve_preset
