"""labelsynth.utils.threads: the thread-count rule, the contention count, the explicit-choice check and the context
manager's set-and-restore (no timing assertions: the speed behind the rule is measured by benchmarks/bench_threads.py).
"""

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from labelsynth.utils import threads
from labelsynth.utils.threads import choose_num_threads, explicit_thread_choice, inference_threads

# Spins for at most 20 s; says so first, so that the test samples while it is runnable.
BUSY_CHILD = """import time
print("spinning", flush=True)
end = time.monotonic() + 20
while time.monotonic() < end:
    pass
"""


@pytest.fixture
def default_threads(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """A machine of 3 physical cores whose torch runs at its default (3 threads) with no thread env variables; torch's
    real thread count is restored afterwards."""
    for name in (*threads.THREAD_ENV_VARS, threads.OPT_OUT_ENV_VAR):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(threads, "physical_cores", lambda: 3)
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 3)
    before = torch.get_num_threads()
    torch.set_num_threads(3)
    yield 3
    torch.set_num_threads(before)


def test_choose_uses_the_cores_other_processes_leave_free() -> None:
    assert choose_num_threads(2, 2, 0) == 2
    assert choose_num_threads(2, 2, 1) == 1  # the complaint's case: one busy process on a 2-core VM
    assert choose_num_threads(16, 16, 3) == 13


def test_choose_never_exceeds_the_current_count_nor_drops_below_one() -> None:
    for current in range(1, 9):
        for busy in range(12):
            chosen = choose_num_threads(current, 8, busy)
            assert 1 <= chosen <= current
            if busy:
                assert chosen <= choose_num_threads(current, 8, busy - 1)  # more load never gives more threads
    assert choose_num_threads(4, 64, 0) == 4
    assert choose_num_threads(2, 2, 7) == 1


def test_choose_keeps_the_current_count_when_the_load_is_unknown() -> None:
    assert choose_num_threads(5, 2, None) == 5


@pytest.mark.parametrize(("args", "words"), [((0, 2, 0), "current (0)"), ((2, 0, 0), "cpus (0)"),
                                             ((2, 2, -1), "busy_elsewhere must be >= 0")])
def test_choose_rejects_impossible_counts(args: tuple[int, int, int], words: str) -> None:
    with pytest.raises(ValueError, match=words.replace("(", r"\(").replace(")", r"\)")):
        choose_num_threads(*args)


@pytest.mark.skipif(not Path("/proc/loadavg").is_file(), reason="the contention count reads Linux's /proc")
def test_runnable_elsewhere_counts_a_busy_process() -> None:
    child = subprocess.Popen([sys.executable, "-c", BUSY_CHILD], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "spinning"
        assert threads.runnable_elsewhere() >= 1  # a spinning process is runnable in every snapshot
    finally:
        child.kill()
        child.wait()


def test_runnable_elsewhere_is_none_without_proc(monkeypatch: pytest.MonkeyPatch) -> None:
    real_read = Path.read_text

    def read_text(self: Path, *args: object, **kwargs: object) -> str:
        if str(self) == "/proc/loadavg":
            raise FileNotFoundError(self)
        return real_read(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", read_text)
    assert threads.runnable_elsewhere() is None


def test_explicit_choices_are_recognised(default_threads: int, monkeypatch: pytest.MonkeyPatch) -> None:
    assert explicit_thread_choice() is None
    torch.set_num_threads(default_threads - 1)
    assert "torch.get_num_threads() is 2, not the default 3" in explicit_thread_choice()
    torch.set_num_threads(default_threads)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert explicit_thread_choice() == "OMP_NUM_THREADS is set"
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setenv(threads.OPT_OUT_ENV_VAR, "0")
    assert explicit_thread_choice() == "LABELSYNTH_AUTO_THREADS=0"


def test_inference_threads_lowers_under_load_and_restores(default_threads: int,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threads, "runnable_elsewhere", lambda: 1)
    with inference_threads("cpu") as n:
        assert n == torch.get_num_threads() == 2
    assert torch.get_num_threads() == default_threads
    with pytest.raises(RuntimeError, match="forward failed"), inference_threads(torch.device("cpu")):
        assert torch.get_num_threads() == 2
        raise RuntimeError("forward failed")
    assert torch.get_num_threads() == default_threads


def test_inference_threads_keeps_the_count_on_a_quiet_machine(default_threads: int,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threads, "runnable_elsewhere", lambda: 0)
    with inference_threads() as n:
        assert n == torch.get_num_threads() == default_threads
    assert torch.get_num_threads() == default_threads


def test_inference_threads_leaves_explicit_choices_and_other_devices(default_threads: int,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threads, "runnable_elsewhere", lambda: 2)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    with inference_threads("cpu") as n:
        assert n == torch.get_num_threads() == default_threads
    monkeypatch.delenv("OMP_NUM_THREADS")
    with inference_threads("meta") as n:  # any non-CPU device: the forward's work is not on CPU threads
        assert n == torch.get_num_threads() == default_threads
    assert torch.get_num_threads() == default_threads


def test_nested_and_concurrent_uses_restore_each_threads_count(default_threads: int,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threads, "runnable_elsewhere", lambda: 2)
    with inference_threads() as outer:
        with inference_threads() as inner:  # the outer count is no default any more: kept
            assert outer == inner == torch.get_num_threads() == 1
        assert torch.get_num_threads() == 1  # the outer forward still runs
    assert torch.get_num_threads() == default_threads

    # A enters, B enters while A is inside, A leaves while B is inside, B leaves. With OpenMP each thread has its own
    # count: A leaves with the count it had, the main thread's is untouched.
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen: dict[str, tuple[int, int, int]] = {}

    def forward(name: str, entered: threading.Event, wait_for: threading.Event, left: threading.Event | None) -> None:
        before = torch.get_num_threads()
        with inference_threads() as n:
            entered.set()
            wait_for.wait(10)
        if left is not None:
            left.set()
        seen[name] = (before, n, torch.get_num_threads())

    workers = [threading.Thread(target=forward, args=("a", a_in, b_in, a_out)),
               threading.Thread(target=lambda: a_in.wait(10) and forward("b", b_in, a_out, None))]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(20)
    assert set(seen) == {"a", "b"}
    assert seen["a"] == (default_threads, 1, default_threads)
    assert 1 <= seen["b"][1] <= seen["b"][0]
    assert torch.get_num_threads() == default_threads
