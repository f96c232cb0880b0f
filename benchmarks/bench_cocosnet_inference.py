"""CoCosNet inference speed (correspondence + translation network): the plain path (the paper's computation,
numerically the original implementation's) against labelsynth's fast path in float32 and in bfloat16, measured side
by side in one run, plus the peak memory of the 4096 x 4096 correlation step.

    python benchmarks/bench_cocosnet_inference.py                   # ADE20K 256x256, batch 1, 2 threads
    python benchmarks/bench_cocosnet_inference.py --rounds 5 --no-exemplar-label
    python benchmarks/bench_cocosnet_inference.py --device cuda      # on a GPU (also shows its peak memory)

The paths are timed interleaved (one forward of each per round) so machine load affects them alike; the table shows
median ms/image, GFLOP/s (the plain path's FLOPs divided by the time) and the speed-up over the plain path.
Accuracy on the same inputs: max abs difference and PSNR against plain float32. Inputs are real ADE20K label maps
and photos from ../shared/samples (random blocks and noise images without them); weights are random with the
variance of a trained network. On CUDA the clock is read after `torch.cuda.synchronize()`, the table shows the peak
GPU memory each path adds, and `--memory` measures the correspondence pass's peak GPU memory instead of peak RSS.
"""

from __future__ import annotations

import argparse
import copy
import resource
import statistics
from pathlib import Path

import numpy as np
import torch
from _timing import add_device_argument, describe, measure, set_cpu_threads, synchronize
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode

from labelsynth import CoCosNetConfig, CoCosNetModel
from labelsynth.utils.precision import machine_summary

SAMPLES = Path(__file__).resolve().parents[1] / ".." / "shared" / "samples" / "CoCosNet_ade20k"
PAIR = ("validation/ADE_val_00001232", "training/ADE_train_00004996")


def load_inputs(size: tuple[int, int]) -> tuple[torch.Tensor, ...]:
    """(label, exemplar photo, exemplar label) at `size`: a real ADE20K pair, or synthetic stand-ins."""
    if (SAMPLES / f"{PAIR[0]}.png").is_file():
        out = []
        for stem in PAIR:
            label = Image.open(SAMPLES / f"{stem}.png").resize(size[::-1], Image.NEAREST)
            out.append(torch.from_numpy(np.array(label)).long()[None])
        photo = Image.open(SAMPLES / f"{PAIR[1]}.jpg").convert("RGB").resize(size[::-1], Image.BICUBIC)
        exemplar = torch.from_numpy(np.array(photo)).float().permute(2, 0, 1)[None] / 127.5 - 1
        return out[0], exemplar, out[1]
    g = torch.Generator().manual_seed(0)
    coarse = torch.randint(0, 151, (2, 1, size[0] // 16, size[1] // 16), generator=g).float()
    labels = torch.nn.functional.interpolate(coarse, size=size)[:, 0].long()
    return labels[:1], torch.rand(1, 3, *size, generator=g) * 2 - 1, labels[1:]


def randomize(model: torch.nn.Module) -> None:
    """Variance-preserving random weights (the paper init's gain 0.02 gives a flat grey image); attention on."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.dim() > 1:
                param.copy_(torch.randn(param.shape, generator=g) / np.sqrt(param[0].numel()))
            elif name.endswith("gamma"):
                param.fill_(0.5)


def correlation_peak_memory(model: CoCosNetModel, inputs: dict, fast: bool, device: torch.device) -> float:
    """Peak memory (MiB) added while computing one correspondence (includes the networks' activations): resident
    memory on the CPU, allocated GPU memory on CUDA."""
    from labelsynth.modeling_utils import one_hot_channels
    from labelsynth.models.cocosnet.modeling_cocosnet import _fast_correspondence

    channels = model.prepare_label_channels(inputs["label_map"])
    exemplar_channels = model.prepare_label_channels(inputs["exemplar_label_map"])
    synchronize(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
    else:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with torch.no_grad():
        if fast:
            _fast_correspondence(model.correspondence, channels, inputs["exemplar"], exemplar_channels, None, False, False)
        else:
            model.correspondence(one_hot_channels(channels, 151), inputs["exemplar"], one_hot_channels(exemplar_channels,
                                                                                                      151))
    if device.type == "cuda":
        synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - before) / 2**20
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024  # ru_maxrss is in KiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds (each runs every path once)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-exemplar-label", action="store_true", help="the noise_for_mask mode")
    parser.add_argument("--memory", choices=["plain", "fast"],
                        help="only measure the peak memory of one correspondence pass on that path (peak RSS is per "
                             "process on the CPU: measure each path in its own run)")
    add_device_argument(parser)
    args = parser.parse_args()
    device = args.device
    set_cpu_threads(device, args.threads)
    print(machine_summary())  # what the numbers below ran on

    torch.manual_seed(0)
    config = CoCosNetConfig.for_dataset("ade20k")
    model = CoCosNetModel(config).eval()
    randomize(model)  # on the CPU first: the same random weights on every device
    model.to(device)
    label, exemplar, exemplar_label = (t.to(device) for t in load_inputs(tuple(config.image_size)))
    inputs = {"label_map": label, "exemplar": exemplar,
              "exemplar_label_map": None if args.no_exemplar_label else exemplar_label}
    if args.memory:
        peak = correlation_peak_memory(model, {**inputs, "exemplar_label_map": exemplar_label}, args.memory == "fast",
                                       device)
        kind = "GPU memory allocated" if device.type == "cuda" else "resident memory"
        print(f"correspondence pass ({args.memory} path, 256x256, 64x64 grid, device {device}): peak {kind} "
              f"+{peak:.0f} MiB")
        return
    model_bf16 = copy.deepcopy(model).to(torch.bfloat16)

    def run(net: CoCosNetModel, fast: bool) -> torch.Tensor:
        net.fast_inference = fast
        with torch.no_grad():
            return net(**inputs, generator=torch.Generator(device).manual_seed(0)).images.float()

    paths = {"plain fp32": (model, False), "fast fp32": (model, True), "fast bf16": (model_bf16, True)}
    with FlopCounterMode(display=False) as counter:
        reference = run(model, False)
    gflop = counter.get_total_flops() / 1e9
    outputs = {name: run(*spec) for name, spec in paths.items()}  # warm-up (tables, weight caches)
    times: dict[str, list[float]] = {name: [] for name in paths}
    peaks: dict[str, list[float]] = {name: [] for name in paths}  # CUDA only
    for _ in range(args.rounds):
        for name, spec in paths.items():
            m = measure(lambda spec=spec: run(*spec), device)
            times[name].append(m.wall)
            if m.peak_mib is not None:
                peaks[name].append(m.peak_mib)

    mode = "noise (no exemplar label map)" if args.no_exemplar_label else "exemplar label map given"
    print(f"CoCosNet ADE20K 256x256, batch 1, {describe(device, args.threads)}, device {device}, torch "
          f"{torch.__version__}; {mode}")
    print(f"plain-path cost: {gflop:.1f} GFLOP/image; output std {reference.std():.3f}")
    memory = f"{'peak MiB':>10}" if device.type == "cuda" else ""
    print(f"{'path':<12}{'ms/image':>10}{'GFLOP/s':>10}{'speed-up':>10}{memory}   accuracy vs plain fp32")
    plain = statistics.median(times["plain fp32"])
    for name, values in times.items():
        t = statistics.median(values)
        diff = (outputs[name] - reference).abs().max().item()
        mse = ((outputs[name] - reference) ** 2).mean().item()
        psnr = "inf" if mse == 0 else f"{10 * np.log10(4 / mse):.1f}"
        memory = f"{max(peaks[name]):>10.0f}" if peaks[name] else ""
        print(f"{name:<12}{t * 1000:>10.0f}{gflop / t:>10.0f}{plain / t:>9.2f}x{memory}   max abs diff {diff:.1e}, "
              f"PSNR {psnr} dB")


if __name__ == "__main__":
    main()
