"""``ModelCardMixin`` end to end: save_pretrained and push_to_hub against the loopback fake Hub.

All client work happens in ONE subprocess (importing torch + transformers costs seconds); it writes what it saw to
``result.json`` and the local files under a temp folder, and the tests below check the hub's store and those files.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from safetensors.numpy import load as load_safetensors
from safetensors.numpy import load_file

# tests/ is not a package: put it on sys.path to import the shared fake Hub.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fake_hub import FakeHub, fake_hub_fixture  # noqa: F401  (the `fake_hub` fixture)

from labelsynth.hub import GENERATED_MARKER

HAND_WRITTEN = "---\nlicense: mit\n---\n# Notes written by a person\n"

CLIENT = r"""
import json
from pathlib import Path

import torch
from torch import nn
from safetensors.torch import save_file
from huggingface_hub import HfApi, snapshot_download
from transformers import AutoConfig, AutoModel, PreTrainedConfig, PreTrainedModel
from transformers.utils.hub import create_and_tag_model_card

from labelsynth.hub import ModelCardInfo, ModelCardMixin

out = Path(OUT)  # OUT and HAND_WRITTEN are prepended by the fixture


class TinyLabelConfig(PreTrainedConfig):
    model_type = "tiny-label-gen"

    def __init__(self, label_nc=5, hidden=4, contain_dontcare_label=True, use_instance_edges=False, **kwargs):
        self.label_nc, self.hidden = label_nc, hidden
        self.contain_dontcare_label, self.use_instance_edges = contain_dontcare_label, use_instance_edges
        self.label_space = "tiny-space"
        super().__init__(**kwargs)


class TinyLabelModel(ModelCardMixin, PreTrainedModel):
    config_class = TinyLabelConfig
    main_input_name = "label_map"
    input_modalities = "image"
    model_card_info = ModelCardInfo(
        architecture="TinyGen", paper_title="A tiny generator", paper_url="https://example.org/tiny",
        description="A tiny label-to-image test model.", weights_license="cc-by-nc-sa-4.0",
    )

    def __init__(self, config):
        super().__init__(config)
        self.conv = nn.Conv2d(config.label_nc + 1, config.hidden, 3, padding=1)
        self.post_init()

    def forward(self, label_map):
        return self.conv(label_map)


AutoConfig.register("tiny-label-gen", TinyLabelConfig)
AutoModel.register(TinyLabelConfig, TinyLabelModel)

torch.manual_seed(0)
model = TinyLabelModel(TinyLabelConfig())
model.card_kwargs = {"datasets": ["tester/tiny-labels"], "training": {"command": "python train_tiny.py --steps 1"}}
save_file({k: v.contiguous() for k, v in model.state_dict().items()}, out / "local_weights.safetensors")
result = {}

# 1. push_to_hub to a new repo (namespace resolved by the hub), with an extra tag.
result["push_oid"] = model.push_to_hub("tiny", tags=["extra-tag"]).oid

# 2. download back from the fake hub.
loaded = AutoModel.from_pretrained("tester/tiny")
result["loaded_class"] = type(loaded).__name__
result["loaded_equal"] = all(torch.equal(loaded.state_dict()[k], v) for k, v in model.state_dict().items())
result["snapshot_files"] = sorted(p.name for p in Path(snapshot_download("tester/tiny")).iterdir())

# 3. a push to another branch of the same repo.
result["dev_oid"] = model.push_to_hub("tester/tiny", revision="dev", commit_message="Push to dev").oid

# 4. a repo whose README.md was written by a person: kept; then replaced when asked.
model.push_to_hub("tester/handwritten")
model.push_to_hub("tester/overwritten", overwrite_model_card=True)
# 4b. transformers' placeholder card (what e.g. processor.push_to_hub uploads first) is replaced without asking.
HfApi().upload_file(path_or_fileobj=str(create_and_tag_model_card("tester/auto-card")).encode(),
                    path_in_repo="README.md", repo_id="tester/auto-card")
result["auto_card_before"] = HfApi().hf_hub_download("tester/auto-card", "README.md")
model.push_to_hub("tester/auto-card")

# 5. local save_pretrained: card written; hand-written README kept; write_model_card=False writes none.
model.save_pretrained(out / "local", card_kwargs={"model_id": "tester/local-id"})
(out / "kept").mkdir()
(out / "kept" / "README.md").write_text(HAND_WRITTEN)
model.save_pretrained(out / "kept")
model.save_pretrained(out / "nocard", write_model_card=False)


class NoInfoModel(TinyLabelModel):  # no ModelCardInfo -> no card (and a warning)
    model_card_info = None


NoInfoModel(TinyLabelConfig()).save_pretrained(out / "noinfo")

# 6. transformers' save_pretrained(push_to_hub=True) form.
model.save_pretrained(out / "via-save", push_to_hub=True, repo_id="tester/via-save")

(out / "result.json").write_text(json.dumps(result))
"""


@pytest.fixture(scope="module")
def pushed(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Run the client once; yield (hub, output folder, result dict)."""
    out = tmp_path_factory.mktemp("push")
    with FakeHub() as hub:
        hub.seed("tester/handwritten", {"README.md": HAND_WRITTEN})
        hub.seed("tester/overwritten", {"README.md": HAND_WRITTEN})
        hub.seed("tester/auto-card", {})
        hub.run_python(f"OUT = {str(out)!r}\nHAND_WRITTEN = {HAND_WRITTEN!r}\n" + CLIENT)
        yield hub, out, json.loads((out / "result.json").read_text())


def _meta(readme: bytes | str) -> dict[str, Any]:
    text = readme.decode() if isinstance(readme, bytes) else readme
    return yaml.safe_load(text.split("---\n", 2)[1])


def test_pushed_readme_is_labelsynth_card(pushed: Any) -> None:
    hub, _, _ = pushed
    readme = hub.store["tester/tiny"]["README.md"].decode()
    meta = _meta(readme)
    assert meta["library_name"] == "labelsynth"  # not transformers' auto card
    assert meta["pipeline_tag"] == "image-to-image"
    assert meta["license"] == "cc-by-nc-sa-4.0"
    assert meta["datasets"] == ["tester/tiny-labels"]  # from model.card_kwargs
    assert meta["tags"] == ["labelsynth", "label-to-image", "semantic-image-synthesis", "gan", "tinygen", "extra-tag"]
    assert GENERATED_MARKER in readme
    assert 'pipeline("label-to-image", model="tester/tiny")' in readme  # the resolved repo id
    assert 'TinyLabelModel.from_pretrained("tester/tiny")' in readme  # class from config.architectures
    assert "- Label space: `tiny-space`" in readme and "valid ids 0..5, plus 255" in readme  # from the config (5 ids + don't care)
    assert "python train_tiny.py --steps 1" in readme


def test_pushed_weights_and_config(pushed: Any) -> None:
    hub, out, result = pushed
    files = hub.store["tester/tiny"]
    assert set(files) == {"README.md", "config.json", "model.safetensors"}
    remote = load_safetensors(files["model.safetensors"])
    local = load_file(out / "local_weights.safetensors")
    assert remote.keys() == local.keys() == {"conv.weight", "conv.bias"}
    for key, value in local.items():
        assert (remote[key] == value).all(), key
    config = json.loads(files["config.json"])
    assert config["model_type"] == "tiny-label-gen" and config["architectures"] == ["TinyLabelModel"]
    assert config["label_nc"] == 5
    assert result["push_oid"] == hub.repos["tester/tiny"].heads["main"]


def test_download_from_fake_hub(pushed: Any) -> None:
    hub, _, result = pushed
    assert result["loaded_class"] == "TinyLabelModel" and result["loaded_equal"] is True
    assert result["snapshot_files"] == ["README.md", "config.json", "model.safetensors"]
    assert ("HEAD", "/tester/tiny/resolve/" + result["push_oid"] + "/model.safetensors") in hub.requests


def test_push_to_branch(pushed: Any) -> None:
    hub, _, result = pushed
    repo = hub.repos["tester/tiny"]
    assert repo.heads["dev"] == result["dev_oid"] != repo.heads["main"]
    assert repo.branches["dev"]["model.safetensors"] == repo.branches["main"]["model.safetensors"]
    assert _meta(repo.branches["dev"]["README.md"])["library_name"] == "labelsynth"


def test_hand_written_remote_readme_is_kept_unless_overwrite(pushed: Any) -> None:
    hub, _, _ = pushed
    kept = hub.store["tester/handwritten"]
    assert kept["README.md"].decode() == HAND_WRITTEN
    assert {"config.json", "model.safetensors"} <= set(kept)  # the rest was still pushed
    replaced = hub.store["tester/overwritten"]["README.md"].decode()
    assert GENERATED_MARKER in replaced and _meta(replaced)["library_name"] == "labelsynth"


def test_transformers_placeholder_card_is_replaced(pushed: Any) -> None:
    hub, _, result = pushed
    before = Path(result["auto_card_before"]).read_text()
    assert _meta(before)["library_name"] == "transformers"  # what transformers alone would leave on the repo
    after = hub.store["tester/auto-card"]["README.md"].decode()
    assert _meta(after)["library_name"] == "labelsynth" and GENERATED_MARKER in after


def test_save_pretrained_writes_card_locally(pushed: Any) -> None:
    _, out, _ = pushed
    readme = (out / "local" / "README.md").read_text()
    assert _meta(readme)["library_name"] == "labelsynth"
    assert 'model="tester/local-id"' in readme  # card_kwargs argument overrides the default (the folder path)
    assert {p.name for p in (out / "local").iterdir()} == {"README.md", "config.json", "model.safetensors"}
    assert (out / "kept" / "README.md").read_text() == HAND_WRITTEN
    assert (out / "kept" / "model.safetensors").is_file()
    assert not (out / "nocard" / "README.md").exists() and (out / "nocard" / "config.json").is_file()
    assert not (out / "noinfo" / "README.md").exists() and (out / "noinfo" / "model.safetensors").is_file()


def test_save_pretrained_push_to_hub(pushed: Any) -> None:
    hub, out, _ = pushed
    remote = hub.store["tester/via-save"]
    assert set(remote) == {"README.md", "config.json", "model.safetensors"}
    assert 'model="tester/via-save"' in remote["README.md"].decode()
    assert remote["model.safetensors"] == (out / "via-save" / "model.safetensors").read_bytes()
    assert 'model="tester/via-save"' in (out / "via-save" / "README.md").read_text()


def test_fake_hub_fixture_upload_download_and_errors(fake_hub: FakeHub) -> None:
    """The reusable fixture on its own: plain huggingface_hub calls, no torch (fast)."""
    fake_hub.seed("tester/seeded", {"notes.txt": "seeded"})
    proc = fake_hub.run_python("""
        from huggingface_hub import HfApi, hf_hub_download
        from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError

        api = HfApi()
        api.create_repo("plain")
        api.upload_file(path_or_fileobj=b"hello", path_in_repo="dir/a.txt", repo_id="tester/plain")
        print(open(hf_hub_download("tester/plain", "dir/a.txt")).read())
        print(open(hf_hub_download("tester/seeded", "notes.txt")).read())
        try:
            hf_hub_download("tester/plain", "missing.txt")
        except EntryNotFoundError:
            print("entry-not-found")
        try:
            hf_hub_download("tester/absent", "a.txt")
        except RepositoryNotFoundError:
            print("repo-not-found")
    """)
    assert proc.stdout.split() == ["hello", "seeded", "entry-not-found", "repo-not-found"]
    assert fake_hub.store["tester/plain"] == {"dir/a.txt": b"hello"}
    assert fake_hub.store["tester/seeded"] == {"notes.txt": b"seeded"}
