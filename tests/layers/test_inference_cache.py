"""Derived inference weights: reused while their sources are unchanged, rebuilt after any change, never saved."""

import torch

from labelsynth.layers.inference_cache import cached_derivation, tensor_versions


def test_cached_derivation_follows_its_source_tensors() -> None:
    conv = torch.nn.Conv2d(2, 3, 3)
    builds = []

    def derived() -> torch.Tensor:
        key = tensor_versions(conv.weight, conv.bias)
        return cached_derivation(conv, "_doubled", key, lambda: builds.append(1) or conv.weight.detach() * 2)

    first = derived()
    assert derived() is first and len(builds) == 1  # unchanged sources: reused
    with torch.no_grad():
        conv.weight.add_(1)  # in place, as an optimizer step
    torch.testing.assert_close(derived(), (conv.weight * 2).detach())
    assert len(builds) == 2
    conv.load_state_dict({"weight": torch.zeros(3, 2, 3, 3), "bias": torch.zeros(3)})
    assert derived().abs().sum() == 0 and len(builds) == 3
    conv.double()  # cast: new tensors
    assert derived().dtype == torch.float64 and len(builds) == 4
    assert set(conv.state_dict()) == {"weight", "bias"}  # the cache is not part of the model's state
