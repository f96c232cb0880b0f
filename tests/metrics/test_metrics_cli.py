"""``labelsynth evaluate`` through `labelsynth.metrics.cli.add_cli_parser` / `run` (saved tiny models, no network)."""

from __future__ import annotations

import argparse
import json
import math

import numpy as np
import PIL.Image
import pytest
import torch
from conftest import build_tiny_segformer

from labelsynth import LabelMapProcessor, SPADEConfig, SPADEModel
from labelsynth.cli import CLIError
from labelsynth.metrics.cli import add_cli_parser, run


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="labelsynth")
    add_cli_parser(parser.add_subparsers(dest="command", required=True))
    return parser


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("spade")
    torch.manual_seed(0)
    model = SPADEModel(SPADEConfig.for_dataset("ade20k", ngf=8, image_size=(64, 64))).eval()
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() > 1:
                param.normal_(0, 1 / math.sqrt(param[0].numel()))
    model.save_pretrained(folder)
    LabelMapProcessor(label_space="ade20k", size=(64, 64)).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def segmenter_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("segformer")
    model, processor = build_tiny_segformer(num_labels=150)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def _rows(count: int) -> list[dict]:
    rng = np.random.default_rng(0)
    return [{"image": PIL.Image.fromarray(rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)),
             "label": rng.integers(0, 151, (40, 60))} for _ in range(count)]


def test_parser_options_and_defaults(model_dir):
    args = _parser().parse_args(["evaluate", "--model", str(model_dir), "--dataset", "somewhere"])
    assert args.handler is run
    assert args.split == "validation" and args.metrics is None and args.batch_size == 8 and args.seed == 0
    assert args.label_mapping == "auto" and args.device == "auto" and args.num_samples is None
    args = _parser().parse_args(["evaluate", "--model", "m", "--dataset", "d", "--metrics", "fid, kid,miou,psnr,ssim",
                                 "--num-samples", "3", "--batch-size", "2", "--inception-weights", "w.pth",
                                 "--segmenter", "s", "--output", "metrics.json"])
    assert args.metrics == ["fid", "kid", "miou", "psnr", "ssim"] and args.num_samples == 3
    with pytest.raises(SystemExit):
        _parser().parse_args(["evaluate", "--model", "m", "--dataset", "d", "--metrics", "fid,lpips"])


def test_run_writes_json_with_a_saved_segmenter(model_dir, segmenter_dir, tmp_path, capsys):
    output = tmp_path / "out" / "metrics.json"
    args = _parser().parse_args([
        "evaluate", "--model", str(model_dir), "--dataset", "in-memory", "--metrics", "psnr,ssim,miou",
        "--segmenter", str(segmenter_dir), "--num-samples", "3", "--batch-size", "2", "--device", "cpu",
        "--output", str(output),
    ])
    results = run(args, rows=_rows(5))
    written = json.loads(output.read_text())
    assert written == json.loads(json.dumps(results))
    assert written["num_samples"] == 3 and written["model"] == str(model_dir) and written["split"] == "validation"
    assert written["label_mapping"] == "ade20k" and 0 <= written["miou"] <= 1
    out = capsys.readouterr().out
    assert "evaluated 3 images at 64x64" in out and "miou" in out and f"wrote {output}" in out


def test_run_fid_needs_weights_unless_random_is_allowed(model_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("LABELSYNTH_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    argv = ["evaluate", "--model", str(model_dir), "--dataset", "x", "--metrics", "fid", "--device", "cpu"]
    with pytest.raises(CLIError, match="--inception-weights PATH"):
        run(_parser().parse_args(argv), rows=_rows(2))
    with pytest.raises(CLIError, match="--inception-weights: Inception weights .* no such file"):
        run(_parser().parse_args(argv + ["--inception-weights", str(tmp_path / "missing.pth")]), rows=_rows(2))
    with pytest.warns(UserWarning):
        results = run(_parser().parse_args(argv + ["--random-inception", "--kid-subsets", "2"]), rows=_rows(2))
    assert results["fid_comparable"] is False and results["fid"] >= 0
    assert "not comparable" in capsys.readouterr().out


def test_run_user_errors(model_dir, tmp_path):
    base = ["evaluate", "--dataset", "x", "--device", "cpu"]
    with pytest.raises(CLIError, match="needs --segmenter"):
        run(_parser().parse_args(base + ["--model", str(model_dir), "--metrics", "miou"]), rows=_rows(1))
    with pytest.raises(CLIError, match="has no config.json, so it is not a saved model"):
        run(_parser().parse_args(base + ["--model", str(tmp_path), "--metrics", "psnr"]), rows=_rows(1))
    with pytest.raises(CLIError, match=r"--model spade-ade20k: .*checkpoints.tar.gz.*drive.google.com.*labelsynth download spade-ade20k --url"):
        run(_parser().parse_args(base + ["--model", "spade-ade20k", "--metrics", "psnr"]), rows=_rows(1))
    with pytest.raises(CLIError, match="is a folder"):
        run(_parser().parse_args(base + ["--model", str(model_dir), "--metrics", "psnr", "--output", str(tmp_path)]),
            rows=_rows(1))


def test_run_loads_the_dataset_with_load_training_dataset(model_dir, samples_dir):
    pytest.importorskip("labelsynth.data")
    args = _parser().parse_args(["evaluate", "--model", str(model_dir), "--dataset",
                                 str(samples_dir / "CoCosNet_ade20k"), "--metrics", "psnr,ssim", "--num-samples", "2",
                                 "--device", "cpu"])
    results = run(args)
    assert results["num_samples"] == 2 and math.isfinite(results["psnr"])


def test_run_takes_the_builtin_model_by_its_registered_id():
    """`--model spade-cityscapes-tiny` is the model shipped in the package, as in `generate` and `demo` (offline)."""
    rng = np.random.default_rng(0)
    labels = [rng.choice([7, 8, 11, 21, 23, 26], size=(32, 64)) for _ in range(2)]
    rows = [{"image": PIL.Image.fromarray(rng.integers(0, 256, (32, 64, 3), dtype=np.uint8)), "label": label,
             "instance": label} for label in labels]
    args = _parser().parse_args(["evaluate", "--model", "spade-cityscapes-tiny", "--dataset", "in-memory",
                                 "--metrics", "psnr", "--device", "cpu"])
    results = run(args, rows=rows)
    assert results["num_samples"] == 2 and math.isfinite(results["psnr"]) and results["model"] == "spade-cityscapes-tiny"
