"""Our spectral-norm parametrization must train exactly like the legacy hook the original models used."""

import copy

import torch
from torch import nn

from labelsynth.layers.spectral_norm import spectral_norm


def test_matches_the_legacy_hook_in_training_and_eval() -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 6, 3)
    legacy = nn.utils.spectral_norm(copy.deepcopy(conv))
    ours = spectral_norm(copy.deepcopy(conv))
    with torch.no_grad():  # same starting vectors
        ours.parametrizations.weight[0]._u.copy_(legacy.weight_u)
        ours.parametrizations.weight[0]._v.copy_(legacy.weight_v)
    x = torch.randn(2, 4, 8, 8)
    for _ in range(3):  # each training forward runs one power iteration
        torch.testing.assert_close(ours(x), legacy(x), rtol=0, atol=1e-6)
    torch.testing.assert_close(ours.parametrizations.weight[0]._u, legacy.weight_u, rtol=0, atol=1e-7)
    ours.eval()
    legacy.eval()
    torch.testing.assert_close(ours(x), legacy(x), rtol=0, atol=1e-6)


def test_torch_parametrization_differs_in_training() -> None:
    """Why we have our own: torch's parametrization iterates u before v, so its training steps differ."""
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 6, 3)
    legacy = nn.utils.spectral_norm(copy.deepcopy(conv))
    theirs = nn.utils.parametrizations.spectral_norm(copy.deepcopy(conv))
    with torch.no_grad():
        theirs.parametrizations.weight[0]._u.copy_(legacy.weight_u)
        theirs.parametrizations.weight[0]._v.copy_(legacy.weight_v)
    x = torch.randn(2, 4, 8, 8)
    assert not torch.allclose(theirs(x), legacy(x), atol=1e-6)


def test_transposed_conv_uses_output_dim_and_keys_are_the_parametrization_keys() -> None:
    deconv = spectral_norm(nn.ConvTranspose2d(4, 6, 3))
    assert deconv.parametrizations.weight[0]._u.shape == (6,)
    assert set(spectral_norm(nn.Conv2d(2, 3, 1)).state_dict()) == {
        "bias", "parametrizations.weight.original", "parametrizations.weight.0._u", "parametrizations.weight.0._v"}
