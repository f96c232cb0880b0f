"""Push a tiny `SPADEModel` and its `LabelMapProcessor` to the loopback fake Hub, check the stored files, download back.

All client work runs in ONE subprocess wired to the fake Hub (``FakeHub.run_python``); it writes what it saw to
``result.json`` and its local state dict to ``local.safetensors``, and the tests below check the hub's store.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from safetensors.numpy import load as load_safetensors
from safetensors.numpy import load_file

# tests/ is not a package: put it on sys.path to import the shared fake Hub.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fake_hub import FakeHub

from labelsynth.hub import GENERATED_MARKER

REPO = "tester/spade-tiny"

CLIENT = r"""
import json
from pathlib import Path

import torch
torch.set_num_threads(1)  # a few shared CPU cores: one intra-op thread is much faster here
from safetensors.torch import save_file
from transformers import AutoImageProcessor, pipeline

import labelsynth
from labelsynth import LabelMapProcessor, SPADEConfig, SPADEModel

out = Path(OUT)  # OUT and REPO are prepended by the fixture
torch.manual_seed(0)
model = SPADEModel(SPADEConfig.for_dataset("ade20k", ngf=8, image_size=(64, 64))).eval()
processor = LabelMapProcessor(label_space="ade20k", size={"height": 64, "width": 64})
save_file({k: v.contiguous() for k, v in model.state_dict().items()}, out / "local.safetensors")

result = {"model_push": model.push_to_hub(REPO).oid}
result["processor_push"] = str(processor.push_to_hub(REPO))

# Download back from the fake hub (HF_HUB_OFFLINE is unset in this process) and compare outputs.
loaded = SPADEModel.from_pretrained(REPO)
loaded_processor = AutoImageProcessor.from_pretrained(REPO)
labels = torch.randint(0, 151, (2, 64, 64), generator=torch.Generator().manual_seed(1))
with torch.no_grad():
    expected = model(labels).images
    result["loaded_class"] = type(loaded).__name__
    result["loaded_equal"] = torch.equal(loaded(labels).images, expected)
    model.fast_inference = loaded.fast_inference = False  # the paper's plain computation too
    result["plain_path_equal"] = torch.equal(loaded(labels).images, model(labels).images)
result["processor_class"] = type(loaded_processor).__name__
result["processor_size"] = loaded_processor.size
result["processor_space"] = loaded_processor.label_space.name
pipe = pipeline("label-to-image", model=REPO)
result["pipeline_max_diff"] = float((pipe(labels[0], output_type="pt") - ((expected[0] + 1) / 2)).abs().max())
(out / "result.json").write_text(json.dumps(result))
"""


@pytest.fixture(scope="module")
def pushed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeHub, Path, dict[str, Any]]]:
    """Run the client once; yield (hub, output folder, result dict)."""
    out = tmp_path_factory.mktemp("push_spade")
    with FakeHub() as hub:
        hub.run_python(f"OUT = {str(out)!r}\nREPO = {REPO!r}\n" + CLIENT)
        yield hub, out, json.loads((out / "result.json").read_text())


def _meta(readme: str) -> dict[str, Any]:
    return yaml.safe_load(readme.split("---\n", 2)[1])


def test_pushed_files(pushed: tuple[FakeHub, Path, dict[str, Any]]) -> None:
    hub, _, _ = pushed
    assert set(hub.store[REPO]) == {"README.md", "config.json", "model.safetensors", "preprocessor_config.json"}


def test_pushed_model_card(pushed: tuple[FakeHub, Path, dict[str, Any]]) -> None:
    hub, _, _ = pushed
    readme = hub.store[REPO]["README.md"].decode()
    meta = _meta(readme)
    assert meta["library_name"] == "labelsynth"  # still ours after the processor push
    assert meta["pipeline_tag"] == "image-to-image"
    assert meta["license"] == "cc-by-nc-sa-4.0"
    assert {"labelsynth", "label-to-image", "spade", "gaugan"} <= set(meta["tags"])
    assert GENERATED_MARKER in readme
    assert f"# {REPO}" in readme
    assert "SPADE" in readme and "https://arxiv.org/abs/1903.07291" in readme
    assert f'pipeline("label-to-image", model="{REPO}")' in readme
    assert "from labelsynth import SPADEModel" in readme
    assert f'SPADEModel.from_pretrained("{REPO}")' in readme
    assert "Label space: `ade20k`" in readme


def test_pushed_config_and_preprocessor(pushed: tuple[FakeHub, Path, dict[str, Any]]) -> None:
    hub, _, _ = pushed
    config = json.loads(hub.store[REPO]["config.json"])
    assert config["model_type"] == "spade"
    assert config["architectures"] == ["SPADEModel"]
    assert config["ngf"] == 8 and config["image_size"] == [64, 64] and config["label_space"] == "ade20k"
    processor = json.loads(hub.store[REPO]["preprocessor_config.json"])
    assert processor["image_processor_type"] == "LabelMapProcessor"
    assert processor["size"] == {"height": 64, "width": 64}
    assert processor["label_space"]["name"] == "ade20k" and len(processor["label_space"]["names"]) == 151


def test_pushed_weights_equal_local_state_dict(pushed: tuple[FakeHub, Path, dict[str, Any]]) -> None:
    hub, out, _ = pushed
    remote = load_safetensors(hub.store[REPO]["model.safetensors"])
    local = load_file(out / "local.safetensors")
    assert set(remote) == set(local)
    assert any(key.endswith("parametrizations.weight.original") for key in remote)  # spectral norm kept as is
    for key, value in local.items():
        assert remote[key].dtype == value.dtype and np.array_equal(remote[key], value), key


def test_download_gives_identical_outputs(pushed: tuple[FakeHub, Path, dict[str, Any]]) -> None:
    hub, _, result = pushed
    assert result["loaded_class"] == "SPADEModel"
    assert result["loaded_equal"] and result["plain_path_equal"]
    assert result["processor_class"] == "LabelMapProcessor"
    assert result["processor_size"] == {"height": 64, "width": 64} and result["processor_space"] == "ade20k"
    # pipeline("label-to-image", model=REPO) resolves through AutoModel/AutoImageProcessor to the same weights.
    assert result["pipeline_max_diff"] < 1e-5
    # Really fetched from the (fake) Hub, by branch or by the commit it resolved to.
    downloads = {path.rsplit("/", 1)[1] for method, path in hub.requests
                 if method == "GET" and path.startswith(f"/{REPO}/resolve/")}
    assert {"config.json", "model.safetensors", "preprocessor_config.json"} <= downloads
