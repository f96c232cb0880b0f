"""Seconds per image and peak memory per step count: the tiny random SD + ControlNet (CPU or CUDA) and, when CUDA is
available, lllyasviel/control_v11p_sd15_seg on SD1.5 at 512x512 fp16 (needs the weights in the HF cache or network).

    python benchmarks/bench_controlnet_seg.py [--steps 2 10 20] [--repeats 2] [--skip-real]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "diffusion"))

from labelsynth import pipeline
from labelsynth.utils.precision import machine_summary


def _peak_mb(device: str) -> float:
    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # process peak RSS (never resets)


def bench(pipe, label: np.ndarray, steps_list: list[int], repeats: int, device: str, name: str, **kwargs) -> None:
    pipe(label, seed=0, num_inference_steps=1, **kwargs)  # warm-up
    for steps in steps_list:
        if device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        times = []
        for i in range(repeats):
            start = time.perf_counter()
            pipe(label, seed=i, num_inference_steps=steps, **kwargs)
            if device == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
        print(f"{name:40s} steps={steps:3d}  {min(times):8.3f} s/image (best of {repeats})  "
              f"peak {'GPU alloc' if device == 'cuda' else 'RSS'} {_peak_mb(device):9.1f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, nargs="+", default=[2, 10, 20])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--skip-real", action="store_true")
    args = parser.parse_args()
    print(machine_summary())  # what the numbers below ran on
    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"device {device}{' ' + torch.cuda.get_device_name() if device == 'cuda' else ''}, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}")

    from tiny_sd import save_tiny

    with tempfile.TemporaryDirectory() as tmp:
        folders = save_tiny(Path(tmp))
        pipe = pipeline("label-to-image", model=str(folders["pipeline"]), device=device, progress_bar=False)
        label = np.zeros((64, 64), np.int64)
        label[:32], label[32:] = 3, 7  # sky over road (ADE20K ids)
        bench(pipe, label, args.steps, args.repeats, device, "tiny SD+ControlNet 64x64 fp32")
    if device != "cuda" or args.skip_real:
        print("real SD1.5 seg ControlNet: skipped (needs CUDA)" if device != "cuda" else "real: skipped")
        return
    pipe = pipeline("label-to-image", model="lllyasviel/control_v11p_sd15_seg", device=device, dtype=torch.float16,
                    progress_bar=False, safety_checker=None)
    label = np.zeros((512, 512), np.int64)
    label[:200], label[200:400], label[400:] = 3, 2, 7  # sky, building, road
    bench(pipe, label, [20], args.repeats, device, "control_v11p_sd15_seg 512x512 fp16", prompt="a street")


if __name__ == "__main__":
    main()
