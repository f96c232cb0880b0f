"""Keeping freed memory in the process while training on the CPU (glibc only).

glibc's `malloc` serves blocks above its mmap threshold (which adapts, up to 32 MB) with fresh `mmap`s and unmaps
them on `free`. A training iteration allocates and frees hundreds of such blocks: activations, gradients and the
optimizer's temporaries of full-width models (a 1024x1024x3x3 weight is 37.7 MB). Every fresh page then costs a page
fault that the kernel zeroes, so a pix2pixHD iteration at 256x512 spent 0.7-2.7 s of its ~6.5 s in the kernel, and
how much depended on the heap's state, not on the computation (measured in `docs/performance.md`).

`keep_freed_cpu_memory()` tells glibc to serve every block from its heap and to keep freed memory (up to 2 GiB free at
the heap's top) instead of returning it to the system, as GPU caching allocators (and jemalloc / tcmalloc, which
Intel recommends for PyTorch on CPUs) do: the steady-state iterations reuse warm pages, and the process keeps its
peak memory while it lives, plus some: glibc's aligned allocations (torch's) leave some freed blocks unused at first,
so a loop repeating the same large blocks can grow the heap to a few times their size before it settles (1.6-3.7x in
`tests/utils/test_memory.py`'s pattern; a full-width pix2pixHD training process: 5.53 GB resident against 5.51 GB
without the setting). It is a process-wide setting; the trainer applies it when it trains on the CPU
(`TrainingArguments.keep_cpu_memory`).

A leaf module: it imports the standard library only.
"""

from __future__ import annotations

import ctypes
import platform

__all__ = ["keep_freed_cpu_memory"]

# mallopt parameters of glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_INT_MAX = 2**31 - 1


def _glibc() -> ctypes.CDLL | None:
    """The running glibc, or None on other C libraries (musl, macOS, Windows)."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    libc = ctypes.CDLL(None)  # the process's own symbols, glibc's among them
    return libc if hasattr(libc, "mallopt") else None


def keep_freed_cpu_memory() -> bool:
    """Make glibc keep freed memory for reuse instead of unmapping it: no `mmap` for large blocks, and the heap is
    trimmed only beyond 2 GiB free at its top.

    Returns:
        Whether the setting took effect: False where the C library is not glibc (nothing is changed there).
    """
    libc = _glibc()
    if libc is None:
        return False
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    # Both return 1 on success. mallopt takes an int: the largest trim threshold is INT_MAX, 2 GiB of free memory at
    # the top of the heap before any of it is returned.
    return bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, _INT_MAX))
