"""`LabelToImagePipeline`: the "label-to-image" task for `transformers.pipeline`."""

from __future__ import annotations

import numbers
import os
from typing import Any

import numpy as np
import PIL.Image
import torch
from transformers import Pipeline
from transformers.utils import logging

from ..inputs import INPUT_KINDS
from ..utils.precision import cpu_dtype
from ..utils.threads import inference_threads

logger = logging.get_logger(__name__)

OUTPUT_TYPES = ("pil", "np", "pt")


def _one_per_input(batch: torch.Tensor, what: str) -> None:
    """One pipeline input is one map/image: an array holding several would make images that are then dropped."""
    if batch.shape[0] != 1:
        raise ValueError(
            f"{what}: one input holds {batch.shape[0]} maps/images (shape {tuple(batch.shape)}); the pipeline makes one "
            f"image per input: pass a batch as a list, e.g. pipe(list(array)) for a (B, H, W) array"
        )


def _seed(value: Any, name: str) -> int:
    """A "seed" input: a non-negative int (a bool or anything else is refused)."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or not 0 <= int(value) < 2**63:
        raise ValueError(f"{name} must be a whole number from 0 to 2**63 - 1 (a seed), got {value!r}")
    return int(value)


def _is_class_ids(value: Any) -> bool:
    """An int, a list/tuple of ints, or a 0-/1-D integer array or tensor (the rest of a "region" is a mask)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, numbers.Integral):
        return True
    if isinstance(value, (list, tuple)):
        return all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in value)
    if isinstance(value, (np.ndarray, torch.Tensor)):
        return value.ndim <= 1 and np.asarray(value).dtype.kind in "iu"
    return False


def _mask_array(value: Any, name: str) -> np.ndarray:
    """A region mask -> bool `[H, W]`: arrays/tensors `[H, W]` or `[1, H, W]`, PIL images or image paths (non-zero
    in any channel = inside)."""
    if isinstance(value, (str, os.PathLike)):
        try:
            with PIL.Image.open(value) as image:
                value = np.asarray(image)
        except (OSError, ValueError) as err:
            raise ValueError(f"{name}: cannot read the mask image {os.fspath(value)!r} ({err})") from None
    elif isinstance(value, PIL.Image.Image):
        value = np.asarray(value)
    elif isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if not isinstance(value, np.ndarray):
        raise ValueError(  # noqa: TRY004 - bad input: ValueError, as everywhere
            f"{name} must be class ids (an int or a list of ints) or a mask (array, tensor, PIL image or image path), "
            f"got {type(value).__name__}"
        )
    if value.ndim == 3 and value.shape[0] == 1:
        value = value[0]
    elif value.ndim == 3 and value.shape[-1] in (3, 4):  # an RGB(A) image: any non-zero colour channel
        value = value[..., :3].any(-1)
    if value.ndim != 2:
        raise ValueError(f"{name}: a mask must be [H, W] (or [1, H, W], or an image), got shape {value.shape}")
    return value != 0


class LabelToImagePipeline(Pipeline):
    """Generate images from label maps with any labelsynth model.

    ```python
    import labelsynth
    from transformers import pipeline

    pipe = pipeline("label-to-image", model="path/or/org/spade-ade20k")
    image = pipe("label.png", seed=0)                         # PIL.Image
    images = pipe([label_a, label_b], instance_map=[inst_a, inst_b], seed=0)
    ```

    Label maps can be anything `LabelMapProcessor` accepts: index PNG paths, PIL images (L/P/I;16/I, or RGB colour
    maps in the model's palette), numpy arrays, torch tensors; one input is one map and gives one image (several
    maps: a list). Call arguments:

    - the model's per-image inputs, named by its class attribute `pipeline_inputs` (see `LabelSynthPreTrainedModel`):
      `instance_map` (models with instance edges, same forms as label maps; without it, each class region of the
      label map counts as one instance), `style_image` (VAE / style-encoder
      models), `noise` (explicit latent), and model-specific ones such as `exemplar` / `exemplar_label_map`
      (CoCosNet) or `cluster` (pix2pixHD). Images are resized to the label map's output size, label maps alike.
      A "region" input (e.g. OASIS' `resample`) is class ids (an int or a list of ints) or a mask of the label map's
      size (bool/int array or tensor, PIL image or image path; non-zero = inside), resized with the label map. A
      "seed" input (e.g. OASIS' `resample_seed`) is an int the model receives as a seeded `torch.Generator`; with a
      list of maps, one int gives item i the seed + i, as `seed` does.
      A model with a `pipeline_forward_inputs(kwargs) -> kwargs` method turns these prepared per-image inputs
      (and `generator`) into its forward arguments, e.g. a region and a seed into a noise map.
    - `seed` / `generator`: randomness for z, noise or style sampling. With `seed=s`, item i of a list uses seed
      `s + i`, so a map gives the same image alone or inside a batch.
    - `output_type`: "pil" (default), "np" (uint8 HxWx3) or "pt" (float CxHxW in [0, 1]).
    """

    _load_processor = False
    _load_image_processor = True
    _load_feature_extractor = False
    _load_tokenizer = False

    def __init__(self, *args: Any, compile: bool = False, **kwargs: Any) -> None:
        """`compile=True` runs the model through `torch.compile` (`model.compile_for_inference()`; opt-in: the first
        call of each input size pays the compilation). A bf16 model on a CPU that only emulates bf16 runs in float32
        instead (`labelsynth.utils.precision.cpu_dtype`; ``LABELSYNTH_ALLOW_SLOW_BF16=1`` keeps bf16)."""
        super().__init__(*args, **kwargs)
        if self.model.dtype == torch.bfloat16:
            dtype = cpu_dtype(torch.bfloat16, self.device, what="the label-to-image pipeline")
            if dtype != torch.bfloat16:
                self.model.to(dtype)
        if compile:
            self.model.compile_for_inference()

    def _sanitize_parameters(
        self,
        seed: int | None = None,
        generator: torch.Generator | None = None,
        output_type: str | None = None,
        **per_item: Any,
    ) -> tuple[dict, dict, dict]:
        unknown = sorted(set(per_item) - set(self._input_kinds))
        if unknown:
            raise TypeError(
                f"label-to-image got unexpected arguments {unknown}; {type(self.model).__name__} accepts seed, "
                f"generator, output_type, {', '.join(self._input_kinds)}"
            )
        if seed is not None and generator is not None:
            raise ValueError("pass either seed or generator, not both")
        forward = {}
        if seed is not None:
            forward["seed"] = int(seed)
        if generator is not None:
            forward["generator"] = generator
        postprocess = {}
        if output_type is not None:
            if output_type not in OUTPUT_TYPES:
                raise ValueError(f"output_type must be one of {OUTPUT_TYPES}, got {output_type!r}")
            postprocess["output_type"] = output_type
        return {}, forward, postprocess

    @property
    def _input_kinds(self) -> dict[str, str]:
        kinds = getattr(self.model, "pipeline_inputs", {})
        bad = {name: kind for name, kind in kinds.items() if kind not in INPUT_KINDS}
        if bad:
            raise TypeError(f"{type(self.model).__name__}.pipeline_inputs has unknown kinds {bad}; use {INPUT_KINDS}")
        return kinds

    def __call__(self, label_maps: Any, **kwargs: Any) -> Any:
        """Generate one image per label map; a list in gives a list out."""
        per_item = {name: kwargs.pop(name) for name in self._input_kinds if name in kwargs and kwargs[name] is not None}
        for name in self._input_kinds:
            kwargs.pop(name, None)  # an explicit None means "not given"
        if isinstance(label_maps, (list, tuple)):
            for name, value in per_item.items():
                if self._input_kinds[name] == "seed" and not isinstance(value, (list, tuple)):
                    per_item[name] = [_seed(value, name) + i for i in range(len(label_maps))]
            items = []
            for index, label_map in enumerate(label_maps):
                item = {"label_map": label_map, "index": index}
                for name, value in per_item.items():
                    if not isinstance(value, (list, tuple)) or len(value) != len(label_maps):
                        raise ValueError(
                            f"with a list of {len(label_maps)} label maps, {name} must be a list of the same length"
                        )
                    item[name] = value[index]
                items.append(item)
            return super().__call__(items, **kwargs)
        return super().__call__({"label_map": label_maps, "index": 0, **per_item}, **kwargs)

    def preprocess(self, item: dict[str, Any]) -> dict[str, Any]:
        kinds = self._input_kinds
        instance_name = next((name for name, kind in kinds.items() if kind == "instance"), None)
        given = item.get(instance_name) if instance_name else None
        features = self.image_processor(item["label_map"], instance_maps=given, return_tensors="pt")
        _one_per_input(features["label_map"], "label map")
        inputs = {"label_map": features["label_map"], "index": item["index"]}
        if given is not None:
            inputs[instance_name] = features["instance_map"]
        elif instance_name and getattr(self.model.config, "use_instance_edges", False):
            # The documented default (the CLI and the demo do the same): every class region is one instance, so the
            # edges fall on class boundaries; touching objects of one class merge, as they would in a painted map.
            logger.warning_once(
                f"{type(self.model).__name__} uses instance edges and no {instance_name} was given: each class region "
                "of the label map counts as one instance (pass an instance map to separate touching objects of one "
                "class)"
            )
            inputs[instance_name] = features["label_map"].clone()
        size = tuple(features["label_map"].shape[-2:])
        for name, kind in kinds.items():
            if name not in item or kind == "instance":
                continue
            value = item[name]
            if kind == "image":
                value = self.image_processor.preprocess_images(value, size, what=name.replace("_", " "))
                _one_per_input(value, name.replace("_", " "))
            elif kind == "label":
                try:
                    value = self.image_processor(
                        value, size={"height": size[0], "width": size[1]},
                        resize_mode="fixed" if self.image_processor.resize_mode == "none" else None,
                        return_tensors="pt",
                    )["label_map"]
                except ValueError as err:
                    raise ValueError(f"{name}: {err}") from None
                _one_per_input(value, name.replace("_", " "))
            elif kind == "tensor":
                value = torch.as_tensor(value)
                value = value if value.dim() > 1 else value.unsqueeze(0)
            elif kind == "region":
                value = self._region(item["label_map"], features["label_map"], value, name)
            elif kind == "seed":
                value = _seed(value, name)
            inputs[name] = value
        return inputs

    def _region(self, label_map: Any, ids: torch.Tensor, value: Any, name: str) -> list[int] | torch.Tensor:
        """A "region" input: class ids -> `list[int]`, a mask -> `BoolTensor[1, H, W]` resized and cropped as the
        label map (`ids`, the processed `LongTensor[1, H, W]`). Refuses ids outside the label space, masks of another
        size than the label map, and regions that hold no pixel of the map."""
        space = self.image_processor.label_space
        if _is_class_ids(value):
            classes = [int(v) for v in np.asarray(value).reshape(-1)]
            bad = sorted({c for c in classes if not (0 <= c < space.num_classes or c == space.ignore_index)})
            if not classes or bad:
                raise ValueError(
                    f"{name}: class ids {bad or classes} are outside the label space {space.name!r} "
                    f"({space.valid_range}); give ids of classes in the label map (or a mask)"
                )
            if not bool(torch.isin(ids, torch.tensor(classes)).any()):
                present = torch.unique(ids).tolist()
                raise ValueError(f"{name}: classes {classes} do not occur in the label map (it has ids "
                                 f"{', '.join(map(str, present[:20]))}{', ...' if len(present) > 20 else ''}); "
                                 "nothing would change")
            return classes
        mask = _mask_array(value, name)
        full = self.image_processor(label_map, resize_mode="none", return_tensors="np")["label_map"]
        if mask.shape != full.shape[-2:]:
            raise ValueError(
                f"{name}: the mask is {mask.shape[1]}x{mask.shape[0]} but the label map is {full.shape[-1]}x"
                f"{full.shape[-2]} (width x height); a region mask must have its label map's size (they are "
                "resized together)"
            )
        resized = self.image_processor(label_map, instance_maps=mask.astype(np.uint8), return_tensors="pt")
        mask = resized["instance_map"] != 0
        if not bool(mask.any()):
            raise ValueError(f"{name}: the mask is empty (no non-zero pixel at the model's size); nothing would "
                             "change")
        return mask

    def _forward(self, model_inputs: dict[str, Any], seed: int | None = None,
                 generator: torch.Generator | None = None) -> dict[str, Any]:
        index = model_inputs.pop("index")
        if seed is not None:
            generator = torch.Generator().manual_seed(seed + index)
        model_inputs = {k: v.to(self.device) if isinstance(v, torch.Tensor) else v for k, v in model_inputs.items()}
        for name, kind in self._input_kinds.items():
            if kind == "image" and name in model_inputs:
                model_inputs[name] = model_inputs[name].to(self.model.dtype)
            elif kind == "seed" and name in model_inputs:
                model_inputs[name] = torch.Generator().manual_seed(model_inputs[name])
        model_inputs["generator"] = generator
        hook = getattr(self.model, "pipeline_forward_inputs", None)
        with inference_threads(self.device):  # one thread while other processes keep the cores busy
            if callable(hook):  # the model's own preparation, e.g. a region + seed -> noise map
                model_inputs = hook(model_inputs)
            outputs = self.model(**model_inputs)
        return {"images": outputs.images}

    def postprocess(self, model_outputs: dict[str, Any], output_type: str = "pil") -> Any:
        images = self.image_processor.postprocess(model_outputs["images"].float().cpu(), output_type=output_type)
        return images[0]
