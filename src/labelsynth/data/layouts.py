"""The original dataset folder layouts, read into ``datasets.Dataset`` objects in the common row format.

Every layout finds ``(image, label[, instance])`` file triples for one split and turns them into rows
``{"image", "label", "instance"?, "image_id"}`` with ``datasets.Image()`` features. Files that need no conversion are
referenced by path (`build_dataset`, instant even for 20k images) or embedded byte for byte (`ingest`); label maps
that must be computed (merged CelebAMask-HQ part masks, decoded colour labels) are stored as lossless index PNGs.

Layouts (`list_layouts`, ``kind=``):

``ade20k``
    ``ADEChallengeData2016/images/{training,validation}/*.jpg`` + ``annotations/{training,validation}/*.png`` (raw
    ids, 0 = other). Also the flat CoCosNet layout ``{training,validation}/`` with jpg + png side by side, or a
    single folder of such pairs. Splits: ``train`` -> training, ``validation``/``val`` -> validation.
``cityscapes``
    ``leftImg8bit/<split>/<city>/*_leftImg8bit.png`` + ``gtFine/<split>/<city>/*_gtFine_labelIds.png`` and
    ``*_gtFine_instanceIds.png`` (16-bit, ``class * 1000 + index``, kept exactly). Also pix2pixHD's
    ``<split>_img/``, ``<split>_label/``, ``<split>_inst/``. Label space ``cityscapes`` (35 labelIds).
``celebamask-hq``
    ``CelebA-HQ-img/<id>.jpg`` + ``CelebAMask-HQ-mask-anno/<id // 2000>/<id:05d>_<part>.png`` per-part binary
    masks, merged with `labelsynth.label_spaces.merge_part_masks` (official painting order) into the class order
    you name: ``class_order="official"`` (= ``"sean"``, label space ``celebamask-hq``) or ``"cocosnet"``
    (``celebamask-hq-cocosnet``). CoCosNet's prepared ``CelebAMask-HQ-mask-anno/all_parts_except_glasses/<id>.png``
    maps (CoCosNet order) are used when present, with the ``eye_g`` part mask painted on top, and renumbered to the
    requested order. Splits come from ``<root>/{train,val,test}.txt`` (one id per line; ``train`` = every image not
    listed in another split file when ``train.txt`` is absent); without split files every image is in ``train``.
    The photos (1024x1024) stay twice the size of the masks (512x512); the transforms handle that.
``coco-stuff``
    SPADE's ``datasets/coco_stuff`` layout ``{train,val}_img/``, ``{train,val}_label/``, ``{train,val}_inst/``
    (optional), or the official ``train2017/`` (or ``images/train2017``) + ``stuffthingmaps_trainval2017/train2017``
    (0..181, 255 = unlabeled, kept).
``paired``
    Any folder with ``images/`` + ``labels/`` (+ optional ``instances/``), optionally under ``<root>/<split>/``,
    matched by file stem. Labels are index PNGs (ids) or colour PNGs decoded with the given ``label_space``'s
    palette (``color_tolerance`` for anti-aliased/JPEG colours). Needs ``label_space``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..label_spaces import LabelSpace, convert_celebamask_order, get_label_space, list_label_spaces, merge_part_masks
from ._io import (
    IMAGE_EXTENSIONS,
    check_image_file,
    decode_instance,
    decode_label,
    encode_index_map,
    is_color_label,
    open_image_file,
)

__all__ = [
    "CLASS_ORDERS",
    "FolderLayout",
    "Records",
    "build_dataset",
    "detect_layout",
    "find_records",
    "get_layout",
    "list_layouts",
    "records_to_rows",
    "resolve_label_space",
]

#: ``class_order=`` names for CelebAMask-HQ -> label-space names.
CLASS_ORDERS = {
    "official": "celebamask-hq",
    "sean": "celebamask-hq",
    "celebamask-hq": "celebamask-hq",
    "cocosnet": "celebamask-hq-cocosnet",
    "celebamask-hq-cocosnet": "celebamask-hq-cocosnet",
}

_SPLIT_ALIASES = {
    "train": ("train", "training"),
    "training": ("train", "training"),
    "validation": ("validation", "val"),
    "val": ("val", "validation"),
    "test": ("test", "testing"),
    "testing": ("test", "testing"),
}
_MAX_LISTED = 5


def canonical_split(split: str) -> str:
    """``train``/``validation``/``test`` for the usual spellings (``val`` -> ``validation``), else unchanged."""
    return {"training": "train", "val": "validation", "testing": "test"}.get(split, split)


def _aliases(split: str) -> tuple[str, ...]:
    return _SPLIT_ALIASES.get(split, (split,))


def _listing(items: Sequence[Any]) -> str:
    shown = ", ".join(str(i) for i in list(items)[:_MAX_LISTED])
    return shown + (f", ... ({len(items)} in all)" if len(items) > _MAX_LISTED else "")


class Records(list):
    """`find_records`' result: a list of file records, plus ``skipped``: the files ``skip_missing=True`` left out,
    each as ``"<file> (<why>)"``."""

    def __init__(self, records: Sequence[dict] = (), skipped: Sequence[str] = ()) -> None:
        super().__init__(records)
        self.skipped = list(skipped)


def _images_in(folder: Path, exts: Sequence[str] = IMAGE_EXTENSIONS, recursive: bool = False) -> list[Path]:
    if not folder.is_dir():
        return []
    pattern = "**/*" if recursive else "*"
    return sorted(p for p in folder.glob(pattern) if p.is_file() and p.suffix.lower() in exts)


def _by_stem(files: Sequence[Path], key: Callable[[Path], Any] = lambda p: p.stem) -> dict[Any, Path]:
    """``{key(file): file}``; files are matched by stem, so two files with one key (``x.png`` + ``x.jpg``) are an
    error naming them rather than one silently replacing the other."""
    index: dict[Any, list[Path]] = {}
    for p in files:
        index.setdefault(key(p), []).append(p)
    clashes = [group for group in index.values() if len(group) > 1]
    if clashes:
        shown = "; ".join(" + ".join(str(p) for p in group) for group in clashes[:_MAX_LISTED])
        more = f" ({len(clashes)} clashes in all)" if len(clashes) > _MAX_LISTED else ""
        raise ValueError(
            f"several files share one name (rows are matched by file name without extension): {shown}{more}; keep "
            "one file per name (remove or rename the others)"
        )
    return {k: group[0] for k, group in index.items()}


def _stamp(path: str | None) -> list[int] | None:
    if path is None:
        return None
    st = os.stat(path)
    return [st.st_size, st.st_mtime_ns]


def _pair(
    images: Mapping[str, Path],
    labels: Mapping[str, Path],
    where: str,
    *,
    instances: Mapping[str, Path] | None = None,
    label_kind: str = "index",
    skip_missing: bool = False,
) -> list[dict]:
    """Join image/label(/instance) files by key; missing partners are an error naming them (or skipped)."""
    if not images and not labels:
        raise ValueError(f"{where}: no image or label files found")
    if not images:
        raise ValueError(
            f"{where}: found {len(labels)} label maps but no images (e.g. {_listing(sorted(labels))}); training rows "
            "need the photos too (pix2pixHD ships no photos for its test split)"
        )
    no_label = sorted(set(images) - set(labels))
    no_image = sorted(set(labels) - set(images))
    no_inst = sorted(set(images) & set(labels) - set(instances)) if instances else []
    if (no_label or no_image or no_inst) and not skip_missing:
        problems = []
        if no_label:
            problems.append(
                f"{len(no_label)} image(s) without a label file: {_listing([images[k].name for k in no_label])}"
            )
        if no_image:
            problems.append(
                f"{len(no_image)} label file(s) without an image: {_listing([labels[k].name for k in no_image])}"
            )
        if no_inst:
            problems.append(
                f"{len(no_inst)} pair(s) without an instance map: {_listing([images[k].name for k in no_inst])}"
            )
        raise ValueError(
            f"{where}: " + "; ".join(problems) + ". Add the missing files, or pass skip_missing=True to leave those "
            "rows out"
        )
    keys = sorted(set(images) & set(labels) - set(no_inst))
    if not keys:
        raise ValueError(f"{where}: no image/label pairs found")
    skipped = (
        [f"{images[k]} (no label file)" for k in no_label]
        + [f"{labels[k]} (no image)" for k in no_image]
        + [f"{images[k]} (no instance map)" for k in no_inst]
    )
    return Records([
        {
            "image_id": key,
            "image": str(images[key]),
            "label": str(labels[key]),
            "label_kind": label_kind,
            "instance": str(instances[key]) if instances else None,
        }
        for key in keys
    ], skipped)  # fmt: skip


# ---------------------------------------------------------------------------------------------------- ADE20K
def _ade_find(root: Path, split: str, **_: Any) -> list[dict]:
    sub = {"train": "training", "validation": "validation", "test": "testing"}.get(canonical_split(split), split)
    bases = [root / "ADEChallengeData2016", root]
    for base in bases:
        img_dir, ann_dir = base / "images" / sub, base / "annotations" / sub
        if img_dir.is_dir() or ann_dir.is_dir():
            images = _by_stem(_images_in(img_dir, (".jpg", ".jpeg")))
            labels = _by_stem(_images_in(ann_dir, (".png",)))
            return _pair(images, labels, f"ADE20K {base} split {sub!r}", skip_missing=_.get("skip_missing", False))
    for folder in (root / sub, root):
        jpgs = _images_in(folder, (".jpg", ".jpeg"))
        if jpgs:
            images = _by_stem(jpgs)
            labels = _by_stem(_images_in(folder, (".png",)))
            return _pair(images, labels, f"ADE20K folder {folder}", skip_missing=_.get("skip_missing", False))
    raise ValueError(
        f"ADE20K: no split {sub!r} under {root}: expected ADEChallengeData2016/images/{sub}/*.jpg + "
        f"annotations/{sub}/*.png, or {sub}/ with jpg + png side by side"
    )


def _ade_detect(root: Path) -> bool:
    if (root / "ADEChallengeData2016").is_dir():
        return True
    if (root / "images" / "training").is_dir() and (root / "annotations" / "training").is_dir():
        return True
    for folder in (root / "training", root / "validation", root):
        if folder.is_dir() and any(p.name.startswith("ADE_") and p.suffix == ".png" for p in folder.iterdir()):
            return True
    return False


# ---------------------------------------------------------------------------------------------------- Cityscapes
_CS_SUFFIXES = {"image": "_leftImg8bit", "label": "_gtFine_labelIds", "instance": "_gtFine_instanceIds"}


def _cs_index(files: Sequence[Path], suffix: str) -> dict[str, Path]:
    return _by_stem([p for p in files if p.stem.endswith(suffix)], key=lambda p: p.stem[: -len(suffix)])


def _cs_find(root: Path, split: str, **opts: Any) -> list[dict]:
    skip = opts.get("skip_missing", False)
    for s in _aliases(canonical_split(split)):
        img_dir, gt_dir = root / "leftImg8bit" / s, root / "gtFine" / s
        if img_dir.is_dir() or gt_dir.is_dir():
            images = _cs_index(_images_in(img_dir, (".png",), recursive=True), _CS_SUFFIXES["image"])
            gt = _images_in(gt_dir, (".png",), recursive=True)
            labels = _cs_index(gt, _CS_SUFFIXES["label"])
            instances = _cs_index(gt, _CS_SUFFIXES["instance"])
            return _pair(
                images, labels, f"Cityscapes {root} split {s!r}", instances=instances or None, skip_missing=skip
            )
    for s in _aliases(canonical_split(split)):
        img_dir, lab_dir, inst_dir = root / f"{s}_img", root / f"{s}_label", root / f"{s}_inst"
        if img_dir.is_dir() or lab_dir.is_dir():
            images = _cs_index(_images_in(img_dir, (".png", ".jpg")), _CS_SUFFIXES["image"]) or _by_stem(
                _images_in(img_dir)
            )
            labels = _cs_index(_images_in(lab_dir, (".png",)), _CS_SUFFIXES["label"]) or _by_stem(
                _images_in(lab_dir, (".png",))
            )
            instances = None
            if inst_dir.is_dir():
                instances = _cs_index(_images_in(inst_dir, (".png",)), _CS_SUFFIXES["instance"]) or _by_stem(
                    _images_in(inst_dir, (".png",))
                )
            return _pair(images, labels, f"Cityscapes (pix2pixHD layout) {root} split {s!r}", instances=instances,
                         skip_missing=skip)  # fmt: skip
    raise ValueError(
        f"Cityscapes: no split {split!r} under {root}: expected leftImg8bit/{split}/<city>/*_leftImg8bit.png + "
        f"gtFine/{split}/<city>/*_gtFine_labelIds.png, or pix2pixHD's {split}_img/, {split}_label/, {split}_inst/"
    )


def _cs_detect(root: Path) -> bool:
    if (root / "leftImg8bit").is_dir() and (root / "gtFine").is_dir():
        return True
    for d in root.glob("*_label") if root.is_dir() else []:
        if d.is_dir() and any(p.name.endswith("_gtFine_labelIds.png") for p in d.iterdir()):
            return True
    return False


# ---------------------------------------------------------------------------------------------------- CelebAMask-HQ
_PART_FILE = re.compile(r"^(\d+)_([a-z_]+)\.png$")


def _read_ids(path: Path) -> set[int]:
    ids = set()
    for line in path.read_text().split():
        digits = re.match(r"\d+", line.strip())
        if digits:
            ids.add(int(digits.group()))
    return ids


def _celeba_split_ids(root: Path, split: str, all_ids: set[int]) -> set[int]:
    split = canonical_split(split)
    names = {"train": ("train",), "validation": ("val", "validation"), "test": ("test",)}
    files = {k: [root / f"{n}.txt" for n in v if (root / f"{n}.txt").is_file()] for k, v in names.items()}
    if split not in names:
        raise ValueError(f"CelebAMask-HQ: unknown split {split!r}; use train, validation or test")
    if files[split]:
        return set().union(*(_read_ids(p) for p in files[split]))
    if split == "train":
        others = [p for k, v in files.items() if k != "train" for p in v]
        return all_ids - set().union(*(_read_ids(p) for p in others)) if others else set(all_ids)
    raise ValueError(
        f"CelebAMask-HQ: no split file for {split!r} in {root} (expected {' or '.join(n + '.txt' for n in names[split])}"
        " with one image id per line); without split files every image is in 'train'"
    )


def _celeba_find(root: Path, split: str, **opts: Any) -> list[dict]:
    img_dir, anno_dir = root / "CelebA-HQ-img", root / "CelebAMask-HQ-mask-anno"
    if not img_dir.is_dir():
        raise ValueError(f"CelebAMask-HQ: no CelebA-HQ-img/ folder under {root}")
    if not anno_dir.is_dir():
        raise ValueError(f"CelebAMask-HQ: no CelebAMask-HQ-mask-anno/ folder under {root}")
    images = _by_stem(
        [p for p in _images_in(img_dir, (".jpg", ".jpeg", ".png")) if p.stem.isdigit()], key=lambda p: int(p.stem)
    )
    parts: dict[int, dict[str, str]] = {}
    for folder in sorted(anno_dir.iterdir()):
        if folder.is_dir() and folder.name.isdigit():
            for p in folder.iterdir():
                m = _PART_FILE.match(p.name)
                if m:
                    parts.setdefault(int(m.group(1)), {})[m.group(2)] = str(p)
    prepared_dir = anno_dir / "all_parts_except_glasses"
    prepared = _by_stem([p for p in _images_in(prepared_dir, (".png",)) if p.stem.isdigit()], key=lambda p: int(p.stem))
    wanted = _celeba_split_ids(root, split, set(images))
    missing_images = sorted(wanted - set(images))
    if missing_images and not opts.get("skip_missing", False):
        raise ValueError(
            f"CelebAMask-HQ {root}: split {split!r} lists ids without an image in CelebA-HQ-img/: "
            f"{_listing(missing_images)}"
        )
    records, no_label = [], []
    source = opts.get("celeba_source", "auto")
    for idx in sorted(wanted & set(images)):
        rec: dict[str, Any] = {"image_id": f"{idx:05d}", "image": str(images[idx]), "instance": None}
        if idx in prepared and source in ("auto", "cocosnet"):
            rec.update(label=str(prepared[idx]), label_kind="cocosnet", parts=None,
                       eye_g=parts.get(idx, {}).get("eye_g"))  # fmt: skip
        elif parts.get(idx) and source in ("auto", "parts"):
            rec.update(label=None, label_kind="parts", parts=dict(sorted(parts[idx].items())))
        else:
            no_label.append(f"{idx:05d}")
            continue
        records.append(rec)
    if no_label and not opts.get("skip_missing", False):
        raise ValueError(
            f"CelebAMask-HQ {root}: no masks for image id(s) {_listing(no_label)}: expected "
            f"CelebAMask-HQ-mask-anno/<id // 2000>/<id:05d>_<part>.png part masks (or CoCosNet's "
            "all_parts_except_glasses/<id:05d>.png); pass skip_missing=True to leave them out"
        )
    if not records:
        raise ValueError(f"CelebAMask-HQ {root}: no images with masks in split {split!r}")
    skipped = [f"image id {i:05d} (listed in the split file, no image in CelebA-HQ-img/)" for i in missing_images]
    return Records(records, skipped + [f"{images[int(i)]} (no masks)" for i in no_label])


def _celeba_detect(root: Path) -> bool:
    return (root / "CelebA-HQ-img").is_dir() and (root / "CelebAMask-HQ-mask-anno").is_dir()


# ---------------------------------------------------------------------------------------------------- COCO-Stuff
def _coco_find(root: Path, split: str, **opts: Any) -> list[dict]:
    skip = opts.get("skip_missing", False)
    short = {"train": "train", "validation": "val", "test": "test"}.get(canonical_split(split), split)
    for s in dict.fromkeys((short, *_aliases(canonical_split(split)))):
        img_dir, lab_dir, inst_dir = root / f"{s}_img", root / f"{s}_label", root / f"{s}_inst"
        if img_dir.is_dir() or lab_dir.is_dir():
            images = _by_stem(_images_in(img_dir))
            labels = _by_stem(_images_in(lab_dir, (".png",)))
            instances = _by_stem(_images_in(inst_dir, (".png",))) if inst_dir.is_dir() else None
            return _pair(images, labels, f"COCO-Stuff (SPADE layout) {root} split {s!r}", instances=instances,
                         skip_missing=skip)  # fmt: skip
    year = f"{short}2017"
    img_dirs = [root / year, root / "images" / year]
    lab_dirs = [
        root / "stuffthingmaps_trainval2017" / year,
        root / "stuffthingmaps" / year,
        root / "annotations" / "stuffthingmaps_trainval2017" / year,
        root / "annotations" / year,
    ]
    img_dir = next((d for d in img_dirs if d.is_dir()), None)
    lab_dir = next((d for d in lab_dirs if d.is_dir()), None)
    if img_dir is not None or lab_dir is not None:
        if img_dir is None or lab_dir is None:
            raise ValueError(
                f"COCO-Stuff {root}: found {'images ' + str(img_dir) if img_dir else 'labels ' + str(lab_dir)} but "
                f"not the {'stuffthingmaps_trainval2017/' + year if img_dir else year + '/ images'} folder"
            )
        images = _by_stem(_images_in(img_dir, (".jpg", ".jpeg", ".png")))
        labels = _by_stem(_images_in(lab_dir, (".png",)))
        return _pair(images, labels, f"COCO-Stuff {root} split {year!r}", skip_missing=skip)
    raise ValueError(
        f"COCO-Stuff: no split {split!r} under {root}: expected SPADE's {short}_img/ + {short}_label/ (+ {short}_inst/)"
        f", or {year}/ + stuffthingmaps_trainval2017/{year}/"
    )


def _coco_detect(root: Path) -> bool:
    if any((root / d).is_dir() for d in ("stuffthingmaps_trainval2017", "stuffthingmaps")):
        return True
    return any((root / f"{s}_label").is_dir() and (root / f"{s}_img").is_dir() for s in ("train", "val"))


# ---------------------------------------------------------------------------------------------------- paired folder
_PAIRED_DIRS = {
    "image": ("images", "image", "imgs", "img", "photos"),
    "label": ("labels", "label", "annotations", "annotation", "masks", "mask", "segmentations"),
    "instance": ("instances", "instance", "inst"),
}


def _paired_base(root: Path, split: str) -> Path:
    """``root/<split>`` when the folder is split into sub-folders, else ``root`` itself (holding one split)."""
    for s in _aliases(canonical_split(split)):
        if any((root / s / d).is_dir() for d in _PAIRED_DIRS["image"]):
            return root / s
    present = sorted(
        p.name for p in root.iterdir() if p.is_dir() and any((p / d).is_dir() for d in _PAIRED_DIRS["image"])
    )
    if present:
        raise ValueError(f"paired folder {root}: no split {split!r}; it has split folders {present}")
    return root


def _paired_find(root: Path, split: str, **opts: Any) -> list[dict]:
    base = _paired_base(root, split)
    dirs = {role: next((base / d for d in names if (base / d).is_dir()), None) for role, names in _PAIRED_DIRS.items()}
    if dirs["image"] is None or dirs["label"] is None:
        raise ValueError(
            f"paired folder {base}: expected an images/ and a labels/ folder (found: "
            f"{sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else 'nothing'}); accepted "
            f"names: {_PAIRED_DIRS['image']} and {_PAIRED_DIRS['label']}"
        )
    images = _by_stem(_images_in(dirs["image"]))
    labels = _by_stem(_images_in(dirs["label"]))
    instances = _by_stem(_images_in(dirs["instance"])) if dirs["instance"] is not None else None
    return _pair(images, labels, f"paired folder {base}", instances=instances, label_kind="auto",
                 skip_missing=opts.get("skip_missing", False))  # fmt: skip


def _paired_detect(root: Path) -> bool:
    for base in [root, *(root / s for s in ("train", "training"))]:
        if any((base / d).is_dir() for d in _PAIRED_DIRS["image"]) and any(
            (base / d).is_dir() for d in _PAIRED_DIRS["label"]
        ):
            return True
    return False


# ---------------------------------------------------------------------------------------------------- registry
@dataclass(frozen=True)
class FolderLayout:
    """One original folder layout: how to detect it, how to find a split's files, and its label space."""

    name: str
    label_space: str | None
    find: Callable[..., list[dict]]
    detect: Callable[[Path], bool]
    aliases: tuple[str, ...] = ()
    description: str = ""


_LAYOUTS: dict[str, FolderLayout] = {}
for _layout in (
    FolderLayout("celebamask-hq", "celebamask-hq", _celeba_find, _celeba_detect, ("celebamask", "celeba-hq", "celebahq"),
                 "CelebA-HQ-img/ + CelebAMask-HQ-mask-anno/ part masks (merged)"),
    FolderLayout("cityscapes", "cityscapes", _cs_find, _cs_detect, (),
                 "leftImg8bit/ + gtFine/ (labelIds, instanceIds), or pix2pixHD's <split>_img/_label/_inst"),
    FolderLayout("ade20k", "ade20k", _ade_find, _ade_detect, ("ade", "ade20k-150", "adechallengedata2016"),
                 "ADEChallengeData2016 images/ + annotations/, or jpg + png side by side"),
    FolderLayout("coco-stuff", "coco-stuff", _coco_find, _coco_detect, ("cocostuff", "coco"),
                 "SPADE's <split>_img/_label/_inst, or train2017/ + stuffthingmaps_trainval2017/"),
    FolderLayout("paired", None, _paired_find, _paired_detect, ("folder", "images-labels"),
                 "images/ + labels/ (+ instances/) matched by stem; index or colour labels"),
):  # fmt: skip
    _LAYOUTS[_layout.name] = _layout


def list_layouts() -> list[str]:
    """Names of the supported original folder layouts (``kind=`` values)."""
    return list(_LAYOUTS)


def get_layout(kind: str) -> FolderLayout:
    """Look a layout up by name or alias (case-insensitive, ``_`` = ``-``)."""
    key = str(kind).strip().lower().replace("_", "-")
    for layout in _LAYOUTS.values():
        if key == layout.name or key in layout.aliases:
            return layout
    raise ValueError(f"unknown dataset layout {kind!r}; known: {', '.join(_LAYOUTS)}")


def detect_layout(root: str | os.PathLike) -> str | None:
    """Name of the layout a folder is in (checked in `list_layouts` order), or ``None``."""
    root = Path(root)
    if not root.is_dir():
        return None
    for layout in _LAYOUTS.values():
        if layout.detect(root):
            return layout.name
    return None


def resolve_label_space(
    kind: str, label_space: str | Mapping[str, Any] | LabelSpace | None = None, class_order: str | None = None
) -> LabelSpace:
    """The label space rows of layout ``kind`` are written in (``class_order`` is for CelebAMask-HQ)."""
    layout = get_layout(kind)
    if class_order is not None:
        if layout.name != "celebamask-hq":
            raise ValueError(f"class_order only applies to CelebAMask-HQ, not to the {layout.name!r} layout")
        key = class_order.strip().lower()
        if key not in CLASS_ORDERS:
            raise ValueError(f"unknown class_order {class_order!r}; use one of {sorted(set(CLASS_ORDERS))}")
        ordered = get_label_space(CLASS_ORDERS[key])
        if label_space is not None and get_label_space(label_space) != ordered:
            raise ValueError(
                f"class_order {class_order!r} means label space {ordered.name!r}, but label_space "
                f"{get_label_space(label_space).name!r} was given; pass only one of them"
            )
        return ordered
    if label_space is not None:
        space = get_label_space(label_space)
        if layout.name == "celebamask-hq" and set(space.names) != set(get_label_space("celebamask-hq").names):
            raise ValueError(f"CelebAMask-HQ masks need a CelebAMask-HQ label space, got {space.name!r}")
        return space
    if layout.label_space is None:
        raise ValueError(
            f"the {layout.name!r} layout needs label_space=...: label files are validated against it and colour "
            f"labels decoded with its palette (built-in label spaces: {', '.join(list_label_spaces())})"
        )
    return get_label_space(layout.label_space)


def find_records(kind: str, root: str | os.PathLike, split: str = "train", **options: Any) -> Records:
    """The file records of one split of an original layout (see the module docstring); ``.skipped`` lists the files
    ``skip_missing=True`` left out.

    Options: ``skip_missing=True`` leaves out images without labels (and vice versa) instead of raising;
    ``celeba_source="auto"|"parts"|"cocosnet"`` picks the CelebAMask-HQ label source.
    """
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"dataset folder {os.fspath(root)!r} does not exist or is not a folder")
    return get_layout(kind).find(root, split, **options)


# ---------------------------------------------------------------------------------------------------- rows
def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _file_cell(path: str, embed: bool) -> Any:
    return {"bytes": _read(path), "path": os.path.basename(path)} if embed else path


def _compute_label(rec: Mapping[str, Any], space: LabelSpace, tolerance: float) -> np.ndarray | None:
    """Label ids for records whose label must be computed; ``None`` when the file can be used as it is."""
    kind = rec["label_kind"]
    if kind == "parts":
        masks = {}
        for part, path in rec["parts"].items():
            with open_image_file(path, f"part mask {path!r}") as im:
                masks[part] = np.asarray(im.convert("L"))
        try:
            return merge_part_masks(masks, space)
        except ValueError as err:
            raise ValueError(f"CelebAMask-HQ part masks of image {rec['image']!r}: {err}") from None
    if kind == "cocosnet":
        ids = decode_label(rec["label"], what=f"label file {rec['label']!r}")
        cocosnet = get_label_space("celebamask-hq-cocosnet")
        try:
            cocosnet.validate(ids, allow_ignore=False)
        except ValueError as err:
            raise ValueError(f"label file {rec['label']!r}: {err}") from None
        if rec.get("eye_g"):
            with open_image_file(rec["eye_g"], f"eye_g mask {rec['eye_g']!r}") as im:
                glasses = np.asarray(im.convert("L")) != 0
            if glasses.shape != ids.shape:
                raise ValueError(f"eye_g mask {rec['eye_g']!r} is not the size of {rec['label']!r}")
            ids = np.where(glasses, cocosnet.label2id["eye_g"], ids)
        return ids if space == cocosnet else convert_celebamask_order(ids, cocosnet, space)
    if kind == "auto":
        with open_image_file(rec["label"], f"label file {rec['label']!r}") as im:
            colour = is_color_label(im)
            if colour:
                return decode_label(im, space, what=f"label file {rec['label']!r}", color_tolerance=tolerance)
        return None
    return None


def _check_row(rec: Mapping[str, Any], label: np.ndarray | None, space: LabelSpace) -> None:
    name = rec["label"] or rec["image"]
    if label is None:
        label = decode_label(rec["label"], space, what=f"label file {rec['label']!r}")
    try:
        space.validate(label)
    except ValueError as err:
        raise ValueError(f"label file {name!r} (image {rec['image']!r}): {err}") from None
    h, w = label.shape
    hw = check_image_file(rec["image"], what=f"image {rec['image']!r}")  # decodes it: corrupt photos fail here
    if hw != (h, w) and abs((hw[1] / hw[0]) / (w / h) - 1) > 0.02:
        raise ValueError(
            f"image {rec['image']!r} is {hw[1]}x{hw[0]} but its label map {name!r} is {w}x{h} (width x height); "
            "image and label must be the same size (or the same aspect ratio): check that the files belong together"
        )
    if rec.get("instance"):
        inst = decode_instance(rec["instance"], what=f"instance map {rec['instance']!r}")
        if inst.shape != label.shape:
            raise ValueError(
                f"instance map {rec['instance']!r} is {inst.shape[1]}x{inst.shape[0]} but label map {name!r} is "
                f"{w}x{h}; they must be the same size"
            )


def records_to_rows(
    records: Sequence[Mapping[str, Any]],
    space: LabelSpace | Mapping[str, Any],
    *,
    embed: bool = False,
    validate: bool = False,
    color_tolerance: float = 0.0,
    with_instance: bool | None = None,
) -> Iterator[dict]:
    """Rows ``{image, label, instance?, image_id}`` for ``records``.

    Args:
        embed: Put file bytes into the rows (for parquet) instead of paths.
        validate: Read every label (and instance) map and check ids, sizes and files (slow; `ingest` does it).
    """
    space = get_label_space(space)
    if with_instance is None:
        with_instance = any(r.get("instance") for r in records)
    for rec in records:
        label = _compute_label(rec, space, color_tolerance)
        if validate:
            _check_row(rec, label, space)
        for key in ("image", "label", "instance"):
            path = rec.get(key)
            if path is not None and not os.path.isfile(path):
                raise ValueError(f"{key} file {path!r} does not exist")
        row = {
            "image": _file_cell(rec["image"], embed),
            "label": encode_index_map(label, f"{rec['image_id']}.png") if label is not None
            else _file_cell(rec["label"], embed),
            "image_id": rec["image_id"],
        }  # fmt: skip
        if with_instance:
            row["instance"] = _file_cell(rec["instance"], embed) if rec.get("instance") else None
        yield row


def _generate(records: list, space: dict, validate: bool, color_tolerance: float, with_instance: bool) -> Iterator:
    yield from records_to_rows(
        records, space, embed=False, validate=validate, color_tolerance=color_tolerance, with_instance=with_instance
    )


def row_features(with_instance: bool) -> Any:
    """The ``datasets.Features`` of layout rows."""
    from datasets import Features, Value
    from datasets import Image as ImageFeature

    features = {"image": ImageFeature(), "label": ImageFeature()}
    if with_instance:
        features["instance"] = ImageFeature()
    features["image_id"] = Value("string")
    return Features(features)


def build_dataset(
    kind: str,
    root: str | os.PathLike,
    split: str = "train",
    *,
    label_space: str | Mapping[str, Any] | LabelSpace | None = None,
    class_order: str | None = None,
    streaming: bool = False,
    validate: bool = False,
    color_tolerance: float = 0.0,
    **options: Any,
) -> Any:
    """Read one split of an original layout as a `datasets.Dataset` (or `datasets.IterableDataset` when streaming).

    Files are referenced by path (nothing is copied); computed labels (merged part masks, decoded colour labels) are
    generated once and cached by ``datasets`` (keyed on the files' sizes and modification times).

    Args:
        kind: A layout name (`list_layouts`).
        root: The dataset folder.
        split: ``train``, ``validation`` (``val``) or ``test``.
        label_space / class_order: See `resolve_label_space`.
        streaming: Return an `datasets.IterableDataset` sharded over the files (computes labels lazily).
        validate: Check every label file now (default: the transforms check rows as they are read).
        options: Layout options (``skip_missing``, ``celeba_source``).
    """
    from datasets import Dataset, IterableDataset

    space = resolve_label_space(kind, label_space, class_order)
    records = find_records(kind, root, split, **options)
    for rec in records:  # computed labels: make the cache key change when the files change
        if rec["label_kind"] != "index":
            rec["stamp"] = [_stamp(p) for p in [rec.get("label"), rec.get("eye_g"), *(rec.get("parts") or {}).values()]]
    with_instance = any(r.get("instance") for r in records)
    features = row_features(with_instance)
    kwargs = {"space": space.to_dict(), "validate": validate, "color_tolerance": float(color_tolerance),
              "with_instance": with_instance}  # fmt: skip
    if streaming:
        return IterableDataset.from_generator(
            _generate, features=features, gen_kwargs={"records": records, **kwargs}, split=canonical_split(split)
        )
    from datasets.exceptions import DatasetGenerationError

    try:
        return Dataset.from_generator(
            _generate, features=features, gen_kwargs={"records": records, **kwargs}, split=canonical_split(split)
        )
    except DatasetGenerationError as err:  # surface our own clear message instead of datasets' wrapper
        cause = err.__cause__ or err.__context__
        if isinstance(cause, (ValueError, TypeError)):
            raise type(cause)(str(cause)) from None
        raise
