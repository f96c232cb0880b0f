"""`build_demo(model)`: the Gradio app every Space and `labelsynth demo` run.

One canvas is the source of truth for the label map: it starts with an example, an uploaded label map (index or
colour PNG) is drawn onto it in the model's palette, and the user paints over it with the palette's colours (a
class drop-down sets the brush colour by name). "Generate" decodes the canvas (`painting.canvas_to_label_map`,
keeping the exact ids of the map it started from wherever its colour is unchanged) and runs the model through the
"label-to-image" pipeline; "Generate from file" uses the uploaded files as they are. The model's extra inputs
(instance map, style image, exemplar, cluster, ...) become widgets from its ``pipeline_inputs`` and optional
``demo_spec`` (`labelsynth.inputs`); nothing here depends on a particular model class.

API (``gradio_client``): ``/generate`` (canvas dict, extra inputs..., paintings..., seed, variations) and
``/generate_from_file`` (label file, extra inputs..., paintings..., seed, variations), both returning ``(gallery,
coloured label map, status)``; the status states the time per image in ms. A `RegionPicker` input ``name`` (e.g.
OASIS's re-rolled region) has, besides its class picker, a brush canvas ``{name}_painted`` (an ImageEditor value;
any layer's non-transparent pixels are the region, resized to the label map's size) that shows the latest result.

Live mode: with the "Live" box ticked, every canvas edit generates (the editor's ``input`` event with
``trigger_mode="always_last"``: while one generation runs, further edits collapse into one more run with the latest
canvas). It is ticked at start for models that generate an image in at most `LIVE_SECONDS_PER_IMAGE` (timed on the
first example when the demo is built), e.g. the compressed GauGAN on a CPU. With a
segmenter (``build_demo(..., segmenter=...)``): ``/generate_from_photo`` (canvas dict or None, photo file, seed,
variations) -> ``(gallery, coloured label map, status, photo, photo's map, result)``: the canvas (or, when None, the
photo's segmentation) generated with the photo as style source.

Errors: a request that fails raises its message once (Gradio's error toast in the page, an exception in
``gradio_client``), and the page then empties the result, the label view and the status, which no longer match the
inputs; the canvas is never an output of a request that can fail, so what the user painted stays.
"""

from __future__ import annotations

import inspect
import os
import time
from collections.abc import Sequence
from io import BytesIO
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import PIL.Image
import PIL.ImageOps
import torch
from gradio.data_classes import FileData
from transformers import Pipeline

from ..inputs import (
    CONTROL_KINDS,
    Choice,
    ClassSubset,
    DemoSpec,
    Number,
    PerClassChoice,
    RegionPicker,
    ResolvedInput,
    resolve_demo_inputs,
)
from ..processing import LabelMapProcessor
from .examples import DemoExample, default_examples
from .painting import (
    brush_classes,
    canvas_to_label_map,
    check_image_size,
    legend_html,
    painted_instance_map,
    size_limit_text,
)

__all__ = ["DEFAULT_CACHE_SECONDS", "DEFAULT_MAX_INPUT_PIXELS", "LIVE_SECONDS_PER_IMAGE", "build_demo", "load_pipeline"]

DEFAULT_MAX_INPUT_PIXELS = 4096 * 4096
_QUEUE_SIZE = 16  # requests waiting beyond this are refused with "queue full" instead of piling up
# The browser's canvas is fixed at the model's size; larger canvases (API clients) are refused above this many
# pixels (at most `max_input_pixels`): decoding a canvas of arbitrary colours costs far more than a label map upload.
_MIN_CANVAS_PIXELS = 1024 * 1024
_CANVAS_SCALE = 4  # ... or this many times the model's pixel count, whichever is larger
DEFAULT_CACHE_SECONDS = 900
_SEED_MAX = 2**63 - 1  # torch generators take signed 64-bit seeds
# Live mode is on at start for models at most this slow per image: an edit then shows its result while it still
# feels connected to the stroke.
LIVE_SECONDS_PER_IMAGE = 0.5
_PAINT_COLOR = "#ff00ff"  # the one brush of a region painting (any colour marks the region; magenta stands out)


def load_pipeline(
    model: str | os.PathLike | torch.nn.Module | Pipeline | None = None,
    *,
    processor: LabelMapProcessor | None = None,
    device: str | None = None,
    dtype: torch.dtype | str | None = None,
) -> Pipeline:
    """A "label-to-image" pipeline for a model folder, registered id, Hub id, loaded model or pipeline (None: the
    built-in model).

    A loaded model without `processor` gets a `LabelMapProcessor` for its config's label space and image size.
    """
    from ..registration import pipeline

    if isinstance(model, Pipeline):
        return model
    if model is None:
        from ..examples import BUILTIN_MODEL

        model = BUILTIN_MODEL
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
    if isinstance(model, torch.nn.Module):
        if processor is None:
            height, width = model.config.image_size
            processor = LabelMapProcessor(label_space=model.config.label_space, size={"height": height, "width": width})
        return pipeline("label-to-image", model=model, image_processor=processor, device=device)
    return pipeline("label-to-image", model=os.fspath(model), device=device, dtype=dtype or torch.float32)


def _is_controlnet(model: Any) -> bool:
    """A diffusers segmentation ControlNet (id, folder or loaded `ControlNetSegPipeline`), not a labelsynth GAN."""
    if isinstance(model, (str, os.PathLike)):
        from ..diffusion.detect import find_controlnet

        return find_controlnet(model) is not None
    return type(model).__name__ == "ControlNetSegPipeline"


_DAMAGED = "could not decode the {what}: the file is damaged or truncated; upload a complete PNG"


def _open_header(source: str | BytesIO, what: str, max_pixels: int) -> PIL.Image.Image:
    """Open an image lazily (PIL reads only the header) and refuse unreadable files and images above `max_pixels`
    (decompression bombs included) before any pixel is decoded."""
    name = f" ({Path(source).name})" if isinstance(source, str) else ""
    try:
        image = PIL.Image.open(source)
    except PIL.Image.DecompressionBombError:
        # PIL's own guard fired on the header (far above any sane limit): same limit, same message.
        raise gr.Error(f"the {what}{name} is too large to decode; {size_limit_text(max_pixels)}") from None
    except (OSError, SyntaxError, ValueError):
        raise gr.Error(f"could not read the {what}{name} as an image (empty, damaged or not an image file); upload "
                       "a PNG") from None
    try:
        check_image_size(image.width, image.height, max_pixels, what)
    except ValueError as err:
        image.close()
        raise gr.Error(str(err)) from None
    return image


def _decode(image: PIL.Image.Image, what: str) -> None:
    """Decode the pixels of a checked image, turning decoder failures (truncated or damaged data) into a message."""
    try:
        image.load()
    except Exception:  # noqa: BLE001 - decoders of arbitrary bytes raise OSError, SyntaxError, zlib.error, ...
        raise gr.Error(_DAMAGED.format(what=what)) from None


def _open_checked(path: str, what: str, max_pixels: int) -> PIL.Image.Image:
    """Open an uploaded image, refusing unreadable, damaged and oversized files (size checked before decoding)."""
    image = _open_header(path, what, max_pixels)
    _decode(image, what)
    return image


class _CheckedImageEditor(gr.ImageEditor):
    """`gr.ImageEditor` that checks each image of its value (header only) before Gradio decodes it, so that an
    oversized canvas, a decompression bomb or a damaged file is refused with a message instead of decoded."""

    is_template = True  # the browser uses the ImageEditor component as it is
    # Set on the instance after construction: Gradio builds the page's props from the signature of __init__, so the
    # subclass keeps the parent's.
    max_pixels: int = DEFAULT_MAX_INPUT_PIXELS

    def convert_and_format_image(self, file: FileData | bytes | None, flatten_on_white: bool = False) -> Any:
        if file is None:
            return None
        _open_header(file.path if isinstance(file, FileData) else BytesIO(file), "canvas", self.max_pixels).close()
        try:
            return super().convert_and_format_image(file, flatten_on_white=flatten_on_white)
        except Exception:  # noqa: BLE001 - the decoder failed on the checked file: truncated or damaged data
            raise gr.Error(_DAMAGED.format(what="canvas")) from None


class _CheckedImage(gr.Image):
    """`gr.Image` (``type="filepath"``) that checks the uploaded file's header before Gradio opens it."""

    is_template = True
    max_pixels: int = DEFAULT_MAX_INPUT_PIXELS  # set on the instance (see `_CheckedImageEditor`)

    def preprocess(self, payload: Any) -> Any:
        if payload is not None and getattr(payload, "path", None):
            _open_header(payload.path, str(self.label or "image").lower(), self.max_pixels).close()
        return super().preprocess(payload)


class _Demo:
    """The state-free logic behind the Blocks: decoding inputs, generating, formatting outputs."""

    def __init__(self, pipe: Pipeline, inputs: list[ResolvedInput], spec: DemoSpec, max_variations: int,
                 max_input_pixels: int):
        self.pipe = pipe
        self.processor: LabelMapProcessor = pipe.image_processor
        self.space = self.processor.label_space
        self.size = (self.processor.size["height"], self.processor.size["width"])
        self.inputs = inputs
        # Each of these also has a brush canvas; its value follows all the input widgets' values in every request.
        self.painted_inputs = [item for item in inputs if isinstance(item.widget.control, RegionPicker)]
        self.stochastic = spec.stochastic
        self.deterministic_when = spec.deterministic_when
        self.max_variations = max_variations
        self.max_input_pixels = max_input_pixels
        self.max_canvas_pixels = min(max_input_pixels, max(_MIN_CANVAS_PIXELS, _CANVAS_SCALE * self.size[0] *
                                                           self.size[1]))
        self.brushes = brush_classes(self.space)

    # ---------------------------------------------------------------- label maps
    def decode_file(self, label_path: str, instance_path: str | None) -> tuple[np.ndarray, np.ndarray | None]:
        """Uploaded label (and instance) file -> ids (and instance ids) at the model's size."""
        label = _open_checked(label_path, "label map", self.max_input_pixels)
        instance = _open_checked(instance_path, "instance map", self.max_input_pixels) if instance_path else None
        try:
            out = self.processor(label, instance_maps=instance, return_tensors="np")
        except ValueError as err:
            raise gr.Error(str(err)) from None
        return out["label_map"][0], (out["instance_map"][0] if instance is not None else None)

    def canvas_value(self, ids: np.ndarray) -> dict[str, Any]:
        """An ImageEditor value showing `ids` in the palette."""
        return {"background": self.space.colorize(ids), "layers": [], "composite": None}

    def decode_canvas(self, editor: dict[str, Any] | None, reference: np.ndarray | None) -> np.ndarray:
        canvas = None
        if editor:
            canvas = editor.get("composite")
            canvas = editor.get("background") if canvas is None else canvas
        if canvas is None:
            raise gr.Error("the canvas is empty: paint a label map, pick an example, or upload a label map")
        canvas = np.asarray(canvas)
        if canvas.ndim >= 2:  # normally checked before decoding (`_CheckedImageEditor`); this guards direct calls
            try:
                check_image_size(canvas.shape[1], canvas.shape[0], self.max_canvas_pixels, "canvas")
            except ValueError as err:
                raise gr.Error(str(err)) from None
        if canvas.dtype != np.uint8 and canvas.size:
            canvas = np.clip(canvas, 0, 255).astype(np.uint8)
        if canvas.ndim == 2:
            canvas = np.repeat(canvas[..., None], 3, axis=-1)
        try:
            return canvas_to_label_map(canvas, self.space, reference=reference)
        except ValueError as err:
            raise gr.Error(str(err)) from None

    # ---------------------------------------------------------------- generation
    def _split_paintings(self, values: Sequence[Any]) -> tuple[list[Any], dict[str, np.ndarray]]:
        """Widget values followed by one painting per `RegionPicker` input -> (widget values, ``{input name: painted
        mask}`` for the paintings that hold a painted pixel; bool ``[h, w]`` at the painting's size)."""
        count = len(self.inputs)
        masks = {spec.name: _painting_mask(painting)
                 for spec, painting in zip(self.painted_inputs, values[count:])}
        return list(values[:count]), {name: mask for name, mask in masks.items() if mask is not None}

    def _extra_inputs(self, values: Sequence[Any], instance_fallback: np.ndarray | str,
                      ids: np.ndarray | None = None) -> tuple[dict, list[str]]:
        """Widget values, then one painting per `RegionPicker` input -> pipeline keyword arguments, plus notes for
        the status line. `ids` (``[H, W]``, the label map generated from) is needed when a painting holds a region:
        it becomes a mask of that size (painted pixels or pixels of the picked classes)."""
        values, masks = self._split_paintings(values)
        kwargs: dict[str, Any] = {}
        notes = []
        for spec, value in zip(self.inputs, values):
            widget = spec.widget
            if spec.kind == "instance" and isinstance(value, np.ndarray):  # decoded with a painted region's ids
                kwargs[spec.name] = value
            elif spec.kind in ("instance", "label") and value:
                _open_checked(value, widget.label.lower(), self.max_input_pixels)
                kwargs[spec.name] = value
            elif spec.kind == "image" and value:
                image = _open_checked(value, widget.label.lower(), self.max_input_pixels)
                kwargs[spec.name] = PIL.ImageOps.exif_transpose(image).convert("RGB")
            elif spec.kind in CONTROL_KINDS and value not in (None, [], ""):
                kwargs[spec.name] = _control_value(widget.control, value, self.space)
            elif spec.kind == "instance":
                kwargs[spec.name] = instance_fallback
                # The file's label map itself (its path, or its decoded ids for a painted region), or the canvas's.
                label_itself = isinstance(instance_fallback, str) or (ids is not None and instance_fallback is ids)
                notes.append("instance map: the class regions of the label map (no instance map uploaded)"
                             if label_itself else
                             "instance map: the example's instances, one per class for painted regions")
            elif widget.required:
                raise gr.Error(f"this model needs the input '{widget.label}'; add it and generate again")
        rerolled = []
        for spec in self.inputs:
            if spec.kind != "region" or (kwargs.get(spec.name) is None and spec.name not in masks):
                continue
            classes = kwargs.get(spec.name) or []
            described = ", ".join(f"{c} {_class_name(self.space, c)}" for c in classes)
            if spec.name in masks:
                inside = np.isin(ids, classes)
                if classes and not inside.any():  # as the pipeline refuses classes alone
                    raise gr.Error(f"{spec.name}: classes {classes} do not occur in the label map; nothing would "
                                   "change for them: pick classes of the map or only paint the region")
                kwargs[spec.name] = _resize_mask(masks[spec.name], ids.shape) | inside
                described = "painted region" + (" + " + described if described else "")
            rerolled.append(described)
        if rerolled:
            notes.append("re-rolled: " + ", ".join(rerolled))
        elif any(s.kind == "region" for s in self.inputs):  # a region's seed without a region: nothing to seed
            kwargs = {k: v for k, v in kwargs.items() if not any(s.name == k and s.kind == "seed" for s in self.inputs)}
        return kwargs, notes

    def seeded(self, kwargs: dict[str, Any]) -> bool:
        """Whether the seed changes the output of a request with these inputs."""
        return self.stochastic and not any(
            name in kwargs and kwargs[name] in values for name, values in self.deterministic_when.items()
        )

    def generate(self, label: np.ndarray | str, kwargs: dict[str, Any], seed: float | None,
                 variations: float | None, notes: list[str]) -> tuple[list, PIL.Image.Image, str]:
        seeded = self.seeded(kwargs)
        if self.stochastic and not seeded:
            notes = [*notes, "deterministic with these settings: the seed has no effect"]
        count = max(1, min(int(variations or 1), self.max_variations)) if seeded else 1
        seed = int(seed or 0)
        if not 0 <= seed <= _SEED_MAX - (count - 1):
            raise gr.Error(f"the seed must be a whole number from 0 to {_SEED_MAX - (count - 1)} (2**63 - 1 minus "
                           f"the extra variations), got {seed}; pick a smaller seed")
        start = time.perf_counter()
        try:
            if count == 1:
                images = [self.pipe(label, seed=seed, **kwargs)]
            else:
                images = self.pipe([label] * count, seed=seed, **{k: [v] * count for k, v in kwargs.items()})
            shown = self.processor(label, return_tensors="np")["label_map"][0]
        except ValueError as err:
            raise gr.Error(str(err)) from None
        seconds = time.perf_counter() - start
        gallery = [(image, f"seed {seed + i}" if seeded else "result") for i, image in enumerate(images)]
        colored = PIL.Image.fromarray(self.space.colorize(shown))
        status = f"Generated {count} image{'s' * (count > 1)} of {images[0].width}x{images[0].height}: " \
                 f"{1000 * seconds / count:.0f} ms per image" + (f" ({1000 * seconds:.0f} ms in all)." if count > 1
                                                                 else ".")
        if notes:
            status += " " + "; ".join(n[0].upper() + n[1:] for n in notes) + "."
        return gallery, colored, status

    def from_canvas(self, editor: dict[str, Any] | None, reference: dict[str, np.ndarray] | None, *rest: Any):
        *values, seed, variations = rest
        ref_label = reference.get("label") if reference else None
        ids = self.decode_canvas(editor, ref_label)
        instance = painted_instance_map(ids, ref_label, reference.get("instance") if reference else None)
        kwargs, notes = self._extra_inputs(values, instance, ids)
        return self.generate(ids, kwargs, seed, variations, notes)

    def live_from_canvas(self, live: bool, editor: dict[str, Any] | None, reference: dict[str, np.ndarray] | None,
                         *rest: Any):
        """`from_canvas` on a canvas edit while live mode is on; nothing (outputs kept) while it is off."""
        if not live:
            return gr.skip(), gr.skip(), gr.skip()
        return self.from_canvas(editor, reference, *rest)

    def seconds_per_image(self, editor: dict[str, Any], reference: dict[str, np.ndarray] | None) -> float | None:
        """Time of one generation of `editor` with default inputs (after a first, warm-up run, which builds cached
        weights); None when that needs an input the user has to give, or when the warm-up alone shows the model too
        slow for live mode."""
        values = [None] * (len(self.inputs) + len(self.painted_inputs))
        try:
            start = time.perf_counter()
            self.from_canvas(editor, reference, *values, 0, 1)
            if time.perf_counter() - start > 4 * LIVE_SECONDS_PER_IMAGE:
                return None
            start = time.perf_counter()
            self.from_canvas(editor, reference, *values, 0, 1)
        except gr.Error:
            return None
        return time.perf_counter() - start

    def from_file(self, label_path: str | None, *rest: Any):
        *values, seed, variations = rest
        if not label_path:
            raise gr.Error("no label map uploaded: upload an index or colour PNG first")
        _open_checked(label_path, "label map", self.max_input_pixels)
        if not self._split_paintings(values)[1]:
            kwargs, notes = self._extra_inputs(values, label_path)
            return self.generate(label_path, kwargs, seed, variations, notes)
        # A painted region is drawn over a result, i.e. at the model's size: generate from the decoded ids (and
        # instance ids), so that the region and the label map have one size.
        count = len(self.inputs)
        instance_path = next((v for s, v in zip(self.inputs, values[:count]) if s.kind == "instance" and v), None)
        ids, instance = self.decode_file(label_path, instance_path)
        values = [instance if s.kind == "instance" and v else v for s, v in zip(self.inputs, values[:count])] \
            + list(values[count:])
        kwargs, notes = self._extra_inputs(values, ids, ids)
        return self.generate(ids, kwargs, seed, variations, notes)

    def load_upload(self, label_path: str | None, instance_path: str | None):
        """Put an uploaded label map on the canvas; it (and its instance map) becomes the canvas reference."""
        if not label_path:
            return gr.skip(), gr.skip()
        ids, instance = self.decode_file(label_path, instance_path)
        return self.canvas_value(ids), {"label": ids, "instance": instance if instance is not None else ids}

    def drop_rejected_label(self, label_path: str | None):
        """After `load_upload` failed: empty the label-map field if that file is the cause, so that "Generate from
        file" does not repeat the error just shown. (A rejected instance map stays: emptying its field would reload
        the label map onto the canvas, over what the user painted since.)"""
        try:
            self.decode_file(label_path, None)
        except gr.Error:
            return None
        return gr.skip()


class _PhotoFlow:
    """"Start from a photo": segment an uploaded photo onto the canvas; generate the canvas in the photo's style."""

    def __init__(self, demo: _Demo, segmenter: Any):
        from ..segmentation import load_segmenter, photo_style_inputs

        self.demo = demo
        self.segmenter = load_segmenter(segmenter, device=demo.pipe.device)
        self.segmenter.mapping(demo.space)  # a segmenter whose classes cannot be mapped fails at start-up
        photo_style_inputs(demo.pipe, None, None)  # so does a model without a style source (ValueError)
        self.instance_name = next((i.name for i in demo.inputs if i.kind == "instance"), None)

    def segment(self, photo_path: str) -> tuple[PIL.Image.Image, np.ndarray, np.ndarray]:
        """Photo file -> (RGB photo, ids and instance ids at the model's size)."""
        from ..segmentation import segment

        photo = PIL.ImageOps.exif_transpose(_open_checked(photo_path, "photo", self.demo.max_input_pixels))
        photo = photo.convert("RGB")
        try:
            result = segment(photo, self.segmenter, self.demo.space)
            out = self.demo.processor(result.label_map, instance_maps=result.instance_map, return_tensors="np")
        except ValueError as err:
            raise gr.Error(str(err)) from None
        ids = out["label_map"][0]
        return photo, ids, (out["instance_map"][0] if result.instance_map is not None else ids)

    def load(self, photo_path: str | None):
        """Put the photo's map on the canvas (it becomes the canvas reference) and show the photo."""
        if not photo_path:
            return gr.skip(), gr.skip(), gr.skip()
        photo, ids, instance = self.segment(photo_path)
        return self.demo.canvas_value(ids), {"label": ids, "instance": instance}, photo

    def generate(self, editor: dict[str, Any] | None, photo_path: str | None, seed: float | None,
                 variations: float | None):
        from ..segmentation import photo_style_inputs

        if not photo_path:
            raise gr.Error("no photo uploaded: upload a photo under 'Start from a photo' first")
        photo, photo_ids, photo_instance = self.segment(photo_path)
        has_canvas = bool(editor) and any(editor.get(k) is not None for k in ("composite", "background"))
        ids = self.demo.decode_canvas(editor, photo_ids) if has_canvas else photo_ids
        try:
            kwargs = photo_style_inputs(self.demo.pipe, photo, photo_ids, ids)
        except ValueError as err:
            raise gr.Error(str(err)) from None
        if self.instance_name is not None:
            kwargs[self.instance_name] = painted_instance_map(ids, photo_ids, photo_instance)
        notes = ["style: the photo" + ("" if has_canvas else "; label map: the photo's segmentation")]
        gallery, colored, status = self.demo.generate(ids, kwargs, seed, variations, notes)
        return gallery, colored, status, photo, colored, gallery[0][0]


def _named(fn: Any, names: Sequence[str], optional_from: int | None = None) -> Any:
    """`fn(*args)` with a signature naming its parameters, so the API page and gradio_client show real names.
    Parameters from index `optional_from` on default to None (optional in gradio_client, unless their component's
    initial value is the default)."""

    def wrapper(*args: Any) -> Any:
        return fn(*args)

    optional_from = len(names) if optional_from is None else optional_from
    wrapper.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                           default=None if i >= optional_from else inspect.Parameter.empty)
         for i, n in enumerate(names)]
    )
    return wrapper


def _under_paintings(gallery: list | None, *paintings: dict[str, Any] | None) -> Any:
    """The paintings' values with the gallery's first image as their background and their strokes kept."""
    if not gallery:
        return gr.skip() if len(paintings) == 1 else (gr.skip(),) * len(paintings)
    image = gallery[0][0]
    values = [{"background": image, "layers": (painting or {}).get("layers") or [], "composite": None}
              for painting in paintings]
    return values[0] if len(values) == 1 else tuple(values)


def _painting_mask(editor: dict[str, Any] | None) -> np.ndarray | None:
    """The painted pixels of a painting canvas's value (``{"background", "layers", "composite"}``), bool ``[h, w]``
    at the painting's size, or None when nothing is painted: pixels where any layer is not transparent (layers
    without alpha: not black), or, without layers, where the composite differs from the background."""
    if not editor:
        return None
    layers = [np.asarray(layer) for layer in editor.get("layers") or [] if layer is not None]
    if layers:
        masks = [layer[..., 3] > 0 if layer.ndim == 3 and layer.shape[-1] == 4 else
                 (layer.any(-1) if layer.ndim == 3 else layer != 0) for layer in layers]
        mask = masks[0]
        for other in masks[1:]:
            mask = mask | _resize_mask(other, mask.shape)
    else:
        composite, background = editor.get("composite"), editor.get("background")
        if composite is None or background is None:
            return None
        composite = PIL.Image.fromarray(np.asarray(composite)).convert("RGB")
        background = PIL.Image.fromarray(np.asarray(background)).convert("RGB")
        mask = (np.asarray(composite) != np.asarray(background.resize(composite.size, PIL.Image.NEAREST))).any(-1)
    return mask if mask.any() else None


def _resize_mask(mask: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Bool ``[h, w]`` -> bool `shape` (``(H, W)``), nearest neighbour (a painting of another size than the map)."""
    if mask.shape == tuple(shape):
        return mask
    resized = PIL.Image.fromarray(mask.astype(np.uint8) * 255).resize((shape[1], shape[0]), PIL.Image.NEAREST)
    return np.asarray(resized) > 0


def _class_name(space: Any, class_id: int) -> str:
    return space.names[class_id] if 0 <= class_id < len(space.names) else "unlabeled"


def _per_class_key(class_id: int, index: int) -> str:
    """Drop-down value of option `index` of class `class_id` (a string, so the API takes e.g. "26:3")."""
    return f"{class_id}:{index}"


def _control_value(control: Any, value: Any, space: Any) -> Any:
    if isinstance(control, Number):
        return int(value) if control.integer else float(value)
    if isinstance(control, (ClassSubset, RegionPicker)):  # a RegionPicker's painting is added by `_extra_inputs`
        return [int(v) for v in value] or None
    if isinstance(control, PerClassChoice):
        chosen: dict[int, Any] = {}
        for key in [value] if isinstance(value, str) else value:
            try:
                class_id, index = (int(part) for part in str(key).split(":"))
                option = control.options[class_id][index]
            except (ValueError, KeyError, IndexError):
                raise gr.Error(f"unknown choice {key!r}; pick entries from the list") from None
            if class_id in chosen:
                raise gr.Error(f"two choices for class {class_id} ({_class_name(space, class_id)}); keep one")
            chosen[class_id] = option[1]
        return chosen or None
    return value


def _control_widget(spec: ResolvedInput, space: Any) -> gr.components.Component:
    widget, control = spec.widget, spec.widget.control
    common = {"label": widget.label, "info": widget.info or None, "elem_id": f"input-{spec.name}"}
    if isinstance(control, Choice):
        return gr.Dropdown(choices=list(control.options), value=control.default, **common)
    if isinstance(control, Number):
        return gr.Slider(control.minimum, control.maximum, value=control.default, step=control.step, **common)
    if isinstance(control, (ClassSubset, RegionPicker)):
        return gr.Dropdown(choices=[(f"{i} {n}", i) for i, n in enumerate(space.names)], value=list(control.default),
                           multiselect=True, **common)
    if isinstance(control, PerClassChoice):
        choices = [(f"{c} {_class_name(space, c)}: {text}", _per_class_key(c, k))
                   for c, options in control.options.items() for k, (text, _) in enumerate(options)]
        return gr.Dropdown(choices=choices, value=[], multiselect=True, **common)
    raise ValueError(f"unknown demo control {control!r} for input {spec.name!r}")


def _input_widget(spec: ResolvedInput, space: Any, max_pixels: int) -> gr.components.Component:
    widget = spec.widget
    if spec.kind in ("instance", "label"):
        return gr.File(label=widget.label, file_types=["image"], type="filepath", elem_id=f"input-{spec.name}")
    if spec.kind == "image":
        # A file path, not a decoded image: `_open_checked` sees the file first (image_mode=None: no conversion).
        image = _CheckedImage(label=widget.label, type="filepath", image_mode=None, sources=["upload", "clipboard"],
                              elem_id=f"input-{spec.name}")
        image.max_pixels = max_pixels
        return image
    return _control_widget(spec, space)


def build_demo(
    model: str | os.PathLike | torch.nn.Module | Pipeline | None = None,
    *,
    processor: LabelMapProcessor | None = None,
    examples: Sequence[DemoExample] | None = None,
    title: str | None = None,
    description: str | None = None,
    device: str | None = None,
    dtype: torch.dtype | str | None = None,
    max_variations: int = 4,
    max_input_pixels: int = DEFAULT_MAX_INPUT_PIXELS,
    cache_seconds: int = DEFAULT_CACHE_SECONDS,
    base_model: str | None = None,
    segmenter: Any = None,
    live: bool | None = None,
) -> gr.Blocks:
    """Build the Gradio demo of a labelsynth model.

    Args:
        model: Model folder, registered id, Hub id, loaded model, or "label-to-image" pipeline; None = the built-in
            model. A segmentation ControlNet (id, folder or `ControlNetSegPipeline`) gets the diffusion page
            (`labelsynth.demo.diffusion_app`: prompt, steps, guidance, seed, variations).
        processor: Processor for a loaded model (default: one for its label space and image size).
        examples: Example label maps (default: `default_examples` for the model's label space).
        title: Page title (default: the model's name).
        description: Markdown under the title (default: architecture, label space, resolution, licence).
        device: "cpu", "cuda", ... (default: cuda when available).
        dtype: Weights dtype for folders/Hub ids (e.g. "bfloat16"; default float32).
        max_variations: Upper bound of the "variations" slider (stochastic models).
        max_input_pixels: Uploaded images (label, instance, style, exemplar maps) above this many pixels are
            refused with a message, before their pixels are decoded (decompression bombs included). The canvas is
            limited to the smaller of this and max(4 x the model's pixels, 1024x1024): the browser's canvas is the
            model's size, and decoding a canvas of arbitrary colours costs more than a label map.
        cache_seconds: Uploads and results in Gradio's cache are deleted after about this many seconds (checked
            every `cache_seconds`), and all of them when the server stops.
        base_model: Stable Diffusion base of a bare segmentation ControlNet (default: the one it names); GANs
            refuse it.
        segmenter: Adds "Start from a photo": a transformers segmenter (Hub id, folder, model) or callable
            (`labelsynth.segmentation.load_segmenter`) whose map of an uploaded photo goes on the canvas; generating
            takes the photo as style source (SPADE-VAE / SEAN / CoCosNet; other GANs raise a ValueError). On the
            diffusion page the photo's map replaces the label map and generating runs img2img from the photo.
        live: Whether the "Live" box (generate on every canvas edit) starts ticked; None: when a generation of the
            first example takes at most `LIVE_SECONDS_PER_IMAGE` (timed here, after a warm-up run).

    Returns:
        The `gr.Blocks` (queued: one generation at a time, at most 16 waiting); call ``.launch()`` on it.
    """
    if _is_controlnet(model):  # a diffusion model: its own page (prompt, steps, guidance), same label maps
        from .diffusion_app import build_diffusion_demo

        if isinstance(model, (str, os.PathLike)):
            from ..registration import pipeline

            model = pipeline("label-to-image", model=os.fspath(model), device=device, dtype=dtype,
                             **({"base_model": base_model} if base_model else {}))
        return build_diffusion_demo(model, title=title, description=description, max_variations=max_variations,
                                    segmenter=segmenter)
    if base_model is not None:
        raise ValueError("base_model is for segmentation ControlNets; this model is a GAN")
    pipe = load_pipeline(model, processor=processor, device=device, dtype=dtype)
    model_class, config = type(pipe.model), pipe.model.config
    spec, inputs = resolve_demo_inputs(model_class, config, model=pipe.model)
    demo_logic = _Demo(pipe, inputs, spec, max_variations, max_input_pixels)
    photo_flow = _PhotoFlow(demo_logic, segmenter) if segmenter is not None else None
    space, size = demo_logic.space, demo_logic.size
    if examples is None:
        examples = default_examples(space, size)
    name = Path(str(getattr(pipe.model, "name_or_path", "") or model_class.__name__)).name
    info = getattr(model_class, "model_card_info", None)
    if description is None:
        description = (
            f"**{info.architecture if info else model_class.__name__}** (`{model_class.__name__}`) · label space "
            f"`{space.name}` ({space.num_classes} classes) · {size[0]}x{size[1]} pixels"
            + (f" · weights licence `{info.weights_license}`" if info else "")
            + ("" if spec.stochastic else " · deterministic: the same label map always gives the same image")
        )
        if spec.notes:
            description += "\n\n" + spec.notes

    reference: dict[str, np.ndarray] | None = None
    initial_canvas = None
    if examples:
        ids, instance = demo_logic.decode_file(str(examples[0].label),
                                               str(examples[0].instance) if examples[0].instance else None)
        reference = {"label": ids, "instance": instance if instance is not None else ids}
        initial_canvas = demo_logic.canvas_value(ids)
    if live is None:
        seconds = demo_logic.seconds_per_image(initial_canvas, reference) if initial_canvas is not None else None
        live = seconds is not None and seconds <= LIVE_SECONDS_PER_IMAGE
    brushes = demo_logic.brushes
    colors = [b.color for b in brushes]
    # Start with the brush of the example's largest class (the first brush, often "unlabeled", is rarely wanted).
    start = brushes[0]
    if reference is not None:
        counts = np.bincount(reference["label"][reference["label"] < space.num_classes].ravel(),
                             minlength=space.num_classes)
        start = max(brushes, key=lambda b: counts[b.id])

    def brush_for(class_id: int) -> gr.ImageEditor:
        color = next((b.color for b in brushes if b.id == int(class_id)), colors[0])
        return gr.ImageEditor(brush=gr.Brush(colors=colors, default_color=color, color_mode="fixed"))

    with gr.Blocks(title=title or f"labelsynth · {name}", delete_cache=(cache_seconds, cache_seconds)) as demo:
        gr.Markdown(f"# {title or name}\n\n{description}\n\nPaint with the class colours (pick a class by name "
                    "below or in the brush's colour menu), or upload a label map, then generate.")
        reference_state = gr.State(reference)
        with gr.Row():
            with gr.Column(scale=3):
                brush_class = gr.Dropdown(choices=[(b.title, b.id) for b in brushes], value=start.id,
                                          label="Brush class", elem_id="brush_class")
                editor = _CheckedImageEditor(
                    value=initial_canvas, type="numpy", image_mode="RGB", format="png", layers=False,
                    canvas_size=(size[1], size[0]), fixed_canvas=True, sources=("upload",), transforms=(),
                    brush=gr.Brush(colors=colors, default_color=start.color, color_mode="fixed",
                                   default_size=max(2, min(size) // 40)),
                    label="Label map (paint here)", elem_id="editor", interactive=True,
                )
                editor.max_pixels = demo_logic.max_canvas_pixels
                widgets: dict[str, gr.components.Component] = {}
                paintings: list[gr.ImageEditor] = []
                for item in inputs:
                    if item.kind != "instance":
                        widgets[item.name] = _input_widget(item, space, max_input_pixels)
                    if isinstance(item.widget.control, RegionPicker):
                        # Shows the latest result (set after each generation) for the user to paint over.
                        painting = _CheckedImageEditor(
                            type="numpy", image_mode="RGBA", format="png", layers=False,
                            canvas_size=(size[1], size[0]), fixed_canvas=True, sources=(), transforms=(),
                            brush=gr.Brush(colors=[_PAINT_COLOR], default_color=_PAINT_COLOR, color_mode="fixed",
                                           default_size=max(2, min(size) // 20)),
                            eraser=gr.Eraser(), label="Paint the region to re-roll (over the latest result)",
                            elem_id=f"paint-{item.name}", interactive=True,
                        )
                        painting.max_pixels = demo_logic.max_canvas_pixels
                        paintings.append(painting)
                # Controls that can make a request deterministic (deterministic_when) show/hide the seed.
                switches = [item for item in inputs if item.name in spec.deterministic_when]
                seeded = demo_logic.seeded({i.name: getattr(i.widget.control, "default", None) for i in switches})
                with gr.Row():
                    seed = gr.Number(value=0, precision=0, minimum=0, maximum=_SEED_MAX, label="Seed",
                                     visible=seeded, elem_id="seed")
                    variations = gr.Slider(1, max_variations, value=1, step=1, label="Variations",
                                           info="images with seeds seed, seed+1, ...", visible=seeded,
                                           elem_id="variations")
                with gr.Row():
                    generate = gr.Button("Generate", variant="primary", elem_id="generate", scale=3)
                    live_box = gr.Checkbox(value=live, label="Live", info="generate on every edit", elem_id="live",
                                           scale=1)
                with gr.Accordion("Upload a label map (it is also put on the canvas)", open=True):
                    label_file = gr.File(label="Label map: index PNG of ids or colour PNG in the palette",
                                         file_types=["image"], type="filepath", elem_id="label_file")
                    for item in inputs:
                        if item.kind == "instance":  # instance maps belong to uploaded label maps
                            widgets[item.name] = _input_widget(item, space, max_input_pixels)
                    from_file = gr.Button("Generate from file", elem_id="generate_file")
                if photo_flow is not None:
                    with gr.Accordion("Start from a photo (its map is put on the canvas; edit it, then generate)",
                                      open=True):
                        photo_file = gr.File(label="Photo", file_types=["image"], type="filepath",
                                             elem_id="photo_file")
                        from_photo = gr.Button("Generate in the photo's style", elem_id="generate_photo")
                with gr.Accordion("Class colours", open=False):
                    gr.HTML(legend_html(brushes, space), elem_id="legend")
            with gr.Column(scale=2):
                result = gr.Gallery(label="Result", format="png", columns=2, elem_id="result")
                label_view = gr.Image(label="Label map as the model sees it", format="png", interactive=False,
                                      elem_id="label_view")
                status = gr.Markdown(label="Status", elem_id="status")
        if photo_flow is not None:
            with gr.Row():
                photo_view = gr.Image(label="Photo", format="png", interactive=False, elem_id="photo_view")
                photo_map = gr.Image(label="Its map (as generated)", format="png", interactive=False,
                                     elem_id="photo_map")
                photo_result = gr.Image(label="Result", format="png", interactive=False, elem_id="photo_result")
        widget_list = [widgets[item.name] for item in inputs]
        instance_widget = next((widgets[item.name] for item in inputs if item.kind == "instance"), None)
        if examples:
            with_instance = instance_widget is not None and all(ex.instance for ex in examples)
            gr.Examples(
                examples=[[str(ex.label)] + ([str(ex.instance)] if with_instance else []) for ex in examples],
                inputs=[label_file] + ([instance_widget] if with_instance else []),
                label="Examples (load onto the canvas)",
            )

        outputs = [result, label_view, status]

        def clear_outputs() -> tuple[None, None, str]:
            """After a failed event: drop the previous result and status, which no longer match the inputs. The
            error itself is shown once, by Gradio's error toast; the canvas is never an output of a failed event."""
            return None, None, ""

        upload_inputs = [label_file, instance_widget if instance_widget is not None else gr.State(None)]
        for trigger in [label_file] + ([instance_widget] if instance_widget is not None else []):
            # No progress overlay: a failed upload would leave an "Error" badge over the user's canvas.
            loaded = trigger.change(demo_logic.load_upload, upload_inputs, [editor, reference_state],
                                    show_progress="hidden", api_visibility="private")
            loaded.failure(demo_logic.drop_rejected_label, label_file, label_file, queue=False,
                           show_progress="hidden", api_visibility="private")
            loaded.failure(clear_outputs, None, outputs, queue=False, show_progress="hidden",
                           api_visibility="private")
        brush_class.change(brush_for, brush_class, editor, api_visibility="private")

        def show_seed(*values: Any) -> tuple[dict, dict]:
            shown = demo_logic.seeded({item.name: value for item, value in zip(switches, values)})
            return gr.update(visible=shown), gr.update(visible=shown)

        for item in switches:
            widgets[item.name].change(show_seed, [widgets[i.name] for i in switches], [seed, variations],
                                      api_visibility="private")
        # Widget values, then the paintings of the RegionPicker inputs (`_Demo._extra_inputs` splits them off).
        names = [item.name for item in inputs] + [f"{item.name}_painted" for item in demo_logic.painted_inputs]
        request_inputs = [*widget_list, *paintings]
        # The paintings (empty at start) are optional in gradio_client; seed and variations keep their widgets' start
        # values as defaults.
        optional = len(inputs) if paintings else None
        generated = [
            generate.click(_named(demo_logic.from_canvas, ["canvas", "reference", *names, "seed", "variations"],
                                  None if optional is None else 2 + optional),
                           [editor, reference_state, *request_inputs, seed, variations], outputs, api_name="generate"),
            from_file.click(_named(demo_logic.from_file, ["label_map", *names, "seed", "variations"],
                                   None if optional is None else 1 + optional),
                            [label_file, *request_inputs, seed, variations], outputs, api_name="generate_from_file"),
        ]
        if photo_flow is not None:
            # A failed upload leaves the canvas as it was (the canvas is an output of success only).
            loaded = photo_file.change(photo_flow.load, photo_file, [editor, reference_state, photo_view],
                                       show_progress="hidden", api_visibility="private")
            loaded.failure(clear_outputs, None, outputs, queue=False, show_progress="hidden",
                           api_visibility="private")
            generated.append(from_photo.click(
                _named(photo_flow.generate, ["canvas", "photo", "seed", "variations"]),
                [editor, photo_file, seed, variations], [*outputs, photo_view, photo_map, photo_result],
                api_name="generate_from_photo"))
        # Live mode: edits while a generation runs collapse into one more run with the latest canvas.
        generated.append(editor.input(demo_logic.live_from_canvas,
                                       [live_box, editor, reference_state, *request_inputs, seed, variations], outputs,
                                       trigger_mode="always_last", show_progress="hidden", api_visibility="private"))
        for event in generated:
            event.failure(clear_outputs, None, outputs, queue=False, show_progress="hidden", api_visibility="private")
            if paintings:  # paint over what the user sees: the first result, under the strokes painted so far
                event.success(_under_paintings, [result, *paintings], paintings, queue=False, show_progress="hidden",
                              api_visibility="private")
    demo.queue(max_size=_QUEUE_SIZE, default_concurrency_limit=1)
    return demo
