"""Compressed GauGAN (MobileSPADEModel) vs the full SPADE Cityscapes generator, CPU fp32, 256x512, side by side.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bench_mobile_spade.py [--original-repo /tmp/gancomp]

Timed: our full SPADE Cityscapes generator on its plain path (stands in for the original NVlabs/SPADE generator: the
plain path equals it to 0.0), our compressed generator plain and fast, and, with `--original-repo` (a checkout of
mit-han-lab/gan-compression, outside this repository), the original compressed generator. Random weights (speed does
not depend on them); a real Cityscapes label + instance map from ../shared/samples when present, else a synthetic one.
Reports the median of `--repeats` runs after a warm-up, the load average and the CPU.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from labelsynth import MobileSPADEConfig, MobileSPADEModel, SPADEConfig, SPADEModel

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples" / "pix2pixHD_cityscapes"


def label_and_instances(size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    from PIL import Image

    labels = sorted((SAMPLES / "test_label").glob("*_labelIds.png")) if SAMPLES.is_dir() else []
    if not labels:
        label = torch.zeros(1, *size, dtype=torch.long)
        label[:, size[0] // 2:] = 7
        label[:, :, size[1] // 3: size[1] // 2] = 26
        return label, label
    inst_path = SAMPLES / "test_inst" / labels[0].name.replace("labelIds", "instanceIds")
    arrays = [np.array(Image.open(p).resize((size[1], size[0]), Image.NEAREST)).astype(np.int64)
              for p in (labels[0], inst_path)]
    return torch.from_numpy(arrays[0])[None], torch.from_numpy(arrays[1])[None]


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (Linux), else what `platform` says."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def timed(fn, repeats: int) -> float:
    fn()  # warm-up (builds cached tables)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def original_compressed(repo: str, label: torch.Tensor, inst: torch.Tensor):
    """The original SubMobileSPADEGenerator (random weights) and its one-hot + edge input."""
    sys.path.insert(0, repo)
    from configs import decode_config
    from models.modules.spade_architecture.sub_mobile_spade_generator import SubMobileSPADEGenerator

    opt = argparse.Namespace(ngf=48, norm_G="spadesyncbatch3x3", num_upsampling_layers="more", crop_size=512,
                             aspect_ratio=2.0, semantic_nc=36)
    net = SubMobileSPADEGenerator(opt, decode_config("32_40_40_32_40_24_32_24")).eval()
    semantics = MobileSPADEModel(MobileSPADEConfig()).build_semantic_input(label, inst)
    return net, semantics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--original-repo", help="checkout of mit-han-lab/gan-compression (for its compressed G)")
    args = parser.parse_args()
    torch.manual_seed(0)
    label, inst = label_and_instances((256, 512))
    full = SPADEModel(SPADEConfig.for_dataset("cityscapes")).eval()
    full.fast_inference = False
    compressed = MobileSPADEModel(MobileSPADEConfig.for_dataset("cityscapes-compressed")).eval()

    def run(model, fast: bool):
        def call():
            model.fast_inference = fast
            with torch.inference_mode():
                model(label, inst)
        return call

    results = {}
    load_before = os.getloadavg()
    results["full SPADE, plain (= original NVlabs/SPADE)"] = timed(run(full, False), args.repeats)
    if args.original_repo:
        net, semantics = original_compressed(args.original_repo, label, inst)
        def call_original():
            with torch.inference_mode():
                net(semantics)
        results["compressed, original gan-compression code"] = timed(call_original, args.repeats)
    results["compressed, ours plain"] = timed(run(compressed, False), args.repeats)
    results["compressed, ours fast"] = timed(run(compressed, True), args.repeats)
    load_after = os.getloadavg()

    base = results["full SPADE, plain (= original NVlabs/SPADE)"]
    print(f"CPU: {cpu_name()}, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}, load average before/after {load_before[0]:.2f}/{load_after[0]:.2f}")
    print("256x512, fp32, median of", args.repeats)
    for name, seconds in results.items():
        print(f"  {name:48s} {seconds * 1000:9.1f} ms   {base / seconds:6.2f}x vs full SPADE")


if __name__ == "__main__":
    main()
