"""One answer to "where is model X?" for every entry point: ``from_pretrained``, ``pipeline(...)``, the CLI, the demo.

`resolve_model` takes what a user typed and returns what transformers can load:

1. an existing local folder -> that folder;
2. a registered id (``labelsynth.hub.registry``: the short id such as ``"spade-ade20k"`` or its Hub id ``"labelsynth/
   spade-ade20k"``) -> the weights shipped inside the package (the built-in model); else the converted folder in the
   cache (``labelsynth.hub.fetch``); else the Hub copy in the Hugging Face cache; else, online, the Hub repo when it
   exists, and otherwise the official release, downloaded and converted once into the cache;
3. anything else (a Hub id such as ``"org/my-spade"``) -> unchanged, for transformers to fetch or find in its cache.

Offline (``HF_HUB_OFFLINE=1``), a registered id that is not here is a `ModelNotAvailableError` naming the files to
download, their source and ``labelsynth download <id> --url``. Imports neither torch nor transformers.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

__all__ = ["ModelNotAvailableError", "is_registered_id", "resolve_model"]

logger = logging.getLogger(__name__)


class ModelNotAvailableError(OSError):
    """A registered model id whose weights are neither shipped, nor converted, nor in the Hugging Face cache.

    An `OSError`, like transformers' own "cannot find the model" errors, so callers handle both the same way.
    """


def is_registered_id(name: str | os.PathLike) -> bool:
    """Whether `name` is a registered checkpoint id (short or Hub id) and not an existing local path."""
    from .registry import CHECKPOINTS

    text = os.fspath(name)
    return not Path(text).expanduser().exists() and any(text in (entry.id, entry.hub_id) for entry in CHECKPOINTS)


def _hub_copy(hub_id: str) -> str | None:
    """A local snapshot of the registered id's Hub repo, downloaded now; None when the repo does not exist."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError

    try:
        return snapshot_download(hub_id)
    except (RepositoryNotFoundError, GatedRepoError):
        return None
    except (HfHubHTTPError, OSError) as err:  # the Hub is unreachable: the original release may not be
        logger.warning("could not reach the Hub for %s (%s); trying the official release", hub_id, err)
        return None


def resolve_model(name: str | os.PathLike, *, download: bool = True) -> str:
    """The folder or Hub id that transformers should load for `name` (see the module docstring).

    Args:
        name: a folder, a registered id or a Hub id.
        download: fetch a registered id that is not here (from its Hub repo or its official release).

    Raises:
        ModelNotAvailableError: `name` is a registered checkpoint that is not here and cannot be fetched now.
    """
    text = os.fspath(name)
    path = Path(text).expanduser()
    if path.is_dir():
        return str(path)
    if not is_registered_id(text):
        return text
    from huggingface_hub import try_to_load_from_cache

    from .download import downloads_disabled
    from .fetch import ReleaseError, cached_model_folder, fetch_release, offline_message
    from .registry import get_checkpoint
    from .releases import RELEASES

    entry = get_checkpoint(text)
    if entry.weights_folder is not None:
        return str(entry.weights_folder)
    if (converted := cached_model_folder(entry.id)) is not None:
        return str(converted)
    if isinstance(try_to_load_from_cache(entry.hub_id, "config.json"), str):
        return entry.hub_id
    if entry.id not in RELEASES:
        raise ModelNotAvailableError(f"{text}: no weights here and no official release recorded for it")
    if downloads_disabled():
        raise ModelNotAvailableError(offline_message(entry.id))
    if not download:
        raise ModelNotAvailableError(offline_message(entry.id, "the caller asked for no download"))
    if (snapshot := _hub_copy(entry.hub_id)) is not None:
        return snapshot
    try:
        return str(fetch_release(entry.id))
    except ReleaseError as err:
        raise ModelNotAvailableError(str(err)) from None
