"""The FID Inception-v3: state-dict layout of pt_inception-2015-12-05-6726825d.pth, parameter count, the 2015 graph's
block differences from torchvision's network, weight loading and its errors, and the feature extractor's inputs."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch
import torch.nn.functional as F

from labelsynth.metrics import (
    FID_INCEPTION_NUM_PARAMETERS,
    FID_WEIGHTS_FILENAME,
    FIDInceptionV3,
    InceptionFeatureExtractor,
    find_inception_weights,
    load_fid_inception,
)

LAYOUT = json.loads((Path(__file__).parent / "fixtures" / "fid_inception_layout.json").read_text())
BN_ENTRIES = ("weight", "bias", "running_mean", "running_var")


def expected_shapes(with_counters: bool = True) -> dict[str, tuple[int, ...]]:
    """Key -> shape of the FID Inception state dict, expanded from the hand-written layer table."""
    shapes: dict[str, tuple[int, ...]] = {}
    for name, cin, cout, kh, kw in LAYOUT["basic_conv2d"]:
        shapes[f"{name}.conv.weight"] = (cout, cin, kh, kw)
        for entry in BN_ENTRIES:
            shapes[f"{name}.bn.{entry}"] = (cout,)
        if with_counters:
            shapes[f"{name}.bn.num_batches_tracked"] = ()
    shapes.update({k: tuple(v) for k, v in LAYOUT["linear"].items()})
    return shapes


def random_state_dict(with_counters: bool = True, seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict in the standard file layout, built from the table (independently of FIDInceptionV3)."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in expected_shapes(with_counters).items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(0, dtype=torch.long)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=generator) + 0.5
        else:
            state[key] = torch.randn(shape, generator=generator) * 0.05
    return state


@pytest.fixture(scope="module")
def net() -> FIDInceptionV3:
    return FIDInceptionV3().eval()


def test_state_dict_layout_matches_the_fid_weights_file(net):
    got = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    want = expected_shapes()
    assert sorted(got) == sorted(want)
    assert got == want
    assert len(LAYOUT["basic_conv2d"]) == 94 and len(got) == 566
    assert not any(k.startswith("AuxLogits") for k in got)


def test_parameter_count_is_torchvision_inception_v3_without_aux_with_1008_classes(net):
    # torchvision's documented inception_v3 count (aux classifier, 1000 classes) minus InceptionAux
    # (conv0 768->128 1x1 + BN, conv1 128->768 5x5 + BN, fc 768->1000) plus 8 more fc outputs.
    torchvision_count = 27_161_264
    aux = (768 * 128 + 2 * 128) + (128 * 768 * 25 + 2 * 768) + (768 * 1000 + 1000)
    extra_classes = 8 * 2048 + 8
    assert aux == 3_326_696
    assert FID_INCEPTION_NUM_PARAMETERS == torchvision_count - aux + extra_classes == 23_850_960
    assert sum(p.numel() for p in net.parameters()) == FID_INCEPTION_NUM_PARAMETERS


def _identity_bn(module: torch.nn.Module) -> None:
    for bn in module.modules():
        if isinstance(bn, torch.nn.BatchNorm2d):
            bn.reset_parameters()  # weight 1, bias 0, running mean 0, running var 1


def _pool_branch_output(block: torch.nn.Module, x: torch.Tensor, first_pool_channel: int) -> torch.Tensor:
    """Output of the pool branch's first channel when its 1x1 conv just copies input channel 0."""
    _identity_bn(block)
    with torch.no_grad():
        block.branch_pool.conv.weight.zero_()
        block.branch_pool.conv.weight[0, 0] = 1.0
        out = block.eval()(x)
    return out[0, first_pool_channel] * (1 + block.branch_pool.bn.eps) ** 0.5  # undo BN's 1/sqrt(1 + eps)


@pytest.mark.parametrize("block_name, first_pool_channel", [
    ("Mixed_5b", 64 + 64 + 96), ("Mixed_6b", 192 * 3), ("Mixed_7b", 320 + 768 + 768),
])
def test_average_pools_ignore_padding_like_tensorflow(net, block_name, first_pool_channel):
    block = getattr(net, block_name)
    in_channels = block.branch_pool.conv.in_channels
    pooled = _pool_branch_output(block, torch.ones(1, in_channels, 5, 5), first_pool_channel)
    # count_include_pad=False: the corner averages 4 real ones -> 1 (torchvision's default would give 4/9).
    torch.testing.assert_close(pooled, torch.ones(5, 5))


def test_last_block_max_pools_its_pool_branch(net):
    x = torch.zeros(1, 2048, 8, 8)
    x[0, 0, 4, 4] = 9.0
    pooled = _pool_branch_output(net.Mixed_7c, x, 320 + 768 + 768)
    expected = torch.zeros(8, 8)
    expected[3:6, 3:6] = 9.0  # 3x3 max pool, stride 1 (an average pool would give 1.0)
    torch.testing.assert_close(pooled, expected)


def test_random_extractor_gives_2048_features_and_says_it_is_not_comparable(random_inception):
    features = random_inception(torch.rand(2, 3, 40, 56) * 2 - 1)
    assert features.shape == (2, 2048) and features.dtype == torch.float32
    assert torch.isfinite(features).all() and features.std() > 0
    assert random_inception.comparable is False
    assert "not comparable" in random_inception.weights_source
    with pytest.warns(UserWarning, match="random weights"):
        InceptionFeatureExtractor(None)


def test_input_ranges_uint8_and_pil_lists_agree():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        extractor = InceptionFeatureExtractor(None, resize_input=False)  # 80x80 inputs: fast
    rng = np.random.default_rng(0)
    uint8 = rng.integers(0, 256, (2, 80, 80, 3), dtype=np.uint8)
    as_uint8 = torch.from_numpy(uint8).permute(0, 3, 1, 2)
    unit = as_uint8.float() / 255
    reference = extractor(unit * 2 - 1)
    torch.testing.assert_close(extractor(unit, value_range=(0, 1)), reference, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(extractor(as_uint8), reference, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(extractor([PIL.Image.fromarray(a) for a in uint8]), reference, rtol=1e-4, atol=1e-5)


def test_resize_is_bilinear_to_299_then_scaled(random_inception):
    x = torch.rand(1, 3, 30, 40) * 2 - 1
    prepared = random_inception._prepare(x, (-1.0, 1.0))
    torch.testing.assert_close(prepared, F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False))
    prepared01 = random_inception._prepare((x + 1) / 2, (0.0, 1.0))
    torch.testing.assert_close(prepared01, prepared, rtol=1e-5, atol=1e-6)


def test_load_round_trip_from_a_standard_layout_file(tmp_path):
    state = random_state_dict(with_counters=True)
    path = tmp_path / FID_WEIGHTS_FILENAME
    torch.save(state, path)
    model = load_fid_inception(path)
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    loaded = model.state_dict()
    for key, value in state.items():
        assert torch.equal(loaded[key], value), key
    # A folder holding the file works too, and so does a file without the num_batches_tracked counters.
    assert torch.equal(load_fid_inception(tmp_path).fc.weight, state["fc.weight"])
    no_counters = tmp_path / "old.pth"
    torch.save(random_state_dict(with_counters=False, seed=1), no_counters)
    extractor = InceptionFeatureExtractor(no_counters, resize_input=False)
    assert extractor.comparable is True and extractor.weights_source == str(no_counters)
    assert len(extractor.weights_sha256) == 64
    assert extractor(torch.zeros(1, 3, 75, 75)).shape == (1, 2048)


def test_missing_file_and_env_lookup(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match=FID_WEIGHTS_FILENAME):
        load_fid_inception(tmp_path / "nope.pth")
    monkeypatch.delenv("LABELSYNTH_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    assert find_inception_weights() is None
    monkeypatch.setenv("LABELSYNTH_INCEPTION_WEIGHTS", str(tmp_path / "w.pth"))
    assert find_inception_weights() == tmp_path / "w.pth"
    assert find_inception_weights("explicit.pth") == Path("explicit.pth")
    cached = tmp_path / "torch" / "hub" / "checkpoints" / FID_WEIGHTS_FILENAME
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"")
    monkeypatch.delenv("LABELSYNTH_INCEPTION_WEIGHTS")
    assert find_inception_weights() == cached


def test_clear_errors_for_wrong_files(tmp_path):
    missing = tmp_path / "partial.pth"
    torch.save({"Conv2d_1a_3x3.conv.weight": torch.zeros(32, 3, 3, 3)}, missing)
    with pytest.raises(ValueError, match=r"missing keys \(\d+\): Conv2d_1a_3x3\.bn\.weight"):
        load_fid_inception(missing)

    torchvision_like = tmp_path / "inception_v3_google.pth"
    torch.save({"fc.weight": torch.zeros(1000, 2048), "AuxLogits.fc.weight": torch.zeros(1000, 768)}, torchvision_like)
    with pytest.raises(ValueError, match=r"unexpected keys \(\d+\): AuxLogits.fc.weight") as info:
        load_fid_inception(torchvision_like)
    assert "fc.weight: file (1000, 2048) vs model (1008, 2048)" in str(info.value)
    assert "torchvision's ImageNet inception_v3" in str(info.value)

    prefixed = tmp_path / "prefixed.pth"
    torch.save({f"module.{k}": v for k, v in list(random_state_dict().items())[:3]}, prefixed)
    with pytest.raises(ValueError, match="wrapper prefix"):
        load_fid_inception(prefixed)

    not_a_state_dict = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], not_a_state_dict)
    with pytest.raises(ValueError, match="is not a plain state_dict of tensors"):
        load_fid_inception(not_a_state_dict)

    pickled_object = tmp_path / "object.pth"
    torch.save({"fc.weight": torch.zeros(1), "extra": PIL.Image.new("L", (1, 1))}, pickled_object)
    with pytest.raises(ValueError, match="cannot be loaded safely; it is refused") as refused:
        load_fid_inception(pickled_object)
    assert "weights_only" not in str(refused.value)  # never torch's advice to load it unsafely
