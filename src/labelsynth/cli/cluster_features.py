"""``labelsynth cluster-features``: build a pix2pixHD model's feature bank (the original ``encode_features.py``)."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_parser"]


def add_parser(commands: Any) -> argparse.ArgumentParser:
    """Register ``cluster-features`` on the CLI's sub-command parsers."""
    parser = commands.add_parser(
        "cluster-features",
        help="build a pix2pixHD model's feature bank (k-means of its encoded training instances)",
        description=(
            "Encode every instance of a dataset with a pix2pixHD model's feature encoder, cluster the codes per "
            "class with k-means and save the model with its feature bank (the original encode_features.py), so "
            "that generation can pick a cluster per instance (labelsynth generate --cluster)."
        ),
    )
    parser.add_argument("model", help="a pix2pixHD model folder trained with the feature encoder")
    parser.add_argument("--dataset", required=True,
                        help="the training data: a dataset folder or Hub id as training/train_pix2pixhd.py takes")
    parser.add_argument("--dataset-kind", default=None, help="force the dataset layout/schema (see labelsynth.data)")
    parser.add_argument("--split", default="train")
    parser.add_argument("--output", default=None, help="where to save the model with its bank (default: in place)")
    parser.add_argument("--n-clusters", type=int, default=None,
                        help="clusters per class (default and maximum: the model's n_clusters, 10)")
    parser.add_argument("--max-samples", type=int, default=None, help="use only the first N rows")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0, help="seed of the k-means initialisation")
    parser.add_argument("--save-npy", metavar="PATH", help="also write the bank as the original's .npy file")
    parser.set_defaults(handler=_run)
    return parser


def _run(args: argparse.Namespace) -> Any:
    from ..models.pix2pixhd.feature_clustering import run_cli

    return run_cli(args)
