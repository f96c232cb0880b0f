"""Is bfloat16 a speed-up on this CPU? One 256->256 3x3 convolution at 64x64 (batch 1), float32 vs bfloat16.

On CPUs with AVX512-BF16 or AMX oneDNN runs bf16 natively; elsewhere it emulates it, many times slower than float32
(`labelsynth.utils.precision`). Usage: ``python benchmarks/bench_bf16_conv.py [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import time

import torch

from labelsynth.utils.precision import machine_summary


def time_conv(dtype: torch.dtype, repeats: int) -> float:
    """Best-of-`repeats` seconds for one forward of the convolution in `dtype` (after one warm-up)."""
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(256, 256, 3, padding=1).to(dtype)
    x = torch.randn(1, 256, 64, 64, dtype=dtype)
    best = float("inf")
    with torch.inference_mode():
        conv(x)
        for _ in range(repeats):
            start = time.perf_counter()
            conv(x)
            best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(machine_summary())
    fp32 = time_conv(torch.float32, args.repeats)
    bf16 = time_conv(torch.bfloat16, args.repeats)
    print(f"conv 256->256 3x3 at 64x64: float32 {fp32 * 1e3:.1f} ms, bfloat16 {bf16 * 1e3:.1f} ms "
          f"(bf16 is {bf16 / fp32:.1f}x the float32 time)")


if __name__ == "__main__":
    main()
