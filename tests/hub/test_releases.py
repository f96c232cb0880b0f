"""Official releases end to end, offline: a loopback server (`loopback_server.py`) serves synthetic files in each
release's exact layout (`release_fixtures.py`: same file and folder names, original key layouts, tiny widths), and
the real download -> unpack -> convert -> cache code fetches them.

Each test rewrites the release's URLs to the loopback server with `dataclasses.replace` (keeping every file path and
name; Google Drive links become the server's ``/uc?id=<same id>&export=download`` confirmation flow) and uses a
private ``HF_HOME``. The one seam: listing a Google Drive FOLDER (CoCosNet's release) goes through gdown, which only
talks to https://drive.google.com, so `fetch._list_drive_folder` is replaced by the loopback links of the members;
the members themselves go through the real download code.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import re
import tarfile
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
import torch
from loopback_server import LoopbackServer
from PIL import Image
from release_fixtures import published_files, spade_generator_bytes, tar_gz

from labelsynth import SPADEConfig
from labelsynth.hub import download as download_module
from labelsynth.hub import fetch
from labelsynth.hub.download import DownloadError, download_file
from labelsynth.hub.registry import checkpoint_model_class, get_checkpoint
from labelsynth.hub.releases import RELEASES
from labelsynth.hub.resolve import ModelNotAvailableError, resolve_model

_DRIVE_FILE = re.compile(r"^https://drive\.google\.com/file/d/([^/]+)/")
PUBLISHED = dict(RELEASES)  # the releases as registered, before any test points them at the loopback server


# ---------------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def published(tmp_path_factory) -> dict[str, dict[str, bytes]]:
    """id -> its release's files (built once; the SPADE ids share one tar, built once)."""
    work = tmp_path_factory.mktemp("published")
    files, by_group = {}, {}
    for model_id, release in RELEASES.items():
        if release.group not in by_group:
            by_group[release.group] = published_files(model_id, work / model_id)
        files[model_id] = by_group[release.group]
    return files


@pytest.fixture()
def server():
    with LoopbackServer() as loopback:
        yield loopback


@pytest.fixture()
def cache(monkeypatch, tmp_path) -> Path:
    """Downloads on, a private HF_HOME; returns the labelsynth cache folder (``$HF_HOME/labelsynth``)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.delenv("LABELSYNTH_OFFLINE", raising=False)
    monkeypatch.delenv("LABELSYNTH_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    root = fetch.cache_dir()
    assert root == tmp_path / "hf_home" / "labelsynth"
    return root


def _loopback_url(server: LoopbackServer, url: str, data: bytes) -> str:
    """The same file on the loopback server: a Drive file link -> the confirmation flow under the same file id;
    any other link -> the same path."""
    if (drive := _DRIVE_FILE.match(url)) is not None:
        return server.add_drive_file(drive[1], data)
    return server.add(urlsplit(url).path, data)


def serve(server: LoopbackServer, monkeypatch, model_id: str, files: dict[str, bytes], *,
          keep_hashes: bool = False) -> None:
    """Serve `files` as the release of `model_id` (and of every id that shares its download) from `server`.

    Published hashes (CRN's ``.index`` files) are replaced by those of the synthetic files unless `keep_hashes`."""
    group = PUBLISHED[model_id].group
    for other_id, release in PUBLISHED.items():
        if release.group != group:
            continue
        rewritten = []
        for file in release.files:
            if file.members:
                folder_url = server.url(urlsplit(file.url).path)
                links = {member: server.add_drive_file(f"{Path(file.path).name}-{member}",
                                                       files[f"{file.path}/{member}"]) for member in file.members}

                def list_folder(url: str, expected: str = folder_url, links: dict = links) -> dict[str, str]:
                    assert url == expected
                    return links

                monkeypatch.setattr(fetch, "_list_drive_folder", list_folder)
                rewritten.append(dataclasses.replace(file, url=folder_url))
                continue
            data = files[file.path]
            sha256 = file.sha256 if keep_hashes or file.sha256 is None else hashlib.sha256(data).hexdigest()
            rewritten.append(dataclasses.replace(
                file, url=_loopback_url(server, file.url, data), sha256=sha256,
                mirrors=tuple(_loopback_url(server, mirror, data) for mirror in file.mirrors)))
        monkeypatch.setitem(RELEASES, other_id, dataclasses.replace(release, files=tuple(rewritten)))


def assert_clean(root: Path, model_id: str) -> None:
    """Nothing a later call could take for the model: no models/<id>, nothing left in staging/."""
    assert not (root / "models" / model_id).exists()
    assert not (root / "staging").exists() or not any((root / "staging").iterdir())


def gets(server: LoopbackServer, path: str) -> int:
    return len(server.requests_for(path))


def load(model_id: str, where: str | Path):
    return checkpoint_model_class(get_checkpoint(model_id)).from_pretrained(where)


# ---------------------------------------------------------------------------------------------------- every release
@pytest.mark.parametrize("model_id", sorted(RELEASES))
def test_every_release_downloads_converts_and_loads(model_id, published, server, cache, monkeypatch) -> None:
    serve(server, monkeypatch, model_id, published[model_id])
    folder = fetch.fetch_release(model_id, progress=False)
    assert folder == cache / "models" / model_id
    assert {"config.json", "model.safetensors", "preprocessor_config.json", "README.md", fetch.MARKER_FILE} <= {
        p.name for p in folder.iterdir()}
    assert RELEASES[model_id].license in (folder / "README.md").read_text()
    model = load(model_id, folder)
    assert type(model) is checkpoint_model_class(get_checkpoint(model_id))
    assert not any((cache / "staging").iterdir())
    group = RELEASES[model_id].group  # the downloads go once no other id needs them (SPADE's tar is shared)
    assert (cache / "downloads" / group).exists() == (sum(r.group == group for r in RELEASES.values()) > 1)
    if RELEASES[model_id].files[0].url.startswith(server.url("/uc?")):  # a Google Drive file: page, then the file
        assert gets(server, "/uc") == 1 and gets(server, "/download") == 1
    # the resolver finds the cache folder, online and offline, by short id and by Hub id
    assert resolve_model(model_id) == str(folder)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert resolve_model(model_id) == resolve_model(get_checkpoint(model_id).hub_id) == str(folder)
    requests_before = len(server.log)
    reloaded = load(model_id, model_id)
    assert len(server.log) == requests_before
    state, again = model.state_dict(), reloaded.state_dict()
    assert state.keys() == again.keys() and all(torch.equal(state[k], again[k]) for k in state)


def test_spade_ids_share_one_download_deleted_after_the_last(published, server, cache, monkeypatch) -> None:
    serve(server, monkeypatch, "spade-ade20k", published["spade-ade20k"])
    downloads = cache / "downloads" / RELEASES["spade-ade20k"].group
    channels = {}
    for i, model_id in enumerate(("spade-ade20k", "spade-cityscapes", "spade-coco-stuff")):
        folder = fetch.fetch_release(model_id, progress=False)
        channels[model_id] = load(model_id, folder).config.semantic_nc
        assert downloads.exists() == (i < 2)  # kept while another SPADE id still needs it
    assert gets(server, "/download") == 1
    # each id converted its own folder of the tar, with its own preset's label channels
    assert channels == {model_id: SPADEConfig.for_dataset(RELEASES[model_id].options[1]).semantic_nc
                        for model_id in channels}
    assert len(set(channels.values())) == 3


# ---------------------------------------------------------------------------------------------------- transports
def test_google_drive_confirmation_page_is_followed(server, cache, tmp_path) -> None:
    data = b"weights" * 1000
    url = server.add_drive_file("1AbCdEf", data)
    assert download_file(url, tmp_path / "file.bin", progress=False).read_bytes() == data
    page, file = server.log
    assert urlsplit(page.path).path == "/uc"
    query = urlsplit(file.path).query
    assert urlsplit(file.path).path == "/download" and "confirm=t" in query and "uuid=" in query


def test_a_web_page_instead_of_the_file_is_a_clear_error(server, cache, tmp_path) -> None:
    url = server.add_page("/signin", "<html><body><p>Sign in to continue</p></body></html>")
    with pytest.raises(DownloadError, match=r"returned a web page instead of the file.*--url"):
        download_file(url, tmp_path / "file.bin", progress=False)
    assert not list(tmp_path.iterdir())


def test_dropbox_share_link_and_redirect(published, server, cache, monkeypatch) -> None:
    assert download_module._direct_url("https://www.dropbox.com/s/abc/checkpoints.tar.gz?dl=0").endswith("dl=1")
    serve(server, monkeypatch, "spade-ade20k", published["spade-ade20k"])
    content = server.add("/content/abc/checkpoints.tar.gz", published["spade-ade20k"]["checkpoints.tar.gz"])
    link = server.add_redirect("/s/abc/checkpoints.tar.gz", content)
    folder = fetch.fetch_release("spade-ade20k", url=link + "?dl=1", progress=False)
    assert load("spade-ade20k", folder).config.semantic_nc == 151
    assert [urlsplit(r.path).path for r in server.log] == ["/s/abc/checkpoints.tar.gz",
                                                           "/content/abc/checkpoints.tar.gz"]


def test_failing_link_falls_back_to_the_published_mirror(published, server, cache, monkeypatch) -> None:
    model_id = "pix2pixhd-cityscapes-1024p"
    published_file = RELEASES[model_id].files[0]
    primary, mirror = (_DRIVE_FILE.match(url)[1] for url in (published_file.url, *published_file.mirrors))
    serve(server, monkeypatch, model_id, published[model_id])
    del server.drive[primary]  # the current link answers 404; the README's previous link still works
    folder = fetch.fetch_release(model_id, progress=False)
    assert load(model_id, folder).config.generator_type == "local"
    assert [urlsplit(r.path).query.split("&")[0] for r in server.log if urlsplit(r.path).path == "/uc"] == [
        f"id={primary}", f"id={mirror}"]


def test_interrupted_download_resumes_with_a_range_request(published, server, cache, monkeypatch) -> None:
    serve(server, monkeypatch, "spade-ade20k", published["spade-ade20k"])
    size = len(published["spade-ade20k"]["checkpoints.tar.gz"])
    cut = 3_500_000
    server.cut_once("/download", cut)
    with pytest.raises(fetch.ReleaseError, match="spade-ade20k: the connection broke.*resume"):
        fetch.fetch_release("spade-ade20k", progress=False)
    part = cache / "downloads" / "checkpoints.tar.gz" / "checkpoints.tar.gz.part"
    kept = part.stat().st_size  # whole chunks received before the break
    assert 0 < kept <= cut < size
    assert_clean(cache, "spade-ade20k")
    assert fetch.cached_model_folder("spade-ade20k") is None
    folder = fetch.fetch_release("spade-ade20k", progress=False)
    first, second = server.requests_for("/download")
    assert "Range" not in first.headers and second.headers["Range"] == f"bytes={kept}-"
    assert load("spade-ade20k", folder).config.semantic_nc == 151
    record = (folder / fetch.MARKER_FILE).read_text()
    assert hashlib.sha256(published["spade-ade20k"]["checkpoints.tar.gz"]).hexdigest() in record


def test_server_without_ranges_restarts_the_interrupted_download(published, server, cache, monkeypatch) -> None:
    serve(server, monkeypatch, "spade-ade20k", published["spade-ade20k"])
    server.ignore_ranges = True
    server.cut_once("/download", 3_500_000)
    with pytest.raises(fetch.ReleaseError, match="resume"):
        fetch.fetch_release("spade-ade20k", progress=False)
    folder = fetch.fetch_release("spade-ade20k", progress=False)
    assert "Range" in server.requests_for("/download")[1].headers  # asked, got the whole file, started over
    record = (folder / fetch.MARKER_FILE).read_text()
    assert hashlib.sha256(published["spade-ade20k"]["checkpoints.tar.gz"]).hexdigest() in record


def test_a_part_file_as_long_as_the_file_is_fetched_again(server, cache, tmp_path) -> None:
    """A download killed after its last byte but before the rename leaves a full-length .part: the server answers
    its Range request with 416, and the file is fetched whole instead of failing on every retry."""
    data = bytes(range(256)) * 64
    url = server.add("/files/weights.bin", data)
    (tmp_path / "weights.bin.part").write_bytes(data[::-1])
    assert download_file(url, tmp_path / "weights.bin", progress=False).read_bytes() == data
    first, second = server.requests_for("/files/weights.bin")
    assert first.headers["Range"] == f"bytes={len(data)}-" and "Range" not in second.headers
    assert sorted(p.name for p in tmp_path.iterdir()) == ["weights.bin"]


# ---------------------------------------------------------------------------------------------------- bad files
def _bad_spade_tar(kind: str, tmp_path: Path) -> bytes:
    if kind == "corrupt archive":
        return b"\x1f\x8b\x08\x00 this is not the published gzip stream " * 1000
    if kind == "wrong file":  # a readable archive without the expected folder
        return tar_gz({"pretrained/latest_net_G.pth": b"x"})
    # a checkpoint with other shapes: Cityscapes weights (36 channels) where the ADE20K ones (151) belong
    return tar_gz({"ade20k_pretrained/latest_net_G.pth": spade_generator_bytes("cityscapes", tmp_path)})


@pytest.mark.parametrize("kind, message", [
    ("corrupt archive", r"checkpoints\.tar\.gz is not a readable archive"),
    ("wrong file", r"checkpoints\.tar\.gz does not contain ade20k_pretrained \(it holds: pretrained\)"),
    ("other shapes", (r"spade-ade20k: the files from .* hold a checkpoint that does not convert .*take 36 semantic "
                      r"channels but preset 'ade20k' gives 151")),
], ids=["corrupt archive", "wrong file", "other shapes"])
def test_bad_release_files_give_clear_errors_and_are_deleted(kind, message, published, server, cache, monkeypatch,
                                                             tmp_path) -> None:
    serve(server, monkeypatch, "spade-ade20k", {"checkpoints.tar.gz": _bad_spade_tar(kind, tmp_path)})
    with pytest.raises(fetch.CorruptReleaseError, match=message):
        fetch.fetch_release("spade-ade20k", progress=False)
    assert_clean(cache, "spade-ade20k")
    assert not (cache / "downloads" / "checkpoints.tar.gz").exists()  # not reused by the next call
    # the next call downloads the (now good) file again and succeeds
    serve(server, monkeypatch, "spade-ade20k", published["spade-ade20k"])
    assert fetch.fetch_release("spade-ade20k", progress=False) == cache / "models" / "spade-ade20k"
    assert gets(server, "/download") == 2


def test_hash_mismatch_is_refused(published, server, cache, monkeypatch) -> None:
    model_id = "crn-cityscapes-256p"
    serve(server, monkeypatch, model_id, published[model_id], keep_hashes=True)  # the real .index's SHA-256
    published_hash = RELEASES[model_id].files[1].sha256
    with pytest.raises(fetch.ReleaseError, match=rf"SHA-256 [0-9a-f]{{16}}\.\.\. does not start with {published_hash}"
                                                 r".*not the published one"):
        fetch.fetch_release(model_id, progress=False)
    assert_clean(cache, model_id)
    downloads = cache / "downloads" / RELEASES[model_id].group / "result_256p"
    assert not list(downloads.glob("model.ckpt.index*"))  # the bad file (and its .part) is gone


def test_size_check_and_hash_prefix_from_the_file_name(server, cache, tmp_path) -> None:
    data = b"0123456789" * 100
    url = server.add("/models/blob.bin", data)
    with pytest.raises(DownloadError, match="got 1,000 bytes, expected 999"):
        download_file(url, tmp_path / "blob.bin", expected_size=999, progress=False)
    prefix = hashlib.sha256(data).hexdigest()[:8]
    assert download_module.hash_prefix_from_filename(f"vgg19-{prefix}.pth") == prefix
    assert download_file(url, tmp_path / f"vgg19-{prefix}.pth", progress=False).read_bytes() == data
    with pytest.raises(DownloadError, match="does not start with 00000000"):
        download_file(url, tmp_path / "vgg19-00000000.pth", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"vgg19-{prefix}.pth"]


def test_http_404_names_the_url_and_the_url_option(server, cache, monkeypatch) -> None:
    serve(server, monkeypatch, "pix2pix-facades", {"facades_label2photo.pth": b""})
    server.blobs.clear()
    with pytest.raises(fetch.ReleaseError, match=r"pix2pix-facades: .*facades_label2photo\.pth answered HTTP 404.*"
                                                 r"labelsynth download pix2pix-facades --url"):
        fetch.fetch_release("pix2pix-facades", progress=False)
    assert_clean(cache, "pix2pix-facades")


# ---------------------------------------------------------------------------------------------------- full disk
def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


class _FullDiskFile:
    """A file whose writes fail with ENOSPC once `budget` bytes are written."""

    def __init__(self, handle, budget: int) -> None:
        self._handle, self._budget = handle, budget

    def write(self, data: bytes) -> int:
        if len(data) > self._budget:
            raise OSError(errno.ENOSPC, "No space left on device")
        self._budget -= len(data)
        return self._handle.write(data)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self._handle.close()


@pytest.mark.parametrize("where", ["download", "mirror copy", "unpack", "place"])
def test_full_disk_gives_a_clear_error_and_a_clean_cache(where, published, server, cache, monkeypatch,
                                                         tmp_path) -> None:
    model_id = "crn-cityscapes-256p" if where == "place" else "spade-ade20k"
    serve(server, monkeypatch, model_id, published[model_id])
    url = None
    if where == "download":
        # the wrapper closes the real file when download.py's `with` block ends
        monkeypatch.setattr(download_module, "open", raising=False,
                            value=lambda path, mode: _FullDiskFile(open(path, mode), 2_000_000))  # noqa: SIM115
    elif where == "mirror copy":
        url = str(tmp_path / "checkpoints.tar.gz")
        Path(url).write_bytes(published[model_id]["checkpoints.tar.gz"])
        monkeypatch.setattr(download_module.shutil, "copyfile", _no_space)
    elif where == "unpack":
        monkeypatch.setattr(tarfile.TarFile, "extractall", _no_space)
    else:  # the downloaded files are linked into staging, or copied where links are not possible
        monkeypatch.setattr(fetch.os, "link", lambda *a: _raise(OSError(errno.EXDEV, "cross-device link")))
        monkeypatch.setattr(fetch.shutil, "copyfile", _no_space)
    with pytest.raises(fetch.ReleaseError, match=r"no space left on the device while .*HF_HOME=<a larger disk>"):
        fetch.fetch_release(model_id, url=url, progress=False)
    assert_clean(cache, model_id)
    assert not list((cache / "downloads").rglob("*.part"))


def _raise(err: Exception):
    raise err


# ---------------------------------------------------------------------------------------------------- mirrors, offline
def test_url_option_takes_a_local_file_also_offline(published, server, cache, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    local = tmp_path / "facades_label2photo.pth"
    local.write_bytes(published["pix2pix-facades"]["facades_label2photo.pth"])
    folder = fetch.fetch_release("pix2pix-facades", url=str(local), progress=False)
    assert load("pix2pix-facades", "pix2pix-facades").config.ngf == 4
    assert local.is_file() and folder == cache / "models" / "pix2pix-facades"
    # a file:// URL too, for a CoCosNet-style Drive folder: the folder downloaded by hand
    members = tmp_path / "ade20k"
    members.mkdir()
    for name, data in published["cocosnet-ade20k"].items():
        (members / Path(name).name).write_bytes(data)
    assert fetch.fetch_release("cocosnet-ade20k", url=str(members), progress=False).is_dir()
    spade_tar = tmp_path / "mirror" / "checkpoints.tar.gz"
    spade_tar.parent.mkdir()
    spade_tar.write_bytes(published["spade-ade20k"]["checkpoints.tar.gz"])
    assert fetch.fetch_release("spade-ade20k", url=spade_tar.as_uri(), progress=False).is_dir()
    # a release of several files (CRN's .data + .index): the folder holding them, each still hash-checked
    serve(server, monkeypatch, "crn-cityscapes-256p", published["crn-cityscapes-256p"])  # the tiny .index's hash
    crn = tmp_path / "result_256p"
    crn.mkdir()
    for name, data in published["crn-cityscapes-256p"].items():
        (crn / Path(name).name).write_bytes(data)
    assert fetch.fetch_release("crn-cityscapes-256p", url=str(crn), progress=False).is_dir()
    (crn / "model.ckpt.index").write_bytes(b"not the published index")
    with pytest.raises(fetch.ReleaseError, match="model.ckpt.index: SHA-256 .* does not start with"):
        fetch.fetch_release("crn-cityscapes-512p", url=str(crn), progress=False)
    assert server.log == []


@pytest.mark.parametrize("switch", ["HF_HUB_OFFLINE", "LABELSYNTH_OFFLINE"])
def test_offline_error_names_the_id_file_source_and_url_option(switch, server, cache, monkeypatch) -> None:
    monkeypatch.setenv(switch, "1")
    source = RELEASES["spade-ade20k"].url
    for call in (lambda: resolve_model("spade-ade20k"), lambda: load("spade-ade20k", "labelsynth/spade-ade20k")):
        with pytest.raises(ModelNotAvailableError) as info:
            call()
        message = str(info.value)
        for part in ("spade-ade20k", "checkpoints.tar.gz", source, "labelsynth download spade-ade20k --url"):
            assert part in message, part
    with pytest.raises(fetch.ReleaseError, match="downloads are disabled"):
        fetch.fetch_release("spade-ade20k", progress=False)
    assert server.log == [] and not (cache / "models" / "spade-ade20k").exists()


def test_resolver_online_tries_the_hub_then_fetches_the_release(published, server, cache, monkeypatch) -> None:
    from huggingface_hub import constants

    # huggingface_hub reads HF_HUB_OFFLINE and HF_ENDPOINT at import: point its constants at the loopback server,
    # which answers "repository not found" like the Hub for an id that was never pushed
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", server.base)
    serve(server, monkeypatch, "pix2pix-facades", published["pix2pix-facades"])
    assert resolve_model("pix2pix-facades") == str(cache / "models" / "pix2pix-facades")
    hub, *_, release = [urlsplit(r.path).path for r in server.log]
    assert hub.startswith("/api/models/labelsynth/pix2pix-facades")  # asked the Hub first: no such repo
    assert release == "/pix2pix/models-pytorch/facades_label2photo.pth"


# ---------------------------------------------------------------------------------------------------- CLI, pipeline
def test_cli_download_models_pipeline_and_generate(published, server, cache, monkeypatch, capsys, tmp_path) -> None:
    from labelsynth.cli import main
    from labelsynth.registration import pipeline

    model_id = "crn-cityscapes-256p"
    serve(server, monkeypatch, model_id, published[model_id])
    assert main(["download", model_id, "--no-progress"]) == 0
    out, err = capsys.readouterr()
    assert RELEASES[model_id].license in err and str(cache / "models" / model_id) in out
    assert main(["models"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith(model_id + " "))
    assert re.search(r"cached \(\d+\.\d MiB\)", row)

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    label = np.full((16, 32), 7, dtype=np.uint8)  # Cityscapes labelIds: road, with a block of cars
    label[4:12, 8:20] = 26
    image = pipeline("label-to-image", model=model_id)(Image.fromarray(label, mode="L"))
    assert image.size == (32, 16)
    Image.fromarray(label, mode="L").save(tmp_path / "label.png")
    assert main(["generate", "--model", model_id, "--label", str(tmp_path / "label.png"),
                 "-o", str(tmp_path / "out.png")]) == 0
    assert Image.open(tmp_path / "out.png").size == (32, 16)

    # --url with a local file (offline), then --force converts again from it
    local = tmp_path / "facades_label2photo.pth"
    local.write_bytes(published["pix2pix-facades"]["facades_label2photo.pth"])
    capsys.readouterr()
    assert main(["download", "pix2pix-facades", "--url", str(local), "--no-progress"]) == 0
    assert str(cache / "models" / "pix2pix-facades") in capsys.readouterr().out
    assert main(["download", "pix2pix-facades", "--url", str(local), "--force", "--no-progress"]) == 0
    facade = np.zeros((256, 256, 3), dtype=np.uint8)  # a colour label map of the facades palette's first class
    assert pipeline("label-to-image", model="pix2pix-facades")(Image.fromarray(facade)).size == (256, 256)


def test_cli_download_network_error_is_one_line(server, cache, monkeypatch, capsys) -> None:
    from labelsynth.cli import main

    serve(server, monkeypatch, "pix2pix-facades", {"facades_label2photo.pth": b""})
    server.blobs.clear()  # the link answers 404
    assert main(["download", "pix2pix-facades", "--no-progress"]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("labelsynth: error:")]
    assert len(lines) == 1 and "HTTP 404" in lines[0] and "--url" in lines[0]
    assert_clean(cache, "pix2pix-facades")


@pytest.mark.parametrize("argv, message", [
    (["download", "spade-ade20k"], "spade-ade20k: not in the cache"),  # offline, not cached
    (["download", "spade-cityscapes-tiny"], "built into labelsynth: nothing to download"),
    (["download", "no-such-model"], "no-such-model"),
    (["download"], "name at least one model id"),
    (["download", "--all", "spade-ade20k"], "give model ids or --all, not both"),
    (["download", "spade-ade20k", "pix2pix-facades", "--url", "x.pth"], "name exactly one model id"),
    (["download", "pix2pix-facades", "--url", "/no/such/file.pth"], "/no/such/file.pth: no such file"),
])
def test_cli_download_errors_are_one_line(argv, message, cache, monkeypatch, capsys) -> None:
    from labelsynth.cli import main

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("labelsynth: error:")]
    assert len(lines) == 1 and message in lines[0], err
    assert not (cache / "models").exists() or not any((cache / "models").iterdir())


def test_labelsynth_cache_moves_the_cache(published, server, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("LABELSYNTH_CACHE", str(tmp_path / "elsewhere"))
    serve(server, monkeypatch, "crn-gta-256p", published["crn-gta-256p"])
    assert fetch.fetch_release("crn-gta-256p", progress=False) == tmp_path / "elsewhere" / "models" / "crn-gta-256p"
    assert not (tmp_path / "elsewhere" / "downloads" / RELEASES["crn-gta-256p"].group).exists()
