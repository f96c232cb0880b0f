"""pix2pixHD generator inference speed: float32 (the paper's computation, identical to the original implementation)
against channels-last memory layout and bfloat16 weights, measured side by side in one run.

    python benchmarks/bench_pix2pixhd_inference.py                                 # global G (512p recipe), 256x512
    python benchmarks/bench_pix2pixhd_inference.py --preset cityscapes-1024p --size 512 1024 --rounds 3

The paths are timed interleaved (one forward of each per round) so machine load affects them alike; the table shows
median ms/image, GFLOP/s (the float32 path's FLOPs, counted with FlopCounterMode, divided by the time) and the
speed-up over plain float32. Accuracy is checked on the same inputs: max abs difference and PSNR against plain
float32. Inputs are real Cityscapes label and instance maps from ../shared/samples when present. Random weights get a
variance-preserving scale so that the output is an image-like spread rather than the flat grey of the paper init.
"""

from __future__ import annotations

import argparse
import copy
import statistics

import numpy as np
import torch
from _inputs import block_maps, load_maps, randomize
from _timing import add_device_argument, interleaved_times, set_cpu_threads, synchronize
from torch.utils.flop_counter import FlopCounterMode

from labelsynth import Pix2PixHDConfig, Pix2PixHDModel
from labelsynth.models.pix2pixhd.configuration_pix2pixhd import PIX2PIXHD_PRESETS
from labelsynth.utils.precision import machine_summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="cityscapes-512p", choices=sorted(PIX2PIXHD_PRESETS))
    parser.add_argument("--size", type=int, nargs=2, default=(256, 512), metavar=("HEIGHT", "WIDTH"))
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds (each runs every path once)")
    parser.add_argument("--threads", type=int, default=2)
    add_device_argument(parser)
    args = parser.parse_args()
    print(machine_summary())  # what the numbers below ran on

    torch.manual_seed(0)
    device = args.device
    set_cpu_threads(device, args.threads)
    size = tuple(args.size)
    config = Pix2PixHDConfig.for_dataset(args.preset)
    model = Pix2PixHDModel(config).eval()
    randomize(model)
    if config.use_features:
        model.set_feature_clusters({label: torch.randn(4, config.feat_num) for label in range(config.label_nc)})
    model.to(device)
    maps = load_maps("pix2pixHD_cityscapes/train_label/*.png", size, args.batch_size)
    source = "real Cityscapes label/instance maps" if maps else "synthetic block maps"
    labels = torch.stack(maps or block_maps(size, 34, args.batch_size)).to(device)
    instances = load_maps("pix2pixHD_cityscapes/train_inst/*.png", size, args.batch_size) or list(labels)
    instances = torch.stack(instances).to(device)

    models = {"fp32": model, "fp32 channels_last": copy.deepcopy(model).to(memory_format=torch.channels_last),
              "bf16": copy.deepcopy(model).to(torch.bfloat16),
              "bf16 channels_last": copy.deepcopy(model).to(torch.bfloat16, memory_format=torch.channels_last)}

    def run(net: Pix2PixHDModel) -> torch.Tensor:
        with torch.inference_mode():
            out = net(labels, instances, cluster=0 if config.use_features else None).images.float()
        synchronize(device)
        return out

    with FlopCounterMode(display=False) as counter:
        reference = run(model)
    gflop = counter.get_total_flops() / 1e9 / args.batch_size
    outputs = {name: run(net) for name, net in models.items()}  # warm-up
    times = interleaved_times({name: lambda net=net: run(net) for name, net in models.items()}, args.rounds, device,
                              per=args.batch_size)

    print(f"pix2pixHD {args.preset} ({config.generator_type} G, {sum(p.numel() for p in model.generator.parameters()):,}"
          f" params) at {size[0]}x{size[1]}, batch {args.batch_size}, {args.threads} threads, device {device}, "
          f"torch {torch.__version__}; input: {source}")
    print(f"cost: {gflop:.1f} GFLOP/image; output std {reference.std():.3f}")
    print(f"{'path':<20}{'ms/image':>10}{'GFLOP/s':>10}{'speed-up':>10}   accuracy vs fp32")
    plain = statistics.median(times["fp32"])
    for name, values in times.items():
        t = statistics.median(values)
        diff = (outputs[name] - reference).abs().max().item()
        mse = ((outputs[name] - reference) ** 2).mean().item()
        psnr = "inf" if mse == 0 else f"{10 * np.log10(4 / mse):.1f}"
        print(f"{name:<20}{t * 1000:>10.0f}{gflop / t:>10.0f}{plain / t:>9.2f}x   max abs diff {diff:.1e}, "
              f"PSNR {psnr} dB")


if __name__ == "__main__":
    main()
