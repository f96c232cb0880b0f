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
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode

from labelsynth import Pix2PixConfig, Pix2PixModel
from labelsynth.utils.precision import machine_summary

SAMPLES = Path(__file__).resolve().parents[1] / ".." / "shared" / "samples" / "pix2pixHD_cityscapes"


def label_maps(size: int, count: int) -> tuple[list[torch.Tensor], str]:
    files = sorted(SAMPLES.glob("*_label/*.png"))[:count] if SAMPLES.is_dir() else []
    if files:
        maps = [torch.from_numpy(np.array(Image.open(f).resize((size, size), Image.NEAREST)).astype(np.int64))
                for f in files]
        return maps, "real Cityscapes label maps from ../shared/samples"
    coarse = torch.randint(0, 35, (count, 1, size // 16, size // 16), generator=torch.Generator().manual_seed(0))
    maps = torch.nn.functional.interpolate(coarse.float(), size=(size, size), mode="nearest")[:, 0].long()
    return list(maps), "synthetic block maps"


def make_trained_like(model: Pix2PixModel, labels: torch.Tensor) -> None:
    """Calibrate BatchNorm statistics on label maps and scale the output layer to an image-like spread."""
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None  # cumulative average over the calibration batch
    outermost = model.generator.levels[0].up_conv
    captured = {}
    hook = outermost.register_forward_hook(lambda m, i, o: captured.setdefault("pre", o))
    with torch.no_grad():
        model.train()(labels)
    hook.remove()
    model.eval()
    with torch.no_grad():
        scale = 0.6 / captured["pre"].std()
        outermost.weight.mul_(scale)
        outermost.bias.mul_(scale)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input-encoding", default="color", choices=["color", "one_hot"])
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds (each runs every path once)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    print(machine_summary())  # what the numbers below ran on

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    config = Pix2PixConfig.for_dataset("cityscapes", input_encoding=args.input_encoding, test_mode="eval")
    maps, source = label_maps(config.image_size[0], 8)
    model = Pix2PixModel(config).to(device)
    make_trained_like(model, torch.stack(maps[:4]).to(device))
    channels_last = copy.deepcopy(model).to(memory_format=torch.channels_last)
    bf16 = copy.deepcopy(model).to(torch.bfloat16)
    one, four = maps[-1][None].to(device), torch.stack(maps[-4:]).to(device)

    def run(net: Pix2PixModel, labels: torch.Tensor, mode: str = "eval") -> torch.Tensor:
        with torch.inference_mode():
            out = net(labels, test_mode=mode, generator=torch.Generator(device=device).manual_seed(0)).images.float()
        if device.type == "cuda":
            torch.cuda.synchronize()
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
    times: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(args.rounds):
        for name, (fn, batch) in paths.items():
            start = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - start) / batch)

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
