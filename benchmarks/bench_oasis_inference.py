"""OASIS generator inference speed: the plain path (the paper's computation, numerically identical to the original
implementation) against labelsynth's fast path in float32 and in bfloat16, and optionally against the original code,
measured side by side in one run.

    python benchmarks/bench_oasis_inference.py                          # ADE20K 256x256, batch 1, 2 threads
    python benchmarks/bench_oasis_inference.py --preset cityscapes --rounds 5
    OASIS_ORIGINAL=/path/to/boschresearch/OASIS python benchmarks/bench_oasis_inference.py   # or --original PATH

The paths are timed interleaved (one forward of each per round) so machine load affects them alike; the table shows
median ms/image, GFLOP/s (the plain path's FLOPs, counted with FlopCounterMode, divided by the time) and the
speed-up over the plain path and over the original code. Every path gets the same label map and noise (the original
draws its noise from the global RNG inside forward, re-seeded before each call to make the same draw; on CUDA it
draws from the GPU's RNG, so only its timing is comparable there). Accuracy: max abs difference to
the plain float32 path, and PSNR. Random weights are given the output range of a trained model (BatchNorm
statistics calibrated on label maps, output layer scaled to an image-like spread). The original code (AGPL-3.0) is
only imported from the path you give, never shipped.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import types

import numpy as np
import torch
from _inputs import SAMPLE_LABELS, block_maps, load_maps, make_trained_like
from _timing import add_device_argument, interleaved_times, set_cpu_threads, synchronize
from torch.utils.flop_counter import FlopCounterMode

from labelsynth import OASISConfig, OASISModel
from labelsynth.utils.precision import machine_summary

_LEGACY = {"parametrizations.weight.original": "weight_orig", "parametrizations.weight.0._u": "weight_u",
           "parametrizations.weight.0._v": "weight_v"}
NOISE_SEED = 1234


def original_generator(path: str, model: OASISModel, device: torch.device) -> torch.nn.Module:
    """The original `OASIS_Generator` (imported from `path`) holding `model`'s weights."""
    sys.path.insert(0, path)
    import models.generator as original  # the user's checkout of the original code

    config = model.config
    h, w = config.image_size
    opt = types.SimpleNamespace(channels_G=config.ngf, num_res_blocks=6, param_free_norm=config.param_free_norm,
                                spade_ks=config.spade_kernel_size, no_3dnoise=False, z_dim=config.z_dim,
                                no_spectral_norm=not config.spectral_norm, crop_size=w, aspect_ratio=w / h,
                                gpu_ids="-1" if device.type == "cpu" else "0", semantic_nc=config.num_label_channels)
    net = original.OASIS_Generator(opt)
    state = {}
    for key, value in model.state_dict().items():
        key = key.removeprefix("generator.").replace(".param_free_norm.", ".first_norm.")
        for new, old in _LEGACY.items():
            key = key.replace(new, old)
        state[key] = value
    net.load_state_dict(state)
    return net.to(device).eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="ade20k", choices=sorted(SAMPLE_LABELS))
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds (each runs every path once)")
    parser.add_argument("--threads", type=int, default=2)
    add_device_argument(parser)
    parser.add_argument("--original", default=os.environ.get("OASIS_ORIGINAL"),
                        help="checkout of boschresearch/OASIS to time as well (default: $OASIS_ORIGINAL)")
    args = parser.parse_args()
    print(machine_summary())  # what the numbers below ran on

    torch.manual_seed(0)
    device = args.device
    set_cpu_threads(device, args.threads)
    config = OASISConfig.for_dataset(args.preset)
    size = tuple(config.image_size)
    maps = load_maps(SAMPLE_LABELS[args.preset], size, 8)
    source = "real label maps from ../shared/samples" if maps else "synthetic block maps"
    maps = maps or block_maps(size, config.max_label_id + 1, 8)
    if args.preset == "coco-stuff":
        maps = [torch.where(m > config.max_label_id, torch.full_like(m, 255), m) for m in maps]
    model = OASISModel(config).to(device)
    calib_labels = torch.stack(maps[:4]).to(device)
    make_trained_like(model, model.generator.conv_img, lambda: model(calib_labels))
    model_bf16 = copy.deepcopy(model).to(torch.bfloat16)

    labels = torch.stack([maps[-1 - i % len(maps)] for i in range(args.batch_size)]).to(device)
    torch.manual_seed(NOISE_SEED)
    noise = torch.randn(args.batch_size, config.z_dim).to(device)

    def run(net: OASISModel, fast: bool) -> torch.Tensor:
        net.fast_inference = fast
        # no_grad rather than inference_mode: FlopCounterMode fails on spectral-norm parametrizations under the latter.
        with torch.no_grad():
            out = net(labels, noise=noise).images.float()
        synchronize(device)
        return out

    paths = {"plain fp32": lambda: run(model, False), "fast fp32": lambda: run(model, True),
             "fast bf16": lambda: run(model_bf16, True)}
    if args.original:
        original = original_generator(args.original, model, device)
        semantics = model.build_semantic_input(labels, noise=noise)[:, config.z_dim:]

        def run_original() -> torch.Tensor:
            torch.manual_seed(NOISE_SEED)  # the original draws z inside forward: the same draw as `noise` (CPU)
            with torch.no_grad():
                out = original(semantics).float()
            synchronize(device)
            return out

        paths["original fp32"] = run_original

    with FlopCounterMode(display=False) as counter:
        reference = run(model, False)
    gflop = counter.get_total_flops() / 1e9 / args.batch_size
    outputs = {name: fn() for name, fn in paths.items()}  # warm-up (fast tables, weight caches)
    times = interleaved_times(paths, args.rounds, device, per=args.batch_size)

    print(f"OASIS {args.preset} {size[0]}x{size[1]}, batch {args.batch_size}, {args.threads} threads, "
          f"device {device}, torch {torch.__version__}; input: {source}")
    print(f"plain-path cost: {gflop:.1f} GFLOP/image; output std {reference.std():.3f}")
    header = f"{'path':<15}{'ms/image':>10}{'GFLOP/s':>10}{'vs plain':>10}"
    if args.original:
        header += f"{'vs orig':>10}"
    print(header + "   accuracy vs plain fp32")
    plain = statistics.median(times["plain fp32"])
    orig = statistics.median(times["original fp32"]) if args.original else None
    for name, values in times.items():
        t = statistics.median(values)
        diff = (outputs[name] - reference).abs().max().item()
        mse = ((outputs[name] - reference) ** 2).mean().item()
        psnr = "inf" if mse == 0 else f"{10 * np.log10(4 / mse):.1f}"
        row = f"{name:<15}{t * 1000:>10.0f}{gflop / t:>10.0f}{plain / t:>9.2f}x"
        if orig is not None:
            row += f"{orig / t:>9.2f}x"
        print(row + f"   max abs diff {diff:.1e}, PSNR {psnr} dB")


if __name__ == "__main__":
    main()
