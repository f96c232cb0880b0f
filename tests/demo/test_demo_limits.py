"""The demo under hostile input (gradio_client): size limits before decoding, damaged files, huge seeds, cache.

Memory is measured on this process, which also runs the Gradio server (``launch(prevent_thread_lock=True)``):
``/proc/self/clear_refs`` resets the peak RSS (VmHWM) to the current RSS, so the peak read after a request is what
that request added at its worst moment.
"""

import re
import struct
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from gradio_client import Client, handle_file
from helpers import launch_demo
from PIL import Image

from labelsynth import get_label_space
from labelsynth.demo import build_demo
from labelsynth.examples import example_paths

CITY = get_label_space("cityscapes")
MB = 1 << 20


def _serve(demo: Any) -> Iterator[Client]:
    url = launch_demo(demo)
    try:
        yield Client(url, verbose=False)
    finally:
        demo.close()


def _status_bytes(field: str) -> int:
    text = Path("/proc/self/status").read_text()
    return int(re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE).group(1)) * 1024


def _peak_growth(call: Any) -> int:
    """Bytes the process's peak RSS rose above its RSS at the start while `call()` ran (its exception re-raised)."""
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    before = _status_bytes("VmRSS")
    try:
        call()
    finally:
        growth = _status_bytes("VmHWM") - before
    return growth


def _refusal(call: Any) -> tuple[str, int]:
    """The error message of a request that must fail, and its peak RSS growth (`_peak_growth`)."""
    errors: list[Exception] = []

    def run() -> None:
        try:
            call()
        except Exception as err:  # noqa: BLE001 - gradio_client raises AppError (or ValueError) with the message
            errors.append(err)

    growth = _peak_growth(run)
    assert errors, "the request was accepted"
    message = str(errors[0])
    assert "upstream" not in message and "Overflow" not in message, message
    return message, growth


def _bomb_png(path: Path, side: int) -> Path:
    """A grey PNG of `side` x `side` zeros written row by row: a few hundred kB on disk, side**2 bytes decoded."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    compressor = zlib.compressobj(9)
    row = bytes(side + 1)  # filter byte + pixels
    idat = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


def _damaged_files(folder: Path) -> dict[str, Path]:
    """0-byte, text-as-PNG and truncated PNG files (the last with a valid header of a small image)."""
    (folder / "empty.png").write_bytes(b"")
    (folder / "text.png").write_text("not an image")
    full = folder / "full.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 34, (64, 128), dtype=np.uint8)).save(full)
    (folder / "truncated.png").write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    return {name: folder / f"{name}.png" for name in ("empty", "text", "truncated")}


def _editor(path: Path) -> dict:
    return {"background": handle_file(str(path)), "layers": [], "composite": handle_file(str(path))}


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    """The built-in model (256x128) with the default upload limit (4096x4096): the canvas limit is 1024x1024."""
    yield from _serve(build_demo())


@pytest.fixture(scope="module")
def vae_client(vae_model: Path) -> Iterator[Client]:
    yield from _serve(build_demo(vae_model, max_variations=3, max_input_pixels=1000 * 1000))


def test_oversized_canvas_is_refused_before_decoding(client: Client, tmp_path: Path) -> None:
    # Random colours: the worst case for decoding (every pixel off-palette and distinct).
    path = tmp_path / "huge.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (4096, 4096, 3), dtype=np.uint8)).save(
        path, compress_level=0)
    message, growth = _refusal(lambda: client.predict(_editor(path), None, None, api_name="/generate"))
    assert "canvas is 4096x4096 (16.8 megapixels); this demo accepts at most 1.0 megapixels" in message
    # Decoding took GBs before the limit (the image alone is 64 MB as RGBA).
    assert growth < 500 * MB, growth / MB


def test_largest_accepted_canvas_of_random_colours_stays_bounded(client: Client, tmp_path: Path) -> None:
    path = tmp_path / "random.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (1024, 1024, 3), dtype=np.uint8)).save(path)
    result: list = []
    growth = _peak_growth(lambda: result.append(client.predict(_editor(path), None, None, api_name="/generate")))
    assert result[0][2].startswith("Generated 1 image of 256x128")
    assert growth < 500 * MB, growth / MB


@pytest.mark.parametrize("side", [12000, 20000])  # 20000**2 is above PIL's own bomb guard (2 x 89.5M pixels)
def test_decompression_bomb_is_refused_before_decoding(client: Client, vae_client: Client, tmp_path: Path,
                                                       side: int) -> None:
    bomb = _bomb_png(tmp_path / "bomb.png", side)
    assert bomb.stat().st_size < 2 * MB
    limit = r"this demo accepts at most 16.8 megapixels \(e.g. 4096x4096\)"
    canvas_limit = r"this demo accepts at most 1.0 megapixels \(e.g. 1024x1024\)"
    for api_name, args, what in [
        ("/generate_from_file", (handle_file(str(bomb)), None, None), "label map"),
        ("/generate_from_file", (handle_file(str(example_paths(0)[0])), handle_file(str(bomb)), None),
         "instance map"),
        ("/generate", (_editor(bomb), None, None), "canvas"),
    ]:
        message, growth = _refusal(lambda: client.predict(*args, api_name=api_name))  # noqa: B023
        assert re.search(rf"the {what}.*{canvas_limit if what == 'canvas' else limit}", message), message
        # Decoding would add side**2 bytes (144 MB or more); the header check adds next to nothing.
        assert growth < 64 * MB, (what, growth / MB)
    label = tmp_path / "label.png"
    Image.fromarray(np.full((64, 64), 3, np.uint8)).save(label)
    with pytest.raises(Exception, match=r"the style image.*this demo accepts at most 1.0 megapixels"):
        vae_client.predict(handle_file(str(label)), handle_file(str(bomb)), 0, 1, api_name="/generate_from_file")


def test_damaged_files_give_the_demo_message(client: Client, vae_client: Client, tmp_path: Path) -> None:
    label = tmp_path / "label.png"
    Image.fromarray(np.full((64, 64), 3, np.uint8)).save(label)
    for name, path in _damaged_files(tmp_path).items():
        cases = [
            (client, "/generate_from_file", (handle_file(str(path)), None, None), "label map"),
            (client, "/generate_from_file", (handle_file(str(example_paths(0)[0])), handle_file(str(path)), None),
             "instance map"),
            (client, "/generate", (_editor(path), None, None), "canvas"),
            (vae_client, "/generate_from_file", (handle_file(str(label)), handle_file(str(path)), 0, 1),
             "style image"),
        ]
        for target, api_name, args, what in cases:
            message, _ = _refusal(lambda: target.predict(*args, api_name=api_name))  # noqa: B023
            assert re.search(rf"could not (read|decode) the {what}", message), (name, message)


def test_huge_seed_is_refused(vae_client: Client, tmp_path: Path) -> None:
    Image.fromarray(np.full((64, 64), 3, np.uint8)).save(tmp_path / "label.png")
    label = handle_file(str(tmp_path / "label.png"))
    for seed in (2**70, -1):
        message, _ = _refusal(lambda: vae_client.predict(label, None, seed, 1,  # noqa: B023
                                                         api_name="/generate_from_file"))
        assert re.search("seed|maximum value|minimum value", message), message
    # The largest seeds still work; variations that would run past 2**63 - 1 are refused.
    gallery = vae_client.predict(label, None, 2**62, 3, api_name="/generate_from_file")[0]
    assert [item["caption"] for item in gallery] == [f"seed {2**62 + i}" for i in range(3)]
    with pytest.raises(Exception, match=r"seed must be a whole number from 0 to 9223372036854775805"):
        vae_client.predict(label, None, 2**63 - 2, 3, api_name="/generate_from_file")


def test_cache_files_are_deleted(tmp_path: Path) -> None:
    """Uploads and results are removed from Gradio's cache after `cache_seconds` (and at shutdown)."""
    demo = build_demo(cache_seconds=5)  # long enough for a request to finish before its files can age out
    served = _serve(demo)
    client = next(served)
    try:
        # Not an example file: those stay in the cache for the examples gallery (same content, same cached path).
        label = tmp_path / "label.png"
        Image.fromarray(np.random.default_rng(2).integers(0, 34, (128, 256), dtype=np.uint8)).save(label)
        client.predict(handle_file(str(label)), None, None, api_name="/generate_from_file")
        # The page's initial values (example canvas, examples) stay: Gradio keeps them in the cache on purpose.
        kept = {Path(f) for block in demo.blocks.values() for f in getattr(block, "keep_in_cache", ())}
        files = {Path(f) for files in demo.temp_file_sets for f in files} - kept
        assert len(files) >= 3 and all(f.exists() for f in files)  # the upload, the result, the label view
        deadline = time.monotonic() + 60
        while any(f.exists() for f in files) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not any(f.exists() for f in files), [f for f in files if f.exists()]
        # Later requests with new uploads still work.
        again = tmp_path / "again.png"
        Image.fromarray(np.random.default_rng(3).integers(0, 34, (128, 256), dtype=np.uint8)).save(again)
        assert client.predict(handle_file(str(again)), None, None, api_name="/generate_from_file")[2]
        new = {Path(f) for files in demo.temp_file_sets for f in files} - files - kept
    finally:
        next(served, None)
    assert new and not any(f.exists() for f in new)  # deleted when the server stopped
