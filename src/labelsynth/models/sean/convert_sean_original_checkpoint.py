"""Convert official ZPdesu/SEAN checkpoints (`latest_net_G.pth`, `latest_net_D.pth`) to labelsynth.

```bash
labelsynth convert sean checkpoints/CelebA-HQ_pretrained converted/sean-celebamask-hq
python -m labelsynth.models.sean.convert_sean_original_checkpoint checkpoints/CelebA-HQ_pretrained/latest_net_G.pth out
```

The original files are plain `state_dict`s (loaded with `torch.load(weights_only=True)`, never unpickling code).
Key changes: `Zencoder.model.{1,4,7,10,14}` become `encoder.{conv_in,down_0,down_1,up,conv_out}`; the generator
gets a `generator.` prefix; each ResBlock's `ace_{0,1,s}` becomes `norm_{0,1,s}` with `Spade` -> `spade` and the 19
per-class `fc_mu<j>` Linear layers stacked into `style_weight [J, 512, 512]` / `style_bias [J, 512]`; the legacy
spectral-norm keys `weight_orig/_u/_v` become the parametrization's (same u, v, so eval outputs are identical). The
inner SPADE's `param_free_norm` statistics are dropped: the original builds that norm but never uses it. The
discriminator is mapped as SPADE's. Widths, label channels, style size, spectral norm and BatchNorm vs InstanceNorm
are read from the weights and checked against the preset.
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
    generator_checkpoint,
    load_checked,
    run_converter_script,
    save_conversion,
)
from ...state_dict_utils import load_torch_state_dict
from ..spade.convert_spade_original_checkpoint import (
    convert_discriminator_state_dict,
    rename_spectral_keys,
)
from .configuration_sean import SEANConfig
from .modeling_sean import SEANDiscriminator, SEANModel

_ENCODER_LAYERS = {"1": "conv_in", "4": "down_0", "7": "down_1", "10": "up", "14": "conv_out"}
_ENCODER_KEY = re.compile(r"^Zencoder\.model\.(\d+)\.(weight|bias)$")
_FC_MU_KEY = re.compile(r"^(.*)\.fc_mu(\d+)\.(weight|bias)$")
_DEAD_BUFFERS = re.compile(r"\.Spade\.param_free_norm\.")


def convert_generator_state_dict(generator: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Original SEAN G state dict -> `SEANModel` state dict (dead inner-SPADE norm buffers dropped)."""
    state: dict[str, torch.Tensor] = {}
    per_class: dict[tuple[str, str], dict[int, torch.Tensor]] = {}
    for key, value in rename_spectral_keys(generator).items():
        if _DEAD_BUFFERS.search(key):
            continue
        encoder = _ENCODER_KEY.match(key)
        if encoder:
            layer, kind = encoder.groups()
            if layer not in _ENCODER_LAYERS:
                raise ValueError(f"unexpected style-encoder key {key!r} (expected Zencoder.model.<1|4|7|10|14>.*)")
            state[f"encoder.{_ENCODER_LAYERS[layer]}.{kind}"] = value
            continue
        key = re.sub(r"\.ace_([01s])\.", r".norm_\1.", key).replace(".Spade.", ".spade.")
        fc_mu = _FC_MU_KEY.match(key)
        if fc_mu:
            prefix, index, kind = fc_mu.groups()
            per_class.setdefault((prefix, kind), {})[int(index)] = value
            continue
        state[f"generator.{key}"] = value
    for (prefix, kind), tensors in per_class.items():
        if sorted(tensors) != list(range(len(tensors))):
            raise ValueError(f"{prefix}: per-class fc_mu layers {sorted(tensors)} are not numbered 0..{len(tensors) - 1}")
        name = "style_weight" if kind == "weight" else "style_bias"
        state[f"generator.{prefix}.{name}"] = torch.stack([tensors[j] for j in range(len(tensors))])
    return state


def infer_config(generator: Mapping[str, torch.Tensor], preset: str = "celebamask-hq", **overrides: Any) -> SEANConfig:
    """Build the `SEANConfig` of an original SEAN generator state dict, checking it against a dataset preset."""
    shared_key = "head_0.ace_0.Spade.mlp_shared.0.weight"
    if shared_key not in generator or "Zencoder.model.1.weight" not in generator:
        raise ValueError(
            "this does not look like a SEAN generator state dict (no head_0.ace_0.Spade.mlp_shared.0.weight / "
            "Zencoder.model.1.weight); pass latest_net_G.pth of a SEAN checkpoint (or the folder holding it)"
        )
    shared = generator[shared_key]
    head_conv = generator.get("head_0.conv_0.weight_orig", generator.get("head_0.conv_0.weight"))
    num_classes = len([k for k in generator if re.fullmatch(r"head_0\.ace_0\.fc_mu\d+\.weight", k)])
    found: dict[str, Any] = {
        "ngf": head_conv.shape[0] // 16,
        "spectral_norm": "head_0.conv_0.weight_orig" in generator,
        "spade_kernel_size": shared.shape[-1],
        "spade_hidden_nc": shared.shape[0],
        "style_dim": generator["Zencoder.model.14.weight"].shape[0],
        "style_encoder_ngf": generator["Zencoder.model.1.weight"].shape[0],
    }
    if "head_0.ace_0.param_free_norm.running_mean" not in generator:
        found["param_free_norm"] = "instance"
    config = SEANConfig(**{**SEANConfig.resolve_preset(preset), **found, **overrides})
    if config.semantic_nc != shared.shape[1] or config.num_style_classes != num_classes:
        raise ValueError(
            f"the checkpoint has {shared.shape[1]} semantic channels and {num_classes} per-class style layers but "
            f"preset {preset!r} gives {config.semantic_nc} (label_nc={config.label_nc} + don't care "
            f"{int(config.contain_dontcare_label)}); pick the right --preset or set --label-nc / "
            "--[no-]contain-dontcare-label as the checkpoint was trained (its opt.txt)"
        )
    return config


def _load_strict(module: torch.nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    load_checked(module, state, what, architecture="SEAN",
                 hint="Check --preset and --num-upsampling-layers against the options the checkpoint was "
                      "trained with (its opt.txt).")


def convert_sean_checkpoint(
    checkpoint: str | Path, *, preset: str = "celebamask-hq", discriminator: bool = False, **config_overrides: Any
) -> SEANModel | tuple[SEANModel, SEANDiscriminator]:
    """Convert an official SEAN checkpoint.

    Args:
        checkpoint: a checkpoint folder (with `latest_net_G.pth`) or the path of a generator `.pth` file.
        preset: dataset preset of the checkpoint ("celebamask-hq").
        discriminator: also convert `latest_net_D.pth` (for fine-tuning) and return `(model, discriminator)`.
        **config_overrides: `SEANConfig` fields that differ from the preset (e.g. `label_nc` for custom datasets).

    Returns:
        The `SEANModel` in eval mode (and the `SEANDiscriminator`).
    """
    generator_path, folder = generator_checkpoint(checkpoint)
    generator_state = load_torch_state_dict(generator_path)
    config = infer_config(generator_state, preset, **config_overrides)
    model = SEANModel(config)
    _load_strict(model, convert_generator_state_dict(generator_state), str(generator_path))
    model.eval()
    model.card_kwargs = {"training": {"converted_from": f"ZPdesu/SEAN checkpoint {generator_path.name} "
                                                        f"(preset {preset})"}}
    if not discriminator:
        return model
    return model, convert_discriminator(folder, config, SEANDiscriminator, convert_discriminator_state_dict,
                                        _load_strict)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Command-line options shared by this module's `main` and `labelsynth convert sean`."""
    add_converter_arguments(parser, SEANConfig, default_preset="celebamask-hq",
                            checkpoint_help="checkpoint folder (latest_net_G.pth) or a G .pth file",
                            overrides=("label_nc", "contain_dontcare_label", "label_space", "image_size"))
    parser.add_argument("--num-upsampling-layers", choices=["normal", "more"], help="override the preset")


def run(args: argparse.Namespace) -> SEANModel:
    """Convert and save as `args` say; returns the model."""
    overrides = config_overrides(args, "label_nc", "num_upsampling_layers", "contain_dontcare_label", "label_space",
                                 "image_size")
    return save_conversion(args, convert_sean_checkpoint(args.checkpoint, preset=args.preset,
                                                         discriminator=args.with_discriminator, **overrides))


def main(argv: list[str] | None = None) -> None:
    run_converter_script(__doc__, add_arguments, run, argv)


if __name__ == "__main__":
    main()
