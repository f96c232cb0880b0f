"""Fixtures for the labelsynth.data tests: small synthetic rows whose colours encode their labels."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from labelsynth.label_spaces import LabelSpace

INSTANCE_BASE = 40000  # instance ids = INSTANCE_BASE + label * 100 + block index: 16-bit values > 32767


@pytest.fixture(scope="session")
def space10() -> LabelSpace:
    """A 10-class space with distinct palette colours and 255 = unlabeled."""
    return LabelSpace.custom([f"class{i}" for i in range(10)], ignore_index=255, name="test10")


def _blocks(h: int, w: int, block: int, seed: int, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    bh, bw = -(-h // block), -(-w // block)
    ids = rng.integers(0, num_classes, (bh, bw))
    index = np.arange(bh * bw).reshape(bh, bw) % 100
    up = np.ones((block, block), dtype=np.int64)
    return np.kron(ids, up)[:h, :w], np.kron(index, up)[:h, :w]


@pytest.fixture(scope="session")
def make_row(space10):
    """Factory: a row {image, label, instance} of size (h, w) with the label colour-coded into the image."""

    def make(h: int = 48, w: int = 64, *, block: int = 8, seed: int = 0, space: LabelSpace = space10) -> dict:
        label, index = _blocks(h, w, block, seed, space.num_classes)
        image = space.palette[label]
        instance = INSTANCE_BASE + label * 100 + index
        return {
            "image": Image.fromarray(image.astype(np.uint8), mode="RGB"),
            "label": Image.fromarray(label.astype(np.uint8), mode="L"),
            "instance": Image.fromarray(instance.astype(np.uint16)),
        }

    return make
