"""Helpers of the SEAN tests: tiny random models, block label maps, real CelebAMask-HQ samples."""

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from labelsynth import SEANConfig, SEANModel
from labelsynth.label_spaces import merge_part_masks

TINY = dict(image_size=(64, 64), ngf=8, spade_hidden_nc=8, style_dim=16, style_encoder_ngf=4, ndf=8)


def tiny_config(**overrides) -> SEANConfig:
    return SEANConfig(**{**TINY, **overrides})


def random_sean(config: SEANConfig, seed: int = 0) -> SEANModel:
    """A SEAN with variance-preserving random weights, non-zero noise strengths and blending logits, and BatchNorm
    statistics moved by train-mode passes: every branch visibly reaches the output."""
    torch.manual_seed(seed)
    model = SEANModel(config)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() > 1:
                param.copy_(torch.randn(param.shape, generator=generator) / math.sqrt(param[0].numel()))
            else:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.3)
        labels = block_labels(2, config.image_size, seed)
        images = torch.rand(2, 3, *config.image_size, generator=generator) * 2 - 1
        model.train()
        model(labels, style_image=images, generator=generator)
    return model.eval()


def block_labels(batch: int, size: tuple[int, int], seed: int = 0, block: int = 8, num_classes: int = 19
                 ) -> torch.Tensor:
    """Label maps of random classes in `block` x `block` squares."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.randint(0, num_classes, (batch, size[0] // block, size[1] // block), generator=generator)
    return coarse.repeat_interleave(block, 1).repeat_interleave(block, 2)


def load_celeba_sample(root: Path, image_id: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(label map [H, W] in SEAN's order, photo [3, H, W] in [-1, 1]) of one CoCosNet_celebahqedge sample."""
    parts = {p.name[6:-4]: Image.open(p) for p in (root / "CelebAMask-HQ-mask-anno" / str(image_id // 2000)).glob(
        f"{image_id:05d}_*.png")}
    label = Image.fromarray(merge_part_masks(parts, "celebamask-hq").astype(np.uint8)).resize((size, size),
                                                                                               Image.NEAREST)
    photo = Image.open(root / "CelebA-HQ-img" / f"{image_id}.jpg").convert("RGB").resize((size, size),
                                                                                         Image.BICUBIC)
    pixels = torch.from_numpy(np.asarray(photo).copy()).permute(2, 0, 1).float() / 127.5 - 1
    return torch.from_numpy(np.asarray(label).astype(np.int64)), pixels

