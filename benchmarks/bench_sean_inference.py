"""SEAN generator inference speed: the plain path (the paper's computation, numerically equal to the original code)
against labelsynth's fast path in float32 and in bfloat16, measured side by side in one run.

    python benchmarks/bench_sean_inference.py                 # CelebAMask-HQ 256x256, batch 1, 2 threads
    python benchmarks/bench_sean_inference.py --rounds 5 --threads 4
    python benchmarks/bench_sean_inference.py --device cuda            # on a GPU (also shows its peak memory)

The paths are timed interleaved (one forward of each per round) so machine load affects them alike; the table shows
median ms/image and the speed-up over the plain path, with style encoding included (a style image and its label map
in, an image out) and SEAN's noise on, drawn from the same seed in every path (so the paths compare exactly).
Accuracy is checked on the same inputs: max abs difference of the fast float32 path, and PSNR of bfloat16 against
float32. The 1-minute load average is printed: on a shared machine, compare runs at similar load. Random weights get the output range of a
trained model (BatchNorm statistics calibrated on the label maps, output layer scaled to an image-like spread).
Inputs are real CelebAMask-HQ samples (../shared/samples) when present, else random block label maps. On CUDA the
clock is read after `torch.cuda.synchronize()`, and the peak GPU memory each path adds is shown.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
from pathlib import Path

import numpy as np
import torch
from _inputs import make_trained_like
from _timing import add_device_argument, describe, measure, set_cpu_threads
from PIL import Image

from labelsynth import SEANConfig, SEANModel
from labelsynth.label_spaces import merge_part_masks
from labelsynth.metrics import psnr
from labelsynth.utils.precision import machine_summary

SAMPLES = Path(__file__).resolve().parents[1] / ".." / "shared" / "samples" / "CoCosNet_celebahqedge"


def load_inputs(size: int, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Label maps (SEAN's class order) and photos in [-1, 1] of real samples, or random blocks without them."""
    if not SAMPLES.is_dir():
        g = torch.Generator().manual_seed(0)
        coarse = torch.randint(0, 19, (count, size // 16, size // 16), generator=g)
        return coarse.repeat_interleave(16, 1).repeat_interleave(16, 2), torch.rand(count, 3, size, size) * 2 - 1
    labels, photos = [], []
    for path in sorted((SAMPLES / "CelebA-HQ-img").glob("*.jpg"))[:count]:
        image_id = int(path.stem)
        parts = {p.name[6:-4]: Image.open(p) for p in
                 (SAMPLES / "CelebAMask-HQ-mask-anno" / str(image_id // 2000)).glob(f"{image_id:05d}_*.png")}
        label = Image.fromarray(merge_part_masks(parts).astype(np.uint8)).resize((size, size), Image.NEAREST)
        labels.append(torch.from_numpy(np.asarray(label).astype(np.int64)))
        photo = np.asarray(Image.open(path).convert("RGB").resize((size, size), Image.BICUBIC))
        photos.append(torch.from_numpy(photo.copy()).permute(2, 0, 1).float() / 127.5 - 1)
    return torch.stack(labels), torch.stack(photos)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds (each runs every path once)")
    parser.add_argument("--threads", type=int, default=2)
    add_device_argument(parser)
    args = parser.parse_args()
    device = args.device
    set_cpu_threads(device, args.threads)
    print(machine_summary())  # what the numbers below ran on

    torch.manual_seed(0)
    config = SEANConfig.for_dataset("celebamask-hq")
    labels, photos = (t.to(device) for t in load_inputs(config.image_size[0], max(args.batch_size, 2)))
    model = SEANModel(config).to(device)
    make_trained_like(model, model.generator.conv_img, lambda: model(labels, style_image=photos, add_noise=False))
    labels, photos = labels[: args.batch_size], photos[: args.batch_size]
    model_bf16 = copy.deepcopy(model).to(torch.bfloat16)

    def run(net: SEANModel, fast: bool) -> torch.Tensor:
        net.fast_inference = fast
        return net(labels, style_image=photos, generator=torch.Generator(device).manual_seed(0)).images.float()

    paths = {"plain fp32": lambda: run(model, False), "fast fp32": lambda: run(model, True),
             "fast bf16": lambda: run(model_bf16, True)}
    times: dict[str, list[float]] = {name: [] for name in paths}
    peaks: dict[str, list[float]] = {name: [] for name in paths}  # CUDA only
    with torch.no_grad():
        outputs = {name: fn() for name, fn in paths.items()}  # warm-up (fast-path tables, cached weights)
        for _ in range(args.rounds):
            for name, fn in paths.items():
                m = measure(fn, device)
                times[name].append(m.wall / args.batch_size)
                if m.peak_mib is not None:
                    peaks[name].append(m.peak_mib)

    reference = outputs["plain fp32"]
    base = statistics.median(times["plain fp32"])
    print(f"SEAN CelebAMask-HQ 256x256, batch {args.batch_size}, {describe(device, args.threads)}, {args.rounds} "
          f"rounds, load average {os.getloadavg()[0]:.1f}")
    memory = f" {'peak MiB':>9s}" if device.type == "cuda" else ""
    print(f"{'path':12s} {'ms/image':>10s} {'speed-up':>9s}{memory}  accuracy vs plain fp32")
    for name, values in times.items():
        median = statistics.median(values)
        if name == "plain fp32":
            accuracy = "-"
        elif name == "fast fp32":
            accuracy = f"max abs diff {float((outputs[name] - reference).abs().max()):.2g}"
        else:
            accuracy = f"PSNR {float(psnr(outputs[name], reference, data_range=2.0)):.1f} dB"
        memory = f" {max(peaks[name]):9.0f}" if peaks[name] else ""
        print(f"{name:12s} {median * 1000:10.0f} {base / median:8.2f}x{memory}  {accuracy}")


if __name__ == "__main__":
    main()
