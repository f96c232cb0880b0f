"""Official release -> converted model folder in the cache, atomically.

`fetch_release("spade-ade20k")` downloads the archive the original authors publish (`labelsynth.hub.releases`),
unpacks it, converts the checkpoint with labelsynth's own converter (whose strict key and shape checks are the
integrity check of the weights), writes the model card with the weights' licence, and moves the finished folder into
``<cache>/models/<id>`` with one rename. The cache lives under the Hugging Face cache directory
(``$HF_HOME/labelsynth``, or ``$LABELSYNTH_CACHE``):

    <cache>/downloads/<archive>(.part)   archives as published; a .part file is an interrupted download to resume
    <cache>/staging/<id>-XXXX/           unpacking and conversion in progress (deleted whatever happens)
    <cache>/models/<id>/                 finished folders only: config.json, model.safetensors, preprocessor_config.json,
                                         README.md, labelsynth_release.json (written last, before the rename)

An interrupted or failed fetch therefore never leaves anything under ``models/`` (only, for an interrupted download,
the ``.part`` file that the next call resumes). A lock per archive keeps two processes from fetching it at once.
"""

from __future__ import annotations

import argparse
import datetime
import errno
import importlib
import json
import logging
import os
import shutil
import tarfile
import tempfile
import zipfile
from pathlib import Path

from .download import DownloadError, OfflineError, download_file, downloads_disabled, sha256_of
from .releases import RELEASES, Release, ReleaseFile, get_release

__all__ = ["MARKER_FILE", "CorruptReleaseError", "ReleaseError", "cache_dir", "cached_model_folder", "fetch_release", "release_command"]

logger = logging.getLogger(__name__)

MARKER_FILE = "labelsynth_release.json"


class ReleaseError(DownloadError):
    """An official release could not be turned into a model: not downloadable, not the expected archive, or its
    checkpoint does not convert. The message names the id, the file, its source and what to do."""


class CorruptReleaseError(ReleaseError):
    """The downloaded archive is not the published one (unreadable, wrong content, a checkpoint that does not
    convert): it is deleted, so the next call downloads it again."""


def _no_space(err: OSError, what: str) -> ReleaseError:
    return ReleaseError(f"no space left on the device while {what} ({err.filename or cache_dir()}): free space there, "
                        "or move the cache with HF_HOME=<a larger disk>")


def cache_dir() -> Path:
    """``$LABELSYNTH_CACHE``, else ``$HF_HOME/labelsynth`` (read now, so a changed ``HF_HOME`` moves it)."""
    explicit = os.environ.get("LABELSYNTH_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    from huggingface_hub import constants

    return Path(os.environ.get("HF_HOME") or constants.HF_HOME).expanduser() / "labelsynth"


def cached_model_folder(model_id: str) -> Path | None:
    """The finished converted folder of `model_id` in the cache, or None."""
    folder = cache_dir() / "models" / model_id
    return folder if (folder / MARKER_FILE).is_file() else None


def release_command(model_id: str) -> str:
    """The ``labelsynth convert`` command that converts the unpacked release of `model_id` by hand."""
    release = get_release(model_id)
    return " ".join(["labelsynth convert", release.converter, release.source, f"converted/{model_id}",
                     *release.options])


_ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")


def _is_archive(path: Path) -> bool:
    return path.name.lower().endswith(_ARCHIVE_SUFFIXES)


def _unpack(archive: Path, into: Path) -> None:
    """Extract a tar or zip archive into `into`, refusing members that point outside it."""
    try:
        if archive.name.lower().endswith(".zip"):
            with zipfile.ZipFile(archive) as zipped:
                root = into.resolve()
                for member in zipped.namelist():
                    if not (into / member).resolve().is_relative_to(root):
                        raise CorruptReleaseError(f"{archive.name}: member {member!r} points outside the archive")
                zipped.extractall(into)
        else:
            with tarfile.open(archive) as tar:
                tar.extractall(into, filter="data")  # refuses absolute paths, "..", links out of `into`
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as err:
        if isinstance(err, ReleaseError):
            raise
        if isinstance(err, OSError) and err.errno == errno.ENOSPC:
            raise _no_space(err, f"unpacking {archive.name}") from None
        raise CorruptReleaseError(f"{archive.name} is not a readable archive ({err}): the download is corrupt or not "
                                  "the published file") from None


def _place(downloaded: Path, target: Path) -> None:
    """Put a downloaded file at `target` in the staging tree without copying its bytes when the disk allows."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(downloaded, target)
    except OSError:
        try:
            shutil.copyfile(downloaded, target)
        except OSError as err:
            if err.errno == errno.ENOSPC:
                raise _no_space(err, f"copying {downloaded.name}") from None
            raise


def _assemble(release: Release, downloads: Path, into: Path) -> None:
    """Lay the release's files out in `into` as the converter expects: archives unpacked, nested ones too."""
    for file in release.files:
        local = downloads / file.path
        if file.members:
            for member in file.members:
                _place(local / member, into / file.path / member)
        elif _is_archive(local):
            _unpack(local, into / Path(file.path).parent)
        else:
            _place(local, into / file.path)
    # an archive inside the archive (e.g. one zip per model inside a shared-folder zip) is unpacked where it lies
    for nested in [p for p in into.rglob("*") if p.is_file() and _is_archive(p)]:
        _unpack(nested, nested.parent)
        nested.unlink()


def _locate(into: Path, release: Release) -> Path:
    """The converter's input inside the unpacked tree: `release.source`, also under one top-level folder."""
    direct = into / release.source
    if direct.exists():
        return direct
    tail = Path(release.source).parts
    for candidate in sorted(into.rglob(tail[-1])):
        if candidate.relative_to(into).parts[-len(tail):] == tail:
            return candidate
    found = sorted(str(p.relative_to(into)) for p in into.iterdir())[:10]
    raise CorruptReleaseError(f"{release.files[0].path} does not contain {release.source} (it holds: {', '.join(found) or 'nothing'}"
                       "): it is not the published archive")


def _convert(release: Release, source: Path, output: Path) -> None:
    """Run the family's converter as ``labelsynth convert`` would."""
    from ..cli.convert import CONVERTERS

    module = importlib.import_module(CONVERTERS[release.converter])
    parser = argparse.ArgumentParser(prog=f"labelsynth convert {release.converter}")
    module.add_arguments(parser)
    module.run(parser.parse_args([str(source), str(output), *release.options]))


def _write_card_and_marker(model_id: str, release: Release, folder: Path, sha256: dict[str, str]) -> None:
    from .model_card import render_model_card
    from .registry import card_kwargs, get_checkpoint, model_card_info

    entry = get_checkpoint(model_id)
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    kwargs = card_kwargs(entry)
    training = dict(kwargs["training"])
    hashes = ", ".join(f"{name} {digest}" for name, digest in sha256.items())
    training["notes"] = (f"{training.get('notes', '')} Fetched from {release.url} (published in "
                         f"{release.published_in}; SHA-256: {hashes}) and converted by labelsynth on "
                         f"{datetime.date.today().isoformat()}. Weights' terms: {release.license}.").strip()
    kwargs["training"] = training
    render_model_card(model_card_info(entry), config=config, **kwargs).save(folder / "README.md")
    record = {"id": model_id, "url": release.url, "published_in": release.published_in, "sha256": sha256,
              "license": release.license,
              "converted": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    (folder / MARKER_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def _downloads_still_needed(release: Release, model_id: str) -> bool:
    """Whether another registered id converts from the same downloads and is not converted yet."""
    return any(other.group == release.group and other_id != model_id and cached_model_folder(other_id) is None
               for other_id, other in RELEASES.items())


def _list_drive_folder(url: str) -> dict[str, str]:
    """File name -> download link of a shared Google Drive folder (gdown reads Drive's folder page)."""
    import gdown

    try:
        entries = gdown.download_folder(url=url, skip_download=True, quiet=True)
    except Exception as err:  # gdown raises its own and requests' errors, all meaning "could not list the folder"
        raise DownloadError(f"could not list the Google Drive folder {url}: {err}") from None
    return {Path(entry.path).name: f"https://drive.google.com/uc?id={entry.id}" for entry in entries or ()}


def _fetch_file(file: ReleaseFile, target: Path, url: str | None, progress: bool, label: str) -> None:
    """Download one release file (or a Drive folder's members) to `target`, trying its mirrors in turn."""
    if file.members:
        if url is not None and Path(url).expanduser().is_dir():  # the folder downloaded by hand
            links = {member: str(Path(url).expanduser() / member) for member in file.members}
        else:
            listing = _list_drive_folder(url or file.url)
            missing = [member for member in file.members if member not in listing]
            if missing:
                raise CorruptReleaseError(f"the folder {url or file.url} has no {', '.join(missing)} (it holds: "
                                          f"{', '.join(sorted(listing)) or 'nothing'})")
            links = {member: listing[member] for member in file.members}
        for member, link in links.items():
            if not (target / member).is_file():
                download_file(link, target / member, progress=progress, description=f"{label}: {member}")
        return
    sources = (url,) if url is not None else (file.url, *file.mirrors)
    for i, source in enumerate(sources):
        try:
            download_file(source, target, expected_size=None if url else file.size, sha256_prefix=file.sha256,
                          progress=progress, description=f"{label}: {target.name}")
            return
        except DownloadError as err:
            if i == len(sources) - 1 or isinstance(err, OfflineError):
                raise
            logger.warning("%s failed (%s); trying %s", source, err, sources[i + 1])


def _user_source(url: str | None, file: ReleaseFile, release: Release) -> str | None:
    """Where `--url` says `file` is: the main file's link; for a folder downloaded by hand, the file of the same name
    in it (so that a release of several files, e.g. CRN's .data + .index, also works offline)."""
    if url is not None and not file.members and Path(url).expanduser().is_dir():
        return str(Path(url).expanduser() / Path(file.path).name)
    return url if file is release.files[0] else None


def fetch_release(model_id: str, *, url: str | None = None, progress: bool = True, force: bool = False) -> Path:
    """Download, convert and cache the official release of `model_id`; returns the converted folder.

    Args:
        model_id: a registered id with a release (``labelsynth.hub.releases.RELEASES``), e.g. ``"spade-ade20k"``.
        url: fetch the release's main file from here instead: a mirror URL, a ``file://`` URL or a local path (for a
            Google Drive folder release, the folder downloaded by hand).
        progress: show progress bars.
        force: convert again even when the folder is cached.

    Raises:
        ReleaseError: the release could not be fetched or converted; the cache is left as it was.
    """
    from filelock import FileLock

    release = get_release(model_id)
    if not force and (folder := cached_model_folder(model_id)) is not None:
        return folder
    root = cache_dir()
    for sub in ("downloads", "staging", "models", "locks"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    downloads = root / "downloads" / release.group
    with FileLock(str(root / "locks" / f"{release.group}.lock")):
        if not force and (folder := cached_model_folder(model_id)) is not None:  # another process finished it
            return folder
        missing = [f for f in release.files if not (downloads / f.path).exists() or f.members and not all(
            (downloads / f.path / m).is_file() for m in f.members)]
        if missing and url is None and downloads_disabled():
            raise ReleaseError(offline_message(model_id))
        if missing:
            logger.warning("%s: downloading %s (%s) from %s. The weights' terms: %s", model_id,
                           ", ".join(f.path for f in missing), release.approximate_size, url or release.url,
                           release.license)
        for file in missing:
            try:
                _fetch_file(file, downloads / file.path, _user_source(url, file, release), progress, model_id)
            except DownloadError as err:
                raise ReleaseError(f"{model_id}: {err}. The file is published in {release.published_in}; a mirror "
                                   f"or a file downloaded by hand works too: labelsynth download {model_id} --url "
                                   "<url or path>") from None
        staging = Path(tempfile.mkdtemp(prefix=f"{model_id}-", dir=root / "staging"))
        try:
            unpacked, converted = staging / "unpacked", staging / model_id
            unpacked.mkdir()
            _assemble(release, downloads, unpacked)
            try:
                _convert(release, _locate(unpacked, release), converted)
            except (ValueError, KeyError, RuntimeError, OSError) as err:
                if isinstance(err, OSError) and err.errno == errno.ENOSPC:
                    raise _no_space(err, f"converting {model_id}") from None
                if isinstance(err, ReleaseError):
                    raise
                raise CorruptReleaseError(f"{model_id}: the files from {url or release.url} hold a checkpoint that "
                                          f"does not convert ({err}); they are not the published {model_id} "
                                          "checkpoint") from None
            _write_card_and_marker(model_id, release, converted, _fingerprint(release, downloads))
            final = root / "models" / model_id
            if final.exists():  # `force`: the old folder goes only once the new one is complete
                shutil.rmtree(final)
            os.replace(converted, final)
        except CorruptReleaseError:
            shutil.rmtree(downloads, ignore_errors=True)  # bad files must not be reused by the next call
            raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        if not _downloads_still_needed(release, model_id):
            shutil.rmtree(downloads, ignore_errors=True)
        return final


def _fingerprint(release: Release, downloads: Path) -> dict[str, str]:
    """SHA-256 of every fetched file, for the record in the converted folder."""
    paths = [downloads / f.path / m for f in release.files for m in f.members] + \
        [downloads / f.path for f in release.files if not f.members]
    return {str(path.relative_to(downloads)): sha256_of(path) for path in paths}


def offline_message(model_id: str, reason: str = "downloads are disabled (HF_HUB_OFFLINE/LABELSYNTH_OFFLINE)") -> str:
    """What to do when `model_id` is needed, not cached, and cannot be downloaded now (`reason`)."""
    release = get_release(model_id)
    files = ", ".join(f.path for f in release.files)
    return (f"{model_id}: not in the cache ({cache_dir() / 'models' / model_id}) and {reason}. It is converted from {files} ({release.approximate_size}), "
            f"published at {release.url} ({release.published_in}). With network access run `labelsynth download "
            f"{model_id}`; with the file at hand run `labelsynth download {model_id} --url <path or mirror URL>`")
