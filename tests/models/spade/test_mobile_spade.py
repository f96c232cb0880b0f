"""Compressed GauGAN (GAN Compression's sub_mobile_spade): config, parameter count, converter, fast path, pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from original_checkpoints import (
    MOBILE_SPADE_TINY,
    MOBILE_SPADE_TINY_NGF,
    tiny_mobile_spade,
    write_mobile_spade_checkpoint,
)
from PIL import Image

from labelsynth import MobileSPADEConfig, MobileSPADEModel
from labelsynth.models.spade.convert_mobile_spade_original_checkpoint import (
    convert_mobile_spade_checkpoint,
    original_key_layout,
)

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "mobile_spade_original_keys.json"


def cityscapes_sample(samples_dir: Path, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    folder = samples_dir / "pix2pixHD_cityscapes"
    label_path = min((folder / "test_label").glob("*_labelIds.png"))
    inst_path = folder / "test_inst" / label_path.name.replace("labelIds", "instanceIds")
    label, inst = (np.array(Image.open(p).resize((size[1], size[0]), Image.NEAREST)).astype(np.int64)
                   for p in (label_path, inst_path))
    return torch.from_numpy(label)[None], torch.from_numpy(inst)[None]


def test_released_config_has_the_original_parameter_count_and_key_layout() -> None:
    config = MobileSPADEConfig.for_dataset("cityscapes-compressed")
    assert config.config_str == "32_40_40_32_40_24_32_24" and config.semantic_nc == 36
    assert tuple(config.image_size) == (256, 512) and config.upsampling_factor == 64
    with torch.device("meta"):
        model = MobileSPADEModel(config)
    # 21,002,811: the count of the original SubMobileSPADEGenerator(--ngf 48, that config_str), instantiated
    assert sum(p.numel() for p in model.parameters()) == 21_002_811
    expected = {k: tuple(v) for k, v in json.loads(FIXTURE.read_text()).items()}
    assert original_key_layout(config, ngf=48) == expected


def test_config_rejects_bad_widths() -> None:
    with pytest.raises(ValueError, match="channels must list 8 widths"):
        MobileSPADEConfig(channels=[32, 40])
    with pytest.raises(ValueError, match="num_upsampling_layers"):
        MobileSPADEConfig(num_upsampling_layers="most")
    with pytest.raises(ValueError, match="unknown MobileSPADE preset"):
        MobileSPADEConfig.for_dataset("ade20k")


def test_converter_reads_the_original_layout(tmp_path: Path) -> None:
    model = tiny_mobile_spade()
    state = write_mobile_spade_checkpoint(tmp_path / "latest_net_G.pth", model, MOBILE_SPADE_TINY_NGF)
    assert len(state) == len(json.loads(FIXTURE.read_text()))  # same key set as the released layout, tiny widths
    converted = convert_mobile_spade_checkpoint(tmp_path)
    assert converted.config.channels == MOBILE_SPADE_TINY["channels"]
    for key, value in model.state_dict().items():
        assert torch.equal(converted.state_dict()[key], value), key
    label = torch.randint(0, 35, (1, 64, 128))
    with torch.no_grad():
        assert torch.equal(converted(label, label).images, model(label, label).images)


@pytest.mark.parametrize("damage", ["missing", "unknown", "misshaped"])
def test_converter_names_missing_unknown_and_misshaped_keys(tmp_path: Path, damage: str) -> None:
    state = write_mobile_spade_checkpoint(tmp_path / "g.pth", tiny_mobile_spade(), MOBILE_SPADE_TINY_NGF)
    if damage == "missing":
        del state["up_1.norm_s.mlp_beta.conv.2.bias"]
        match = "1 missing keys: up_1.norm_s.mlp_beta.conv.2.bias"
    elif damage == "unknown":
        state["up_4.conv_0.weight"] = torch.zeros(1)
        match = "1 unknown keys: up_4.conv_0.weight"
    else:
        state["head_0.norm_0.param_free_norm.running_var"] = torch.ones(7)
        match = r"mis-shaped keys: head_0.norm_0.param_free_norm.running_var \(7,\) \(expected \(64,\)\)"
    torch.save(state, tmp_path / "g.pth")
    with pytest.raises(ValueError, match=match):
        convert_mobile_spade_checkpoint(tmp_path / "g.pth")


def test_converter_rejects_another_generator(tmp_path: Path) -> None:
    torch.save({"fc.weight": torch.zeros(4, 36, 3, 3)}, tmp_path / "g.pth")
    with pytest.raises(ValueError, match="does not look like a sub_mobile_spade generator"):
        convert_mobile_spade_checkpoint(tmp_path / "g.pth")


def test_fast_path_equals_plain_path_on_a_real_cityscapes_map(samples_dir: Path) -> None:
    model = tiny_mobile_spade()
    label, inst = cityscapes_sample(samples_dir, (128, 256))
    with torch.no_grad():
        model.fast_inference = False
        plain = model(label, inst).images
        model.fast_inference = True
        fast = model(label, inst).images
    assert plain.std() > 0.05  # a non-trivial image
    assert (fast - plain).abs().max() <= 1e-4


def test_fast_path_equals_plain_path_per_image_in_a_batch(samples_dir: Path) -> None:
    # The InstanceNorm statistics and the tables are per image: a batch of two different maps.
    model = tiny_mobile_spade(seed=1)
    label, inst = cityscapes_sample(samples_dir, (64, 128))
    label = torch.cat([label, label.flip(-1)])
    inst = torch.cat([inst, inst.flip(-1)])
    with torch.no_grad():
        model.fast_inference = False
        plain = model(label, inst).images
        model.fast_inference = True
        fast = model(label, inst).images
    assert (fast - plain).abs().max() <= 1e-4 and (plain[0] - plain[1].flip(-1)).abs().max() > 1e-3


def test_pipeline_runs_on_a_saved_folder(tmp_path: Path, samples_dir: Path) -> None:
    from labelsynth import pipeline
    from labelsynth.conversion_utils import save_converted

    save_converted(tiny_mobile_spade(), tmp_path / "model")  # weights, config and the label-map processor
    reloaded = MobileSPADEModel.from_pretrained(tmp_path / "model")
    assert reloaded.config.channels == MOBILE_SPADE_TINY["channels"]
    label, inst = cityscapes_sample(samples_dir, (64, 128))
    pipe = pipeline("label-to-image", model=str(tmp_path / "model"))
    image = pipe(Image.fromarray(label[0].numpy().astype(np.uint8)),
                 instance_map=Image.fromarray(inst[0].numpy().astype(np.int32)))
    assert image.size == (128, 64)


def test_fast_layer_fusions_equal_the_plain_layer(samples_dir: Path) -> None:
    # fast_forward's upsampling, LeakyReLU and 1x1 conv fusions against the plain layer and ops, with the eval
    # BatchNorm folded and with a BatchNorm that keeps no statistics (not folded: normalised per batch).
    from labelsynth.layers.mobile_spade import MobileSPADE
    from labelsynth.layers.normalization import SemanticLayout

    model = tiny_mobile_spade()
    label, inst = cityscapes_sample(samples_dir, (64, 128))
    channels = model.prepare_label_channels(label)
    edges = model.prepare_instance_edges(inst, (64, 128))
    one_hot = torch.cat([torch.nn.functional.one_hot(channels, 35).permute(0, 3, 1, 2).float(), edges.float()], 1)
    layout = SemanticLayout(channels, edges, 35, 3)
    layer = model.generator.up_2.norm_s  # trained BatchNorm statistics, folded
    unfolded = MobileSPADE(layer.param_free_norm.num_features, 36, layer.mlp_gamma.depthwise.in_channels)
    unfolded.load_state_dict(layer.state_dict())
    unfolded.param_free_norm.track_running_stats = False
    unfolded.eval()
    conv = torch.nn.Conv2d(layer.param_free_norm.num_features, 5, 1, bias=True)
    x = torch.randn(1, layer.param_free_norm.num_features, 32, 64)
    with torch.no_grad():
        for norm in (layer, unfolded):
            up = torch.nn.functional.interpolate(x, scale_factor=2, mode="nearest")
            plain = conv(torch.nn.functional.leaky_relu(norm(up, one_hot), 0.2))
            fast = norm.fast_forward(x, layout, upsample=True, negative_slope=0.2, pointwise=conv)
            assert fast.is_contiguous(memory_format=torch.channels_last)
            assert plain.std() > 0.05 and (fast - plain).abs().max() <= 1e-4
            in_place = up.contiguous(memory_format=torch.channels_last)
            assert norm.fast_forward(in_place, layout, out=in_place) is in_place
            assert (in_place - norm(up, one_hot)).abs().max() <= 1e-4


def test_boundary_pixels_with_the_same_window_share_one_pattern(samples_dir: Path, monkeypatch) -> None:
    # The fast path computes each distinct key window once; grouping is by a hash, checked exactly: with a hash
    # that collides for every window the check must fall back to one pattern per boundary pixel, still exact.
    from labelsynth.layers import mobile_spade
    from labelsynth.layers.normalization import SemanticLayout

    model = tiny_mobile_spade()
    label, inst = cityscapes_sample(samples_dir, (128, 256))
    channels = model.prepare_label_channels(label)
    edges = model.prepare_instance_edges(inst, (128, 256))

    def finest_level_counts() -> tuple[int, int]:
        layout = SemanticLayout(channels, edges, 35, 3)
        level = layout.level((128, 256))
        rows = mobile_spade._level_rows(level, layout, (128, 256))
        assert rows.pattern_counts.sum() == level.boundary.numel()
        return rows.pattern_counts.numel(), level.boundary.numel()

    with torch.no_grad():
        model.fast_inference = False
        plain = model(label, inst).images
        model.fast_inference = True
        patterns, boundary = finest_level_counts()
        assert patterns < 0.8 * boundary  # straight edges repeat windows
        monkeypatch.setattr(mobile_spade, "_HASH_BASE", 0)  # every window of an image hashes alike
        assert finest_level_counts() == (boundary, boundary)
        assert (model(label, inst).images - plain).abs().max() <= 1e-4


def test_fast_path_buffers_kept_between_calls_do_not_leak_into_results(samples_dir: Path) -> None:
    # The blocks keep their largest intermediates between calls; a result must not change when the model runs again.
    model = tiny_mobile_spade()
    label, inst = cityscapes_sample(samples_dir, (64, 128))
    with torch.no_grad():
        first = model(label, inst).images
        kept = first.clone()
        second = model(label.flip(-1), inst.flip(-1)).images
    assert torch.equal(first, kept) and (second - first).abs().max() > 1e-3


def test_concurrent_fast_calls_do_not_share_buffers(samples_dir: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    model = tiny_mobile_spade()
    label, inst = cityscapes_sample(samples_dir, (64, 128))
    maps = [(label, inst), (label.flip(-1), inst.flip(-1))] * 3

    def generate(pair: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        with torch.no_grad():
            return model(*pair).images

    alone = [generate(pair) for pair in maps[:2]]
    with ThreadPoolExecutor(3) as pool:
        together = list(pool.map(generate, maps))
    for i, image in enumerate(together):
        assert (image - alone[i % 2]).abs().max() <= 1e-6
