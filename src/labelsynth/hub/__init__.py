"""Hub integration: model cards rendered from one template, and the mixin that writes and uploads them."""

from .mixin import ModelCardMixin
from .model_card import (
    BASE_TAGS,
    GENERATED_MARKER,
    LIBRARY_NAME,
    PIPELINE_TAG,
    MetricResult,
    ModelCardInfo,
    TrainingInfo,
    is_generated_card,
    render_model_card,
    write_model_card_file,
)

__all__ = [
    "BASE_TAGS",
    "GENERATED_MARKER",
    "LIBRARY_NAME",
    "PIPELINE_TAG",
    "MetricResult",
    "ModelCardInfo",
    "ModelCardMixin",
    "TrainingInfo",
    "is_generated_card",
    "render_model_card",
    "write_model_card_file",
]
