"""Device handling shared by the benchmark scripts: the `--device` option, clock reads that wait for the GPU, CUDA
peak memory, thread settings that only apply on the CPU, and reproducible background load on the CPU.

The scripts import it as a sibling module: `python benchmarks/bench_x.py` puts benchmarks/ first on `sys.path`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch


def device_arg(name: str) -> torch.device:
    """argparse `type=` of `--device`: cpu or cuda[:N], refused with a clear message where that GPU is absent."""
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise argparse.ArgumentTypeError(f"{name!r} is not a device name; use cpu or cuda (cuda:N for GPU N)") from exc
    if device.type not in ("cpu", "cuda"):
        raise argparse.ArgumentTypeError(f"{name!r}: the benchmarks run on cpu or cuda only")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            why = "torch is built without CUDA" if torch.version.cuda is None else "no GPU is visible"
            raise argparse.ArgumentTypeError(f"CUDA is not available on this machine ({why}, torch "
                                             f"{torch.__version__}); run with --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise argparse.ArgumentTypeError(f"{name!r}: this machine has {torch.cuda.device_count()} GPU(s), "
                                             f"numbered from 0")
    return device


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    """`--device` (default cpu), parsed into a `torch.device` by `device_arg`."""
    parser.add_argument("--device", type=device_arg, default="cpu",
                        help="cpu or cuda[:N] (default cpu); thread settings apply on the CPU only")


def set_cpu_threads(device: torch.device, threads: int) -> None:
    """`torch.set_num_threads(threads)` for a CPU run; a GPU run keeps torch's default (host threads only feed it)."""
    if device.type == "cpu":
        torch.set_num_threads(threads)


def describe(device: torch.device, threads: int) -> str:
    """'2 threads' on the CPU, 'GPU <name>' on CUDA: what a result line should name."""
    if device.type == "cuda":
        return f"GPU {torch.cuda.get_device_name(device)}"
    return f"{threads} threads"


def synchronize(device: torch.device) -> None:
    """Wait for the work queued on `device` (CUDA runs asynchronously: the clock must not be read before it ends)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class Measurement:
    """One timed call: wall seconds, process CPU seconds (all threads) and, on CUDA, the peak GPU memory it added."""

    wall: float
    cpu: float
    peak_mib: float | None  # max allocated above what was allocated before the call; None on the CPU


def measure(fn: Callable[[], Any], device: torch.device) -> Measurement:
    """Run `fn()` once and time it, synchronising before the clock starts (earlier queued work is not its cost) and
    before it is read (its kernels have finished)."""
    synchronize(device)
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    synchronize(device)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak = (torch.cuda.max_memory_allocated(device) - before) / 2**20 if cuda else None
    return Measurement(wall, cpu, peak)


def interleaved_times(paths: dict[str, Callable[[], Any]], rounds: int, device: torch.device,
                      per: dict[str, int] | int = 1) -> dict[str, list[float]]:
    """Wall seconds of every call of `paths`, timed in `rounds` interleaved rounds (each path once per round, so a
    change of the machine's load hits every path alike), each divided by its `per` (images per call: one number for
    all, or one per path). The clock waits for the device (`measure`)."""
    times: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(rounds):
        for name, path in paths.items():
            count = per[name] if isinstance(per, dict) else per
            times[name].append(measure(path, device).wall / count)
    return times


# One core's worth of matmul load: 1 thread; exits by itself after argv[1] seconds or when orphaned.
MATMUL_LOOP = """import os, sys, time
import torch
torch.set_num_threads(1)
end, parent = time.monotonic() + float(sys.argv[1]), os.getppid()
a = torch.randn(256, 256)
print("ready", flush=True)
while time.monotonic() < end and os.getppid() == parent:
    for _ in range(20):
        a = torch.tanh(a @ a)
"""

# One core's worth of pure-Python spinning at the caller's priority or lower; same exits.
BUSY_LOOP = """import os, sys, time
os.setpriority(os.PRIO_PROCESS, 0, max(0, os.getpriority(os.PRIO_PROCESS, 0)))
end, parent = time.monotonic() + float(sys.argv[1]), os.getppid()
print("ready", flush=True)
while time.monotonic() < end and os.getppid() == parent:
    pass
"""


class BackgroundLoad:
    """`procs` single-threaded load processes running while the context is open, each bounded by `seconds`.

    `loop` is the program each one runs (`MATMUL_LOOP`: a core busy with BLAS work, as other jobs' tensors would keep
    it; `BUSY_LOOP`: plain spinning). Entering waits until every process is running, so the first timed round is
    loaded too; leaving kills them.
    """

    def __init__(self, procs: int, seconds: float, loop: str = MATMUL_LOOP) -> None:
        self.procs, self.seconds, self.loop, self.running = procs, seconds, loop, []

    def __enter__(self) -> None:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        command = [sys.executable, "-c", self.loop, str(self.seconds)]
        self.running = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
                        for _ in range(self.procs)]
        for proc in self.running:
            proc.stdout.readline()

    def __exit__(self, *exc: object) -> None:
        for proc in self.running:
            proc.kill()
        for proc in self.running:
            proc.wait()
        self.running = []
