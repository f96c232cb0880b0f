"""Model cards for labelsynth checkpoints.

One template (``model_card_template.md`` in this package) renders every card, whether it is written by
``save_pretrained``/``push_to_hub`` (through :class:`labelsynth.hub.ModelCardMixin`), by a converter or trainer, or
into the repository's ``model_cards/<id>.md`` with :func:`write_model_card_file`.

Per-architecture facts (paper, licence of the original weights, citation) live in a :class:`ModelCardInfo` that each
model class declares once; per-checkpoint facts (Hub id, config, datasets, how it was trained or converted, measured
metrics) are passed at render time. Numbers reported by papers and numbers we measured are kept in separate tables:
only the measured ones go into the ``model-index`` metadata.

Cards carry :data:`GENERATED_MARKER` as an HTML comment. A README.md that lacks it is treated as written by a person
and is not overwritten unless asked (see :func:`is_generated_card`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

import jinja2
from huggingface_hub import EvalResult, ModelCard, ModelCardData

if TYPE_CHECKING:
    from transformers import PreTrainedConfig


__all__ = [
    "BASE_TAGS",
    "GENERATED_MARKER",
    "LIBRARY_NAME",
    "PIPELINE_TAG",
    "MetricResult",
    "ModelCardInfo",
    "TrainingInfo",
    "is_generated_card",
    "render_model_card",
    "write_model_card_file",
]

LIBRARY_NAME = "labelsynth"
# The Hub's closed list of pipeline tags has no label-to-image task; image-to-image is the closest one.
PIPELINE_TAG = "image-to-image"
BASE_TAGS: tuple[str, ...] = ("labelsynth", "label-to-image", "semantic-image-synthesis", "gan")
GENERATED_MARKER = "labelsynth-generated-model-card"
TEMPLATE_NAME = "model_card_template.md"
_TASK_NAME = "Semantic image synthesis"
# Sentence in the card that transformers' `create_and_tag_model_card` (utils/hub.py) writes when a repo has none.
_TRANSFORMERS_AUTO_CARD = "This model card has been automatically generated."
_DEFAULT_IGNORE_INDEX = 255  # library convention (DESIGN.md "Label values"), used when the config names none


@dataclass(frozen=True)
class MetricResult:
    """One evaluation figure.

    Attributes:
        dataset: Human-readable dataset name, e.g. ``"ADE20K"``.
        metric: Metric name as usually written, e.g. ``"FID"`` or ``"mIoU"``.
        value: The number (or a string such as ``"33.9"`` when copied verbatim from a paper).
        source: Where the figure comes from: a paper table (``"SPADE paper, Table 1"``) or the command that measured it.
        dataset_id: Hub dataset id used in the ``model-index`` metadata (defaults to ``dataset``).
        split: Dataset split, e.g. ``"validation"``.
        notes: Protocol details that change the number: resolution, segmenter, Inception weights, sample count.
    """

    dataset: str
    metric: str
    value: float | int | str
    source: str | None = None
    dataset_id: str | None = None
    split: str | None = None
    notes: str | None = None

    @classmethod
    def coerce(cls, row: MetricResult | Mapping[str, Any]) -> MetricResult:
        """Accept either a ``MetricResult`` or a plain dict with the same keys (unknown keys raise ``TypeError``)."""
        return row if isinstance(row, cls) else cls(**row)


class TrainingInfo(TypedDict, total=False):
    """How the checkpoint was produced; every key is optional.

    ``command`` is the exact command line (training script or converter), ``converted_from`` names the original
    checkpoint for converted weights, ``metrics`` holds end-of-training figures such as final losses.
    """

    command: str
    converted_from: str
    steps: int | str
    hardware: str
    time: str
    metrics: Mapping[str, float | int | str]
    notes: str


_TRAINING_KEYS = frozenset(TrainingInfo.__annotations__)


@dataclass(frozen=True)
class ModelCardInfo:
    """Everything a card needs that is the same for every checkpoint of one architecture.

    Attributes:
        architecture: Display name, e.g. ``"SPADE"``; its lower-case form becomes a tag.
        paper_title: Title of the paper that introduced the architecture.
        paper_url: Link to the paper.
        description: One paragraph describing what the model does.
        weights_license: Hub licence id of the original weights, e.g. ``"cc-by-nc-sa-4.0"`` (SPADE, SEAN),
            ``"agpl-3.0"`` (OASIS), ``"mit"`` (CoCosNet), ``"bsd"`` (pix2pix).
        arxiv_id: arXiv identifier, e.g. ``"1903.07291"``.
        authors: Paper authors in order.
        original_repo: URL of the authors' code.
        license_url: Link to the original licence text.
        citation: BibTeX entry.
        tags: Extra Hub tags (e.g. ``("gaugan",)``).
        paper_metrics: Figures reported by the paper; only what the caller copies from it, never estimated.
        limitations: Extra architecture-specific limitation bullets.
        usage_arguments: Keyword arguments of the pipeline call in the card's usage snippet, after the label map
            (models that need more than a label map name their inputs here).
        usage_note: What those inputs are, printed under the snippet.
    """

    architecture: str
    paper_title: str
    paper_url: str
    description: str
    weights_license: str
    arxiv_id: str | None = None
    authors: tuple[str, ...] = ()
    original_repo: str | None = None
    license_url: str | None = None
    citation: str | None = None
    tags: tuple[str, ...] = ()
    paper_metrics: tuple[MetricResult, ...] = field(default_factory=tuple)
    limitations: tuple[str, ...] = ()
    usage_arguments: str = "seed=0"
    usage_note: str | None = None

    def __post_init__(self) -> None:
        # Frozen dataclass: normalise sequences/dicts passed by callers into tuples of MetricResult.
        object.__setattr__(self, "authors", tuple(self.authors))
        object.__setattr__(self, "tags", tuple(self.tags))
        object.__setattr__(self, "limitations", tuple(self.limitations))
        object.__setattr__(self, "paper_metrics", tuple(MetricResult.coerce(r) for r in self.paper_metrics))


def is_generated_card(text: str) -> bool:
    """Whether a README was machine-written, so regenerating it loses nothing a person wrote.

    True for our cards (:data:`GENERATED_MARKER`) and for transformers' placeholder card, which e.g. an image
    processor's ``push_to_hub`` uploads to a repo that has no README.md yet.
    """
    return GENERATED_MARKER in text or _TRANSFORMERS_AUTO_CARD in text


def _unique(items: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _as_list(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _label_conventions(config: Mapping[str, Any]) -> dict[str, Any]:
    """Pick the label-map facts the card states from the config; absent keys stay absent (nothing is guessed)."""
    space = config.get("label_space")
    if isinstance(space, Mapping):
        space = space.get("name")
    dontcare = config.get("contain_dontcare_label")
    return {
        "label_space": space,
        "label_nc": config.get("label_nc"),
        "contain_dontcare_label": dontcare,
        "ignore_index": config.get("ignore_index", _DEFAULT_IGNORE_INDEX) if dontcare is not None else None,
        "use_instance_edges": config.get("use_instance_edges"),
    }


def _eval_results(rows: Sequence[MetricResult]) -> list[EvalResult]:
    return [
        EvalResult(
            task_type=PIPELINE_TAG,
            task_name=_TASK_NAME,
            dataset_type=row.dataset_id or row.dataset,
            dataset_name=row.dataset,
            dataset_split=row.split,
            metric_type=row.metric.lower(),
            metric_name=row.metric,
            metric_value=row.value,
        )
        for row in rows
    ]


def _template() -> jinja2.Template:
    text = resources.files(__package__).joinpath(TEMPLATE_NAME).read_text(encoding="utf-8")
    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, autoescape=False)
    # Markdown table cells must not contain raw pipes or newlines.
    env.filters["cell"] = lambda v: "" if v is None else str(v).replace("|", "\\|").replace("\n", " ")
    return env.from_string(text)


def render_model_card(
    info: ModelCardInfo,
    *,
    model_id: str,
    config: Mapping[str, Any] | PreTrainedConfig,
    datasets: str | Sequence[str] | None = None,
    base_model: str | Sequence[str] | None = None,
    training: TrainingInfo | Mapping[str, Any] | None = None,
    measured_metrics: Sequence[MetricResult | Mapping[str, Any]] | None = None,
    tags: Sequence[str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> ModelCard:
    """Render the model card of one checkpoint.

    Args:
        info: The architecture's :class:`ModelCardInfo`.
        model_id: Hub id (``"org/name"``) or local path used in the usage snippets.
        config: The model config (object or dict); ``architectures``, ``label_space``, ``label_nc``,
            ``contain_dontcare_label``, ``ignore_index`` and ``use_instance_edges`` are read when present.
        datasets: Hub dataset id(s) the weights were trained on.
        base_model: Hub id(s) the weights were fine-tuned or converted from.
        training: How the checkpoint was trained or converted (see :class:`TrainingInfo`).
        measured_metrics: Figures we measured on these weights; they also become the ``model-index`` metadata.
        tags: Tags added after the standard ones.
        extra: Additional YAML metadata keys (e.g. ``{"language": "en"}``); may not redefine keys set here.

    Returns:
        A ``huggingface_hub.ModelCard`` (``str(card)`` is the README text, ``card.save(path)`` writes it).

    Raises:
        ValueError: ``training`` has unknown keys or ``extra`` collides with a key this function sets.
        TypeError: a metric row has unknown keys.
    """
    # Duck-typed so that rendering a card does not import transformers (and torch).
    cfg = dict(config) if isinstance(config, Mapping) else config.to_dict()
    training = dict(training or {})
    if unknown := set(training) - _TRAINING_KEYS:
        raise ValueError(f"Unknown training keys {sorted(unknown)}; expected a subset of {sorted(_TRAINING_KEYS)}.")
    measured = [MetricResult.coerce(r) for r in measured_metrics or ()]

    metadata: dict[str, Any] = {
        "library_name": LIBRARY_NAME,
        "pipeline_tag": PIPELINE_TAG,
        "license": info.weights_license,
        "tags": _unique([*BASE_TAGS, info.architecture.lower(), *info.tags, *(tags or ())]),
        "datasets": _as_list(datasets) or None,
        "base_model": base_model if base_model is None or isinstance(base_model, str) else list(base_model),
        "metrics": _unique([r.metric.lower() for r in measured]) or None,
    }
    if measured:
        metadata.update(model_name=model_id, eval_results=_eval_results(measured))
    if clash := set(extra or {}) & (set(metadata) | {"model-index", "model_name", "eval_results"}):
        raise ValueError(f"`extra` may not redefine {sorted(clash)}; pass them through the named arguments.")
    card_data = ModelCardData(**metadata, **(extra or {}))

    architectures = cfg.get("architectures") or []
    text = _template().render(
        card_data=card_data.to_yaml(),
        marker=GENERATED_MARKER,
        info=info,
        model_id=model_id,
        class_name=architectures[0] if architectures else None,
        labels=_label_conventions(cfg),
        datasets=_as_list(datasets),
        base_model=_as_list(base_model),
        training=training,
        measured=measured,
    )
    return ModelCard(text)


def write_model_card_file(
    info: ModelCardInfo,
    path: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    **kwargs: Any,
) -> Path:
    """Render a card with :func:`render_model_card` (same keyword arguments) and write it to ``path``.

    Used for ``model_cards/<model-id>.md`` in this repository and for README.md files next to saved weights.

    Args:
        info: The architecture's :class:`ModelCardInfo`.
        path: Destination file; parent folders are created.
        overwrite: Replace an existing file even if it was not generated by labelsynth.
        **kwargs: Forwarded to :func:`render_model_card` (``model_id`` and ``config`` are required).

    Raises:
        FileExistsError: ``path`` holds a hand-written card (no :data:`GENERATED_MARKER`) and ``overwrite`` is false.
    """
    path = Path(path)
    if not overwrite and path.is_file() and not is_generated_card(path.read_text(encoding="utf-8")):
        raise FileExistsError(f"{path} exists and was not generated by labelsynth; pass overwrite=True to replace it.")
    render_model_card(info, **kwargs).save(path)
    return path
