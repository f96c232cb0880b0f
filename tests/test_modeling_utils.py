"""Semantic-input building and label validation shared by all models."""

import pytest
import torch

from labelsynth.configuration_utils import LabelSynthConfig
from labelsynth.modeling_utils import instance_edges, label_ids_to_channels, one_hot_channels


def test_dontcare_routes_ignore_index_to_last_channel() -> None:
    config = LabelSynthConfig(label_nc=182, contain_dontcare_label=True)
    channels = label_ids_to_channels(torch.tensor([[0, 181, 255]]), config)
    assert channels.tolist() == [[[0, 181, 182]]]
    assert config.semantic_nc == 183


def test_ade20k_raw_ids_keep_their_channel() -> None:
    """SPADE's ADE20K maps raw ids 0..150 straight to channels 0..150 (the don't-care channel is 150)."""
    config = LabelSynthConfig(label_nc=150, contain_dontcare_label=True)
    assert label_ids_to_channels(torch.tensor([[0, 75, 150]]), config).tolist() == [[[0, 75, 150]]]


def test_out_of_range_ids_name_values_and_range() -> None:
    config = LabelSynthConfig(label_space="cityscapes", label_nc=35, contain_dontcare_label=False)
    with pytest.raises(ValueError, match=r"ids \[40, 255\] in 3 pixels outside the model's label range 0\.\.34") as e:
        label_ids_to_channels(torch.tensor([[1, 40, 255, 255]]), config)
    assert "no don't-care channel" in str(e.value)


def test_float_and_rgb_inputs_are_rejected_with_a_fix() -> None:
    config = LabelSynthConfig()
    with pytest.raises(ValueError, match="integer class ids.*LabelMapProcessor"):
        label_ids_to_channels(torch.zeros(1, 8, 8), config)
    with pytest.raises(ValueError, match=r"\[B, H, W\].*RGB colour label map"):
        label_ids_to_channels(torch.zeros(1, 3, 8, 8, dtype=torch.long), config)


def test_one_hot_and_edges() -> None:
    labels = torch.tensor([[[0, 0, 2], [1, 1, 2]]])
    one_hot = one_hot_channels(labels, 3)
    assert one_hot.shape == (1, 3, 2, 3)
    assert torch.equal(one_hot.argmax(1), labels) and torch.equal(one_hot.sum(1), torch.ones(1, 2, 3))
    instances = torch.tensor([[[5, 5, 5, 7], [5, 5, 5, 7], [9, 9, 5, 7]]])
    expected = torch.tensor([[[0, 0, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1]]], dtype=torch.float32)
    assert torch.equal(instance_edges(instances)[:, 0], expected)
    # 32-bit Cityscapes-style ids must not be truncated: 26001 vs 26257 differ only above the low byte.
    assert instance_edges(torch.tensor([[[26001, 26257]]])).sum() == 2


def test_config_validates_image_size() -> None:
    with pytest.raises(ValueError, match="image_size must be"):
        LabelSynthConfig(image_size=(256,))


# ------------------------------------------------------------------------------------------------ strict loading
def _damaged_copies(tmp_path):
    """The built-in model folder three times: intact, with 10% of its tensors removed and one added, truncated."""
    import shutil

    from safetensors.torch import load_file, save_file

    from labelsynth.examples import BUILTIN_MODEL

    intact, pruned, truncated = (tmp_path / name for name in ("intact", "pruned", "truncated"))
    for folder in (intact, pruned, truncated):
        shutil.copytree(BUILTIN_MODEL, folder)
    tensors = load_file(intact / "model.safetensors")
    kept = {key: value for index, (key, value) in enumerate(sorted(tensors.items())) if index % 10}
    save_file({**kept, "stray.weight": torch.zeros(3)}, pruned / "model.safetensors", metadata={"format": "pt"})
    data = (intact / "model.safetensors").read_bytes()
    (truncated / "model.safetensors").write_bytes(data[: len(data) // 2])
    return intact, pruned, truncated, len(tensors) - len(kept)


def test_loading_is_strict_about_missing_unexpected_and_unreadable_weights(tmp_path) -> None:
    from labelsynth import SPADEModel
    from labelsynth.modeling_utils import IncompleteWeightsError

    intact, pruned, truncated, removed = _damaged_copies(tmp_path)
    model, info = SPADEModel.from_pretrained(intact, output_loading_info=True)  # transformers' own option still works
    assert isinstance(model, SPADEModel) and not info["missing_keys"]
    with pytest.raises(IncompleteWeightsError, match=rf"{removed} missing tensors \(.*\); 1 unexpected tensors "
                                                     r"\(stray.weight\)") as err:
        SPADEModel.from_pretrained(pruned)
    assert isinstance(err.value, OSError) and "download or convert it again" in str(err.value)
    with pytest.raises(IncompleteWeightsError, match="model.safetensors cannot be read .* truncated or corrupt"):
        SPADEModel.from_pretrained(truncated)


def test_cli_reports_a_damaged_model_folder_in_one_line(tmp_path, capsys) -> None:
    from labelsynth.cli import main
    from labelsynth.examples import example_paths

    _, pruned, truncated, _ = _damaged_copies(tmp_path)
    label, instance = example_paths(0)
    for folder in (pruned, truncated):
        status = main(["generate", "--model", str(folder), "--label", str(label), "--instance", str(instance), "-o",
                       str(tmp_path / "out.png")])
        err = capsys.readouterr().err
        assert status == 2 and "Traceback" not in err and not (tmp_path / "out.png").exists()
        assert err.strip().splitlines()[-1].startswith(f"labelsynth: error: cannot load the model in {folder}")
