"""`LabelToImagePipeline`: the "label-to-image" task for `transformers.pipeline`."""

from __future__ import annotations

from typing import Any

import torch
from transformers import Pipeline
from transformers.utils import logging

from ..utils.threads import inference_threads

logger = logging.get_logger(__name__)

OUTPUT_TYPES = ("pil", "np", "pt")
INPUT_KINDS = ("instance", "image", "label", "tensor", "value")


def _one_per_input(batch: torch.Tensor, what: str) -> None:
    """One pipeline input is one map/image: an array holding several would make images that are then dropped."""
    if batch.shape[0] != 1:
        raise ValueError(
            f"{what}: one input holds {batch.shape[0]} maps/images (shape {tuple(batch.shape)}); the pipeline makes one "
            f"image per input: pass a batch as a list, e.g. pipe(list(array)) for a (B, H, W) array"
        )


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
    - `seed` / `generator`: randomness for z, noise or style sampling. With `seed=s`, item i of a list uses seed
      `s + i`, so a map gives the same image alone or inside a batch.
    - `output_type`: "pil" (default), "np" (uint8 HxWx3) or "pt" (float CxHxW in [0, 1]).
    """

    _load_processor = False
    _load_image_processor = True
    _load_feature_extractor = False
    _load_tokenizer = False

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
            inputs[name] = value
        return inputs

    def _forward(self, model_inputs: dict[str, Any], seed: int | None = None,
                 generator: torch.Generator | None = None) -> dict[str, Any]:
        index = model_inputs.pop("index")
        if seed is not None:
            generator = torch.Generator().manual_seed(seed + index)
        model_inputs = {k: v.to(self.device) if isinstance(v, torch.Tensor) else v for k, v in model_inputs.items()}
        for name, kind in self._input_kinds.items():
            if kind == "image" and name in model_inputs:
                model_inputs[name] = model_inputs[name].to(self.model.dtype)
        with inference_threads(self.device):  # one thread while other processes keep the cores busy
            outputs = self.model(**model_inputs, generator=generator)
        return {"images": outputs.images}

    def postprocess(self, model_outputs: dict[str, Any], output_type: str = "pil") -> Any:
        images = self.image_processor.postprocess(model_outputs["images"].float().cpu(), output_type=output_type)
        return images[0]
