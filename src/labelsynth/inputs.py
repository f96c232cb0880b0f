"""Per-input declarations that model classes make and the pipeline, the CLI and the demo read.

A leaf module (no torch, transformers or Gradio imports), so modeling files can import it cheaply.

`INPUT_KINDS` are the kinds a model's ``pipeline_inputs`` (``{forward argument name: kind}``) may use. The rest
describes what a model shows in the demo: its extra inputs, their controls, and whether the seed matters.

Model classes declare their demo once, in plain data, and the builder (`labelsynth.demo.app`) turns
the declaration into widgets. Every model class already lists the inputs `forward` takes besides the label map in
``pipeline_inputs`` (``{name: kind}``); without any further declaration the demo shows

- ``"instance"`` inputs as an instance-map file upload when ``config.use_instance_edges`` is set (hidden otherwise);
  a painted map without an uploaded instance map uses its own class regions as instances,
- ``"image"`` inputs as an (optional) image upload,
- ``"label"`` inputs as an (optional) label-map file upload in the model's label space,
- ``"tensor"`` inputs not at all (latents and noise come from the seed),
- ``"value"`` inputs not at all: a value needs a control the model describes (`Choice`, `Number`, `ClassSubset`,
  `PerClassChoice`),
- ``"region"`` and ``"seed"`` inputs not at all either: they too need a declared control (`ClassSubset` for a region
  of picked classes, `RegionPicker` for picked classes and/or a painted region, `Number` for a seed),

and a seed with "n variations". A model changes this with an optional classmethod::

    @classmethod
    def demo_spec(cls, config) -> DemoSpec:
        return DemoSpec(
            inputs={"style_image": DemoInput("Style image", info="appearance source") if config.use_vae else None},
            stochastic=config.use_vae,   # the seed changes the output only with a latent to sample
        )

``inputs`` maps a ``pipeline_inputs`` name to a `DemoInput` (replacing the default widget) or to ``None`` (hiding
it); names that are not listed keep the default above. A ``demo_spec`` that also takes a ``model`` keyword receives
the loaded model when the demo has one (``None`` otherwise), for controls whose options live in the weights, e.g.
pix2pixHD's feature bank (`PerClassChoice` of the clusters each class has).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: The kinds of per-image pipeline inputs a model may declare in ``pipeline_inputs``: an instance map, an RGB image,
#: a label map (in the model's label space), a tensor (latents, noise: from the seed), a plain value, a region of the
#: label map (a mask resized with it, or class ids) or a seed (given as an int, received as a `torch.Generator`).
INPUT_KINDS = ("instance", "image", "label", "tensor", "value", "region", "seed")

#: Kinds the demo shows only through a declared control, and the controls each accepts.
CONTROL_KINDS = {"value": ("Choice", "Number", "ClassSubset", "PerClassChoice"),
                 "region": ("ClassSubset", "RegionPicker"), "seed": ("Number",)}

__all__ = [
    "CONTROL_KINDS",
    "INPUT_KINDS",
    "Choice",
    "ClassSubset",
    "DemoInput",
    "DemoSpec",
    "Number",
    "PerClassChoice",
    "RegionPicker",
    "ResolvedInput",
    "resolve_demo_inputs",
]

@dataclass(frozen=True)
class Choice:
    """A drop-down of fixed options for a ``"value"`` input (e.g. pix2pixHD's feature cluster).

    Attributes:
        options: ``(text shown, value passed to the model)`` pairs.
        default: The value selected at start (default: the first option's).
    """

    options: Sequence[tuple[str, Any]]
    default: Any = None

    def __post_init__(self) -> None:
        if not self.options:
            raise ValueError("Choice needs at least one (text, value) option")
        object.__setattr__(self, "options", tuple((str(t), v) for t, v in self.options))
        if self.default is None:
            object.__setattr__(self, "default", self.options[0][1])


@dataclass(frozen=True)
class Number:
    """A number field or slider for a ``"value"`` input.

    Attributes:
        minimum, maximum: Inclusive range.
        default: Start value.
        step: Increment; integers are passed as ``int`` when `integer` is set.
        integer: Pass ``int(value)`` to the model.
    """

    minimum: float
    maximum: float
    default: float
    step: float = 1
    integer: bool = True

    def __post_init__(self) -> None:
        if not self.minimum <= self.default <= self.maximum:
            raise ValueError(f"Number default {self.default} is outside [{self.minimum}, {self.maximum}]")


@dataclass(frozen=True)
class ClassSubset:
    """Pick classes of the model's label space, e.g. SEAN's "regions that take their style from the style image".

    The model receives a ``list[int]`` of the chosen label ids (``None`` when nothing is chosen, meaning "model
    default"). The drop-down lists every class of the label space by name.
    """

    default: Sequence[int] = ()


@dataclass(frozen=True)
class PerClassChoice:
    """One option per class for a ``"value"`` input, e.g. the feature cluster of each class (pix2pixHD).

    A multi-select lists ``"<id> <class name>: <option text>"`` entries for every class in `options`; the model
    receives ``{label id: option value}`` for the classes the user set, or ``None`` when none is set (the model's
    default for every class). Two options of one class are refused with a message.

    Attributes:
        options: ``{label id: ((text shown, value passed to the model), ...)}``.
    """

    options: Mapping[int, Sequence[tuple[str, Any]]]

    def __post_init__(self) -> None:
        if not self.options or not all(self.options.values()):
            raise ValueError("PerClassChoice needs at least one class, each with at least one (text, value) option")
        object.__setattr__(self, "options", {int(c): tuple((str(t), v) for t, v in opts)
                                             for c, opts in self.options.items()})


@dataclass(frozen=True)
class RegionPicker:
    """Pick classes and/or paint a region of the label map, for a ``"region"`` input (e.g. OASIS's re-rolled region).

    The demo shows the class multi-select of `ClassSubset` plus a brush canvas that holds the latest result, to paint
    over what the user sees. The model receives the picked ``list[int]`` when nothing is painted, else a bool mask
    ``[H, W]`` of the label map's size (the painted pixels plus the picked classes' pixels), and nothing (``None``)
    when neither is given.
    """

    default: Sequence[int] = ()


Control = Choice | Number | ClassSubset | PerClassChoice | RegionPicker


@dataclass(frozen=True)
class DemoInput:
    """How the demo shows one input of ``pipeline_inputs``.

    Attributes:
        label: Widget title.
        info: One-line help under the title.
        required: Generation refuses to run without it (with a message naming the input).
        control: For ``"value"``, ``"region"`` and ``"seed"`` inputs: the control that produces the value (required
            for them; `CONTROL_KINDS` lists the controls of each kind): `Choice`, `Number`, `ClassSubset`,
            `PerClassChoice` or `RegionPicker`.
    """

    label: str
    info: str = ""
    required: bool = False
    control: Control | None = None


@dataclass(frozen=True)
class DemoSpec:
    """A model class's demo declaration (returned by its optional ``demo_spec(config)`` classmethod).

    Attributes:
        inputs: ``{pipeline_inputs name: DemoInput or None}``; ``None`` hides the input, unlisted names get the
            default widget of their kind (module docstring).
        stochastic: Whether the output depends on the random generator (seed); ``False`` hides the seed and
            "n variations" controls.
        notes: Markdown shown under the title (e.g. what the style image does).
        deterministic_when: ``{input name: values}``: a request in which that input has one of these values does not
            depend on the seed (e.g. pix2pix's ``test_mode="eval"``, SEAN's ``add_noise=False``); the demo then makes
            one image and says so, and hides the seed while the control shows such a value.
    """

    inputs: Mapping[str, DemoInput | None] = field(default_factory=dict)
    stochastic: bool = True
    notes: str = ""
    deterministic_when: Mapping[str, Sequence[Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class ResolvedInput:
    """One widget the builder creates: the forward argument `name`, its `kind`, and how to show it."""

    name: str
    kind: str
    widget: DemoInput


def _default_input(name: str, kind: str, config: Any) -> DemoInput | None:
    title = name.replace("_", " ").capitalize()
    if kind == "instance":
        if not getattr(config, "use_instance_edges", False):
            return None
        return DemoInput(
            title + " (optional)",
            info="Integer instance ids of the same size as the label map (e.g. Cityscapes *_instanceIds.png). "
            "Without it, every class region of the label map counts as one instance.",
        )
    if kind == "image":
        return DemoInput(title + " (optional)", info="Any RGB image; it is resized to the model's output size.")
    if kind == "label":
        return DemoInput(title + " (optional)", info="A label map in the model's label space (index or colour PNG).")
    return None  # "tensor" comes from the seed; "value", "region" and "seed" need a control declared by the model


def _call_demo_spec(hook: Any, config: Any, model: Any) -> Any:
    """``hook(config)``, plus ``model=model`` when the hook declares a ``model`` parameter."""
    if "model" in inspect.signature(hook).parameters:
        return hook(config, model=model)
    return hook(config)


def resolve_demo_inputs(model_class: type, config: Any, model: Any = None) -> tuple[DemoSpec, list[ResolvedInput]]:
    """The model class's `DemoSpec` and the widgets to build, in ``pipeline_inputs`` order.

    Args:
        model_class: A labelsynth model class (its ``pipeline_inputs`` and optional ``demo_spec`` are read).
        config: The model's config (passed to ``demo_spec``; ``use_instance_edges`` decides the default
            instance-map widget).
        model: The loaded model, passed to a ``demo_spec`` that takes ``model=`` (None: only the config is known).

    Raises:
        ValueError: the declaration names an input that is not in ``pipeline_inputs``, uses an unknown kind, or
            gives a ``"value"`` input no control.
    """
    declared = getattr(model_class, "pipeline_inputs", {}) or {}
    hook = getattr(model_class, "demo_spec", None)
    spec = _call_demo_spec(hook, config, model) if callable(hook) else DemoSpec()
    if not isinstance(spec, DemoSpec):
        raise ValueError(f"{model_class.__name__}.demo_spec must return a labelsynth.inputs.DemoSpec, got {spec!r}")
    unknown = sorted((set(spec.inputs) | set(spec.deterministic_when)) - set(declared))
    if unknown:
        raise ValueError(
            f"{model_class.__name__}.demo_spec describes inputs {unknown} that are not in its pipeline_inputs "
            f"{sorted(declared)}; add them to pipeline_inputs (with their kind) or drop them from the DemoSpec"
        )
    resolved = []
    for name, kind in declared.items():
        if kind not in INPUT_KINDS:
            raise ValueError(f"{model_class.__name__}.pipeline_inputs[{name!r}] has unknown kind {kind!r}; "
                             f"expected one of {INPUT_KINDS}")
        widget = spec.inputs[name] if name in spec.inputs else _default_input(name, kind, config)
        if widget is None:
            continue
        if kind in CONTROL_KINDS and type(widget.control).__name__ not in CONTROL_KINDS[kind]:
            raise ValueError(f"{model_class.__name__}: the demo input {name!r} is a {kind!r} and needs a control "
                             f"({' or '.join(CONTROL_KINDS[kind])}) in its DemoInput, got {widget.control!r}")
        if kind == "tensor":
            raise ValueError(f"{model_class.__name__}: {name!r} is a 'tensor' input, which the demo cannot show; "
                             "hide it (None) and let the seed drive it, or declare it as a 'value' with a control")
        resolved.append(ResolvedInput(name, kind, widget))
    return spec, resolved
