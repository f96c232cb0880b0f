"""`evaluate` module: FID (and KID) between two image sets, with labelsynth's FID Inception.

Load it offline from the installed package:

```python
import evaluate
from labelsynth.metrics import evaluate_module_path

fid = evaluate.load(evaluate_module_path("fid"))
fid.add_batch(predictions=generated_pil_images, references=real_pil_images)
fid.compute(inception_weights="pt_inception-2015-12-05-6726825d.pth")
# {"fid": ..., "kid": ..., "kid_std": ..., "fid_comparable": True, "inception_weights": "...", "num_predictions": ...}
```
"""

import datasets
import evaluate
import numpy as np

from labelsynth.metrics import InceptionFeatureExtractor, compute_fid, compute_kid, find_inception_weights

_DESCRIPTION = """
Fréchet Inception Distance (Heusel et al., 2017) between generated images (`predictions`) and real images
(`references`), computed on the 2048-d pool features of the TensorFlow 2015-12-05 Inception-v3 (pytorch-fid's port,
`pt_inception-2015-12-05-6726825d.pth`) with pytorch-fid's input handling (bilinear resize to 299x299, [-1, 1]).
Also reports KID (Binkowski et al., 2018: unbiased MMD^2 with the cubic polynomial kernel, mean and std over
subsets). Lower is better for both. The two sets may differ in size and image size.

Without a weights file (`inception_weights` argument or `$LABELSYNTH_INCEPTION_WEIGHTS`), random Inception weights
are used only if `allow_random_weights=True`; such values are NOT comparable to published FIDs
(`fid_comparable` says which case applies).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: generated images (PIL images or uint8 HxWx3 arrays).
    references: real images (PIL images or uint8 HxWx3 arrays).
    inception_weights (str, optional): path of pt_inception-2015-12-05-6726825d.pth.
    allow_random_weights (bool): use random Inception weights when no weights file is found (default False).
    batch_size (int): images per Inception forward pass (default 32).
    device (str): "cpu" (default) or "cuda".
    kid_subsets (int): KID subsets (default 100).
    kid_subset_size (int): KID subset size, capped at the smaller set (default 1000).
    seed (int): seed of the KID subset draws (default 0).
Returns:
    fid (float), kid (float), kid_std (float), fid_comparable (bool), inception_weights (str),
    num_predictions (int), num_references (int).
"""

_CITATION = """
@inproceedings{heusel2017gans,
  title={GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash Equilibrium},
  author={Heusel, Martin and Ramsauer, Hubert and Unterthiner, Thomas and Nessler, Bernhard and Hochreiter, Sepp},
  booktitle={NeurIPS}, year={2017}
}
@inproceedings{binkowski2018demystifying,
  title={Demystifying {MMD} {GAN}s},
  author={Bi{\\'n}kowski, Miko{\\l}aj and Sutherland, Dougal J. and Arbel, Michael and Gretton, Arthur},
  booktitle={ICLR}, year={2018}
}
"""

_EXTRACTORS = {}


def _extractor(weights, allow_random, device):
    path = find_inception_weights(weights)
    if path is None and not allow_random:
        raise ValueError(
            "FID needs the Inception weights pt_inception-2015-12-05-6726825d.pth: pass inception_weights=PATH or set "
            "LABELSYNTH_INCEPTION_WEIGHTS (or allow_random_weights=True for values that are not comparable)"
        )
    key = (str(path) if path is not None else None, str(device))
    if key not in _EXTRACTORS:
        _EXTRACTORS[key] = InceptionFeatureExtractor(path, device=device)
    return _EXTRACTORS[key]


def _features(extractor, images, batch_size):
    chunks = [extractor(list(images[i:i + batch_size])).numpy() for i in range(0, len(images), batch_size)]
    return np.concatenate(chunks).astype(np.float64)


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class LabelsynthFID(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Image(), "references": datasets.Image()}),
            reference_urls=["https://arxiv.org/abs/1706.08500", "https://arxiv.org/abs/1801.01401"],
        )

    def _compute(self, predictions, references, inception_weights=None, allow_random_weights=False, batch_size=32,
                 device="cpu", kid_subsets=100, kid_subset_size=1000, seed=0):
        extractor = _extractor(inception_weights, allow_random_weights, device)
        fake = _features(extractor, predictions, batch_size)
        real = _features(extractor, references, batch_size)
        kid, kid_std = compute_kid(real, fake, subsets=kid_subsets, subset_size=kid_subset_size, seed=seed)
        return {
            "fid": compute_fid(real, fake),
            "kid": kid,
            "kid_std": kid_std,
            "fid_comparable": extractor.comparable,
            "inception_weights": extractor.weights_source,
            "num_predictions": len(predictions),
            "num_references": len(references),
        }
