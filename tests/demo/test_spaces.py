"""Generated model cards and Spaces: up to date with the registry, same card as save_pretrained, every app runs."""

import json
import os
import re
import runpy
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import gradio
import numpy as np
import pytest
from gradio_client import Client, handle_file
from helpers import free_port, launch_demo
from huggingface_hub import ModelCard
from PIL import Image

from labelsynth import SPADEModel, get_label_space
from labelsynth.demo.examples import draw_example
from labelsynth.demo.spaces import GRADIO_SDK_VERSION, MODEL_ENV, render_repository_files
from labelsynth.examples import BUILTIN_MODEL, example_paths
from labelsynth.hub.registry import CHECKPOINTS, card_kwargs, checkpoint_model_class, get_checkpoint

ROOT = Path(__file__).resolve().parents[2]
FILES = render_repository_files()

# Facts of each model family, from its original release (licence of the weights) and paper: every registry entry is
# checked against its own family's, and a family without facts here fails the test until they are added.
FAMILY_FACTS = {
    "SPADEModel": dict(license="cc-by-nc-sa-4.0", arxiv="1903.07291", repo="https://github.com/NVlabs/SPADE",
                       paper_row="| Cityscapes | FID | 71.8 | SPADE paper, Table 1 |"),
    "Pix2PixModel": dict(license="bsd-2-clause", arxiv="1611.07004",
                         repo="https://github.com/junyanz/pytorch-CycleGAN-and-pix2pix",
                         paper_row="| Cityscapes | class IoU (FCN) | 0.17 | pix2pix paper, Table 1 (L1+cGAN) |"),
    "Pix2PixHDModel": dict(license="bsd", arxiv="1711.11585", repo="https://github.com/NVIDIA/pix2pixHD",
                           paper_row="| Cityscapes | mean IoU (PSPNet) | 0.6389 | pix2pixHD paper, Table 1 |"),
    "SEANModel": dict(license="cc-by-nc-sa-4.0", arxiv="1911.12861", repo="https://github.com/ZPdesu/SEAN",
                      paper_row="| CelebAMask-HQ | FID (reconstruction) | 17.66 | SEAN paper, Table 1 |"),
    "CoCosNetModel": dict(license="mit", arxiv="2004.05571", repo="https://github.com/microsoft/CoCosNet",
                          paper_row="| ADE20K | FID | 26.4 | CoCosNet paper, Table 1 |"),
    "CRNModel": dict(license="mit", arxiv="1707.09405", repo="https://github.com/CQFIO/PhotographicImageSynthesis",
                     paper_row="| Cityscapes | FID | 104.7 | SPADE paper, Table 1 (CRN row) |"),
    "OASISModel": dict(license="agpl-3.0", arxiv="2012.04781", repo="https://github.com/boschresearch/OASIS",
                       paper_row="| ADE20K | FID | 28.3 | OASIS paper (ICLR 2021) |"),
    "MobileSPADEModel": dict(license="cc-by-nc-sa-4.0", arxiv="2003.08936",
                             repo="https://github.com/mit-han-lab/gan-compression",
                             paper_row="| Cityscapes | mIoU | 60.29 | GAN Compression README (retrained compressed "
                                       "GauGAN, 21.0M parameters) |"),
}


@pytest.mark.parametrize("relative", sorted(FILES))
def test_committed_file_is_up_to_date(relative: str) -> None:
    path = ROOT / relative
    assert path.is_file(), f"{relative} is missing: run `python -m labelsynth.demo.spaces`"
    assert path.read_text(encoding="utf-8") == FILES[relative], (
        f"{relative} is out of date: run `python -m labelsynth.demo.spaces`")


def test_every_checkpoint_has_card_and_space_with_hub_metadata() -> None:
    assert {e.id for e in CHECKPOINTS} >= {"spade-cityscapes-tiny", "spade-ade20k", "spade-cityscapes",
                                           "spade-coco-stuff", "pix2pix-facades", "pix2pixhd-cityscapes-1024p",
                                           "sean-celebamask-hq", "crn-cityscapes-256p", "crn-gta-256p",
                                           "cocosnet-ade20k"}
    assert gradio.__version__ == GRADIO_SDK_VERSION  # the Spaces pin the Gradio the demo is tested with
    for entry in CHECKPOINTS:
        facts = FAMILY_FACTS[entry.model_class]
        space = ModelCard(FILES[f"demos/{entry.id}/README.md"]).data.to_dict()
        assert space["sdk"] == "gradio" and space["app_file"] == "app.py" and space["models"] == [entry.hub_id]
        assert space["license"] == facts["license"] and len(space["short_description"]) <= 60
        text = FILES[f"model_cards/{entry.id}.md"]
        card = ModelCard(text).data.to_dict()
        assert card["library_name"] == "labelsynth" and card["pipeline_tag"] == "image-to-image"
        assert card["license"] == facts["license"]
        assert facts["paper_row"] in text and f"arXiv:{facts['arxiv']}" in text and "## Citation" in text
        assert f"**Original code:** {facts['repo']}" in text
        assert ("non-commercial" in FILES[f"demos/{entry.id}/README.md"]) == ("-nc" in facts["license"])
        # The usage snippet passes only inputs the model's pipeline takes (CoCosNet an exemplar, SEAN a style image).
        model_class = checkpoint_model_class(entry)
        call = re.search(r'image = pipe\("label.png", (.*)\)  # PIL.Image', text).group(1)
        assert {name for name in re.findall(r"(\w+)=", call)} <= set(model_class.pipeline_inputs) | {"seed"}, call
        if entry.local_path is None:  # converted official weights: the card records the converter's parity check
            assert f"labelsynth convert {entry.model_class[:-5].lower()} " in text
            assert "max abs difference" in text and "equal" in text
    assert ModelCard(FILES["model_cards/spade-ade20k.md"]).data.datasets == ["zhoubolei/scene_parse_150"]
    tiny = ModelCard(FILES["model_cards/spade-cityscapes-tiny.md"]).data.eval_results
    assert [(r.metric_type, r.metric_value) for r in tiny] == [("psnr", 21.46), ("ssim", 0.575)]


def test_card_file_equals_what_save_pretrained_writes(tmp_path: Path) -> None:
    entry = get_checkpoint("spade-cityscapes-tiny")
    model = SPADEModel.from_pretrained(BUILTIN_MODEL)
    model.save_model_card(tmp_path, card_kwargs=card_kwargs(entry))
    assert (tmp_path / "README.md").read_text(encoding="utf-8") == FILES["model_cards/spade-cityscapes-tiny.md"]


def _label_file(space: str, size: tuple[int, int], folder: Path) -> Path:
    path = folder / f"{space}.png"
    Image.fromarray(draw_example(get_label_space(space), size).astype(np.uint8)).save(path)
    return path


# A tiny local model (tests/demo/conftest.py) of each registered checkpoint's family and label space, standing in for
# the Hub weights: (fixture, output HxW). The built-in model ships with the package.
LOCAL_MODELS = {
    "spade-cityscapes-tiny": (None, (128, 256)),
    "spade-ade20k": ("vae_model", (64, 64)),
    "spade-cityscapes": ("city_model", (64, 128)),
    "spade-coco-stuff": ("coco_model", (64, 64)),
    "pix2pix-facades": ("pix2pix_model", (64, 64)),
    "pix2pixhd-cityscapes-1024p": ("pix2pixhd_model", (64, 128)),
    "sean-celebamask-hq": ("sean_model", (64, 64)),
    "crn-cityscapes-256p": ("crn_model", (64, 128)),
    "crn-cityscapes-512p": ("crn_single_model", (64, 128)),
    "crn-cityscapes-1024p": ("crn_single_model", (64, 128)),
    "crn-gta-256p": ("crn_model", (64, 128)),
    "cocosnet-ade20k": ("cocosnet_model", (64, 64)),
    "oasis-ade20k": ("oasis_model", (64, 64)),
    "oasis-cityscapes": ("oasis_city_model", (64, 128)),
    "gaugan-compressed-cityscapes": ("mobile_spade_model", (64, 128)),
}


@pytest.fixture(scope="module")
def mobile_spade_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny compressed GauGAN (Cityscapes label space, instance edges), 64x128."""
    from helpers import randomize_weights, save_model_folder

    from labelsynth import MobileSPADEConfig, MobileSPADEModel

    model = MobileSPADEModel(MobileSPADEConfig.for_dataset("cityscapes-compressed", channels=[2] * 8,
                                                           image_size=(64, 128))).eval()
    randomize_weights(model, 0)
    return save_model_folder(tmp_path_factory.mktemp("tiny_mobile_spade"), model)


@pytest.mark.parametrize("checkpoint_id", [e.id for e in CHECKPOINTS])
def test_space_app_builds_offline_with_a_local_model(checkpoint_id: str, request: pytest.FixtureRequest,
                                                     tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert checkpoint_id in LOCAL_MODELS, f"add a tiny local model for {checkpoint_id} to LOCAL_MODELS"
    fixture, size = LOCAL_MODELS[checkpoint_id]
    if fixture is None:
        monkeypatch.delenv(MODEL_ENV, raising=False)
    else:
        monkeypatch.setenv(MODEL_ENV, str(request.getfixturevalue(fixture)))
    demo = runpy.run_path(str(ROOT / "demos" / checkpoint_id / "app.py"), run_name="space_app")["demo"]
    url = launch_demo(demo)
    try:
        client = Client(url, verbose=False)
        space = get_label_space(json.loads((Path(request.getfixturevalue(fixture)) if fixture else BUILTIN_MODEL)
                                           .joinpath("config.json").read_text())["label_space"])
        label = (example_paths(2)[0] if space.name.startswith("cityscapes")
                 else _label_file(space.name, size, tmp_path))
        parameters = client.view_api(print_info=False, return_format="dict")["named_endpoints"][
            "/generate_from_file"]["parameters"]
        inputs = {p["parameter_name"]: None for p in parameters if not p["parameter_has_default"]}
        required = {"sean": "style_image", "cocosnet": "exemplar"}.get(checkpoint_id.split("-")[0])
        if required:  # SEAN needs a style image, CoCosNet an exemplar
            Image.new("RGB", (size[1], size[0]), (200, 120, 90)).save(tmp_path / "photo.png")
            inputs[required] = handle_file(str(tmp_path / "photo.png"))
        gallery, _, status = client.predict(**{**inputs, "label_map": handle_file(str(label))},
                                            api_name="/generate_from_file")
        image = Image.open(gallery[0]["image"])
        assert (image.height, image.width) == size and status.startswith("Generated")
    finally:
        demo.close()


def test_default_space_runs_as_a_script() -> None:
    port = free_port()
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1", "HF_HUB_OFFLINE": "1"}
    env.pop(MODEL_ENV, None)
    process = subprocess.Popen([sys.executable, str(ROOT / "demos" / "spade-cityscapes-tiny" / "app.py")], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"app.py did not serve {url}: {process.stdout.read().decode()[-2000:]}")
                time.sleep(0.5)
        gallery = Client(url, verbose=False).predict(handle_file(str(example_paths(0)[0])),
                                                     handle_file(str(example_paths(0)[1])), None,
                                                     api_name="/generate_from_file")[0]
        assert Image.open(gallery[0]["image"]).size == (256, 128)
    finally:
        process.terminate()
        process.wait(timeout=30)
