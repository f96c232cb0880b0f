"""VGG19 feature extractor: torchvision layout, weight loading (file, safetensors, directory, offline Hub cache)."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from labelsynth.layers.vgg import VGG19, VGG19_LAYER_NAMES, load_vgg19, vgg19_layer_index

CONV_INDICES = [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]


@pytest.fixture(scope="module")
def random_state_dict() -> dict[str, torch.Tensor]:
    """Random weights with torchvision's key names, plus (tiny) classifier entries as in vgg19-dcbb9e9d.pth."""
    g = torch.Generator().manual_seed(0)
    state = {}
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in VGG19().state_dict().items()}
    for key, shape in shapes.items():
        state[key] = torch.randn(shape, generator=g) * 0.05
    state["classifier.0.weight"] = torch.zeros(2, 2)  # ignored when loading features only
    state["classifier.6.bias"] = torch.zeros(3)
    return state


@pytest.fixture(scope="module")
def weight_files(tmp_path_factory: pytest.TempPathFactory, random_state_dict) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("vgg_weights")
    pth = root / "vgg19-dcbb9e9d.pth"
    torch.save(random_state_dict, pth)
    st = root / "vgg19.safetensors"
    save_file({k: v for k, v in random_state_dict.items() if k.startswith("features.")}, str(st))
    return {"pth": pth, "safetensors": st}


def _assert_loaded(model: VGG19, state: dict[str, torch.Tensor]) -> None:
    loaded = model.state_dict()
    assert set(loaded) == {k for k in state if k.startswith("features.")}
    for key, value in loaded.items():
        assert torch.equal(value, state[key]), key


def test_layout_matches_torchvision_vgg19() -> None:
    vgg = VGG19()
    features = vgg.features
    assert len(features) == 37 == len(VGG19_LAYER_NAMES)
    assert sum(p.numel() for p in vgg.parameters()) == 20_024_384  # torchvision vgg19().features
    assert [i for i, m in enumerate(features) if isinstance(m, nn.Conv2d)] == CONV_INDICES
    assert [i for i, m in enumerate(features) if isinstance(m, nn.MaxPool2d)] == [4, 9, 18, 27, 36]
    assert set(vgg.state_dict()) == {f"features.{i}.{p}" for i in CONV_INDICES for p in ("weight", "bias")}
    # The SPADE / pix2pixHD slice ends.
    expected = {"relu1_1": 1, "relu2_1": 6, "relu3_1": 11, "relu4_1": 20, "relu5_1": 29, "relu5_4": 35,
                "conv1_1": 0, "conv4_2": 21, "conv5_2": 30, "pool5": 36}
    for name, index in expected.items():
        assert vgg19_layer_index(name) == index
        assert isinstance(features[index], nn.ReLU if name.startswith("relu") else
                          nn.Conv2d if name.startswith("conv") else nn.MaxPool2d)
    for name, (cin, cout) in {"conv1_1": (3, 64), "conv2_1": (64, 128), "conv3_1": (128, 256), "conv4_1": (256, 512),
                              "conv5_1": (512, 512)}.items():
        conv = features[vgg19_layer_index(name)]
        assert (conv.in_channels, conv.out_channels, conv.kernel_size, conv.padding) == (cin, cout, (3, 3), (1, 1))
    with pytest.raises(ValueError, match="unknown VGG19 layer 'relu6_1'"):
        vgg19_layer_index("relu6_1")


def test_full_classifier_parameter_count_and_avg_pool() -> None:
    with torch.device("meta"):
        full = VGG19(include_classifier=True)
    assert sum(p.numel() for p in full.parameters()) == 143_667_240  # torchvision vgg19()
    assert {k.split(".")[0] for k in full.state_dict()} == {"features", "classifier"}
    assert "classifier.6.bias" in full.state_dict()
    with torch.device("meta"):
        avg = VGG19(pool="avg")
    assert isinstance(avg.features[4], nn.AvgPool2d)
    assert set(avg.state_dict()) == set(VGG19(frozen=False).state_dict())


def test_slices_one_pass_named_layers_and_frozen() -> None:
    torch.manual_seed(0)
    vgg = VGG19()
    assert not vgg.training and all(not p.requires_grad for p in vgg.parameters())
    vgg.train()  # a parent's .train() must not unfreeze it
    assert not vgg.training
    x = torch.randn(1, 3, 16, 16, requires_grad=True)
    conv1_2, relu1_1, relu5_1, relu1_1_again = vgg.slices(x, ["conv1_2", "relu1_1", "relu5_1", 1])
    manual_relu1_1 = torch.relu(torch.nn.functional.conv2d(x, vgg.features[0].weight, vgg.features[0].bias, padding=1))
    torch.testing.assert_close(relu1_1, manual_relu1_1)
    assert relu1_1_again is relu1_1
    assert conv1_2.min() < 0  # a conv output, not overwritten by an in-place ReLU
    torch.testing.assert_close(vgg.features[2](relu1_1), conv1_2)
    reference = x
    for module in vgg.features[:30]:
        reference = module(reference)
    torch.testing.assert_close(relu5_1, reference)
    assert relu5_1.shape == (1, 512, 1, 1)
    # Gradients flow to the input but not into the weights.
    (relu5_1.sum() + conv1_2.sum()).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in vgg.parameters())
    vgg.unfreeze().train()
    assert vgg.training and all(p.requires_grad for p in vgg.parameters())
    with pytest.raises(TypeError, match="sequence of layer names"):
        vgg.slices(x, "relu1_1")


def test_load_pth_with_torchvision_keys(weight_files, random_state_dict) -> None:
    model = load_vgg19(weight_files["pth"])
    _assert_loaded(model, random_state_dict)
    assert not model.training and all(not p.requires_grad for p in model.parameters())
    model = load_vgg19(str(weight_files["pth"]), pool="avg")
    _assert_loaded(model, random_state_dict)
    assert isinstance(model.features[36], nn.AvgPool2d)


def test_load_safetensors_directory_and_state_dict(weight_files, random_state_dict) -> None:
    _assert_loaded(load_vgg19(weight_files["safetensors"]), random_state_dict)
    # A directory: the first of the default file names found (vgg19.safetensors before vgg19-dcbb9e9d.pth).
    _assert_loaded(load_vgg19(weight_files["pth"].parent), random_state_dict)
    _assert_loaded(load_vgg19(weight_files["pth"].parent, hub_filename="vgg19-dcbb9e9d.pth"), random_state_dict)
    # A state dict saved from `vgg19().features` only ("0.weight", ...).
    bare = {k.removeprefix("features."): v for k, v in random_state_dict.items() if k.startswith("features.")}
    _assert_loaded(load_vgg19(bare), random_state_dict)


def _write_hub_cache(cache: Path, repo_id: str, filename: str, source: Path) -> None:
    sha = "0123456789abcdef0123456789abcdef01234567"
    repo_dir = cache / f"models--{repo_id.replace('/', '--')}"
    (repo_dir / "snapshots" / sha).mkdir(parents=True)
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / "main").write_text(sha)
    (repo_dir / "snapshots" / sha / filename).write_bytes(source.read_bytes())


def test_load_from_offline_hub_cache(tmp_path, weight_files, random_state_dict) -> None:
    import huggingface_hub.constants

    # Explicit cache_dir.
    _write_hub_cache(tmp_path, "org/vgg", "vgg19.pth", weight_files["pth"])
    _assert_loaded(load_vgg19("org/vgg", cache_dir=tmp_path), random_state_dict)  # found among the defaults
    _assert_loaded(load_vgg19("org/vgg", hub_filename="vgg19.pth", cache_dir=tmp_path), random_state_dict)
    with pytest.raises(FileNotFoundError, match=re.escape("['other.pth'] found in Hub repo 'org/vgg'")):
        load_vgg19("org/vgg", hub_filename="other.pth", cache_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="found in Hub repo 'org/missing'"):
        load_vgg19("org/missing", cache_dir=tmp_path)
    # The default cache, HF_HOME/hub (a temporary HF_HOME set by conftest.py).
    cache = Path(huggingface_hub.constants.HF_HUB_CACHE)
    repo_id = f"org/vgg-test-{tmp_path.name}"
    _write_hub_cache(cache, repo_id, "model.safetensors", weight_files["safetensors"])
    _assert_loaded(load_vgg19(repo_id), random_state_dict)


def test_clear_errors(tmp_path, random_state_dict) -> None:
    state = {k: v for k, v in random_state_dict.items() if k != "features.34.bias"}
    state["features.35.weight"] = torch.zeros(1)
    state["extra.thing"] = torch.zeros(1)
    with pytest.raises(ValueError) as info:
        load_vgg19(state)
    message = str(info.value)
    assert "missing keys (1): features.34.bias" in message
    assert "unexpected keys (2): features.35.weight, extra.thing" in message
    state = dict(random_state_dict)
    state["features.0.weight"] = torch.zeros(64, 1, 3, 3)
    with pytest.raises(ValueError, match=re.escape("features.0.weight: file (64, 1, 3, 3) vs model (64, 3, 3, 3)")):
        load_vgg19(state)
    with pytest.raises(ValueError, match="missing keys"):
        load_vgg19({"features.0.weight": random_state_dict["features.0.weight"]})
    with pytest.raises(FileNotFoundError, match="not found"):
        load_vgg19(tmp_path / "nope.pth")
    with pytest.raises(FileNotFoundError, match="not found"):
        load_vgg19("nope.safetensors")
    pickled = tmp_path / "module.pth"
    torch.save(nn.Linear(2, 2), pickled)
    with pytest.raises(ValueError, match="cannot be loaded safely; it is refused") as refused:
        load_vgg19(pickled)
    assert "weights_only" not in str(refused.value)  # never torch's advice to load it unsafely
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_vgg19(None)
    assert any("randomly initialised" in str(w.message) for w in caught)


def test_wide_layers_by_winograd_give_the_direct_features_loss_and_input_gradient(monkeypatch) -> None:
    """At 128x256 conv3_2..conv5_1 run by Winograd (forward and input gradient); the perceptual loss,
    the features (with and without gradients) and the gradient reaching the image equal the direct convolutions'
    up to float32 rounding. The gradient is compared in norm: a max-pool whose inputs nearly tie may route it to
    the other pixel under either rounding. Measured (relative L2, this test's input and four other random images):
    Winograd against direct 5.7e-6 to 1.2e-2 with AVX-512 kernels, 8.1e-3 to 8.6e-3 with AVX2 ones, where the direct
    path itself is up to 8.0e-3 from a float64 reference; a wrong input gradient would be off by order 1."""
    from labelsynth.layers import winograd
    from labelsynth.losses import VGGPerceptualLoss

    torch.manual_seed(0)
    vgg = VGG19()
    winograd_layers = []
    trainable = winograd.winograd_conv3x3_trainable
    monkeypatch.setattr(winograd, "winograd_conv3x3_trainable",
                        lambda x, *args: winograd_layers.append(x.shape[1]) or trainable(x, *args))
    loss_fn = VGGPerceptualLoss(vgg)
    real = torch.rand(1, 3, 128, 256) * 2 - 1
    results = {}
    for enabled in (False, True):
        monkeypatch.setattr(winograd, "_ENABLED", enabled)
        fake = (torch.rand(1, 3, 128, 256, generator=torch.Generator().manual_seed(1)) * 2 - 1).requires_grad_()
        loss = loss_fn(fake, real)
        loss.backward()
        with torch.no_grad():
            features = vgg.slices(real, ["relu3_4", "relu4_4"])
        results[enabled] = (loss.item(), fake.grad, features, vgg.slices(real, ["relu3_4", "relu4_4"]))
    # Four passes with Winograd on (fake and real in the loss, two slices calls), each with four layers that read 256
    # channels (conv3_2..conv4_1) and three that read 512 (conv4_2..conv4_4); the loss's passes also reach conv5_1.
    assert winograd_layers.count(256) == 4 * 4 and winograd_layers.count(512) == 4 * 3 + 2, winograd_layers
    (direct_loss, direct_grad, direct_features, _), (loss, grad, features, grad_mode_features) = results.values()
    assert abs(loss - direct_loss) <= 1e-5 * direct_loss
    assert (grad - direct_grad).norm() <= 5e-2 * direct_grad.norm()
    for f, g, d in zip(features, grad_mode_features, direct_features):
        torch.testing.assert_close(f, d, atol=1e-5 * d.abs().max().item(), rtol=0)
        torch.testing.assert_close(g, d, atol=1e-5 * d.abs().max().item(), rtol=0)
