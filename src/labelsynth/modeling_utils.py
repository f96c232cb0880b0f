"""Model base class and the semantic-input building every label-to-image model shares.

A label map arrives as integer ids (`LongTensor[B, H, W]`); the one-hot "semantic input" the papers condition on
is built here, on the model's device, so the large float tensor never crosses a dataloader.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from transformers import PreTrainedModel
from transformers.utils import ModelOutput

from .configuration_utils import LabelSynthConfig
from .hub import ModelCardMixin
from .hub.resolve import resolve_model


class IncompleteWeightsError(OSError):
    """Saved weights that cannot be read, or do not fit the model their config describes (an `OSError`, like
    transformers' other "cannot load this model" errors)."""


@dataclass
class LabelToImageOutput(ModelOutput):
    """Output of every labelsynth generator.

    Args:
        images (`FloatTensor[B, 3, H, W]`): generated images in [-1, 1].
        mu (`FloatTensor[B, z_dim]`, *optional*): posterior mean of the style encoder (VAE models given a style image).
        logvar (`FloatTensor[B, z_dim]`, *optional*): posterior log-variance of the style encoder.
    """

    images: torch.FloatTensor | None = None
    mu: torch.FloatTensor | None = None
    logvar: torch.FloatTensor | None = None


def _as_batched_map(tensor: torch.Tensor, name: str) -> torch.Tensor:
    """Accept [H, W], [B, H, W] or [B, 1, H, W] integer maps and return [B, H, W]."""
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(
            f"{name} must be a torch.LongTensor of ids, got {type(tensor).__name__}; "
            "use LabelMapProcessor (or the pipeline) to turn images/arrays into tensors"
        )
    if tensor.is_floating_point() or tensor.is_complex() or tensor.dtype == torch.bool:
        raise ValueError(
            f"{name} must hold integer class ids, got dtype {tensor.dtype}. If this is a one-hot or colour image, "
            "convert it to an index map first (LabelMapProcessor does this, including palette decoding)."
        )
    if tensor.dim() == 4 and tensor.shape[1] == 1:
        tensor = tensor[:, 0]
    if tensor.dim() == 2:
        tensor = tensor.unsqueeze(0)
    if tensor.dim() != 3:
        raise ValueError(
            f"{name} must have shape [B, H, W] (or [H, W]), got {tuple(tensor.shape)}. "
            "An RGB colour label map must be decoded to ids with LabelMapProcessor first."
        )
    return tensor.long()


def label_ids_to_channels(label_map: torch.Tensor, config: LabelSynthConfig) -> torch.Tensor:
    """Map raw label ids to semantic channel indices, validating the range.

    Args:
        label_map (`LongTensor[B, H, W]`): raw ids in the model's label space.
        config: the model configuration (`label_nc`, `contain_dontcare_label`, `ignore_index`).

    Returns:
        `LongTensor[B, H, W]` of channel indices in ``0 .. config.num_label_channels - 1``.
    """
    label_map = _as_batched_map(label_map, "label_map")
    if config.contain_dontcare_label:
        # The original code rewrites the ignore value to the extra last channel (`label == 255 -> label_nc`).
        label_map = torch.where(label_map == config.ignore_index, torch.full_like(label_map, config.label_nc), label_map)
    num_channels = config.num_label_channels
    if torch.compiler.is_exporting():
        return label_map  # an exported graph cannot branch on values: its clients check ids themselves
    bad = (label_map < 0) | (label_map >= num_channels)
    if bool(bad.any()):
        values = torch.unique(label_map[bad])
        shown = ", ".join(str(v) for v in values[:8].tolist()) + (", ..." if values.numel() > 8 else "")
        allowed = f"0..{num_channels - 1}"
        if config.contain_dontcare_label:
            allowed += f" (and {config.ignore_index} for unlabeled pixels)"
        hint = ""
        if int(values.max()) == 255 and not config.contain_dontcare_label:
            hint = " This model has no don't-care channel, so unlabeled (255) pixels must be assigned a class first."
        raise ValueError(
            f"label_map has ids [{shown}] in {int(bad.sum())} pixels outside the model's label range {allowed} "
            f"(label space {config.label_space!r}, label_nc={config.label_nc}).{hint} Check that the map uses this "
            "model's label space (e.g. raw ADE20K ids 0..150, Cityscapes labelIds 0..34) and is an index map, "
            "not a colour image."
        )
    return label_map


def one_hot_channels(channels: torch.Tensor, num_channels: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """`LongTensor[B, H, W]` of channel indices -> one-hot `Tensor[B, num_channels, H, W]`."""
    b, h, w = channels.shape
    out = torch.zeros(b, num_channels, h, w, dtype=dtype, device=channels.device)
    return out.scatter_(1, channels.unsqueeze(1), 1.0)


def instance_edges(instance_map: torch.Tensor) -> torch.Tensor:
    """Binary instance-boundary map: 1 where any 4-neighbour has a different instance id.

    Args:
        instance_map (`LongTensor[B, H, W]`): instance ids (e.g. Cityscapes ``class * 1000 + index``).

    Returns:
        `FloatTensor[B, 1, H, W]`.
    """
    instance_map = _as_batched_map(instance_map, "instance_map")
    edge = torch.zeros_like(instance_map, dtype=torch.bool)
    horizontal = instance_map[:, :, 1:] != instance_map[:, :, :-1]
    vertical = instance_map[:, 1:, :] != instance_map[:, :-1, :]
    edge[:, :, 1:] |= horizontal
    edge[:, :, :-1] |= horizontal
    edge[:, 1:, :] |= vertical
    edge[:, :-1, :] |= vertical
    return edge.unsqueeze(1).float()


# A model folder keeps its discriminator (for fine-tuning) here: written by the converters and by training, read by the
# training scripts' --pretrained_model.
DISCRIMINATOR_SUBFOLDER = "discriminator"


def check_tensor_set(
    values: Any,
    expected: Mapping[str, tuple[int, ...]],
    *,
    argument: str,
    element: str,
    dtype_ok: Callable[[torch.Tensor], bool],
    dtype_name: str,
    size: tuple[int, int],
    hint: str,
) -> dict[str, torch.Tensor]:
    """Validate a user-given set of named tensors (SEAN's noise maps, pix2pix's dropout masks) against the shapes the
    model needs for this label-map size; each may also have batch size 1 (shared by every image).

    Args:
        values: what the user passed as `argument`.
        expected: ``{name: (B, C, h, w)}`` in the order the model uses them.
        argument, element: how messages name the argument and one entry ("map", "mask").
        dtype_ok, dtype_name: which tensors are acceptable, and how to say it ("floating-point", "bool (or 0/1)").
        size: the label map's ``(H, W)``, for messages.
        hint: how to get a complete valid set (appended to errors).

    Returns:
        The tensors, keyed and ordered as `expected`.
    """
    if not isinstance(values, Mapping):
        raise TypeError(f"{argument} must be a dict {{name: tensor}} with one {element} for each of "
                        f"{list(expected)}, got {type(values).__name__}; {hint}")
    missing = [name for name in expected if name not in values]
    unexpected = [name for name in values if name not in expected]
    if missing or unexpected:
        raise ValueError(f"{argument} needs exactly one {element} for each of {list(expected)}; missing {missing}, "
                         f"unexpected {unexpected}; {hint}")
    for name, shape in expected.items():
        value, wanted = values[name], ", ".join(map(str, shape))
        if not isinstance(value, torch.Tensor) or not dtype_ok(value):
            kind = value.dtype if isinstance(value, torch.Tensor) else type(value).__name__
            raise ValueError(f"{argument}[{name!r}] must be a {dtype_name} tensor [{wanted}], got {kind}")
        if value.dim() != len(shape) or tuple(value.shape[1:]) != tuple(shape[1:]) or value.shape[0] not in (1, shape[0]):
            shared = ", ".join(map(str, (1, *shape[1:])))
            raise ValueError(f"{argument}[{name!r}] has shape {tuple(value.shape)}; for {shape[0]} label map(s) of "
                             f"{size[0]}x{size[1]} it needs [{wanted}] (or [{shared}], shared by every image); {hint}")
    return {name: values[name] for name in expected}


def save_discriminator(discriminator: PreTrainedModel, model_folder: str | Path) -> None:
    """Save a discriminator into `model_folder/discriminator/` (no model card: it is not a model to use alone)."""
    discriminator.save_pretrained(Path(model_folder) / DISCRIMINATOR_SUBFOLDER, write_model_card=False)


def load_discriminator(model_folder: str | Path, discriminator_class: type[PreTrainedModel],
                       config: LabelSynthConfig) -> PreTrainedModel:
    """The discriminator saved in `model_folder/discriminator/`, or a new `discriminator_class(config)` when the folder
    has none (or `model_folder` is a Hub id)."""
    folder = Path(model_folder) / DISCRIMINATOR_SUBFOLDER
    return discriminator_class.from_pretrained(folder) if folder.is_dir() else discriminator_class(config)


class LabelSynthPreTrainedModel(ModelCardMixin, PreTrainedModel):
    """Base class of labelsynth generators: semantic-input building, paper-style init, Hub I/O.

    Subclasses set `config_class`, `model_card_info` (a `labelsynth.hub.ModelCardInfo`) and implement
    `forward(label_map, instance_map=None, ...)`. `save_pretrained` / `push_to_hub` also write the model card.
    """

    config_class = LabelSynthConfig
    base_model_prefix = "labelsynth"
    main_input_name = "label_map"
    input_modalities = "image"
    _no_split_modules: list[str] = []
    # Xavier-normal with gain 0.02 is what SPADE-family code uses (`--init_type xavier --init_variance 0.02`).
    init_gain: float = 0.02
    # The per-image inputs `forward` takes besides `label_map`, and how the pipeline, CLI and demo prepare each one:
    #   "instance": instance ids resized with the label map (nearest)      -> LongTensor[1, H, W]
    #   "image":    RGB image resized to the label map's output size        -> FloatTensor[1, 3, H, W] in [-1, 1]
    #   "label":    another label map of the model's label space, same size -> LongTensor[1, H, W]
    #   "tensor":   array or tensor, batch dimension added when missing
    #   "value":    passed unchanged (ints, dicts, style-code objects)
    #   "region":   class ids -> list[int], or a mask resized with the label map -> BoolTensor[1, H, W]
    #   "seed":     an int -> a seeded torch.Generator (one int for a list of maps: item i gets seed + i)
    # A model may also define `pipeline_forward_inputs(kwargs) -> kwargs` to turn the prepared inputs (and
    # `generator`) into its forward arguments (OASIS: a region and a seed -> a noise map).
    pipeline_inputs: ClassVar[dict[str, str]] = {"instance_map": "instance", "style_image": "image", "noise": "tensor"}

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike | None, *args: Any,
                        **kwargs: Any) -> LabelSynthPreTrainedModel:
        """`PreTrainedModel.from_pretrained`, strict, and also taking labelsynth's registered ids.

        Besides folders and Hub ids, `pretrained_model_name_or_path` may be a registered id (``"spade-cityscapes-tiny"``,
        ``"spade-ade20k"``; see `labelsynth.hub.resolve.resolve_model`). Unlike transformers' default, weights that do
        not fit the config exactly (missing, unexpected or mis-shaped tensors) and unreadable weight files are an
        `IncompleteWeightsError` naming them: a model with some tensors left at their random init generates
        garbage, and says nothing.
        """
        if pretrained_model_name_or_path is not None:
            pretrained_model_name_or_path = resolve_model(pretrained_model_name_or_path)
        want_info = kwargs.pop("output_loading_info", False)
        try:
            model, info = super().from_pretrained(pretrained_model_name_or_path, *args, output_loading_info=True,
                                                  **kwargs)
        except SafetensorError as err:
            raise IncompleteWeightsError(
                f"{pretrained_model_name_or_path}: model.safetensors cannot be read ({err}); the file is truncated or "
                "corrupt: download or convert it again"
            ) from None
        problems = [
            f"{len(keys)} {what} ({', '.join(map(str, sorted(keys)[:5]))}{', ...' if len(keys) > 5 else ''})"
            for what, keys in (("missing tensors", info["missing_keys"]), ("unexpected tensors", info["unexpected_keys"]),
                               ("tensors of the wrong shape", info["mismatched_keys"]),
                               ("loading errors", info["error_msgs"]))
            if keys
        ]
        if problems:
            raise IncompleteWeightsError(
                f"{pretrained_model_name_or_path}: the weights do not fit {cls.__name__} as its config.json describes "
                f"it: {'; '.join(problems)}. The folder is incomplete or its files come from different models: "
                "download or convert it again"
            )
        return (model, info) if want_info else model

    def export_onnx(self, path: str | os.PathLike, *, dtype: str = "fp32", example_size: tuple[int, int] | None = None,
                    dynamic_size: bool = True) -> Path:
        """Export this generator to ONNX: label ids (and the inputs `labelsynth.export.onnx.onnx_inputs` lists) in,
        images `[B, 3, H, W]` in [-1, 1] out, dynamic batch, label space / palette / config as metadata.

        Args:
            path: the ``.onnx`` file to write.
            dtype: ``"fp32"`` or ``"fp16"``.
            example_size: ``(H, W)`` to trace (default: `config.image_size`).
            dynamic_size: also make height and width dynamic where the model accepts several sizes.

        Returns:
            The written path. See `labelsynth.export.onnx.export_onnx` (needs ``pip install 'labelsynth[export]'``).
        """
        from .export.onnx import export_onnx

        return export_onnx(self, path, dtype=dtype, example_size=example_size, dynamic_size=dynamic_size)

    def compile_for_inference(self, **compile_kwargs: Any) -> LabelSynthPreTrainedModel:
        """Run the generator network through `torch.compile` (opt-in; returns the model).

        Inductor compiles the plain (dense) computation, so this switches `fast_inference` off: the fast paths'
        layouts are Python objects it cannot fuse (and on CPU its C++ code for them does not build). What pays
        depends on the model and the machine (`docs/performance.md`): on the built-in 128x256 SPADE, compiled beat
        both the plain and the fast path on the CPU; on large models the fast path's exact shortcuts do more than
        fusion. Each new input size compiles again (``dynamic=False`` by default, the fastest code); the weights and
        `state_dict` keys are unchanged. Works on any device `torch.compile` supports.

        Args:
            **compile_kwargs: passed to `torch.nn.Module.compile` (e.g. ``mode="max-autotune"`` on a GPU).
        """
        if hasattr(self, "fast_inference"):
            self.fast_inference = False
        self.generator.compile(**{"dynamic": False, **compile_kwargs})
        return self

    def _init_weights(self, module: torch.nn.Module) -> None:
        """Paper init instead of transformers' N(0, 0.02) default: Xavier-normal(gain) weights, zero biases."""
        if isinstance(module, (torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.Linear)):
            weight = _trainable_weight(module)
            torch.nn.init.xavier_normal_(weight, gain=self.init_gain)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)
        elif isinstance(module, torch.nn.modules.batchnorm._BatchNorm) and module.affine:
            torch.nn.init.normal_(module.weight, 1.0, self.init_gain)
            torch.nn.init.zeros_(module.bias)

    def prepare_label_channels(self, label_map: torch.Tensor) -> torch.Tensor:
        """Validated channel indices `LongTensor[B, H, W]` on the model's device."""
        return label_ids_to_channels(label_map.to(self.device), self.config)

    def prepare_instance_edges(self, instance_map: torch.Tensor | None, size: tuple[int, int]) -> torch.Tensor | None:
        """Instance-edge channel `FloatTensor[B, 1, H, W]` when the config uses it, else None."""
        if not self.config.use_instance_edges:
            return None
        if instance_map is None:
            raise ValueError(
                "this model was trained with instance edges (use_instance_edges=True), so it needs an instance_map "
                "of the same size as the label map (e.g. Cityscapes *_instanceIds.png). Without instances, pass the "
                "label map itself as instance_map: every class region then counts as one instance."
            )
        edges = instance_edges(instance_map.to(self.device))
        if tuple(edges.shape[-2:]) != tuple(size):
            raise ValueError(
                f"instance_map is {edges.shape[-2]}x{edges.shape[-1]} (HxW) but label_map is {size[0]}x{size[1]}; "
                "resize both to the same size with nearest interpolation (LabelMapProcessor does this)."
            )
        return edges

    def build_semantic_input(self, label_map: torch.Tensor, instance_map: torch.Tensor | None = None) -> torch.Tensor:
        """One-hot semantic input as the originals build it.

        Args:
            label_map (`LongTensor[B, H, W]`): raw ids.
            instance_map (`LongTensor[B, H, W]`, *optional*): instance ids, needed when `use_instance_edges`.

        Returns:
            `FloatTensor[B, semantic_nc, H, W]`: one-hot ids (+ don't-care channel) (+ instance-edge channel last).
        """
        channels = self.prepare_label_channels(label_map)
        semantics = one_hot_channels(channels, self.config.num_label_channels)
        edges = self.prepare_instance_edges(instance_map, tuple(channels.shape[-2:]))
        if edges is not None:
            semantics = torch.cat([semantics, edges], dim=1)
        return semantics


def _trainable_weight(module: torch.nn.Module) -> torch.Tensor:
    """The tensor to initialise: the raw weight behind a spectral-norm parametrization, else `module.weight`."""
    if torch.nn.utils.parametrize.is_parametrized(module, "weight"):
        return module.parametrizations.weight.original
    return module.weight


def nearest_resize(tensor: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Nearest-neighbour resize of a [B, C, H, W] map, as the originals resize label maps inside the network."""
    if tuple(tensor.shape[-2:]) == tuple(size):
        return tensor
    return F.interpolate(tensor, size=size, mode="nearest")


def check_finite(tensor: torch.Tensor, name: str) -> torch.Tensor:
    """`tensor` unchanged if every value is finite; NaN/inf (which turn a whole image black) raise a ValueError."""
    if (tensor.is_floating_point() or tensor.is_complex()) and not torch.compiler.is_exporting():
        bad = ~torch.isfinite(tensor)
        if bad.any():
            raise ValueError(f"{name} holds {int(bad.sum())} non-finite value(s) (NaN/inf) of {tensor.numel()}; "
                             "pass finite values, e.g. torch.randn for noise")
    return tensor
