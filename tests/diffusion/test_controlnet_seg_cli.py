"""``labelsynth generate`` with a segmentation ControlNet (tiny random model), in-process."""

import numpy as np
import PIL.Image
import pytest

from labelsynth import pipeline
from labelsynth.cli import main
from labelsynth.examples import BUILTIN_MODEL
from labelsynth.label_spaces import get_label_space


@pytest.fixture(scope="module")
def street_png(tmp_path_factory: pytest.TempPathFactory) -> str:
    cs = get_label_space("cityscapes").label2id
    ids = np.full((32, 48), cs["sky"], np.uint8)
    ids[16:] = cs["road"]
    ids[20:, 5:15] = cs["car"]
    path = tmp_path_factory.mktemp("labels") / "street.png"
    PIL.Image.fromarray(ids, mode="L").save(path)
    return str(path)


def test_generate_equals_the_pipeline(tiny_sd, street_png, tmp_path, capsys) -> None:
    out = tmp_path / "out.png"
    control = tmp_path / "control.png"
    status = main(["generate", "--model", str(tiny_sd["pipeline"]), "--label", street_png,
                   "--label-space", "cityscapes", "--prompt", "a street", "--negative-prompt", "blurry",
                   "--steps", "2", "--guidance", "5", "--seed", "4", "--num-images", "2", "-o", str(out),
                   "--save-colorized-label", str(control)])
    assert status == 0, capsys.readouterr().err
    pipe = pipeline("label-to-image", model=str(tiny_sd["pipeline"]), label_space="cityscapes", progress_bar=False)
    expected = pipe([street_png, street_png], prompt="a street", negative_prompt="blurry", seed=4,
                    num_inference_steps=2, guidance_scale=5.0, output_type="np")
    for i in range(2):
        assert np.array_equal(np.asarray(PIL.Image.open(tmp_path / f"out_{i}.png")), expected[i])
    assert np.array_equal(np.asarray(PIL.Image.open(control)), np.asarray(pipe.control_image(street_png)))


def test_generate_default_prompt_and_bare_controlnet(tiny_sd, street_png, tmp_path, capsys) -> None:
    out = tmp_path / "out.png"
    status = main(["generate", "--model", str(tiny_sd["controlnet"]), "--base-model", str(tiny_sd["base"]),
                   "--label", street_png, "--label-space", "cityscapes", "--steps", "1", "--scheduler", "unipc",
                   "-o", str(out)])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert "prompt (from the label map's classes): a photograph of sky, road and car" in captured.err
    assert PIL.Image.open(out).size == (64, 64)


def test_generate_errors(tiny_sd, street_png, tmp_path, capsys) -> None:
    out = str(tmp_path / "out.png")
    assert main(["generate", "--model", str(tiny_sd["pipeline"]), "--label", street_png, "--label-space",
                 "celebamask-hq", "-o", out]) == 2
    assert "no class mapping from label space 'celebamask-hq'" in capsys.readouterr().err
    assert main(["generate", "--model", str(BUILTIN_MODEL), "--label", street_png, "--prompt", "x", "-o", out]) == 2
    assert "--prompt: only diffusion models" in capsys.readouterr().err
    assert main(["generate", "--model", str(tiny_sd["pipeline"]), "--label", street_png, "--style", street_png,
                 "-o", out]) == 2
    assert "--style: " in capsys.readouterr().err
