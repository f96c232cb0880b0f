"""The pix2pixHD feature bank: encode the training set's instances, cluster the codes per class (k-means).

After training a model with the feature encoder, every training instance is encoded (its instance-pooled feature
vector); per class, the vectors of instances covering more than 1/64 of the image (the original's "area ratio >
0.5" with blocks of h*w/32 pixels) are clustered with k-means into at most `n_clusters` centres, which become the
model's feature bank (`Pix2PixHDModel.set_feature_clusters`). At inference, `cluster=` picks a centre per instance.

```bash
labelsynth cluster-features runs/pix2pixhd-feat --dataset data/cityscapes --n-clusters 10
```

The original (`encode_features.py`) uses scikit-learn's `KMeans(random_state=0)`; this is the same algorithm
(k-means++ seeding, Lloyd iterations, best of `n_init` runs) in torch, so centres match up to the random seeding.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .modeling_pix2pixhd import Pix2PixHDModel, segment_classes

# An instance enters the clustering when its pixel count / (h * w // 32) exceeds this (encode_features.py).
MIN_AREA_RATIO = 0.5


def kmeans(points: torch.Tensor, k: int, *, n_init: int = 10, max_iter: int = 300, tol: float = 1e-4,
           generator: torch.Generator | None = None) -> torch.Tensor:
    """k-means++ seeded Lloyd's algorithm; the best (lowest inertia) of `n_init` runs.

    Args:
        points (`Tensor[N, D]`): the vectors (computed in float64).
        k: number of centres (`1 <= k <= N`).

    Returns:
        `Tensor[k, D]` (float64) centres.
    """
    points = points.double()
    if not 1 <= k <= points.shape[0]:
        raise ValueError(f"k must be in 1..{points.shape[0]} (the number of points), got {k}")
    # Converged when the centres move less than `tol` times the data's mean variance (scikit-learn's criterion).
    threshold = tol * float(points.var(dim=0, correction=0).mean())
    best, best_inertia = None, float("inf")
    for _ in range(n_init):
        # k-means++: each next centre drawn with probability proportional to the squared distance to the nearest.
        centres = points[torch.randint(points.shape[0], (1,), generator=generator)]
        for _ in range(1, k):
            distance = torch.cdist(points, centres).min(dim=1).values.square()
            weights = distance if float(distance.sum()) > 0 else torch.ones_like(distance)
            centres = torch.cat([centres, points[torch.multinomial(weights, 1, generator=generator)]])
        for _ in range(max_iter):
            assignment = torch.cdist(points, centres).argmin(dim=1)
            updated = centres.clone()
            for j in range(k):
                members = points[assignment == j]
                if len(members):
                    updated[j] = members.mean(dim=0)
            shift = float((updated - centres).square().sum())
            centres = updated
            if shift <= threshold:
                break
        inertia = float(torch.cdist(points, centres).min(dim=1).values.square().sum())
        if inertia < best_inertia:
            best, best_inertia = centres, inertia
    return best


@torch.no_grad()
def collect_instance_features(model: Pix2PixHDModel, batches: Iterable[dict[str, torch.Tensor]]
                              ) -> dict[int, torch.Tensor]:
    """Encode every instance of every batch: `{class channel: Tensor[N, feat_num]}` of the instances large enough
    to be clustered (see `MIN_AREA_RATIO`).

    Batches hold `pixel_values` `[B, 3, H, W]` in [-1, 1], `label_map` `[B, H, W]` and (instance mode)
    `instance_map` `[B, H, W]`, as `PairedTransform` makes them.
    """
    model._require_features("feature encoder to cluster")
    collected: dict[int, list[torch.Tensor]] = {}
    for batch in batches:
        channels = model.prepare_label_channels(batch["label_map"])
        segments = batch["label_map"] if model.config.feature_mode == "label" else batch.get("instance_map")
        if segments is None:
            raise ValueError("instance-wise features need instance maps in the data (instance column)")
        segments = segments.to(model.device)
        features = model.encode_features(batch["pixel_values"], segments)
        height, width = channels.shape[-2:]
        block = height * width // 32
        for feature, segment, channel in zip(features, segments, channels):
            ids, classes, inverse = segment_classes(segment, channel, model.config.num_label_channels)
            counts = torch.bincount(inverse.flatten(), minlength=ids.numel())
            # The pooled map is constant per segment: read each segment's vector at one of its pixels.
            first = torch.full((ids.numel(),), inverse.numel(), dtype=torch.long, device=inverse.device)
            first.scatter_reduce_(0, inverse.flatten(), torch.arange(inverse.numel(), device=inverse.device), "amin")
            vectors = feature.flatten(1)[:, first].T.float().cpu()
            for vector, label, count in zip(vectors, classes.tolist(), counts.tolist()):
                if count / block > MIN_AREA_RATIO:
                    collected.setdefault(label, []).append(vector)
    return {label: torch.stack(vectors) for label, vectors in collected.items()}


def cluster_features(model: Pix2PixHDModel, batches: Iterable[dict[str, torch.Tensor]], *,
                     n_clusters: int | None = None, seed: int = 0, n_init: int = 10) -> dict[int, torch.Tensor]:
    """Encode the batches, cluster per class and store the centres in `model`'s feature bank.

    Returns:
        `{class channel: centres [min(n, n_clusters), feat_num]}`.
    """
    n_clusters = n_clusters or model.config.n_clusters
    if n_clusters > model.config.n_clusters:
        raise ValueError(f"n_clusters={n_clusters} exceeds the model's feature bank size "
                         f"(config.n_clusters={model.config.n_clusters})")
    features = collect_instance_features(model, batches)
    if not features:
        raise ValueError("no instance is large enough to cluster (each must cover more than 1/64 of its image)")
    generator = torch.Generator().manual_seed(seed)
    centres = {label: kmeans(vectors, min(len(vectors), n_clusters), n_init=n_init, generator=generator)
               for label, vectors in sorted(features.items())}
    model.set_feature_clusters(centres)
    return centres


def save_original_feature_bank(centres: dict[int, torch.Tensor], path: str | Path) -> None:
    """Write the bank as the original's `features_clustered_<n>.npy` (a pickled `{label: float64 [k, feat_num]}`)."""
    np.save(path, {int(label): c.double().cpu().numpy() for label, c in centres.items()}, allow_pickle=True)


# ------------------------------------------------------------------------------------------------ command line
def run_cli(args: argparse.Namespace) -> dict[int, torch.Tensor]:
    """`labelsynth cluster-features` (options: `labelsynth.cli.cluster_features`): returns the centres."""
    from ...cli._common import CLIError
    from ...data import PairedTransform, load_training_dataset
    from ...training.modules import default_collate

    if not (Path(args.model) / "config.json").is_file():
        raise CLIError(f"{args.model}: not a model folder (no config.json)")
    model = Pix2PixHDModel.from_pretrained(args.model).eval()
    if not model.config.use_features:
        raise CLIError(f"{args.model} has no feature encoder (trained without --instance_feat / --label_feat)")
    config = model.config
    try:
        rows = load_training_dataset(args.dataset, kind=args.dataset_kind, split=args.split,
                                     label_space=config.label_space)
        if args.max_samples:
            rows = rows.select(range(min(args.max_samples, len(rows))))
        view = PairedTransform(size=tuple(config.image_size), mode="fixed", flip=False, label_space=config.label_space,
                               use_instance=config.feature_mode == "instance" or config.use_instance_edges,
                               passthrough_columns=())
        samples = (view.apply(rows[i]) for i in range(len(rows)))
        batches = _batched(samples, args.batch_size, default_collate)
        centres = cluster_features(model, batches, n_clusters=args.n_clusters, seed=args.seed)
    except (ValueError, FileNotFoundError) as err:
        raise CLIError(f"cluster-features: {err}") from None
    output = args.output or args.model
    model.save_pretrained(output)
    if args.output:
        from ...processing import LabelMapProcessor

        LabelMapProcessor.from_pretrained(args.model).save_pretrained(output)
    if args.save_npy:
        save_original_feature_bank(centres, args.save_npy)
    counts = ", ".join(f"{label}: {len(c)}" for label, c in centres.items())
    print(f"clustered {len(centres)} classes (class: clusters) {counts}; saved {output}")
    return centres


def _batched(samples: Iterable[dict[str, torch.Tensor]], size: int, collate: Any) -> Iterable[dict[str, torch.Tensor]]:
    chunk = []
    for sample in samples:
        chunk.append(sample)
        if len(chunk) == size:
            yield collate(chunk)
            chunk = []
    if chunk:
        yield collate(chunk)
