"""Fixtures of the hub tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from labelsynth import LabelMapProcessor, SPADEConfig, SPADEModel
from labelsynth.hub.fetch import _write_card_and_marker
from labelsynth.hub.releases import get_release


@pytest.fixture
def converted_cache(tmp_path: Path, monkeypatch) -> Path:
    """A labelsynth cache holding ``spade-ade20k`` as `fetch_release` leaves it (card, release record), with a small
    SPADE of the ADE20K preset's label space instead of the 96M-parameter original; ``LABELSYNTH_CACHE`` points at it."""
    cache = tmp_path / "labelsynth-cache"
    folder = cache / "models" / "spade-ade20k"
    config = SPADEConfig.for_dataset("ade20k", ngf=4, spade_hidden_nc=8, image_size=(32, 32))
    SPADEModel(config).eval().save_pretrained(folder)
    LabelMapProcessor(label_space=config.label_space, size={"height": 32, "width": 32}).save_pretrained(folder)
    _write_card_and_marker("spade-ade20k", get_release("spade-ade20k"), folder, {"checkpoints.tar.gz": "0" * 64})
    monkeypatch.setenv("LABELSYNTH_CACHE", str(cache))
    return cache
