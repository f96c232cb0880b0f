"""OASIS in the demo through the HTTP API (gradio_client): re-roll picked classes and/or a painted region with their
own seed.

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
from labelsynth.demo import Number, build_demo
from labelsynth.demo.app import _painting_mask
from labelsynth.inputs import RegionPicker, resolve_demo_inputs

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


def test_oasis_demo_declares_a_region_picker_and_a_reroll_seed(strip: tuple[Path, np.ndarray, Any]) -> None:
    model = strip[2].model
    spec, inputs = resolve_demo_inputs(type(model), model.config)
    assert spec.stochastic
    controls = {item.name: (item.kind, type(item.widget.control)) for item in inputs}
    assert controls == {"resample": ("region", RegionPicker), "resample_seed": ("seed", Number)}  # noise: hidden


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


def painting(folder: Path, name: str, rows: slice, cols: slice, size: tuple[int, int] = (64, 1024)) -> dict:
    """An ImageEditor value for gradio_client: a grey background and one RGBA layer, opaque in [rows, cols]."""
    Image.new("RGB", size[::-1], (128, 128, 128)).save(folder / f"{name}_bg.png")
    layer = np.zeros((*size, 4), np.uint8)
    layer[rows, cols] = (255, 0, 255, 255)
    Image.fromarray(layer, "RGBA").save(folder / f"{name}_layer.png")
    return {"background": handle_file(str(folder / f"{name}_bg.png")),
            "layers": [handle_file(str(folder / f"{name}_layer.png"))], "composite": None}


def test_oasis_demo_rerolls_a_painted_region(client: Client, strip: tuple[Path, np.ndarray, Any]) -> None:
    folder, ids, pipe = strip
    label = handle_file(str(folder / "label.png"))

    def run(painted: dict | None, **inputs: Any) -> tuple[np.ndarray, str]:
        gallery, _, status = client.predict(
            label_map=label, resample_painted=painted,
            **{"resample": [], "resample_seed": 7, "seed": 0, "variations": 1, **inputs}, api_name=GENERATE)
        return np.asarray(Image.open(gallery[0]["image"]).convert("RGB")).astype(int), status

    def pipeline(region: Any) -> np.ndarray:
        return np.asarray(pipe(str(folder / "label.png"), seed=0, resample=region, resample_seed=7)).astype(int)

    before = np.asarray(pipe(str(folder / "label.png"), seed=0)).astype(int)
    square = np.zeros(ids.shape, bool)
    square[16:48, 600:632] = True
    after, status = run(painting(folder, "square", slice(16, 48), slice(600, 632)))
    assert "Re-rolled: painted region." in status
    assert np.array_equal(after, pipeline(square))  # the demo's request is the pipeline's
    outside = ~model_influence(pipe, square)
    assert outside.mean() > 0.4
    assert np.array_equal(before[outside], after[outside])  # the rest of the image is unchanged
    assert np.abs(before - after)[square].mean() > 2  # the painted region got a new look

    # Painted region + picked classes: their union.
    both, status = run(painting(folder, "square", slice(16, 48), slice(600, 632)), resample=[REGION])
    assert "Re-rolled: painted region + 7 road." in status
    assert np.array_equal(both, pipeline(square | (ids == REGION)))
    assert np.abs(both - after)[:40, :40].mean() > 2

    # An empty painting (transparent layer) changes nothing: no re-roll, the re-roll seed is dropped.
    empty, status = run(painting(folder, "empty", slice(0, 0), slice(0, 0)))
    assert "Re-rolled" not in status and np.array_equal(empty, before)
    # ... and with classes it is the classes' re-roll.
    classes, _ = run(painting(folder, "empty", slice(0, 0), slice(0, 0)), resample=[REGION])
    assert np.array_equal(classes, pipeline([REGION]))

    # A painting of another size is resized (nearest) to the label map's: half size -> each pixel covers 2x2.
    small, status = run(painting(folder, "small", slice(8, 24), slice(300, 316), size=(32, 512)))
    assert "Re-rolled: painted region." in status
    assert np.array_equal(small, after)  # the same square as above, painted at half size
    with pytest.raises(Exception, match=r"classes \[3\] do not occur in the label map"):
        run(painting(folder, "square", slice(16, 48), slice(600, 632)), resample=[3])


def test_painting_without_layers_is_where_the_composite_differs() -> None:
    background = np.full((8, 16, 3), 128, np.uint8)
    composite = background.copy()
    composite[2:4, 5:9] = (255, 0, 255)
    mask = _painting_mask({"background": background, "layers": None, "composite": composite})
    assert mask is not None and np.array_equal(np.argwhere(mask), np.argwhere(composite[..., 1] == 0))
    assert _painting_mask({"background": background, "layers": None, "composite": background}) is None
    assert _painting_mask(None) is None


def test_oasis_demo_rerolls_a_painted_region_of_the_canvas(client: Client, strip: tuple[Path, np.ndarray, Any]
                                                            ) -> None:
    folder, ids, pipe = strip
    Image.fromarray(pipe.image_processor.label_space.colorize(ids)).save(folder / "canvas.png")
    canvas = {"background": handle_file(str(folder / "canvas.png")), "layers": [], "composite": None}
    gallery, _, status = client.predict(
        canvas=canvas, resample=[], resample_seed=7, seed=0, variations=1, api_name="/generate",
        resample_painted=painting(folder, "canvas_square", slice(0, 32), slice(900, 960)))
    region = np.zeros(ids.shape, bool)
    region[:32, 900:960] = True
    expected = pipe(str(folder / "label.png"), seed=0, resample=region, resample_seed=7)
    assert "Re-rolled: painted region." in status
    assert np.array_equal(np.asarray(Image.open(gallery[0]["image"]).convert("RGB")), np.asarray(expected))


def test_paintings_show_the_latest_result(strip: tuple[Path, np.ndarray, Any]) -> None:
    """Every generation is followed by a step that puts its first image under the strokes of the painting."""
    demo = build_demo(strip[2], examples=[])
    try:
        fns = list(demo.fns.values())
        elem = {fn: [getattr(c, "elem_id", None) for c in fn.inputs] for fn in fns}
        generating = [fn for fn in fns if fn.api_name in ("generate", "generate_from_file")
                      or fn.name == "live_from_canvas"]
        steps = [fn for fn in fns if fn.name == "_under_paintings"]
        assert len(generating) == 3 and all("paint-resample" in elem[fn] for fn in generating)
        assert len(steps) == 3 and all(elem[fn] == ["result", "paint-resample"] for fn in steps)
        assert all([c.elem_id for c in fn.outputs] == ["paint-resample"] for fn in steps)
        stroke = np.zeros((64, 1024, 4), np.uint8)
        value = steps[0].fn([("result.png", "seed 0")], {"background": None, "layers": [stroke], "composite": None})
        assert value["background"] == "result.png" and value["layers"][0] is stroke
    finally:
        demo.close()


def model_influence(pipe: Any, region: np.ndarray) -> np.ndarray:
    return pipe.model.influence_region(torch.from_numpy(region)[None])[0].numpy()
