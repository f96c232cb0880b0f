"""`labelsynth demo`: parser, model resolution, launch, and user errors."""

from pathlib import Path

import pytest
from gradio_client import Client, handle_file

from labelsynth.cli import CLIError, build_parser, main
from labelsynth.cli._common import resolve_model_argument
from labelsynth.cli.demo import run_demo
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
    assert resolve_model_argument("spade-cityscapes-tiny") == str(BUILTIN_MODEL)
    assert resolve_model_argument("labelsynth/spade-cityscapes-tiny") == str(BUILTIN_MODEL)
    assert resolve_model_argument(None) == str(BUILTIN_MODEL)
    # An official checkpoint that is neither converted nor cached: one error that says where the weights come from.
    with pytest.raises(CLIError, match=r"--model spade-ade20k: .*NVlabs/SPADE.*labelsynth download spade-ade20k --url"):
        resolve_model_argument("spade-ade20k")


def test_demo_serves_the_builtin_model_by_its_id() -> None:
    args = build_parser().parse_args(["demo", "--model", "spade-cityscapes-tiny", "--device", "cpu"])
    demo = run_demo(args, block=False)
    try:
        label, instance = example_paths(0)
        gallery = Client(demo.local_url, verbose=False).predict(handle_file(str(label)), handle_file(str(instance)),
                                                                None, api_name="/generate_from_file")[0]
        assert len(gallery) == 1
    finally:
        demo.close()


def test_missing_model_folder_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--model", str(tmp_path / "nope")]) == 2
    assert "no such folder" in capsys.readouterr().err
