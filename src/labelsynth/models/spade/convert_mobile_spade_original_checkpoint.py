"""Convert GAN Compression's compressed GauGAN (`sub_mobile_spade` `latest_net_G.pth`) to labelsynth.

```bash
labelsynth convert mobilespade pretrained/gaugan/cityscapes/compressed/latest_net_G.pth \\
    converted/gaugan-compressed-cityscapes --preset cityscapes-compressed
```

The original file is a plain `state_dict` (read with `torch.load(weights_only=True)`). Its widths (the original
`--config_str`) and the teacher width `--ngf` are read from the weights. Key changes: a `generator.` prefix; the
separable convs' `mlp_gamma.conv.0 / conv.2` become `mlp_gamma.depthwise / pointwise`. The original keeps each
BatchNorm's running statistics at the teacher's width (16/8/4/2/1 * ngf) and uses only the first channels; those are
the ones kept. Every key and shape is checked against the layout the original classes write.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ...conversion_utils import generator_checkpoint, load_checked, run_converter_script, save_converted
from ...state_dict_utils import load_torch_state_dict
from .configuration_mobile_spade import _WIDTH_FACTORS, MOBILE_SPADE_PRESETS, MOBILE_SPADE_STAGES, MobileSPADEConfig
from .modeling_mobile_spade import MobileSPADEModel

_SEPARABLE = {".conv.0.": ".depthwise.", ".conv.2.": ".pointwise."}
# Teacher widths (times ngf) of each block's fin and fout: the sizes of the original's BatchNorm statistics.
_TEACHER_IN_OUT = {"head_0": (16, 16), "G_middle_0": (16, 16), "G_middle_1": (16, 16), "up_0": (16, 8),
                   "up_1": (8, 4), "up_2": (4, 2), "up_3": (2, 1)}


def _to_original_key(key: str) -> str:
    """Our state-dict key -> the original's."""
    key = key.removeprefix("generator.")
    for original, ours in _SEPARABLE.items():
        key = key.replace(ours, original)
    return key


def _teacher_norm_width(key: str, ngf: int) -> int | None:
    """The original BatchNorm width behind a `...param_free_norm.running_*` key, else None."""
    block, layer = key.split(".")[:2]
    if block not in _TEACHER_IN_OUT or not key.endswith(("running_mean", "running_var")):
        return None
    fin, fout = _TEACHER_IN_OUT[block]
    return ngf * (min(fin, fout) if layer == "norm_1" else fin)


def original_key_layout(config: MobileSPADEConfig, ngf: int) -> dict[str, tuple[int, ...]]:
    """Keys and shapes of the original `SubMobileSPADEGenerator` state dict for `config` and teacher width `ngf`."""
    layout = {}
    for key, value in MobileSPADEModel(config).state_dict().items():
        original = _to_original_key(key)
        width = _teacher_norm_width(original, ngf)
        layout[original] = (width,) if width is not None else tuple(value.shape)
    return layout


def infer_config(state: Mapping[str, torch.Tensor], preset: str = "cityscapes-compressed",
                 **overrides: Any) -> tuple[MobileSPADEConfig, int]:
    """The `MobileSPADEConfig` (widths from the weights, label space from the preset) and the teacher `ngf`."""
    needed = ["fc.weight", "head_0.norm_0.param_free_norm.running_mean",
              *(f"{stage}.conv_0.weight" for stage in MOBILE_SPADE_STAGES[1:])]
    absent = [k for k in needed if k not in state]
    if absent:
        raise ValueError(f"this does not look like a sub_mobile_spade generator state dict (no {', '.join(absent)}); "
                         "pass GAN Compression's compressed GauGAN latest_net_G.pth")
    widths = [state["fc.weight"].shape[0]] + [state[f"{s}.conv_0.weight"].shape[0] for s in MOBILE_SPADE_STAGES[1:]]
    channels = [w // f for w, f in zip(widths, _WIDTH_FACTORS)]
    config = MobileSPADEConfig.for_dataset(preset, **{"channels": channels, **overrides})
    semantic_nc = state["fc.weight"].shape[1]
    if config.semantic_nc != semantic_nc:
        raise ValueError(
            f"the checkpoint takes {semantic_nc} semantic channels but preset {preset!r} gives {config.semantic_nc} "
            f"(label_nc={config.label_nc} + don't care {int(config.contain_dontcare_label)} + instance edges "
            f"{int(config.use_instance_edges)}); set --label-nc / --[no-]instance-edges as it was trained"
        )
    return config, state["head_0.norm_0.param_free_norm.running_mean"].shape[0] // 16


def convert_state_dict(state: Mapping[str, torch.Tensor], config: MobileSPADEConfig, ngf: int
                       ) -> dict[str, torch.Tensor]:
    """Original state dict -> `MobileSPADEModel` state dict, after checking every key and shape (one ValueError
    listing the missing, unknown and mis-shaped keys)."""
    expected = original_key_layout(config, ngf)
    missing = sorted(set(expected) - set(state))
    unknown = sorted(set(state) - set(expected))
    misshaped = sorted(f"{k} {tuple(state[k].shape)} (expected {expected[k]})" for k in set(expected) & set(state)
                       if tuple(state[k].shape) != expected[k])
    if missing or unknown or misshaped:
        parts = [f"{len(keys)} {what}: {', '.join(keys[:6])}{', ...' if len(keys) > 6 else ''}"
                 for what, keys in (("missing keys", missing), ("unknown keys", unknown),
                                    ("mis-shaped keys", misshaped)) if keys]
        raise ValueError(
            f"the checkpoint does not match the sub_mobile_spade generator with --config_str {config.config_str} "
            f"and --ngf {ngf}: {'; '.join(parts)}. Pass the compressed GauGAN's latest_net_G.pth (not the full or "
            "supernet model) and the preset it was trained with"
        )
    ours = MobileSPADEModel(config).state_dict()
    converted = {}
    for key, reference in ours.items():
        value = state[_to_original_key(key)]
        if value.dim() == 1 and value.shape != reference.shape:  # teacher-width statistics: the used channels
            value = value[: reference.shape[0]]
        converted[key] = value.clone()
    return converted


def convert_mobile_spade_checkpoint(checkpoint: str | Path, *, preset: str = "cityscapes-compressed",
                                    **config_overrides: Any) -> MobileSPADEModel:
    """Convert a compressed GauGAN `latest_net_G.pth` (or the folder holding it); returns the model in eval mode."""
    path, _ = generator_checkpoint(checkpoint)
    state = load_torch_state_dict(path)
    config, ngf = infer_config(state, preset, **config_overrides)
    model = MobileSPADEModel(config)
    load_checked(model, convert_state_dict(state, config, ngf), str(path), architecture="MobileSPADE",
                 hint="Check --preset against the options the checkpoint was trained with.")
    model.eval()
    model.card_kwargs = {"training": {"converted_from": f"mit-han-lab/gan-compression sub_mobile_spade {path.name} "
                                                        f"(--config_str {config.config_str} --ngf {ngf})"}}
    return model


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Command-line options shared by this module's `main` and `labelsynth convert mobilespade`."""
    parser.add_argument("checkpoint", help="the compressed generator latest_net_G.pth, or the folder holding it")
    parser.add_argument("output_dir", help="where to write config.json, model.safetensors, preprocessor_config.json")
    parser.add_argument("--preset", default="cityscapes-compressed", choices=sorted(MOBILE_SPADE_PRESETS),
                        help="dataset preset the checkpoint was trained with (default: cityscapes-compressed)")
    parser.add_argument("--label-nc", type=int, help="override label_nc (custom datasets)")
    parser.add_argument("--instance-edges", action=argparse.BooleanOptionalAction, default=None,
                        help="override whether the model takes instance edges (original: not --no_instance)")
    parser.add_argument("--push-to-hub", metavar="REPO_ID", help="also push the converted model to this Hub repo")


def run(args: argparse.Namespace) -> MobileSPADEModel:
    """Convert and save as `args` say; returns the model."""
    overrides = {k: v for k, v in (("label_nc", args.label_nc), ("use_instance_edges", args.instance_edges))
                 if v is not None}
    model = convert_mobile_spade_checkpoint(args.checkpoint, preset=args.preset, **overrides)
    save_converted(model, args.output_dir, push_to_hub=args.push_to_hub)
    return model


def main(argv: list[str] | None = None) -> None:
    run_converter_script(__doc__, add_arguments, run, argv)


if __name__ == "__main__":
    main()
