"""Where bfloat16 pays on the CPU, and what to do where it does not.

oneDNN runs bf16 convolutions natively only on CPUs with AVX512-BF16 or AMX (Intel Cooper Lake / Sapphire Rapids
and later, AMD Zen 4 and later). Elsewhere it emulates them, and a bf16 model is not a little faster but many
times *slower* than in float32 (see `docs/performance.md`). This module detects native support from torch's own CPU
probes and picks the precision accordingly:

* `cpu_dtype(dtype, device)`: bf16 requested on a CPU without native bf16 falls back to float32 with one warning
  (`SlowBF16Warning`), unless ``LABELSYNTH_ALLOW_SLOW_BF16=1`` insists on bf16 (then the warning still says how much
  slower it is). Every other dtype/device is returned unchanged (CUDA bf16 is never touched).
* `machine_summary()`: the one-line description of the machine every benchmark prints (torch version, CPU model,
  instruction sets, threads), so a number always comes with what it ran on.

A leaf module: it imports torch only (no transformers), so the CLI can use it without slowing ``--help``.
"""

from __future__ import annotations

import os
import platform
import warnings
from dataclasses import dataclass

import torch

__all__ = ["ALLOW_SLOW_BF16_ENV", "CPUFeatures", "SlowBF16Warning", "allow_slow_bf16", "cpu_dtype", "cpu_features",
           "has_native_bf16", "machine_summary"]

ALLOW_SLOW_BF16_ENV = "LABELSYNTH_ALLOW_SLOW_BF16"

# Measured side by side (one 256->256 3x3 convolution at 64x64, batch 1; `benchmarks/bench_bf16_conv.py`): bf16 took
# about 300x the fp32 time on an AMD EPYC with AVX2 only (38 s vs 0.12 s) and 3.5x on an Intel Xeon with AVX-512
# but without AVX512-BF16 (docs/performance.md).
_SLOWDOWN = "3x (AVX-512) to 300x (AVX2 only)"


class SlowBF16Warning(UserWarning):
    """bfloat16 was requested on a CPU that only emulates it."""


@dataclass(frozen=True)
class CPUFeatures:
    """Instruction sets torch reports for this CPU (all False where torch has no probe for one)."""

    avx2: bool
    avx512: bool
    avx512_bf16: bool
    amx: bool

    @property
    def native_bf16(self) -> bool:
        """True where oneDNN runs bf16 matrix work in hardware (AVX512-BF16 or AMX tiles)."""
        return self.avx512_bf16 or self.amx


def _probe(name: str) -> bool:
    # The probes are private torch API (torch.cpu._is_*_supported); a torch without one reads as "not supported".
    probe = getattr(torch.cpu, name, None)
    try:
        return bool(probe()) if callable(probe) else False
    except (RuntimeError, OSError):  # a probe that cannot run on this build says nothing about the CPU
        return False


def cpu_features() -> CPUFeatures:
    """The CPU's AVX2 / AVX-512 / AVX512-BF16 / AMX support as torch detects it."""
    return CPUFeatures(avx2=_probe("_is_avx2_supported"), avx512=_probe("_is_avx512_supported"),
                       avx512_bf16=_probe("_is_avx512_bf16_supported"), amx=_probe("_is_amx_tile_supported"))


def has_native_bf16() -> bool:
    """True if this CPU computes bf16 convolutions/matmuls natively (AVX512-BF16 or AMX)."""
    return cpu_features().native_bf16


def allow_slow_bf16() -> bool:
    """True when ``LABELSYNTH_ALLOW_SLOW_BF16`` is set to 1/true/yes: keep bf16 even where it is emulated."""
    return os.environ.get(ALLOW_SLOW_BF16_ENV, "").strip().lower() in ("1", "true", "yes")


_warned: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        warnings.warn(message, SlowBF16Warning, stacklevel=3)


def cpu_dtype(dtype: torch.dtype | None, device: torch.device | str | int | None, *, what: str = "the model"
              ) -> torch.dtype | None:
    """The dtype to actually run `what` in: bf16 on a CPU without native bf16 becomes float32 (with one warning).

    Args:
        dtype: the requested dtype (None and every dtype but bfloat16 pass through).
        device: where it runs; only a CPU device (or None, meaning the CPU) is checked.
        what: how the warning names what was asked for bf16 (``"the pipeline"``, ``"--mixed_precision bf16"``).

    Returns:
        `dtype`, or `torch.float32` where bf16 would be emulated and ``LABELSYNTH_ALLOW_SLOW_BF16`` is not set.
    """
    if dtype != torch.bfloat16 or (device is not None and torch.device(device).type != "cpu"):
        return dtype
    features = cpu_features()
    if features.native_bf16:
        return dtype
    cpu = "AVX-512 without AVX512-BF16/AMX" if features.avx512 else "no AVX512-BF16/AMX"
    if allow_slow_bf16():
        _warn_once(f"{what}: bfloat16 on this CPU ({cpu}) is emulated by oneDNN and runs {_SLOWDOWN} slower than "
                   f"float32; kept because {ALLOW_SLOW_BF16_ENV} is set. bf16 pays on CUDA and on CPUs with "
                   "AVX512-BF16 or AMX.")
        return dtype
    _warn_once(f"{what}: bfloat16 on this CPU ({cpu}) is emulated by oneDNN and would run {_SLOWDOWN} slower than "
               f"float32, so float32 is used instead. bf16 pays on CUDA and on CPUs with AVX512-BF16 or AMX; set "
               f"{ALLOW_SLOW_BF16_ENV}=1 to keep bf16 anyway.")
    return torch.float32


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_summary() -> str:
    """One line naming what a measurement ran on: torch version, CPU model and instruction sets, threads, GPU."""
    f = cpu_features()
    flags = " ".join(f"{name}={'yes' if value else 'no'}" for name, value in
                     (("AVX2", f.avx2), ("AVX512", f.avx512), ("AVX512-BF16", f.avx512_bf16), ("AMX", f.amx)))
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return (f"torch {torch.__version__}, CPU {_cpu_model()} ({os.cpu_count()} logical cores), {flags}, "
            f"native bf16: {'yes' if f.native_bf16 else 'no (emulated)'}, torch threads {torch.get_num_threads()}, "
            f"GPU {gpu}")
