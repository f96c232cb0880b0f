"""`evaluate` module: mean IoU / pixel accuracy of label maps, computed with labelsynth's `SegmentationMetric`.

Same inputs and output names as the Hub's ``mean_iou`` metric, but loadable offline from the installed package:

```python
import evaluate
from labelsynth.metrics import evaluate_module_path

miou = evaluate.load(evaluate_module_path("mean_iou"))
miou.compute(predictions=[pred_map], references=[gt_map], num_labels=150, ignore_index=255, label_mapping="ade20k")
```
"""

import datasets
import evaluate
import numpy as np

from labelsynth.metrics import SegmentationMetric, make_label_mapping

_DESCRIPTION = """
Mean Intersection-over-Union of predicted label maps against ground-truth label maps, with confusion matrices summed
over the whole set (dataset-level mIoU). Pixels whose ground truth equals `ignore_index` are not scored. A class that
appears neither in the ground truth nor in the predictions is excluded from the mean (its IoU is NaN, or
`nan_to_num`); a class that is only predicted counts with IoU 0.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: predicted label maps (2-D integer arrays / nested lists), one per image.
    references: ground-truth label maps of the same shapes.
    num_labels (int): number of classes (ids 0..num_labels-1).
    ignore_index (int): ground-truth value not scored (default 255).
    label_mapping (str | dict | list, optional): applied to the references first: "ade20k" (raw 1..150 -> 0..149,
        0 ignored), "cityscapes" (labelIds -> trainIds), a dict {gt_id: id} or a lookup table.
    reduce_labels (bool): same as label_mapping="ade20k" (the Hub metric's option; default False).
    nan_to_num (float, optional): value for classes without an IoU/accuracy in the per-category outputs.
Returns:
    mean_iou, mean_accuracy, overall_accuracy (floats), per_category_iou, per_category_accuracy (arrays).
"""

_CITATION = """
@article{everingham2010pascal,
  title={The Pascal Visual Object Classes ({VOC}) Challenge},
  author={Everingham, Mark and Van Gool, Luc and Williams, Christopher K. I. and Winn, John and Zisserman, Andrew},
  journal={IJCV}, volume={88}, pages={303--338}, year={2010}
}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class LabelsynthMeanIoU(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({
                "predictions": datasets.List(datasets.List(datasets.Value("int64"))),
                "references": datasets.List(datasets.List(datasets.Value("int64"))),
            }),
        )

    def _compute(self, predictions, references, num_labels, ignore_index=255, label_mapping=None,
                 reduce_labels=False, nan_to_num=None):
        import torch

        if reduce_labels:
            if label_mapping is not None:
                raise ValueError("pass either reduce_labels or label_mapping, not both")
            label_mapping = "ade20k"
        mapping = make_label_mapping(label_mapping, ignore_index=ignore_index)
        metric = SegmentationMetric(num_labels, ignore_index)
        for prediction, reference in zip(predictions, references):
            reference = mapping(torch.as_tensor(np.asarray(reference, dtype=np.int64)))
            metric.update(np.asarray(prediction, dtype=np.int64), reference)
        scores = metric.compute()
        per_iou = np.asarray(scores["per_class_iou"], dtype=np.float64)
        per_acc = np.asarray(scores["per_class_accuracy"], dtype=np.float64)
        if nan_to_num is not None:
            per_iou = np.nan_to_num(per_iou, nan=nan_to_num)
            per_acc = np.nan_to_num(per_acc, nan=nan_to_num)
        return {
            "mean_iou": scores["mean_iou"],
            "mean_accuracy": scores["mean_accuracy"],
            "overall_accuracy": scores["pixel_accuracy"],
            "per_category_iou": per_iou,
            "per_category_accuracy": per_acc,
        }
