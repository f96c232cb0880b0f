"""``ModelCardMixin``: make ``save_pretrained`` and ``push_to_hub`` of a ``PreTrainedModel`` write labelsynth's card.

transformers 5 writes its own card on the Hub path only: ``PushToHubMixin.push_to_hub`` (and
``save_pretrained(push_to_hub=True)``) calls ``create_and_tag_model_card``, which loads the repo's README.md if there
is one (only adding tags), or else renders huggingface_hub's default template with ``library_name: transformers``,
and saves it over whatever ``save_pretrained`` wrote to README.md before uploading. The mixin therefore replaces
``push_to_hub`` as a whole (create repo, save into a temporary folder with our card, upload that folder) instead of
patching transformers' helpers.

Hand-written cards are never replaced silently. A card counts as machine-written if it carries
:data:`~labelsynth.hub.model_card.GENERATED_MARKER` or is transformers' placeholder card
(:func:`~labelsynth.hub.model_card.is_generated_card`); anything else is treated as written by a person:

* ``save_pretrained(dir)``: an existing hand-written ``dir/README.md`` is kept and a warning is logged;
  ``overwrite_model_card=True`` replaces it. Machine-written cards are regenerated.
* ``push_to_hub(repo_id)``: if the repo (at ``revision``) already has a hand-written README.md, no README.md is
  uploaded (the remote one stays) and a warning is logged; ``overwrite_model_card=True`` uploads ours anyway.
  Pushing an image processor after the model is safe: transformers then keeps the repo's card as it is.

Usage (the model base class)::

    class LabelSynthPreTrainedModel(ModelCardMixin, PreTrainedModel):  # the mixin must come first
        ...

    class SPADEModel(LabelSynthPreTrainedModel):
        model_card_info = SPADE_CARD_INFO  # a ModelCardInfo

Extra card fields for one checkpoint (datasets, training record, measured metrics, model id) go in
``model.card_kwargs`` (set by converters and trainers) or the ``card_kwargs=`` argument of both methods; the argument
wins key by key. Keys are those of :func:`~labelsynth.hub.model_card.render_model_card`.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from huggingface_hub import CommitInfo, HfApi
from huggingface_hub.errors import EntryNotFoundError, RevisionNotFoundError

from .model_card import LIBRARY_NAME, ModelCardInfo, is_generated_card, render_model_card

__all__ = ["ModelCardMixin"]

logger = logging.getLogger(__name__)

README = "README.md"
# Arguments of transformers' save_pretrained(push_to_hub=True) path that belong to the push, not to the save.
_PUSH_ARGS = ("repo_id", "commit_message", "commit_description", "private", "revision", "create_pr", "tags")


def _hub_api(token: str | bool | None) -> HfApi:
    from .. import __version__

    return HfApi(token=token, library_name=LIBRARY_NAME, library_version=__version__)


class ModelCardMixin:
    """Adds labelsynth model cards to ``save_pretrained``/``push_to_hub`` of a ``transformers.PreTrainedModel``.

    Place it before ``PreTrainedModel`` in the bases. Subclasses set :attr:`model_card_info`; without it no card is
    written (a warning says so). See the module docstring for how existing cards are treated.
    """

    model_card_info: ClassVar[ModelCardInfo | None] = None
    # Per-checkpoint card fields; converters/trainers assign a dict to the instance attribute of the same name.
    card_kwargs: dict[str, Any] | None = None

    def save_model_card(
        self,
        save_directory: str | os.PathLike[str],
        *,
        card_kwargs: Mapping[str, Any] | None = None,
        repo_id: str | None = None,
        tags: Sequence[str] = (),
        overwrite_model_card: bool = False,
    ) -> Path | None:
        """Write ``README.md`` into ``save_directory``; returns its path, or ``None`` when nothing was written.

        The card's model id is, by precedence: ``card_kwargs["model_id"]``, ``repo_id``, ``self.card_kwargs
        ["model_id"]``, ``save_directory`` as passed (the path that loads it). ``tags`` and the model's
        ``model_tags`` are appended to the card's tags. Nothing is written if the class has no
        :attr:`model_card_info`, or if a hand-written README.md is there and ``overwrite_model_card`` is false.
        """
        info = type(self).model_card_info
        if info is None:
            logger.warning("%s has no `model_card_info`; no model card written.", type(self).__name__)
            return None
        path = Path(save_directory) / README
        if path.is_file() and not overwrite_model_card and not is_generated_card(path.read_text(encoding="utf-8")):
            logger.warning("Kept the existing hand-written %s (pass overwrite_model_card=True to replace it).", path)
            return None
        kwargs: dict[str, Any] = {"model_id": os.fspath(save_directory), **(self.card_kwargs or {})}
        if repo_id is not None:
            kwargs["model_id"] = repo_id
        kwargs.update(card_kwargs or {})
        extra_tags = [*(getattr(self, "model_tags", None) or []), *tags]
        if extra_tags:
            kwargs["tags"] = [*kwargs.get("tags", []), *extra_tags]
        render_model_card(info, config=self.config, **kwargs).save(path)
        return path

    def save_pretrained(
        self,
        save_directory: str | os.PathLike[str],
        is_main_process: bool = True,
        *,
        write_model_card: bool = True,
        card_kwargs: Mapping[str, Any] | None = None,
        overwrite_model_card: bool = False,
        push_to_hub: bool = False,
        **kwargs: Any,
    ) -> None:
        """``PreTrainedModel.save_pretrained`` plus ``README.md`` (unless ``write_model_card=False``).

        With ``push_to_hub=True`` the folder is saved locally, then :meth:`push_to_hub` uploads the same files
        (``repo_id`` defaults to the folder name, as in transformers).
        """
        push_args = {k: kwargs.pop(k) for k in _PUSH_ARGS if k in kwargs} if push_to_hub else {}
        # transformers' default repo name for save_pretrained(push_to_hub=True) is the folder name.
        repo_id = push_args.pop("repo_id", Path(save_directory).name) if push_to_hub else None
        super().save_pretrained(save_directory, is_main_process, **kwargs)  # type: ignore[misc]
        if not is_main_process:
            return
        if write_model_card:
            self.save_model_card(
                save_directory,
                card_kwargs=card_kwargs,
                repo_id=repo_id,
                tags=push_args.get("tags") or (),
                overwrite_model_card=overwrite_model_card,
            )
        if repo_id is not None:
            self.push_to_hub(
                repo_id,
                token=kwargs.get("token"),
                max_shard_size=kwargs.get("max_shard_size", "50GB"),
                card_kwargs=card_kwargs,
                overwrite_model_card=overwrite_model_card,
                write_model_card=write_model_card,
                **push_args,
            )

    def push_to_hub(
        self,
        repo_id: str,
        *,
        commit_message: str | None = None,
        commit_description: str | None = None,
        private: bool | None = None,
        token: str | bool | None = None,
        revision: str | None = None,
        create_pr: bool = False,
        max_shard_size: int | str | None = "50GB",
        tags: list[str] | None = None,
        card_kwargs: Mapping[str, Any] | None = None,
        write_model_card: bool = True,
        overwrite_model_card: bool = False,
    ) -> CommitInfo:
        """Upload config, weights and the labelsynth model card to ``repo_id`` in one commit.

        Same arguments as ``transformers.PreTrainedModel.push_to_hub``; ``tags`` (and the model's ``model_tags``)
        are added to the card's tags. The card's model id is the resolved repo id unless ``card_kwargs`` names one.

        Returns:
            The ``huggingface_hub.CommitInfo`` of the upload.
        """
        api = _hub_api(token)
        repo_id = api.create_repo(repo_id, private=private, exist_ok=True).repo_id
        if revision is not None and not revision.startswith("refs/pr"):
            api.create_branch(repo_id, branch=revision, exist_ok=True)

        keep_remote = (
            write_model_card and not overwrite_model_card and self._remote_card_is_hand_written(api, repo_id, revision)
        )
        if keep_remote:
            logger.warning(
                "%s already has a hand-written %s; it is left as is (pass overwrite_model_card=True to replace it).",
                repo_id,
                README,
            )
        with tempfile.TemporaryDirectory() as tmp_dir:
            self.save_pretrained(tmp_dir, max_shard_size=max_shard_size, write_model_card=False)
            if write_model_card and not keep_remote:
                self.save_model_card(
                    tmp_dir, card_kwargs=card_kwargs, repo_id=repo_id, tags=tags or (), overwrite_model_card=True
                )
            return api.upload_folder(
                repo_id=repo_id,
                folder_path=tmp_dir,
                commit_message=commit_message or f"Upload {type(self).__name__}",
                commit_description=commit_description,
                revision=revision,
                create_pr=create_pr,
            )

    @staticmethod
    def _remote_card_is_hand_written(api: HfApi, repo_id: str, revision: str | None) -> bool:
        try:
            path = api.hf_hub_download(repo_id, README, revision=revision)
        except (EntryNotFoundError, RevisionNotFoundError):
            return False
        return not is_generated_card(Path(path).read_text(encoding="utf-8"))
