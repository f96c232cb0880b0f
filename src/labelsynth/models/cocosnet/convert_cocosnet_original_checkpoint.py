"""Convert official microsoft/CoCosNet checkpoints (`<epoch>_net_Corr.pth` + `<epoch>_net_G.pth`) to labelsynth.

```bash
labelsynth convert cocosnet checkpoints/ade20k converted/cocosnet-ade20k --preset ade20k
labelsynth convert cocosnet checkpoints/ade20k converted/cocosnet-ade20k-noise --epoch 90 --noise-for-mask
```

The original files are plain `state_dict`s, read with `torch.load(weights_only=True)`. Key changes: the legacy
spectral-norm hook's `weight_orig / weight_u / weight_v` become the parametrization's keys (same u and v, so eval
outputs are identical); `netCorr`'s `adaptive_model_seg` / `adaptive_model_img` / `layer` become
`correspondence.label_adaptor` / `.exemplar_adaptor` / `.blocks`; SPADE's `mlp_shared.1` (index 1 behind the
original's ReflectionPad2d) becomes `mlp_shared.0` (the conv pads by reflection itself); `netG` keys get a
`generator.` prefix. Visible in the weights and read from them: widths, label channels, attention, spectral norm,
maskmix, the adaptor kernel, BatchNorm statistics vs PONO. Not visible, taken from the options: `--noise_for_mask`,
`--warp_bilinear`, `--PONO_C`, `--match_kernel`, `--warp_stride`.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ...conversion_utils import (
    add_converter_arguments,
    config_overrides,
    load_checked,
    run_converter_script,
    save_conversion,
)
from ...state_dict_utils import load_torch_state_dict
from ..spade.convert_spade_original_checkpoint import rename_spectral_keys
from .configuration_cocosnet import CoCosNetConfig
from .modeling_cocosnet import CoCosNetDiscriminator, CoCosNetModel

_CORR_PREFIXES = (("adaptive_model_seg.", "label_adaptor."), ("adaptive_model_img.", "exemplar_adaptor."),
                  ("layer.", "blocks."))
_MLP_SHARED = re.compile(r"\.mlp_shared\.1\.")
_DISCRIMINATOR_KEY = re.compile(r"^discriminator_(\d+)\.(model(\d+)|attn)\.")
# The original discriminator's segmentation decoder (`dec`) is built and saved but never used by a loss.
_UNUSED_DISCRIMINATOR_KEY = re.compile(r"^discriminator_\d+\.dec\.")


def convert_generator_state_dict(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Original `netG` state dict -> `CoCosNetModel` keys (`generator.*`)."""
    return {"generator." + _MLP_SHARED.sub(".mlp_shared.0.", k): v for k, v in rename_spectral_keys(state).items()}


def convert_correspondence_state_dict(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Original `netCorr` state dict -> `CoCosNetModel` keys (`correspondence.*`)."""
    converted = {}
    for key, value in rename_spectral_keys(state).items():
        key = _MLP_SHARED.sub(".mlp_shared.0.", key)
        for old, new in _CORR_PREFIXES:
            if key.startswith(old):
                key = new + key[len(old):]
                break
        converted["correspondence." + key] = value
    return converted


def convert_discriminator_state_dict(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Original multiscale `netD` state dict -> `CoCosNetDiscriminator` keys (the unused `dec.*` are dropped)."""
    converted = {}
    for key, value in rename_spectral_keys(state).items():
        if _UNUSED_DISCRIMINATOR_KEY.match(key):
            continue
        match = _DISCRIMINATOR_KEY.match(key)
        if match is None:
            raise ValueError(f"unexpected discriminator key {key!r} (expected discriminator_<scale>.model<i> / .attn)")
        scale, _, stage = match.groups()
        prefix = f"discriminators.{scale}.stages.{stage}." if stage is not None else f"discriminators.{scale}.attn."
        converted[prefix + key[match.end():]] = value
    return converted


def infer_config(generator: Mapping[str, torch.Tensor], correspondence: Mapping[str, torch.Tensor],
                 preset: str = "ade20k", **overrides: Any) -> CoCosNetConfig:
    """The `CoCosNetConfig` of original `netG` / `netCorr` state dicts, checked against a dataset preset."""
    if "fc.weight" not in generator or "conv_img.weight" not in generator:
        raise ValueError("this does not look like a CoCosNet netG state dict (no fc.weight / conv_img.weight); pass "
                         "the folder holding latest_net_G.pth and latest_net_Corr.pth")
    if "theta.weight" not in correspondence or "layer.0.conv1.weight" not in correspondence:
        raise ValueError("this does not look like a CoCosNet netCorr state dict (no theta.weight / "
                         "layer.0.conv1.weight); pass the folder holding latest_net_Corr.pth")
    ngf = generator["fc.weight"].shape[0] // 16
    seg_conv = correspondence.get("adaptive_model_seg.layer2.0.weight_orig",
                                  correspondence.get("adaptive_model_seg.layer2.0.weight"))
    found: dict[str, Any] = {
        "ngf": ngf,
        "use_attention": "attn.gamma" in generator,
        "spectral_norm": "head_0.conv_0.weight_orig" in generator,
        "spade_hidden_nc": generator["head_0.norm_0.mlp_shared.1.weight"].shape[0],
        "spade_kernel_size": generator["head_0.norm_0.mlp_shared.1.weight"].shape[-1],
        "adaptor_kernel_size": seg_conv.shape[-1],
    }
    if "head_0.norm_0.param_free_norm.running_mean" in generator:
        found["param_free_norm"] = "syncbatch"
    config = CoCosNetConfig(**{**CoCosNetConfig.resolve_preset(preset), **found, **overrides})
    label_channels = generator["fc.weight"].shape[1] - 3
    if config.num_label_channels != label_channels:
        raise ValueError(
            f"the checkpoint's translation network takes {label_channels} label channels (+3 warped RGB) but preset "
            f"{preset!r} gives {config.num_label_channels} (label_nc={config.label_nc} + don't care "
            f"{int(config.contain_dontcare_label)}); pick the right --preset or set --label-nc / "
            "--[no-]contain-dontcare-label as the checkpoint was trained (its opt.txt)"
        )
    mix_nc = correspondence["layer.0.conv1.weight"].shape[1]
    maskmix = mix_nc == 4 * ngf + label_channels
    if not maskmix and mix_nc != 4 * ngf:
        raise ValueError(f"netCorr's residual blocks take {mix_nc} channels, neither 4 * ngf = {4 * ngf} nor that "
                         f"plus {label_channels} label channels (maskmix)")
    config.maskmix = maskmix
    return config


def _load_strict(module: torch.nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    load_checked(module, state, what, architecture="CoCosNet",
                 hint="Check --preset and the options the checkpoint was "
                      "trained with (its opt.txt).")


def _find(folder: Path, epoch: str, name: str) -> Path:
    path = folder / f"{epoch}_net_{name}.pth"
    if not path.is_file():
        available = sorted(p.name for p in folder.glob("*_net_*.pth"))
        raise FileNotFoundError(f"{path} not found (files there: {available or 'none'}); pick --epoch")
    return path


def convert_cocosnet_checkpoint(
    checkpoint: str | Path,
    *,
    preset: str = "ade20k",
    epoch: str = "latest",
    use_ema: bool = False,
    discriminator: bool = False,
    **config_overrides: Any,
) -> CoCosNetModel | tuple[CoCosNetModel, CoCosNetDiscriminator]:
    """Convert an official CoCosNet checkpoint folder.

    Args:
        checkpoint: the folder with `<epoch>_net_G.pth` and `<epoch>_net_Corr.pth`.
        preset: dataset preset ("ade20k").
        epoch: which files: "latest" or an epoch number (the README's noise_for_mask ADE20K model is epoch 90).
        use_ema: read the EMA weights `<epoch>_net_G_ema.pth` / `<epoch>_net_netCorr_ema.pth` (`--use_ema`).
        discriminator: also convert `<epoch>_net_D.pth` and return `(model, discriminator)`.
        **config_overrides: `CoCosNetConfig` fields not visible in the weights (`noise_for_mask`,
            `warp_upsampling`, `correlation_centering`, `match_kernel`, `warp_stride`, ...).

    Returns:
        The `CoCosNetModel` in eval mode (and the `CoCosNetDiscriminator`).
    """
    folder = Path(checkpoint)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a checkpoint folder (expected {epoch}_net_G.pth and "
                                f"{epoch}_net_Corr.pth in it)")
    g_path = _find(folder, epoch, "G_ema" if use_ema else "G")
    corr_path = _find(folder, epoch, "netCorr_ema" if use_ema else "Corr")
    g_state, corr_state = load_torch_state_dict(g_path), load_torch_state_dict(corr_path)
    config = infer_config(g_state, corr_state, preset, **config_overrides)
    model = CoCosNetModel(config)
    _load_strict(model, {**convert_generator_state_dict(g_state), **convert_correspondence_state_dict(corr_state)},
                 f"{g_path} + {corr_path}")
    model.eval()
    model.card_kwargs = {"training": {"converted_from": f"microsoft/CoCosNet checkpoint {g_path.name} + "
                                                        f"{corr_path.name} (preset {preset})"}}
    if not discriminator:
        return model
    d_path = _find(folder, epoch, "D")
    d_state = convert_discriminator_state_dict(load_torch_state_dict(d_path))
    netd = CoCosNetDiscriminator(config)
    _load_strict(netd, d_state, str(d_path))
    return model, netd.eval()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Command-line options shared by this module's `main` and `labelsynth convert cocosnet`."""
    add_converter_arguments(parser, CoCosNetConfig, default_preset="ade20k", discriminator_file="<epoch>_net_D.pth",
                            checkpoint_help="checkpoint folder with <epoch>_net_G.pth and <epoch>_net_Corr.pth")
    parser.add_argument("--epoch", default="latest", help="which files: latest (default) or an epoch, e.g. 90")
    parser.add_argument("--use-ema", action="store_true", help="convert the EMA weights (G_ema / netCorr_ema)")
    parser.add_argument("--noise-for-mask", action="store_true",
                        help="the checkpoint was trained with --noise_for_mask (exemplar label maps are not used)")
    parser.add_argument("--warp-bilinear", action="store_true", help="the checkpoint used --warp_bilinear")
    parser.add_argument("--no-pono-c", action="store_true",
                        help="the checkpoint was trained without --PONO_C (correlation centred per channel)")
    parser.add_argument("--match-kernel", type=int, help="override --match_kernel (default 3)")
    parser.add_argument("--warp-stride", type=int, choices=[2, 4], help="override --warp_stride (default 4)")


def run(args: argparse.Namespace) -> CoCosNetModel:
    """Convert and save as `args` say; returns the model."""
    overrides = config_overrides(args, "match_kernel", "warp_stride")
    if args.noise_for_mask:
        overrides["noise_for_mask"] = True
    if args.warp_bilinear:
        overrides["warp_upsampling"] = "bilinear"
    if args.no_pono_c:
        overrides["correlation_centering"] = "positions"
    return save_conversion(args, convert_cocosnet_checkpoint(args.checkpoint, preset=args.preset, epoch=args.epoch,
                                                             use_ema=args.use_ema,
                                                             discriminator=args.with_discriminator, **overrides))


def main(argv: list[str] | None = None) -> None:
    run_converter_script(__doc__, add_arguments, run, argv)


if __name__ == "__main__":
    main()
