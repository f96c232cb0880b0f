"""SPADE training speed and memory: seconds per iteration (one G step + one D step, GAN + feature matching + VGG
losses, Adam) and peak memory, float32 against bf16 mixed precision, side by side in one run.

    python benchmarks/bench_spade_training.py                          # ADE20K 256x256, batch 1, CPU
    python benchmarks/bench_spade_training.py --ngf 32 --batch-size 2 --device cuda

Each precision runs in its own subprocess so that peak memory is measured separately (peak resident set size on
CPU, `torch.cuda.max_memory_allocated` on GPU). The VGG19 of the perceptual loss has random weights (ImageNet weights
cannot be downloaded here); its cost is the same.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import torch

from labelsynth.utils.precision import machine_summary


def worker(args: argparse.Namespace) -> dict:
    from accelerate import Accelerator

    from labelsynth import LabelMapProcessor, SPADEConfig, SPADEDiscriminator, SPADEModel
    from labelsynth.layers.vgg import VGG19
    from labelsynth.training import SPADETrainingModule

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    acc = Accelerator(mixed_precision=args.precision, cpu=args.device == "cpu")
    overrides = {"ngf": args.ngf} if args.ngf else {}
    config = SPADEConfig.for_dataset(args.preset, **overrides)
    module = SPADETrainingModule(SPADEModel(config), SPADEDiscriminator(config), LabelMapProcessor(), vgg=VGG19())
    opt_g = torch.optim.Adam(module.generator.parameters(), lr=1e-4, betas=(0.0, 0.9))
    opt_d = torch.optim.Adam(module.discriminator.parameters(), lr=4e-4, betas=(0.0, 0.9))
    generator, discriminator, opt_g, opt_d = acc.prepare(module.generator, module.discriminator, opt_g, opt_d)
    module.to(acc.device)
    h, w = config.image_size
    coarse = torch.randint(0, config.label_nc, (args.batch_size, 1, h // 16, w // 16)).float()
    batch = {"label_map": torch.nn.functional.interpolate(coarse, size=(h, w))[:, 0].long().to(acc.device),
             "pixel_values": (torch.rand(args.batch_size, 3, h, w) * 2 - 1).to(acc.device)}
    if config.use_instance_edges:
        batch["instance_map"] = batch["label_map"]

    def iteration() -> None:
        module.discriminator.requires_grad_(False)
        with acc.autocast():
            g_loss, _ = module.generator_loss(generator, module.discriminator, batch)
        acc.backward(g_loss)
        module.discriminator.requires_grad_(True)
        opt_g.step()
        opt_g.zero_grad(set_to_none=True)
        with acc.autocast():
            d_loss, _ = module.discriminator_loss(generator, discriminator, batch)
        acc.backward(d_loss)
        opt_d.step()
        opt_d.zero_grad(set_to_none=True)
        if acc.device.type == "cuda":
            torch.cuda.synchronize()

    iteration()  # warm-up
    if acc.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        iteration()
        times.append(time.perf_counter() - start)
    peak = (torch.cuda.max_memory_allocated() / 2**20 if acc.device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return {"seconds": statistics.median(times), "peak_mib": peak, "device": str(acc.device)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="ade20k")
    parser.add_argument("--ngf", type=int, default=None, help="generator width (default: the preset's 64)")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3, help="timed iterations per precision")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", help=argparse.SUPPRESS)  # set for the worker subprocesses
    args = parser.parse_args()
    print(machine_summary())  # what the numbers below ran on
    if args.precision:
        print(json.dumps(worker(args)))
        return
    results = {}
    for precision in ("no", "bf16"):
        command = [sys.executable, __file__, "--precision", precision] + sys.argv[1:]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        results[precision] = json.loads(output.strip().splitlines()[-1])
    base = results["no"]
    print(f"SPADE {args.preset} training, ngf {args.ngf or 64}, batch {args.batch_size}, {args.threads} threads, "
          f"device {base['device']}, torch {torch.__version__}")
    print(f"{'precision':<10}{'s/iter':>9}{'speed-up':>10}{'peak MiB':>10}{'memory':>8}")
    for name, label in (("no", "fp32"), ("bf16", "bf16")):
        r = results[name]
        print(f"{label:<10}{r['seconds']:>9.2f}{base['seconds'] / r['seconds']:>9.2f}x{r['peak_mib']:>10.0f}"
              f"{r['peak_mib'] / base['peak_mib']:>7.2f}x")


if __name__ == "__main__":
    main()
