"""The ControlNet demo through gradio_client, and ``labelsynth demo --model <controlnet>``."""

import json
import shutil
from pathlib import Path

import numpy as np
import PIL.Image
import pytest

pytest.importorskip("gradio")
from gradio_client import Client, handle_file
from helpers import launch_demo

from labelsynth import pipeline
from labelsynth.cli import build_parser
from labelsynth.cli.demo import run_demo
from labelsynth.demo import build_demo
from labelsynth.label_spaces import get_label_space


@pytest.fixture(scope="module")
def street(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cs = get_label_space("cityscapes").label2id
    ids = np.full((32, 32), cs["sky"], np.uint8)
    ids[14:] = cs["vegetation"]
    ids[20:] = cs["road"]
    path = tmp_path_factory.mktemp("street") / "street.png"
    PIL.Image.fromarray(ids, mode="L").save(path)
    return path


@pytest.fixture(scope="module")
def controlnet_with_metadata(tiny_sd, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bare ControlNet folder whose base model is recorded next to it (as the fine-tuning script writes)."""
    folder = tmp_path_factory.mktemp("cn") / "controlnet"
    shutil.copytree(tiny_sd["controlnet"], folder)
    (folder / "labelsynth_controlnet.json").write_text(json.dumps({"palette": "ade20k",
                                                                   "base_model": str(tiny_sd["base"])}))
    return folder


def test_demo_prompt_and_generate(tiny_sd, street) -> None:
    pipe = pipeline("label-to-image", model=str(tiny_sd["pipeline"]), progress_bar=False)
    demo = build_demo(pipe, max_variations=2)
    url = launch_demo(demo)
    try:
        client = Client(url, verbose=False)
        prompt, control = client.predict(handle_file(str(street)), "cityscapes", api_name="/prompt")
        assert prompt == "a photograph of sky, road and vegetation"  # largest area first, input-space names
        assert np.array_equal(np.asarray(PIL.Image.open(control).convert("RGB")),
                              np.asarray(pipe.control_image(street, label_space="cityscapes")))
        gallery, _, status = client.predict(handle_file(str(street)), "cityscapes", "a forest road", "", 2, 5.0,
                                            1.0, 7, 2, api_name="/generate")
        images = [np.asarray(PIL.Image.open(item["image"]).convert("RGB")) for item in gallery]
        expected = pipe([str(street)] * 2, label_space="cityscapes", prompt="a forest road", seed=7,
                        num_inference_steps=2, guidance_scale=5.0, output_type="np")
        assert len(images) == 2 and all(np.array_equal(a, b) for a, b in zip(images, expected))
        assert status.startswith("Generated 2 images of 64x64 with 2 steps (seeds 7..8)")
    finally:
        demo.close()


def test_cli_demo_with_a_controlnet(controlnet_with_metadata) -> None:
    args = build_parser().parse_args(["demo", "--model", str(controlnet_with_metadata), "--host", "127.0.0.1"])
    demo = run_demo(args, block=False)
    try:
        client = Client(demo.local_url, verbose=False)
        assert {"/generate", "/prompt"} <= set(client.view_api(print_info=False, return_format="dict")
                                               ["named_endpoints"])
    finally:
        demo.close()


@pytest.mark.parametrize("form", ["pipeline_folder", "bare_controlnet_and_base_model"])
def test_cli_demo_with_a_pipeline_folder_or_a_base_model(tiny_sd, form: str) -> None:
    argv = (["demo", "--model", str(tiny_sd["pipeline"])] if form == "pipeline_folder" else
            ["demo", "--model", str(tiny_sd["controlnet"]), "--base-model", str(tiny_sd["base"])])
    demo = run_demo(build_parser().parse_args([*argv, "--host", "127.0.0.1"]), block=False)
    try:
        client = Client(demo.local_url, verbose=False)
        assert "/generate" in client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    finally:
        demo.close()


def test_cli_demo_refuses_a_base_model_for_a_gan(capsys) -> None:
    from labelsynth.cli import main

    assert main(["demo", "--base-model", "some/sd", "--host", "127.0.0.1"]) == 2
    assert "base_model is for segmentation ControlNets" in capsys.readouterr().err
