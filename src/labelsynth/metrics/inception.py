"""The Inception-v3 network of FID: the TensorFlow 2015-12-05 ImageNet graph, ported to PyTorch.

FID (Heusel et al., 2017) is defined on the 2048-d ``pool_3`` features of one specific network: the Inception-v3
graph TensorFlow released as ``inception-2015-12-05.tgz``. Published FIDs of SPADE and its successors were computed
with that graph (TTUR's reference code) or its PyTorch port in pytorch-fid, whose weights file is
``pt_inception-2015-12-05-6726825d.pth``. This module builds a network with exactly that file's state-dict layout, so
the file loads as is, and reproduces the graph's computation:

* the layer structure of torchvision's ``inception_v3`` with ``num_classes=1008`` (the 2015 graph's classifier has
  1008 outputs) and without the auxiliary classifier: BasicConv2d = conv (no bias) + BatchNorm (eps 0.001) + ReLU;
* the four differences of the 2015 graph from torchvision's network:
  - the average pools of the pool branches of ``Mixed_5b/5c/5d`` (block A), ``Mixed_6b..6e`` (block C) and
    ``Mixed_7b`` (first E block) ignore the zero padding (TensorFlow's ``SAME`` average pooling divides by the number
    of real pixels: ``count_include_pad=False``);
  - the pool branch of ``Mixed_7c`` (second E block) is a 3x3 **max** pool (stride 1, padding 1), not an average pool;
* the input handling of pytorch-fid: images are resized to 299x299 with bilinear interpolation
  (``align_corners=False``, no antialiasing) and scaled to [-1, 1].

Features are the global average pool of ``Mixed_7c`` (``[B, 2048]``).

**Weights.** ``pt_inception-2015-12-05-6726825d.pth`` (pytorch-fid's release asset): `find_inception_weights` finds a
given path, ``LABELSYNTH_INCEPTION_WEIGHTS`` or the torch hub cache
(``$TORCH_HOME/hub/checkpoints/pt_inception-2015-12-05-6726825d.pth``), and with ``download=True`` (what ``labelsynth
evaluate`` does) fetches it there once, checking its SHA-256 prefix. Without weights `InceptionFeatureExtractor` runs with **random weights**: fine for
tests and for relative comparisons within one run, **not comparable to published FID/KID**.

**Parameters.** 23,850,960 trainable parameters: torchvision's ``inception_v3`` (27,161,264 with the auxiliary
classifier and 1000 classes) minus the auxiliary classifier (3,326,696) plus the 8 extra classes of the 1008-way
``fc`` (16,392). The state dict has 566 entries: 94 BasicConv2d x (conv weight + 5 BatchNorm entries) + ``fc.weight``
+ ``fc.bias``; the ``bn.num_batches_tracked`` counters are optional when loading (files written by old torch versions
lack them; they play no role in eval mode).
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..state_dict_utils import load_torch_state_dict, state_dict_mismatch

__all__ = [
    "FID_INCEPTION_NUM_CLASSES",
    "FID_INCEPTION_NUM_PARAMETERS",
    "FID_WEIGHTS_FILENAME",
    "INCEPTION_WEIGHTS_ENV",
    "FIDInceptionV3",
    "InceptionFeatureExtractor",
    "find_inception_weights",
    "load_fid_inception",
]

FID_WEIGHTS_FILENAME = "pt_inception-2015-12-05-6726825d.pth"
FID_INCEPTION_NUM_CLASSES = 1008
FID_INCEPTION_NUM_PARAMETERS = 23_850_960
INCEPTION_WEIGHTS_ENV = "LABELSYNTH_INCEPTION_WEIGHTS"
INPUT_SIZE = 299
FEATURE_DIM = 2048
RANDOM_WEIGHTS_NOTE = "random weights: not comparable to published FID/KID"


class BasicConv2d(nn.Module):
    """Convolution without bias, BatchNorm (eps 0.001, as in the TensorFlow graph) and ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
                 stride: int = 1, padding: int | tuple[int, int] = 0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg_pool_same(x: torch.Tensor) -> torch.Tensor:
    """3x3 stride-1 average pool that, like TensorFlow's SAME padding, averages over real pixels only."""
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


def _max_pool_same(x: torch.Tensor) -> torch.Tensor:
    return F.max_pool2d(x, kernel_size=3, stride=1, padding=1)


class InceptionBlockA(nn.Module):
    """35x35 block (``Mixed_5b/5c/5d``): 1x1 | 1x1-5x5 | 1x1-3x3-3x3 | avgpool(no pad count)-1x1."""

    def __init__(self, in_channels: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 64, 1)
        self.branch5x5_1 = BasicConv2d(in_channels, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(in_channels, pool_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.branch1x1(x)
        b = self.branch5x5_2(self.branch5x5_1(x))
        c = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        d = self.branch_pool(_avg_pool_same(x))
        return torch.cat([a, b, c, d], dim=1)


class InceptionBlockB(nn.Module):
    """Grid reduction 35 -> 17 (``Mixed_6a``): 3x3/2 | 1x1-3x3-3x3/2 | maxpool/2."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(in_channels, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.branch3x3(x)
        b = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        c = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([a, b, c], dim=1)


class InceptionBlockC(nn.Module):
    """17x17 block with factorised 7x7 convolutions (``Mixed_6b..6e``); pool branch as in block A."""

    def __init__(self, in_channels: int, channels_7x7: int) -> None:
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(in_channels, 192, 1)
        self.branch7x7_1 = BasicConv2d(in_channels, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(in_channels, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(in_channels, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.branch1x1(x)
        b = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        c = x
        for layer in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4,
                      self.branch7x7dbl_5):
            c = layer(c)
        d = self.branch_pool(_avg_pool_same(x))
        return torch.cat([a, b, c, d], dim=1)


class InceptionBlockD(nn.Module):
    """Grid reduction 17 -> 8 (``Mixed_7a``): 1x1-3x3/2 | 1x1-1x7-7x1-3x3/2 | maxpool/2."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_channels, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(in_channels, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.branch3x3_2(self.branch3x3_1(x))
        b = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        c = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([a, b, c], dim=1)


class InceptionBlockE(nn.Module):
    """8x8 block with split 1x3/3x1 outputs (``Mixed_7b``, ``Mixed_7c``).

    Args:
        pool: ``"avg"`` (``Mixed_7b``: average pool ignoring padding) or ``"max"`` (``Mixed_7c``: the 2015 graph
            max-pools in this block's pool branch).
    """

    def __init__(self, in_channels: int, pool: str) -> None:
        super().__init__()
        if pool not in ("avg", "max"):
            raise ValueError(f"pool must be 'avg' or 'max', got {pool!r}")
        self.pool = pool
        self.branch1x1 = BasicConv2d(in_channels, 320, 1)
        self.branch3x3_1 = BasicConv2d(in_channels, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(in_channels, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.branch1x1(x)
        b = self.branch3x3_1(x)
        b = torch.cat([self.branch3x3_2a(b), self.branch3x3_2b(b)], dim=1)
        c = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        c = torch.cat([self.branch3x3dbl_3a(c), self.branch3x3dbl_3b(c)], dim=1)
        pooled = _avg_pool_same(x) if self.pool == "avg" else _max_pool_same(x)
        d = self.branch_pool(pooled)
        return torch.cat([a, b, c, d], dim=1)


class FIDInceptionV3(nn.Module):
    """Inception-v3 as in the TensorFlow 2015-12-05 graph (see the module docstring).

    `forward` takes images already at 299x299 and scaled to [-1, 1] and returns the 2048-d pool features;
    `InceptionFeatureExtractor` does the resizing and scaling. `logits` gives the 1008-way classifier output.
    """

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = InceptionBlockA(192, pool_features=32)
        self.Mixed_5c = InceptionBlockA(256, pool_features=64)
        self.Mixed_5d = InceptionBlockA(288, pool_features=64)
        self.Mixed_6a = InceptionBlockB(288)
        self.Mixed_6b = InceptionBlockC(768, channels_7x7=128)
        self.Mixed_6c = InceptionBlockC(768, channels_7x7=160)
        self.Mixed_6d = InceptionBlockC(768, channels_7x7=160)
        self.Mixed_6e = InceptionBlockC(768, channels_7x7=192)
        self.Mixed_7a = InceptionBlockD(768)
        self.Mixed_7b = InceptionBlockE(1280, pool="avg")
        self.Mixed_7c = InceptionBlockE(2048, pool="max")
        self.fc = nn.Linear(FEATURE_DIM, FID_INCEPTION_NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`[B, 3, H, W]` in [-1, 1] (H, W >= 75; 299 for the standard features) -> `[B, 2048]` pool features."""
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b, self.Mixed_6c,
                      self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b, self.Mixed_7c):
            x = block(x)
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """1008-way classifier logits of `[B, 3, 299, 299]` inputs in [-1, 1]."""
        return self.fc(self(x))


# ---------------------------------------------------------------------------------------------- weights
def _is_optional_key(key: str) -> bool:
    return key.endswith("num_batches_tracked")


def _hint(unexpected: Sequence[str], mismatched: Sequence[tuple[str, tuple, tuple]]) -> str:
    if any(k.startswith("AuxLogits.") for k in unexpected) or any(
        k == "fc.weight" and got[0] == 1000 for k, got, _ in mismatched
    ):
        return (" This looks like torchvision's ImageNet inception_v3 (1000 classes, auxiliary classifier): a different "
                f"network with different weights. FID needs {FID_WEIGHTS_FILENAME} (pytorch-fid's port of the "
                "TensorFlow 2015-12-05 graph).")
    if unexpected and all("." in k and k.split(".")[0] in {"module", "model", "inception"} for k in unexpected):
        return " The keys carry a wrapper prefix ('module.', 'model.' ...); strip it before loading."
    return f" Expected the layout of {FID_WEIGHTS_FILENAME} (pytorch-fid's FID Inception)."


def _read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(
            f"Inception weights {path}: no such file. FID needs {FID_WEIGHTS_FILENAME} (pytorch-fid's release asset "
            f"'fid_weights'); download it once on a machine with network access and pass its path "
            f"(or set {INCEPTION_WEIGHTS_ENV})"
        )
    if path.is_dir():
        candidate = path / FID_WEIGHTS_FILENAME
        if not candidate.is_file():
            raise FileNotFoundError(f"Inception weights {path} is a folder without {FID_WEIGHTS_FILENAME}")
        path = candidate
    return load_torch_state_dict(path, f"Inception weights {path}")


def _check_state_dict(model: nn.Module, state_dict: dict[str, torch.Tensor], source: str) -> None:
    expected = model.state_dict()
    problems = state_dict_mismatch(expected, state_dict, optional=_is_optional_key, limit=6)
    if problems is None:
        return
    unexpected = [k for k in state_dict if k not in expected]
    mismatched = [(k, tuple(state_dict[k].shape), tuple(v.shape)) for k, v in expected.items()
                  if k in state_dict and state_dict[k].shape != v.shape]
    raise ValueError(f"Inception weights {source} do not fit the FID Inception-v3: {problems}."
                     + _hint(unexpected, mismatched))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_fid_inception(path: str | os.PathLike, device: str | torch.device | None = None) -> FIDInceptionV3:
    """Build `FIDInceptionV3` and load ``pt_inception-2015-12-05-6726825d.pth`` (or a file of the same layout).

    Args:
        path: the weights file, or a folder that contains ``pt_inception-2015-12-05-6726825d.pth``.
        device: where to put the model (default CPU).

    Returns:
        The model in eval mode with gradients off.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not a state dict, or its keys/shapes do not match (the message lists the missing,
            unexpected and mis-shaped keys, and recognises torchvision's ImageNet Inception weights).
    """
    state_dict = _read_state_dict(path)
    model = FIDInceptionV3()
    _check_state_dict(model, state_dict, str(path))
    model.load_state_dict(state_dict, strict=False)  # only optional num_batches_tracked entries can be absent
    model.eval().requires_grad_(False)
    return model.to(device) if device is not None else model


def find_inception_weights(path: str | os.PathLike | None = None, *, download: bool = False) -> Path | None:
    """Locate the FID Inception weights: `path`, else ``$LABELSYNTH_INCEPTION_WEIGHTS``, else the torch hub cache,
    else (with `download`) pytorch-fid's release file, downloaded once into that cache and hash-checked.

    Returns:
        The file's path, or None when `path` is None, `download` is False and neither the environment variable nor
        ``<torch hub dir>/checkpoints/pt_inception-2015-12-05-6726825d.pth`` gives a file. An explicit `path` is
        returned as is (loading reports a missing file).

    Raises:
        labelsynth.hub.download.DownloadError: `download` was asked and failed (offline included).
    """
    if path is not None:
        return Path(path).expanduser()
    env = os.environ.get(INCEPTION_WEIGHTS_ENV)
    if env:
        return Path(env).expanduser()
    from ..hub.auxiliary import FID_INCEPTION, auxiliary_weights_path, fetch_auxiliary_weights

    cached = auxiliary_weights_path(FID_INCEPTION)
    if cached.is_file():
        return cached
    return fetch_auxiliary_weights(FID_INCEPTION) if download else None


class InceptionFeatureExtractor(nn.Module):
    """2048-d FID/KID features of images, with pytorch-fid's input handling.

    Args:
        weights: path of ``pt_inception-2015-12-05-6726825d.pth`` (or a folder holding it), or None for **random
            weights** (a `UserWarning` says so; `comparable` is False and `weights_source` reads
            "random weights: not comparable to published FID/KID"). Random weights are drawn from `seed`.
        device: device of the network (default CPU).
        resize_input: resize to 299x299 (bilinear, ``align_corners=False``) as pytorch-fid does. Leave on for FID.
        seed: seed of the random weights (ignored with a weights file).

    Call it on ``FloatTensor[B, 3, H, W]`` images with values in `value_range` (default (-1, 1), the range of
    labelsynth generators; (0, 1) also common), on ``uint8`` tensors (0..255), or on a list of PIL images /
    ``[3, H, W]`` tensors of any sizes. Returns ``FloatTensor[B, 2048]`` on the CPU.

    Attributes:
        comparable (bool): whether features come from the real FID weights, i.e. whether FIDs are comparable with
            published numbers (which also requires the same protocol: image count, resolution, reference set).
        weights_source (str): the weights file path or the random-weights note.
        weights_sha256 (str | None): SHA-256 of the weights file, for the record.
    """

    def __init__(self, weights: str | os.PathLike | None = None, device: str | torch.device | None = None,
                 resize_input: bool = True, seed: int = 0) -> None:
        super().__init__()
        if weights is None:
            warnings.warn(
                "InceptionFeatureExtractor without a weights file uses random weights: FID/KID values are "
                f"{RANDOM_WEIGHTS_NOTE.split(': ', 1)[1]}. Pass the path of {FID_WEIGHTS_FILENAME}.",
                UserWarning, stacklevel=2,
            )
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                self.net = FIDInceptionV3()
                _init_random(self.net)
            self.net.eval().requires_grad_(False)
            self.comparable = False
            self.weights_source = RANDOM_WEIGHTS_NOTE
            self.weights_sha256: str | None = None
        else:
            self.net = load_fid_inception(weights)
            resolved = Path(weights).expanduser()
            if resolved.is_dir():
                resolved = resolved / FID_WEIGHTS_FILENAME
            self.comparable = True
            self.weights_source = str(resolved)
            self.weights_sha256 = _sha256(resolved)
        self.resize_input = resize_input
        if device is not None:
            self.to(device)
        self.eval()

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def train(self, mode: bool = True) -> InceptionFeatureExtractor:
        # BatchNorm must always use the stored statistics.
        return super().train(False)

    def _prepare_one(self, image: Any, value_range: tuple[float, float]) -> torch.Tensor:
        """One image -> FloatTensor[3, 299, 299] in [-1, 1] on the network's device."""
        if not isinstance(image, torch.Tensor):
            array = np.array(image.convert("RGB") if hasattr(image, "convert") else image)
            if array.ndim != 3 or array.shape[2] != 3:
                raise ValueError(f"expected an RGB image (H, W, 3), got an array of shape {array.shape}")
            image = torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1)
        return self._prepare(image.unsqueeze(0), value_range)[0]

    def _prepare(self, images: torch.Tensor, value_range: tuple[float, float]) -> torch.Tensor:
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be [B, 3, H, W], got shape {tuple(images.shape)}")
        if images.dtype == torch.uint8:
            low, high = 0.0, 255.0
        elif images.is_floating_point():
            low, high = (float(v) for v in value_range)
        else:
            raise ValueError(f"images must be float (in value_range) or uint8, got {images.dtype}")
        x = images.to(self.device, torch.float32)
        if self.resize_input and tuple(x.shape[-2:]) != (INPUT_SIZE, INPUT_SIZE):
            x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
        return (x - low) * (2.0 / (high - low)) - 1.0

    @torch.no_grad()
    def forward(self, images: torch.Tensor | Sequence[Any], value_range: tuple[float, float] = (-1.0, 1.0)
                ) -> torch.Tensor:
        if isinstance(images, torch.Tensor):
            x = self._prepare(images, value_range)
        else:
            if len(images) == 0:
                return torch.empty(0, FEATURE_DIM)
            x = torch.stack([self._prepare_one(image, value_range) for image in images])
        return self.net(x).float().cpu()

    def extra_repr(self) -> str:
        return f"weights={self.weights_source!r}, resize_input={self.resize_input}"


def _init_random(model: nn.Module) -> None:
    """Variance-preserving random init (He-normal convs), so random-weight features neither vanish nor explode."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=module.in_features ** -0.5)
            nn.init.zeros_(module.bias)
