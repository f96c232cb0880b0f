"""SPADE generator inference speed: the plain path (the paper's computation, numerically identical to the original
implementation) against labelsynth's fast path in float32 and in bfloat16, measured side by side in one run.

    python benchmarks/bench_spade_inference.py                      # ADE20K 256x256, batch 1, 2 threads
    python benchmarks/bench_spade_inference.py --preset cityscapes --rounds 5

The paths are timed interleaved (one forward of each per round) so machine load affects them alike; the table shows
median ms/image, GFLOP/s (the plain path's FLOPs, counted with FlopCounterMode, divided by the time: useful work per
second) and the speed-up over the plain path. Accuracy is checked on the same inputs: max abs difference of the fast
float32 path, and PSNR of bfloat16 against float32. Random weights are given the output range of a trained model
(BatchNorm statistics calibrated on label maps, output layer scaled to an image-like spread) so that the PSNR is
measured on images rather than on a near-constant output.

Instruction set and load (issue 17): `ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2`
limits oneDNN's, torch's own and MKL's matrix kernels to AVX2, approximating an AVX2-only CPU (e.g. AMD EPYC before
Zen 4) on an AVX-512 machine; the line after the machine summary shows what is in effect. `--background-load N`
starts N processes that multiply 256x256 matrices on 1 thread each during the timed rounds (stopped at the end), a
reproducible stand-in for other jobs sharing the cores (N=2 beside a 2-thread run on 2 cores: load average ~4):

    ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 \
        python benchmarks/bench_spade_inference.py --no-bf16 --threads 2 --background-load 2
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics

import numpy as np
import torch
from _inputs import SAMPLE_INSTANCES, SAMPLE_LABELS, block_maps, load_maps, make_trained_like
from _timing import BackgroundLoad, add_device_argument, interleaved_times, set_cpu_threads, synchronize
from torch.utils.flop_counter import FlopCounterMode

from labelsynth import SPADEConfig, SPADEModel
from labelsynth.utils.precision import machine_summary


def isa_summary() -> str:
    """The instruction sets the kernels may use: oneDNN's cap and ATen's dispatch level (both set by environment)."""
    return (f"ISA in use: oneDNN max {os.environ.get('ONEDNN_MAX_CPU_ISA', 'default (all the CPU has)')}, "
            f"ATen {torch.backends.cpu.get_cpu_capability()}, "
            f"MKL {os.environ.get('MKL_ENABLE_INSTRUCTIONS', 'default (all the CPU has)')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="ade20k", choices=sorted(SAMPLE_LABELS))
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds (each runs every path once)")
    parser.add_argument("--threads", type=int, default=2)
    add_device_argument(parser)
    parser.add_argument("--no-bf16", action="store_true", help="skip the bfloat16 path (slow where emulated)")
    parser.add_argument("--background-load", type=int, default=0, metavar="N",
                        help="run N single-threaded matmul processes during the timed rounds")
    parser.add_argument("--load-seconds", type=float, default=600.0, help="upper bound on the background load's life")
    args = parser.parse_args()
    if args.background_load < 0:
        raise ValueError(f"--background-load must be >= 0 processes, got {args.background_load}")
    print(machine_summary())  # what the numbers below ran on
    print(isa_summary())

    torch.manual_seed(0)
    device = args.device
    set_cpu_threads(device, args.threads)
    config = SPADEConfig.for_dataset(args.preset)
    size = tuple(config.image_size)
    maps = load_maps(SAMPLE_LABELS[args.preset], size, 8)
    source = "real label maps from ../shared/samples" if maps else "synthetic block maps"
    maps = maps or block_maps(size, config.label_nc, 8)
    instance_maps = load_maps(SAMPLE_INSTANCES.get(args.preset), size, 8) if config.use_instance_edges else None
    if config.use_instance_edges and instance_maps is None:
        instance_maps = maps  # class regions as instances
    model = SPADEModel(config).to(device)
    calib_labels = torch.stack(maps[:4]).to(device)
    calib_instances = torch.stack(instance_maps[:4]).to(device) if instance_maps else None
    make_trained_like(model, model.generator.conv_img, lambda: model(calib_labels, calib_instances))
    model_bf16 = copy.deepcopy(model).to(torch.bfloat16)

    labels = torch.stack([maps[-1 - i % len(maps)] for i in range(args.batch_size)]).to(device)
    instances = (torch.stack([instance_maps[-1 - i % len(instance_maps)] for i in range(args.batch_size)]).to(device)
                 if instance_maps else None)

    def run(net: SPADEModel, fast: bool) -> torch.Tensor:
        net.fast_inference = fast
        # no_grad rather than inference_mode: FlopCounterMode fails on spectral-norm parametrizations under the latter.
        with torch.no_grad():
            out = net(labels, instances).images.float()
        synchronize(device)
        return out

    paths = {"plain fp32": (model, False), "fast fp32": (model, True), "fast bf16": (model_bf16, True)}
    if args.no_bf16:
        del paths["fast bf16"]
    with FlopCounterMode(display=False) as counter:
        reference = run(model, False)
    gflop = counter.get_total_flops() / 1e9 / args.batch_size
    outputs = {name: run(*spec) for name, spec in paths.items()}  # warm-up (fast tables, weight caches)
    load_before = os.getloadavg()
    with BackgroundLoad(args.background_load, args.load_seconds):
        for name, spec in paths.items():  # one loaded forward each before timing, as the load ramps up
            run(*spec)
        times = interleaved_times({name: lambda spec=spec: run(*spec) for name, spec in paths.items()}, args.rounds,
                                  device, per=args.batch_size)
        load_after = os.getloadavg()

    print(f"SPADE {args.preset} {size[0]}x{size[1]}, batch {args.batch_size}, {args.threads} threads, "
          f"device {device}, torch {torch.__version__}; input: {source}")
    print(f"background load: {args.background_load} matmul processes; load average (1, 5, 15 min) before "
          f"{'/'.join(f'{v:.2f}' for v in load_before)}, at the end {'/'.join(f'{v:.2f}' for v in load_after)}")
    print(f"plain-path cost: {gflop:.1f} GFLOP/image; output std {reference.std():.3f}")
    print(f"{'path':<12}{'ms/image':>10}{'best ms':>9}{'GFLOP/s':>10}{'speed-up':>10}{'best':>7}   accuracy vs plain fp32")
    plain, plain_best = statistics.median(times["plain fp32"]), min(times["plain fp32"])
    for name, values in times.items():
        t, best = statistics.median(values), min(values)
        diff = (outputs[name] - reference).abs().max().item()
        mse = ((outputs[name] - reference) ** 2).mean().item()
        psnr = "inf" if mse == 0 else f"{10 * np.log10(4 / mse):.1f}"
        print(f"{name:<12}{t * 1000:>10.0f}{best * 1000:>9.0f}{gflop / t:>10.0f}{plain / t:>9.2f}x"
              f"{plain_best / best:>6.2f}x   max abs diff {diff:.1e}, PSNR {psnr} dB")


if __name__ == "__main__":
    main()
