"""The demo through its HTTP API (gradio_client): built-in model, uploads, bad input, seeds, declared controls."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import torch
from gradio_client import Client, handle_file
from helpers import launch_demo, randomize_weights
from PIL import Image

from labelsynth import LabelToImageOutput, SPADEConfig, SPADEModel, get_label_space
from labelsynth.demo import ClassSubset, DemoInput, DemoSpec, Number, build_demo
from labelsynth.demo.spec import resolve_demo_inputs
from labelsynth.examples import example_paths

CITY = get_label_space("cityscapes")


def _serve(demo: Any) -> Iterator[Client]:
    url = launch_demo(demo)
    try:
        yield Client(url, verbose=False)
    finally:
        demo.close()


def _images(gallery: list[dict]) -> list[np.ndarray]:
    return [np.asarray(Image.open(item["image"]).convert("RGB")) for item in gallery]


@pytest.fixture(scope="module")
def builtin_client() -> Iterator[Client]:
    yield from _serve(build_demo(max_input_pixels=600 * 600))


@pytest.fixture(scope="module")
def vae_client(vae_model: Path) -> Iterator[Client]:
    yield from _serve(build_demo(vae_model, max_variations=3))


def test_builtin_generate_from_file(builtin_client: Client) -> None:
    label, instance = example_paths(0)
    gallery, label_view, status = builtin_client.predict(handle_file(str(label)), handle_file(str(instance)), None,
                                                         api_name="/generate_from_file")
    (image,) = _images(gallery)
    assert image.shape == (128, 256, 3) and image.std() > 5  # a picture, not a flat colour
    shown = np.asarray(Image.open(label_view).convert("RGB"))
    expected = np.asarray(Image.open(label).resize((256, 128), Image.Resampling.NEAREST))
    assert np.array_equal(shown, CITY.colorize(expected))
    assert status.startswith("Generated 1 image of 256x128")


def test_builtin_canvas_with_painted_region(builtin_client: Client, tmp_path: Path) -> None:
    label, _ = example_paths(1)
    ids = np.asarray(Image.open(label).resize((256, 128), Image.Resampling.NEAREST)).astype(np.int64)
    canvas = CITY.colorize(ids)
    canvas[10:40, 20:120] = CITY.palette[26]  # paint a car into the sky
    path = tmp_path / "canvas.png"
    Image.fromarray(canvas).save(path)
    editor = {"background": handle_file(str(path)), "layers": [], "composite": handle_file(str(path))}
    gallery, label_view, status = builtin_client.predict(editor, None, None, api_name="/generate")
    shown = np.asarray(Image.open(label_view).convert("RGB"))
    assert (shown[10:40, 20:120] == CITY.palette[26]).all()
    assert "instance map" in status.lower()
    # The painted car changes the picture where it was painted.
    plain = builtin_client.predict(handle_file(str(label)), None, None, api_name="/generate_from_file")[0]
    diff = np.abs(_images(gallery)[0].astype(int) - _images(plain)[0].astype(int)).mean(-1)
    assert diff[10:40, 20:120].mean() > 3 * diff[80:, :].mean() + 1


def test_bad_uploads_give_clear_errors(builtin_client: Client, tmp_path: Path) -> None:
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    with pytest.raises(Exception, match="could not read the label map"):
        builtin_client.predict(handle_file(str(text)), None, None, api_name="/generate_from_file")
    off = np.zeros((32, 64, 3), np.uint8)
    off[:] = (1, 2, 250)
    Image.fromarray(off).save(tmp_path / "off.png")
    with pytest.raises(Exception, match="not in the palette"):
        builtin_client.predict(handle_file(str(tmp_path / "off.png")), None, None, api_name="/generate_from_file")
    Image.new("L", (700, 700), 7).save(tmp_path / "big.png")
    with pytest.raises(Exception, match="at most 0.4 megapixels"):
        builtin_client.predict(handle_file(str(tmp_path / "big.png")), None, None, api_name="/generate_from_file")


def test_seed_and_variations_and_style(vae_client: Client, tmp_path: Path) -> None:
    ids = np.zeros((64, 64), np.uint8)
    ids[:32] = 3  # sky
    ids[32:] = 10  # grass
    Image.fromarray(ids).save(tmp_path / "label.png")
    label = handle_file(str(tmp_path / "label.png"))
    a = _images(vae_client.predict(label, None, 0, 1, api_name="/generate_from_file")[0])[0]
    a_again = _images(vae_client.predict(label, None, 0, 1, api_name="/generate_from_file")[0])[0]
    b = _images(vae_client.predict(label, None, 1, 1, api_name="/generate_from_file")[0])[0]
    assert np.array_equal(a, a_again) and np.abs(a.astype(int) - b).mean() > 1
    gallery = vae_client.predict(label, None, 5, 3, api_name="/generate_from_file")[0]
    assert [item["caption"] for item in gallery] == ["seed 5", "seed 6", "seed 7"]
    Image.fromarray(np.full((40, 40, 3), 200, np.uint8)).save(tmp_path / "style.png")
    styled = vae_client.predict(label, handle_file(str(tmp_path / "style.png")), 0, 1,
                                api_name="/generate_from_file")[0]
    assert np.abs(_images(styled)[0].astype(int) - a).mean() > 1


class ShiftedSPADE(SPADEModel):
    """A model with two 'value' inputs, to check that declared controls reach forward() through the demo."""

    pipeline_inputs: ClassVar[dict[str, str]] = {**SPADEModel.pipeline_inputs, "shift": "value", "whiten": "value"}

    @classmethod
    def demo_spec(cls, config: SPADEConfig) -> DemoSpec:
        return DemoSpec(inputs={
            "style_image": None,  # no VAE: hide it, as SPADEModel does
            "shift": DemoInput("Shift", control=Number(-1, 1, 0, step=0.5, integer=False)),
            "whiten": DemoInput("Whiten classes", control=ClassSubset()),
        }, stochastic=False)

    def forward(self, label_map: torch.Tensor, shift: float = 0.0, whiten: list[int] | None = None,
                **kwargs: Any) -> LabelToImageOutput:
        # Halve the (saturated, random-weight) image first so that a shift of up to 0.5 never clips.
        images = super().forward(label_map, **kwargs).images * 0.5 + shift
        if whiten:
            mask = torch.isin(label_map.to(images.device), torch.tensor(whiten)).unsqueeze(1)
            images = torch.where(mask, torch.ones_like(images), images)
        return LabelToImageOutput(images=images)


def test_declared_value_controls_reach_the_model(tmp_path: Path) -> None:
    config = SPADEConfig.for_dataset("ade20k", image_size=(32, 32), ngf=4, spade_hidden_nc=8)
    model = ShiftedSPADE(config).eval()
    randomize_weights(model)
    spec, inputs = resolve_demo_inputs(ShiftedSPADE, config)
    assert [i.name for i in inputs] == ["shift", "whiten"] and not spec.stochastic
    ids = np.zeros((32, 32), np.uint8)
    ids[:, 16:] = 3
    Image.fromarray(ids).save(tmp_path / "label.png")
    client_iter = _serve(build_demo(model, examples=[]))
    client = next(client_iter)
    try:
        label = handle_file(str(tmp_path / "label.png"))
        base = _images(client.predict(label, 0, [], api_name="/generate_from_file")[0])[0].astype(int)
        shifted = _images(client.predict(label, 0.5, [], api_name="/generate_from_file")[0])[0].astype(int)
        # +0.5 in [-1, 1] units is +63.75 in 0..255: every pixel moves by that, give or take rounding.
        assert np.abs(shifted - base - 63.75).max() <= 1
        white = _images(client.predict(label, 0, [3], api_name="/generate_from_file")[0])[0]
        assert (white[:, 16:] == 255).all() and not (white[:, :16] == 255).all()
    finally:
        next(client_iter, None)


def test_spec_defaults_and_errors(city_model: Path) -> None:
    _, city = resolve_demo_inputs(SPADEModel, SPADEConfig.for_dataset("cityscapes"))
    assert [(i.name, i.kind) for i in city] == [("instance_map", "instance")]
    spec, vae = resolve_demo_inputs(SPADEModel, SPADEConfig.for_dataset("ade20k", use_vae=True))
    assert [(i.name, i.kind) for i in vae] == [("style_image", "image")] and spec.stochastic
    spec, plain = resolve_demo_inputs(SPADEModel, SPADEConfig.for_dataset("ade20k"))
    assert plain == [] and not spec.stochastic

    class Unknown(SPADEModel):
        @classmethod
        def demo_spec(cls, config: SPADEConfig) -> DemoSpec:
            return DemoSpec(inputs={"cluster": DemoInput("Cluster")})

    with pytest.raises(ValueError, match=r"inputs \['cluster'\] that are not in its pipeline_inputs"):
        resolve_demo_inputs(Unknown, SPADEConfig())

    class NoControl(SPADEModel):
        pipeline_inputs: ClassVar[dict[str, str]] = {"cluster": "value"}

        @classmethod
        def demo_spec(cls, config: SPADEConfig) -> DemoSpec:
            return DemoSpec(inputs={"cluster": DemoInput("Cluster")})

    with pytest.raises(ValueError, match="needs a control"):
        resolve_demo_inputs(NoControl, SPADEConfig())
    # Undeclared 'value' inputs are simply not shown.
    assert resolve_demo_inputs(type("V", (), {"pipeline_inputs": {"cluster": "value"}}), SPADEConfig())[1] == []


def test_failed_events_clear_the_stale_result_and_keep_the_canvas(tmp_path: Path) -> None:
    """What follows a failed event in the browser (checked there by test_demo_browser): the error is raised once
    (Gradio's toast), the outputs it would have replaced are emptied, the canvas is never touched or badged, and a
    rejected label file is taken out of the upload field."""
    demo = build_demo(max_input_pixels=600 * 600)
    try:
        fns = list(demo.fns.values())
        elem = {fn: [getattr(c, "elem_id", None) for c in fn.outputs] for fn in fns}
        failures = {fn: [f for f in fns if f.trigger_after == fn._id and f.trigger_only_on_failure] for fn in fns}
        generating = [fn for fn in fns if fn.api_name in ("generate", "generate_from_file")]
        uploading = [fn for fn in fns if "editor" in elem[fn] and fn.name == "load_upload"]
        assert len(generating) == 2 and uploading
        for fn in generating + uploading:
            followups = failures[fn]
            cleared = {e: v for f in followups if f.name == "clear_outputs" for e, v in zip(elem[f], f.fn())}
            assert cleared == {"result": None, "label_view": None, "status": ""}
            assert all("editor" not in elem[f] for f in followups)
        assert all(fn.show_progress == "hidden" for fn in uploading)  # no "Error" badge over the canvas
        text = tmp_path / "notes.png"
        text.write_text("not an image")
        label, _ = example_paths(0)
        drop = next(f for f in failures[uploading[0]] if elem[f] == ["label_file"])
        assert drop.fn(str(text)) is None and drop.fn(str(label)) == {"__type__": "update"}  # emptied / kept
    finally:
        demo.close()
