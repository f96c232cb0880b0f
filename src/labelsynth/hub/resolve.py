"""One answer to "where is model X?" for every entry point: ``from_pretrained``, ``pipeline(...)``, the CLI, the demo.

`resolve_model` takes what a user typed and returns what transformers can load:

1. an existing local folder -> that folder;
2. a registered id (``labelsynth.hub.registry``: the short id such as ``"spade-cityscapes-tiny"`` or its Hub id)
   -> the weights shipped inside the package (the built-in model), else the Hub copy when it is in the Hugging Face
   cache; a registered checkpoint that is neither is an error that says how to get the official weights;
3. anything else (a Hub id such as ``"org/my-spade"``) -> unchanged, for transformers to fetch or find in its cache.

Imports neither torch nor transformers.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["ModelNotAvailableError", "is_registered_id", "resolve_model"]


class ModelNotAvailableError(OSError):
    """A registered model id whose weights are neither shipped, nor converted, nor in the Hugging Face cache.

    An `OSError`, like transformers' own "cannot find the model" errors, so callers handle both the same way.
    """


def is_registered_id(name: str | os.PathLike) -> bool:
    """Whether `name` is a registered checkpoint id (short or Hub id) and not an existing local path."""
    from .registry import CHECKPOINTS

    text = os.fspath(name)
    return not Path(text).expanduser().exists() and any(text in (entry.id, entry.hub_id) for entry in CHECKPOINTS)


def resolve_model(name: str | os.PathLike) -> str:
    """The folder or Hub id that transformers should load for `name` (see the module docstring).

    Raises:
        ModelNotAvailableError: `name` is a registered checkpoint that is not available here.
    """
    text = os.fspath(name)
    path = Path(text).expanduser()
    if path.is_dir():
        return str(path)
    if not is_registered_id(text):
        return text
    from huggingface_hub import try_to_load_from_cache

    from .registry import get_checkpoint

    entry = get_checkpoint(text)
    if entry.weights_folder is not None:
        return str(entry.weights_folder)
    if isinstance(try_to_load_from_cache(entry.hub_id, "config.json"), str):
        return entry.hub_id
    training = dict(entry.training)
    raise ModelNotAvailableError(
        f"{text}: the converted weights are not on this machine (not in the Hugging Face cache as {entry.hub_id}). "
        f"They come from the original authors' release: {training.get('converted_from', 'see the model card')}. "
        f"Download it and convert it once with `{training.get('command', 'labelsynth convert ...')}`, then pass the "
        "converted folder as the model"
    )
