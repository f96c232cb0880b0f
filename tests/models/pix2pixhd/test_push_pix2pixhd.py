"""push_to_hub / from_pretrained through the loopback fake Hub: the feature bank travels in model.safetensors."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests/: the shared fake Hub
from fake_hub import FakeHub

REPO = "tester/pix2pixhd-tiny"
CLIENT = r"""
import json
from pathlib import Path

import torch
torch.set_num_threads(1)
from transformers import pipeline

from labelsynth import LabelMapProcessor, Pix2PixHDConfig, Pix2PixHDModel

config = Pix2PixHDConfig(image_size=(32, 64), generator_type="local", ngf=4, n_downsample_global=2, n_blocks_global=1,
                         n_blocks_local=1, feature_mode="instance", nef=4, n_downsample_e=2, n_clusters=3)
model = Pix2PixHDModel(config).eval()
model.set_feature_clusters({7: torch.randn(2, 3), 26: torch.randn(3, 3)})
model.push_to_hub(REPO)
LabelMapProcessor(label_space="cityscapes", size={"height": 32, "width": 64}).push_to_hub(REPO)

loaded = Pix2PixHDModel.from_pretrained(REPO)
label = torch.full((1, 32, 64), 7)
label[:, 8:20, 8:30] = 26
instance = torch.where(label == 26, 26001, label)
with torch.no_grad():
    expected = model(label, instance, cluster={26001: 2, 7: 1}).images
    same = torch.equal(loaded(label, instance, cluster={26001: 2, 7: 1}).images, expected)
pipe = pipeline("label-to-image", model=REPO)
piped = pipe(label[0].numpy().astype("uint8"), instance_map=instance[0].numpy().astype("int32"),
             cluster={26001: 2, 7: 1}, output_type="pt")
result = {"bank": {k: v.tolist() for k, v in loaded.feature_bank().items()},
          "expected_bank": {k: v.tolist() for k, v in model.feature_bank().items()}, "same": same,
          "pipeline_max_diff": float((piped - (expected[0] + 1) / 2).abs().max())}
(Path(OUT) / "result.json").write_text(json.dumps(result))
"""


def test_push_and_download_keep_weights_and_feature_bank(tmp_path: Path) -> None:
    with FakeHub() as hub:
        hub.run_python(f"OUT = {str(tmp_path)!r}\nREPO = {REPO!r}\n" + CLIENT)
        readme = hub.store[REPO]["README.md"].decode()
        assert set(hub.store[REPO]) == {"README.md", "config.json", "model.safetensors", "preprocessor_config.json"}
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["bank"] == result["expected_bank"] and set(result["bank"]) == {"7", "26"}
    assert result["same"] and result["pipeline_max_diff"] < 1e-5
    assert "pix2pixHD" in readme and "https://arxiv.org/abs/1711.11585" in readme and "license: bsd" in readme
