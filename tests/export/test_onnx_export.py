"""ONNX export: every GAN family's tiny generator through onnxruntime equals our plain fp32 path, with a dynamic
batch (and size where the model allows it), fp16, the label space in the metadata, the CLI and its errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import randomize_weights, save_model_folder

import labelsynth as ls
from labelsynth.cli import main
from labelsynth.export.onnx import read_metadata
from labelsynth.label_spaces import get_label_space

ort = pytest.importorskip("onnxruntime", reason="the export extra (pip install 'labelsynth[export]') is not installed")
pytest.importorskip("onnxscript", reason="the export extra (pip install 'labelsynth[export]') is not installed")


def _ids(batch: int, size: tuple[int, int], high: int, seed: int, block: int = 8) -> torch.Tensor:
    """Block label maps (regions, as real maps have) of ids 0..high-1."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randint(0, high, (batch, size[0] // block, size[1] // block), generator=g)
    return coarse.repeat_interleave(block, 1).repeat_interleave(block, 2)


def _image(batch: int, size: tuple[int, int], seed: int) -> torch.Tensor:
    return torch.rand(batch, 3, *size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


# family -> (tiny model, inputs for a batch: {name: tensor} given to both the ONNX graph and the model's forward,
# fixed forward arguments of the export)
def _spade() -> ls.SPADEModel:
    """VAE (z as an input), don't-care channel and instance edges: every input SPADE's graph can have."""
    return ls.SPADEModel(ls.SPADEConfig(label_space="ade20k", label_nc=150, contain_dontcare_label=True, ngf=8,
                                        image_size=(64, 64), z_dim=16, use_vae=True, use_instance_edges=True))


def _pix2pix() -> ls.Pix2PixModel:
    return ls.Pix2PixModel(ls.Pix2PixConfig.for_dataset("cityscapes", ngf=8, ndf=8, num_downs=6, image_size=(64, 64)))


def _pix2pixhd() -> ls.Pix2PixHDModel:
    return ls.Pix2PixHDModel(ls.Pix2PixHDConfig(image_size=(32, 64), ngf=4, n_downsample_global=2, n_blocks_global=1,
                                                n_blocks_local=1, nef=4, n_downsample_e=2, ndf=4, n_clusters=3,
                                                feature_mode="instance"))


def _crn() -> ls.CRNModel:
    return ls.CRNModel(ls.CRNConfig(module_channels=[16, 16, 8], num_outputs=3, image_size=(16, 32)))


def _sean() -> ls.SEANModel:
    return ls.SEANModel(ls.SEANConfig(image_size=(64, 64), ngf=8, spade_hidden_nc=8, style_dim=16,
                                      style_encoder_ngf=4, ndf=8))


def _cocosnet() -> ls.CoCosNetModel:
    model = ls.CoCosNetModel(ls.CoCosNetConfig(ngf=8, ndf=8, spade_hidden_nc=16, image_size=(64, 64)))
    randomize_weights(model)
    with torch.no_grad():
        model.generator.attn.gamma.fill_(0.5)  # 0 at init would hide the attention branch
    return model


def _oasis() -> ls.OASISModel:
    return ls.OASISModel(ls.OASISConfig.for_dataset("ade20k", ngf=4, spade_hidden_nc=8, ndf=4, image_size=(64, 64)))


def _inputs(model: ls.LabelSynthPreTrainedModel, batch: int, size: tuple[int, int], seed: int
            ) -> dict[str, torch.Tensor]:
    config = model.config
    high = config.label_nc
    inputs = {"label_map": _ids(batch, size, high, seed)}
    if config.model_type == "spade" and config.contain_dontcare_label:
        inputs["label_map"][:, :8, :8] = config.ignore_index  # the don't-care id maps to its channel in the graph
    family = config.model_type
    if getattr(config, "use_instance_edges", False):
        inputs["instance_map"] = _ids(batch, size, 3, seed + 1, block=4) + 1000 * inputs["label_map"]
    if family == "spade" and config.use_vae:
        inputs["noise"] = torch.randn(batch, config.z_dim, generator=torch.Generator().manual_seed(seed))
    if family == "pix2pixhd":
        inputs["features"] = torch.randn(batch, config.feat_num, *size, generator=torch.Generator().manual_seed(seed))
    if family == "crn":
        inputs["output_index"] = torch.arange(batch) % config.num_outputs
    if family == "sean":
        inputs["style_image"] = _image(batch, size, seed)
        inputs["style_label_map"] = _ids(batch, size, high, seed + 2)
    if family == "oasis":  # the 3D noise, one vector per image
        inputs["noise"] = torch.randn(batch, config.z_dim, generator=torch.Generator().manual_seed(seed))
    if family == "cocosnet":
        inputs["exemplar"] = _image(batch, size, seed)
        inputs["exemplar_label_map"] = _ids(batch, size, high, seed + 2)
    return inputs


FIXED = {"pix2pix": {"test_mode": "eval"}, "sean": {"add_noise": False}}
FAMILIES: dict[str, Callable[[], ls.LabelSynthPreTrainedModel]] = {
    "spade": _spade, "pix2pix": _pix2pix, "pix2pixhd": _pix2pixhd, "crn": _crn,
    "sean": _sean, "cocosnet": _cocosnet, "oasis": _oasis,
}


def _plain(model: ls.LabelSynthPreTrainedModel, inputs: dict[str, torch.Tensor]) -> np.ndarray:
    """Our plain fp32 path through the public forward."""
    fast = getattr(model, "fast_inference", None)  # pix2pix, pix2pixHD and CRN have one path only
    model.fast_inference = False
    try:
        with torch.no_grad():
            return model(**inputs, **FIXED.get(model.config.model_type, {})).images.numpy()
    finally:
        if fast is None:
            del model.fast_inference
        else:
            model.fast_inference = fast


def _run(path: Path, inputs: dict[str, torch.Tensor]) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["images"], {name: value.numpy() for name, value in inputs.items()})[0]


@pytest.mark.parametrize("family", list(FAMILIES))
def test_onnxruntime_equals_the_plain_path(family: str, tmp_path: Path) -> None:
    model = FAMILIES[family]().eval()
    if family != "cocosnet":
        randomize_weights(model)
    path = model.export_onnx(tmp_path / f"{family}.onnx", dynamic_size=False)  # static sizes export twice as fast
    assert getattr(model, "fast_inference", True) and not model.training and model.dtype == torch.float32  # as it was
    size = tuple(model.config.image_size)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == list(_inputs(model, 1, size, 0))
    for batch in (1, 3):  # the batch was traced at 2: both sizes run through the same file
        inputs = _inputs(model, batch, size, seed=batch)
        expected, got = _plain(model, inputs), _run(path, inputs)
        assert got.shape == (batch, 3, *size)
        assert expected.std() > 0.05  # a visible image, so that parity means something
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)
    meta = read_metadata(path)
    assert meta["model_type"] == meta["config"]["model_type"] == model.config.model_type
    assert meta["config"]["label_nc"] == model.config.label_nc
    space, expected_space = meta["label_space"], get_label_space(model.config.label_space)
    assert space["name"] == model.config.label_space and space["names"] == list(expected_space.names)
    assert meta["palette"] == space["palette"] == expected_space.palette.tolist()
    assert [i["name"] for i in meta["inputs"]] == list(inputs)


def test_dynamic_size_runs_other_valid_sizes(tmp_path: Path) -> None:
    model = _crn().eval()
    randomize_weights(model)
    path = model.export_onnx(tmp_path / "crn.onnx")
    meta = read_metadata(path)
    assert meta["size"]["dynamic"] and meta["size"]["multiple"] == model.config.downsampling_factor
    assert meta["inputs"][0]["shape"] == ["batch", "height", "width"]
    for size in ((16, 32), (32, 16), (24, 40)):  # multiples of the model's factor, not the traced size only
        inputs = _inputs(model, 2, size, seed=size[0])
        np.testing.assert_allclose(_run(path, inputs), _plain(model, inputs), rtol=0, atol=1e-4)


def test_fixed_size_model_exports_its_size_only(tmp_path: Path) -> None:
    model = _spade().eval()
    with pytest.raises(ValueError, match="exactly"):
        model.export_onnx(tmp_path / "bad.onnx", example_size=(128, 128))


def test_fp16_export(tmp_path: Path) -> None:
    model = _crn().eval()
    randomize_weights(model)
    path = model.export_onnx(tmp_path / "crn16.onnx", dtype="fp16", dynamic_size=False)
    assert model.dtype == torch.float32  # restored
    inputs = _inputs(model, 2, (16, 32), seed=0)
    got = _run(path, inputs)
    assert got.dtype == np.float16 and read_metadata(path)["output"]["dtype"] == "float16"
    np.testing.assert_allclose(got.astype(np.float32), _plain(model, inputs), rtol=0, atol=2e-2)


def test_export_errors(tmp_path: Path) -> None:
    model = _crn().eval()
    with pytest.raises(ValueError, match="dtype must be one of"):
        model.export_onnx(tmp_path / "a.onnx", dtype="int8")
    with pytest.raises(ValueError, match="multiples of 4"):
        model.export_onnx(tmp_path / "a.onnx", example_size=(18, 32))
    with pytest.raises(TypeError, match="not a generator"):
        from labelsynth.export.onnx import export_onnx

        export_onnx(ls.SPADEDiscriminator(ls.SPADEConfig(ngf=8, ndf=8, image_size=(64, 64))), tmp_path / "d.onnx")


def test_cli_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = _crn().eval()
    randomize_weights(model)
    folder = save_model_folder(tmp_path / "crn", model)
    out = tmp_path / "g.onnx"
    assert main(["export", "onnx", "--model", str(folder), "-o", str(out), "--static-size"]) == 0
    assert "wrote" in capsys.readouterr().err
    inputs = _inputs(model, 2, (16, 32), seed=5)
    np.testing.assert_allclose(_run(out, inputs), _plain(model, inputs), rtol=0, atol=1e-4)
    assert read_metadata(out)["label_space"]["name"] == "cityscapes"


@pytest.mark.parametrize(("argv", "message"), [
    (["-o", "{tmp}/g.png"], "ending in .onnx"),
    (["--model", "{tmp}/missing", "-o", "{tmp}/g.onnx"], "no such folder"),
    (["--model", "{folder}", "-o", "{tmp}/g.onnx", "--size", "18x32"], "multiples of 4"),
    (["--model", "{folder}", "-o", "{tmp}/g.onnx", "--size", "big"], "expected HxW"),
])
def test_cli_export_errors(argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = save_model_folder(tmp_path / "crn", _crn())
    argv = [a.format(tmp=tmp_path, folder=folder) for a in argv]
    assert main(["export", "onnx", *argv]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "g.onnx").exists()
