"""bf16 only where the CPU has it natively: detection from torch's probes (monkeypatched both ways), the fallback
to float32 with one warning in the pipeline, the CLI and the trainer, and the override."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from helpers import save_model_folder

from labelsynth import SPADEConfig, SPADEModel, pipeline
from labelsynth.cli._common import resolve_dtype
from labelsynth.training.trainer import training_mixed_precision
from labelsynth.utils import precision
from labelsynth.utils.precision import (
    ALLOW_SLOW_BF16_ENV,
    SlowBF16Warning,
    cpu_dtype,
    cpu_features,
    has_native_bf16,
    machine_summary,
)

PROBES = ("_is_avx2_supported", "_is_avx512_supported", "_is_avx512_bf16_supported", "_is_amx_tile_supported")


def _cpu(monkeypatch: pytest.MonkeyPatch, *, avx512_bf16: bool, amx: bool) -> None:
    """Pretend to be a CPU with (or without) native bf16; every warning may be given again."""
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
    monkeypatch.setattr(precision, "_warned", set())
    monkeypatch.delenv(ALLOW_SLOW_BF16_ENV, raising=False)


@pytest.mark.parametrize(("avx512_bf16", "amx", "native"), [(False, False, False), (True, False, True),
                                                            (False, True, True), (True, True, True)])
def test_detection_follows_the_probes(monkeypatch: pytest.MonkeyPatch, avx512_bf16: bool, amx: bool,
                                      native: bool) -> None:
    _cpu(monkeypatch, avx512_bf16=avx512_bf16, amx=amx)
    features = cpu_features()
    assert (features.avx512_bf16, features.amx) == (avx512_bf16, amx)
    assert has_native_bf16() is native


def test_missing_or_failing_probes_mean_unsupported(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROBES:
        monkeypatch.delattr(torch.cpu, name, raising=False)
    assert cpu_features() == precision.CPUFeatures(False, False, False, False)

    def broken() -> bool:
        raise RuntimeError("no cpuinfo")

    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", broken, raising=False)
    assert not has_native_bf16()


def test_emulated_bf16_falls_back_to_float32_with_one_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    _cpu(monkeypatch, avx512_bf16=False, amx=False)
    with pytest.warns(SlowBF16Warning, match=f"float32 is used instead.*{ALLOW_SLOW_BF16_ENV}=1"):
        assert cpu_dtype(torch.bfloat16, "cpu", what="x") == torch.float32
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once: a second request says nothing more
        assert cpu_dtype(torch.bfloat16, None, what="x") == torch.float32
        # Not bf16, or not the CPU: untouched, and no probe is needed.
        assert cpu_dtype(torch.float32, "cpu") == torch.float32
        assert cpu_dtype(torch.float16, "cpu") == torch.float16
        assert cpu_dtype(None, "cpu") is None
        assert cpu_dtype(torch.bfloat16, "cuda") == torch.bfloat16
        assert cpu_dtype(torch.bfloat16, torch.device("cuda", 0)) == torch.bfloat16


def test_native_bf16_and_the_override_keep_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    _cpu(monkeypatch, avx512_bf16=True, amx=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cpu_dtype(torch.bfloat16, "cpu") == torch.bfloat16
    _cpu(monkeypatch, avx512_bf16=False, amx=False)
    monkeypatch.setenv(ALLOW_SLOW_BF16_ENV, "1")
    with pytest.warns(SlowBF16Warning, match=f"emulated.*kept because {ALLOW_SLOW_BF16_ENV}"):
        assert cpu_dtype(torch.bfloat16, "cpu") == torch.bfloat16


def test_machine_summary_names_the_features() -> None:
    summary = machine_summary()
    assert torch.__version__ in summary
    for flag in ("AVX2=", "AVX512=", "AVX512-BF16=", "AMX=", "torch threads"):
        assert flag in summary


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = SPADEConfig(label_space="cityscapes", label_nc=35, ngf=4, image_size=(64, 64), spade_hidden_nc=8)
    return save_model_folder(tmp_path_factory.mktemp("spade"), SPADEModel(config).eval())


def test_pipeline_runs_emulated_bf16_in_float32(monkeypatch: pytest.MonkeyPatch, tiny_folder: Path) -> None:
    _cpu(monkeypatch, avx512_bf16=False, amx=False)
    with pytest.warns(SlowBF16Warning, match="label-to-image pipeline.*emulated"):
        pipe = pipeline("label-to-image", model=str(tiny_folder), dtype=torch.bfloat16)
    assert pipe.model.dtype == torch.float32
    assert pipe(torch.zeros(64, 64, dtype=torch.long), output_type="np").shape == (64, 64, 3)


def test_pipeline_keeps_bf16_where_native_or_insisted(monkeypatch: pytest.MonkeyPatch, tiny_folder: Path) -> None:
    _cpu(monkeypatch, avx512_bf16=False, amx=True)
    assert pipeline("label-to-image", model=str(tiny_folder), dtype=torch.bfloat16).model.dtype == torch.bfloat16
    _cpu(monkeypatch, avx512_bf16=False, amx=False)
    monkeypatch.setenv(ALLOW_SLOW_BF16_ENV, "1")
    with pytest.warns(SlowBF16Warning, match="kept"):
        pipe = pipeline("label-to-image", model=str(tiny_folder), dtype=torch.bfloat16)
    assert pipe.model.dtype == torch.bfloat16


def test_cli_dtype_falls_back_with_a_message(monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    _cpu(monkeypatch, avx512_bf16=False, amx=False)
    assert resolve_dtype("bfloat16", "cpu") == "float32"
    assert "labelsynth: warning: --dtype bfloat16" in capsys.readouterr().err
    assert resolve_dtype("bfloat16", "cuda") == "bfloat16"
    assert resolve_dtype("float32", "cpu") == "float32"
    _cpu(monkeypatch, avx512_bf16=True, amx=False)
    assert resolve_dtype("bfloat16", "cpu") == "bfloat16"
    assert capsys.readouterr().err == ""


def test_trainer_bf16_on_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    _cpu(monkeypatch, avx512_bf16=False, amx=False)
    with pytest.warns(SlowBF16Warning, match="--mixed_precision bf16 .*float32 is used instead"):
        assert training_mixed_precision("bf16", on_cpu=True) == "no"
    assert training_mixed_precision("bf16", on_cpu=False) == "bf16"  # GPU runs keep it
    assert training_mixed_precision("fp16", on_cpu=True) == "fp16"
    assert training_mixed_precision("no", on_cpu=True) == "no"
    monkeypatch.setenv(ALLOW_SLOW_BF16_ENV, "yes")
    with pytest.warns(SlowBF16Warning, match="kept"):
        assert training_mixed_precision("bf16", on_cpu=True) == "bf16"
    _cpu(monkeypatch, avx512_bf16=True, amx=False)
    assert training_mixed_precision("bf16", on_cpu=True) == "bf16"
