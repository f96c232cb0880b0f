"""Smoke test of benchmarks/bench_training_vs_original.py in its tiny mode, without the original code (ours only).

No timing is asserted: only that every family runs a full iteration per variant and that the variants that change
the implementation but not the math (fused Adam, channels-last) give the first-iteration losses of the plain trainer.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_training_vs_original.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_training_vs_original", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("family", ["spade", "pix2pixhd", "oasis"])
def test_tiny_iteration_runs_and_variants_agree(bench, family: str) -> None:
    args = argparse.Namespace(threads=1, rounds=1, width_scale=1 / 16, size_scale=0.25,
                              batch_size={family: 1},
                              variants=["ours fp32", "ours dense one-hot", "ours fused Adam", "ours channels-last"])
    result = bench.run_family(family, None, args)
    sides = {side["name"]: side for side in result["sides"]}
    assert list(sides) == args.variants
    plain = sides["ours fp32"]["losses"]
    assert set(plain) == set(result["names"]) and all(math.isfinite(v) for v in plain.values())
    for name in ("ours dense one-hot", "ours fused Adam", "ours channels-last"):
        assert len(sides[name]["times"]) == 1
        for term, value in sides[name]["losses"].items():
            assert value == pytest.approx(plain[term], rel=1e-4, abs=1e-6), (name, term)


def test_the_original_served_by_its_own_process(bench) -> None:
    """The protocol between the benchmark and the original's process (`OriginalProcess` / `serve_original`), with
    a stand-in original that prints to stdout as the originals do: the prints do not corrupt the replies."""
    server_code = (
        "import sys, torch\n"
        f"sys.path.insert(0, {str(BENCH.parent)!r})\n"
        "import bench_training_vs_original as bench\n"
        "state = {'seeded': 0, 'steps': 0}\n"
        "def step():\n"
        "    state['steps'] += 1\n"
        "    print('an original chatting on stdout')\n"
        "    return {'seeded': float(state['seeded']), 'steps': float(state['steps'])}\n"
        "def reseed():\n"
        "    state['seeded'] += 1\n"
        "bench.serve_original(bench.Side('original', step, reseed=reseed), torch.device('cpu'))\n")
    server = bench.OriginalProcess([sys.executable, "-c", server_code])
    side = server.side()
    side.reseed()
    assert side.step() == {"seeded": 1.0, "steps": 1.0}
    timing = side.timed()
    assert timing.wall > 0 and timing.cpu >= 0 and timing.peak_mib is None
    assert side.step() == {"seeded": 1.0, "steps": 3.0}  # the timed call was a step too
    server.close()
    assert server.process.returncode == 0


def test_rejects_unknown_family(bench) -> None:
    with pytest.raises(ValueError, match="unknown --families"):
        bench.main(["--families", "spade,crn"])
