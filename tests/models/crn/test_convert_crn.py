"""The TF checkpoint reader and the CRN converter, on a bundle written by TensorFlow from the original graph
(tests/fixtures/crn_tiny_tf, see its README) and on the key layout of the four released checkpoints."""

import json
import shutil
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch

from labelsynth import CRNConfig, CRNModel, get_label_space
from labelsynth.models.crn.convert_crn_original_checkpoint import (
    convert_crn_checkpoint,
    generator_variables,
    infer_config,
    tf_variable_to_key,
)
from labelsynth.models.crn.tf_checkpoint import list_tf_checkpoint, load_tf_checkpoint, resolve_tf_checkpoint_prefix
from labelsynth.state_dict_utils import state_dict_mismatch

FIXTURES = Path(__file__).parents[2] / "fixtures"
TINY = FIXTURES / "crn_tiny_tf"
OFFICIAL = json.loads((FIXTURES / "crn_original_keys.json").read_text())["checkpoints"]
PARAMS = {"result_256p": 97_875_483, "result_GTA": 97_875_483, "result_512p": 98_622_851,
          "result_1024p": 98_674_531}


@pytest.fixture(scope="module")
def reference():
    return np.load(TINY / "reference.npz")


def test_reader_returns_every_tensor_exactly_as_tensorflow_held_it(reference):
    arrays = load_tf_checkpoint(TINY)
    variables = {k[len("var/"):]: reference[k] for k in reference.files if k.startswith("var/")}
    assert set(arrays) == set(variables)
    for name, value in variables.items():
        assert arrays[name].dtype == value.dtype and np.array_equal(arrays[name], value), name
    assert arrays["g_4_conv1/weights"].flags.writeable


def test_reader_lists_names_and_shapes_without_reading_data():
    entries, shards = list_tf_checkpoint(TINY / "model.ckpt.index")
    assert shards == 1
    assert entries["g_16_conv100/weights"].shape == (1, 1, 4, 9)
    assert entries["beta1_power"].shape == ()
    assert {e.dtype for e in entries.values()} == {1}  # float32


def test_prefix_resolution(tmp_path):
    prefix = TINY / "model.ckpt"
    assert resolve_tf_checkpoint_prefix(TINY) == prefix
    assert resolve_tf_checkpoint_prefix(TINY / "model.ckpt.data-00000-of-00001") == prefix
    assert resolve_tf_checkpoint_prefix(prefix) == prefix
    with pytest.raises(FileNotFoundError, match="expected one TF checkpoint"):
        resolve_tf_checkpoint_prefix(tmp_path)


def test_converted_tiny_checkpoint_reproduces_the_original_tf_graph(reference):
    model = convert_crn_checkpoint(TINY)
    assert model.config.module_channels == [8, 8, 4] and model.config.num_outputs == 3
    assert model.config.image_size == [16, 32]
    label_map = torch.from_numpy(get_label_space("cityscapes").encode_colors(reference["label_color"]))[None]
    semantics = model.build_semantic_input(label_map)
    assert torch.equal(semantics[0].permute(1, 2, 0), torch.from_numpy(reference["semantic"][0]))
    with torch.no_grad():
        candidates = model(label_map).candidates
    ours = (candidates[0].permute(0, 2, 3, 1) + 1) * 127.5  # the original's 0..255 output, [k, H, W, 3]
    tf_output = torch.from_numpy(reference["output"])
    assert tf_output.abs().max() > 100  # non-trivial values
    # measured: 1.4e-4 in 0..255 units (float32 rounding of outputs up to ~300), i.e. ~1e-6 in [-1, 1] units
    assert (ours - tf_output).abs().max() < 1e-3
    assert (candidates[0].permute(0, 2, 3, 1) - (tf_output / 127.5 - 1)).abs().max() < 1e-5


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_official_key_layout_maps_onto_the_model(name):
    shapes = OFFICIAL[name]
    variables = generator_variables(shapes)
    assert len(shapes) - len(variables) > 0  # Adam slots and beta powers were dropped
    config = infer_config({n: tuple(shapes[n]) for n in variables}, "gta" if name == "result_GTA" else "cityscapes")
    preset = {"result_256p": "cityscapes-256p", "result_GTA": "gta-256p", "result_512p": "cityscapes-512p",
              "result_1024p": "cityscapes-1024p"}[name]
    expected = CRNConfig.for_dataset(preset)
    assert config.module_channels == expected.module_channels
    assert config.num_outputs == expected.num_outputs and config.image_size == expected.image_size
    with torch.device("meta"):
        model = CRNModel(config)
    coarsest = config.image_size[0] // config.downsampling_factor
    converted = {}
    for n in variables:
        shape = shapes[n]
        converted[tf_variable_to_key(n, coarsest)] = torch.empty(
            (shape[3], shape[2], shape[0], shape[1]) if len(shape) == 4 else shape, device="meta")
    assert state_dict_mismatch(model.state_dict(), converted) is None
    assert sum(p.numel() for p in converted.values()) == PARAMS[name]


def test_unknown_variables_and_wrong_preset_are_reported():
    with pytest.raises(ValueError, match="unexpected variables.*d_4_conv1/weights"):
        generator_variables(["g_4_conv1/weights", "d_4_conv1/weights", "beta1_power"])
    shapes = {n: tuple(s) for n, s in OFFICIAL["result_256p"].items() if n in generator_variables(OFFICIAL["result_256p"])}
    shapes["g_4_conv1/weights"] = (3, 3, 36, 1024)
    with pytest.raises(ValueError, match="36 semantic channels"):
        infer_config(shapes, "cityscapes")


def test_damaged_bundles_raise_clear_errors(tmp_path):
    shutil.copy(TINY / "model.ckpt.index", tmp_path / "model.ckpt.index")
    with pytest.raises(FileNotFoundError, match="data shard"):
        load_tf_checkpoint(tmp_path / "model.ckpt")
    shutil.copy(TINY / "model.ckpt.data-00000-of-00001", tmp_path / "model.ckpt.data-00000-of-00001")
    data = (tmp_path / "model.ckpt.data-00000-of-00001").read_bytes()
    (tmp_path / "model.ckpt.data-00000-of-00001").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="incomplete"):
        load_tf_checkpoint(tmp_path / "model.ckpt")
    (tmp_path / "bad.index").write_bytes(b"\0" * 64)
    with pytest.raises(ValueError, match="not a TensorFlow V2 checkpoint index"):
        list_tf_checkpoint(tmp_path / "bad.index")


def test_cli_convert_then_pipeline(tmp_path, reference):
    from transformers import pipeline

    import labelsynth  # noqa: F401  (registers the pipeline task)
    from labelsynth.cli import main

    out = tmp_path / "crn-tiny"
    assert main(["convert", "crn", str(TINY), str(out), "--preset", "cityscapes"]) == 0
    assert {"config.json", "model.safetensors", "preprocessor_config.json", "README.md"} <= {p.name for p in out.iterdir()}
    assert "CQFIO/PhotographicImageSynthesis" in (out / "README.md").read_text()
    pipe = pipeline("label-to-image", model=str(out))
    images = [np.asarray(pipe(reference["label_color"], output_index=j, output_type="np")) for j in range(3)]
    tf_images = np.clip(reference["output"], 0, 255)
    for ours, theirs in zip(images, tf_images):
        assert ours.shape == (16, 32, 3)
        assert np.abs(ours.astype(float) - theirs).max() <= 1.0  # uint8 rounding of the same image
    label_png = tmp_path / "label.png"
    PIL.Image.fromarray(reference["label_color"]).save(label_png)
    assert main(["generate", "--model", str(out), "--label", str(label_png), "--num-images", "2",
                 "-o", str(tmp_path / "out.png")]) == 0
    written = sorted(p.name for p in tmp_path.glob("out*.png"))
    assert len(written) == 2 and PIL.Image.open(tmp_path / written[0]).size == (32, 16)
