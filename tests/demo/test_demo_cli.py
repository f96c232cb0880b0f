"""`labelsynth demo`: parser, model resolution, launch, and user errors."""

from pathlib import Path

import pytest
from gradio_client import Client, handle_file

from labelsynth.cli import build_parser, main
from labelsynth.demo.cli import _resolve_model, run_demo
from labelsynth.examples import BUILTIN_MODEL, example_paths


def test_demo_serves_a_model_folder(city_model: Path) -> None:
    args = build_parser().parse_args(["demo", "--model", str(city_model), "--port", "0", "--device", "cpu"])
    assert args.host == "127.0.0.1" and args.max_variations == 4
    args.port = None  # let Gradio pick a free port
    demo = run_demo(args, block=False)
    try:
        gallery = Client(demo.local_url, verbose=False).predict(handle_file(str(example_paths(0)[0])), None,
                                                                api_name="/generate_from_file")[0]
        assert len(gallery) == 1
    finally:
        demo.close()


def test_registered_ids_resolve() -> None:
    assert _resolve_model("spade-cityscapes-tiny") == str(BUILTIN_MODEL)
    assert _resolve_model("spade-ade20k") == "labelsynth/spade-ade20k"
    assert _resolve_model(None) is None


def test_missing_model_folder_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--model", str(tmp_path / "nope")]) == 2
    assert "no such folder" in capsys.readouterr().err
