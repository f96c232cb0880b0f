"""`evaluate_model` end to end with tiny SPADE models, the random-weight FID Inception and a tiny SegFormer."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import PIL.Image
import pytest
import torch
from conftest import build_tiny_segformer
from helpers import randomize_weights  # tests/helpers.py

from labelsynth import LabelMapProcessor, SPADEConfig, SPADEModel
from labelsynth.metrics import compute_fid, evaluate_model, psnr

ADE_SMALL = {"ngf": 8, "image_size": (64, 64)}


def _rows(count: int, seed: int = 0, size=(48, 80), num_ids: int = 151) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(count):
        label = np.kron(rng.integers(0, num_ids, (size[0] // 8, size[1] // 8)), np.ones((8, 8), dtype=np.int64))
        photo = PIL.Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8))
        rows.append({"image": photo, "label": label})
    return rows


@pytest.fixture(scope="module")
def spade() -> SPADEModel:
    torch.manual_seed(0)
    model = SPADEModel(SPADEConfig.for_dataset("ade20k", **ADE_SMALL)).eval()
    randomize_weights(model)
    return model


@pytest.fixture(scope="module")
def spade_vae() -> SPADEModel:
    torch.manual_seed(0)
    model = SPADEModel(SPADEConfig.for_dataset("ade20k", use_vae=True, z_dim=16, **ADE_SMALL)).eval()
    randomize_weights(model, seed=1)
    return model


def test_end_to_end_all_metrics(spade, random_inception):
    segmenter, processor = build_tiny_segformer(num_labels=150)
    with pytest.warns(UserWarning, match="random Inception weights"):
        results = evaluate_model(spade, _rows(4), inception=random_inception, segmenter=segmenter,
                                 segmenter_processor=processor, batch_size=3, kid_subsets=5)
    assert results["num_samples"] == 4 and results["resolution"] == [64, 64]
    for key in ("fid", "kid", "kid_std", "miou", "pixel_accuracy", "mean_accuracy", "psnr", "ssim"):
        assert isinstance(results[key], float) and math.isfinite(results[key]), key
    assert results["fid"] > 0 and results["kid_subset_size"] == 4 and results["kid_subsets"] == 5
    assert results["fid_comparable"] is False and "not comparable" in results["inception_weights"]
    assert results["label_mapping"] == "ade20k" and results["segmenter_num_classes"] == 150
    assert len(results["per_class_iou"]) == 150 and "LABEL_0" in results["per_class_iou"]
    assert 0 <= results["miou"] <= 1 and -1 <= results["ssim"] <= 1
    assert any("rank-deficient" in note for note in results["notes"])  # 4 images, 2048-d features
    json.dumps(results, allow_nan=False)  # NaN per-class IoUs are reported as None


def test_protocol_resolution_resizing_and_quantisation(spade):
    """What the metrics see: generated images at the model's resolution, 8-bit quantised, vs the row photos resized
    like the label maps; the FID is computed on exactly those images."""
    rows = _rows(3, seed=5)
    seen = []

    def recording_extractor(images):
        seen.append(images.clone())
        return images.mean(dim=(2, 3)).double()  # 3-d "features"

    results = evaluate_model(spade, rows, metrics=("fid", "psnr"), inception=recording_extractor, batch_size=3)
    real, fake = seen
    processor = LabelMapProcessor(label_space="ade20k", size=(64, 64))
    batch = processor([r["label"] for r in rows], style_images=[r["image"] for r in rows])
    torch.testing.assert_close(real, batch["style_image"])
    with torch.no_grad():
        generated = spade(batch["label_map"]).images
    expected_fake = ((generated.clamp(-1, 1) + 1) * 127.5).round() / 127.5 - 1
    torch.testing.assert_close(fake, expected_fake, atol=1e-6, rtol=0)
    assert torch.allclose((fake + 1) * 127.5, ((fake + 1) * 127.5).round(), atol=1e-4)  # 8-bit values
    assert fake.shape == (3, 3, 64, 64)
    assert results["fid"] == pytest.approx(compute_fid(real.mean(dim=(2, 3)).double(), fake.mean(dim=(2, 3)).double()))
    assert results["psnr"] == pytest.approx(psnr(fake, real, data_range=2.0))
    assert results["fid_comparable"] is False and "custom feature extractor" in results["inception_weights"]


def test_deterministic_under_seed_and_independent_of_batch_size(spade_vae, tmp_path):
    rows = _rows(4, seed=2)
    runs = {}
    for name, batch_size, seed in (("a", 1, 0), ("b", 4, 0), ("c", 3, 0), ("d", 4, 1)):
        runs[name] = evaluate_model(spade_vae, rows, metrics=("psnr", "ssim"), batch_size=batch_size, seed=seed,
                                    save_images_to=tmp_path / name)
    images = {name: [np.asarray(PIL.Image.open(tmp_path / name / f"{i:06d}.png")) for i in range(4)] for name in runs}
    for name in ("b", "c"):
        assert all(np.array_equal(x, y) for x, y in zip(images["a"], images[name]))
        assert runs[name]["psnr"] == pytest.approx(runs["a"]["psnr"], rel=1e-12)
    assert not np.array_equal(images["a"][0], images["d"][0])  # another seed, another z
    assert runs["a"]["seed"] == 0 and runs["d"]["seed"] == 1


def test_style_reconstruction_uses_the_rows_own_photo(spade_vae, spade):
    rows = _rows(2, seed=3)
    styled = evaluate_model(spade_vae, rows, metrics=("psnr", "ssim", "rmse"), use_style=True)
    sampled = evaluate_model(spade_vae, rows, metrics=("psnr", "ssim", "rmse"))
    assert styled["use_style"] is True and styled["psnr"] != sampled["psnr"]
    assert 0 <= styled["rmse"] <= 1
    with pytest.raises(ValueError, match="style encoder"):
        evaluate_model(spade, rows, metrics=("psnr",), use_style=True)


def test_num_samples_pipeline_input_and_instance_fallback(spade):
    from transformers import pipeline

    rows = _rows(5, seed=4)
    limited = evaluate_model(spade, iter(rows), metrics=("ssim",), num_samples=2, batch_size=4)
    assert limited["num_samples"] == 2
    two = evaluate_model(spade, rows[:2], metrics=("ssim",))
    assert two["ssim"] == pytest.approx(limited["ssim"], rel=1e-12)
    processor = LabelMapProcessor(label_space="ade20k", size=(64, 64))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe = pipeline("label-to-image", model=spade, image_processor=processor)
    via_pipeline = evaluate_model(pipe, [{"photo": r["image"], "label_map": r["label"]} for r in rows[:2]],
                                  metrics=("ssim",))
    assert via_pipeline["ssim"] == pytest.approx(limited["ssim"], rel=1e-12)

    city = SPADEModel(SPADEConfig.for_dataset("cityscapes", ngf=8, image_size=(64, 128))).eval()
    city_rows = _rows(2, size=(64, 128), num_ids=34)
    results = evaluate_model(city, city_rows, metrics=("psnr",))
    assert "label map as instance map" in results["notes"][0]


def test_errors(spade, tmp_path, monkeypatch):
    rows = _rows(2)
    with pytest.raises(ValueError, match="unknown metrics"):
        evaluate_model(spade, rows, metrics=("fid", "lpips"))
    with pytest.raises(ValueError, match="needs a segmenter"):
        evaluate_model(spade, rows, metrics=("miou",))
    with pytest.raises(ValueError, match="needs num_classes"):
        evaluate_model(spade, rows, metrics=("miou",), segmenter=lambda x: x[:, 0].long())
    monkeypatch.delenv("LABELSYNTH_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(ValueError, match="pt_inception-2015-12-05-6726825d.pth"):
        evaluate_model(spade, rows, metrics=("fid",))
    with pytest.raises(ValueError, match="no dataset rows"):
        evaluate_model(spade, [], metrics=("psnr",))
    with pytest.raises(ValueError, match="no label map"):
        evaluate_model(spade, [{"image": rows[0]["image"]}], metrics=("psnr",))


def test_callable_segmenter_with_label_mapping(spade):
    rows = _rows(2, seed=6)

    def perfect(images):  # predicts "class 0" everywhere at a low resolution
        return torch.zeros(images.shape[0], 8, 8, dtype=torch.long)

    results = evaluate_model(spade, rows, metrics=("miou", "miou_real"), segmenter=perfect, num_classes=3,
                             label_mapping=lambda ids: torch.where(ids < 50, 0, torch.where(ids < 100, 1, 2)))
    assert results["label_mapping"] == "custom"
    assert results["miou"] == results["miou_real"]
    assert results["pixel_accuracy"] == pytest.approx(results["per_class_iou"]["0"])
    assert 0 < results["pixel_accuracy"] < 1
