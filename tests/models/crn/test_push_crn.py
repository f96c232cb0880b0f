"""Push a tiny `CRNModel` with its processor to the loopback fake Hub and use it back through the pipeline."""

import json
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from fake_hub import FakeHub

REPO = "tester/crn-tiny"
CLIENT = r"""
import json
from pathlib import Path

import torch
torch.set_num_threads(1)
from transformers import pipeline

from labelsynth import CRNConfig, CRNModel, LabelMapProcessor

torch.manual_seed(0)
model = CRNModel(CRNConfig(module_channels=[8, 8, 4], num_outputs=3, image_size=(16, 32))).eval()
model.push_to_hub(REPO)
LabelMapProcessor(label_space="cityscapes", size=(16, 32)).push_to_hub(REPO)
labels = torch.randint(0, 35, (1, 16, 32), generator=torch.Generator().manual_seed(1))
with torch.no_grad():
    expected = model(labels, output_index=2).images
    loaded = CRNModel.from_pretrained(REPO)
    result = {"loaded_equal": torch.equal(loaded(labels, output_index=2).images, expected)}
pipe = pipeline("label-to-image", model=REPO)
image = pipe(labels[0], output_index=2, output_type="pt")
result["pipeline_max_diff"] = float((image - (expected[0] + 1) / 2).abs().max())
(Path(OUT) / "result.json").write_text(json.dumps(result))
"""


def test_push_to_hub_and_back(tmp_path: Path) -> None:
    with FakeHub() as hub:
        hub.run_python(f"OUT = {str(tmp_path)!r}\nREPO = {REPO!r}\n" + CLIENT)
        store = hub.store[REPO]
    result = json.loads((tmp_path / "result.json").read_text())
    assert set(store) == {"README.md", "config.json", "model.safetensors", "preprocessor_config.json"}
    meta = yaml.safe_load(store["README.md"].decode().split("---\n", 2)[1])
    assert meta["library_name"] == "labelsynth" and meta["license"] == "mit" and "crn" in meta["tags"]
    assert json.loads(store["config.json"])["model_type"] == "crn"
    assert result["loaded_equal"]
    assert result["pipeline_max_diff"] <= 1 / 255 + 1e-6  # uint8 rounding in postprocess at most
