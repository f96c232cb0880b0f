"""Compressed GauGAN (MobileSPADEModel) vs the full SPADE Cityscapes generator, fp32, 256x512, side by side.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bench_mobile_spade.py [--original-repo /tmp/gancomp]
    .venv/bin/python benchmarks/bench_mobile_spade.py --device cuda     # on a GPU (also shows its peak memory)

Timed: our full SPADE Cityscapes generator on its plain path (stands in for the original NVlabs/SPADE generator: the
plain path equals it to 0.0), our compressed generator plain and fast, and, with `--original-repo` (a checkout of
mit-han-lab/gan-compression, outside this repository), the original compressed generator. Random weights (speed does
not depend on them); a real Cityscapes label + instance map from ../shared/samples when present, else a synthetic one.
Every call is a single shot: a new label map each time as far as the model knows (nothing label-dependent is reused
between calls; weights-derived tables and buffers are). After one warm-up call each, the candidates run in
interleaved rounds (one call each per round, so that load from other processes hits all of them alike); reported
are the medians of the wall time and of the process CPU time (less sensitive to other processes on a shared
machine), the load average and `machine_summary()`. On CUDA (`--device cuda`: every model, the original's too, and
every input on the GPU) the clock is read after `torch.cuda.synchronize()`, the CPU time is the host's, and the peak
GPU memory each call adds is shown.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from _timing import Measurement, add_device_argument, describe, measure

from labelsynth import MobileSPADEConfig, MobileSPADEModel, SPADEConfig, SPADEModel
from labelsynth.utils.precision import machine_summary

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


def timed_rounds(calls: dict[str, Callable[[], object]], repeats: int,
                 device: torch.device) -> dict[str, tuple[float, float, float | None]]:
    """Median (wall seconds, process CPU seconds) and, on CUDA, the largest peak GPU memory added (MiB; else None)
    of each call over `repeats` interleaved rounds, after a warm-up call each (it builds the weight-derived tables)."""
    for call in calls.values():
        call()
    samples: dict[str, list[Measurement]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            samples[name].append(measure(call, device))
    return {name: (statistics.median(m.wall for m in runs), statistics.median(m.cpu for m in runs),
                   None if runs[0].peak_mib is None else max(m.peak_mib for m in runs))
            for name, runs in samples.items()}


def original_compressed(repo: str, label: torch.Tensor, inst: torch.Tensor, device: torch.device):
    """The original SubMobileSPADEGenerator (random weights) and its one-hot + edge input, both on `device` (where
    `label` and `inst` are)."""
    sys.path.insert(0, repo)
    from configs import decode_config
    from models.modules.spade_architecture.sub_mobile_spade_generator import SubMobileSPADEGenerator

    opt = argparse.Namespace(ngf=48, norm_G="spadesyncbatch3x3", num_upsampling_layers="more", crop_size=512,
                             aspect_ratio=2.0, semantic_nc=36)
    net = SubMobileSPADEGenerator(opt, decode_config("32_40_40_32_40_24_32_24")).eval().to(device)
    semantics = MobileSPADEModel(MobileSPADEConfig()).to(device).build_semantic_input(label, inst)
    return net, semantics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--original-repo", help="checkout of mit-han-lab/gan-compression (for its compressed G)")
    add_device_argument(parser)
    args = parser.parse_args()
    device = args.device
    torch.manual_seed(0)
    label, inst = (t.to(device) for t in label_and_instances((256, 512)))
    full = SPADEModel(SPADEConfig.for_dataset("cityscapes")).eval().to(device)
    full.fast_inference = False
    compressed = MobileSPADEModel(MobileSPADEConfig.for_dataset("cityscapes-compressed")).eval().to(device)

    def run(model, fast: bool) -> Callable[[], object]:
        def call() -> object:
            model.fast_inference = fast
            with torch.inference_mode():
                return model(label, inst)
        return call

    base_name = "full SPADE, plain (= original NVlabs/SPADE)"
    calls = {base_name: run(full, False)}
    if args.original_repo:
        net, semantics = original_compressed(args.original_repo, label, inst, device)

        def call_original() -> object:
            with torch.inference_mode():
                return net(semantics)
        calls["compressed, original gan-compression code"] = call_original
    calls["compressed, ours plain"] = run(compressed, False)
    calls["compressed, ours fast"] = run(compressed, True)
    load_before = os.getloadavg()
    results = timed_rounds(calls, args.repeats, device)
    load_after = os.getloadavg()

    print(machine_summary())
    print(f"load average (1 min) before/after: {load_before[0]:.2f}/{load_after[0]:.2f}; "
          f"{os.cpu_count()} logical cores")
    threads = describe(device, torch.get_num_threads())
    print(f"256x512, fp32, batch 1, device {device} ({threads}), median of {args.repeats} interleaved rounds")
    base_wall, base_cpu, _ = results[base_name]
    memory = f" {'peak MiB':>9s}" if device.type == "cuda" else ""
    print(f"  {'':48s} {'wall ms':>9s} {'speed-up':>8s} {'CPU ms':>9s} {'speed-up':>8s}{memory}")
    for name, (wall, cpu, peak) in results.items():
        memory = "" if peak is None else f" {peak:9.0f}"
        print(f"  {name:48s} {wall * 1000:9.1f} {base_wall / wall:7.2f}x {cpu * 1000:9.1f} {base_cpu / cpu:7.2f}x"
              f"{memory}")


if __name__ == "__main__":
    main()
