"""``ingest``: turn an original dataset folder into a Hub-ready parquet dataset (and the ``labelsynth ingest`` command).

On-disk convention (the layout ``Dataset.push_to_hub`` writes, so the folder can be uploaded as it is)::

    <output_dir>/
      data/<split>-00000-of-0000N.parquet   rows {image, label, instance?, image_id}; datasets Image() features,
                                            file bytes embedded (photos byte for byte, labels as index PNGs:
                                            8-bit, or 16-bit when ids > 255; instance maps 8/16-bit PNG as shipped)
      label_space.json                      LabelSpace.to_dict(): names, palette (RGB per id), ignore_index, ...
      id2label.json                         {"0": "other", "1": "wall", ...} (transformers convention)
      README.md                             dataset card: YAML ``configs`` (one data_files entry per split),
                                            ``dataset_info`` (features, splits) and the label convention

Load it with ``datasets.load_dataset(output_dir)`` (or ``load_dataset("parquet", data_dir=output_dir)``; after
``push_to_hub``, ``load_dataset("<repo>")``), or with `labelsynth.data.load_training_dataset` which also reads
``label_space.json``. Several splits can be ingested into the same folder one after the other; the label space must
then be the same. Label values are the label space's raw ids (255 = unlabeled kept where the space has it).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..label_spaces import LabelSpace, get_label_space
from .layouts import (
    CLASS_ORDERS,
    canonical_split,
    find_records,
    get_layout,
    list_layouts,
    records_to_rows,
    resolve_label_space,
    row_features,
)

__all__ = ["IngestResult", "add_cli_parser", "ingest", "read_label_space", "run_cli"]

LABEL_SPACE_FILE = "label_space.json"
ID2LABEL_FILE = "id2label.json"
_SHARD_RE = re.compile(r"^(?P<split>.+)-(?P<index>\d{5})-of-(?P<count>\d{5})\.parquet$")


@dataclass
class IngestResult:
    """What `ingest` wrote."""

    output_dir: Path
    split: str
    num_rows: int
    files: list[Path] = field(default_factory=list)
    label_space: LabelSpace | None = None
    repo_id: str | None = None


def _parse_size(size: int | str) -> int:
    if isinstance(size, int):
        return size
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*", str(size), flags=re.IGNORECASE)
    if not m:
        raise ValueError(f"max_shard_size must be bytes or like '500MB', got {size!r}")
    scale = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}[m.group(2).upper()]
    return int(float(m.group(1)) * scale)


def _cell_bytes(cell: Any) -> int:
    return len(cell["bytes"]) if isinstance(cell, Mapping) and cell.get("bytes") is not None else 0


def read_label_space(folder: str | os.PathLike) -> LabelSpace | None:
    """The label space saved next to an ingested dataset (``label_space.json``, else ``id2label.json``), or None."""
    folder = Path(folder)
    if (folder / LABEL_SPACE_FILE).is_file():
        return get_label_space(json.loads((folder / LABEL_SPACE_FILE).read_text()))
    if (folder / ID2LABEL_FILE).is_file():
        id2label = json.loads((folder / ID2LABEL_FILE).read_text())
        names = [id2label[k] for k in sorted(id2label, key=int)]
        if [int(k) for k in sorted(id2label, key=int)] != list(range(len(names))):
            raise ValueError(f"{folder / ID2LABEL_FILE}: ids must be 0..N-1 without gaps")
        return LabelSpace.custom(names, name=folder.name or "custom")
    return None


def _existing_splits(data_dir: Path) -> dict[str, int]:
    splits: dict[str, int] = {}
    for p in sorted(data_dir.glob("*.parquet")):
        m = _SHARD_RE.match(p.name)
        if m:
            splits.setdefault(m.group("split"), 0)
    return splits


def _num_rows(files: list[Path]) -> int:
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(f).metadata.num_rows for f in files)


def _write_card(output_dir: Path, space: LabelSpace, kind: str, features: Any) -> None:
    import yaml
    from datasets import DatasetInfo

    data_dir = output_dir / "data"
    splits = {}
    for p in sorted(data_dir.glob("*.parquet")):
        m = _SHARD_RE.match(p.name)
        if m:
            splits.setdefault(m.group("split"), []).append(p)
    try:  # the same YAML block push_to_hub writes (features + splits)
        info = DatasetInfo(features=features)._to_yaml_dict()
    except (AttributeError, TypeError):  # pragma: no cover - private helper; the parquet schema has the features too
        info = {}
    info["splits"] = [
        {"name": s, "num_bytes": sum(p.stat().st_size for p in f), "num_examples": _num_rows(f)}
        for s, f in splits.items()
    ]
    meta = {
        "configs": [{"config_name": "default", "data_files": [{"split": s, "path": f"data/{s}-*"} for s in splits]}],
        "dataset_info": info,
        "task_categories": ["image-to-image"],
        "tags": ["labelsynth", "semantic-image-synthesis", "label-to-image"],
    }
    ignore = (
        f"; {space.ignore_index} = unlabeled (kept as is: the model's don't-care channel)"
        if space.ignore_index is not None
        else ""
    )
    body = f"""# {output_dir.name}

Paired photo / label-map data for semantic image synthesis, written by `labelsynth ingest {kind}`.

* `image`: the photo (original file bytes).
* `label`: index map of raw ids in the label space **{space.name}** (ids 0..{space.num_classes - 1}{ignore}):
  the original index PNG, or a computed one (8-bit; 16-bit when ids exceed 255).
* `instance` (if present): instance map (8/16-bit PNG, values kept exactly).
* `image_id`: the source file stem.

Class names and colours: `{LABEL_SPACE_FILE}` (`labelsynth.LabelSpace.to_dict()`) and `{ID2LABEL_FILE}`.

```python
from labelsynth.data import load_training_dataset
dataset = load_training_dataset("<this folder or repo>", split="train")
```

{space.description}
"""
    (output_dir / "README.md").write_text("---\n" + yaml.safe_dump(meta, sort_keys=False) + "---\n" + body)


def ingest(
    kind: str,
    root: str | os.PathLike,
    output_dir: str | os.PathLike,
    *,
    split: str = "train",
    label_space: str | Mapping[str, Any] | LabelSpace | None = None,
    class_order: str | None = None,
    push_to_hub: str | None = None,
    private: bool | None = None,
    token: str | None = None,
    max_shard_size: int | str = "500MB",
    validate: bool = True,
    color_tolerance: float = 0.0,
    overwrite: bool = False,
    **options: Any,
) -> IngestResult:
    """Read one split of an original dataset layout and write it as parquet shards (see the module docstring).

    Args:
        kind: Layout name: ``ade20k``, ``cityscapes``, ``celebamask-hq``, ``coco-stuff`` or ``paired``.
        root: The original dataset folder.
        output_dir: Where to write (created; other splits already there are kept).
        split: ``train``, ``validation`` (``val``) or ``test``; written under its canonical name.
        label_space: Label space of the labels (default: the layout's; required for ``paired``).
        class_order: CelebAMask-HQ class order: ``official`` (= ``sean``) or ``cocosnet``.
        push_to_hub: Also upload the folder to this Hub dataset repo (created if needed).
        private, token: Passed to the Hub for ``push_to_hub``.
        max_shard_size: Upper bound of a parquet shard's payload (bytes or ``"500MB"``).
        validate: Check every label (range, sizes, instance maps) while writing; errors name the file.
        color_tolerance: For colour-coded labels of the ``paired`` layout.
        overwrite: Replace this split's shards if the folder already has them.
        options: Layout options (``skip_missing=True``, ``celeba_source=...``).

    Returns:
        `IngestResult` with the output folder, the split, the row count and the shard files.
    """
    from datasets import Dataset

    layout = get_layout(kind)
    space = resolve_label_space(layout.name, label_space, class_order)
    split = canonical_split(split)
    if not re.fullmatch(r"[A-Za-z0-9_]+", split):
        raise ValueError(f"split names may only hold letters, digits and '_', got {split!r}")
    records = find_records(layout.name, root, split, **options)
    output_dir = Path(output_dir)
    data_dir = output_dir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)

    saved = read_label_space(output_dir) if (output_dir / LABEL_SPACE_FILE).is_file() else None
    if saved is not None and saved != space:
        raise ValueError(
            f"{output_dir} already holds a dataset in label space {saved.name!r}; cannot add split {split!r} in "
            f"{space.name!r}: use another output folder"
        )
    old = sorted(data_dir.glob(f"{split}-*.parquet"))
    if old and not overwrite:
        raise ValueError(f"{output_dir} already has split {split!r} ({len(old)} shard(s)); pass overwrite=True")

    with_instance = any(r.get("instance") for r in records)
    features = row_features(with_instance)
    limit = _parse_size(max_shard_size)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{split}-", dir=data_dir))
    shards: list[Path] = []
    num_rows = 0
    try:
        batch: list[dict] = []
        size = 0

        def flush() -> None:
            nonlocal batch, size
            if batch:
                path = tmp_dir / f"{len(shards):05d}.parquet"
                Dataset.from_list(batch, features=features).to_parquet(str(path))
                shards.append(path)
            batch, size = [], 0

        rows = records_to_rows(
            records, space, embed=True, validate=validate, color_tolerance=color_tolerance, with_instance=with_instance
        )
        for row in rows:
            batch.append(row)
            num_rows += 1
            size += sum(_cell_bytes(row.get(k)) for k in ("image", "label", "instance"))
            if size >= limit:
                flush()
        flush()
        for p in old:
            p.unlink()
        final = []
        for i, p in enumerate(shards):
            target = data_dir / f"{split}-{i:05d}-of-{len(shards):05d}.parquet"
            os.replace(p, target)
            final.append(target)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)

    (output_dir / LABEL_SPACE_FILE).write_text(json.dumps(space.to_dict(), indent=1))
    (output_dir / ID2LABEL_FILE).write_text(json.dumps({str(k): v for k, v in space.id2label.items()}, indent=1))
    _write_card(output_dir, space, layout.name, features)
    result = IngestResult(output_dir=output_dir, split=split, num_rows=num_rows, files=final, label_space=space)
    if push_to_hub:
        from huggingface_hub import HfApi

        api = HfApi(token=token)
        api.create_repo(push_to_hub, repo_type="dataset", private=private, exist_ok=True)
        api.upload_folder(
            repo_id=push_to_hub,
            folder_path=str(output_dir),
            repo_type="dataset",
            commit_message=f"labelsynth ingest {layout.name}: split {split} ({num_rows} rows)",
        )
        result.repo_id = push_to_hub
    return result


# ---------------------------------------------------------------------------------------------------- CLI
def add_cli_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``ingest`` on an ``argparse`` sub-parsers object; the parser's ``handler`` default is `run_cli`.

    ``labelsynth ingest <kind> <root> --output <dir> [--split S] [--label-space NAME] [--class-order ORDER]
    [--push_to_hub REPO]``
    """
    parser = subparsers.add_parser(
        "ingest",
        help="convert an original dataset folder to parquet (Hub-ready)",
        description=(
            "Read one split of an original dataset folder (ADE20K, Cityscapes, CelebAMask-HQ, COCO-Stuff, or any "
            "images/ + labels/ folder) and write parquet shards with columns image, label, instance?, image_id, plus "
            "label_space.json, id2label.json and a dataset card. Load the result with "
            "datasets.load_dataset(<dir>) or labelsynth.data.load_training_dataset(<dir>)."
        ),
    )
    parser.add_argument("kind", choices=list_layouts(), help="dataset layout")
    parser.add_argument("root", help="the original dataset folder")
    parser.add_argument("-o", "--output", required=True, metavar="DIR", help="output folder")
    parser.add_argument("--split", default="train", help="train, validation (val) or test (default: train)")
    parser.add_argument("--label-space", help="label-space name (default: the layout's; required for 'paired')")
    parser.add_argument("--class-order", choices=sorted(set(CLASS_ORDERS)),
                        help="CelebAMask-HQ class order: official (= sean) or cocosnet")  # fmt: skip
    parser.add_argument("--push-to-hub", "--push_to_hub", dest="push_to_hub", metavar="REPO",
                        help="also upload the folder to this Hub dataset repo")  # fmt: skip
    parser.add_argument("--private", action="store_true", help="create the Hub repo as private")
    parser.add_argument("--max-shard-size", default="500MB", help="parquet shard size bound (default: 500MB)")
    parser.add_argument("--color-tolerance", type=float, default=0.0,
                        help="RGB tolerance for colour-coded labels (paired layout)")  # fmt: skip
    parser.add_argument("--skip-missing", action="store_true", help="leave out images without labels (and vice versa)")
    parser.add_argument("--no-validate", dest="validate", action="store_false", help="do not check label files")
    parser.add_argument("--overwrite", action="store_true", help="replace this split if the output already has it")
    parser.set_defaults(handler=run_cli)
    return parser


def run_cli(args: argparse.Namespace) -> IngestResult:
    """Handler of ``labelsynth ingest``; user errors become ``labelsynth.cli.CLIError`` (one line, exit status 2)."""
    try:
        result = ingest(
            args.kind, args.root, args.output, split=args.split, label_space=args.label_space,
            class_order=args.class_order, push_to_hub=args.push_to_hub, private=args.private or None,
            max_shard_size=args.max_shard_size, validate=args.validate, color_tolerance=args.color_tolerance,
            overwrite=args.overwrite, skip_missing=args.skip_missing,
        )  # fmt: skip
    except (ValueError, FileNotFoundError) as err:
        try:
            from ..cli import CLIError
        except ImportError:  # pragma: no cover - cli module always exists in the package
            raise SystemExit(f"labelsynth: error: ingest {args.kind}: {err}") from None
        raise CLIError(f"ingest {args.kind}: {err}") from None
    print(
        f"wrote {result.num_rows} rows of split {result.split!r} ({result.label_space.name}) to {result.output_dir}"
        + (f" and pushed it to {result.repo_id}" if result.repo_id else "")
    )
    return result
