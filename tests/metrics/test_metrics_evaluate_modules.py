"""The bundled ``evaluate`` modules load offline from the package folder and agree with labelsynth.metrics."""

from __future__ import annotations

import numpy as np
import PIL.Image
import pytest

from labelsynth.metrics import SegmentationMetric, evaluate_module_path

evaluate = pytest.importorskip("evaluate")


def test_mean_iou_module_matches_segmentation_metric():
    module = evaluate.load(evaluate_module_path("mean_iou"))
    rng = np.random.default_rng(0)
    predictions = [rng.integers(0, 4, (6, 7)) for _ in range(3)]
    references = [np.where(rng.random((6, 7)) < 0.2, 255, rng.integers(0, 4, (6, 7))) for _ in range(3)]
    for prediction, reference in zip(predictions, references):
        module.add(predictions=prediction, references=reference)
    result = module.compute(num_labels=4, ignore_index=255)
    expected = SegmentationMetric(4, 255)
    for prediction, reference in zip(predictions, references):
        expected.update(prediction, reference)
    scores = expected.compute()
    assert result["mean_iou"] == pytest.approx(scores["mean_iou"])
    assert result["overall_accuracy"] == pytest.approx(scores["pixel_accuracy"])
    np.testing.assert_allclose(result["per_category_iou"], scores["per_class_iou"])
    # reduce_labels: ADE20K raw ids 1..3 -> 0..2, raw 0 ignored
    reduced = module.compute(predictions=[np.array([[0, 1], [2, 2]])], references=[np.array([[1, 2], [2, 0]])],
                             num_labels=3, reduce_labels=True, nan_to_num=-1.0)
    assert reduced["mean_iou"] == pytest.approx(0.5) and reduced["overall_accuracy"] == pytest.approx(2 / 3)
    assert reduced["per_category_accuracy"].tolist() == [1.0, 0.5, -1.0]


def test_fid_module_offline_with_random_weights(tmp_path, monkeypatch):
    monkeypatch.delenv("LABELSYNTH_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    module = evaluate.load(evaluate_module_path("fid"))
    rng = np.random.default_rng(0)
    images = [PIL.Image.fromarray(rng.integers(0, 256, (32, 40, 3), dtype=np.uint8)) for _ in range(2)]
    with pytest.raises(ValueError, match="pt_inception-2015-12-05-6726825d.pth"):
        module.compute(predictions=images, references=images)
    with pytest.warns(UserWarning, match="random weights"):
        result = module.compute(predictions=images, references=images[::-1], allow_random_weights=True,
                                kid_subsets=2)
    assert result["fid"] == pytest.approx(0.0, abs=1e-6)
    assert result["fid_comparable"] is False and result["num_predictions"] == 2


def test_unknown_module_name():
    with pytest.raises(ValueError, match="available"):
        evaluate_module_path("lpips")
