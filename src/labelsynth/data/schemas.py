"""Adapters from Hub-style ``datasets`` schemas to the common row format ``{image, label, instance?, image_id?}``.

A `HubSchema` says which columns of a Hub dataset hold the photo, the label map and the instance map, which label
space the ids are in, and which conventions need converting. `adapt_dataset` renames/drops columns (zero-copy) and,
only when a conversion is needed, rewrites the label column with ``Dataset.map`` (cached by ``datasets`` for on-disk
datasets; lazy for an `datasets.IterableDataset`).

Known schemas (`list_schemas`):

============== ================================ ============================== =====================================
schema         columns (image / label / inst.)  default label space            notes
============== ================================ ============================== =====================================
ade20k         image / annotation               ade20k (raw ids 0..150)        ``scene_parse_150``; a
                                                                               ``reduce_labels`` export (0..149 +
                                                                               255) is shifted back (see below)
cityscapes     image / semantic_segmentation /  cityscapes (35 labelIds)       ``Chris1/cityscapes``: encoding of the
               instance                                                        mirrors is unverified -> detected: RGB
                                                                               labels are decoded with the Cityscapes
                                                                               palette, 1-channel labels are labelIds
celebamask-hq  image / annotation | mask        celebamask-hq (official order) ``FrsECM/CelebAHQ_mask``; pass
                                                                               ``label_space="celebamask-hq-cocosnet"``
                                                                               for CoCosNet-ordered maps
coco-stuff     image / mask                     coco-stuff (0..181, 255)       ``GATE-engine/COCOStuff164K``
huggan-paired  imageA / imageB (colour label)   from the repo id or given      ``huggan/cityscapes``; which column is
                                                                               the label is detected (palette hits);
                                                                               JPEG colours snapped (tolerance 50)
labelsynth     image | pixel_values / label /   ``label_space.json`` or given  what `ingest` writes; also the
               instance                                                        transformers segmentation convention
============== ================================ ============================== =====================================

**Detection rules** (`detect_schema`), first match wins:

1. ``schema=`` given, or a ``column_mapping`` that names both the image and the label column (then the schema only
   supplies defaults for the label space);
2. the Hub repo id is a known mirror of a schema (table above);
3. column signature: ``imageA`` + ``imageB`` -> huggan-paired; ``annotation`` + ``scene_category`` -> ade20k;
   ``semantic_segmentation`` -> cityscapes; ``label`` -> labelsynth;
4. the label space: ``image`` + ``annotation``/``mask`` are ambiguous (ADE20K, CelebAMask-HQ and COCO-Stuff mirrors
   all use them), so the schema whose default label space is the given one is used
   (``celebamask-hq-cocosnet`` counts as CelebAMask-HQ); with no label space this is an error that lists the
   candidates.

**Label-id conventions.** Ids are always brought to the model's raw ids:

* *Colour-coded labels* (an RGB label image, checked on the first row) are decoded with the label space's palette
  (`LabelSpace.encode_colors`; shared colours decode to the lowest id, so Cityscapes colour maps lose the void
  sub-classes 1..4 -> 0, polegroup -> pole and license plate -> car).
* *ADE20K ``reduce_labels`` exports* (0..149 = classes, 255 = "other", as transformers' ``do_reduce_labels``
  writes them) are shifted back: ``id + 1``, 255 -> 0. Decided by ``reduce_labels=True/False``, else from the label
  values of the first rows: raw ADE20K ids never exceed 150, so a 255 means a reduced export (a 150 means raw);
  without either, raw ids are assumed (a warning is issued when the dataset's ``id2label`` has the 150 reduced
  names, since transformers' examples ship that ``id2label`` next to *raw* annotation PNGs).
* *Cityscapes trainIds*: single-channel Cityscapes labels containing 255 are trainIds (0..18 + 255 ignore), not
  the 35 labelIds SPADE/pix2pixHD use; unless ``label_space`` is given, the rows are then returned in the
  ``cityscapes-trainid`` space with a warning (there is no lossless trainId -> labelId mapping).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..label_spaces import LabelSpace, get_label_space
from ._io import decode_image, decode_label, encode_index_map, is_color_label

__all__ = [
    "HubSchema",
    "adapt_dataset",
    "detect_schema",
    "get_schema",
    "list_schemas",
    "register_schema",
]

ROLES = ("image", "label", "instance", "image_id")


@dataclass(frozen=True)
class HubSchema:
    """Column layout and label conventions of one family of Hub datasets.

    Args:
        name: Registry name.
        image_columns / label_columns / instance_columns: Candidate column names per role, first present wins.
        label_space: Default label-space name (``None``: must come from the data or the caller).
        signature: Columns whose joint presence identifies the schema from the column names alone.
        hub_ids: Known Hub repos in this schema (``"org/name"``, case-insensitive).
        hub_label_spaces: Label space per Hub repo when it differs from ``label_space``.
        paired_columns: Two image columns of which one is a colour-coded label (huggan style); which one is
            detected from the first row.
        reduce_labels: Whether ADE20K's ``reduce_labels`` convention can occur (see the module docstring).
        color_tolerance: Default RGB tolerance for colour-coded labels (JPEG-compressed colour maps need one).
        description: Free text.
    """

    name: str
    image_columns: tuple[str, ...] = ("image",)
    label_columns: tuple[str, ...] = ("label",)
    instance_columns: tuple[str, ...] = ()
    label_space: str | None = None
    signature: tuple[str, ...] = ()
    hub_ids: tuple[str, ...] = ()
    hub_label_spaces: Mapping[str, str] = field(default_factory=dict)
    paired_columns: tuple[str, str] | None = None
    reduce_labels: bool = False
    color_tolerance: float = 0.0
    description: str = ""


_SCHEMAS: dict[str, HubSchema] = {}


def register_schema(schema: HubSchema, *, overwrite: bool = False) -> None:
    """Add a schema to the registry used by `detect_schema` / `adapt_dataset`."""
    if schema.name in _SCHEMAS and not overwrite:
        raise ValueError(f"a schema named {schema.name!r} is already registered; pass overwrite=True to replace it")
    _SCHEMAS[schema.name] = schema


def list_schemas() -> list[str]:
    """Names of the registered schemas."""
    return list(_SCHEMAS)


def get_schema(name: str | HubSchema) -> HubSchema:
    """Look a schema up by name (or pass a `HubSchema` through)."""
    if isinstance(name, HubSchema):
        return name
    try:
        return _SCHEMAS[name]
    except KeyError:
        raise ValueError(f"unknown schema {name!r}; known: {', '.join(_SCHEMAS)}") from None


for _schema in (
    HubSchema(
        name="ade20k",
        label_columns=("annotation",),
        label_space="ade20k",
        signature=("annotation", "scene_category"),
        hub_ids=("scene_parse_150", "zhoubolei/scene_parse_150", "nielsr/ade20k-demo"),
        reduce_labels=True,
        description="ADE20K SceneParse150: image, annotation (mode L, 0 = other, 1..150), scene_category.",
    ),
    HubSchema(
        name="cityscapes",
        label_columns=("semantic_segmentation",),
        instance_columns=("instance", "instance_map", "instance_segmentation"),
        label_space="cityscapes",
        signature=("semantic_segmentation",),
        hub_ids=("Chris1/cityscapes", "Chris1/cityscapes_segmentation"),
        description=(
            "Cityscapes mirrors: image, semantic_segmentation (+ instance). Label encoding of the mirrors is "
            "unverified: RGB labels are decoded with the Cityscapes palette, single-channel ones read as labelIds."
        ),
    ),
    HubSchema(
        name="celebamask-hq",
        label_columns=("annotation", "mask", "label"),
        label_space="celebamask-hq",
        hub_ids=("FrsECM/CelebAHQ_mask", "eurecom-ds/celeba_hq_mask", "v-xchen-v/celebamask_hq"),
        description="CelebAMask-HQ: image, annotation or mask (19 classes; two class orders circulate).",
    ),
    HubSchema(
        name="coco-stuff",
        label_columns=("mask", "annotation", "label"),
        label_space="coco-stuff",
        hub_ids=("GATE-engine/COCOStuff164K",),
        description="COCO-Stuff 164k: image, mask (0..181, 255 = unlabeled).",
    ),
    HubSchema(
        name="huggan-paired",
        image_columns=(),
        label_columns=(),
        signature=("imageA", "imageB"),
        hub_ids=("huggan/cityscapes",),
        hub_label_spaces={"huggan/cityscapes": "cityscapes"},
        paired_columns=("imageA", "imageB"),
        color_tolerance=50.0,
        description="pix2pix-style paired data (huggan): imageA/imageB, one photo and one colour-coded label.",
    ),
    HubSchema(
        name="labelsynth",
        image_columns=("image", "pixel_values"),
        label_columns=("label",),
        instance_columns=("instance",),
        signature=("label",),
        description="labelsynth's own schema (what `ingest` writes): image, label, optional instance, image_id.",
    ),
):
    register_schema(_schema)


# ---------------------------------------------------------------------------------------------------- detection
def _norm_repo(repo_id: str | None) -> str | None:
    if not repo_id:
        return None
    repo = str(repo_id).strip().strip("/")
    return repo.removeprefix("datasets/").lower()


def _schema_for_space(space: LabelSpace) -> HubSchema | None:
    family = "celebamask-hq" if space.name.startswith("celebamask-hq") else space.name
    for schema in _SCHEMAS.values():
        if schema.label_space == family:
            return schema
    return None


def detect_schema(
    columns: Sequence[str],
    *,
    repo_id: str | None = None,
    label_space: str | LabelSpace | None = None,
) -> HubSchema:
    """Pick the schema of a dataset from its Hub id, its column names and the label space (rules in the module doc).

    Raises:
        ValueError: when nothing matches or the columns are ambiguous; the message lists the columns, the
        candidates and how to choose (``schema=``, ``label_space=`` or ``column_mapping=``).
    """
    columns = list(columns)
    repo = _norm_repo(repo_id)
    if repo:
        for schema in _SCHEMAS.values():
            if repo in {h.lower() for h in schema.hub_ids}:
                return schema
    by_signature = sorted(
        (s for s in _SCHEMAS.values() if s.signature and set(s.signature) <= set(columns)),
        key=lambda s: -len(s.signature),
    )
    if by_signature:
        return by_signature[0]
    if "image" in columns or "pixel_values" in columns:
        candidates = [s for s in _SCHEMAS.values() if s.image_columns and any(c in columns for c in s.label_columns)]
        if label_space is not None:
            schema = _schema_for_space(get_label_space(label_space))
            if schema is not None and schema in candidates:
                return schema
            if candidates:  # a custom label space over a known column layout
                return candidates[0]
        if candidates:
            raise ValueError(
                f"cannot tell the schema of a dataset with columns {columns}: it fits "
                f"{', '.join(repr(s.name) for s in candidates)}. Pass label_space=... (e.g. 'ade20k', "
                "'celebamask-hq', 'coco-stuff'), schema=..., or column_mapping={'<column>': 'label', ...}"
            )
    raise ValueError(
        f"no known schema matches a dataset with columns {columns}; known schemas: "
        + "; ".join(
            f"{s.name} ({'/'.join(s.paired_columns) if s.paired_columns else '/'.join(s.image_columns) + ' + ' + '|'.join(s.label_columns)})"
            for s in _SCHEMAS.values()
        )
        + ". Map the columns yourself with column_mapping={'<photo column>': 'image', '<label column>': 'label'}"
    )


# ---------------------------------------------------------------------------------------------------- conversion
def _label_values(dataset: Any, column: str, rows: int = 4) -> set[int]:
    """Distinct ids in the label column of the first few rows (colour labels are skipped)."""
    if hasattr(dataset, "__len__") and hasattr(dataset, "select_columns"):
        cells = dataset.select_columns([column])[:rows][column]  # decodes only the label column
    else:
        cells = [row[column] for row in dataset.take(rows)]
    values: set[int] = set()
    for cell in cells:
        if cell is not None and not is_color_label(cell):
            values |= {int(v) for v in np.unique(decode_label(cell))}
    return values


def _looks_reduced_id2label(id2label: Mapping[Any, str] | None) -> bool:
    if not id2label:
        return False
    names = {int(k): str(v).lower() for k, v in id2label.items()}
    return len(names) == 150 and names.get(0, "").startswith("wall")


class _LabelConverter:
    """Picklable ``Dataset.map`` function: colour decoding and/or the ADE20K reduce_labels shift on 'label'."""

    def __init__(self, space: LabelSpace | None, tolerance: float, shift_reduced: bool) -> None:
        self.space = space
        self.tolerance = tolerance
        self.shift_reduced = shift_reduced

    def __call__(self, label: Any) -> dict:
        if label is None:
            return {"label": None}
        ids = decode_label(label, self.space, what="label", color_tolerance=self.tolerance)
        if self.shift_reduced:
            ids = np.where(ids == 255, 0, ids + 1)
        # A PIL image (not a bytes dict): Dataset.map encodes it with the Image feature, and IterableDataset.map
        # rows are yielded as they are, so both kinds of dataset give a decoded index image.
        return {"label": _index_image(ids)}


def _index_image(ids: np.ndarray) -> Any:
    import io

    import PIL.Image

    image = PIL.Image.open(io.BytesIO(encode_index_map(ids)["bytes"]))
    image.load()
    return image


def _first_row(dataset: Any) -> dict:
    if hasattr(dataset, "__getitem__") and hasattr(dataset, "__len__"):
        if len(dataset) == 0:
            raise ValueError("the dataset is empty")
        return dataset[0]
    for row in dataset.take(1):
        return row
    raise ValueError("the dataset is empty")


def _palette_hits(value: Any, space: LabelSpace, tolerance: float) -> float:
    """Fraction of pixels of an image within ``tolerance`` of a palette colour (1.0 for index images)."""
    if not is_color_label(value):
        return 1.0
    rgb = np.asarray(decode_image(value))[::4, ::4].reshape(-1, 3)
    keys, counts = np.unique(rgb, axis=0, return_counts=True)
    exact = space.contains_colors(keys)
    if tolerance > 0 and not exact.all():
        palette = np.concatenate([space.palette, np.asarray([space.ignore_color])]).astype(np.float64)
        dist = np.sqrt(((keys[:, None, :].astype(np.float64) - palette[None]) ** 2).sum(-1)).min(1)
        exact = exact | (dist <= tolerance)
    return float(counts[exact].sum() / counts.sum())


def adapt_dataset(
    dataset: Any,
    *,
    schema: str | HubSchema | None = None,
    column_mapping: Mapping[str, str] | None = None,
    label_space: str | Mapping[str, Any] | LabelSpace | None = None,
    repo_id: str | None = None,
    reduce_labels: bool | None = None,
    id2label: Mapping[Any, str] | None = None,
    color_tolerance: float | None = None,
    return_label_space: bool = False,
) -> Any:
    """Bring a ``datasets`` dataset in a known Hub schema to the common format ``{image, label, instance?, image_id?}``.

    Args:
        dataset: `datasets.Dataset`, `datasets.IterableDataset`, or a (Iterable)DatasetDict (every split adapted).
        schema: Schema name (see `list_schemas`); default: detected (module docstring).
        column_mapping: ``{source column: role}`` with roles ``image``, ``label``, ``instance``, ``image_id``;
            overrides the schema's column choice (e.g. ``{"imageB": "label", "imageA": "image"}``).
        label_space: Label space the output ids are in (default: the schema's, or the Hub repo's).
        repo_id: Hub id the dataset came from (used for schema and label-space detection).
        reduce_labels: ADE20K only: ``True`` if labels are 0..149 + 255 (``reduce_labels`` style); ``None`` = detect
            from the label values (module docstring).
        id2label: The dataset's ``id2label`` mapping, if it ships one (only used for a warning).
        color_tolerance: RGB tolerance for colour-coded labels (default: the schema's: 0, 50 for huggan-paired).
        return_label_space: Also return the resolved `LabelSpace` (``(dataset, label_space)``).

    Returns:
        The adapted dataset (same kind as the input); columns ``image``, ``label``, optional ``instance`` and
        ``image_id``; other columns are dropped.
    """
    if isinstance(dataset, dict):  # DatasetDict / IterableDatasetDict
        out, space = {}, None
        for split, ds in dataset.items():
            out[split], space = adapt_dataset(
                ds, schema=schema, column_mapping=column_mapping, label_space=label_space, repo_id=repo_id,
                reduce_labels=reduce_labels, id2label=id2label, color_tolerance=color_tolerance,
                return_label_space=True,
            )  # fmt: skip
        result = type(dataset)(out)
        return (result, space) if return_label_space else result

    columns = dataset.column_names
    first = None
    if columns is None:  # an IterableDataset without known features
        first = _first_row(dataset)
        columns = list(first)
    columns = list(columns)

    mapping = dict(column_mapping or {})
    bad_roles = sorted(set(mapping.values()) - set(ROLES))
    if bad_roles:
        raise ValueError(f"column_mapping roles must be among {ROLES}, got {bad_roles}")
    missing = sorted(set(mapping) - set(columns))
    if missing:
        raise ValueError(f"column_mapping names columns {missing} that the dataset does not have (columns: {columns})")
    mapped_roles = set(mapping.values())

    if schema is not None:
        schema = get_schema(schema)
    elif {"image", "label"} <= mapped_roles:
        schema = get_schema("labelsynth")
        try:
            schema = detect_schema(columns, repo_id=repo_id, label_space=label_space)
        except ValueError:
            pass
    else:
        schema = detect_schema(columns, repo_id=repo_id, label_space=label_space)

    # ---- label space
    if label_space is not None:
        space = get_label_space(label_space)
    else:
        repo = _norm_repo(repo_id)
        name = next((v for k, v in schema.hub_label_spaces.items() if k.lower() == repo), None) or schema.label_space
        if name is None:
            raise ValueError(
                f"dataset in the {schema.name!r} schema: its label space is unknown; pass label_space=... "
                "(a built-in name such as 'ade20k', or LabelSpace.custom(names))"
            )
        space = get_label_space(name)
    tolerance = schema.color_tolerance if color_tolerance is None else float(color_tolerance)

    # ---- columns -> roles
    role_of: dict[str, str] = {}
    for col, role in mapping.items():
        role_of[col] = role
    taken = set(role_of.values())

    def pick(role: str, candidates: Sequence[str]) -> None:
        if role in taken:
            return
        for c in candidates:
            if c in columns and c not in role_of:
                role_of[c] = role
                taken.add(role)
                return

    if schema.paired_columns and not {"image", "label"} <= taken:
        a, b = schema.paired_columns
        if a not in columns or b not in columns:
            raise ValueError(f"schema {schema.name!r} needs columns {a!r} and {b!r}; the dataset has {columns}")
        if space.palette is None:
            raise ValueError(f"label space {space.name!r} has no palette, so colour labels in {a}/{b} cannot be read")
        first = first if first is not None else _first_row(dataset)
        # a colour label map (even JPEG-compressed) is almost all palette colours; a photo is not
        hits = {c: _palette_hits(first[c], space, 20.0) for c in (a, b)}
        label_col = max(hits, key=hits.get)
        if hits[label_col] < 0.75:
            raise ValueError(
                f"neither {a!r} nor {b!r} looks like a label map drawn with the {space.name!r} palette (share of "
                f"palette-coloured pixels in the first row: {hits}); pass the right label_space=... or "
                f"column_mapping={{'{a}': 'image', '{b}': 'label'}}"
            )
        role_of.setdefault(label_col, "label")
        role_of.setdefault(b if label_col == a else a, "image")
        taken |= {"image", "label"}
    pick("image", schema.image_columns or ("image",))
    pick("label", schema.label_columns)
    pick("instance", schema.instance_columns)
    pick("image_id", ("image_id",))
    for role in ("image", "label"):
        if role not in taken:
            raise ValueError(
                f"no {role} column found for schema {schema.name!r} in columns {columns}; pass "
                f"column_mapping={{'<column>': '{role}'}}"
            )

    # ---- conversions
    label_src = next(c for c, r in role_of.items() if r == "label")
    first = first if first is not None else _first_row(dataset)
    colour = first[label_src] is not None and is_color_label(first[label_src])
    shift = False
    if space.name == "ade20k" and not colour:
        if reduce_labels is not None:
            shift = bool(reduce_labels)
        else:
            values = _label_values(dataset, label_src)
            shift = 255 in values and 150 not in values
            if not shift and 150 not in values and _looks_reduced_id2label(id2label):
                warnings.warn(
                    "ADE20K labels: the dataset's id2label has the 150 'reduce_labels' names, but the label values "
                    "of the first rows do not tell the convention; assuming raw ids (0 = other, 1..150). Pass "
                    "reduce_labels=True if the PNGs store 0..149 + 255.",
                    stacklevel=2,
                )
    elif reduce_labels:
        raise ValueError(f"reduce_labels=True only applies to ADE20K (schema {schema.name!r}, space {space.name!r})")
    trainid_check = schema.name == "cityscapes" and label_space is None and not colour and space.name == "cityscapes"
    if trainid_check and 255 in _label_values(dataset, label_src):
        space = get_label_space("cityscapes-trainid")
        warnings.warn(
            "Cityscapes labels contain 255, so they are trainIds (0..18 + 255 = ignore), not the 35 labelIds "
            "SPADE/pix2pixHD checkpoints take; the rows are returned in the 'cityscapes-trainid' label space. "
            "Pass label_space=... to override.",
            stacklevel=2,
        )

    drop = [c for c in columns if c not in role_of]
    if drop:
        dataset = dataset.remove_columns(drop)
    renames = {c: r for c, r in role_of.items() if c != r}
    if renames:
        dataset = dataset.rename_columns(renames)
    order = [r for r in ROLES if r in role_of.values()]
    if hasattr(dataset, "select_columns"):
        dataset = dataset.select_columns(order)
    if colour or shift:
        dataset = _convert_labels(dataset, _LabelConverter(space if colour else None, tolerance, shift))
    return (dataset, space) if return_label_space else dataset


def _convert_labels(dataset: Any, converter: _LabelConverter) -> Any:
    from datasets import Image as ImageFeature

    features = dataset.features
    kwargs: dict[str, Any] = {"input_columns": ["label"]}
    if features is not None:
        features = features.copy()
        features["label"] = ImageFeature()
        kwargs["features"] = features
    if hasattr(dataset, "__len__"):
        kwargs["desc"] = "labelsynth: converting label ids"
    return dataset.map(converter, **kwargs)
