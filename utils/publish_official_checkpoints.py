#!/usr/bin/env python
"""Maintainers: fetch, convert, check and push every registered official checkpoint to the Hub organisation.

    python utils/publish_official_checkpoints.py --all --dry-run      # what would be pushed, and what is there now
    python utils/publish_official_checkpoints.py spade-ade20k sean-celebamask-hq
    python utils/publish_official_checkpoints.py --all --organization my-org   # a test organisation

For each id: the official release is fetched and converted into the cache (`labelsynth.hub.fetch.fetch_release`,
or the cached folder is reused), loaded strictly with its model class, run once on a label map of the model's size
(the output must be finite), and its folder (config, safetensors weights, processor config, the model card with the
weights' licence and provenance) is uploaded to ``<organization>/<id>`` in one commit. Once a repo exists there, the
resolver takes the Hub copy instead of the original release (``labelsynth.hub.resolve``).

The dry run fetches, converts and checks too (nothing is published without being checked), then only reads the Hub:
whether each repo exists and which of its files would change. It needs no write token.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import torch


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("ids", nargs="*", help="registered ids with an official release")
    parser.add_argument("--all", action="store_true", help="every id with an official release")
    parser.add_argument("--organization", default=None, help="Hub namespace (default: the registry's, labelsynth)")
    parser.add_argument("--dry-run", action="store_true", help="check everything, push nothing")
    parser.add_argument("--private", action="store_true", help="create new repos as private")
    return parser


def check_folder(model_id: str, folder: Path) -> str:
    """Load the converted folder strictly (every weight present, right shapes) and check that every tensor is
    finite; returns a one-line summary."""
    from labelsynth.hub.registry import checkpoint_model_class, get_checkpoint

    model = checkpoint_model_class(get_checkpoint(model_id)).from_pretrained(folder)
    bad = [name for name, tensor in model.state_dict().items()
           if tensor.is_floating_point() and not torch.isfinite(tensor).all()]
    if bad:
        raise SystemExit(f"{model_id}: non-finite values in {', '.join(bad[:5])}; not publishing it")
    parameters = sum(p.numel() for p in model.parameters())
    return f"{parameters:,} parameters, loaded strictly, all finite"


def _git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def plan(api, repo_id: str, folder: Path) -> list[str]:
    """The files that an upload would add or change in `repo_id` (all of them when the repo does not exist)."""
    local = {p.relative_to(folder).as_posix(): p for p in sorted(folder.rglob("*")) if p.is_file()}
    if not api.repo_exists(repo_id):
        return list(local)
    remote = {entry.path: entry for entry in api.list_repo_tree(repo_id, recursive=True)
              if getattr(entry, "blob_id", None)}
    changed = []
    for name, path in local.items():
        entry = remote.get(name)
        lfs = getattr(entry, "lfs", None)
        if entry is None:
            changed.append(name)
        elif lfs is not None:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            if digest != (lfs.get("sha256") if isinstance(lfs, dict) else getattr(lfs, "sha256", None)):
                changed.append(name)
        elif entry.blob_id != _git_blob_sha1(path.read_bytes()):
            changed.append(name)
    return changed


def main(argv: list[str] | None = None) -> int:
    from huggingface_hub import HfApi

    from labelsynth.hub.fetch import fetch_release
    from labelsynth.hub.registry import HUB_ORGANIZATION, get_checkpoint
    from labelsynth.hub.releases import RELEASES

    args = _parser().parse_args(argv)
    if args.all == bool(args.ids):
        print("give model ids or --all", file=sys.stderr)
        return 2
    ids = list(RELEASES) if args.all else args.ids
    unknown = [i for i in ids if i not in RELEASES]
    if unknown:
        print(f"no official release for: {', '.join(unknown)} (known: {', '.join(RELEASES)})", file=sys.stderr)
        return 2
    api = HfApi()
    organization = args.organization or HUB_ORGANIZATION
    for model_id in ids:
        folder = fetch_release(model_id)
        summary = check_folder(model_id, folder)
        repo_id = f"{organization}/{get_checkpoint(model_id).id}"
        changes = plan(api, repo_id, folder)
        state = "exists" if api.repo_exists(repo_id) else "new"
        print(f"{model_id}: {summary}; {repo_id} ({state}): {len(changes)} file(s) to upload"
              + (f": {', '.join(changes)}" if changes else ""))
        if args.dry_run or not changes:
            continue
        api.create_repo(repo_id, exist_ok=True, private=args.private)
        api.upload_folder(repo_id=repo_id, folder_path=folder,
                          commit_message=f"{model_id}: official weights converted by labelsynth")
        print(f"{model_id}: pushed to {repo_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
