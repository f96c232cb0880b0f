"""Standard auxiliary weights (torchvision's VGG19, FID's Inception) fetched on first use, hash-checked, cached.

A loopback HTTP server (127.0.0.1, standard library) stands in for download.pytorch.org / GitHub releases. The real
files cannot be served (no network), so the tests serve synthetic files under names whose hash prefix is computed
from their bytes, the convention the real names follow.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch

from labelsynth.hub import auxiliary
from labelsynth.hub.download import DownloadError, OfflineError
from labelsynth.layers.vgg import VGG19
from labelsynth.metrics import inception
from labelsynth.training import scripts


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep pytest output clean
        pass


@pytest.fixture
def served(tmp_path: Path, monkeypatch):
    """(folder served at the URL, base URL); downloads on, a private torch hub cache."""
    root = tmp_path / "www"
    root.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _publish(root: Path, stem: str, payload: bytes, wrong_hash: bool = False) -> str:
    """Save `payload` as `<stem>-<sha256 prefix>.pth` (a wrong prefix when asked); returns the file name."""
    prefix = hashlib.sha256(payload).hexdigest()[:8]
    if wrong_hash:
        prefix = f"{(int(prefix, 16) + 1) % 16**8:08x}"
    name = f"{stem}-{prefix}.pth"
    (root / name).write_bytes(payload)
    return name


def _vgg_features_file() -> bytes:
    """A torchvision-layout VGG19 state dict (features only, as `load_vgg19` needs), random weights."""
    buffer = io.BytesIO()
    torch.save(VGG19().state_dict(), buffer)
    return buffer.getvalue()


def test_vgg_weights_are_fetched_once_checked_and_used_by_the_trainers(served, monkeypatch, capsys) -> None:
    root, base = served
    payload = _vgg_features_file()
    name = _publish(root, "vgg19", payload)
    weights = dataclasses.replace(auxiliary.VGG19_IMAGENET, url=f"{base}/{name}")
    monkeypatch.setattr(auxiliary, "VGG19_IMAGENET", weights)

    vgg = scripts.perceptual_vgg(None, 10.0)
    assert isinstance(vgg, VGG19)
    cached = auxiliary.auxiliary_weights_path(weights)
    assert cached.read_bytes() == payload and cached.parent.name == "checkpoints"
    assert "VGG perceptual loss: on" in capsys.readouterr().err
    (root / name).unlink()  # a second use must not need the server
    assert scripts.perceptual_vgg(None, 10.0) is not None


def test_a_file_that_fails_its_hash_is_refused_and_not_cached(served, monkeypatch) -> None:
    root, base = served
    name = _publish(root, "vgg19", b"not the published bytes", wrong_hash=True)
    weights = dataclasses.replace(auxiliary.VGG19_IMAGENET, url=f"{base}/{name}")
    with pytest.raises(DownloadError, match="SHA-256 .* does not start with"):
        auxiliary.fetch_auxiliary_weights(weights, progress=False)
    folder = auxiliary.auxiliary_weights_path(weights).parent
    assert [p.name for p in folder.iterdir() if not p.name.endswith(".lock")] == []


def test_trainers_say_when_the_vgg_loss_is_off(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    assert scripts.perceptual_vgg(None, 10.0) is None
    err = capsys.readouterr().err
    assert "VGG perceptual loss: OFF" in err and "vgg19-dcbb9e9d.pth" in err and "--lambda_vgg 0" in err
    assert scripts.perceptual_vgg(None, 0.0) is None
    assert "off (--lambda_vgg 0)" in capsys.readouterr().err


def test_fid_inception_weights_are_found_downloaded_or_explained(served, monkeypatch) -> None:
    root, base = served
    payload = b"stand-in for the Inception state dict"
    name = _publish(root, "pt_inception-2015-12-05", payload)
    monkeypatch.setattr(auxiliary, "FID_INCEPTION", dataclasses.replace(auxiliary.FID_INCEPTION, url=f"{base}/{name}"))
    monkeypatch.delenv(inception.INCEPTION_WEIGHTS_ENV, raising=False)
    assert inception.find_inception_weights(None) is None  # not cached, and no download asked
    path = inception.find_inception_weights(None, download=True)
    assert path.name == name and path.read_bytes() == payload
    assert inception.find_inception_weights(None) == path  # cached now

    monkeypatch.setenv("TORCH_HOME", str(Path(root).parent / "other-torch-home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OfflineError, match="downloads are disabled"):
        inception.find_inception_weights(None, download=True)


def test_evaluate_explains_missing_inception_weights_offline(tmp_path: Path, monkeypatch, capsys) -> None:
    from labelsynth.cli import main

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv(inception.INCEPTION_WEIGHTS_ENV, raising=False)
    labels = Path(__file__).resolve().parents[1]  # any existing folder: the check comes before the data is read
    status = main(["evaluate", "--model", "spade-cityscapes-tiny", "--dataset", str(labels), "--metrics", "fid"])
    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith("labelsynth: error: FID/KID need the Inception weights")
    assert "could not be downloaded" in err and "--random-inception" in err and "Traceback" not in err


def test_published_share_links_become_direct_download_links() -> None:
    """Every registered release link as its authors publish it -> the URL actually requested (no network)."""
    from labelsynth.hub.download import _direct_url
    from labelsynth.hub.releases import RELEASES

    assert _direct_url("https://drive.google.com/file/d/12gvlTbMvUcJewQlSEaZdeb2CdOB-b8kQ/view?usp=sharing") == (
        "https://drive.google.com/uc?id=12gvlTbMvUcJewQlSEaZdeb2CdOB-b8kQ&export=download")
    assert _direct_url("https://www.dropbox.com/sh/nf6of02pyk84zjg/AAC8hnnj0T_MAiPx3tzdAyiWa?dl=0") == (
        "https://www.dropbox.com/sh/nf6of02pyk84zjg/AAC8hnnj0T_MAiPx3tzdAyiWa?dl=1")
    plain = "http://efrosgans.eecs.berkeley.edu/pix2pix/models-pytorch/facades_label2photo.pth"
    assert _direct_url(plain) == plain
    for release in RELEASES.values():
        for file in release.files:
            for url in (file.url, *file.mirrors):
                direct = _direct_url(url)
                if "/drive/folders/" in url:  # folders are listed by gdown, not fetched as one file
                    continue
                if "drive.google.com" in url:
                    assert direct.startswith("https://drive.google.com/uc?id=") and direct.endswith("&export=download")
                elif "dropbox.com" in url:
                    assert direct.endswith("dl=1")
                else:
                    assert direct == url
