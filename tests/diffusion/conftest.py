"""Tiny random SD + ControlNet folders, built once per session (offline, ~6 s)."""

from pathlib import Path

import pytest

pytest.importorskip("diffusers", reason="the diffusion extra is not installed: pip install labelsynth[diffusion]")


@pytest.fixture(scope="session")
def tiny_sd(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from tiny_sd import save_tiny  # tests/diffusion/tiny_sd.py

    return save_tiny(tmp_path_factory.mktemp("tiny_sd"))
