"""Model card rendering: YAML metadata, body sections, paper vs measured metrics, card files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from huggingface_hub import ModelCard

from labelsynth.hub import (
    GENERATED_MARKER,
    ModelCardInfo,
    is_generated_card,
    render_model_card,
    write_model_card_file,
)

MODEL_ID = "labelsynth/spade-ade20k"

INFO = ModelCardInfo(
    architecture="SPADE",
    paper_title="Semantic Image Synthesis with Spatially-Adaptive Normalization",
    paper_url="https://arxiv.org/abs/1903.07291",
    arxiv_id="1903.07291",
    authors=("Taesung Park", "Ming-Yu Liu", "Ting-Chun Wang", "Jun-Yan Zhu"),
    original_repo="https://github.com/NVlabs/SPADE",
    weights_license="cc-by-nc-sa-4.0",
    citation="@inproceedings{park2019SPADE,\n  title={Semantic Image Synthesis with Spatially-Adaptive Normalization}\n}\n",
    description="SPADE generates a photo from a semantic label map.",
    tags=("gaugan",),
    # Test values, deliberately unlike real figures, to trace where each number ends up.
    paper_metrics=[{"dataset": "ADE20K", "metric": "FID", "value": "11.11", "source": "paper Table 1"}],
)
ADE_CONFIG: dict[str, Any] = {
    "architectures": ["SPADEModel"],
    "model_type": "spade",
    "label_space": "ade20k",
    "label_nc": 150,
    "contain_dontcare_label": True,
    "use_instance_edges": False,
}
MEASURED = [
    {
        "dataset": "ADE20K",
        "dataset_id": "zhoubolei/scene_parse_150",
        "split": "validation",
        "metric": "FID",
        "value": 22.22,
        "notes": "256x256 | 2000 images",
        "source": "labelsynth evaluate",
    }
]


def _metadata(card: ModelCard) -> dict[str, Any]:
    """Parse the YAML header from the card text itself (not from huggingface_hub's parsed copy)."""
    _, header, _ = str(card).split("---\n", 2)
    return yaml.safe_load(header)


def _sections(card: ModelCard) -> dict[str, str]:
    """Body split on '## ' / '### ' headings -> {heading: text under it}."""
    out: dict[str, str] = {}
    heading = ""
    for line in str(card).split("\n---\n", 1)[1].splitlines():
        if line.startswith("#") and " " in line:
            heading = line.split(" ", 1)[1].strip()
            out[heading] = ""
        else:
            out[heading] = out.get(heading, "") + line + "\n"
    return out


@pytest.fixture(scope="module")
def ade_card() -> ModelCard:
    return render_model_card(
        INFO,
        model_id=MODEL_ID,
        config=ADE_CONFIG,
        datasets=["zhoubolei/scene_parse_150"],
        training={
            "command": "labelsynth convert spade --checkpoint ade20k_pretrained",
            "converted_from": "latest_net_G.pth",
        },
        measured_metrics=MEASURED,
    )


def test_yaml_metadata(ade_card: ModelCard) -> None:
    meta = _metadata(ade_card)
    assert meta["library_name"] == "labelsynth"
    assert meta["pipeline_tag"] == "image-to-image"
    assert meta["license"] == "cc-by-nc-sa-4.0"
    assert meta["tags"] == ["labelsynth", "label-to-image", "semantic-image-synthesis", "gan", "spade", "gaugan"]
    assert meta["datasets"] == ["zhoubolei/scene_parse_150"]
    assert meta["metrics"] == ["fid"]
    assert "base_model" not in meta
    # huggingface_hub parses it back into the same values (i.e. the header is valid card metadata).
    assert ade_card.data.library_name == "labelsynth" and ade_card.data.license == "cc-by-nc-sa-4.0"


def test_model_index_holds_only_measured_metrics(ade_card: ModelCard) -> None:
    (entry,) = _metadata(ade_card)["model-index"]
    assert entry["name"] == MODEL_ID
    (result,) = entry["results"]
    assert result["task"] == {"type": "image-to-image", "name": "Semantic image synthesis"}
    assert result["dataset"] == {"name": "ADE20K", "type": "zhoubolei/scene_parse_150", "split": "validation"}
    assert result["metrics"] == [{"type": "fid", "value": 22.22, "name": "FID"}]


def test_paper_and_measured_metrics_are_kept_apart(ade_card: ModelCard) -> None:
    sections = _sections(ade_card)
    paper, measured = sections["Reported in the paper"], sections["Measured with labelsynth"]
    assert "| ADE20K | FID | 11.11 | paper Table 1 |" in paper
    assert "22.22" not in paper
    # The pipe inside the protocol note is escaped so the table keeps its columns.
    assert "| ADE20K | validation | FID | 22.22 | 256x256 \\| 2000 images | labelsynth evaluate |" in measured
    assert "11.11" not in measured


def test_body_usage_licence_and_provenance(ade_card: ModelCard) -> None:
    text = str(ade_card)
    sections = _sections(ade_card)
    assert text.count(GENERATED_MARKER) == 1 and is_generated_card(text)
    assert sections[MODEL_ID].strip().startswith("SPADE generates a photo from a semantic label map.")
    usage = sections["How to use"]
    assert "import labelsynth" in usage
    assert f'pipe = pipeline("label-to-image", model="{MODEL_ID}")' in usage
    assert 'image = pipe("label.png", seed=0)' in usage
    assert "from labelsynth import SPADEModel" in usage
    assert f'model = SPADEModel.from_pretrained("{MODEL_ID}")' in usage
    limits = sections["Intended use and limitations"]
    assert "`cc-by-nc-sa-4.0`" in limits and "non-commercial use only" in limits
    assert "non-commercial research" in limits  # dataset terms
    assert "[arXiv:1903.07291](https://arxiv.org/abs/1903.07291)" in text
    assert "https://github.com/NVlabs/SPADE" in text
    training = sections["Training or conversion"]
    assert "labelsynth convert spade --checkpoint ade20k_pretrained" in training
    assert "`latest_net_G.pth`" in training
    assert "@inproceedings{park2019SPADE," in sections["Citation"]


def test_label_conventions_from_config(ade_card: ModelCard) -> None:
    labels = _sections(ade_card)["Label conventions"]
    assert "- Label space: `ade20k`" in labels
    assert "150 (`label_nc`; valid ids 0..150, plus 255 for unlabeled pixels)" in labels
    assert "pixels equal to 255 go to an extra don't-care input channel" in labels
    assert "- Instance edges: not used." in labels


def test_label_conventions_without_dontcare_with_instances() -> None:
    config = {
        "label_space": "cityscapes",
        "label_nc": 35,
        "contain_dontcare_label": False,
        "ignore_index": 254,
        "use_instance_edges": True,
    }
    labels = _sections(render_model_card(INFO, model_id="x/y", config=config))["Label conventions"]
    assert "valid ids 0..34" in labels
    assert "Don't-care: none; pixels equal to 254 are rejected." in labels
    assert "Instance edges: used" in labels


def test_card_without_optional_inputs_states_absence() -> None:
    info = ModelCardInfo(
        architecture="pix2pix",
        paper_title="Image-to-Image Translation with cGANs",
        paper_url="https://arxiv.org/abs/1611.07004",
        description="pix2pix.",
        weights_license="bsd",
    )
    card = render_model_card(info, model_id="x/p2p", config={})
    meta, sections = _metadata(card), _sections(card)
    assert meta["license"] == "bsd" and meta["tags"][-1] == "pix2pix"
    assert not {"model-index", "datasets", "metrics", "base_model"} & set(meta)
    assert "See `config.json` for the label settings." in sections["Label conventions"]
    assert "No training or conversion record" in sections["Training or conversion"]
    assert sections["Reported in the paper"].strip() == "None recorded."
    assert sections["Measured with labelsynth"].strip() == "Not measured yet."
    assert "non-commercial use only" not in str(card)  # bsd is not an -nc licence
    assert "from_pretrained" not in sections["How to use"]  # no `architectures` -> no class to name
    assert "Citation" not in sections


def test_base_model_tags_and_extra_metadata() -> None:
    card = render_model_card(
        INFO,
        model_id="x/ft",
        config=ADE_CONFIG,
        base_model=MODEL_ID,
        tags=["finetuned", "gan"],
        extra={"language": "en"},
    )
    meta = _metadata(card)
    assert meta["base_model"] == MODEL_ID and meta["language"] == "en"
    assert meta["tags"][-1] == "finetuned" and meta["tags"].count("gan") == 1
    assert f"[{MODEL_ID}](https://huggingface.co/{MODEL_ID})" in str(card)


def test_invalid_inputs_raise() -> None:
    with pytest.raises(ValueError, match="library_name"):
        render_model_card(INFO, model_id="x/y", config={}, extra={"library_name": "transformers"})
    with pytest.raises(ValueError, match="epochs"):
        render_model_card(INFO, model_id="x/y", config={}, training={"epochs": 3})
    with pytest.raises(TypeError):
        render_model_card(INFO, model_id="x/y", config={}, measured_metrics=[{"dataset": "a", "metric": "FID"}])


def test_write_model_card_file(tmp_path: Path) -> None:
    path = tmp_path / "model_cards" / "spade-ade20k.md"
    kwargs: dict[str, Any] = {"model_id": MODEL_ID, "config": ADE_CONFIG, "measured_metrics": MEASURED}
    assert write_model_card_file(INFO, path, **kwargs) == path
    written = path.read_text(encoding="utf-8")
    assert written == str(render_model_card(INFO, **kwargs))
    assert ModelCard.load(path).data.library_name == "labelsynth"

    # A generated file is regenerated in place.
    write_model_card_file(INFO, path, **{**kwargs, "model_id": "labelsynth/other"})
    assert 'model="labelsynth/other"' in path.read_text(encoding="utf-8")

    # A hand-written file is kept unless overwrite=True.
    path.write_text("# Hand-written card\n", encoding="utf-8")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_model_card_file(INFO, path, **kwargs)
    assert path.read_text(encoding="utf-8") == "# Hand-written card\n"
    write_model_card_file(INFO, path, overwrite=True, **kwargs)
    assert is_generated_card(path.read_text(encoding="utf-8"))
