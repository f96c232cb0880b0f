"""Small CPU operations on one intra-op thread, so that the fast inference paths do not lose on a loaded CPU.

Each multi-threaded torch operation is an OpenMP parallel region that ends when its slowest thread does. On a CPU
that other processes keep busy, a thread that lost its core stalls the region for a scheduler time slice
(milliseconds), and the idle threads spin meanwhile; a few large regions (the plain path's convolutions) hardly
notice, but hundreds of sub-millisecond ones (gathers, element-wise passes of the per-class fast paths) cost far
more than their work. Issue 17 measured SPADE's fast path at 0.94x the plain path under a load of ~4 on 2 cores.
Running those small operations on one thread costs little on an idle CPU and never waits for a descheduled thread.
Switching the count costs ~10 us: `torch.set_num_threads` sets this thread's OpenMP thread count.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

__all__ = ["SMALL_OP_ELEMENTS", "single_threaded", "small_op_threads"]

# Up to this many elements, a gather or element-wise pass takes well under a millisecond on one core. Measured
# with ADE20K SPADE at 256x256 on 2 Xeon cores (AVX-512, and AVX2 only): the 8x8 to 32x32 levels' modulation
# (up to 32x32 pixels x 2 x 1024 channels) runs on one thread.
SMALL_OP_ELEMENTS = 2**21


@contextlib.contextmanager
def single_threaded() -> Iterator[None]:
    """Run the enclosed CPU operations on one intra-op thread (restores the previous count)."""
    threads = torch.get_num_threads()
    if threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def small_op_threads(numel: int, device: torch.device) -> contextlib.AbstractContextManager:
    """`single_threaded()` for a stretch of CPU operations on tensors of at most `numel` elements
    (`SMALL_OP_ELEMENTS`), else no change; on other devices the CPU thread count does not matter."""
    if device.type == "cpu" and numel <= SMALL_OP_ELEMENTS:
        return single_threaded()
    return contextlib.nullcontext()
