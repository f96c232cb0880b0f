"""A registered official id whose converted folder is in the cache works, offline, in every entry point that the
release tests do not already drive (those cover ``pipeline``, ``from_pretrained`` and ``generate``):
``evaluate``, ``demo`` and ``labelsynth models``."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import PIL.Image
from gradio_client import Client, handle_file

from labelsynth.cli import build_parser, main
from labelsynth.cli.demo import run_demo
from labelsynth.hub.resolve import resolve_model
from labelsynth.metrics.cli import run as run_evaluate


def test_resolver_takes_the_cached_folder_offline(converted_cache: Path) -> None:
    folder = converted_cache / "models" / "spade-ade20k"
    assert resolve_model("spade-ade20k") == str(folder)
    assert resolve_model("labelsynth/spade-ade20k") == str(folder)


def test_evaluate_takes_the_cached_id(converted_cache: Path) -> None:
    rng = np.random.default_rng(0)
    rows = [{"image": PIL.Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)),
             "label": rng.integers(0, 151, (32, 32))} for _ in range(2)]
    args = build_parser().parse_args(["evaluate", "--model", "spade-ade20k", "--dataset", "in-memory",
                                      "--metrics", "psnr", "--device", "cpu"])
    results = run_evaluate(args, rows=rows)
    assert results["num_samples"] == 2 and math.isfinite(results["psnr"]) and results["model"] == "spade-ade20k"


def test_demo_serves_the_cached_id(converted_cache: Path, tmp_path: Path) -> None:
    label = tmp_path / "label.png"
    PIL.Image.fromarray(np.repeat(np.arange(32, dtype=np.uint8)[None] * 4, 32, axis=0)).save(label)
    demo = run_demo(build_parser().parse_args(["demo", "--model", "spade-ade20k", "--device", "cpu"]), block=False)
    try:
        # ADE20K models take no instance map: the endpoint's inputs are the label file, the seed and the variations
        gallery = Client(demo.local_url, verbose=False).predict(handle_file(str(label)), 0, 1,
                                                                api_name="/generate_from_file")[0]
        assert len(gallery) == 1
    finally:
        demo.close()


def test_models_lists_the_cached_id_with_its_size(converted_cache: Path, capsys) -> None:
    assert main(["models"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("spade-ade20k "))
    assert "cached (" in row and "MiB)" in row and "cc-by-nc-sa-4.0" in row
