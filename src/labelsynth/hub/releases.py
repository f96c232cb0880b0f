"""Where the original authors publish each registered checkpoint, and how to turn it into a labelsynth folder.

Every link below is quoted from the original repository's README or download script (named in ``published_in``);
none of these files is on the Hub, and most are on Google Drive. A `Release` says which files to fetch, where they
land in one folder (``path``: archives are unpacked there, plain files saved under that name), which file or folder
of that tree the family's converter reads (``source``) and with which options. `labelsynth.hub.fetch` does the work.

Sizes are recorded only where the publisher states an exact one; hashes only where the file name carries one or the
file is committed in a repository (CRN's ``.index`` files). The converter's strict key and shape checks are the
integrity check of the weights themselves.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RELEASES", "Release", "ReleaseFile", "get_release"]


@dataclass(frozen=True)
class ReleaseFile:
    """One published file.

    Attributes:
        url: the link as published (Google Drive / Dropbox share links are turned into direct ones when fetched).
        path: where it goes in the release folder; archives (``.tar.gz``, ``.zip``) are unpacked into that folder
            instead. A Google Drive folder link (``/drive/folders/``) gives the folder's files named in `members`.
        sha256: the file's full SHA-256 or a prefix of it, when published.
        size: exact size in bytes, when published.
        members: for a Drive folder, the file names to take from it.
        mirrors: other published links of the same file, tried in order when `url` fails.
    """

    url: str
    path: str
    sha256: str | None = None
    size: int | None = None
    members: tuple[str, ...] = ()
    mirrors: tuple[str, ...] = ()


@dataclass(frozen=True)
class Release:
    """An official release of one registered checkpoint.

    Attributes:
        files: what to fetch (several ids may share a file: SPADE's three presets come in one tar).
        published_in: where the links are published (repository and file).
        converter: the ``labelsynth convert`` architecture.
        source: the converter's input, relative to the release folder.
        options: the converter's options (the preset).
        license: the terms the weights are released under, as their authors state them.
        approximate_size: a human-readable size for messages (the publisher's figure, or "size not published").
    """

    files: tuple[ReleaseFile, ...]
    published_in: str
    converter: str
    source: str
    options: tuple[str, ...]
    license: str
    approximate_size: str = "size not published"

    @property
    def url(self) -> str:
        """The first file's link (the one to name in messages)."""
        return self.files[0].url

    @property
    def group(self) -> str:
        """Name of the download folder; releases that share their first file share it."""
        return self.files[0].path.replace("/", "_")


_NC = "CC BY-NC-SA 4.0 (non-commercial research use only; commercial use needs the authors' permission)"

_SPADE_TAR = ReleaseFile("https://drive.google.com/file/d/12gvlTbMvUcJewQlSEaZdeb2CdOB-b8kQ/view?usp=sharing",
                         "checkpoints.tar.gz")


def _spade(folder: str, preset: str) -> Release:
    return Release(files=(_SPADE_TAR,), published_in="README.md of https://github.com/NVlabs/SPADE",
                   converter="spade", source=folder, options=("--preset", preset), license=_NC)


def _crn(folder: str, preset: str, size: str) -> Release:
    # download_models.py fetches the .data and .meta files from cqf.io; the .index and `checkpoint` files are
    # committed in the repository, so their hashes are known.
    base = f"https://cqf.io/data/Tensorflow_models/{folder}"
    raw = f"https://raw.githubusercontent.com/CQFIO/PhotographicImageSynthesis/master/{folder}"
    return Release(
        files=(ReleaseFile(f"{base}/model.ckpt.data-00000-of-00001", f"{folder}/model.ckpt.data-00000-of-00001"),
               ReleaseFile(f"{raw}/model.ckpt.index", f"{folder}/model.ckpt.index", sha256=_CRN_INDEX_SHA256[folder])),
        published_in="download_models.py (data) and the repository tree (index) of "
                     "https://github.com/CQFIO/PhotographicImageSynthesis",
        converter="crn", source=folder, options=("--preset", preset),
        license="MIT (the repository's README)", approximate_size=size,
    )


_CRN_INDEX_SHA256 = {
    "result_256p": "b06e81cb7846af24832ffaa23ac1f9df0479dcacb1dbe3d7b8ea8035aedfb0c8",
    "result_512p": "2b926d67cea1ba6413fb75e687e9becc94a6e670fbaa403c7307ad1bb7b7b08d",
    "result_1024p": "137ff3e9bb5306074730b26397900f27fb6c2d0ff2c8601a1bef8cf96664f40e",
    "result_GTA": "efcddb56d6beb7ecf338fce01635697875c58feeae6dca51aa4d6747fd76bab2",
}

# OASIS publishes one shared Dropbox folder of zips (one per model, plus the FID Inception weights); no per-zip link.
# Dropbox serves a shared folder as one zip, in which each model is a zip again (unpacked in turn by the fetcher).
# Its COCO-Stuff model is announced in the README as "to be uploaded", so it is not registered.
_OASIS_FOLDER = ReleaseFile("https://www.dropbox.com/sh/nf6of02pyk84zjg/AAC8hnnj0T_MAiPx3tzdAyiWa?dl=0",
                            "oasis_checkpoints.zip")


def _oasis(folder: str, preset: str) -> Release:
    return Release(files=(_OASIS_FOLDER,), published_in="README.md of https://github.com/boschresearch/OASIS",
                   converter="oasis", source=folder, options=("--preset", preset),
                   license="AGPL-3.0 (the repository's licence; the authors state no separate terms for the weights)")


# GAN Compression publishes its models on the Hub (scripts/download_model.py); the code is BSD-style, the GauGAN
# student was distilled from NVIDIA's SPADE teacher, whose code and weights are CC BY-NC-SA 4.0.
_GAN_COMPRESSION_HUB = "https://huggingface.co/mit-han-lab/gan-compression/resolve/main"

RELEASES: dict[str, Release] = {
    "spade-ade20k": _spade("ade20k_pretrained", "ade20k"),
    "spade-cityscapes": _spade("cityscapes_pretrained", "cityscapes"),
    "spade-coco-stuff": _spade("coco_pretrained", "coco-stuff"),
    "gaugan-compressed-cityscapes": Release(
        files=(ReleaseFile(f"{_GAN_COMPRESSION_HUB}/pretrained/gaugan/cityscapes/compressed/latest_net_G.pth",
                           "gaugan_compressed_cityscapes/latest_net_G.pth"),),
        published_in="scripts/download_model.py of https://github.com/mit-han-lab/gan-compression",
        converter="mobilespade", source="gaugan_compressed_cityscapes/latest_net_G.pth",
        options=("--preset", "cityscapes-compressed"),
        license="BSD-style code licence (Copyright (c) 2020 Muyang Li, Ji Lin, Yaoyao Ding, Zhijian Liu, Jun-Yan Zhu, "
                "Song Han); no separate terms for the weights, which were distilled from NVIDIA's SPADE teacher "
                "(CC BY-NC-SA 4.0): treat them as non-commercial research use only",
    ),
    "pix2pix-facades": Release(
        files=(ReleaseFile("http://efrosgans.eecs.berkeley.edu/pix2pix/models-pytorch/facades_label2photo.pth",
                           "facades_label2photo.pth"),),
        published_in="scripts/download_pix2pix_model.sh of https://github.com/junyanz/pytorch-CycleGAN-and-pix2pix",
        converter="pix2pix", source="facades_label2photo.pth", options=("--preset", "facades"),
        license="BSD (the repository's licence; Copyright (c) 2017 Jun-Yan Zhu and Taesung Park)",
    ),
    "pix2pixhd-cityscapes-1024p": Release(
        files=(ReleaseFile(
            "https://drive.google.com/file/d/1OR-2aEPHOxZKuoOV34DvQxreqGCSLcW9/view?usp=drive_link",
            "label2city_1024p/latest_net_G.pth",
            # the link of the README before its 2024-09-30 update
            mirrors=("https://drive.google.com/file/d/1h9SykUnuZul7J3Nbms2QGH1wa85nbN2-/view?usp=sharing",),
        ),),
        published_in="README.md of https://github.com/NVIDIA/pix2pixHD",
        converter="pix2pixhd", source="label2city_1024p", options=("--preset", "cityscapes-1024p"),
        license="BSD (NVIDIA's licence in the repository's LICENSE.txt)",
    ),
    "sean-celebamask-hq": Release(
        files=(ReleaseFile("https://drive.google.com/file/d/1UMgKGdVqlulfgOBV4Z0ajEwPdgt3_EDK/view?usp=sharing",
                           "CelebA-HQ_pretrained.tar.gz"),),
        published_in="README.md of https://github.com/ZPdesu/SEAN",
        converter="sean", source="CelebA-HQ_pretrained", options=("--preset", "celebamask-hq"), license=_NC,
    ),
    "crn-cityscapes-256p": _crn("result_256p", "cityscapes", "about 1.2 GB"),
    "crn-cityscapes-512p": _crn("result_512p", "cityscapes", "about 1.2 GB"),
    "crn-cityscapes-1024p": _crn("result_1024p", "cityscapes", "about 500 MB"),
    "crn-gta-256p": _crn("result_GTA", "gta", "about 1.2 GB"),
    "oasis-ade20k": _oasis("oasis_ade20k_pretrained", "ade20k"),
    "oasis-cityscapes": _oasis("oasis_cityscapes_pretrained", "cityscapes"),
    "cocosnet-ade20k": Release(
        files=(ReleaseFile("https://drive.google.com/drive/folders/1BEBBENbEr9tutZsyGGc3REUuuOYqf6M3?usp=sharing",
                           "ade20k", members=("latest_net_G.pth", "latest_net_Corr.pth")),),
        published_in="README.md of https://github.com/microsoft/CoCosNet",
        converter="cocosnet", source="ade20k", options=("--preset", "ade20k"),
        license="MIT (the repository's licence)",
    ),
}


def get_release(model_id: str) -> Release:
    """The release of a registered id (short id or Hub id).

    Raises:
        KeyError: no official release is recorded for it (the message lists the ids that have one).
    """
    from .registry import get_checkpoint

    short_id = get_checkpoint(model_id).id
    if short_id not in RELEASES:
        raise KeyError(f"{model_id!r} has no official release to download (ids with one: {', '.join(RELEASES)})")
    return RELEASES[short_id]
