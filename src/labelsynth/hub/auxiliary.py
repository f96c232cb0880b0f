"""Standard auxiliary weights that losses and metrics need: torchvision's VGG19 and FID's Inception-v3.

Both files carry the first 8 hex digits of their SHA-256 in their names (torch hub's convention), which
`labelsynth.hub.download.download_file` checks. They are kept where torchvision and pytorch-fid keep them,
``<torch hub dir>/checkpoints`` (``$TORCH_HOME/hub/checkpoints``), so an earlier download by either is reused.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .download import download_file

__all__ = ["FID_INCEPTION", "VGG19_IMAGENET", "AuxiliaryWeights", "auxiliary_weights_path", "fetch_auxiliary_weights"]


@dataclass(frozen=True)
class AuxiliaryWeights:
    """A published weights file: where it comes from and under which terms."""

    url: str
    published_in: str
    license: str

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


VGG19_IMAGENET = AuxiliaryWeights(
    url="https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
    published_in="torchvision (torchvision.models.VGG19_Weights.IMAGENET1K_V1)",
    license="BSD-3-Clause (torchvision); trained on ImageNet",
)
FID_INCEPTION = AuxiliaryWeights(
    url="https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth",
    published_in="pytorch-fid (FID_WEIGHTS_URL in src/pytorch_fid/inception.py), ported from TensorFlow's "
                 "inception-2015-12-05 graph",
    license="Apache-2.0 (pytorch-fid and the TensorFlow Inception graph)",
)


def _hub_checkpoints_dir() -> Path:
    """``torch.hub.get_dir()/checkpoints`` without importing torch: ``$TORCH_HOME`` or ``$XDG_CACHE_HOME/torch``."""
    torch_home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.join("~", ".cache")), "torch")
    return Path(torch_home).expanduser() / "hub" / "checkpoints"


def auxiliary_weights_path(weights: AuxiliaryWeights) -> Path:
    """Where the file is (or will be) cached."""
    return _hub_checkpoints_dir() / weights.filename


def fetch_auxiliary_weights(weights: AuxiliaryWeights, *, progress: bool = True) -> Path:
    """The cached file, downloaded and hash-checked first when it is not there.

    Raises:
        labelsynth.hub.download.OfflineError: not cached and downloads are disabled.
        labelsynth.hub.download.DownloadError: the download failed or the file failed its hash check.
    """
    from filelock import FileLock

    path = auxiliary_weights_path(weights)
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):  # several training processes may ask at once
        if path.is_file():
            return path
        return download_file(weights.url, path, progress=progress)
