"""Shared fixtures of the labelsynth.metrics tests: a random-weight FID Inception and a tiny random SegFormer."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread() -> Iterator[None]:
    """On a few shared CPU cores intra-op threads fight other processes (Inception forwards get several times
    slower): use one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def random_inception():
    """`InceptionFeatureExtractor` with random weights (built once: 24M parameters)."""
    from labelsynth.metrics import InceptionFeatureExtractor

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return InceptionFeatureExtractor(None, seed=0)


def build_tiny_segformer(num_labels: int = 5, seed: int = 0):
    """A ~7k-parameter `SegformerForSemanticSegmentation` (random weights, no download) and its image processor."""
    from transformers import SegformerConfig, SegformerForSemanticSegmentation, SegformerImageProcessor

    config = SegformerConfig(
        num_channels=3, num_encoder_blocks=2, depths=[1, 1], sr_ratios=[2, 1], hidden_sizes=[8, 16],
        patch_sizes=[7, 3], strides=[4, 2], num_attention_heads=[1, 2], mlp_ratios=[2, 2], decoder_hidden_size=16,
        num_labels=num_labels,
    )
    torch.manual_seed(seed)
    model = SegformerForSemanticSegmentation(config).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        processor = SegformerImageProcessor(size={"height": 32, "width": 32})
    return model, processor


@pytest.fixture
def tiny_segformer():
    return build_tiny_segformer()
