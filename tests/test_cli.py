"""The ``labelsynth`` command line: ``generate``, ``convert spade``, ``--version``.

The CLI runs in-process through ``labelsynth.cli.main([...])`` (it returns the exit status); one test runs the
installed ``labelsynth`` console script in a subprocess to prove the entry point works.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import huggingface_hub.constants
import numpy as np
import PIL.Image
import pytest
import torch
from helpers import save_tiny_model  # tests/helpers.py
from original_checkpoints import spade_original_layout as to_original_layout
from transformers import pipeline

from labelsynth import LabelMapProcessor, SPADEConfig, SPADEModel, __version__, get_label_space
from labelsynth.cli import CONVERTERS, main

FIXTURES = Path(__file__).resolve().parent / "fixtures"
ADE_LABEL = "CoCosNet_ade20k/validation/ADE_val_00001232.png"
CITY_LABEL = "pix2pixHD_cityscapes/test_label/frankfurt_000000_000576_gtFine_labelIds.png"
CITY_INSTANCE = "pix2pixHD_cityscapes/test_inst/frankfurt_000000_000576_gtFine_instanceIds.png"
ADE_PALETTE = get_label_space("ade20k").palette


# ------------------------------------------------------------------------------------------------ helpers
@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread() -> Iterator[None]:
    """On a few shared CPU cores, intra-op threads fight other processes (forwards get 10-40x slower): use one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# Instance norm keeps a random generator's outputs off the tanh saturation (so inputs visibly change the image);
# no spectral norm makes loading fast (no power iterations at construction). The converter test uses the defaults.
TINY = {"ngf": 8, "param_free_norm": "instance", "spectral_norm": False}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Saved tiny models: "plain" (ADE20K), "vae" (ADE20K + style encoder), "edges" (Cityscapes, instance edges)."""
    root = tmp_path_factory.mktemp("cli_models")
    configs = {
        "plain": SPADEConfig.for_dataset("ade20k", image_size=(64, 64), **TINY),
        "vae": SPADEConfig.for_dataset("ade20k", image_size=(64, 64), use_vae=True, z_dim=16, **TINY),
        "edges": SPADEConfig.for_dataset("cityscapes", image_size=(64, 128), **TINY),
    }
    for name, config in configs.items():
        save_tiny_model(root / name, config)
    return {name: root / name for name in configs}


@pytest.fixture(scope="module")
def ids() -> np.ndarray:
    """A synthetic 48x80 ADE20K id map (blocks of ids 0..150, never 49, whose colour is shared with id 7)."""
    values = np.array([i for i in range(151) if i != 49])
    blocks = np.random.RandomState(0).choice(values, size=(6, 10))
    return np.kron(blocks, np.ones((8, 8), dtype=np.int64)).astype(np.uint8)


@pytest.fixture(scope="module")
def label_png(ids: np.ndarray, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("labels") / "label.png"
    PIL.Image.fromarray(ids, mode="L").save(path)
    return path


def _generate(capsys: pytest.CaptureFixture[str], *args: str | os.PathLike[str]) -> tuple[int, str, str]:
    """Run ``labelsynth generate ARGS`` in-process; returns (status, stdout, stderr)."""
    status = main(["generate", *map(str, args)])
    out, err = capsys.readouterr()
    return status, out, err


def _pixels(path: Path) -> np.ndarray:
    with PIL.Image.open(path) as image:
        assert image.mode == "RGB"
        return np.asarray(image).copy()


# ------------------------------------------------------------------------------------------------ generate
def test_generate_real_sample_matches_pipeline(
    models: dict[str, Path], samples_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    label = samples_dir / ADE_LABEL
    out, colorized = tmp_path / "out.png", tmp_path / "sub" / "label_color.png"
    status, stdout, stderr = _generate(
        capsys, "--model", models["plain"], "--label", label, "-o", out, "--save-colorized-label", colorized
    )
    assert status == 0, stderr
    assert f"wrote {out} (64x64)" in stdout
    image = _pixels(out)
    assert image.shape == (64, 64, 3)  # the model's size, not the sample's

    # Same image as the Python API gives for the same folder and seed.
    expected = pipeline("label-to-image", model=str(models["plain"]))(str(label), seed=0, output_type="np")
    np.testing.assert_array_equal(image, expected)

    # The colorized label is the resized id map drawn with the ADE20K palette.
    processor = LabelMapProcessor.from_pretrained(models["plain"])
    resized_ids = processor(str(label))["label_map"][0].numpy()
    np.testing.assert_array_equal(_pixels(colorized), ADE_PALETTE[resized_ids])


def test_generate_synthetic_index_and_colour_labels_agree(
    models: dict[str, Path], ids: np.ndarray, label_png: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    colour_png = tmp_path / "label_rgb.png"
    PIL.Image.fromarray(ADE_PALETTE[ids], mode="RGB").save(colour_png)
    outs = []
    for name, label in (("index", label_png), ("colour", colour_png)):
        outs.append(tmp_path / f"{name}.png")
        status, _, stderr = _generate(capsys, "--model", models["plain"], "--label", label, "-o", outs[-1])
        assert status == 0, stderr
    first, second = _pixels(outs[0]), _pixels(outs[1])
    assert first.shape == (64, 64, 3)
    np.testing.assert_array_equal(first, second)  # the colour PNG decodes to the same ids


def test_generate_bfloat16(
    models: dict[str, Path], label_png: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    monkeypatch.setenv("LABELSYNTH_ALLOW_SLOW_BF16", "1")  # run bf16 even where the CPU only emulates it
    f32, bf16 = tmp_path / "f32.png", tmp_path / "bf16.png"
    for dtype, out in (("float32", f32), ("bfloat16", bf16)):
        status, _, stderr = _generate(
            capsys, "--model", models["plain"], "--label", label_png, "--dtype", dtype, "--device", "cpu", "-o", out
        )
        assert status == 0, stderr
    a, b = _pixels(f32).astype(int), _pixels(bf16).astype(int)
    assert not np.array_equal(a, b)  # really ran in bfloat16 ...
    assert np.abs(a - b).mean() < 8  # ... and still computes the same image up to rounding


def test_generate_vae_seeds(
    models: dict[str, Path], label_png: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, stdout, stderr = _generate(
        capsys, "--model", models["vae"], "--label", label_png, "--seed", "3", "--num-images", "2",
        "-o", tmp_path / "many.png",
    )
    assert status == 0, stderr
    many = [_pixels(tmp_path / f"many_{i}.png") for i in range(2)]
    assert not (tmp_path / "many.png").exists()
    assert stdout.count("wrote") == 2
    assert not np.array_equal(many[0], many[1])  # different seeds, different images

    for seed, expected in (("3", many[0]), ("4", many[1]), ("3", many[0])):
        out = tmp_path / f"seed{seed}.png"
        status, _, stderr = _generate(capsys, "--model", models["vae"], "--label", label_png, "--seed", seed, "-o", out)
        assert status == 0, stderr
        np.testing.assert_array_equal(_pixels(out), expected)  # image i of --num-images used seed + i


def test_generate_style_image(
    models: dict[str, Path], label_png: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.RandomState(1)
    styles = []
    for i in range(2):
        styles.append(tmp_path / f"style{i}.jpg")
        PIL.Image.fromarray(rng.randint(0, 256, (40, 56, 3), dtype=np.uint8)).save(styles[-1])
    outs = {}
    for name, extra in (("random", []), ("style0", ["--style", styles[0]]), ("style0_again", ["--style", styles[0]]),
                        ("style1", ["--style", styles[1]])):
        outs[name] = tmp_path / f"{name}.png"
        status, _, stderr = _generate(
            capsys, "--model", models["vae"], "--label", label_png, *extra, "-o", outs[name]
        )
        assert status == 0, stderr
    pixels = {name: _pixels(path) for name, path in outs.items()}
    assert pixels["style0"].shape == (64, 64, 3)
    np.testing.assert_array_equal(pixels["style0"], pixels["style0_again"])
    assert not np.array_equal(pixels["style0"], pixels["random"])  # the style image replaced the random z
    assert not np.array_equal(pixels["style0"], pixels["style1"])


def test_generate_instance_edges_model(
    models: dict[str, Path], samples_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    original, instance = samples_dir / CITY_LABEL, samples_dir / CITY_INSTANCE
    # The same map colour-coded in the Cityscapes palette (what a user paints): it has no instance ids to give. (The
    # void labelIds share colours, so the comparisons use the ids the colours stand for.)
    space = get_label_space("cityscapes")
    ids = space.encode_colors(space.colorize(np.asarray(PIL.Image.open(original))))
    label, colour = tmp_path / "label.png", tmp_path / "colour.png"
    PIL.Image.fromarray(ids.astype(np.uint8)).save(label)
    PIL.Image.fromarray(space.colorize(ids)).save(colour)
    with_instances, label_as_instances = tmp_path / "inst.png", tmp_path / "label_inst.png"
    without, colour_without = tmp_path / "without.png", tmp_path / "colour_without.png"
    for out, label_file, inst in ((with_instances, label, instance), (label_as_instances, label, label),
                                  (without, label, None), (colour_without, colour, None)):
        extra = ["--instance", inst] if inst is not None else []
        status, _, stderr = _generate(
            capsys, "--model", models["edges"], "--label", label_file, *extra, "-o", out
        )
        assert status == 0, stderr
    image = _pixels(with_instances)
    assert image.shape == (64, 128, 3)  # Cityscapes-style 1:2 model size
    # Cars next to each other have instance edges that the label map alone does not give.
    assert not np.array_equal(image, _pixels(label_as_instances))
    # Without an instance map, the class regions are the instances: the documented default, also for colour maps.
    np.testing.assert_array_equal(_pixels(without), _pixels(label_as_instances))
    np.testing.assert_array_equal(_pixels(colour_without), _pixels(label_as_instances))


def test_generate_notes(
    models: dict[str, Path], label_png: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, stderr = _generate(
        capsys, "--model", models["plain"], "--label", label_png, "--num-images", "2", "--instance", label_png,
        "-o", tmp_path / "o.png",
    )
    assert status == 0
    assert "note: " in stderr and "the 2 images are identical" in stderr  # nothing to sample in a non-VAE model
    assert "--instance is ignored" in stderr  # this model has no instance-edge channel
    np.testing.assert_array_equal(_pixels(tmp_path / "o_0.png"), _pixels(tmp_path / "o_1.png"))


@pytest.mark.parametrize(
    "case",
    ["out_of_range", "off_palette", "tolerance", "missing_label", "label_is_a_folder", "missing_instance",
     "input_the_model_does_not_take",
     "missing_model_folder",
     "folder_without_config", "folder_without_processor", "unknown_hub_id_offline", "bad_extension", "cuda"],
)
def test_generate_user_errors(
    case: str, models: dict[str, Path], ids: np.ndarray, label_png: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    model, label, out, extra = models["plain"], label_png, tmp_path / "out.png", []
    if case == "out_of_range":
        label = tmp_path / "bad_ids.png"
        bad = ids.copy()
        bad[:4, :4] = 200
        PIL.Image.fromarray(bad, mode="L").save(label)
        expected = ["--label", "ids [200]", "16 pixels", "outside the range 0..150", "ade20k"]
    elif case in ("off_palette", "tolerance"):
        label = tmp_path / "bad_colours.png"
        rgb = ADE_PALETTE[ids].copy()
        rgb[:2, :2] = (1, 2, 250)  # no ADE20K class has this colour (nearest is at distance > 5)
        PIL.Image.fromarray(rgb, mode="RGB").save(label)
        if case == "off_palette":
            expected = ["--label", "(1, 2, 250)", "not in the palette", "--color-tolerance"]
        else:
            extra = ["--color-tolerance", "2"]
            expected = ["(1, 2, 250)", "farther than tolerance=2", "--color-tolerance"]
    elif case == "missing_label":
        label = tmp_path / "nope.png"
        expected = ["--label", "nope.png", "no such file"]
    elif case == "label_is_a_folder":
        label = tmp_path
        expected = ["--label", "is a folder; give an image file"]
    elif case == "missing_instance":
        extra = ["--instance", tmp_path / "nope_inst.png"]
        expected = ["--instance", "no such file"]
    elif case == "input_the_model_does_not_take":
        extra = ["--exemplar", label_png]
        expected = ["--exemplar", "SPADEModel", "takes no exemplar", "--instance, --style"]
    elif case == "missing_model_folder":
        model = tmp_path / "no_model_here"
        expected = ["--model", "no such folder"]
    elif case == "folder_without_config":
        model = tmp_path / "empty_model"
        model.mkdir()
        expected = ["config.json"]
    elif case == "folder_without_processor":
        model = tmp_path / "model_only"
        model.mkdir()
        for name in ("config.json", "model.safetensors"):
            shutil.copy(models["plain"] / name, model / name)
        expected = ["cannot load the model in", "preprocessor_config.json"]
    elif case == "unknown_hub_id_offline":
        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
        model = "labelsynth-tests/does-not-exist"
        expected = ["labelsynth-tests/does-not-exist", "HF_HUB_OFFLINE", "local folder", "Hugging Face cache"]
    elif case == "bad_extension":
        out = tmp_path / "out.notanimage"
        expected = ["unknown image format", ".notanimage"]
    else:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
        extra = ["--device", "cuda"]
        expected = ["CUDA is not available"]

    status, stdout, stderr = _generate(capsys, "--model", model, "--label", label, *extra, "-o", out)
    assert status == 2
    # One error line, last on stderr (a "Loading weights" progress bar may come before it), no traceback.
    message = stderr.strip().splitlines()[-1]
    assert message.startswith("labelsynth: error: ") and stderr.count("labelsynth: error:") == 1
    assert "Traceback" not in stderr
    for text in expected:
        assert text in message
    assert not out.exists() and "wrote" not in stdout


def test_argparse_errors_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"labelsynth {__version__}"
    assert main([]) == 2  # a command is required
    assert "COMMAND" in capsys.readouterr().err
    assert main(["generate", "--model", "m", "--label", "l.png", "-o", "o.png", "--num-images", "0"]) == 2
    assert "--num-images" in capsys.readouterr().err
    assert main(["convert", "no-such-architecture", "a", "b"]) == 2
    assert "invalid choice" in capsys.readouterr().err
    assert main(["convert", "spade", "--help"]) == 0
    assert "--preset" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------------ convert
@pytest.mark.parametrize("use_vae", [False, True], ids=["plain", "vae"])
def test_convert_spade_original_checkpoint(
    use_vae: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    torch.manual_seed(1)
    config = SPADEConfig.for_dataset("ade20k", ngf=8, image_size=(64, 64), use_vae=use_vae, z_dim=16)
    model = SPADEModel(config).eval()
    state = model.state_dict()
    generator = to_original_layout(state, "generator.")
    checkpoint = tmp_path / "ade20k_pretrained"
    checkpoint.mkdir()
    torch.save(generator, checkpoint / "latest_net_G.pth")

    # The inverted layout is the real one: the key names of the released ADE20K generators (any width).
    released = json.loads((FIXTURES / "spade_original_keys.json").read_text())
    assert set(generator) == set(released["G"]["ade20k_vae" if use_vae else "ade20k"])
    if use_vae:
        encoder = to_original_layout(state, "encoder.")
        assert set(encoder) <= set(released["E"]["ade20k_vae"])  # the 64-px encoder has 5 of the 6 stages
        torch.save(encoder, checkpoint / "latest_net_E.pth")
    assert len(generator) + (len(encoder) if use_vae else 0) == len(state)

    out = tmp_path / "converted"
    status = main(["convert", "spade", str(checkpoint), str(out), "--preset", "ade20k", "--image-size", "64", "64"])
    stdout, stderr = capsys.readouterr()
    assert status == 0, stderr
    assert str(out) in stdout
    assert {"config.json", "model.safetensors", "preprocessor_config.json", "README.md"} <= {
        p.name for p in out.iterdir()
    }

    converted = SPADEModel.from_pretrained(out)
    assert converted.config.use_vae is use_vae and converted.config.ngf == 8
    labels = torch.from_numpy(np.random.RandomState(2).randint(0, 151, (2, 64, 64)))
    noise = torch.randn(2, 16, generator=torch.Generator().manual_seed(3)) if use_vae else None
    with torch.no_grad():
        expected = model(labels, noise=noise).images
        actual = converted(labels, noise=noise).images
        assert torch.equal(actual, expected)  # bit-identical
        if use_vae:
            style = torch.rand(2, 3, 64, 64) * 2 - 1
            assert torch.equal(converted(labels, style_image=style, noise=noise).images,
                               model(labels, style_image=style, noise=noise).images)
    assert LabelMapProcessor.from_pretrained(out).size == {"height": 64, "width": 64}


def test_convert_spade_user_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "spade" in CONVERTERS
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["convert", "spade", str(empty), str(tmp_path / "out")]) == 2
    stderr = capsys.readouterr().err
    assert "labelsynth: error: convert spade:" in stderr and "latest_net_G.pth" in stderr
    assert "Traceback" not in stderr

    # An ADE20K generator converted with the COCO-Stuff preset: the semantic channels do not match.
    torch.manual_seed(0)
    model = SPADEModel(SPADEConfig.for_dataset("ade20k", ngf=8, image_size=(64, 64)))
    checkpoint = tmp_path / "ckpt"
    checkpoint.mkdir()
    torch.save(to_original_layout(model.state_dict(), "generator."), checkpoint / "latest_net_G.pth")
    assert main(["convert", "spade", str(checkpoint), str(tmp_path / "out"), "--preset", "coco-stuff"]) == 2
    stderr = capsys.readouterr().err
    assert "151 semantic channels" in stderr and "--preset" in stderr
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------------ console script
def _write_hf_cache(hf_home: Path, repo_id: str, folder: Path) -> None:
    """Put a model folder into the Hugging Face cache layout, as a download would leave it."""
    sha = "0123456789abcdef0123456789abcdef01234567"
    repo = hf_home / "hub" / f"models--{repo_id.replace('/', '--')}"
    shutil.copytree(folder, repo / "snapshots" / sha)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(sha)


def test_console_script_generates_offline_from_hf_cache(
    models: dict[str, Path], label_png: Path, tmp_path: Path
) -> None:
    script = Path(sys.executable).with_name("labelsynth")
    if not script.is_file():  # e.g. a system interpreter with the package installed elsewhere
        script = Path(shutil.which("labelsynth") or script)
    hf_home = tmp_path / "hf_home"
    _write_hf_cache(hf_home, "tester/spade-tiny", models["plain"])
    env = {**os.environ, "HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    env.pop("HF_HUB_CACHE", None)
    out = tmp_path / "out.png"
    proc = subprocess.run(
        [str(script), "generate", "--model", "tester/spade-tiny", "--label", str(label_png), "-o", str(out)],
        env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {out} (64x64)" in proc.stdout
    # The console script loaded the cached copy of the same model: the image the local folder gives. (Across
    # processes, CPU kernels have once been seen to differ by one float ulp, i.e. a few pixels by one level.)
    expected = pipeline("label-to-image", model=str(models["plain"]))(str(label_png), seed=0, output_type="np")
    difference = np.abs(_pixels(out).astype(int) - expected)
    assert difference.max() <= 1 and difference.mean() < 0.01


def test_ingest_then_evaluate_from_the_command_line(tmp_path: Path, samples_dir: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """`labelsynth ingest` writes parquet + label space; `labelsynth evaluate` scores a model on it."""
    data = tmp_path / "ade20k"
    assert main(["ingest", "ade20k", str(samples_dir / "CoCosNet_ade20k"), "--output", str(data),
                 "--split", "validation"]) == 0
    assert (data / "label_space.json").is_file() and list((data / "data").glob("validation-*.parquet"))
    model_dir = tmp_path / "model"
    save_tiny_model(model_dir, SPADEConfig.for_dataset("ade20k", ngf=8, image_size=(64, 64), spectral_norm=False,
                                                   param_free_norm="instance"))
    report = tmp_path / "metrics.json"
    assert main(["evaluate", "--model", str(model_dir), "--dataset", str(data), "--split", "validation",
                 "--metrics", "psnr,ssim", "--output", str(report)]) == 0
    results = json.loads(report.read_text())
    assert results["num_samples"] == 6 and 0 < results["psnr"] < 40 and -1 <= results["ssim"] <= 1


# ------------------------------------------------------------------------------------------------ start-up and ids
def test_help_and_argument_errors_import_neither_torch_nor_transformers() -> None:
    """`labelsynth --help` and argument errors answer without importing torch (seconds on a small machine)."""
    code = textwrap.dedent("""
        import json, sys
        from labelsynth.cli import main
        calls = [["--help"], ["generate", "--help"], ["convert", "--help"], ["demo", "--help"], ["ingest", "--help"],
                 ["evaluate", "--help"], ["cluster-features", "--help"], ["models", "--help"], [],
                 ["generate"], ["generate", "--label", "x.png"], ["generate", "--label", "x", "-o", "y.png",
                 "--seed", "1e3"], ["generate", "--label", "x", "-o", "y.png", "--seed", str(2**64)],
                 ["demo", "--device", "tpu"], ["convert", "nope"], ["--version"]]
        statuses = [main(argv) for argv in calls]
        heavy = [name for name in ("torch", "transformers", "gradio", "datasets") if name in sys.modules]
        print("RESULT " + json.dumps({"statuses": statuses, "heavy": heavy}), file=sys.stderr)
    """)
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stderr.split("RESULT ", 1)[1])
    assert outcome == {"statuses": [0] * 8 + [2] * 7 + [0], "heavy": []}
    # The same help text as before the lazy imports: every sub-command and converter listed with its summary.
    assert "cluster-features" in result.stdout and "Convert official ZPdesu/SEAN checkpoints" in result.stdout
    assert "argument --seed: must be between 0 and 9223372036854775807" in result.stderr


def test_generate_with_the_builtin_model_by_id_and_from_a_colour_map(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The built-in model by its registered id equals the default; a colour-coded map (what users paint) works on it
    without an instance map and gives the image of the same map as ids."""
    from labelsynth.examples import draw_street_scene

    label, _ = draw_street_scene(1, size=(128, 256))
    ids_png, colour_png = tmp_path / "ids.png", tmp_path / "colour.png"
    PIL.Image.fromarray(label.astype(np.uint8)).save(ids_png)
    PIL.Image.fromarray(get_label_space("cityscapes").colorize(label)).save(colour_png)
    outputs = {}
    for name, model, label_file in (("default", None, ids_png), ("by_id", "spade-cityscapes-tiny", ids_png),
                                    ("colour", "spade-cityscapes-tiny", colour_png)):
        outputs[name] = tmp_path / f"{name}.png"
        status, _, stderr = _generate(capsys, *(["--model", model] if model else []), "--label", label_file,
                                      "--seed", "5", "-o", outputs[name])
        assert status == 0, stderr
    np.testing.assert_array_equal(_pixels(outputs["default"]), _pixels(outputs["by_id"]))
    np.testing.assert_array_equal(_pixels(outputs["colour"]), _pixels(outputs["by_id"]))


def test_generate_refuses_a_photo_and_suggests_a_tolerance_that_works_for_a_jpeg_map(
    samples_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A photo given as --label is named as a photo (whatever the tolerance); a JPEG-compressed colour map gets a
    --color-tolerance value that then works the first time."""
    photo = samples_dir / "pix2pixHD_cityscapes/train_img/aachen_000000_000019_leftImg8bit.png"
    for extra in ([], ["--color-tolerance", "1000"]):
        status, _, stderr = _generate(capsys, "--label", photo, *extra, "-o", tmp_path / "photo.png")
        message = stderr.strip().splitlines()[-1]
        assert status == 2 and "looks like a photo" in message and "segment it first" in message
        assert "--color-tolerance" not in message and "LabelMapProcessor" not in message

    from labelsynth.examples import draw_street_scene

    label, instance = draw_street_scene(2, size=(128, 256))
    jpeg = tmp_path / "map.jpg"
    PIL.Image.fromarray(get_label_space("cityscapes").colorize(label)).save(jpeg, quality=75)
    status, _, stderr = _generate(capsys, "--label", jpeg, "-o", tmp_path / "out.png")
    message = stderr.strip().splitlines()[-1]
    assert status == 2 and "JPEG" in message and "LabelMapProcessor" not in message
    tolerance = message.rsplit("--color-tolerance ", 1)[1].rstrip(".")
    status, _, stderr = _generate(capsys, "--label", jpeg, "--color-tolerance", tolerance, "--save-colorized-label",
                                  tmp_path / "decoded.png", "-o", tmp_path / "out.png")
    assert status == 0, stderr
    decoded = get_label_space("cityscapes").encode_colors(np.asarray(PIL.Image.open(tmp_path / "decoded.png")))
    # The model's size equals the map's (no resizing in between). JPEG's half-resolution colour smears class edges,
    # so only pixels away from them must all be right (measured: 96-97% overall, >= 99.97% beyond 3 pixels).
    from scipy import ndimage

    edges = np.zeros(label.shape, bool)
    for axis in (0, 1):
        step = np.diff(label, axis=axis) != 0
        edges[tuple(slice(None, -1) if a == axis else slice(None) for a in (0, 1))] |= step
        edges[tuple(slice(1, None) if a == axis else slice(None) for a in (0, 1))] |= step
    interior = ndimage.distance_transform_edt(~edges) > 3
    assert (decoded == label)[interior].mean() > 0.999 and (decoded == label).mean() > 0.95
