"""The demo's "Start from a photo": through gradio_client, from ``labelsynth demo --segmenter``, and in a real browser
(Playwright + system Chromium; skipped where they are missing unless ``LABELSYNTH_REQUIRE_BROWSER=1``)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from gradio_client import Client, handle_file
from helpers import chromium_browser, launch_demo, open_page
from PIL import Image

from labelsynth import get_label_space, pipeline
from labelsynth.cli import build_parser
from labelsynth.cli.demo import run_demo
from labelsynth.demo import build_demo
from labelsynth.examples import BUILTIN_MODEL
from labelsynth.segmentation import SegmenterAdapter

CITY = get_label_space("cityscapes")
PHOTO = "pix2pixHD_cityscapes/train_img/aachen_000000_000019_leftImg8bit.png"
LABEL = "pix2pixHD_cityscapes/train_label/aachen_000000_000019_gtFine_labelIds.png"
SIZE = (512, 256)  # the sample photo and its labels, downscaled for speed


@pytest.fixture(scope="module")
def scene(samples_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """The real photo (512x256 PNG) and its true labelIds at that size."""
    folder = tmp_path_factory.mktemp("scene")
    Image.open(samples_dir / PHOTO).convert("RGB").resize(SIZE, Image.Resampling.BICUBIC).save(folder / "photo.png")
    truth = np.asarray(Image.open(samples_dir / LABEL).resize(SIZE, Image.Resampling.NEAREST)).astype(np.int64)
    return folder / "photo.png", truth


def _oracle(truth: np.ndarray) -> SegmenterAdapter:
    """A segmenter that returns the photo's true Cityscapes map (a random tiny segmenter would give arbitrary maps)."""
    return SegmenterAdapter(lambda images: torch.from_numpy(truth)[None], source_space="cityscapes")


def _images(gallery: list[dict]) -> list[np.ndarray]:
    return [np.asarray(Image.open(item["image"]).convert("RGB")) for item in gallery]


@pytest.fixture(scope="module")
def photo_client(scene: tuple[Path, np.ndarray]) -> Iterator[Client]:
    demo = build_demo(segmenter=_oracle(scene[1]))
    url = launch_demo(demo)
    try:
        yield Client(url, verbose=False)
    finally:
        demo.close()


def test_generate_from_photo_reconstructs_then_edits(photo_client: Client, scene, tmp_path: Path) -> None:
    photo, truth = scene
    gallery, label_view, status, photo_view, photo_map, photo_result = photo_client.predict(
        None, handle_file(str(photo)), 0, 1, api_name="/generate_from_photo")
    # float32, as the CLI and the demo load it (the built-in model is stored in bf16, which the pipeline keeps on
    # CPUs with native bf16)
    pipe = pipeline("label-to-image", model=str(BUILTIN_MODEL), device="cpu", dtype=torch.float32)
    ids = pipe.image_processor(truth, return_tensors="np")["label_map"][0]
    expected = pipe(ids, style_image=str(photo), seed=0, output_type="np")
    (image,) = _images(gallery)
    assert np.array_equal(image, expected)  # the photo's map, the photo as style source
    assert np.array_equal(np.asarray(Image.open(photo_result).convert("RGB")), expected)
    assert np.array_equal(np.asarray(Image.open(label_view).convert("RGB")), CITY.colorize(ids))
    assert np.array_equal(np.asarray(Image.open(photo_map).convert("RGB")), CITY.colorize(ids))
    assert np.asarray(Image.open(photo_view)).shape == (256, 512, 3)
    assert "style: the photo" in status.lower()

    # Edit the map (a car painted over the top left) and generate again: the car is where it was painted.
    canvas = CITY.colorize(ids)
    canvas[5:35, 10:90] = CITY.palette[CITY.label2id["car"]]
    Image.fromarray(canvas).save(tmp_path / "canvas.png")
    editor = {"background": handle_file(str(tmp_path / "canvas.png")), "layers": [],
              "composite": handle_file(str(tmp_path / "canvas.png"))}
    gallery, label_view, *_ = photo_client.predict(editor, handle_file(str(photo)), 0, 1,
                                                   api_name="/generate_from_photo")
    edited = _images(gallery)[0].astype(int)
    shown = np.asarray(Image.open(label_view).convert("RGB"))
    assert (shown[5:35, 10:90] == CITY.palette[CITY.label2id["car"]]).all()
    diff = np.abs(edited - expected.astype(int)).mean(-1)
    assert diff[5:35, 10:90].mean() > 5 * diff[80:, 150:].mean() + 1  # changed where painted, not far away

    with pytest.raises(Exception, match="no photo uploaded"):
        photo_client.predict(None, None, 0, 1, api_name="/generate_from_photo")


def test_photo_upload_failures_keep_the_canvas(scene) -> None:
    demo = build_demo(segmenter=_oracle(scene[1]))
    try:
        fns = list(demo.fns.values())
        elem = {fn: [getattr(c, "elem_id", None) for c in fn.outputs] for fn in fns}
        load = next(fn for fn in fns if fn.name == "load")
        assert elem[load][0] == "editor" and load.show_progress == "hidden"
        followups = [f for f in fns if f.trigger_after == load._id and f.trigger_only_on_failure]
        assert followups and all("editor" not in elem[f] for f in followups)
    finally:
        demo.close()


def test_demo_cli_segmenter_option(scene, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from transformers import SegformerConfig, SegformerForSemanticSegmentation, SegformerImageProcessor

    train = get_label_space("cityscapes-trainid")
    config = SegformerConfig(
        num_channels=3, num_encoder_blocks=2, depths=[1, 1], sr_ratios=[2, 1], hidden_sizes=[8, 16],
        patch_sizes=[7, 3], strides=[4, 2], num_attention_heads=[1, 2], mlp_ratios=[2, 2], decoder_hidden_size=16,
        num_labels=19, id2label=dict(enumerate(train.names)), label2id={n: i for i, n in enumerate(train.names)},
    )
    SegformerForSemanticSegmentation(config).save_pretrained(tmp_path / "seg")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        SegformerImageProcessor(size={"height": 64, "width": 128}).save_pretrained(tmp_path / "seg")
    args = build_parser().parse_args(["demo", "--segmenter", str(tmp_path / "seg"), "--device", "cpu"])
    demo = run_demo(args, block=False)
    try:
        client = Client(demo.local_url, verbose=False)
        gallery, *_ = client.predict(None, handle_file(str(scene[0])), 0, 1, api_name="/generate_from_photo")
        assert _images(gallery)[0].shape == (128, 256, 3)
    finally:
        demo.close()
    from labelsynth.cli import main

    assert main(["demo", "--segmenter", str(tmp_path), "--device", "cpu"]) == 2
    assert "--segmenter" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------------- browser


def test_start_from_a_photo_in_the_browser(scene) -> None:
    import io
    import urllib.request

    photo, truth = scene
    demo = build_demo(segmenter=_oracle(truth))
    try:
        url = launch_demo(demo)
        with chromium_browser() as browser:
            page = open_page(browser, url, height=1400)
            page.wait_for_selector("#editor canvas")
            page.set_input_files("#photo_file input[type=file]", str(photo))
            page.wait_for_selector("#photo_view img")  # the upload put the photo's map on the canvas
            page.wait_for_timeout(1000)
            # Paint a car stroke over the sky with the class brush, then generate in the photo's style.
            r, g, b = (int(c) for c in CITY.palette[CITY.label2id["car"]])
            page.get_by_label("Color").first.click()
            page.locator(f'#editor [style*="rgb({r}, {g}, {b})"]').first.click()
            page.keyboard.press("Escape")
            page.get_by_label("Brush", exact=True).click()
            box = page.locator("#editor canvas").first.bounding_box()
            page.mouse.move(box["x"] + box["width"] * 0.1, box["y"] + box["height"] * 0.1)
            page.mouse.down()
            for t in np.linspace(0.1, 0.5, 10):
                page.mouse.move(box["x"] + box["width"] * t, box["y"] + box["height"] * 0.1)
            page.mouse.up()
            page.click("#generate_photo")
            page.wait_for_selector("#photo_result img")
            views = {}
            for name in ("photo_map", "photo_result", "photo_view"):
                with urllib.request.urlopen(page.get_attribute(f"#{name} img", "src")) as response:
                    views[name] = np.asarray(Image.open(io.BytesIO(response.read())).convert("RGB"))
        pipe = pipeline("label-to-image", model=str(BUILTIN_MODEL), device="cpu")
        ids = pipe.image_processor(truth, return_tensors="np")["label_map"][0]
        seen = views["photo_map"]
        changed = (seen != CITY.colorize(ids)).any(-1)
        car = (seen == CITY.palette[CITY.label2id["car"]]).all(-1)
        assert changed.sum() > 200 and (changed <= car).all()  # the stroke, painted on the photo's own map
        assert np.nonzero(changed)[0].max() < 40  # near the top, where it was painted
        assert views["photo_result"].shape == (128, 256, 3) and views["photo_result"].std() > 5
        assert views["photo_view"].shape == (256, 512, 3)
    finally:
        demo.close()
