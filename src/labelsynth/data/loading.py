"""`load_training_dataset`: one entry point from any source to rows ``{image, label, instance?, image_id?}``."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..label_spaces import LabelSpace, get_label_space
from .ingestion import ID2LABEL_FILE, LABEL_SPACE_FILE, read_label_space
from .layouts import _aliases, build_dataset, canonical_split, detect_layout, get_layout
from .schemas import adapt_dataset

__all__ = ["load_training_dataset"]

_DATA_EXTENSIONS = (".parquet", ".arrow", ".csv", ".jsonl", ".json")


def _is_dataset_object(obj: Any) -> bool:
    try:
        import datasets
    except ImportError:  # pragma: no cover
        return False
    return isinstance(
        obj, (datasets.Dataset, datasets.IterableDataset, datasets.DatasetDict, datasets.IterableDatasetDict)
    )


def _pick_split(dataset: Any, split: str | None) -> Any:
    if not isinstance(dataset, dict) or split is None:  # DatasetDict / IterableDatasetDict are dicts
        return dataset
    for name in dict.fromkeys((split, canonical_split(split), *_aliases(canonical_split(split)))):
        if name in dataset:
            return dataset[name]
    raise ValueError(f"split {split!r} not found; available splits: {list(dataset)}")


def _has_data_files(path: Path) -> bool:
    for pattern in ("*", "*/*", "*/*/*"):
        for p in path.glob(pattern):
            data = p.suffix in _DATA_EXTENSIONS or p.name.startswith("metadata.")
            if data and p.is_file() and p.name not in (LABEL_SPACE_FILE, ID2LABEL_FILE, "dataset_info.json"):
                return True
    return False


def _read_id2label(path: Path) -> dict | None:
    f = path / ID2LABEL_FILE
    return json.loads(f.read_text()) if f.is_file() else None


def _hub_metadata(repo_id: str, revision: str | None) -> tuple[LabelSpace | None, dict | None]:
    """label_space.json / id2label.json of a Hub dataset repo (from the cache when offline); (None, None) if absent."""
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:  # pragma: no cover
        return None, None
    space, id2label = None, None
    for filename in (LABEL_SPACE_FILE, ID2LABEL_FILE):
        try:
            local = hf_hub_download(repo_id, filename, repo_type="dataset", revision=revision)
        except Exception:  # noqa: BLE001, S112 - missing file, offline and not cached, no such repo: "no metadata"
            continue
        data = json.loads(Path(local).read_text())
        if filename == LABEL_SPACE_FILE:
            space = get_label_space(data)
        else:
            id2label = data
    return space, id2label


def _load_with_split(loader: Any, split: str, what: str) -> Any:
    last: Exception | None = None
    for name in dict.fromkeys((split, canonical_split(split), *_aliases(canonical_split(split)))):
        try:
            return loader(name)
        except ValueError as err:  # datasets: 'Unknown split "val". Should be one of [...]'
            if "split" not in str(err).lower():
                raise
            last = err
    raise ValueError(f"{what}: split {split!r} not found ({last})") from None


def load_training_dataset(
    source: Any,
    *,
    kind: str | None = None,
    split: str = "train",
    label_space: str | Mapping[str, Any] | LabelSpace | None = None,
    streaming: bool = False,
    column_mapping: Mapping[str, str] | None = None,
    schema: str | None = None,
    class_order: str | None = None,
    reduce_labels: bool | None = None,
    color_tolerance: float | None = None,
    revision: str | None = None,
    return_label_space: bool = False,
    **options: Any,
) -> Any:
    """Load a training split as rows in the common format ``{image, label, instance?, image_id?}``.

    ``source`` can be:

    * a ``datasets`` object (`Dataset`, `IterableDataset`, or a dict of them: ``split`` picks one);
    * a folder written by `ingest` (parquet + ``label_space.json``), any local parquet / imagefolder dataset folder,
      or a folder saved with ``save_to_disk``;
    * an original-layout folder (ADE20K, Cityscapes, CelebAMask-HQ, COCO-Stuff, images/ + labels/): detected, or
      named with ``kind=`` (see `labelsynth.data.layouts`);
    * a Hub dataset id (offline, i.e. ``HF_HUB_OFFLINE=1``, it must already be in the Hugging Face cache).

    Hub/parquet/saved datasets are adapted with `adapt_dataset` (schema detection, column renaming, label-id
    conventions); the label space comes from ``label_space=``, else the dataset's ``label_space.json``, else the
    schema or layout default.

    Args:
        kind: Original layout name, for folders that are not auto-detected (or to force one).
        split: ``train``, ``validation`` (``val``), ``test``, ...
        label_space: The label space of the ids (see above).
        streaming: Return an `datasets.IterableDataset` (lazy; for original layouts, sharded over the files).
        column_mapping, schema, reduce_labels, color_tolerance: See `adapt_dataset`.
        class_order: CelebAMask-HQ class order for the ``celebamask-hq`` layout (``official``/``sean``, ``cocosnet``).
        revision: Hub revision.
        return_label_space: Return ``(dataset, label_space)`` instead of the dataset alone.
        options: Layout options (``skip_missing``, ``celeba_source``, ``validate``).

    Returns:
        A `datasets.Dataset` (or `datasets.IterableDataset` when ``streaming``) of common-format rows; with
        ``return_label_space``, also the `LabelSpace`.
    """
    adapt_kwargs = {
        "schema": schema,
        "column_mapping": column_mapping,
        "reduce_labels": reduce_labels,
        "color_tolerance": color_tolerance,
        "return_label_space": True,
    }

    def finish(dataset: Any, space: LabelSpace | None, **kwargs: Any) -> Any:
        dataset = _pick_split(dataset, split)
        if streaming and hasattr(dataset, "to_iterable_dataset"):
            dataset = dataset.to_iterable_dataset()
        dataset, space = adapt_dataset(dataset, label_space=space, **adapt_kwargs, **kwargs)
        return (dataset, space) if return_label_space else dataset

    given_space = None if label_space is None else get_label_space(label_space)

    if _is_dataset_object(source):
        return finish(source, given_space)

    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"source must be a path, a Hub id or a datasets object, got {type(source).__name__}")
    from datasets import load_dataset, load_from_disk

    path = Path(source).expanduser()
    if path.exists():
        if path.is_file():
            if path.suffix not in (".parquet", ".arrow", ".csv", ".jsonl", ".json"):
                raise ValueError(f"{path}: a single file must be a parquet/arrow/csv/jsonl data file")
            builder = {".jsonl": "json"}.get(path.suffix, path.suffix[1:])
            ds = load_dataset(builder, data_files={"train": str(path)}, split="train", streaming=streaming)
            return finish(ds, given_space)
        if kind is not None:
            layout = get_layout(kind)
            space_for_layout = label_space
            ds = build_dataset(layout.name, path, split, label_space=space_for_layout, class_order=class_order,
                               streaming=streaming, **options)  # fmt: skip
            if return_label_space:
                from .layouts import resolve_label_space

                return ds, resolve_label_space(layout.name, label_space, class_order)
            return ds
        if (path / "dataset_dict.json").is_file() or (path / "state.json").is_file():
            return finish(load_from_disk(str(path)), given_space)
        saved_space = read_label_space(path) if (path / LABEL_SPACE_FILE).is_file() else None
        if saved_space is not None:
            ds = _load_with_split(
                lambda s: load_dataset(str(path), split=s, streaming=streaming), split, f"dataset folder {path}"
            )
            return finish(ds, given_space or saved_space, id2label=_read_id2label(path))
        layout_name = detect_layout(path)
        if layout_name is not None:
            return load_training_dataset(
                path, kind=layout_name, split=split, label_space=label_space, streaming=streaming,
                class_order=class_order, return_label_space=return_label_space, **options,
            )  # fmt: skip
        if _has_data_files(path) or any(p.suffix.lower() in (".jpg", ".png", ".jpeg") for p in path.rglob("*")):
            ds = _load_with_split(
                lambda s: load_dataset(str(path), split=s, streaming=streaming), split, f"dataset folder {path}"
            )
            id2label = _read_id2label(path)
            space = given_space or read_label_space(path)
            return finish(ds, space, id2label=id2label)
        raise ValueError(
            f"{path}: not a dataset folder: no parquet/arrow/imagefolder data, no save_to_disk dataset, and no known "
            "original layout (ADE20K, Cityscapes, CelebAMask-HQ, COCO-Stuff, images/ + labels/); pass kind=... to "
            "name the layout"
        )

    if kind is not None:
        raise ValueError(f"kind={kind!r} needs a local folder, but {os.fspath(source)!r} does not exist")
    repo_id = os.fspath(source)
    if repo_id.startswith(("/", ".", "~")) or os.sep in repo_id.strip("/").replace("/", "", 1):
        raise ValueError(f"{repo_id!r} does not exist (and is not a Hub dataset id like 'org/name')")
    try:
        ds = _load_with_split(
            lambda s: load_dataset(repo_id, split=s, streaming=streaming, revision=revision), split, repo_id
        )
    except Exception as err:
        offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes") or os.environ.get(
            "HF_DATASETS_OFFLINE", ""
        ).lower() in ("1", "true", "yes")
        hints = []
        if offline:
            hints.append(
                "offline mode (HF_HUB_OFFLINE/HF_DATASETS_OFFLINE): the dataset must already be in the Hugging Face "
                "cache; load it once online, or pass a local folder"
            )
        if "scripts are no longer supported" in str(err):
            hints.append(
                "this repo uses a loading script, which datasets >= 4 cannot run; load its parquet export instead, "
                "e.g. load_dataset('parquet', data_files={'train': 'hf://datasets/<repo>@refs/convert/parquet/"
                "<config>/train/*.parquet'}), and pass that dataset object with schema=... (e.g. 'ade20k')"
            )
        raise ValueError(
            f"could not load the Hub dataset {repo_id!r} (split {split!r}): {type(err).__name__}: {err}"
            + (". " + "; ".join(hints) if hints else "")
        ) from err
    hub_space, id2label = _hub_metadata(repo_id, revision)
    return finish(ds, given_space or hub_space, repo_id=repo_id, id2label=id2label)
