"""Generation time against torch's intra-op thread count (1 vs 2 vs all cores vs labelsynth's choice), on a quiet
and on a loaded CPU, measured side by side in one run: the evidence behind `labelsynth.utils.threads`.

    python benchmarks/bench_threads.py                            # every model config, no extra load
    python benchmarks/bench_threads.py --load both --rounds 5     # without and with a busy loop per core, interleaved
    python benchmarks/bench_threads.py --configs builtin-128x256 --load busy --load-procs 1

Model configs (all in eval mode under no_grad, so SPADE's fast inference path runs, batch 1):
- `builtin-128x256`: the built-in demo model (`labelsynth.examples.BUILTIN_MODEL`, bfloat16 as shipped) at its
  native size, on a drawn street scene.
- `builtin-256x512`, `builtin-512x1024`: the same architecture and dtype at bigger sizes, random weights (a VAE
  SPADE generates only its configured size, so the shipped weights cannot run there; speed does not depend on the
  weight values).
- `ade20k-256x256`: a full-size SPADE (`SPADEConfig.for_dataset("ade20k")`, float32, random weights) on real
  ADE20K label maps from ../shared/samples (random class blocks when they are missing).

Every round runs every (load, config, setting) twice in a row: the first forward right after `set_num_threads`
("sw": what a per-call change of the count costs), then the timed one ("ms"); medians over the rounds. Settings:
thread counts (`--threads`, "all" = every core) and "auto": `labelsynth.utils.threads.inference_threads` around
each forward, starting from the thread count the script started with ("auto n": the count it chose; its /proc reads
are inside the time). `--load busy` starts one busy-loop process per core (`--load-procs`) around each block of
forwards (each one exits by itself after `--load-seconds`, and is killed when its block ends); `--load both`
alternates blocks without ("none") and with ("busy") them inside every round. "other" is the CPU time that processes
other than this one used during the block, in cores (from /proc/stat): it shows how quiet a "none" block was.

On a machine shared with other sessions, "quiet" needs shielding from their load. Linux's autogroup scheduler shares
the CPUs between sessions first, so `nice` alone does not help; as root, give this session's group priority for the
run, then put it back (the busy loops belong to the same group, so the loaded blocks still compete with them):

    echo -20 > /proc/self/autogroup; python benchmarks/bench_threads.py --load both; echo 0 > /proc/self/autogroup

("auto" still counts the outranked sessions' tasks as contention there and picks fewer threads: see the limits in
`labelsynth.utils.threads`.) `--no-mkldnn` with `ATEN_CPU_CAPABILITY=avx2` approximates an AVX2-only CPU such as
AMD EPYC before Zen 4, where torch runs bfloat16 convolutions (the built-in model's dtype) in ATen, not oneDNN.

Work size per forward: multiply-adds (FlopCounterMode FLOPs / 2, convolutions and matmuls only), the number of
ATen ops dispatched, and their ratio (multiply-adds per op: how much work each parallel region gets to share).
On CUDA the thread count only affects the host side; the script runs there too.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from _timing import BUSY_LOOP, BackgroundLoad
from PIL import Image
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from labelsynth import SPADEConfig, SPADEModel
from labelsynth.examples import BUILTIN_MODEL, draw_street_scene
from labelsynth.utils.precision import machine_summary
from labelsynth.utils.threads import explicit_thread_choice, inference_threads

SAMPLES = Path(__file__).resolve().parents[1] / ".." / "shared" / "samples"
CONFIGS = ("builtin-128x256", "builtin-256x512", "builtin-512x1024", "ade20k-256x256")
CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8")
# One core's worth of load for at most argv[1] seconds, at nice 0 even when the benchmark runs with a negative nice.
@dataclass
class Case:
    name: str
    model: SPADEModel
    inputs: dict[str, torch.Tensor]
    macs: float = 0.0
    ops: int = 0


class OpCounter(TorchDispatchMode):
    """Counts the ATen ops a forward dispatches."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count += 1
        return func(*args, **(kwargs or {}))


def cpu_description() -> str:
    model, flags = "unknown CPU", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    except OSError:
        pass
    have = [f for f in CPU_FLAGS if f in flags] or ["(flags unknown)"]
    names = ("OMP_NUM_THREADS", "ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY")
    env = {k: os.environ[k] for k in names if k in os.environ}
    return (f"{model}, {os.cpu_count()} logical CPUs; flags: {' '.join(have)}; torch {torch.__version__}, "
            f"ATen capability {torch.backends.cpu.get_cpu_capability()}; env {env or '{}'}")


def autogroup() -> str:
    """This session's scheduler group and its nice value (Linux with autogroup), e.g. "/autogroup-6 nice -20"."""
    try:
        return Path("/proc/self/autogroup").read_text().strip()
    except OSError:
        return "n/a"


def busy_cpu_seconds() -> float | None:
    """CPU-seconds of all processes on the machine (user+nice+system+irq+softirq+steal), or None without /proc."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def street_inputs(height: int, width: int) -> dict[str, torch.Tensor]:
    label, instance = draw_street_scene(0, (height, width))
    return {"label_map": torch.from_numpy(label)[None], "instance_map": torch.from_numpy(instance)[None]}


def ade20k_inputs(size: tuple[int, int], label_nc: int) -> dict[str, torch.Tensor]:
    files = sorted(SAMPLES.glob("CoCosNet_ade20k/*/*.png"))
    if files:
        label = np.array(Image.open(files[0]).resize(size[::-1], Image.NEAREST)).astype(np.int64)
        return {"label_map": torch.from_numpy(label)[None]}
    g = torch.Generator().manual_seed(0)
    coarse = torch.randint(0, label_nc, (1, 1, size[0] // 16, size[1] // 16), generator=g).float()
    return {"label_map": torch.nn.functional.interpolate(coarse, size=size, mode="nearest")[:, 0].long()}


def build_case(name: str, device: torch.device) -> Case:
    if name.startswith("builtin-"):
        height, width = (int(x) for x in name.split("-")[1].split("x"))
        shipped = SPADEModel.from_pretrained(BUILTIN_MODEL)
        if (height, width) == tuple(shipped.config.image_size):
            model = shipped
        else:
            config = SPADEConfig.from_dict({**shipped.config.to_dict(), "image_size": (height, width)})
            model = SPADEModel(config).to(shipped.dtype)
        inputs = street_inputs(height, width)
    elif name == "ade20k-256x256":
        config = SPADEConfig.for_dataset("ade20k")
        model = SPADEModel(config)
        inputs = ade20k_inputs(tuple(config.image_size), config.label_nc)
    else:
        raise ValueError(f"unknown config {name!r}; choose from {CONFIGS}")
    model = model.to(device).eval()
    return Case(name, model, {k: v.to(device) for k, v in inputs.items()})


def forward(case: Case) -> None:
    with torch.no_grad():
        case.model(**case.inputs, generator=torch.Generator(case.model.device).manual_seed(0))
    if case.model.device.type == "cuda":
        torch.cuda.synchronize()


def count_work(case: Case) -> None:
    # no_grad, as in `forward`: FlopCounterMode fails on spectral-norm parametrizations under inference_mode.
    with FlopCounterMode(display=False) as flops, OpCounter() as ops:
        forward(case)
    case.macs, case.ops = flops.get_total_flops() / 2, ops.count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default=",".join(CONFIGS), help=f"comma-separated subset of {CONFIGS}")
    parser.add_argument("--threads", default="1,2,all,auto",
                        help="thread counts to compare; 'all' = os.cpu_count(), 'auto' = labelsynth.utils.threads' "
                             "choice (inference_threads around each forward, from the thread count at start)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--load", default="none", choices=("none", "busy", "both"),
                        help="background load: none, busy (one busy loop per core), both (alternating blocks)")
    parser.add_argument("--load-procs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--load-seconds", type=float, default=120.0, help="upper bound on each load block's life")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-mkldnn", action="store_true",
                        help="torch.backends.mkldnn.enabled = False: ATen's own kernels, as on CPUs where torch does "
                             "not route bfloat16 convolutions to oneDNN (no AVX-512, e.g. AMD EPYC before Zen 4)")
    args = parser.parse_args()
    print(machine_summary())  # what the numbers below ran on
    torch.backends.mkldnn.enabled = not args.no_mkldnn

    cores = os.cpu_count() or 1
    start_threads = torch.get_num_threads()
    names = args.threads.split(",")
    counts = sorted({cores if t == "all" else int(t) for t in names if t != "auto"})
    settings = [str(n) for n in counts] + (["auto"] if "auto" in names else [])
    device = torch.device(args.device)
    torch.manual_seed(0)
    print(cpu_description())
    onednn = "on" if torch.backends.mkldnn.enabled else "off"
    print(f"torch threads at start: {start_threads}; oneDNN {onednn}; "
          f"nice {os.getpriority(os.PRIO_PROCESS, 0)}, autogroup {autogroup()}; load average {os.getloadavg()}")
    if "auto" in settings and explicit_thread_choice():
        print(f"note: 'auto' changes nothing here: {explicit_thread_choice()}")

    def timed(case: Case, setting: str) -> tuple[float, int]:
        """Seconds of one forward, and its thread count; 'auto' starts from the thread count the script started
        with and lets `inference_threads` choose (its /proc reads are part of the time)."""
        torch.set_num_threads(start_threads if setting == "auto" else int(setting))
        start = time.perf_counter()
        with inference_threads(device) if setting == "auto" else contextlib.nullcontext(int(setting)) as n:
            forward(case)
        return time.perf_counter() - start, n

    cases = [build_case(name, device) for name in args.configs.split(",")]
    for case in cases:
        count_work(case)
        for n in counts:  # warm-up at every thread count (fast tables, weight caches, oneDNN primitives)
            torch.set_num_threads(n)
            forward(case)

    loads = {"none": ["none"], "busy": ["busy"], "both": ["none", "busy"]}[args.load]
    keys = [(load, case.name, s) for load in loads for case in cases for s in settings]
    steady: dict[tuple, list[float]] = {k: [] for k in keys}
    switch: dict[tuple, list[float]] = {k: [] for k in keys}
    chosen: dict[tuple, list[int]] = {k: [] for k in keys}
    other: dict[tuple[str, str], list[float]] = {(load, case.name): [] for load in loads for case in cases}
    for _ in range(args.rounds):
        for load in loads:
            with BackgroundLoad(args.load_procs if load == "busy" else 0, args.load_seconds, BUSY_LOOP):
                for case in cases:
                    busy0, own0, wall0 = busy_cpu_seconds(), own_cpu_seconds(), time.perf_counter()
                    for setting in settings:
                        for record in (switch, steady):
                            seconds, n = timed(case, setting)
                            record[(load, case.name, setting)].append(seconds)
                            chosen[(load, case.name, setting)].append(n)
                    busy1 = busy_cpu_seconds()
                    if busy0 is not None and busy1 is not None:
                        wall = time.perf_counter() - wall0
                        other[(load, case.name)].append((busy1 - busy0 - (own_cpu_seconds() - own0)) / wall)

    base = settings[0]
    print(f"\n{args.rounds} rounds, device {device}, batch 1; median ms/image (sw = first forward after "
          f"set_num_threads); 'xS' = time with {base} thread(s) / time with S (>1: S faster); "
          f"'auto n' = mean thread count inference_threads chose")
    head = f"{'load':<7}{'config':<18}{'Mmacs':>8}{'ops':>6}{'kmacs/op':>9}{'other':>7}"
    for setting in settings:
        head += f"{f'{setting} ms':>9}{f'{setting} sw':>9}"
    head += f"{'auto n':>8}" if "auto" in settings else ""
    head += "".join(f"{f'x{setting}':>7}" for setting in settings[1:])
    print(head)
    for load in loads:
        for case in cases:
            samples = other[(load, case.name)]
            line = (f"{load:<7}{case.name:<18}{case.macs / 1e6:>8.0f}{case.ops:>6}{case.macs / case.ops / 1e3:>9.0f}"
                    f"{statistics.median(samples) if samples else float('nan'):>7.2f}")
            med = {s: statistics.median(steady[(load, case.name, s)]) for s in settings}
            for setting in settings:
                first = statistics.median(switch[(load, case.name, setting)])
                line += f"{med[setting] * 1000:>9.0f}{first * 1000:>9.0f}"
            if "auto" in settings:
                line += f"{statistics.mean(chosen[(load, case.name, 'auto')]):>8.2f}"
            line += "".join(f"{med[base] / med[setting]:>7.2f}" for setting in settings[1:])
            print(line)
    print(f"load average at end {os.getloadavg()}")


if __name__ == "__main__":
    main()
