"""One-thread stretches for small CPU operations (`labelsynth.layers.small_ops`)."""

import pytest
import torch

from labelsynth.layers import small_ops
from labelsynth.layers.small_ops import SMALL_OP_ELEMENTS, single_threaded, small_op_threads


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_single_threaded_sets_one_thread_and_restores_the_count(two_threads) -> None:
    with single_threaded():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2
    with pytest.raises(RuntimeError, match="inside"), single_threaded():
        raise RuntimeError("inside")
    assert torch.get_num_threads() == 2  # restored on errors too


def test_small_op_threads_only_for_small_cpu_work(two_threads) -> None:
    with small_op_threads(SMALL_OP_ELEMENTS, torch.device("cpu")):
        assert torch.get_num_threads() == 1
    with small_op_threads(SMALL_OP_ELEMENTS + 1, torch.device("cpu")):
        assert torch.get_num_threads() == 2
    with small_op_threads(1, torch.device("meta")):  # another device: the CPU thread count is left alone
        assert torch.get_num_threads() == 2
    assert torch.get_num_threads() == 2


def test_threshold_is_module_level(monkeypatch: pytest.MonkeyPatch, two_threads) -> None:
    monkeypatch.setattr(small_ops, "SMALL_OP_ELEMENTS", 10)
    with small_op_threads(11, torch.device("cpu")):
        assert torch.get_num_threads() == 2
