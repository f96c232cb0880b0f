"""Winograd F(4x4, 3x3) against oneDNN's direct convolution, layer by layer (float32, CPU), side by side in one run.

    python benchmarks/bench_winograd.py                 # 2 threads, the layer shapes of the released generators
    python benchmarks/bench_winograd.py --threads 1 --rounds 9

For each shape (C_in -> C_out at H x W, batch 1, padded input): median ms of the direct convolution and of
`winograd_conv3x3` (timed interleaved), the speed-up, whether `winograd_pays` routes the layer to Winograd, and the
max abs error of both against a float64 convolution (weights scaled for unit-variance outputs). This is the table
`winograd_pays`' threshold comes from.
"""

from __future__ import annotations

import argparse
import statistics

import torch
import torch.nn.functional as F
from _timing import interleaved_times

from labelsynth.layers.winograd import winograd_conv3x3, winograd_pays, winograd_weight
from labelsynth.utils.precision import machine_summary

# (C_in, C_out, size): CoCosNet's mask-mixing blocks (416) and adaptors (512, 128 -> 1024 gamma/beta), the translation
# networks' blocks from 4x4 to 256x256 (SPADE, SEAN, CoCosNet, the compressed GauGAN's low levels), and thin
# high-resolution layers; the small ones around the bound on C_in * C_out * H * W.
SHAPES = [(416, 416, 64), (512, 512, 64), (512, 256, 64), (128, 1024, 64), (256, 256, 64), (1024, 1024, 16),
          (1024, 512, 32), (128, 2048, 32), (128, 2048, 16), (256, 512, 128), (256, 128, 128), (128, 256, 128),
          (128, 256, 256), (128, 128, 256), (64, 64, 256), (1024, 1024, 8), (1024, 1024, 4), (1024, 512, 8),
          (512, 512, 8), (256, 256, 16), (256, 256, 8), (128, 1024, 8)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(machine_summary())  # what the numbers below ran on
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), median of {args.rounds} interleaved rounds")
    print(f"{'layer':>22} | {'direct ms':>9} | {'winograd ms':>11} | {'speed-up':>8} | {'routed':>6} | "
          f"{'direct err':>10} | {'winograd err':>12}")
    generator = torch.Generator().manual_seed(0)
    for c_in, c_out, size in SHAPES:
        x = torch.randn(1, c_in, size + 2, size + 2, generator=generator).contiguous(memory_format=torch.channels_last)
        weight = torch.randn(c_out, c_in, 3, 3, generator=generator) / (9 * c_in) ** 0.5
        bias = torch.randn(c_out, generator=generator)
        direct_weight, transformed = weight.contiguous(memory_format=torch.channels_last), winograd_weight(weight)
        runs = {"direct": lambda: F.conv2d(x, direct_weight, bias),
                "winograd": lambda: winograd_conv3x3(x, transformed, bias)}
        exact = F.conv2d(x.double(), weight.double(), bias.double())
        errors = {name: (run().double() - exact).abs().max().item() for name, run in runs.items()}  # also warm-up
        times = interleaved_times(runs, args.rounds, torch.device("cpu"))
        direct, wino = (statistics.median(times[name]) * 1e3 for name in runs)
        routed = "yes" if winograd_pays(c_in, c_out, size, size) else "no"
        print(f"{f'{c_in} -> {c_out} @ {size}x{size}':>22} | {direct:9.1f} | {wino:11.1f} | {direct / wino:7.2f}x | "
              f"{routed:>6} | {errors['direct']:10.1e} | {errors['winograd']:12.1e}")


if __name__ == "__main__":
    main()
