"""Input boundary of `LabelMapProcessor` and the CLI: array shapes, corrupt/oversized files, JPEG index maps, NaN.

Regression tests for issue 12 items 4, 5 and 8 (processor side); the pipeline side is in
tests/pipelines/test_label_to_image_inputs.py.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch
from helpers import save_tiny_model  # tests/helpers.py

from labelsynth import LabelMapProcessor, SPADEConfig
from labelsynth.cli import main
from labelsynth.processing import MAX_INPUT_PIXELS


@pytest.fixture(scope="module")
def processor() -> LabelMapProcessor:
    return LabelMapProcessor(label_space="ade20k", size=32)


def _png_header_only(path: Path, width: int, height: int) -> Path:
    """A tiny valid-looking PNG that declares width x height (a decompression bomb's header, no pixel data)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


# ---------------------------------------------------------------- item 4: array shapes
@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint16])
@pytest.mark.parametrize("channels", [2, 3, 4])
def test_integer_hwc_array_is_refused_not_read_as_a_batch(processor, dtype, channels):
    # Was: an (H, W, C) integer array became H label maps of size W x C.
    arr = np.zeros((40, 30, channels), dtype)
    with pytest.raises(ValueError, match=r"ambiguous.*list of \(H, W\) maps"):
        processor(arr)


@pytest.mark.parametrize("shape", [(40, 30), (1, 40, 30), (40, 30, 1), (1, 1, 40, 30)])
def test_one_map_shapes_give_one_map(processor, shape):
    assert processor(np.ones(shape, np.int64))["label_map"].shape == (1, 32, 32)
    assert processor(torch.ones(shape, dtype=torch.long))["label_map"].shape == (1, 32, 32)


def test_explicit_batch_and_list_give_b_maps(processor):
    assert processor(np.ones((3, 40, 30), np.int64))["label_map"].shape == (3, 32, 32)
    assert processor([np.ones((40, 30), np.int64)] * 3)["label_map"].shape == (3, 32, 32)


def test_many_tiny_maps_are_refused_before_allocating(processor):
    # Was: a 64 KB (2000, 2, 2) array became 2000 maps (8.7 GB in the model).
    big = LabelMapProcessor(label_space="ade20k", size=256)
    with pytest.raises(ValueError, match="ambiguous"):
        big(np.zeros((2000, 2, 2), np.int64))
    # An explicit batch of 2000 thin maps: 2000 x 256 x 256 output pixels, over the limit, refused before resizing.
    with pytest.raises(ValueError, match=f"batch of 2000 label map.*limit of {MAX_INPUT_PIXELS}"):
        big(np.zeros((2000, 3, 5), np.int64))


def test_one_dim_and_five_dim_arrays_say_how_to_batch(processor):
    for arr in (np.zeros(10, np.int64), np.zeros((1, 2, 3, 4, 5), np.int64)):
        with pytest.raises(ValueError, match="a batch is best a list of maps"):
            processor(arr)


# ---------------------------------------------------------------- item 5: corrupt / bomb files
@pytest.mark.parametrize(
    "content, match",
    [
        (b"", "is not a readable image"),
        (b"this is not a png at all", "is not a readable image"),
        ("truncated", "corrupt or truncated"),
    ],
)
def test_corrupt_files_are_value_errors_naming_the_file(processor, tmp_path, content, match):
    path = tmp_path / "bad.png"
    if content == "truncated":
        buffer = io.BytesIO()
        PIL.Image.fromarray(np.random.default_rng(0).integers(0, 150, (64, 64), dtype=np.uint8)).save(buffer, "PNG")
        content = buffer.getvalue()[: len(buffer.getvalue()) // 2]
    path.write_bytes(content)
    for call in (lambda: processor(str(path)), lambda: processor(np.zeros((4, 4), np.int64), instance_map=str(path)),
                 lambda: processor(np.zeros((4, 4), np.int64), style_image=str(path))):
        with pytest.raises(ValueError, match=match) as info:
            call()
        assert "bad.png" in str(info.value)


@pytest.mark.parametrize("side", [12000, 100000])  # above our limit / above Pillow's own bomb error
def test_bomb_header_is_refused_before_decoding(processor, tmp_path, side):
    path = _png_header_only(tmp_path / "bomb.png", side, side)
    assert path.stat().st_size < 1000
    with pytest.raises(ValueError, match=r"bomb\.png.*(too large|limit)"):
        processor(str(path))


def test_large_pil_image_and_array_are_refused(processor):
    side = int(MAX_INPUT_PIXELS ** 0.5) + 1
    # A broadcast view: a huge shape that costs no memory, as the fuzz test also checks.
    huge = np.broadcast_to(np.zeros(1, np.uint8), (side, side))
    with pytest.raises(ValueError, match="too large"):
        processor(huge)
    for shape in [(side, side, 3), (side, side), (2, side, side // 2 + 1)]:  # RGB, grey, grey batch (found by fuzzing)
        with pytest.raises(ValueError, match="too large"):
            processor(np.zeros((4, 4), np.int64), style_image=np.broadcast_to(np.zeros(1, np.uint8), shape))


def test_cli_corrupt_label_is_one_error_line(tmp_path, capsys):
    folder = tmp_path / "model"
    save_tiny_model(folder, SPADEConfig.for_dataset("ade20k", image_size=(64, 64), ngf=8, spectral_norm=False))
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"")
    status = main(["generate", "--model", str(folder), "--label", str(bad), "-o", str(tmp_path / "o.png")])
    err = capsys.readouterr().err
    assert status != 0
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if "error" in line]
    assert len(lines) == 1 and lines[0].startswith("labelsynth: error:") and "broken.png" in lines[0], err


# ---------------------------------------------------------------- item 8: NaN style, JPEG index maps
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_style_images_are_refused(processor, bad):
    arr = np.full((8, 8, 3), 0.5, np.float32)
    arr[2, 3, 1] = bad
    with pytest.raises(ValueError, match="non-finite"):
        processor(np.zeros((8, 8), np.int64), style_image=arr)
    with pytest.raises(ValueError, match="non-finite"):
        processor.preprocess_images(torch.from_numpy(arr).permute(2, 0, 1), (8, 8))


def test_jpeg_index_map_is_refused(processor, tmp_path):
    ids = np.zeros((64, 64), np.uint8)
    ids[:, 32:] = 12
    ids[20:40, 10:50] = 40
    PIL.Image.fromarray(ids).save(tmp_path / "label.jpg", quality=90)
    PIL.Image.fromarray(ids).save(tmp_path / "label.png")
    with pytest.raises(ValueError, match="JPEG.*lossless.*PNG"):
        processor(str(tmp_path / "label.jpg"))
    with pytest.raises(ValueError, match="JPEG"):
        processor(PIL.Image.open(tmp_path / "label.jpg"))
    assert processor(str(tmp_path / "label.png"))["label_map"].shape == (1, 32, 32)
