"""CRN generator inference speed: float32 (the paper's computation, matching the original TF graph) against
channels-last memory layout and bfloat16 weights, measured side by side in one run.

    python benchmarks/bench_crn_inference.py                              # Cityscapes 256p (k = 9), batch 1
    python benchmarks/bench_crn_inference.py --preset cityscapes-512p --rounds 3
    python benchmarks/bench_crn_inference.py --width-divisor 4            # a 16x cheaper model for a quick look

The paths are timed interleaved (one forward of each per round) so machine load affects them alike; the table shows
median ms/image, GFLOP/s (FLOPs counted with FlopCounterMode divided by the time) and the speed-up over plain
float32. Accuracy against plain float32 is checked on the same input (all k candidates): max abs difference and
PSNR. The input is a real Cityscapes label map from ../shared/samples when present, else random blocks.
"""

from __future__ import annotations

import argparse
import copy
import statistics
from pathlib import Path

import numpy as np
import torch
from _timing import add_device_argument, interleaved_times, set_cpu_threads, synchronize
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode

from labelsynth import CRNConfig, CRNModel
from labelsynth.models.crn import CRN_PRESETS
from labelsynth.utils.precision import machine_summary

SAMPLES = Path(__file__).resolve().parents[1] / ".." / "shared" / "samples" / "pix2pixHD_cityscapes" / "test_label"


def label_map(config: CRNConfig, batch_size: int) -> tuple[torch.Tensor, str]:
    height, width = config.image_size
    files = sorted(SAMPLES.glob("*.png")) if SAMPLES.is_dir() else []
    if files:
        ids = np.array(Image.open(files[0]).resize((width, height), Image.NEAREST)).astype(np.int64)
        return torch.from_numpy(ids).expand(batch_size, -1, -1), f"real Cityscapes labelIds ({files[0].name})"
    coarse = torch.randint(0, config.label_nc, (batch_size, 1, height // 16, width // 16),
                           generator=torch.Generator().manual_seed(0)).float()
    return torch.nn.functional.interpolate(coarse, size=(height, width))[:, 0].long(), "synthetic block map"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="cityscapes-256p", choices=sorted(CRN_PRESETS))
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds (each runs every path once)")
    parser.add_argument("--threads", type=int, default=2)
    add_device_argument(parser)
    parser.add_argument("--width-divisor", type=int, default=1, help="divide every module width (quick runs)")
    args = parser.parse_args()
    print(machine_summary())  # what the numbers below ran on

    torch.manual_seed(0)
    device = args.device
    set_cpu_threads(device, args.threads)
    config = CRNConfig.for_dataset(args.preset)
    config.module_channels = [max(1, c // args.width_divisor) for c in config.module_channels]
    model = CRNModel(config).eval().to(device)
    models = {"fp32": model, "fp32 channels-last": copy.deepcopy(model).to(memory_format=torch.channels_last),
              "bf16": copy.deepcopy(model).to(torch.bfloat16),
              "bf16 channels-last": copy.deepcopy(model).to(torch.bfloat16, memory_format=torch.channels_last)}
    labels, source = label_map(config, args.batch_size)
    labels = labels.to(device)

    def run(net: CRNModel) -> torch.Tensor:
        with torch.inference_mode():
            out = net(labels).candidates.float()
        synchronize(device)
        return out

    with FlopCounterMode(display=False) as counter:
        reference = run(model)
    gflop = counter.get_total_flops() / 1e9 / args.batch_size
    outputs = {name: run(net) for name, net in models.items()}  # warm-up
    times = interleaved_times({name: lambda net=net: run(net) for name, net in models.items()}, args.rounds, device,
                              per=args.batch_size)

    height, width = config.image_size
    print(f"CRN {args.preset} {height}x{width}, widths {config.module_channels}, k={config.num_outputs}, batch "
          f"{args.batch_size}, {args.threads} threads, device {device}, torch {torch.__version__}; input: {source}")
    print(f"cost: {gflop:.1f} GFLOP/image; output std {reference.std():.3f}")
    print(f"{'path':<20}{'ms/image':>10}{'GFLOP/s':>10}{'speed-up':>10}   accuracy vs fp32 (all k images)")
    plain = statistics.median(times["fp32"])
    for name, values in times.items():
        t = statistics.median(values)
        diff = (outputs[name] - reference).abs().max().item()
        mse = ((outputs[name] - reference) ** 2).mean().item()
        psnr = "inf" if mse == 0 else f"{10 * np.log10(4 / mse):.1f}"
        print(f"{name:<20}{t * 1000:>10.0f}{gflop / t:>10.0f}{plain / t:>9.2f}x   max abs diff {diff:.1e}, PSNR {psnr} dB")


if __name__ == "__main__":
    main()
