"""Fixtures of the SEAN tests: real CelebAMask-HQ samples (photos + part masks merged in SEAN's class order)."""

from pathlib import Path

import pytest
import torch
from sean_testing import load_celeba_sample


@pytest.fixture(scope="session")
def celeba_root(samples_dir: Path) -> Path:
    return samples_dir / "CoCosNet_celebahqedge"


@pytest.fixture(scope="session")
def celeba_pair(celeba_root: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Two real samples at 64x64: labels [2, 64, 64], photos [2, 3, 64, 64]."""
    samples = [load_celeba_sample(celeba_root, i, 64) for i in (2994, 22233)]
    return torch.stack([s[0] for s in samples]), torch.stack([s[1] for s in samples])
