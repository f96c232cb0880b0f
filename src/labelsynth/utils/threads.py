"""Intra-op CPU threads for one inference forward: fewer threads while other processes keep the cores busy.

What `benchmarks/bench_threads.py` measured (2-core Xeon VM with AVX-512, torch 2.13, batch 1, the built-in model at
128x256 to 512x1024 and a full-size ADE20K SPADE at 256x256: 1.7 to 52 G multiply-adds per forward):

- Quiet CPU (this session given scheduler priority over the other sessions): 2 threads are 1.34-1.73x faster than
  1 at every size, the built-in 128x256 model included (228 -> 170 ms). The work's size does not pick the thread
  count, so there is no work-size term. (AVX2-only approximation, bfloat16 in ATen: 2 threads 1.06-1.11x faster.)
- One busy process beside the forward: 1 thread keeps its quiet speed, 2 threads are 1.3-1.9x slower than 1: every
  parallel region waits for the thread that shares its core. One busy process per core: 2 threads 1.2-2x slower;
  on this machine's real load (other sessions' tests), 1.6-4.5x slower. That is the complaint (5-8 s with 2
  threads, 2 s with 1, on a loaded 2-core VM).
- Changing the count between forwards costs nothing measurable (the first forward after a change is as fast).

So the policy counts the runnable tasks of *other* processes right before the forward (`/proc/loadavg`'s running
count minus this process's running threads, least of 3 snapshots) and uses the cores they leave free, never more
than the current `torch.get_num_threads()` and never fewer than 1: `choose_num_threads`. Under every load above it
picked 1 thread and ran at the 1-thread speed.

An explicit choice is never overridden; `inference_threads` changes nothing when
- `OMP_NUM_THREADS` or `MKL_NUM_THREADS` is set (torch takes its count from them),
- `torch.get_num_threads()` differs from torch's default, the number of physical cores (so the user called
  `torch.set_num_threads`); a call that sets exactly the default cannot be told apart: use the next switch,
- `LABELSYNTH_AUTO_THREADS=0` is set.

Limits: Linux only (elsewhere nothing changes). The count sees runnable tasks, not their scheduling weight: a forward
that outranks the others (nice, autogroup, cgroup shares) still backs off (measured: 1 thread where 2 were 1.3-1.7x
faster). `/proc/loadavg` covers the whole kernel, so in a container pinned to some CPUs of a busy host the count may
back off more than needed. Steal time of a VM is invisible to it. Outputs may differ in the last bits between thread
counts (float32 reductions split differently, ~4e-7 seen), so under changing load two calls with the same seed can
differ that much; set the threads explicitly for bitwise reproducibility.
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

THREAD_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
OPT_OUT_ENV_VAR = "LABELSYNTH_AUTO_THREADS"


def choose_num_threads(current: int, cpus: int, busy_elsewhere: int | None) -> int:
    """The intra-op thread count for one forward: the cores that other processes leave free, within `[1, current]`.

    Args:
        current: the thread count torch uses now (`torch.get_num_threads()`), the ceiling.
        cpus: CPUs of the machine (`os.cpu_count()`).
        busy_elsewhere: runnable tasks of other processes, or None when unknown (then `current` is kept).

    Returns:
        `max(1, min(current, cpus - busy_elsewhere))`.
    """
    if current < 1 or cpus < 1:
        raise ValueError(f"current ({current}) and cpus ({cpus}) must be at least 1")
    if busy_elsewhere is None:
        return current
    if busy_elsewhere < 0:
        raise ValueError(f"busy_elsewhere must be >= 0 (a count of runnable tasks), got {busy_elsewhere}")
    return max(1, min(current, cpus - busy_elsewhere))


def runnable_elsewhere(samples: int = 3, interval: float = 0.001) -> int | None:
    """Runnable tasks of other processes (Linux), or None where /proc cannot tell.

    The least of `samples` snapshots `interval` seconds apart: a busy process is runnable in all of them, a kernel
    thread waking for a moment is not (each snapshot costs ~0.3 ms).
    """
    counts = []
    for i in range(samples):
        if i:
            time.sleep(interval)
        try:
            running = int(Path("/proc/loadavg").read_text().split()[3].split("/")[0])
        except (OSError, ValueError, IndexError):
            return None
        own = 0
        for stat in Path("/proc/self/task").glob("*/stat"):
            try:
                text = stat.read_text()
            except OSError:  # the thread ended meanwhile
                continue
            own += text[text.rindex(")") + 2] == "R"  # the state follows the parenthesised command name
        counts.append(max(0, running - own))
    return min(counts)


@functools.lru_cache(maxsize=1)
def physical_cores() -> int | None:
    """Physical cores of the machine (distinct package/core pairs in sysfs), torch's default thread count."""
    cores = set()
    for topology in Path("/sys/devices/system/cpu").glob("cpu[0-9]*/topology"):
        try:
            cores.add(((topology / "physical_package_id").read_text(), (topology / "core_id").read_text()))
        except OSError:  # an offline CPU has no topology
            continue
    return len(cores) or None


def explicit_thread_choice() -> str | None:
    """Why the thread count counts as the user's choice (an env variable, a non-default count), else None."""
    if os.environ.get(OPT_OUT_ENV_VAR, "").strip() == "0":
        return f"{OPT_OUT_ENV_VAR}=0"
    for name in THREAD_ENV_VARS:
        if os.environ.get(name, "").strip():
            return f"{name} is set"
    import torch

    current, default = torch.get_num_threads(), physical_cores()
    if current != default:
        return f"torch.get_num_threads() is {current}, not the default {default}"
    return None


@contextlib.contextmanager
def inference_threads(device: torch.device | str = "cpu") -> Iterator[int]:
    """Run the body (one forward) with `choose_num_threads`' count on CPU, then restore the count it had.

    Nothing changes for other devices or when the count is the user's choice (`explicit_thread_choice`); a nested
    use therefore keeps the outer one's count. torch's count belongs to the calling thread once that thread has run
    a parallel op (OpenMP), so concurrent forwards in other threads keep theirs; a thread started during the body
    begins with the body's count.

    Yields:
        The intra-op thread count the body runs with.
    """
    import torch

    before = torch.get_num_threads()
    chosen = before
    if torch.device(device).type == "cpu" and explicit_thread_choice() is None:
        chosen = choose_num_threads(before, os.cpu_count() or 1, runnable_elsewhere())
    if chosen != before:
        torch.set_num_threads(chosen)
    try:
        yield chosen
    finally:
        if chosen != before:
            torch.set_num_threads(before)
