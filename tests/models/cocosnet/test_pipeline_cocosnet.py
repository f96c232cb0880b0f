"""CoCosNet through `pipeline("label-to-image")` and `labelsynth generate --exemplar` on real ADE20K samples."""

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import randomize_weights
from PIL import Image
from transformers import pipeline

from labelsynth import CoCosNetConfig, CoCosNetModel, LabelMapProcessor
from labelsynth.cli import main as cli_main


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("cocosnet-tiny")
    model = CoCosNetModel(CoCosNetConfig(ngf=8, spade_hidden_nc=16, image_size=(64, 64))).eval()
    randomize_weights(model, 0)
    model.save_pretrained(folder)
    LabelMapProcessor(label_space="ade20k", size={"height": 64, "width": 64}).save_pretrained(folder)
    return folder


def test_pipeline_with_and_without_the_exemplar_label_map(model_dir: Path, samples_dir: Path) -> None:
    ade = samples_dir / "CoCosNet_ade20k"
    label, exemplar = ade / "validation" / "ADE_val_00001232.png", ade / "training" / "ADE_train_00004996.jpg"
    exemplar_label = ade / "training" / "ADE_train_00004996.png"
    coco = pipeline("label-to-image", model=str(model_dir))
    with_label = coco(str(label), exemplar=str(exemplar), exemplar_label_map=str(exemplar_label), output_type="np")
    assert with_label.shape == (64, 64, 3) and with_label.dtype == np.uint8
    noise_a = coco(str(label), exemplar=Image.open(exemplar), exemplar_label_map=None, seed=0, output_type="np")
    noise_b = coco(str(label), exemplar=Image.open(exemplar), seed=0, output_type="np")
    assert np.array_equal(noise_a, noise_b) and not np.array_equal(noise_a, with_label)
    # the pipeline equals the model on the processor's tensors
    processor = LabelMapProcessor.from_pretrained(model_dir)
    model = CoCosNetModel.from_pretrained(model_dir)
    ids = processor(str(label), return_tensors="pt")["label_map"]
    exemplar_ids = processor(str(exemplar_label), return_tensors="pt")["label_map"]
    pixels = processor.preprocess_images(str(exemplar), (64, 64))
    with torch.no_grad():
        direct = model(ids, exemplar=pixels, exemplar_label_map=exemplar_ids).images
    assert np.abs(processor.postprocess(direct, output_type="np")[0].astype(int) - with_label.astype(int)).max() <= 1
    with pytest.raises(ValueError, match="needs an exemplar"):
        coco(str(label))


def test_cli_generate_with_exemplar(model_dir: Path, samples_dir: Path, tmp_path: Path, capsys) -> None:
    ade = samples_dir / "CoCosNet_ade20k"
    out = tmp_path / "out.png"
    status = cli_main(["generate", "--model", str(model_dir), "--label", str(ade / "validation" / "ADE_val_00001517.png"),
                       "--exemplar", str(ade / "training" / "ADE_train_00007201.jpg"), "--exemplar-label",
                       str(ade / "training" / "ADE_train_00007201.png"), "-o", str(out)])
    assert status == 0 and Image.open(out).size == (64, 64)
    status = cli_main(["generate", "--model", str(model_dir), "--label", str(ade / "validation" / "ADE_val_00001517.png"),
                       "--style", str(ade / "training" / "ADE_train_00007201.jpg"), "-o", str(out)])
    assert status == 2 and "--style" in capsys.readouterr().err
