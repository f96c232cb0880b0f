"""mIoU / accuracy from hand-computed confusion matrices, label mappings, and the segmenter adapters."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import build_tiny_segformer

from labelsynth.metrics import (
    SegmentationMetric,
    SegmenterAdapter,
    ade20k_to_segmenter_ids,
    make_label_mapping,
    resolve_label_mapping,
    segment_images,
)


def test_hand_computed_confusion_matrix_with_ignore_index_and_absent_class():
    metric = SegmentationMetric(num_classes=4, ignore_index=255)
    reference = np.array([[0, 0, 1, 1],
                          [0, 2, 2, 255],
                          [255, 2, 2, 1]])
    prediction = np.array([[0, 1, 1, 1],
                           [0, 2, 0, 3],     # the 3 is on an ignored pixel: not counted
                           [2, 2, 2, 1]])    # so is the 2 at the ignored corner
    metric.update(prediction, reference)
    expected_confusion = torch.tensor([[2, 1, 0, 0],   # gt 0: 2 right, 1 predicted as 1
                                       [0, 3, 0, 0],   # gt 1: 3 right
                                       [1, 0, 3, 0],   # gt 2: 3 right, 1 predicted as 0
                                       [0, 0, 0, 0]])  # class 3 absent in gt and (scored) predictions
    assert torch.equal(metric.confusion, expected_confusion)
    scores = metric.compute()
    iou = [2 / (3 + 3 - 2), 3 / (3 + 4 - 3), 3 / (4 + 3 - 3)]
    assert scores["per_class_iou"][:3] == pytest.approx(iou)
    assert math.isnan(scores["per_class_iou"][3])           # excluded from the mean
    assert scores["mean_iou"] == pytest.approx(sum(iou) / 3)
    assert scores["pixel_accuracy"] == pytest.approx(8 / 10)
    assert scores["mean_accuracy"] == pytest.approx((2 / 3 + 3 / 3 + 3 / 4) / 3)
    assert scores["num_scored_pixels"] == 10 and scores["num_classes_scored"] == 3


def test_predicted_only_class_counts_as_zero_and_batches_accumulate():
    metric = SegmentationMetric(num_classes=3)
    metric.update(torch.tensor([[0, 1], [2, 2]]), torch.tensor([[0, 1], [1, 255]]))
    scores = metric.compute()
    assert scores["per_class_iou"] == pytest.approx([1.0, 0.5, 0.0])  # class 2: false positive only
    assert scores["mean_iou"] == pytest.approx(0.5)
    assert math.isnan(scores["per_class_accuracy"][2])
    metric.update(torch.tensor([[2]]), torch.tensor([[2]]))  # dataset-level: confusions add up
    assert metric.compute()["per_class_iou"][2] == pytest.approx(0.5)
    other = SegmentationMetric(num_classes=3).update(np.array([1]), np.array([1]))
    assert metric.merge(other).confusion[1, 1] == 2
    metric.reset()
    assert math.isnan(metric.compute()["mean_iou"])


def test_segmentation_metric_errors():
    metric = SegmentationMetric(num_classes=3)
    with pytest.raises(ValueError, match=r"references contain ids \[7\] outside 0..2 or ignore_index 255"):
        metric.update(np.zeros((2, 2), dtype=int), np.array([[0, 7], [1, 255]]))
    with pytest.raises(ValueError, match="predictions contain ids"):
        metric.update(np.array([[3]]), np.array([[0]]))
    with pytest.raises(ValueError, match="differ in shape"):
        metric.update(np.zeros((2, 2), dtype=int), np.zeros((2, 3), dtype=int))
    with pytest.raises(ValueError, match="integer class ids"):
        metric.update(np.zeros((2, 2)), np.zeros((2, 2), dtype=int))
    with pytest.raises(ValueError, match="is a class id"):
        SegmentationMetric(num_classes=300, ignore_index=255)


def test_label_mappings():
    ade = torch.tensor([0, 1, 150, 255])
    assert ade20k_to_segmenter_ids(ade).tolist() == [255, 0, 149, 255]
    assert ade20k_to_segmenter_ids(np.array([0, 2])).tolist() == [255, 1]
    assert make_label_mapping("ade20k")(ade).tolist() == [255, 0, 149, 255]
    # Cityscapes labelIds -> trainIds: road 7 -> 0, car 26 -> 13, bicycle 33 -> 18, unlabeled 0 -> 255
    city = make_label_mapping("cityscapes")(torch.tensor([[7, 26], [33, 0]]))
    assert city.tolist() == [[0, 13], [18, 255]]
    assert make_label_mapping("cityscapes", ignore_index=250)(torch.tensor([0])).tolist() == [250]
    assert make_label_mapping(None)(torch.tensor([3, 255])).tolist() == [3, 255]
    assert make_label_mapping({1: 0, 2: 1})(torch.tensor([1, 2, 3, 255])).tolist() == [0, 1, 255, 255]
    assert make_label_mapping([5, 4, 3])(torch.tensor([0, 2, 255])).tolist() == [5, 3, 255]
    assert make_label_mapping(lambda ids: ids * 2)(torch.tensor([1, 2])).tolist() == [2, 4]
    with pytest.raises(ValueError, match="unknown label mapping"):
        make_label_mapping("coco")


def test_auto_label_mapping():
    assert resolve_label_mapping("auto", "ade20k", 150) == "ade20k"
    assert resolve_label_mapping("auto", "ade20k", 151) == "identity"
    assert resolve_label_mapping("auto", "cityscapes", 19) == "cityscapes"
    assert resolve_label_mapping("auto", "coco-stuff", 182) == "identity"
    assert resolve_label_mapping("ade20k", "cityscapes", 19) == "ade20k"


def test_transformers_segformer_adapter_upsamples_to_the_generated_resolution(tiny_segformer):
    model, processor = tiny_segformer
    images = torch.rand(2, 3, 40, 56) * 2 - 1
    predicted = segment_images(images, model, processor)
    assert predicted.shape == (2, 40, 56) and predicted.dtype == torch.long
    assert int(predicted.min()) >= 0 and int(predicted.max()) < 5
    # Same as running the processor and model by hand, then bilinear upsampling of the logits.
    uint8 = ((images + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    with torch.no_grad():
        logits = model(**processor(images=list(uint8), return_tensors="pt")).logits
    expected = F.interpolate(logits, size=(40, 56), mode="bilinear", align_corners=False).argmax(1)
    assert torch.equal(predicted, expected)
    adapter = SegmenterAdapter(model, processor)
    assert adapter.num_classes == 5 and adapter.is_transformers


def test_segformer_without_processor_warns_and_normalises():
    model, _ = build_tiny_segformer(num_labels=3)
    with pytest.warns(UserWarning, match="no image processor"):
        adapter = SegmenterAdapter(model)
    assert adapter(torch.zeros(1, 3, 32, 32)).shape == (1, 32, 32)


def test_callable_segmenters_logits_and_label_maps():
    images = torch.zeros(2, 3, 8, 12)

    def low_res_logits(x):
        logits = torch.zeros(x.shape[0], 3, 4, 6)
        logits[:, 2, :, 3:] = 1.0  # right half: class 2
        return logits

    predicted = segment_images(images, low_res_logits)
    assert predicted.shape == (2, 8, 12)
    # bilinear logits: the boundary moves by the interpolation (col 5 gets 1/4 of class 2 -> 2)
    assert (predicted[:, :, 5:] == 2).all() and (predicted[:, :, :5] == 0).all()

    def label_map(x):
        out = torch.zeros(x.shape[0], 2, 3, dtype=torch.long)
        out[:, 1] = 4
        return out

    nearest = segment_images(images, label_map)
    assert nearest.shape == (2, 8, 12)
    assert (nearest[:, :4] == 0).all() and (nearest[:, 4:] == 4).all()

    class WithLogits:
        def __call__(self, x):
            return type("Out", (), {"logits": torch.randn(x.shape[0], 3, 8, 12)})()

    assert segment_images(images, WithLogits()).shape == (2, 8, 12)
    with pytest.raises(ValueError, match=r"\[B, 3, H, W\]"):
        segment_images(torch.zeros(3, 8, 8), label_map)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert SegmenterAdapter(label_map).num_classes is None
