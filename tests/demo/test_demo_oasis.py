"""OASIS in the demo through the HTTP API (gradio_client): re-roll picked classes with their own seed.

A narrow model on a 64x1024 strip (as the modeling tests), run on the plain path so that pixels outside the re-rolled
region's `influence_region` come back bit-identical.
"""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from gradio_client import Client, handle_file
from helpers import randomize_weights, save_model_folder
from PIL import Image
from transformers import pipeline

from labelsynth import OASISConfig, OASISModel
from labelsynth.demo import ClassSubset, Number, build_demo
from labelsynth.demo.spec import resolve_demo_inputs

GENERATE = "/generate_from_file"
REGION = 7


@pytest.fixture(scope="module")
def strip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray, Any]:
    """The saved model folder, its 64x1024 label map (a 40x40 patch of class 7 at the left end) and a pipeline."""
    folder = tmp_path_factory.mktemp("oasis_demo")
    config = OASISConfig.for_dataset("ade20k", ngf=2, z_dim=8, spade_hidden_nc=8, ndf=4, image_size=(64, 1024))
    model = OASISModel(config).eval()
    randomize_weights(model, seed=1)
    save_model_folder(folder / "model", model)
    ids = np.kron(np.random.RandomState(0).randint(0, 151, size=(2, 32)), np.ones((32, 32), np.int64))
    ids = ids.astype(np.uint8)
    ids[ids == REGION] = REGION + 1
    ids[:40, :40] = REGION
    Image.fromarray(ids).save(folder / "label.png")
    pipe = pipeline("label-to-image", model=str(folder / "model"))
    pipe.model.fast_inference = False  # the plain path: bit-identical outside the spill
    return folder, ids, pipe


@pytest.fixture(scope="module")
def client(strip: tuple[Path, np.ndarray, Any]) -> Iterator[Client]:
    demo = build_demo(strip[2], examples=[])
    _, url, _ = demo.launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True)
    try:
        yield Client(url, verbose=False)
    finally:
        demo.close()


def test_oasis_demo_declares_a_class_picker_and_a_reroll_seed(strip: tuple[Path, np.ndarray, Any]) -> None:
    model = strip[2].model
    spec, inputs = resolve_demo_inputs(type(model), model.config)
    assert spec.stochastic
    controls = {item.name: (item.kind, type(item.widget.control)) for item in inputs}
    assert controls == {"resample": ("region", ClassSubset), "resample_seed": ("seed", Number)}  # noise: hidden


def test_oasis_demo_rerolls_picked_classes(client: Client, strip: tuple[Path, np.ndarray, Any]) -> None:
    folder, ids, pipe = strip
    label = handle_file(str(folder / "label.png"))

    def run(**inputs: Any) -> tuple[np.ndarray, str]:
        gallery, _, status = client.predict(label_map=label, **{"resample": [], "resample_seed": 1, "seed": 0,
                                                                 "variations": 1, **inputs}, api_name=GENERATE)
        return np.asarray(Image.open(gallery[0]["image"]).convert("RGB")).astype(int), status

    before, _ = run()
    assert np.array_equal(before, run(resample_seed=5)[0])  # a re-roll seed without classes changes nothing
    after, status = run(resample=[REGION], resample_seed=7)
    assert "Re-rolled: 7 road." in status
    outside = ~model_influence(pipe, ids == REGION)
    assert outside.mean() > 0.4
    assert np.array_equal(before[outside], after[outside])  # the rest of the image is unchanged
    assert np.abs(before - after)[:40, :40].mean() > 2  # the picked class got a new look
    expected = pipe(str(folder / "label.png"), seed=0, resample=[REGION], resample_seed=7)
    assert np.array_equal(after, np.asarray(expected).astype(int))  # the demo's request is the pipeline's
    assert np.abs(run(resample=[REGION], resample_seed=8)[0] - after)[:40, :40].mean() > 2
    with pytest.raises(Exception, match=r"classes \[3\] do not occur in the label map"):
        run(resample=[3])


def model_influence(pipe: Any, region: np.ndarray) -> np.ndarray:
    return pipe.model.influence_region(torch.from_numpy(region)[None])[0].numpy()
