"""pix2pix generator (U-Net 256) inference speed, measured side by side in one run: the plain float32 eval path
(numerically identical to the original implementation), the original test mode (dropout + batch statistics),
channels-last float32, bfloat16, and a batch of 4.

    python benchmarks/bench_pix2pix_inference.py                   # Cityscapes colour labels 256x256, 2 threads
    python benchmarks/bench_pix2pix_inference.py --input-encoding one_hot --rounds 9

Paths are timed interleaved (one forward of each per round) so machine load affects them alike; the table shows the
median ms/image, GFLOP/s (conv FLOPs counted with FlopCounterMode divided by the time) and the speed-up over plain
float32. Accuracy against plain float32 is checked on the same inputs (max abs difference, PSNR). BatchNorm statistics
are calibrated on real label maps and the output layer is scaled to an image-like spread, so the PSNR is measured on
images rather than on a near-constant output.
"""

from __future__ import annotations

import argparse
import copy
import statistics

import numpy as np
import torch
from _inputs import SAMPLE_LABELS, block_maps, load_maps, make_trained_like
from _timing import add_device_argument, interleaved_times, set_cpu_threads, synchronize
from torch.utils.flop_counter import FlopCounterMode

from labelsynth import Pix2PixConfig, Pix2PixModel
from labelsynth.utils.precision import machine_summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input-encoding", default="color", choices=["color", "one_hot"])
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds (each runs every path once)")
    parser.add_argument("--threads", type=int, default=2)
    add_device_argument(parser)
    args = parser.parse_args()
    print(machine_summary())  # what the numbers below ran on

    torch.manual_seed(0)
    device = args.device
    set_cpu_threads(device, args.threads)
    config = Pix2PixConfig.for_dataset("cityscapes", input_encoding=args.input_encoding, test_mode="eval")
    size = tuple(config.image_size)
    maps = load_maps(SAMPLE_LABELS["cityscapes"], size, 8)
    source = "real Cityscapes label maps from ../shared/samples" if maps else "synthetic block maps"
    maps = maps or block_maps(size, 35, 8)
    model = Pix2PixModel(config).to(device)
    calib_labels = torch.stack(maps[:4]).to(device)
    make_trained_like(model, model.generator.levels[0].up_conv, lambda: model(calib_labels))
    channels_last = copy.deepcopy(model).to(memory_format=torch.channels_last)
    bf16 = copy.deepcopy(model).to(torch.bfloat16)
    one, four = maps[-1][None].to(device), torch.stack(maps[-4:]).to(device)

    def run(net: Pix2PixModel, labels: torch.Tensor, mode: str = "eval") -> torch.Tensor:
        with torch.inference_mode():
            out = net(labels, test_mode=mode, generator=torch.Generator(device=device).manual_seed(0)).images.float()
        synchronize(device)
        return out

    paths = {
        "plain fp32": (lambda: run(model, one), 1),
        "original test mode fp32": (lambda: run(model, one, "original"), 1),
        "channels-last fp32": (lambda: run(channels_last, one), 1),
        "bf16": (lambda: run(bf16, one), 1),
        "plain fp32, batch 4": (lambda: run(model, four)[-1:], 4),
    }
    with FlopCounterMode(display=False) as counter:
        reference = run(model, one)
    gflop = counter.get_total_flops() / 1e9
    outputs = {name: fn() for name, (fn, _) in paths.items()}  # warm-up
    times = interleaved_times({name: fn for name, (fn, _) in paths.items()}, args.rounds, device,
                              per={name: batch for name, (_, batch) in paths.items()})

    print(f"pix2pix unet_256 ({args.input_encoding} input) 256x256, {args.threads} threads, device {device}, "
          f"torch {torch.__version__}; input: {source}")
    print(f"cost: {gflop:.2f} GFLOP/image; output std {reference.std():.3f}")
    print(f"{'path':<26}{'ms/image':>10}{'GFLOP/s':>10}{'speed-up':>10}   accuracy vs plain fp32 (batch-1 image)")
    plain = statistics.median(times["plain fp32"])
    for name, values in times.items():
        t = statistics.median(values)
        diff = (outputs[name] - reference).abs().max().item()
        mse = ((outputs[name] - reference) ** 2).mean().item()
        psnr = "inf" if mse == 0 else f"{10 * np.log10(4 / mse):.1f}"
        note = " (different computation)" if "original" in name else ""
        print(f"{name:<26}{t * 1000:>10.1f}{gflop / t:>10.0f}{plain / t:>9.2f}x   max abs diff {diff:.1e}, "
              f"PSNR {psnr} dB{note}")


if __name__ == "__main__":
    main()
