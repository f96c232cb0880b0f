"""Fetching one file from where its authors publish it: plain HTTP(S), Google Drive, Dropbox, or a local path.

`download_file` streams to ``<destination>.part`` with a progress bar and moves the file into place only once it is
complete and checked (size, SHA-256 prefix), so a file at ``destination`` is always a whole one. An interrupted
download leaves the ``.part`` file, and the next call resumes it with an HTTP ``Range`` request (or starts over when
the server does not support ranges). Anything that fails a check is deleted.

Google Drive answers large files with an HTML "can't scan this file for viruses" page instead of the file; the
download link is in that page's form, which `gdown <https://github.com/wkentaro/gdown>`_ parses
(``get_url_from_gdrive_confirmation``); we follow it with the same session (cookies included). Dropbox share links
(``?dl=0``) are turned into direct ones (``?dl=1``) and their redirects followed.

Downloads are off when ``HF_HUB_OFFLINE=1`` or ``LABELSYNTH_OFFLINE=1`` (read at call time), like the Hub's.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import shutil
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

__all__ = ["DownloadError", "OfflineError", "download_file", "downloads_disabled", "hash_prefix_from_filename",
           "sha256_of"]

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20
_TIMEOUT = (15, 60)  # (connect, read) seconds: a stalled server fails the download instead of hanging it
_USER_AGENT = "labelsynth (+https://github.com/labelsynth/labelsynth)"


class DownloadError(OSError):
    """A download failed or its result failed a check; the message names the URL and what to do."""


class OfflineError(DownloadError):
    """A download was needed while downloads are disabled (``HF_HUB_OFFLINE`` / ``LABELSYNTH_OFFLINE``)."""


def downloads_disabled() -> bool:
    """Whether ``HF_HUB_OFFLINE`` or ``LABELSYNTH_OFFLINE`` is set to a true value (read now, not at import)."""
    return any(os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}
               for name in ("HF_HUB_OFFLINE", "LABELSYNTH_OFFLINE"))


def hash_prefix_from_filename(name: str) -> str | None:
    """The SHA-256 prefix that torch hub file names carry (``vgg19-dcbb9e9d.pth`` -> ``"dcbb9e9d"``), else None."""
    stem = Path(name).name.split(".")[0]
    tail = stem.rsplit("-", 1)[-1] if "-" in stem else ""
    return tail.lower() if len(tail) >= 6 and all(c in "0123456789abcdefABCDEF" for c in tail) else None


def sha256_of(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _direct_url(url: str) -> str:
    """Share links -> download links: Google Drive ``/file/d/<id>/view`` -> ``/uc?id=<id>&export=download``;
    Dropbox ``dl=0`` -> ``dl=1``."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if host in {"drive.google.com", "docs.google.com"}:
        from gdown.parse_url import parse_url

        file_id, _ = parse_url(url)
        if file_id:
            return f"https://drive.google.com/uc?id={file_id}&export=download"
    if host.endswith("dropbox.com"):
        query = [(k, v) for k, v in urllib.parse.parse_qsl(parts.query) if k != "dl"] + [("dl", "1")]
        return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))
    return url


def _local_path(url: str) -> Path | None:
    """The file a ``file://`` URL or a plain path points to, else None."""
    if url.startswith("file://"):
        return Path(urllib.parse.unquote(urllib.parse.urlsplit(url).path))
    if "://" not in url:
        return Path(url).expanduser()
    return None


def _open(session, url: str, start: int):
    """GET `url` from byte `start`, following Google Drive's confirmation page; returns the streaming response."""
    import requests
    from gdown.download import get_url_from_gdrive_confirmation
    from gdown.exceptions import FileURLRetrievalError

    headers = {"Range": f"bytes={start}-"} if start else {}
    for _ in range(3):  # the file, or a confirmation page that points at it (once; a loop means a refusal)
        try:
            response = session.get(url, stream=True, timeout=_TIMEOUT, headers=headers, allow_redirects=True)
        except requests.RequestException as err:
            raise DownloadError(f"could not reach {url}: {err}") from None
        if response.status_code == 416 and headers:  # a .part as long as the file (or longer): fetch it whole
            response.close()
            headers = {}
            continue
        if response.status_code >= 400:
            response.close()
            raise DownloadError(f"{url} answered HTTP {response.status_code} {response.reason}")
        is_page = response.headers.get("Content-Type", "").startswith("text/html") and \
            "Content-Disposition" not in response.headers
        if not is_page:
            return response
        page = response.text
        response.close()
        try:
            url = get_url_from_gdrive_confirmation(page)
        except FileURLRetrievalError as err:
            raise DownloadError(
                f"{url} returned a web page instead of the file ({' '.join(str(err).split())[:300]}). Open the link "
                "in a browser, download the file and pass its path with --url"
            ) from None
    raise DownloadError(f"{url} kept answering with a confirmation page instead of the file")


def _chunks(response) -> Iterator[bytes]:
    import requests

    try:
        yield from response.iter_content(_CHUNK)
    except requests.RequestException as err:
        raise DownloadError(f"the connection broke during the download ({err}); run the same command again to "
                            "resume") from None


def _write(response, part: Path, resume_from: int, total: int | None, description: str, progress: bool) -> None:
    from tqdm.auto import tqdm

    with open(part, "ab" if resume_from else "wb") as handle, tqdm(
        total=total, initial=resume_from, unit="B", unit_scale=True, unit_divisor=1024, desc=description,
        disable=not progress, leave=False,
    ) as bar:
        for chunk in _chunks(response):
            try:
                handle.write(chunk)
            except OSError as err:
                if err.errno == errno.ENOSPC:
                    part.unlink(missing_ok=True)  # a partial file the disk cannot finish is no use to a resume
                    raise DownloadError(
                        f"no space left on the device while writing {part} ({total or 'unknown'} bytes needed): free "
                        "space there, or move the cache with HF_HOME=<a larger disk>"
                    ) from None
                raise
            bar.update(len(chunk))


def _check(path: Path, *, expected_size: int | None, sha256_prefix: str | None, source: str) -> None:
    size = path.stat().st_size
    if expected_size is not None and size != expected_size:
        raise DownloadError(f"{source}: got {size:,} bytes, expected {expected_size:,}: the file is truncated or not "
                            "the published one")
    if sha256_prefix:
        digest = sha256_of(path)
        if not digest.startswith(sha256_prefix.lower()):
            raise DownloadError(f"{source}: SHA-256 {digest[:16]}... does not start with {sha256_prefix}: the file is "
                                "corrupt or not the published one")


def download_file(url: str, destination: str | os.PathLike, *, expected_size: int | None = None,
                  sha256_prefix: str | None = None, progress: bool = True, description: str | None = None) -> Path:
    """Fetch `url` to `destination` (see the module docstring) and return `destination`.

    Args:
        url: an ``http(s)://`` URL (Google Drive and Dropbox share links included), a ``file://`` URL or a local
            path (a mirror or a file downloaded by hand: checked, then copied).
        destination: the final path; its folder is created.
        expected_size: bytes the file must have, when known.
        sha256_prefix: leading hex digits its SHA-256 must have (defaults to the prefix the file name of
            `destination` carries, e.g. ``vgg19-dcbb9e9d.pth``).
        progress: show a progress bar.
        description: the progress bar's label (default: the file name).

    Raises:
        OfflineError: a network download while downloads are disabled.
        DownloadError: the server failed, the file is not there, or the result failed a check (it is deleted).
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    sha256_prefix = sha256_prefix or hash_prefix_from_filename(destination.name)
    part = destination.with_name(destination.name + ".part")
    local = _local_path(url)
    if local is not None:
        if not local.is_file():
            raise DownloadError(f"{url}: no such file")
        _check(local, expected_size=expected_size, sha256_prefix=sha256_prefix, source=str(local))
        try:
            shutil.copyfile(local, part)
        except OSError as err:
            part.unlink(missing_ok=True)  # a partial copy must not be resumed as a download of `url`
            if err.errno == errno.ENOSPC:
                raise DownloadError(f"no space left on the device while copying {local} to {part}: free space "
                                    "there, or move the cache with HF_HOME=<a larger disk>") from None
            raise
        os.replace(part, destination)
        return destination
    if downloads_disabled():
        raise OfflineError(f"downloads are disabled (HF_HUB_OFFLINE/LABELSYNTH_OFFLINE is set); {destination.name} "
                           f"comes from {url}")

    import requests

    direct = _direct_url(url)
    with requests.Session() as session:
        session.headers["User-Agent"] = _USER_AGENT
        resume_from = part.stat().st_size if part.is_file() else 0
        response = _open(session, direct, resume_from)
        with response:
            if resume_from and response.status_code != 206:  # the server ignored the range: start over
                resume_from = 0
            length = response.headers.get("Content-Length")
            total = resume_from + int(length) if length and length.isdigit() else expected_size
            if resume_from:
                logger.info("resuming %s at %d bytes", destination.name, resume_from)
            _write(response, part, resume_from, total, description or destination.name, progress)
    try:
        if total is not None and part.stat().st_size < total:
            raise DownloadError(f"{url}: the connection closed after {part.stat().st_size:,} of {total:,} bytes; "
                                "run the same command again to resume")
        _check(part, expected_size=expected_size, sha256_prefix=sha256_prefix, source=url)
    except DownloadError as err:
        if "resume" not in str(err):
            part.unlink(missing_ok=True)
        raise
    os.replace(part, destination)
    return destination
