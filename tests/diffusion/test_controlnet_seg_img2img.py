"""img2img of `ControlNetSegPipeline` (tiny random SD + ControlNet): equal to diffusers'
`StableDiffusionControlNetImg2ImgPipeline` called directly, batch and seed semantics, errors, and the photo workflow
through ``labelsynth generate --from-photo`` and the demo's "Start from a photo" (gradio_client)."""

from __future__ import annotations

import io
import urllib.request
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch
from helpers import chromium_browser, launch_demo, open_page

from labelsynth import pipeline, segment
from labelsynth.cli import main
from labelsynth.diffusion import ControlNetSegPipeline
from labelsynth.examples import BUILTIN_MODEL
from labelsynth.label_spaces import get_label_space
from labelsynth.segmentation import photo_style_inputs

PHOTO = "pix2pixHD_cityscapes/train_img/aachen_000000_000019_leftImg8bit.png"
ADE = get_label_space("ade20k").label2id
# ADE20K Color150 colours of the classes in `_scene`, written out by hand
COLOURS = {ADE["sky"]: (6, 230, 230), ADE["building"]: (180, 120, 120), ADE["tree"]: (4, 200, 3),
           ADE["road"]: (140, 140, 140)}


def _scene(flip: bool = False) -> np.ndarray:
    """A 32x32 ADE20K map: sky, building, tree, road."""
    ids = np.full((32, 32), ADE["sky"], np.int64)
    ids[10:, :16] = ADE["building"]
    ids[10:, 16:] = ADE["tree"]
    ids[22:] = ADE["road"]
    return np.fliplr(ids).copy() if flip else ids


def _control(ids: np.ndarray) -> PIL.Image.Image:
    """The control image at the 64x64 output: exact colours, each label pixel a 2x2 block (nearest)."""
    rgb = np.zeros(ids.shape + (3,), np.uint8)
    for value, colour in COLOURS.items():
        rgb[ids == value] = colour
    return PIL.Image.fromarray(rgb.repeat(2, 0).repeat(2, 1))


@pytest.fixture(scope="module")
def pipe(tiny_sd) -> ControlNetSegPipeline:
    return pipeline("label-to-image", model=str(tiny_sd["pipeline"]), progress_bar=False)


@pytest.fixture(scope="module")
def photos(samples_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The real Cityscapes photo at 128x64 (not the 64x64 output size: the init image is resized), and its mirror."""
    folder = tmp_path_factory.mktemp("photos")
    image = PIL.Image.open(samples_dir / PHOTO).convert("RGB").resize((128, 64), PIL.Image.Resampling.BICUBIC)
    paths = [folder / "photo.png", folder / "mirrored.png"]
    image.save(paths[0])
    image.transpose(PIL.Image.Transpose.FLIP_LEFT_RIGHT).save(paths[1])
    return paths


@pytest.fixture(scope="module")
def segmenter_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random SegFormer with the 19 Cityscapes trainId classes and its image processor, saved offline."""
    from transformers import SegformerConfig, SegformerForSemanticSegmentation, SegformerImageProcessor

    names = get_label_space("cityscapes-trainid").names
    config = SegformerConfig(
        num_channels=3, num_encoder_blocks=2, depths=[1, 1], sr_ratios=[2, 1], hidden_sizes=[8, 16],
        patch_sizes=[7, 3], strides=[4, 2], num_attention_heads=[1, 2], mlp_ratios=[2, 2], decoder_hidden_size=16,
        num_labels=19, id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)},
    )
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny_segformer")
    SegformerForSemanticSegmentation(config).save_pretrained(folder)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        SegformerImageProcessor(size={"height": 32, "width": 64}).save_pretrained(folder)
    return folder


# ------------------------------------------------------------------------------------------------ the pipeline
def test_img2img_equals_diffusers_called_directly(pipe, tiny_sd, photos) -> None:
    from diffusers import StableDiffusionControlNetImg2ImgPipeline

    ids = _scene()
    settings = {"num_inference_steps": 5, "guidance_scale": 6.0, "controlnet_conditioning_scale": 0.7,
                "negative_prompt": "blurry", "strength": 0.6}
    ours = pipe(ids, image=str(photos[0]), prompt="a street", seed=3, **settings)
    ours_pt = pipe(ids, image=str(photos[0]), prompt="a street", seed=3, output_type="pt", **settings)

    reference = StableDiffusionControlNetImg2ImgPipeline.from_pretrained(tiny_sd["pipeline"])
    reference.set_progress_bar_config(disable=True)
    photo = PIL.Image.open(photos[0])  # 128x64: diffusers resizes it to the 64x64 output itself (LANCZOS)
    direct = [reference(prompt="a street", image=photo, control_image=_control(ids), height=64, width=64,
                        generator=torch.Generator().manual_seed(3), output_type=kind, **settings).images[0]
              for kind in ("pil", "pt")]
    assert isinstance(ours, PIL.Image.Image) and ours.size == (64, 64)
    assert np.array_equal(np.asarray(ours), np.asarray(direct[0]))
    assert torch.equal(ours_pt, direct[1])
    # the same loaded modules, nothing loaded twice
    img2img = pipe.img2img_pipeline
    assert all(getattr(img2img, name) is module for name, module in pipe.sd_pipeline.components.items())
    assert pipe.img2img_pipeline is img2img


def test_the_photo_and_strength_matter(pipe, photos) -> None:
    kwargs = {"prompt": "a street", "seed": 0, "num_inference_steps": 4, "output_type": "np"}
    from_photo = pipe(_scene(), image=str(photos[0]), strength=0.5, **kwargs)
    assert not np.array_equal(from_photo, pipe(_scene(), image=str(photos[1]), strength=0.5, **kwargs))
    assert not np.array_equal(from_photo, pipe(_scene(), image=str(photos[0]), strength=1.0, **kwargs))
    assert not np.array_equal(from_photo, pipe(_scene(), **kwargs))  # text-to-image


def test_batch_item_i_uses_seed_plus_i_and_its_own_image(pipe, photos) -> None:
    a, b = _scene(), _scene(flip=True)
    p, q = str(photos[0]), PIL.Image.open(photos[1])
    kwargs = {"num_inference_steps": 4, "strength": 0.5, "output_type": "np"}
    batch = pipe([a, b], image=[p, q], seed=10, **kwargs)
    assert np.array_equal(batch[0], pipe(a, image=p, seed=10, **kwargs))
    assert np.array_equal(batch[1], pipe(b, image=q, seed=11, **kwargs))
    shared = pipe([a, b], image=p, seed=10, **kwargs)  # one image for every map
    assert np.array_equal(shared[0], batch[0])
    assert np.array_equal(shared[1], pipe(b, image=p, seed=11, **kwargs))


def test_progress_counts_the_steps_that_run(pipe, photos) -> None:
    steps = []
    pipe(_scene(), image=str(photos[0]), strength=0.5, seed=0, num_inference_steps=4,
         callback=lambda step, total: steps.append((step, total)))
    assert steps == [(1, 2), (2, 2)]  # int(4 * 0.5) steps


def test_init_image_forms_give_the_same_pixels(pipe, photos) -> None:
    photo = PIL.Image.open(photos[0]).convert("RGB")
    expected = np.asarray(photo.resize((64, 64), PIL.Image.LANCZOS))
    array = np.array(photo)  # writable, for torch.from_numpy
    tensor = torch.from_numpy(array).permute(2, 0, 1).float() / 255
    for form in (str(photos[0]), photo, array, tensor):
        assert np.array_equal(np.asarray(pipe.init_image(form, 64, 64)), expected)
    assert pipe.init_image(photo, 64, 128).size == (128, 64)  # the output size, aspect ratio not kept


def test_img2img_errors_are_clear(pipe, photos) -> None:
    photo = str(photos[0])
    for bad in (0, 1.5, -0.2, float("nan"), "0.5", True):
        with pytest.raises(ValueError, match=r"strength must be a number in \(0, 1\]"):
            pipe(_scene(), image=photo, strength=bad)
    with pytest.raises(ValueError, match="strength is for img2img: pass the init image"):
        pipe(_scene(), strength=0.5)
    with pytest.raises(ValueError, match=r"strength 0.75 with 1 step runs no denoising step.*at least 2"):
        pipe(_scene(), image=photo, num_inference_steps=1)
    with pytest.raises(ValueError, match="image: 3 init images for 2 label maps"):
        pipe([_scene(), _scene()], image=[photo] * 3)
    with pytest.raises(ValueError, match="image: 2 init images for 1 label map;"):
        pipe(_scene(), image=[photo, photo])
    with pytest.raises(ValueError, match=r"image #1: an array image must be uint8 \(H, W, 3\)"):
        pipe([_scene(), _scene()], image=[photo, np.zeros((8, 8, 3), np.float32)])
    with pytest.raises(ValueError, match="image: .*missing.png is not a file"):
        pipe(_scene(), image=str(photos[0].parent / "missing.png"))
    with pytest.raises(TypeError, match="set by the label-to-image pipeline"):
        pipe(_scene(), image=photo, control_image=_control(_scene()))


def test_photo_style_inputs_of_a_controlnet_is_the_init_image(pipe, photos) -> None:
    assert photo_style_inputs(pipe, str(photos[0]), _scene(), _scene(flip=True)) == {"image": str(photos[0])}


# ------------------------------------------------------------------------------------------------ CLI
def test_generate_from_photo(tiny_sd, photos, segmenter_dir, tmp_path, capsys) -> None:
    photo, out, control = photos[0], tmp_path / "out.png", tmp_path / "control.png"
    base = ["generate", "--model", str(tiny_sd["pipeline"]), "--from-photo", str(photo), "--segmenter",
            str(segmenter_dir), "--label-space", "cityscapes", "--device", "cpu", "--steps", "4"]
    status = main([*base, "--strength", "0.5", "--prompt", "a street", "--seed", "2", "--num-images", "2",
                   "-o", str(out), "--save-colorized-label", str(control)])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert f"segmented {photo} into cityscapes" in captured.err
    segmented = segment(str(photo), str(segmenter_dir), "cityscapes").label_map
    ours = pipeline("label-to-image", model=str(tiny_sd["pipeline"]), label_space="cityscapes", progress_bar=False)
    kwargs = {"image": str(photo), "num_inference_steps": 4, "output_type": "np"}
    expected = ours([segmented] * 2, prompt="a street", strength=0.5, seed=2, **kwargs)
    for i in range(2):
        assert np.array_equal(np.asarray(PIL.Image.open(tmp_path / f"out_{i}.png")), expected[i])
    assert np.array_equal(np.asarray(PIL.Image.open(control)), np.asarray(ours.control_image(segmented)))

    # an edited map (--label) with the photo as init image; default strength and prompt
    edited = segmented.copy()
    edited[: edited.shape[0] // 3] = get_label_space("cityscapes").label2id["sky"]
    edited_path = tmp_path / "edited.png"
    PIL.Image.fromarray(edited.astype(np.uint8), mode="L").save(edited_path)
    status = main([*base, "--label", str(edited_path), "-o", str(out)])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    prompt = ours.default_prompt(str(edited_path))
    assert f"prompt (from the label map's classes): {prompt}" in captured.err
    assert np.array_equal(np.asarray(PIL.Image.open(out)),
                          ours(str(edited_path), prompt=prompt, seed=0, strength=0.75, **kwargs))


def test_generate_from_photo_errors(tiny_sd, photos, segmenter_dir, tmp_path, capsys) -> None:
    out = str(tmp_path / "out.png")
    model = ["--model", str(tiny_sd["pipeline"])]
    photo = ["--from-photo", str(photos[0]), "--segmenter", str(segmenter_dir), "--label-space", "cityscapes"]
    label = tmp_path / "label.png"
    PIL.Image.fromarray(_scene().astype(np.uint8), mode="L").save(label)
    assert main(["generate", *model, "--label", str(label), "--strength", "0.5", "-o", out]) == 2
    assert "--strength is how much of the photo img2img re-noises: give the photo too" in capsys.readouterr().err
    assert main(["generate", *model, *photo, "--steps", "1", "-o", out]) == 2
    assert "--steps 1 with --strength 0.75: img2img runs int(steps * strength) = 0" in capsys.readouterr().err
    assert main(["generate", *model, *photo, "--strength", "0", "-o", out]) == 2
    assert "--strength: expected a number in (0, 1], got '0'" in capsys.readouterr().err
    assert main(["generate", *model, *photo, "--new-region-style", "sky", "-o", out]) == 2
    assert "--new-region-style: " in capsys.readouterr().err
    assert main(["generate", "--model", str(BUILTIN_MODEL), "--label", str(label), "--strength", "0.5",
                 "-o", out]) == 2
    assert "--strength: only diffusion models" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------ demo
@pytest.fixture(scope="module")
def photo_demo(tiny_sd, segmenter_dir) -> Iterator[tuple[ControlNetSegPipeline, str]]:
    """The diffusion page with "Start from a photo" (maps in the Cityscapes space), served locally: (pipe, url)."""
    pytest.importorskip("gradio")
    from labelsynth.demo import build_demo

    pipe = pipeline("label-to-image", model=str(tiny_sd["pipeline"]), label_space="cityscapes", progress_bar=False)
    demo = build_demo(pipe, segmenter=str(segmenter_dir), max_variations=2)
    url = launch_demo(demo)
    try:
        yield pipe, url
    finally:
        demo.close()


def test_demo_start_from_a_photo(photo_demo, photos, segmenter_dir, tmp_path) -> None:
    from gradio_client import Client, handle_file

    pipe, url = photo_demo
    client = Client(url, verbose=False)
    photo = handle_file(str(photos[0]))
    label_file, prompt, control, init = client.predict(photo, "cityscapes", api_name="/segment_photo")
    segmented = segment(str(photos[0]), str(segmenter_dir), "cityscapes").label_map
    assert np.array_equal(np.asarray(PIL.Image.open(label_file)), segmented)  # the photo's map, editable file
    assert prompt == pipe.default_prompt(segmented)
    assert np.array_equal(np.asarray(PIL.Image.open(control).convert("RGB")),
                          np.asarray(pipe.control_image(segmented)))
    assert np.array_equal(np.asarray(PIL.Image.open(init).convert("RGB")),
                          np.asarray(pipe.init_image(str(photos[0]), 64, 64)))

    settings = ("a street", "", 4, 5.0, 1.0, 0.5, 7, 2)  # prompt, negative, steps, guidance, scale, strength...
    gallery, _, status = client.predict(photo, None, "cityscapes", *settings, api_name="/generate_from_photo")
    expected = pipe([segmented] * 2, image=str(photos[0]), strength=0.5, prompt="a street", seed=7,
                    num_inference_steps=4, guidance_scale=5.0, output_type="np")
    images = [np.asarray(PIL.Image.open(item["image"]).convert("RGB")) for item in gallery]
    assert len(images) == 2 and all(np.array_equal(a, b) for a, b in zip(images, expected))
    assert "with 2 steps (seeds 7..8)" in status and "strength 0.5; label map: the photo's segmentation" in status

    edited = segmented.copy()
    edited[:10] = get_label_space("cityscapes").label2id["sky"]
    edited_path = tmp_path / "edited.png"
    PIL.Image.fromarray(edited.astype(np.uint8), mode="L").save(edited_path)
    gallery, _, _ = client.predict(photo, handle_file(str(edited_path)), "cityscapes", *settings[:-1], 1,
                                   api_name="/generate_from_photo")
    assert np.array_equal(np.asarray(PIL.Image.open(gallery[0]["image"]).convert("RGB")),
                          pipe(str(edited_path), image=str(photos[0]), strength=0.5, prompt="a street", seed=7,
                               num_inference_steps=4, guidance_scale=5.0, output_type="np"))

    with pytest.raises(Exception, match="runs no denoising step"):
        client.predict(photo, None, "cityscapes", "a street", "", 2, 5.0, 1.0, 0.25, 7, 1,
                       api_name="/generate_from_photo")
    with pytest.raises(Exception, match="no photo uploaded"):
        client.predict(None, None, "cityscapes", *settings, api_name="/generate_from_photo")


def test_demo_start_from_a_photo_in_the_browser(photo_demo, photos, segmenter_dir) -> None:
    """Upload a photo: its map replaces the label map (prompt and control image follow); generate img2img."""
    pipe, url = photo_demo
    with chromium_browser() as browser:
        page = open_page(browser, url, height=1400)
        initial_prompt = page.input_value("#prompt textarea")
        page.set_input_files("#photo_file input[type=file]", str(photos[0]))
        page.wait_for_selector("#init_view img")  # the upload was segmented
        # The same event fills the label map field and the prompt: wait until both changed, then read them.
        page.locator("#label_file").get_by_text("photo_cityscapes_map").first.wait_for()
        page.wait_for_function("p => document.querySelector('#prompt textarea').value !== p", arg=initial_prompt)
        label_text, prompt = page.inner_text("#label_file"), page.input_value("#prompt textarea")
        page.click("#generate_photo")
        page.wait_for_selector("#gallery img")
        views = {}
        for name in ("control_image", "gallery"):
            with urllib.request.urlopen(page.get_attribute(f"#{name} img", "src")) as response:
                views[name] = np.asarray(PIL.Image.open(io.BytesIO(response.read())).convert("RGB"))
    segmented = segment(str(photos[0]), str(segmenter_dir), "cityscapes").label_map
    assert "photo_cityscapes_map" in label_text  # the label map field now holds the photo's map
    assert prompt == pipe.default_prompt(segmented)
    assert np.array_equal(views["control_image"], np.asarray(pipe.control_image(segmented)))
    expected = pipe(segmented, image=str(photos[0]), prompt=prompt, seed=0, output_type="np")  # the page's defaults
    assert np.array_equal(views["gallery"], expected)


def test_cli_demo_with_a_controlnet_and_a_segmenter(tiny_sd, segmenter_dir) -> None:
    pytest.importorskip("gradio")
    from gradio_client import Client

    from labelsynth.cli import build_parser
    from labelsynth.cli.demo import run_demo

    args = build_parser().parse_args(["demo", "--model", str(tiny_sd["pipeline"]), "--segmenter", str(segmenter_dir),
                                      "--host", "127.0.0.1"])
    demo = run_demo(args, block=False)
    try:
        endpoints = Client(demo.local_url, verbose=False).view_api(print_info=False, return_format="dict")
        assert {"/generate", "/segment_photo", "/generate_from_photo"} <= set(endpoints["named_endpoints"])
    finally:
        demo.close()
