"""Convert official NVlabs/SPADE checkpoints (`latest_net_G.pth`, `latest_net_E.pth`, `latest_net_D.pth`) to labelsynth.

```bash
labelsynth convert spade checkpoints/ade20k_pretrained converted/spade-ade20k --preset ade20k
python -m labelsynth.models.spade.convert_spade_original_checkpoint checkpoints/coco_pretrained/latest_net_G.pth out \\
    --preset coco-stuff
```

The original files are plain `state_dict`s (loaded with `torch.load(weights_only=True)`, never unpickling code).
Key changes: the legacy spectral-norm hook's `weight_orig / weight_u / weight_v` become the parametrization's
`parametrizations.weight.original / .0._u / .0._v` (same u, v, so eval outputs are identical); generator keys get a
`generator.` prefix, encoder keys `encoder.`, discriminator keys move from `discriminator_<s>.model<i>` to
`discriminator.discriminators.<s>.stages.<i>`. Architecture options that show in the weights (VAE or not, widths,
semantic channels, extra `up_4` block, spectral norm, BatchNorm or InstanceNorm) are read from them and checked
against the preset; `num_upsampling_layers` "normal" vs "more" is not visible in the weights and comes from the preset.
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
    convert_discriminator,
    find_checkpoint_file,
    generator_checkpoint,
    load_checked,
    run_converter_script,
    save_conversion,
)
from ...state_dict_utils import load_torch_state_dict
from .configuration_spade import SPADEConfig
from .modeling_spade import SPADEDiscriminator, SPADEModel

_SPECTRAL_SUFFIXES = {
    "weight_orig": "parametrizations.weight.original",
    "weight_u": "parametrizations.weight.0._u",
    "weight_v": "parametrizations.weight.0._v",
}
_DISCRIMINATOR_KEY = re.compile(r"^discriminator_(\d+)\.model(\d+)\.")


def rename_spectral_keys(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`x.weight_orig/_u/_v` (legacy spectral-norm hook) -> parametrization keys; other keys unchanged."""
    renamed = {}
    for key, value in state.items():
        head, _, last = key.rpartition(".")
        renamed[f"{head}.{_SPECTRAL_SUFFIXES[last]}" if last in _SPECTRAL_SUFFIXES else key] = value
    return renamed


def convert_generator_state_dict(generator: Mapping[str, torch.Tensor],
                                 encoder: Mapping[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """Original G (and E) state dicts -> `SPADEModel` state dict."""
    state = {f"generator.{k}": v for k, v in rename_spectral_keys(generator).items()}
    if encoder is not None:
        state.update({f"encoder.{k}": v for k, v in rename_spectral_keys(encoder).items()})
    return state


def convert_discriminator_state_dict(discriminator: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Original multiscale D state dict -> `SPADEDiscriminator` state dict."""
    state = {}
    for key, value in rename_spectral_keys(discriminator).items():
        new_key, count = _DISCRIMINATOR_KEY.subn(r"discriminator.discriminators.\1.stages.\2.", key)
        if not count:
            raise ValueError(f"unexpected discriminator key {key!r} (expected discriminator_<scale>.model<layer>.*)")
        state[new_key] = value
    return state


def infer_config(generator: Mapping[str, torch.Tensor], preset: str = "ade20k",
                 **overrides: Any) -> SPADEConfig:
    """Build the `SPADEConfig` of an original generator state dict, checking it against a dataset preset."""
    if "head_0.norm_0.mlp_shared.0.weight" not in generator or "conv_img.weight" not in generator:
        raise ValueError(
            "this does not look like a SPADE generator state dict (no head_0.norm_0.mlp_shared.0.weight / "
            "conv_img.weight); pass latest_net_G.pth (or the checkpoint folder holding it)"
        )
    shared = generator["head_0.norm_0.mlp_shared.0.weight"]
    head_conv = generator.get("head_0.conv_0.weight_orig", generator.get("head_0.conv_0.weight"))
    found: dict[str, Any] = {
        "ngf": head_conv.shape[0] // 16,
        "use_vae": generator["fc.weight"].dim() == 2,
        "spectral_norm": "head_0.conv_0.weight_orig" in generator,
        "spade_kernel_size": shared.shape[-1],
        "spade_hidden_nc": shared.shape[0],
    }
    if found["use_vae"]:
        found["z_dim"] = generator["fc.weight"].shape[1]
    if "head_0.norm_0.param_free_norm.running_mean" not in generator:
        found["param_free_norm"] = "instance"
    if any(k.startswith("up_4.") for k in generator):
        found["num_upsampling_layers"] = "most"

    config = SPADEConfig(**{**SPADEConfig.resolve_preset(preset), **found, **overrides})
    semantic_nc = shared.shape[1]
    if config.semantic_nc != semantic_nc:
        raise ValueError(
            f"the checkpoint's SPADE layers take {semantic_nc} semantic channels but preset {preset!r} gives "
            f"{config.semantic_nc} (label_nc={config.label_nc} + don't care {int(config.contain_dontcare_label)} + "
            f"instance edges {int(config.use_instance_edges)}); pick the right --preset, or set --label-nc / "
            "--[no-]contain-dontcare-label / --[no-]instance-edges as the checkpoint was trained (its opt.txt)"
        )
    if config.use_vae:
        latent = generator["fc.weight"].shape[0] // (16 * config.ngf)
        expected = (config.image_size[0] // config.upsampling_factor) * (config.image_size[1] // config.upsampling_factor)
        if latent != expected:
            raise ValueError(
                f"the VAE generator's fc produces a {latent}-cell latent grid but image_size {config.image_size} with "
                f"num_upsampling_layers={config.num_upsampling_layers!r} needs {expected}; set --image-size or the "
                "preset the checkpoint was trained with"
            )
    return config


def _load_strict(module: torch.nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    load_checked(module, state, what, architecture="SPADE",
                 hint="Check --preset / --use-vae / --num-upsampling-layers against the options the checkpoint was "
                      "trained with (its opt.txt).")


def convert_spade_checkpoint(
    checkpoint: str | Path,
    *,
    preset: str = "ade20k",
    encoder_path: str | Path | None = None,
    discriminator: bool = False,
    **config_overrides: Any,
) -> SPADEModel | tuple[SPADEModel, SPADEDiscriminator]:
    """Convert an official SPADE checkpoint.

    Args:
        checkpoint: a checkpoint folder (with `latest_net_G.pth`, and `latest_net_E.pth` for VAE models) or the
            path of a generator `.pth` file.
        preset: dataset preset of the checkpoint ("ade20k", "cityscapes", "coco-stuff").
        encoder_path: the style encoder file, when not next to the generator in a folder.
        discriminator: also convert `latest_net_D.pth` (for fine-tuning) and return `(model, discriminator)`.
        **config_overrides: `SPADEConfig` fields that differ from the preset (e.g. `label_nc` for custom datasets).

    Returns:
        The `SPADEModel` in eval mode (and the `SPADEDiscriminator`).
    """
    generator_path, folder = generator_checkpoint(checkpoint)
    generator_state = load_torch_state_dict(generator_path)
    config = infer_config(generator_state, preset, **config_overrides)

    encoder_state = None
    if config.use_vae:
        encoder_path = Path(encoder_path) if encoder_path else (find_checkpoint_file(folder, "E") if folder else None)
        if encoder_path is None:
            raise FileNotFoundError(
                f"{generator_path} is a VAE generator (its fc is a Linear layer), which needs the style encoder "
                "latest_net_E.pth: put it in the same folder or pass encoder_path / --encoder"
            )
        encoder_state = load_torch_state_dict(encoder_path)

    model = SPADEModel(config)
    _load_strict(model, convert_generator_state_dict(generator_state, encoder_state), str(generator_path))
    model.eval()
    model.card_kwargs = {"training": {"converted_from": f"NVlabs/SPADE checkpoint {generator_path.name} "
                                                        f"(preset {preset})"}}
    if not discriminator:
        return model
    return model, convert_discriminator(folder, config, SPADEDiscriminator, convert_discriminator_state_dict,
                                        _load_strict)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Command-line options shared by this module's `main` and `labelsynth convert spade`."""
    add_converter_arguments(
        parser, SPADEConfig, default_preset="ade20k",
        checkpoint_help="checkpoint folder (latest_net_G.pth [+ latest_net_E.pth]) or a G .pth file",
        overrides=("label_nc", "contain_dontcare_label", "instance_edges", "image_size"))
    parser.add_argument("--use-vae", action="store_true",
                        help="expect a VAE checkpoint (also detected from the weights) and convert latest_net_E.pth")
    parser.add_argument("--encoder", help="path of latest_net_E.pth when it is not in the checkpoint folder")
    parser.add_argument("--num-upsampling-layers", choices=["normal", "more", "most"], help="override the preset")


def run(args: argparse.Namespace) -> SPADEModel:
    """Convert and save as `args` say; returns the model."""
    overrides = config_overrides(args, "label_nc", "num_upsampling_layers", "contain_dontcare_label",
                                 "instance_edges", "image_size")
    result = convert_spade_checkpoint(args.checkpoint, preset=args.preset, encoder_path=args.encoder,
                                      discriminator=args.with_discriminator, **overrides)
    model = result[0] if isinstance(result, tuple) else result
    if args.use_vae and not model.config.use_vae:
        raise ValueError(f"--use-vae was given but {args.checkpoint} holds a non-VAE generator (its fc is a conv)")
    return save_conversion(args, result)


def main(argv: list[str] | None = None) -> None:
    run_converter_script(__doc__, add_arguments, run, argv)


if __name__ == "__main__":
    main()
