"""The example label maps and the built-in demo model that ship with labelsynth."""

import numpy as np
import pytest
import torch
from PIL import Image

from labelsynth import get_label_space
from labelsynth.examples import BUILTIN_MODEL, CAR, ROAD, SKY, draw_street_scene, example_paths


@pytest.mark.parametrize("variant", [0, 1, 2])
def test_shipped_examples_are_the_drawn_ones(variant: int) -> None:
    label, instance = draw_street_scene(variant)
    label_path, instance_path = example_paths(variant)
    assert np.array_equal(np.asarray(Image.open(label_path)), label)
    assert Image.open(instance_path).mode == "I;16"
    assert np.array_equal(np.asarray(Image.open(instance_path)).astype(np.int64), instance)
    get_label_space("cityscapes").validate(label)
    cars = np.unique(instance[label == CAR])
    assert len(cars) >= 2 and all(c // 1000 == CAR for c in cars)  # separate car instances for the edge channel


def test_builtin_model_generates_a_street_scene() -> None:
    from transformers import pipeline

    import labelsynth  # noqa: F401  (registers the pipeline task)

    label_path, instance_path = example_paths(0)
    pipe = pipeline("label-to-image", model=str(BUILTIN_MODEL))
    image = pipe(str(label_path), instance_map=str(instance_path), output_type="np")
    assert image.shape == (128, 256, 3) and image.dtype == np.uint8
    from labelsynth.utils.precision import has_native_bf16

    # Stored in bf16 (a few MB); the pipeline runs it in float32 on CPUs that only emulate bf16 (100x slower there).
    assert pipe.model.dtype == (torch.bfloat16 if has_native_bf16() else torch.float32)
    label = np.asarray(Image.open(label_path).resize((256, 128), Image.NEAREST))
    sky, road = image[label == SKY].astype(float).mean(0), image[label == ROAD].astype(float).mean(0)
    # A trained model paints regions by class: the sky is brighter than the asphalt.
    assert sky.mean() > road.mean() + 20, (sky, road)
    assert (BUILTIN_MODEL / "model.safetensors").stat().st_size < 10 * 2**20
