"""``labelsynth segment`` and ``labelsynth generate --from-photo`` with a tiny random SegFormer saved as a folder."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch
from helpers import save_tiny_model  # tests/helpers.py

from labelsynth import SPADEConfig, get_label_space, pipeline, segment
from labelsynth.cli import main
from labelsynth.examples import BUILTIN_MODEL

PHOTO = "pix2pixHD_cityscapes/train_img/aachen_000000_000019_leftImg8bit.png"
CITY = get_label_space("cityscapes")
TRAIN = get_label_space("cityscapes-trainid")


@pytest.fixture(scope="module")
def segmenter_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ~7k-parameter SegFormer with the 19 Cityscapes trainId classes and its image processor, saved offline."""
    from transformers import SegformerConfig, SegformerForSemanticSegmentation, SegformerImageProcessor

    config = SegformerConfig(
        num_channels=3, num_encoder_blocks=2, depths=[1, 1], sr_ratios=[2, 1], hidden_sizes=[8, 16],
        patch_sizes=[7, 3], strides=[4, 2], num_attention_heads=[1, 2], mlp_ratios=[2, 2], decoder_hidden_size=16,
        num_labels=19, id2label=dict(enumerate(TRAIN.names)), label2id={n: i for i, n in enumerate(TRAIN.names)},
    )
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny_segformer")
    SegformerForSemanticSegmentation(config).save_pretrained(folder)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        SegformerImageProcessor(size={"height": 64, "width": 128}).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def photo(samples_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real Cityscapes photo at 512x256 (fast)."""
    path = tmp_path_factory.mktemp("photo") / "photo.png"
    PIL.Image.open(samples_dir / PHOTO).convert("RGB").resize((512, 256), PIL.Image.Resampling.BICUBIC).save(path)
    return path


def _run(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    torch.set_num_threads(1)
    status = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return status, out, err


def test_segment_writes_the_label_map_in_the_target_space(segmenter_dir, photo, tmp_path, capsys):
    out, colorized = tmp_path / "label.png", tmp_path / "label_color.png"
    status, stdout, _ = _run(capsys, "segment", photo, "--segmenter", segmenter_dir, "--label-space", "cityscapes",
                             "-o", out, "--colorized", colorized, "--device", "cpu")
    assert status == 0 and "cityscapes-trainid -> cityscapes" in stdout
    written = np.asarray(PIL.Image.open(out))
    expected = segment(str(photo), str(segmenter_dir), "cityscapes").label_map
    assert written.shape == (256, 512) and np.array_equal(written, expected)
    assert set(np.unique(written)) <= {CITY.label2id[n] for n in TRAIN.names}  # trainIds became labelIds
    assert np.array_equal(np.asarray(PIL.Image.open(colorized).convert("RGB")), CITY.colorize(expected))


def test_segment_user_errors(segmenter_dir, photo, tmp_path, capsys):
    base = ["segment", photo, "--segmenter", segmenter_dir, "--device", "cpu"]
    status, _, err = _run(capsys, *base, "--label-space", "cityscapes", "-o", tmp_path / "x.jpg")
    assert status == 2 and "use a .png name" in err
    status, _, err = _run(capsys, *base, "--label-space", "cityscapes", "-o", tmp_path / "x.png",
                          "--instance-output", tmp_path / "i.png")
    assert status == 2 and "gives no instances" in err
    status, _, err = _run(capsys, *base, "--label-space", "celebamask-hq", "-o", tmp_path / "x.png")
    assert status == 2 and "none of the segmenter's 19 classes" in err
    status, _, err = _run(capsys, "segment", photo, "--segmenter", tmp_path, "--label-space", "ade20k",
                          "-o", tmp_path / "x.png")
    assert status == 2 and "cannot load it as a transformers segmentation model" in err


def test_generate_from_photo_reconstructs_and_edits(segmenter_dir, photo, tmp_path, capsys):
    out = tmp_path / "same_scene.png"
    status, _, err = _run(capsys, "generate", "--from-photo", photo, "--segmenter", segmenter_dir, "-o", out,
                          "--device", "cpu")
    assert status == 0, err
    result = segment(str(photo), str(segmenter_dir), "cityscapes")
    # float32, as the CLI and the demo load it (the built-in model is stored in bf16, which the pipeline keeps on
    # CPUs with native bf16)
    pipe = pipeline("label-to-image", model=str(BUILTIN_MODEL), device="cpu", dtype=torch.float32)
    expected = pipe(result.label_map, style_image=str(photo), seed=0, output_type="np")
    assert np.array_equal(np.asarray(PIL.Image.open(out)), expected)

    # --label with --from-photo: the edited map is generated, the style still comes from the photo.
    edited = result.label_map.copy()
    edited[:, :256] = CITY.label2id["sky"]
    PIL.Image.fromarray(edited.astype(np.uint8)).save(tmp_path / "edited.png")
    status, _, err = _run(capsys, "generate", "--from-photo", photo, "--segmenter", segmenter_dir, "--label",
                          tmp_path / "edited.png", "-o", tmp_path / "edited_out.png", "--device", "cpu")
    assert status == 0, err
    expected = pipe(edited, style_image=str(photo), seed=0, output_type="np")
    assert np.array_equal(np.asarray(PIL.Image.open(tmp_path / "edited_out.png")), expected)


def test_generate_from_photo_user_errors(segmenter_dir, photo, tmp_path, capsys):
    out = tmp_path / "x.png"
    status, _, err = _run(capsys, "generate", "-o", out)
    assert status == 2 and "--from-photo PATH --segmenter ID" in err
    status, _, err = _run(capsys, "generate", "--from-photo", photo, "-o", out)
    assert status == 2 and "--from-photo needs --segmenter" in err
    status, _, err = _run(capsys, "generate", "--from-photo", photo, "--segmenter", segmenter_dir, "--style", photo,
                          "-o", out, "--device", "cpu")
    assert status == 2 and "--style: --from-photo already takes the style from the photo" in err
    plain = tmp_path / "plain"
    save_tiny_model(plain, SPADEConfig.for_dataset("cityscapes", image_size=(64, 128), ngf=4, spade_hidden_nc=8,
                                                   num_upsampling_layers="normal"))
    status, _, err = _run(capsys, "generate", "--model", plain, "--from-photo", photo, "--segmenter", segmenter_dir,
                          "-o", out, "--device", "cpu")
    assert status == 2 and "takes no style source" in err
