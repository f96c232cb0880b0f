"""Inputs and stand-in weights shared by the benchmark scripts: real label maps from `../shared/samples` where the
checkout has them (block maps of random classes otherwise), variance-preserving random weights, and "trained-like"
BatchNorm statistics and output scale, so that a randomly initialised generator runs the same kernels on the same
value ranges as a released one.

The scripts import it as a sibling module: `python benchmarks/bench_x.py` puts benchmarks/ first on `sys.path`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

SAMPLES = Path(__file__).resolve().parents[1] / ".." / "shared" / "samples"
# Label maps of each dataset among the samples (ids as the datasets write them) and their instance maps.
SAMPLE_LABELS = {"ade20k": "CoCosNet_ade20k/*/*.png", "cityscapes": "pix2pixHD_cityscapes/*_label/*.png",
                 "coco-stuff": "SPADE_coco_stuff/*_label/*.png"}
SAMPLE_INSTANCES = {"cityscapes": "pix2pixHD_cityscapes/*_inst/*.png", "coco-stuff": "SPADE_coco_stuff/*_inst/*.png"}


def load_maps(pattern: str | None, size: tuple[int, int], count: int) -> list[torch.Tensor] | None:
    """Up to `count` id maps `[H, W]` (int64) matching `pattern` under the samples, nearest-resized to `size`; None
    where the samples (or matching files) are absent."""
    files = sorted(SAMPLES.glob(pattern))[:count] if pattern is not None and SAMPLES.is_dir() else []
    return [torch.from_numpy(np.array(Image.open(f).resize(size[::-1], Image.NEAREST)).astype(np.int64))
            for f in files] or None


def block_maps(size: tuple[int, int], num_ids: int, count: int) -> list[torch.Tensor]:
    """`count` maps `[H, W]` of 16x16 px blocks of random ids in [0, num_ids), seeded: the stand-in without samples."""
    generator = torch.Generator().manual_seed(0)
    coarse = torch.randint(0, num_ids, (count, 1, size[0] // 16, size[1] // 16), generator=generator).float()
    return list(torch.nn.functional.interpolate(coarse, size=size, mode="nearest")[:, 0].long())


def randomize(model: torch.nn.Module) -> None:
    """Variance-preserving random weights (seeded): the papers' init gain 0.02 gives a flat grey image, which would
    hide work that depends on the values (attention peaks, saturations)."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() > 1:
                param.copy_(torch.randn(param.shape, generator=generator) / math.sqrt(param[0].numel()))


def make_trained_like(model: torch.nn.Module, output_layer: torch.nn.Conv2d, forward: Callable[[], Any]) -> None:
    """BatchNorm statistics averaged over one train-mode `forward()` (the calibration inputs), then the output layer
    scaled so that its pre-activation spread is image-like (std 0.6 before the tanh); leaves `model` in eval mode."""
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None  # cumulative average over the calibration batch
    with torch.no_grad():
        model.train()
        forward()
        model.eval()
        captured = {}
        hook = output_layer.register_forward_hook(lambda m, i, o: captured.setdefault("pre", o))
        forward()
        hook.remove()
        scale = 0.6 / captured["pre"].std()
        output_layer.weight.mul_(scale)
        if output_layer.bias is not None:
            output_layer.bias.mul_(scale)
