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

Every run is all-or-nothing: the new folder is built beside the output (``.<name>.ingest-<pid>-*``: hard links to
the files kept, the new shards, the new card) and swapped in with one atomic exchange of the two folders (Linux
``renameat2(RENAME_EXCHANGE)``; elsewhere two renames, the old folder kept as ``.<name>.replaced-<pid>-*`` until the
second one is done). So the folder always holds either the complete old dataset or the complete new one, its card
describing exactly its shards; a failed or killed run leaves it as it was. Leftovers of killed runs are removed (a
``replaced`` folder whose output is missing is restored) by the next run and listed in `IngestResult.cleaned`.
"""

from __future__ import annotations

import argparse
import ctypes
import errno
import json
import os
import re
import secrets
import shutil
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..label_spaces import LabelSpace, get_label_space
from ._io import UnreadableImageError
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
# Temporary folders beside the output: `.<name>.ingest-<pid>-<random>` (the new folder being built; after the swap, the
# old one being deleted) and `.<name>.replaced-<pid>-<random>` (the old folder, between the two renames of the
# fallback swap). The pid tells leftovers of killed runs from folders of a run still going.
_TEMP_RE = re.compile(r"^\.(?P<name>.+)\.(?P<what>ingest|replaced)-(?P<pid>\d+)-[^/]+$")
_MAX_LISTED = 5


@dataclass
class IngestResult:
    """What `ingest` wrote."""

    output_dir: Path
    split: str
    num_rows: int
    files: list[Path] = field(default_factory=list)
    label_space: LabelSpace | None = None
    repo_id: str | None = None
    skipped: list[str] = field(default_factory=list)
    """Files left out (``skip_missing``/``skip_invalid``), one line each naming the file and why."""
    cleaned: list[str] = field(default_factory=list)
    """Leftovers of killed earlier runs this run removed or restored."""


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


def _listing(items: list[str]) -> str:
    return ", ".join(items[:_MAX_LISTED]) + (f", ... ({len(items)} in all)" if len(items) > _MAX_LISTED else "")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    except OSError:  # pragma: no cover - e.g. platforms without signal 0: assume it may still run
        return True
    return True


def _clean_stale(output_dir: Path) -> list[str]:
    """Remove the temporary folders killed runs left beside ``output_dir`` (restoring the old folder when a kill
    came between the two renames of the fallback swap); returns what was done, one line each."""
    notes = []
    if not output_dir.parent.is_dir():
        return notes
    for tmp in sorted(output_dir.parent.iterdir()):
        m = _TEMP_RE.match(tmp.name)
        if not m or m["name"] != output_dir.name or not tmp.is_dir():
            continue
        if _pid_alive(int(m["pid"])):
            notes.append(f"left {tmp} alone: process {m['pid']} (another ingest?) is still running")
        elif m["what"] == "replaced" and not output_dir.exists():
            os.rename(tmp, output_dir)
            notes.append(f"restored {output_dir} from {tmp.name}, left by an ingest run that was killed")
        else:
            shutil.rmtree(tmp)
            notes.append(f"removed {tmp}, left by an ingest run that was killed")
    return notes


def _link_tree(src: Path, dst: Path, skip: Any) -> None:
    """Recreate ``src`` under ``dst`` with hard links (copies where linking fails), leaving out paths (relative to
    ``src``) for which ``skip(path)`` is true."""
    for folder, dirs, files in os.walk(src):
        rel = Path(folder).relative_to(src)
        dirs[:] = [d for d in dirs if not skip(rel / d)]
        (dst / rel).mkdir(exist_ok=True)
        linked_dirs = [d for d in dirs if (Path(folder) / d).is_symlink()]  # os.walk does not enter these
        for name in files + linked_dirs:
            if skip(rel / name):
                continue
            source, target = Path(folder) / name, dst / rel / name
            if source.is_symlink():
                os.symlink(os.readlink(source), target)
                continue
            try:
                os.link(source, target)
            except OSError:  # file systems without hard links
                shutil.copy2(source, target)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two folders atomically (Linux ``renameat2(RENAME_EXCHANGE)``); False where that is not supported."""
    if not sys.platform.startswith("linux"):
        return False
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:  # pragma: no cover - glibc < 2.28
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):  # old kernel or file system without exchange
        return False
    raise OSError(err, f"cannot swap {a} and {b}: {os.strerror(err)}")


def _swap_in(staging: Path, output_dir: Path) -> Path | None:
    """Make ``staging`` the output folder; returns the path now holding the old folder (to delete), or None."""
    if not output_dir.exists():
        os.rename(staging, output_dir)
        return None
    if _exchange(staging, output_dir):
        return staging
    # Fallback: two renames. A kill between them leaves no output_dir but the old one under `replaced`, which the
    # next run restores (`_clean_stale`).
    replaced = output_dir.parent / f".{output_dir.name}.replaced-{os.getpid()}-{secrets.token_hex(4)}"
    os.rename(output_dir, replaced)
    os.rename(staging, output_dir)
    return replaced


def _num_rows(files: list[Path]) -> int:
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(f).metadata.num_rows for f in files)


def _write_card(output_dir: Path, space: LabelSpace, kind: str, features: Any, title: str) -> None:
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
    body = f"""# {title}

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
    skip_invalid: bool = False,
    **options: Any,
) -> IngestResult:
    """Read one split of an original dataset layout and write it as parquet shards (see the module docstring).

    The output folder is replaced as a whole, atomically: it holds the complete old or the complete new dataset at
    every moment, and a failed or killed run leaves it as it was.

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
        validate: Decode every photo and label (bounded by ``PIL.Image.MAX_IMAGE_PIXELS``) and check label ids,
            sizes and instance maps while writing; errors name the file.
        color_tolerance: For colour-coded labels of the ``paired`` layout.
        overwrite: Replace this split's shards if the folder already has them.
        skip_invalid: Leave out rows whose photo or label file cannot be decoded (corrupt, truncated, over the
            pixel limit) instead of raising; they are listed in `IngestResult.skipped`.
        options: Layout options (``skip_missing=True``, ``celeba_source=...``).

    Returns:
        `IngestResult` with the output folder, the split, the row count, the shard files and the skipped files.
    """
    from datasets import Dataset

    layout = get_layout(kind)
    space = resolve_label_space(layout.name, label_space, class_order)
    if not color_tolerance >= 0:  # also refuses NaN
        raise ValueError(f"color_tolerance must be >= 0 (max RGB distance for colour labels), got {color_tolerance!r}")
    split = canonical_split(split)
    if not re.fullmatch(r"[A-Za-z0-9_]+", split):
        raise ValueError(f"split names may only hold letters, digits and '_', got {split!r}")
    limit = _parse_size(max_shard_size)
    records = find_records(layout.name, root, split, **options)
    output_dir = Path(output_dir)
    target = output_dir.resolve()  # swap the real folder, not a symlink to it
    if target.exists() and not target.is_dir():
        raise ValueError(f"output {output_dir} exists and is not a folder")
    target.parent.mkdir(parents=True, exist_ok=True)
    cleaned = _clean_stale(target)

    saved = read_label_space(target) if (target / LABEL_SPACE_FILE).is_file() else None
    if saved is not None and saved != space:
        raise ValueError(
            f"{output_dir} already holds a dataset in label space {saved.name!r}; cannot add split {split!r} in "
            f"{space.name!r}: use another output folder"
        )
    old = sorted((target / "data").glob(f"{split}-*.parquet"))
    if old and not overwrite:
        raise ValueError(f"{output_dir} already has split {split!r} ({len(old)} shard(s)); pass overwrite=True")

    with_instance = any(r.get("instance") for r in records)
    features = row_features(with_instance)
    skipped = list(getattr(records, "skipped", []))
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.ingest-{os.getpid()}-", dir=target.parent))
    to_delete: Path | None = staging
    try:
        if target.is_dir():  # keep everything but this split's shards, the metadata we rewrite and stale temp folders

            def rewritten(rel: Path) -> bool:
                parts = rel.parts
                if len(parts) == 1:
                    return parts[0] in (LABEL_SPACE_FILE, ID2LABEL_FILE, "README.md")
                if parts[0] != "data" or len(parts) != 2:
                    return False
                name = parts[1]  # hidden: temp folders of labelsynth versions that wrote shards in place
                return name.startswith(".") or (name.startswith(f"{split}-") and name.endswith(".parquet"))

            for legacy in sorted((target / "data").glob(".*")) if (target / "data").is_dir() else []:
                cleaned.append(f"removed {legacy}, a temporary folder left by an earlier ingest run")
            _link_tree(target, staging, rewritten)
        data_dir = staging / "data"
        data_dir.mkdir(exist_ok=True)
        shards: list[Path] = []
        batch: list[dict] = []
        size = num_rows = 0

        def flush() -> None:
            nonlocal batch, size
            if batch:
                path = staging / f".shard-{len(shards):05d}.parquet"  # renamed once the shard count is known
                Dataset.from_list(batch, features=features).to_parquet(str(path))
                shards.append(path)
            batch, size = [], 0

        for rec in records:
            try:  # one record at a time, so that an unreadable file can be skipped
                rows = list(records_to_rows([rec], space, embed=True, validate=validate,
                                            color_tolerance=color_tolerance, with_instance=with_instance))  # fmt: skip
            except UnreadableImageError as err:
                if not skip_invalid:
                    raise UnreadableImageError(
                        f"{err}. Replace or remove the file, or pass skip_invalid=True to leave such rows out (they "
                        "are listed)"
                    ) from None
                skipped.append(str(err))  # names the file and why
                continue
            for row in rows:
                batch.append(row)
                num_rows += 1
                size += sum(_cell_bytes(row.get(k)) for k in ("image", "label", "instance"))
                if size >= limit:
                    flush()
        flush()
        if not shards:
            raise ValueError(f"no rows left to write for split {split!r}: every file was skipped ({_listing(skipped)})")
        final = []
        for i, path in enumerate(shards):
            name = f"{split}-{i:05d}-of-{len(shards):05d}.parquet"
            os.replace(path, data_dir / name)
            final.append(output_dir / "data" / name)
        (staging / LABEL_SPACE_FILE).write_text(json.dumps(space.to_dict(), indent=1))
        (staging / ID2LABEL_FILE).write_text(json.dumps({str(k): v for k, v in space.id2label.items()}, indent=1))
        _write_card(staging, space, layout.name, features, title=target.name)
        to_delete = _swap_in(staging, target)
    finally:
        if to_delete is not None:
            shutil.rmtree(to_delete, ignore_errors=True)

    result = IngestResult(output_dir=output_dir, split=split, num_rows=num_rows, files=final, label_space=space,
                          skipped=skipped, cleaned=cleaned)  # fmt: skip
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
    [--push_to_hub REPO] [--skip-missing] [--skip-invalid] [--overwrite]``
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
    parser.add_argument("--skip-missing", action="store_true",
                        help="leave out (and list) images without labels and vice versa")  # fmt: skip
    parser.add_argument("--skip-invalid", action="store_true",
                        help="leave out (and list) rows whose photo or label file cannot be decoded")  # fmt: skip
    parser.add_argument("--no-validate", dest="validate", action="store_false", help="do not check label files")
    parser.add_argument("--overwrite", action="store_true", help="replace this split if the output already has it")
    parser.set_defaults(handler=run_cli)
    return parser


# `ingest` keywords -> (the `labelsynth ingest` option that sets them, its metavar). Errors raised under `ingest` (here,
# in `layouts`, in the label decoders) name the Python keyword; on the command line they must name the option.
_CLI_OPTIONS = {
    "label_space": ("--label-space", "NAME"),
    "class_order": ("--class-order", "ORDER"),
    "max_shard_size": ("--max-shard-size", "SIZE"),
    "color_tolerance": ("--color-tolerance", "T"),
    "tolerance": ("--color-tolerance", "T"),  # LabelSpace.encode_colors' name for it
    "skip_missing": ("--skip-missing", None),
    "skip_invalid": ("--skip-invalid", None),
    "overwrite": ("--overwrite", None),
}
# A keyword as messages write it: ``label_space=...``, ``tolerance=30``, ``skip_missing=True``, or a bare
# ``label_space`` (not part of a longer name or of a file name such as label_space.json). "overwrite" and "tolerance"
# only with a value: bare, they are English words.
_KEYWORD = re.compile(
    r"(?<![\w.-])(?:(?P<flag>skip_missing|skip_invalid|overwrite)=True\b"
    r"|(?P<key>label_space|class_order|max_shard_size|color_tolerance|tolerance(?==))"
    r"(?:=(?P<value>\.\.\.|\d+(?:\.\d+)?))?(?![\w(]|\.\w))"
)


def cli_message(message: str) -> str:
    """An `ingest` error message with each Python keyword it names replaced by its ``labelsynth ingest`` option,
    e.g. ``pass skip_missing=True`` -> ``pass --skip-missing``, ``needs label_space=...`` -> ``needs --label-space
    NAME``, ``tolerance=30`` -> ``--color-tolerance 30``."""

    def option(match: re.Match) -> str:
        if match["flag"]:
            return _CLI_OPTIONS[match["flag"]][0]
        flag, metavar = _CLI_OPTIONS[match["key"]]
        value = match["value"]
        return flag if value is None else f"{flag} {metavar if value == '...' else value}"

    return _KEYWORD.sub(option, message)


def run_cli(args: argparse.Namespace) -> IngestResult:
    """Handler of ``labelsynth ingest``; user errors become ``labelsynth.cli.CLIError`` (one line, exit status 2)."""
    try:
        result = ingest(
            args.kind, args.root, args.output, split=args.split, label_space=args.label_space,
            class_order=args.class_order, push_to_hub=args.push_to_hub, private=args.private or None,
            max_shard_size=args.max_shard_size, validate=args.validate, color_tolerance=args.color_tolerance,
            overwrite=args.overwrite, skip_missing=args.skip_missing, skip_invalid=args.skip_invalid,
        )  # fmt: skip
    except (ValueError, FileNotFoundError) as err:
        try:
            from ..cli import CLIError
        except ImportError:  # pragma: no cover - cli module always exists in the package
            raise SystemExit(f"labelsynth: error: ingest {args.kind}: {cli_message(str(err))}") from None
        raise CLIError(f"ingest {args.kind}: {cli_message(str(err))}") from None
    for note in result.cleaned:
        print(f"labelsynth: note: {note}", file=sys.stderr)
    if result.skipped:
        print(f"skipped {len(result.skipped)} file(s): {_listing(result.skipped)}")
    print(
        f"wrote {result.num_rows} rows of split {result.split!r} ({result.label_space.name}) to {result.output_dir}"
        + (f" and pushed it to {result.repo_id}" if result.repo_id else "")
    )
    return result
