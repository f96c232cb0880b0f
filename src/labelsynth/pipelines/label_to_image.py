"""`LabelToImagePipeline`: the "label-to-image" task for `transformers.pipeline`."""

from __future__ import annotations

from typing import Any

import torch
from transformers import Pipeline

OUTPUT_TYPES = ("pil", "np", "pt")
_PER_ITEM_INPUTS = ("instance_map", "style_image", "noise")


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
    maps in the model's palette), numpy arrays, torch tensors. Call arguments:

    - `instance_map`: instance ids per label map (models with instance edges), same forms as label maps.
    - `style_image`: a style image (VAE / style-encoder models), path or PIL/numpy image.
    - `seed` / `generator`: randomness for z, noise or style sampling. With `seed=s`, item i of a list uses seed
      `s + i`, so a map gives the same image alone or inside a batch.
    - `noise`: explicit latent/noise tensor (see the model's `forward`).
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
        unknown = sorted(set(per_item) - set(_PER_ITEM_INPUTS))
        if unknown:
            raise TypeError(f"label-to-image got unexpected arguments {unknown}; accepted: seed, generator, "
                            f"output_type, {', '.join(_PER_ITEM_INPUTS)}")
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

    def __call__(self, label_maps: Any, **kwargs: Any) -> Any:
        """Generate one image per label map; a list in gives a list out."""
        per_item = {name: kwargs.pop(name) for name in _PER_ITEM_INPUTS if name in kwargs}
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
        features = self.image_processor(
            item["label_map"], instance_maps=item.get("instance_map"), style_images=item.get("style_image"),
            return_tensors="pt",
        )
        inputs = dict(features)
        if item.get("noise") is not None:
            noise = torch.as_tensor(item["noise"])
            inputs["noise"] = noise if noise.dim() > 1 else noise.unsqueeze(0)
        inputs["index"] = item["index"]
        return inputs

    def _forward(self, model_inputs: dict[str, Any], seed: int | None = None,
                 generator: torch.Generator | None = None) -> dict[str, Any]:
        index = model_inputs.pop("index")
        if seed is not None:
            generator = torch.Generator().manual_seed(seed + index)
        model_inputs = {k: v.to(self.device) if isinstance(v, torch.Tensor) else v for k, v in model_inputs.items()}
        if "style_image" in model_inputs:
            model_inputs["style_image"] = model_inputs["style_image"].to(self.model.dtype)
        outputs = self.model(**model_inputs, generator=generator)
        return {"images": outputs.images}

    def postprocess(self, model_outputs: dict[str, Any], output_type: str = "pil") -> Any:
        images = self.image_processor.postprocess(model_outputs["images"].float().cpu(), output_type=output_type)
        return images[0]
