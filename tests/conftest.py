"""Shared pytest setup: offline Hugging Face environment and the real sample data (``../shared/samples``)."""

import os
import random
import tempfile
from pathlib import Path

# Before any Hugging Face import: never touch the network, never write to the user's cache.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
# Temporary Hub, torch (VGG/Inception downloads) and Gradio upload caches, one per pytest process: parallel workers
# (pytest-xdist, as .ci/run runs the suite) inherit the controller's environment and must not share them (a demo
# test that clears its cache would delete another worker's uploads).
for _variable in ("HF_HOME", "TORCH_HOME", "GRADIO_TEMP_DIR"):
    if os.environ.get("PYTEST_XDIST_WORKER") or _variable not in os.environ:
        os.environ[_variable] = tempfile.mkdtemp(prefix=f"labelsynth_{_variable.lower()}_")

import numpy as np
import pytest
import torch

SAMPLES_DIR = Path(__file__).resolve().parents[1] / ".." / "shared" / "samples"


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    """Real dataset samples (ADE20K, COCO-Stuff, Cityscapes, CelebAMask-HQ) next to the repository checkout."""
    if not SAMPLES_DIR.is_dir():
        pytest.skip(f"sample data not found at {SAMPLES_DIR.resolve()} (expected ../shared/samples next to the repo)")
    return SAMPLES_DIR.resolve()


@pytest.fixture(autouse=True)
def _seed_global_rngs() -> None:
    """Start every test from the same global RNG state, so that what a test draws without its own generator (say the
    spectral-norm vectors of a model it builds) does not depend on which tests ran before it."""
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
