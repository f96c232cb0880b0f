"""`compile_for_inference` / `pipeline(..., compile=True)`: the compiled generator computes what the fast path does."""

from __future__ import annotations

import pytest
import torch
from helpers import randomize_weights

from labelsynth import SPADEConfig, SPADEModel


def test_compiled_equals_the_fast_path() -> None:
    # Small enough that inductor compiles it in seconds; spectral norm, BatchNorm and instance edges all in the graph.
    config = SPADEConfig(label_space="cityscapes", label_nc=35, ngf=4, spade_hidden_nc=8, image_size=(32, 64),
                         use_instance_edges=True)
    model = SPADEModel(config).eval()
    randomize_weights(model)
    keys = list(model.state_dict())
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 35, (2, 4, 8), generator=g).repeat_interleave(8, 1).repeat_interleave(8, 2)
    with torch.no_grad():
        fast = model(labels, labels).images
        assert model.compile_for_inference() is model
        assert not model.fast_inference  # inductor compiles the dense computation
        compiled = model(labels, labels).images
    assert fast.std() > 0.05
    torch.testing.assert_close(compiled, fast, rtol=0, atol=1e-4)
    assert list(model.state_dict()) == keys  # saving is unaffected


def test_pipeline_compile_option_is_opt_in(monkeypatch: pytest.MonkeyPatch) -> None:
    from labelsynth import pipeline

    calls = []
    monkeypatch.setattr(SPADEModel, "compile_for_inference", lambda self: calls.append(self) or self)
    pipeline("label-to-image", dtype=torch.float32)
    assert calls == []
    pipe = pipeline("label-to-image", dtype=torch.float32, compile=True)
    assert calls == [pipe.model]
