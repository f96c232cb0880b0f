"""ONNX export of every labelsynth GAN generator, for onnxruntime and other non-Python clients.

The exported graph is the model's plain computation (the paper's, as `model.fast_inference = False` runs it) from
raw inputs to the image:

* inputs: ``label_map`` (int64 ``[B, H, W]`` raw ids of the model's label space) and the per-image tensors the model
  declares (`onnx_inputs`: instance ids, a style image or exemplar in [-1, 1], its label map, noise / latent);
* inside: the id -> channel mapping (don't-care id), the one-hot map and the instance edges, so a client only
  decodes its label PNG to ids;
* output: ``images`` (float ``[B, 3, H, W]`` in [-1, 1]).

The batch is dynamic; height and width are dynamic too where the model accepts sizes other than its native one
(multiples of ``size_multiple``, recorded in the metadata), fixed where it does not (a VAE's latent, for example).
Randomness is an input (noise, latent), never drawn inside the graph, and the graph does not validate ids: a client
checks them against the label space it finds in the metadata.

Metadata (``metadata_props``, keys prefixed ``labelsynth.``): ``model_type``, ``config`` (the model's config.json),
``label_space`` (name, class names, ignore id/colour, palette), ``palette`` (RGB per id, for rendering maps),
``inputs`` / ``output`` (names, dtypes, shapes, meaning), ``size`` (native size, multiple, whether it is dynamic)
and ``notes`` (fixed choices such as SEAN's noise injection off).

Exporting uses torch's maintained exporter (``torch.onnx.export(..., dynamo=True)``, which needs ``onnxscript``);
install the extra: ``pip install 'labelsynth[export]'``.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from ..modeling_utils import LabelSynthPreTrainedModel

__all__ = ["METADATA_PREFIX", "ONNX_DTYPES", "OnnxInput", "example_inputs", "export_onnx", "onnx_inputs",
           "read_metadata"]

METADATA_PREFIX = "labelsynth."
ONNX_DTYPES = {"fp32": torch.float32, "fp16": torch.float16}
DEFAULT_OPSET = 18


@dataclass(frozen=True)
class OnnxInput:
    """One input of an exported generator.

    Attributes:
        name: the graph input's name (the `forward` argument it feeds).
        dtype: ``"int64"`` (ids, indices) or ``"float"`` (the export dtype).
        shape: symbolic shape, e.g. ``("batch", "height", "width")``; numbers are fixed.
        description: what to feed.
    """

    name: str
    dtype: str
    shape: tuple[str | int, ...]
    description: str


def _size_multiple(model: LabelSynthPreTrainedModel) -> int:
    """The side-length multiple the model's forward accepts."""
    config = model.config
    if config.model_type == "cocosnet":
        return max(32, 4 * config.warp_stride)  # as CoCosNetModel._check_size
    if config.model_type == "oasis":
        from ..models.oasis.configuration_oasis import GENERATOR_FACTOR

        return GENERATOR_FACTOR
    for name in ("upsampling_factor", "size_divisor", "downsampling_factor"):
        value = getattr(config, name, None)
        if isinstance(value, int):
            return value
    raise ValueError(f"cannot tell which sizes {type(model).__name__} accepts")


def _fixed_size(model: LabelSynthPreTrainedModel) -> bool:
    """True where the model generates its native size only (SPADE with a VAE: the latent maps to a fixed grid)."""
    return model.config.model_type == "spade" and bool(model.config.use_vae)


def onnx_inputs(model: LabelSynthPreTrainedModel) -> tuple[list[OnnxInput], dict[str, Any], list[str]]:
    """The graph inputs of `model`'s export, the fixed `forward` arguments, and notes on fixed choices.

    Returns:
        ``(inputs, fixed_kwargs, notes)``: `inputs` in graph order (``label_map`` first).

    Raises:
        ValueError: `model` is not one of the exportable GAN families.
        TypeError: `model` is not a generator (a discriminator, say).
    """
    config = model.config
    family = config.model_type
    if not isinstance(getattr(model, "generator", None), torch.nn.Module):
        raise TypeError(f"{type(model).__name__} is not a generator model (it has no generator network); export the "
                         "model that generates images, e.g. SPADEModel, not its discriminator")
    ids = ("batch", "height", "width")
    image = ("batch", 3, "height", "width")
    inputs = [OnnxInput("label_map", "int64", ids, f"raw label ids of the {config.label_space!r} label space "
                        f"(0..{config.label_nc - 1}" + (f", {config.ignore_index} = don't care)"
                                                        if config.contain_dontcare_label else ")"))]
    instance = OnnxInput("instance_map", "int64", ids, "instance ids (e.g. Cityscapes class * 1000 + index); "
                         "without instances, the label map itself")
    fixed: dict[str, Any] = {}
    notes: list[str] = []
    if family in ("spade", "pix2pix", "pix2pixhd") and config.use_instance_edges:
        inputs.append(instance)
    if family == "spade" and config.use_vae:
        inputs.append(OnnxInput("noise", "float", ("batch", config.z_dim), "the latent z (N(0, 1) samples for "
                                "random styles; the style encoder's mu for a style image's look)"))
    elif family == "pix2pix":
        fixed["test_mode"] = "eval"
        notes.append("pix2pix runs test_mode='eval' (no test-time dropout, running BatchNorm statistics)")
    elif family == "pix2pixhd" and config.use_features:
        inputs.append(OnnxInput("features", "float", ("batch", config.feat_num, "height", "width"),
                                "the instance-wise feature channels (a cluster centre painted over each instance)"))
    elif family == "crn":
        inputs.append(OnnxInput("output_index", "int64", ("batch",),
                                f"which of the {config.num_outputs} candidate images to output, per image"))
    elif family == "sean":
        inputs.append(OnnxInput("style_image", "float", image, "the style photo in [-1, 1], at the label map's size"))
        inputs.append(OnnxInput("style_label_map", "int64", ids, "the style photo's label map (ids as label_map)"))
        fixed["add_noise"] = False
        notes.append("SEAN's noise injection is off (add_noise=False): the output is deterministic")
    elif family == "cocosnet":
        inputs.append(OnnxInput("exemplar", "float", image, "the exemplar photo in [-1, 1], at the label map's size"))
        inputs.append(OnnxInput("exemplar_label_map", "int64", ids, "the exemplar's label map (ids as label_map)"))
        if config.maskmix and config.noise_for_mask:
            stride = config.warp_stride
            inputs.append(OnnxInput("mask_noise", "float",
                                    ("batch", config.num_label_channels, f"height/{stride}", f"width/{stride}"),
                                    f"N(0, {config.mask_noise_std}^2) noise on the correspondence grid"))
    elif family == "oasis":
        inputs.append(OnnxInput("noise", "float", ("batch", config.z_dim), "the 3D noise vector per image, N(0, 1)"))
    elif family not in ("spade", "pix2pix", "pix2pixhd"):
        raise ValueError(f"ONNX export supports the GAN generators (spade, pix2pix, pix2pixhd, crn, sean, cocosnet, "
                         f"oasis), not {family!r} ({type(model).__name__})")
    return inputs, fixed, notes


def _example(spec: OnnxInput, model: LabelSynthPreTrainedModel, batch: int, size: tuple[int, int],
             dtype: torch.dtype, generator: torch.Generator) -> torch.Tensor:
    """A valid example tensor for `spec` (export traces shapes; the values only have to be legal)."""
    sizes = {"batch": batch, "height": size[0], "width": size[1]}
    stride = getattr(model.config, "warp_stride", 1)
    sizes.update({f"height/{stride}": size[0] // stride, f"width/{stride}": size[1] // stride})
    shape = tuple(sizes[d] if isinstance(d, str) else d for d in spec.shape)
    if spec.name == "output_index":
        return torch.randint(model.config.num_outputs, shape, generator=generator)
    if spec.dtype == "int64":
        return torch.randint(model.config.label_nc, shape, generator=generator)
    return torch.randn(shape, generator=generator).clamp(-1, 1).to(dtype)


def example_inputs(model: LabelSynthPreTrainedModel, batch_size: int = 1, size: tuple[int, int] | None = None,
                   seed: int = 0) -> dict[str, torch.Tensor]:
    """Random valid inputs of `model`'s exported graph, keyed by input name (random ids, images in [-1, 1], N(0, 1)
    noise), at `size` (default: the native size); for benchmarks and smoke tests."""
    specs, _, _ = onnx_inputs(model)
    size = tuple(size or model.config.image_size)
    generator = torch.Generator().manual_seed(seed)
    return {s.name: _example(s, model, batch_size, size, model.dtype, generator) for s in specs}


class _ExportGraph(torch.nn.Module):
    """`model`'s plain forward with tensor inputs in a fixed order and the image as the only output."""

    def __init__(self, model: LabelSynthPreTrainedModel, names: list[str], fixed: dict[str, Any]):
        super().__init__()
        self.model, self.names, self.fixed = model, names, fixed

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        inputs = dict(zip(self.names, tensors))
        if self.model.config.model_type == "crn":
            # CRNModel.forward checks output_index on the host; the graph takes it as data, as its last step does.
            candidates = self.model.generator(self.model.build_semantic_input(inputs["label_map"]))
            index = inputs["output_index"]
            return candidates[torch.arange(candidates.shape[0]), index].clamp(-1, 1)
        return self.model(**inputs, **self.fixed, return_dict=False)[0]


@contextlib.contextmanager
def _plain_eval(model: LabelSynthPreTrainedModel) -> Iterator[None]:
    """Eval mode, plain path, no gradients; restored afterwards."""
    training, fast = model.training, getattr(model, "fast_inference", None)
    model.eval()
    if fast is not None:
        model.fast_inference = False
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(training)
        if fast is not None:
            model.fast_inference = fast


def _label_space_metadata(model: LabelSynthPreTrainedModel) -> dict[str, Any]:
    from ..label_spaces import generate_palette, get_label_space

    config = model.config
    try:
        space = get_label_space(config.label_space)
    except (KeyError, ValueError):
        space = None
    names = list(space.names) if space is not None else [str(i) for i in range(config.label_nc)]
    palette = space.palette if space is not None and space.palette is not None else generate_palette(len(names))
    return {
        "name": config.label_space,
        "names": names,
        "ignore_index": config.ignore_index if config.contain_dontcare_label else None,
        "ignore_color": list(space.ignore_color) if space is not None else [0, 0, 0],
        "palette": [[int(c) for c in row] for row in palette],
    }


def export_onnx(model: LabelSynthPreTrainedModel, path: str | os.PathLike, *, dtype: str = "fp32",
                example_size: tuple[int, int] | None = None, opset: int = DEFAULT_OPSET,
                dynamic_size: bool = True) -> Path:
    """Export `model`'s generator to an ONNX file (see the module docstring for the graph and its metadata).

    Args:
        model: a labelsynth GAN generator (its device is used; the export runs the plain path in eval mode and
            leaves the model as it was).
        path: the ``.onnx`` file to write (its folder is created).
        dtype: ``"fp32"`` or ``"fp16"`` (float inputs, weights and output in that dtype; ids stay int64).
        example_size: ``(H, W)`` traced (default: the model's native ``config.image_size``).
        opset: the ONNX opset.
        dynamic_size: export height and width as dynamic dimensions where the model accepts several sizes.

    Returns:
        The written path.

    Raises:
        ValueError: unknown dtype, a model family that cannot be exported, or an invalid `example_size`.
        ImportError: onnx / onnxscript are not installed (``pip install 'labelsynth[export]'``).
    """
    if dtype not in ONNX_DTYPES:
        raise ValueError(f"dtype must be one of {sorted(ONNX_DTYPES)}, got {dtype!r}")
    try:
        import onnx
        import onnxscript  # noqa: F401  (torch's exporter needs it)
    except ImportError as err:
        raise ImportError(f"ONNX export needs onnx and onnxscript ({err}); install them with "
                          "`pip install 'labelsynth[export]'`") from None
    specs, fixed, notes = onnx_inputs(model)
    multiple, fixed_size = _size_multiple(model), _fixed_size(model)
    size = tuple(example_size or model.config.image_size)
    if len(size) != 2 or size[0] % multiple or size[1] % multiple or (fixed_size and size != tuple(
            model.config.image_size)):
        raise ValueError(f"example_size {size} is not a size this model accepts: "
                         + (f"exactly {tuple(model.config.image_size)}" if fixed_size else
                            f"height and width multiples of {multiple}"))
    torch_dtype = ONNX_DTYPES[dtype]
    generator = torch.Generator().manual_seed(0)
    # Batch 2 while tracing: a batch of 1 would let the exporter specialise the batch dimension to 1.
    examples = tuple(_example(s, model, 2, size, torch_dtype, generator).to(model.device) for s in specs)
    batch = torch.export.Dim("batch", min=1, max=1024)
    dynamic_shapes = []
    for spec in specs:
        dims: dict[int, Any] = {}
        for axis, dim in enumerate(spec.shape):
            if dim == "batch":
                dims[axis] = batch
            elif isinstance(dim, str) and dynamic_size and not fixed_size:
                dims[axis] = torch.export.Dim.AUTO  # the exporter derives H/W relations and divisibility itself
        dynamic_shapes.append(dims)

    original_dtype = model.dtype
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        if torch_dtype != original_dtype:
            model.to(torch_dtype)
        with _plain_eval(model):
            program = torch.onnx.export(_ExportGraph(model, [s.name for s in specs], fixed).eval(), examples,
                                        input_names=[s.name for s in specs], output_names=["images"],
                                        dynamic_shapes=(tuple(dynamic_shapes),), opset_version=opset, dynamo=True,
                                        optimize=True, verbose=False)
            # Serialise now: the initializers share the parameters' storage, which restoring the dtype replaces.
            proto = program.model_proto
    finally:
        if model.dtype != original_dtype:
            model.to(original_dtype)
    _name_dimensions(proto, specs)
    dynamic = {d.dim_param for i in proto.graph.input for d in i.type.tensor_type.shape.dim if d.dim_param}
    float_name = {"fp32": "float32", "fp16": "float16"}[dtype]
    (output,) = proto.graph.output
    metadata = {
        "model_type": model.config.model_type,
        "config": model.config.to_json_string(use_diff=False),
        "label_space": json.dumps(_label_space_metadata(model)),
        "palette": json.dumps(_label_space_metadata(model)["palette"]),
        "inputs": json.dumps([{**asdict(s), "dtype": "int64" if s.dtype == "int64" else float_name,
                               "shape": [d.dim_param or d.dim_value for d in graph_input.type.tensor_type.shape.dim]}
                              for s, graph_input in zip(specs, proto.graph.input)]),
        "output": json.dumps({"name": "images", "dtype": float_name, "range": [-1, 1],
                              "shape": [d.dim_param or d.dim_value for d in output.type.tensor_type.shape.dim]}),
        "size": json.dumps({"native": list(model.config.image_size), "multiple": multiple,
                            "dynamic": len(dynamic) > 1, "traced": list(size)}),
        "notes": json.dumps(notes),
    }
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = METADATA_PREFIX + key, value
    extra = ", ".join(s.name for s in specs[1:]) or "nothing else"
    proto.doc_string = (f"labelsynth {type(model).__name__} generator: label_map (+ {extra}) -> images in [-1, 1]; "
                        "see the labelsynth.* metadata")
    onnx.save(proto, path)
    return path


def _name_dimensions(proto: Any, specs: list[OnnxInput]) -> None:
    """Rename the exporter's symbols (``s85``) to the inputs' dimension names (``height``; ``style_image_height``
    where an input's size is independent of the label map's), in the inputs and in the output's size formula."""
    import re

    names: dict[str, str] = {}
    for graph_input, spec in zip(proto.graph.input, specs):
        for dim, meaning in zip(graph_input.type.tensor_type.shape.dim, spec.shape):
            if dim.dim_param and dim.dim_param not in names and isinstance(meaning, str):
                wanted = meaning if meaning == "batch" or spec.name == "label_map" else f"{spec.name}_{meaning}"
                names[dim.dim_param] = wanted if wanted not in names.values() else dim.dim_param
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, names)) + r")\b") if names else None
    for value in (*proto.graph.input, *proto.graph.output):
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param and pattern is not None:
                dim.dim_param = pattern.sub(lambda match: names[match.group(1)], dim.dim_param)


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The ``labelsynth.*`` metadata of an exported file, JSON values decoded (keys without the prefix)."""
    import onnx

    proto = onnx.load(os.fspath(path), load_external_data=False)
    out: dict[str, Any] = {}
    for entry in proto.metadata_props:
        if entry.key.startswith(METADATA_PREFIX):
            key = entry.key[len(METADATA_PREFIX):]
            out[key] = entry.value if key == "model_type" else json.loads(entry.value)
    return out
