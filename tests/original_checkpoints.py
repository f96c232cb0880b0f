"""Checkpoints in the ORIGINAL implementations' key layouts, written from our models: the converter tests convert them
back, and `tests/hub/release_fixtures.py` packs them as synthetic official releases.

Each writer inverts its converter's key mapping independently of the converter's own tables (so that a mistake in
either shows), and the layouts are checked against the key lists of the released checkpoints in `tests/fixtures/`
(`original_keys`). Importable from any test because pytest puts tests/ (the conftest's folder) on sys.path.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch

from labelsynth import (
    CoCosNetModel,
    MobileSPADEConfig,
    MobileSPADEModel,
    OASISConfig,
    OASISDiscriminator,
    OASISModel,
    Pix2PixDiscriminator,
    Pix2PixHDModel,
    Pix2PixModel,
    SEANModel,
    SPADEDiscriminator,
    SPADEModel,
)
from labelsynth.models.pix2pixhd.convert_pix2pixhd_original_checkpoint import (
    global_generator_names,
    local_enhancer_names,
)
from labelsynth.models.spade.convert_mobile_spade_original_checkpoint import _teacher_norm_width, _to_original_key

FIXTURES = Path(__file__).resolve().parent / "fixtures"
# Our spectral-norm parametrization's keys -> the legacy `torch.nn.utils.spectral_norm` hook's, which the originals
# saved.
LEGACY_SPECTRAL_NORM = {"parametrizations.weight.original": "weight_orig", "parametrizations.weight.0._u": "weight_u",
                        "parametrizations.weight.0._v": "weight_v"}


def original_keys(family: str) -> dict:
    """The key layouts (key -> shape) of the released checkpoints of `family`: `fixtures/<family>_original_keys.json`,
    generated from the original classes."""
    return json.loads((FIXTURES / f"{family}_original_keys.json").read_text())


def meta_state(layout: dict[str, list[int]]) -> dict[str, torch.Tensor]:
    """A state dict of empty meta tensors with the shapes of `layout` (key -> shape)."""
    return {k: torch.empty(shape, device="meta") for k, shape in layout.items()}


def shapes(state: dict[str, torch.Tensor], ignore_prefix: tuple[str, ...] = ()) -> dict[str, tuple[int, ...]]:
    """Key -> shape of a state dict, without the keys starting with `ignore_prefix`."""
    return {k: tuple(v.shape) for k, v in state.items() if not k.startswith(ignore_prefix)}


def _renamed(state: dict[str, torch.Tensor], prefix: str, renames: tuple[tuple[str, str], ...] = ()
             ) -> dict[str, torch.Tensor]:
    """The entries of `state` under `prefix`, without it, with legacy spectral-norm names and `renames` applied."""
    out = {}
    for key, value in state.items():
        if not key.startswith(prefix):
            continue
        key = key[len(prefix):]
        for new, old in (*LEGACY_SPECTRAL_NORM.items(), *renames):
            key = key.replace(new, old)
        out[key] = value.clone()
    return out


# ------------------------------------------------------------------------------------------------------------ SPADE
def spade_original_layout(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """`SPADEModel` / `SPADEDiscriminator` weights under `prefix` with NVlabs/SPADE's key names."""
    return _renamed(state, prefix)


def write_spade_checkpoint(folder: Path, model: SPADEModel, netd: SPADEDiscriminator | None = None) -> None:
    """`latest_net_G.pth` (+ `latest_net_E.pth` for a VAE model, `latest_net_D.pth` with `netd`) in `folder`."""
    released = original_keys("spade")
    folder.mkdir(parents=True, exist_ok=True)
    state = model.state_dict()
    generator = spade_original_layout(state, "generator.")
    assert set(generator) <= set(released["G"]["ade20k_vae"]) | set(released["G"]["ade20k"])
    torch.save(generator, folder / "latest_net_G.pth")
    if model.encoder is not None:
        torch.save(spade_original_layout(state, "encoder."), folder / "latest_net_E.pth")
    if netd is not None:
        d_state = {}
        for key, value in spade_original_layout(netd.state_dict(), "discriminator.discriminators.").items():
            scale, _, layer, rest = key.split(".", 3)
            d_state[f"discriminator_{scale}.model{layer}.{rest}"] = value
        assert set(d_state) == set(released["D"]["ade20k"])
        torch.save(d_state, folder / "latest_net_D.pth")


# ---------------------------------------------------------------------------------------------------------- pix2pix
# Sequential index of each layer inside one level of the original recursive U-Net.
PIX2PIX_OUTERMOST = {"down_conv": "0", "up_conv": "3"}
PIX2PIX_MIDDLE = {"down_conv": "1", "down_norm": "2", "up_conv": "5", "up_norm": "6"}
PIX2PIX_INNERMOST = {"down_conv": "1", "up_conv": "3", "up_norm": "4"}


def pix2pix_original_generator(model: Pix2PixModel) -> dict[str, torch.Tensor]:
    """Our generator weights under the official recursive key names."""
    num_downs = model.config.num_downs
    out = {}
    for key, value in model.state_dict().items():
        _, _, level, layer, param = key.split(".", 4)
        level = int(level)
        table = PIX2PIX_OUTERMOST if level == 0 else PIX2PIX_INNERMOST if level == num_downs - 1 else PIX2PIX_MIDDLE
        prefix = "model.model." + ("1.model." + "3.model." * (level - 1) if level else "")
        out[f"{prefix}{table[layer]}.{param}"] = value.clone()
    return out


def pix2pix_original_discriminator(netd: Pix2PixDiscriminator) -> dict[str, torch.Tensor]:
    """Our PatchGAN's weights under the official `nn.Sequential` key names."""
    last = netd.config.n_layers_d + 1
    out = {}
    for key, value in netd.state_dict().items():
        parts = key.split(".")  # discriminator.stages.<n>.0[.<i>].<param>
        stage, param = int(parts[2]), parts[-1]
        if stage == 0:
            index = 0
        elif stage == last:
            index = 3 * netd.config.n_layers_d + 2
        else:
            index = 3 * stage - 1 + int(parts[4])
        out[f"model.{index}.{param}"] = value.clone()
    return out


# -------------------------------------------------------------------------------------------------------- pix2pixHD
def pix2pixhd_original_layout(model: Pix2PixHDModel) -> tuple[dict, dict | None]:
    """Our model's G (and E) weights under the official key names (the converter's name maps, inverted)."""
    config = model.config
    num_local = config.num_local_enhancers
    names = {f"global_generator.{v}": f"model.{k}" for k, v in global_generator_names(
        config.n_downsample_global, config.n_blocks_global, num_local == 0).items()}
    for n in range(1, num_local + 1):
        names.update({v: k for k, v in local_enhancer_names(n, config.n_blocks_local, n == num_local).items()})

    def rename(state: dict, names: dict) -> dict:
        return {f"{names[k.rpartition('.')[0]]}.{k.rpartition('.')[2]}": v for k, v in state.items()}

    generator = rename(model.generator.state_dict(), names)
    encoder = None
    if model.encoder is not None:
        names = {v: f"model.{k}" for k, v in global_generator_names(config.n_downsample_e, 0, True).items()}
        encoder = rename(model.encoder.state_dict(), names)
    return generator, encoder


# ------------------------------------------------------------------------------------------------------------- SEAN
def sean_original_layout(model: SEANModel) -> dict[str, torch.Tensor]:
    """A labelsynth SEAN state dict the way the original code saves it (legacy spectral-norm keys, ace_X, Spade,
    fc_mu<j>, Zencoder.model.<i>, plus the inner SPADE's unused norm buffers)."""
    encoder = {"conv_in": 1, "down_0": 4, "down_1": 7, "up": 10, "conv_out": 14}
    state = {}
    for key, value in model.state_dict().items():
        if key.startswith("encoder."):
            layer, kind = key.split(".")[1:]
            state[f"Zencoder.model.{encoder[layer]}.{kind}"] = value
            continue
        key = key.removeprefix("generator.")
        for new, old in LEGACY_SPECTRAL_NORM.items():
            key = key.replace(f".{new}", f".{old}")
        key = re.sub(r"\.norm_([01s])\.", r".ace_\1.", key).replace(".spade.", ".Spade.")
        if key.endswith((".style_weight", ".style_bias")):
            prefix, kind = key.rsplit(".", 1)
            for j, row in enumerate(value):
                state[f"{prefix}.fc_mu{j}.{'weight' if kind == 'style_weight' else 'bias'}"] = row.clone()
            continue
        state[key] = value
        if key.endswith(".param_free_norm.running_mean"):
            dead = key.replace(".param_free_norm.", ".Spade.param_free_norm.")
            state[dead] = torch.zeros_like(value)
            state[dead.replace("running_mean", "running_var")] = torch.ones_like(value)
            state[dead.replace("running_mean", "num_batches_tracked")] = torch.tensor(0)
    return state


# ------------------------------------------------------------------------------------------------------------ OASIS
def oasis_original_generator(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our `OASISModel` weights with the official key names (legacy spectral-norm hook, `first_norm`)."""
    renamed = {k.replace(".param_free_norm.", ".first_norm."): v for k, v in state.items()}
    return _renamed(renamed, "generator.")


def oasis_original_discriminator(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our `OASISDiscriminator` weights with the official key names (convs at their `nn.Sequential` positions)."""
    out = {}
    for key, value in _renamed(state, "").items():
        part, index = key.split(".")[:2]
        position = 0 if (part, index) == ("body_down", "0") else (2 if part == "body_up" else 1)
        key = re.sub(r"\.conv1\.", f".conv1.{position}.", key)
        key = re.sub(r"\.conv2\.", ".conv2.1.", key)
        out[key] = value
    return out


def tiny_oasis_config(preset: str = "ade20k", **overrides) -> OASISConfig:
    """A tiny OASIS (ngf 4, 64x64) with the label space of `preset`."""
    return OASISConfig.for_dataset(preset, **{"ngf": 4, "spade_hidden_nc": 8, "ndf": 4, "image_size": (64, 64),
                                              **overrides})


def write_oasis_checkpoint(folder: Path, ema: OASISModel, g: OASISModel | None = None,
                           netd: OASISDiscriminator | None = None, iteration: str = "best") -> Path:
    """`<folder>/models/<iteration>_EMA.pth` (+ `_G.pth`, `_D.pth`), as the original's `save_networks`."""
    models = folder / "models"
    models.mkdir(parents=True, exist_ok=True)
    torch.save(oasis_original_generator(ema.state_dict()), models / f"{iteration}_EMA.pth")
    if g is not None:
        torch.save(oasis_original_generator(g.state_dict()), models / f"{iteration}_G.pth")
    if netd is not None:
        torch.save(oasis_original_discriminator(netd.state_dict()), models / f"{iteration}_D.pth")
    return folder


# --------------------------------------------------------------------------------------------------------- CoCosNet
def cocosnet_original_layout(state: dict[str, torch.Tensor], prefix: str,
                             renames: tuple[tuple[str, str], ...] = ()) -> dict[str, torch.Tensor]:
    """Our CoCosNet weights under `prefix` with the official key names (legacy spectral norm, SPADE's
    `mlp_shared.1`, and `renames`)."""
    return _renamed(state, prefix, ((".mlp_shared.0.", ".mlp_shared.1."), *renames))


def write_cocosnet_checkpoint(folder: Path, model: CoCosNetModel, epoch: str = "latest") -> None:
    """`<epoch>_net_G.pth` and `<epoch>_net_Corr.pth` in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    state = model.state_dict()
    torch.save(cocosnet_original_layout(state, "generator."), folder / f"{epoch}_net_G.pth")
    corr = cocosnet_original_layout(state, "correspondence.", (
        ("label_adaptor.", "adaptive_model_seg."), ("exemplar_adaptor.", "adaptive_model_img."), ("blocks.", "layer.")))
    torch.save(corr, folder / f"{epoch}_net_Corr.pth")


# ------------------------------------------------------------------------- compressed GauGAN (GAN Compression)
MOBILE_SPADE_TINY = {"channels": [2, 3, 2, 2, 3, 2, 4, 3], "image_size": (64, 128)}
MOBILE_SPADE_TINY_NGF = 4  # teacher width of the tiny checkpoints: BatchNorm statistics of 16/8/4/2/1 * 4 channels


def write_mobile_spade_checkpoint(path: Path, model: MobileSPADEModel, ngf: int) -> dict[str, torch.Tensor]:
    """Save `model` as the original SubMobileSPADEGenerator state dict (teacher-width BatchNorm statistics, whose
    unused tail is random: the converter must drop it)."""
    state = {}
    for key, value in model.state_dict().items():
        original = _to_original_key(key)
        width = _teacher_norm_width(original, ngf)
        if width is not None:
            value = torch.cat([value, torch.rand(width - value.shape[0]) + 0.5])
        state[original] = value.clone()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return state


def tiny_mobile_spade(seed: int = 0) -> MobileSPADEModel:
    torch.manual_seed(seed)
    model = MobileSPADEModel(MobileSPADEConfig.for_dataset("cityscapes-compressed", **MOBILE_SPADE_TINY))
    with torch.no_grad():  # non-trivial weights; BatchNorm statistics of real activations (well-conditioned)
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.momentum = None  # running statistics = the average over the passes below
        model.train()
        for _ in range(2):
            label = torch.randint(0, 35, (2, 64, 128))
            model(label, label)
    return model.eval()
