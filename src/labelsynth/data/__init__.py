"""Training data for labelsynth: one row format from Hub datasets and original folder layouts, paired transforms.

**Rows.** Every source becomes rows ``{"image": PIL RGB, "label": int ids (index image), "instance": int map
(optional), "image_id": str (optional)}``. Label ids are the label space's raw ids (ADE20K 0..150 with 0 = other,
Cityscapes labelIds, COCO-Stuff 0..181 + 255, CelebAMask-HQ in a named class order); the ignore value is kept.

**After the transform** (`PairedTransform`): ``{"pixel_values": FloatTensor[3, H, W] in [-1, 1], "label_map":
LongTensor[H, W], "instance_map": LongTensor[H, W]}``; `collate_fn` stacks them. Label maps stay integers; one-hot
encoding happens in the model.

Entry points:

* `load_training_dataset` -- a Hub id, a local parquet/imagefolder/``save_to_disk`` folder, a folder written by
  `ingest`, an original layout folder, or a ``datasets`` object -> common-format rows.
* `adapt_dataset` / `detect_schema` / `register_schema` -- Hub schemas (`labelsynth.data.schemas`).
* `build_dataset` / `detect_layout` / `list_layouts` -- original layouts (`labelsynth.data.layouts`).
* `ingest` (+ `add_cli_parser` for ``labelsynth ingest``) -- original layout -> parquet shards + ``label_space.json``
  (`labelsynth.data.ingestion` documents the on-disk convention).
* `PairedTransform`, `collate_fn`, `apply_transform` -- paired resize/crop/flip (`labelsynth.data.transforms`).

Example::

    from torch.utils.data import DataLoader
    from labelsynth.data import PairedTransform, apply_transform, collate_fn, load_training_dataset

    dataset, space = load_training_dataset("path/to/ADEChallengeData2016", return_label_space=True)
    transform = PairedTransform(size=256, load_size=286, label_space=space, seed=0)
    loader = DataLoader(apply_transform(dataset, transform), batch_size=8, shuffle=True, collate_fn=collate_fn)

Submodules are imported on first use, so ``from labelsynth.data import add_cli_parser`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    # schemas
    "HubSchema": "schemas",
    "adapt_dataset": "schemas",
    "detect_schema": "schemas",
    "get_schema": "schemas",
    "list_schemas": "schemas",
    "register_schema": "schemas",
    # layouts
    "CLASS_ORDERS": "layouts",
    "FolderLayout": "layouts",
    "build_dataset": "layouts",
    "detect_layout": "layouts",
    "find_records": "layouts",
    "get_layout": "layouts",
    "list_layouts": "layouts",
    # ingest
    "IngestResult": "ingestion",
    "add_cli_parser": "ingestion",
    "ingest": "ingestion",
    "read_label_space": "ingestion",
    "run_cli": "ingestion",
    # loading
    "load_training_dataset": "loading",
    # transforms
    "PairedTransform": "transforms",
    "TransformParams": "transforms",
    "apply_transform": "transforms",
    "collate_fn": "transforms",
    # decoding helpers
    "decode_image": "_io",
    "decode_instance": "_io",
    "decode_label": "_io",
    "encode_index_map": "_io",
}

__all__ = [
    "CLASS_ORDERS",
    "FolderLayout",
    "HubSchema",
    "IngestResult",
    "PairedTransform",
    "TransformParams",
    "adapt_dataset",
    "add_cli_parser",
    "apply_transform",
    "build_dataset",
    "collate_fn",
    "decode_image",
    "decode_instance",
    "decode_label",
    "detect_layout",
    "detect_schema",
    "encode_index_map",
    "find_records",
    "get_layout",
    "get_schema",
    "ingest",
    "list_layouts",
    "list_schemas",
    "load_training_dataset",
    "read_label_space",
    "register_schema",
    "run_cli",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'labelsynth.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
