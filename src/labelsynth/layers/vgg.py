"""VGG-19 (Simonyan & Zisserman 2015) convolutional feature extractor for perceptual losses.

The module layout and parameter names are those of torchvision's ``vgg19().features`` (``features.0.weight`` ...
``features.34.bias``; 16 3x3 convolutions, each followed by a ReLU, and 5 2x2 poolings), so the ImageNet weights
``vgg19-dcbb9e9d.pth`` (or any state dict with these keys, e.g. the ``features.*`` part of ``timm/vgg19.tv_in1k``)
load unchanged. torchvision itself is not needed.

Layer names follow the paper: ``conv{block}_{i}``, ``relu{block}_{i}``, ``pool{block}``; their positions in
``features`` are::

    conv1_1 0  relu1_1 1  conv1_2 2  relu1_2 3  pool1 4
    conv2_1 5  relu2_1 6  conv2_2 7  relu2_2 8  pool2 9
    conv3_1 10 relu3_1 11 ... relu3_4 17 pool3 18
    conv4_1 19 relu4_1 20 ... relu4_4 26 pool4 27
    conv5_1 28 relu5_1 29 ... relu5_4 35 pool5 36

(SPADE / pix2pixHD perceptual slices end at relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 = features[1, 6, 11, 20, 29].)
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from ..state_dict_utils import load_torch_state_dict, state_dict_mismatch
from .winograd import conv3x3_by_winograd_where_it_pays

__all__ = [
    "DEFAULT_HUB_FILENAMES",
    "VGG19",
    "VGG19_CONV_CHANNELS",
    "VGG19_LAYER_NAMES",
    "load_vgg19",
    "vgg19_layer_index",
]

# Output channels per block (4 convs in blocks 3-5, 2 in blocks 1-2).
VGG19_CONV_CHANNELS: tuple[tuple[int, ...], ...] = ((64, 64), (128, 128), (256,) * 4, (512,) * 4, (512,) * 4)


def _layer_names() -> tuple[str, ...]:
    names = []
    for block, channels in enumerate(VGG19_CONV_CHANNELS, start=1):
        for i in range(1, len(channels) + 1):
            names += [f"conv{block}_{i}", f"relu{block}_{i}"]
        names.append(f"pool{block}")
    return tuple(names)


VGG19_LAYER_NAMES: tuple[str, ...] = _layer_names()  # index in `features` = position in this tuple
_LAYER_INDEX = {name: i for i, name in enumerate(VGG19_LAYER_NAMES)}

# Files looked for, in this order, when `load_vgg19` is given a Hub id or a directory without `hub_filename`.
DEFAULT_HUB_FILENAMES: tuple[str, ...] = (
    "model.safetensors",
    "vgg19.safetensors",
    "vgg19.pth",
    "vgg19-dcbb9e9d.pth",
    "pytorch_model.bin",
)
# Keys of full classification checkpoints that a feature extractor does not use: torchvision (`classifier.*`) and
# timm (`pre_logits.*`, `head.*`).
_CLASSIFIER_PREFIXES = ("classifier.", "pre_logits.", "head.")


def vgg19_layer_index(name: str | int) -> int:
    """Index in ``VGG19.features`` of a layer name (``"relu3_1"`` -> 11); integers are checked and passed through."""
    if isinstance(name, int):
        if not 0 <= name < len(VGG19_LAYER_NAMES):
            raise ValueError(f"VGG19 layer index {name} out of range 0..{len(VGG19_LAYER_NAMES) - 1}")
        return name
    try:
        return _LAYER_INDEX[name]
    except KeyError:
        raise ValueError(f"unknown VGG19 layer {name!r}; expected one of {', '.join(VGG19_LAYER_NAMES)}") from None


class VGG19(nn.Module):
    """VGG-19 convolutional trunk returning intermediate activations, frozen by default.

    Args:
        pool: ``"max"`` (torchvision / ImageNet weights, SPADE, pix2pixHD) or ``"avg"`` (2x2 average pooling, as CRN and
            Gatys et al. use; same weights).
        include_classifier: also build torchvision's ``classifier`` head (``classifier.{0,3,6}``) so that a full
            torchvision checkpoint loads with its head; it is never used by :meth:`slices`.
        frozen: parameters get ``requires_grad=False`` and the module stays in eval mode even when a parent module
            calls ``.train()`` (call :meth:`unfreeze` to fine-tune).

    Shapes: ``slices(x [B, 3, H, W], layers) -> list[Tensor]`` of the activations after each named layer, in the
    order asked, computed in one pass that stops at the deepest requested layer. The ReLUs are not in-place, so a
    returned conv output is never overwritten by the following ReLU.
    """

    def __init__(self, pool: Literal["max", "avg"] = "max", include_classifier: bool = False, frozen: bool = True):
        super().__init__()
        if pool not in ("max", "avg"):
            raise ValueError(f"pool must be 'max' or 'avg', got {pool!r}")
        self.pool = pool
        layers: list[nn.Module] = []
        in_channels = 3
        for channels in VGG19_CONV_CHANNELS:
            for out_channels in channels:
                layers += [nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.ReLU()]
                in_channels = out_channels
            layers.append(nn.MaxPool2d(2, 2) if pool == "max" else nn.AvgPool2d(2, 2))
        self.features = nn.Sequential(*layers)
        if include_classifier:
            self.classifier = nn.Sequential(
                nn.Linear(512 * 7 * 7, 4096), nn.ReLU(), nn.Dropout(), nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(),
                nn.Linear(4096, 1000),
            )
        self.reset_parameters()
        self.frozen = False
        if frozen:
            self.freeze()

    def reset_parameters(self) -> None:
        """torchvision's initialisation (kaiming-normal fan-out convs, N(0, 0.01) linears, zero biases)."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0, 0.01)
                nn.init.zeros_(module.bias)

    def freeze(self) -> VGG19:
        """No gradients into the weights, eval mode kept."""
        self.requires_grad_(False)
        self.frozen = True
        return super().train(False)

    def unfreeze(self) -> VGG19:
        self.requires_grad_(True)
        self.frozen = False
        return self

    def train(self, mode: bool = True) -> VGG19:
        return super().train(mode and not self.frozen)

    def slices(self, x: torch.Tensor, layers: Sequence[str | int] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1",
                                                                         "relu5_1")) -> list[torch.Tensor]:
        """Activations after each of ``layers`` (names or ``features`` indices; repeats allowed), in that order."""
        if isinstance(layers, (str, int)):
            raise TypeError("layers must be a sequence of layer names, e.g. ('relu1_1',), not a single name")
        indices = [vgg19_layer_index(layer) for layer in layers]
        if not indices:
            return []
        wanted = set(indices)
        found: dict[int, torch.Tensor] = {}
        for i, module in enumerate(self.features[: max(indices) + 1]):
            # The wide layers run by Winograd, forward and input gradient: with a perceptual loss on the generated
            # image, VGG's direct convolutions were most of a pix2pixHD training iteration.
            x = conv3x3_by_winograd_where_it_pays(module, x) if isinstance(module, nn.Conv2d) else module(x)
            if i in wanted:
                found[i] = x
        return [found[i] for i in indices]

    def forward(self, x: torch.Tensor, layers: Sequence[str | int] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1",
                                                                       "relu5_1")) -> list[torch.Tensor]:
        return self.slices(x, layers)


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path), device="cpu")
    return load_torch_state_dict(path)


def _resolve_weights_file(weights: str | Path, hub_filename: str | None, revision: str | None,
                          cache_dir: str | Path | None) -> Path:
    path = Path(weights)
    candidates = (hub_filename,) if hub_filename else DEFAULT_HUB_FILENAMES
    if path.is_file():
        return path
    if path.is_dir():
        for name in candidates:
            if (path / name).is_file():
                return path / name
        raise FileNotFoundError(f"none of {list(candidates)} found in directory {path}")
    text = str(weights)
    if isinstance(weights, Path) or not re.fullmatch(r"[\w.\-]+/[\w.\-]+", text) or text.endswith(
            (".pth", ".pt", ".bin", ".safetensors")):
        raise FileNotFoundError(f"VGG19 weights file {text!r} not found (and it is not a Hub repo id 'org/name')")

    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    for name in candidates:
        try:
            return Path(hf_hub_download(text, name, revision=revision, cache_dir=cache_dir))
        except EntryNotFoundError:  # remote 404 or, offline, not in the cache
            continue
    raise FileNotFoundError(
        f"none of {list(candidates)} found in Hub repo {text!r} (revision {revision or 'main'}); pass hub_filename=... "
        "(when offline, the file must already be in the Hugging Face cache)"
    )


def _normalize_keys(state_dict: Mapping[str, torch.Tensor], include_classifier: bool) -> dict[str, torch.Tensor]:
    keys = list(state_dict)
    # A state dict saved from `vgg19().features` alone: "0.weight", "0.bias", ...
    if keys and all(re.fullmatch(r"\d+\.(weight|bias)", k) for k in keys):
        return {f"features.{k}": v for k, v in state_dict.items()}
    return {k: v for k, v in state_dict.items()
            if not (k.startswith(_CLASSIFIER_PREFIXES) and not (include_classifier and k.startswith("classifier.")))}


def load_vgg19(weights: str | Path | Mapping[str, torch.Tensor] | None = None, *, hub_filename: str | None = None,
               revision: str | None = None, cache_dir: str | Path | None = None, pool: Literal["max", "avg"] = "max",
               include_classifier: bool = False, frozen: bool = True) -> VGG19:
    """A :class:`VGG19` with weights from a file, a directory, a Hub repo or a state dict.

    Args:
        weights: a ``.pth``/``.pt``/``.bin`` file (read with ``torch.load(weights_only=True)``) or a ``.safetensors``
            file with torchvision keys (``features.N.weight``/``bias``; ``classifier.*``, ``pre_logits.*`` and
            ``head.*`` of full classification checkpoints are ignored; a bare ``vgg19().features`` state dict with
            keys ``N.weight`` is accepted too); a directory or a Hub repo id ``"org/name"`` (downloaded with
            ``huggingface_hub.hf_hub_download``, which works offline from the cache) holding ``hub_filename`` or,
            without it, the first of :data:`DEFAULT_HUB_FILENAMES`; an in-memory state dict; or ``None`` for
            torchvision's random initialisation (tests only: a warning is emitted).
        hub_filename, revision, cache_dir: passed to ``hf_hub_download``.
        pool, include_classifier, frozen: see :class:`VGG19`.

    Raises:
        FileNotFoundError: no such file / repo file.
        ValueError: the state dict misses VGG19 keys, has unexpected ones or wrong shapes (all of them are listed).
    """
    if weights is None:
        warnings.warn("load_vgg19(None): randomly initialised VGG19, perceptual losses will be meaningless",
                      stacklevel=2)
        return VGG19(pool=pool, include_classifier=include_classifier, frozen=frozen)
    source = "state dict"
    if isinstance(weights, Mapping):
        state_dict = dict(weights)
    else:
        path = _resolve_weights_file(weights, hub_filename, revision, cache_dir)
        source = str(path)
        state_dict = _read_state_dict(path)
    state_dict = _normalize_keys(state_dict, include_classifier)
    with torch.device("meta"):  # no random initialisation of weights that are overwritten below
        model = VGG19(pool=pool, include_classifier=include_classifier, frozen=frozen)
    model = model.to_empty(device="cpu")
    problems = state_dict_mismatch(model.state_dict(), state_dict, limit=12)
    if problems:
        raise ValueError(f"{source} is not a torchvision-layout VGG19 state dict (expected keys features.0.weight ... "
                         f"features.34.bias): {problems}")
    model.load_state_dict(state_dict)
    return model
