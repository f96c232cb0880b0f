"""Synthetic official releases: for every id in `labelsynth.hub.releases.RELEASES`, the published files in that
release's exact layout (file and folder names, archive members) holding tiny checkpoints in each family's ORIGINAL
key layout.

The original-layout writers are the converter tests' own, from `tests/original_checkpoints.py` (MobileSPADE's still
lives in its test file, which is loaded by path); CRN's release files are the tiny TensorFlow bundle of
``tests/fixtures/crn_tiny_tf`` (written by TensorFlow from the original graph). Widths are small (ngf 4-8) so the
whole set is a few MB; everything the release's converter options (the preset) fix -- label channels, generator
type, number of local enhancers -- is the preset's, everything the converter reads from the weights is tiny.

`published_files(model_id, workdir)` returns ``{file.path (or "<folder>/<member>" for a Drive folder): bytes}``.
"""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import torch
from original_checkpoints import (
    pix2pix_original_generator,
    pix2pixhd_original_layout,
    sean_original_layout,
    tiny_oasis_config,
    write_cocosnet_checkpoint,
    write_oasis_checkpoint,
    write_spade_checkpoint,
)

from labelsynth.hub.releases import RELEASES

TESTS = Path(__file__).resolve().parents[1]
CRN_TINY = TESTS / "fixtures" / "crn_tiny_tf"

__all__ = ["CRN_TINY", "published_files", "spade_generator_bytes", "tar_gz"]


def tar_gz(members: dict[str, bytes]) -> bytes:
    """A .tar.gz holding `members` (name -> bytes) as regular files."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _saved(state: dict[str, torch.Tensor]) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def spade_generator_bytes(preset: str, workdir: Path, seed: int = 0) -> bytes:
    """``latest_net_G.pth`` of a tiny SPADE (ngf 4, 8 hidden SPADE channels) with the label space of `preset`."""
    from labelsynth import SPADEConfig, SPADEModel

    torch.manual_seed(seed)
    model = SPADEModel(SPADEConfig.for_dataset(preset, ngf=4, spade_hidden_nc=8))
    folder = workdir / f"spade-{preset}-{seed}"
    write_spade_checkpoint(folder, model)
    return (folder / "latest_net_G.pth").read_bytes()


def _spade_tar(workdir: Path) -> bytes:
    # The shared checkpoints.tar.gz: one folder per preset, as the SPADE README's archive lays them out.
    folders = {"ade20k_pretrained": "ade20k", "cityscapes_pretrained": "cityscapes", "coco_pretrained": "coco-stuff"}
    return tar_gz({f"{folder}/latest_net_G.pth": spade_generator_bytes(preset, workdir)
                   for folder, preset in folders.items()})


def _pix2pix(workdir: Path) -> bytes:
    from labelsynth import Pix2PixConfig, Pix2PixModel

    model = Pix2PixModel(Pix2PixConfig.for_dataset("facades", ngf=4))  # unet_256: 8 levels for 256x256
    return _saved(pix2pix_original_generator(model))


def _pix2pixhd(workdir: Path) -> bytes:
    from labelsynth import Pix2PixHDConfig, Pix2PixHDModel

    config = Pix2PixHDConfig.for_dataset("cityscapes-1024p", ngf=4, n_downsample_global=2, n_blocks_global=1,
                                         n_blocks_local=1)
    generator, _ = pix2pixhd_original_layout(Pix2PixHDModel(config))
    return _saved(generator)


def _sean(workdir: Path) -> bytes:
    from labelsynth import SEANConfig, SEANModel

    config = SEANConfig.for_dataset("celebamask-hq", ngf=4, spade_hidden_nc=8, style_dim=8, style_encoder_ngf=4)
    state = sean_original_layout(SEANModel(config))
    return tar_gz({"CelebA-HQ_pretrained/latest_net_G.pth": _saved(state)})


def zip_bytes(members: dict[str, bytes]) -> bytes:
    """A .zip holding `members` (name -> bytes)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        for name, data in members.items():
            zipped.writestr(name, data)
    return buffer.getvalue()


def _oasis_folder(workdir: Path) -> bytes:
    # Dropbox serves the shared folder as one zip of the per-model zips (each holding <name>/models/best_EMA.pth).
    from labelsynth import OASISModel

    inner = {}
    for name, preset in (("oasis_ade20k_pretrained", "ade20k"), ("oasis_cityscapes_pretrained", "cityscapes")):
        folder = workdir / name
        write_oasis_checkpoint(folder, OASISModel(tiny_oasis_config(preset)))
        inner[f"{name}.zip"] = zip_bytes({f"{name}/{p.relative_to(folder).as_posix()}": p.read_bytes()
                                          for p in sorted(folder.rglob("*")) if p.is_file()})
    return zip_bytes(inner)


def _mobile_spade(workdir: Path) -> bytes:
    # GAN Compression's compressed GauGAN: tiny widths (teacher ngf 4), the preset's Cityscapes label space.
    from original_checkpoints import MOBILE_SPADE_TINY_NGF, tiny_mobile_spade, write_mobile_spade_checkpoint

    path = workdir / "mobile_spade" / "latest_net_G.pth"
    write_mobile_spade_checkpoint(path, tiny_mobile_spade(), MOBILE_SPADE_TINY_NGF)
    return path.read_bytes()


def _cocosnet(workdir: Path) -> dict[str, bytes]:
    from labelsynth import CoCosNetConfig, CoCosNetModel

    folder = workdir / "cocosnet"
    model = CoCosNetModel(CoCosNetConfig.for_dataset("ade20k", ngf=4, spade_hidden_nc=8))
    write_cocosnet_checkpoint(folder, model)
    return {name: (folder / name).read_bytes() for name in ("latest_net_G.pth", "latest_net_Corr.pth")}


def published_files(model_id: str, workdir: Path) -> dict[str, bytes]:
    """The files of `model_id`'s release, keyed by `ReleaseFile.path` (Drive folder members: ``path/member``)."""
    release = RELEASES[model_id]
    workdir.mkdir(parents=True, exist_ok=True)
    family = release.converter
    if family == "spade":
        return {release.files[0].path: _spade_tar(workdir)}
    if family == "pix2pix":
        return {release.files[0].path: _pix2pix(workdir)}
    if family == "pix2pixhd":
        return {release.files[0].path: _pix2pixhd(workdir)}
    if family == "sean":
        return {release.files[0].path: _sean(workdir)}
    if family == "cocosnet":
        (folder,) = release.files
        return {f"{folder.path}/{name}": data for name, data in _cocosnet(workdir).items()}
    if family == "oasis":
        return {release.files[0].path: _oasis_folder(workdir)}
    if family == "mobilespade":
        return {release.files[0].path: _mobile_spade(workdir)}
    if family == "crn":
        return {file.path: (CRN_TINY / Path(file.path).name).read_bytes() for file in release.files}
    raise AssertionError(f"no synthetic release for {model_id} ({family}): add one here")
