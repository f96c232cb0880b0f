"""Convert official boschresearch/OASIS checkpoints (`best_EMA.pth`, `best_G.pth`, `best_D.pth`) to labelsynth.

```bash
labelsynth convert oasis checkpoints/oasis_ade20k_pretrained converted/oasis-ade20k --preset ade20k
labelsynth convert oasis checkpoints/oasis_coco_pretrained converted/oasis-coco --preset coco-stuff --weights G
python -m labelsynth.models.oasis.convert_oasis_original_checkpoint ckpt/models/latest_EMA.pth out --preset cityscapes
```

The checkpoint is a folder (the experiment folder, or its `models/` sub-folder holding `<iter>_{G,D,EMA}.pth`) or
a `.pth` file. By default the EMA generator of the best iteration (`best_EMA.pth`) is converted, as the original
`test.py` does; `--weights G` takes the raw generator, `--iter latest|<n>` another iteration. The files are plain
`state_dict`s, loaded with `torch.load(weights_only=True)` (never unpickling code; `opt.pkl` is not read).

Key changes: the legacy spectral-norm hook's `weight_orig / weight_u / weight_v` become the parametrization's
`parametrizations.weight.original / .0._u / .0._v` (same u, v, so eval outputs are identical); the SPADE layers'
`first_norm` (BatchNorm statistics) becomes `param_free_norm`; generator keys get a `generator.` prefix; the
discriminator's `conv1.<i>` / `conv2.1` (positions inside the original `nn.Sequential`s) become `conv1` / `conv2`.
Widths, noise channels, SPADE kernel and hidden width, spectral norm and BatchNorm-vs-InstanceNorm are read from the
weights and checked against the preset; the image size comes from the preset.
"""

from __future__ import annotations

import argparse
import copy
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
from .configuration_oasis import OASISConfig
from .modeling_oasis import OASISDiscriminator, OASISModel

_SPECTRAL_SUFFIXES = {
    "weight_orig": "parametrizations.weight.original",
    "weight_u": "parametrizations.weight.0._u",
    "weight_v": "parametrizations.weight.0._v",
}
_SEQUENTIAL_CONV = re.compile(r"\.(conv1)\.[012]\.|\.(conv2)\.1\.")
GENERATOR_WEIGHTS = ("EMA", "G")


def rename_spectral_keys(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`x.weight_orig/_u/_v` (legacy spectral-norm hook) -> parametrization keys; other keys unchanged."""
    renamed = {}
    for key, value in state.items():
        head, _, last = key.rpartition(".")
        renamed[f"{head}.{_SPECTRAL_SUFFIXES[last]}" if last in _SPECTRAL_SUFFIXES else key] = value
    return renamed


def convert_generator_state_dict(generator: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Original `OASIS_Generator` state dict (G or EMA) -> `OASISModel` state dict."""
    return {f"generator.{key.replace('.first_norm.', '.param_free_norm.')}": value
            for key, value in rename_spectral_keys(generator).items()}


def convert_discriminator_state_dict(discriminator: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Original `OASIS_Discriminator` state dict -> `OASISDiscriminator` state dict."""
    return {_SEQUENTIAL_CONV.sub(lambda m: f".{m.group(1) or m.group(2)}.", key): value
            for key, value in rename_spectral_keys(discriminator).items()}


def infer_config(generator: Mapping[str, torch.Tensor], preset: str = "ade20k", **overrides: Any) -> OASISConfig:
    """Build the `OASISConfig` of an original generator state dict, checking it against a dataset preset.

    `z_dim` (64 in every released model) is not separable from the label channels in the weights: it comes from
    `overrides` (default 64) and the first conv's input width must equal `z_dim + num_label_channels`.
    """
    if "fc.weight" not in generator or "body.0.norm_0.mlp_shared.0.weight" not in generator:
        raise ValueError(
            "this does not look like an OASIS generator state dict (no fc.weight / body.0.norm_0.mlp_shared.0.weight); "
            "pass best_EMA.pth or best_G.pth (or the checkpoint folder holding them), not the discriminator"
        )
    shared = generator["body.0.norm_0.mlp_shared.0.weight"]
    found: dict[str, Any] = {
        "ngf": generator["fc.weight"].shape[0] // 16,
        "spectral_norm": "body.0.conv_0.weight_orig" in generator,
        "spade_kernel_size": shared.shape[-1],
        "spade_hidden_nc": shared.shape[0],
    }
    if "body.0.norm_0.first_norm.running_mean" not in generator:
        found["param_free_norm"] = "instance"
    config = OASISConfig(**{**OASISConfig.resolve_preset(preset), **found, **overrides})
    in_nc = generator["fc.weight"].shape[1]
    if in_nc != config.z_dim + config.num_label_channels:
        raise ValueError(
            f"the checkpoint's first conv takes {in_nc} channels but preset {preset!r} gives z_dim {config.z_dim} + "
            f"{config.num_label_channels} label channels = {config.z_dim + config.num_label_channels}; pick the "
            "right --preset (ade20k: 64 + 151, cityscapes: 64 + 35, coco-stuff: 64 + 183), or set --z-dim / "
            "--label-nc as the checkpoint was trained (its opt.txt)"
        )
    return config


def checkpoint_file(checkpoint: str | Path, net: str, iteration: str = "best") -> Path:
    """`<iteration>_<net>.pth` of an original checkpoint: `checkpoint` is the file itself, the experiment folder or
    its `models/` sub-folder."""
    checkpoint = Path(checkpoint)
    if checkpoint.is_file():
        return checkpoint
    name = f"{iteration}_{net}.pth"
    for folder in (checkpoint, checkpoint / "models"):
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"no {name} in {checkpoint} or {checkpoint / 'models'} (the original layout is "
                            f"<experiment>/models/<iter>_{{G,D,EMA}}.pth); pass the folder or the .pth file")


def _load_strict(module: torch.nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    load_checked(module, state, what, architecture="OASIS",
                 hint="Check --preset / --z-dim against the options the checkpoint was trained with (its opt.txt).")


def convert_oasis_checkpoint(
    checkpoint: str | Path,
    *,
    preset: str = "ade20k",
    weights: str = "EMA",
    iteration: str = "best",
    discriminator: bool = False,
    **config_overrides: Any,
) -> OASISModel | tuple[OASISModel, OASISDiscriminator]:
    """Convert an official OASIS checkpoint.

    Args:
        checkpoint: the experiment folder (or its `models/` sub-folder) or a generator `.pth` file.
        preset: dataset preset of the checkpoint ("ade20k", "cityscapes", "coco-stuff").
        weights: "EMA" (the averaged generator `test.py` uses, default) or "G" (the raw generator).
        iteration: which saved iteration: "best" (default, as `test.py`), "latest" or a number.
        discriminator: also convert `<iteration>_D.pth` (for fine-tuning) and return `(model, discriminator)`.
        **config_overrides: `OASISConfig` fields that differ from the preset (e.g. `z_dim`, `image_size`).

    Returns:
        The `OASISModel` in eval mode (and the `OASISDiscriminator`).
    """
    if weights not in GENERATOR_WEIGHTS:
        raise ValueError(f"weights must be one of {GENERATOR_WEIGHTS} (best_EMA.pth / best_G.pth), got {weights!r}")
    generator_path = checkpoint_file(checkpoint, weights, iteration)
    generator_state = load_torch_state_dict(generator_path)
    config = infer_config(generator_state, preset, **config_overrides)
    model = OASISModel(config)
    _load_strict(model, convert_generator_state_dict(generator_state), str(generator_path))
    model.eval()
    model.card_kwargs = {"training": {"converted_from": f"boschresearch/OASIS checkpoint {generator_path.name} "
                                                        f"(preset {preset})"}}
    if not discriminator:
        return model
    if Path(checkpoint).is_file():
        raise FileNotFoundError(f"converting the discriminator needs the checkpoint folder (with {iteration}_D.pth), "
                                f"not the file {checkpoint}")
    d_path = checkpoint_file(checkpoint, "D", iteration)
    d_state = convert_discriminator_state_dict(load_torch_state_dict(d_path))
    first = d_state.get("body_down.0.conv1.parametrizations.weight.original", d_state.get("body_down.0.conv1.weight"))
    if first is None:
        raise ValueError(f"{d_path} does not look like an OASIS discriminator (no body_down.0.conv1 weight)")
    # D's width and spectral norm are independent of G's in the weights: read them from D's own keys.
    d_config = copy.deepcopy(config)
    d_config.ndf = first.shape[0] // 2
    d_config.spectral_norm = "body_down.0.conv1.parametrizations.weight.original" in d_state
    d_config.validate()
    netd = OASISDiscriminator(d_config)
    _load_strict(netd, d_state, str(d_path))
    return model, netd.eval()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Command-line options shared by this module's `main` and `labelsynth convert oasis`."""
    add_converter_arguments(
        parser, OASISConfig, default_preset="ade20k", discriminator_file="<iter>_D.pth",
        checkpoint_help="checkpoint folder (<name>/ or <name>/models/ with best_EMA.pth) or a .pth",
        overrides=("label_nc", "image_size"),
        override_help={"label_nc": "override label_nc (custom datasets; channels = label_nc + 1)"})
    parser.add_argument("--weights", default="EMA", choices=GENERATOR_WEIGHTS,
                        help="EMA (the averaged generator, as test.py; default) or G (the raw generator)")
    parser.add_argument("--iter", default="best", dest="iteration",
                        help="which saved iteration: best (default, as test.py), latest or a number")
    parser.add_argument("--z-dim", type=int, help="override the noise channels (original --z_dim, 64)")


def run(args: argparse.Namespace) -> OASISModel:
    """Convert and save as `args` say; returns the model."""
    overrides = config_overrides(args, "z_dim", "label_nc", "image_size")
    return save_conversion(args, convert_oasis_checkpoint(args.checkpoint, preset=args.preset, weights=args.weights,
                                                          iteration=args.iteration,
                                                          discriminator=args.with_discriminator, **overrides))


def main(argv: list[str] | None = None) -> None:
    run_converter_script(__doc__, add_arguments, run, argv)


if __name__ == "__main__":
    main()
