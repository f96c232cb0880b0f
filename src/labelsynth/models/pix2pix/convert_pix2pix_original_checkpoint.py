"""Convert official pix2pix checkpoints (junyanz/pytorch-CycleGAN-and-pix2pix `latest_net_G.pth`) to labelsynth.

```bash
labelsynth convert pix2pix checkpoints/facades_label2photo converted/pix2pix-facades --preset facades
labelsynth convert pix2pix facades_label2photo.pth converted/pix2pix-facades --preset facades   # a released G file
python -m labelsynth.models.pix2pix.convert_pix2pix_original_checkpoint latest_net_G.pth out --preset cityscapes
```

The original files are plain `state_dict`s (loaded with `torch.load(weights_only=True)`). The U-Net is stored
recursively: level 0 is `model.model.`, level 1 `model.model.1.model.`, and every deeper level adds `3.model.`; inside
a level the Sequential index says which layer a tensor belongs to (outermost: 0 down conv, 3 up conv; middle levels:
1 down conv, 2 down norm, 5 up conv, 6 up norm; innermost: 1 down conv, 3 up conv, 4 up norm). They become
`generator.levels.<k>.{down_conv,down_norm,up_conv,up_norm}.*`; transposed-conv weights keep their
`[in, out, k, k]` layout. The discriminator's flat `model.<i>` becomes `discriminator.stages.<n>...`.

Read from the weights: the number of levels (`unet_256` = 8, `unet_128` = 7), `ngf`, the input channels (3 = colour
label images, else one-hot), batch vs instance norm (convs have biases only with instance norm), and for the
discriminator `ndf` and `n_layers_D`. Not visible in the weights: dropout (`--no_dropout`) and the label space, which
come from the preset and options. InstanceNorm checkpoints written by PyTorch < 0.4 (or the 2018 code, which tracked
running statistics) carry `running_mean/var` for the norms: they are dropped, as the original loader does; BatchNorm
files without `num_batches_tracked` (PyTorch < 0.4) get 0.
"""

from __future__ import annotations

import argparse
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
from .configuration_pix2pix import Pix2PixConfig
from .modeling_pix2pix import Pix2PixDiscriminator, Pix2PixModel

# Sequential index -> layer name inside one level of the original recursive U-Net.
_OUTERMOST = {"0": "down_conv", "3": "up_conv"}
_MIDDLE = {"1": "down_conv", "2": "down_norm", "5": "up_conv", "6": "up_norm"}
_INNERMOST = {"1": "down_conv", "3": "up_conv", "4": "up_norm"}
_RUNNING_STATS = ("running_mean", "running_var", "num_batches_tracked")


def _split_level(key: str) -> tuple[int, str] | None:
    """`model.model.1.model.3.model.5.weight` -> (2, "5.weight"): the U-Net level and the key inside it."""
    if not key.startswith("model.model."):
        return None
    rest, level = key[len("model.model."):], 0
    if rest.startswith("1.model."):
        rest, level = rest[len("1.model."):], 1
        while rest.startswith("3.model."):
            rest, level = rest[len("3.model."):], level + 1
    return level, rest


def count_levels(generator: Mapping[str, torch.Tensor]) -> int:
    """Number of U-Net levels (`num_downs`) of an original generator state dict."""
    return 1 + max((split[0] for split in map(_split_level, generator) if split), default=-1)


def convert_generator_state_dict(generator: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Original U-Net state dict -> `Pix2PixModel` state dict.

    Running statistics of InstanceNorms (old checkpoints) are dropped; keys that are not part of the U-Net layout
    are kept under their own name, so that loading lists them as unexpected.
    """
    num_downs, instance = count_levels(generator), _is_instance_norm(generator)
    state = {}
    for key, value in generator.items():
        split = _split_level(key)
        level, rest = split if split else (None, "")
        index, _, param = rest.partition(".")
        table = _OUTERMOST if level == 0 else _INNERMOST if level == num_downs - 1 else _MIDDLE
        if split is None or index not in table:
            state[key] = value
            continue
        name = table[index]
        if instance and name.endswith("_norm") and param in _RUNNING_STATS:
            continue  # stale InstanceNorm statistics of PyTorch < 0.4 / 2018 checkpoints
        state[f"generator.levels.{level}.{name}.{param}"] = value
    return state


def convert_discriminator_state_dict(discriminator: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Original `NLayerDiscriminator` state dict (`model.<i>.*`) -> `Pix2PixDiscriminator` state dict.

    Index 0 is the first conv; stage n >= 1 has its conv at 3n - 1 and its norm at 3n; the last conv is at
    3 * n_layers_D + 2.
    """
    indices = sorted(int(key.split(".")[1]) for key in discriminator
                     if key.startswith("model.") and key.split(".")[1].isdigit())
    if not indices:
        raise ValueError("this does not look like a pix2pix PatchGAN state dict (no model.<index>.* keys)")
    last = indices[-1]
    n_layers = (last - 2) // 3
    instance = all(f"model.{3 * n}.weight" not in discriminator for n in range(1, n_layers + 1))
    state = {}
    for key, value in discriminator.items():
        head, index, param = (key.split(".", 2) + ["", ""])[:3]
        if head != "model" or not index.isdigit():
            state[key] = value  # reported as unexpected when loading
            continue
        index = int(index)
        if index == 0:
            new = f"stages.0.0.{param}"
        elif index == last:
            new = f"stages.{n_layers + 1}.0.{param}"
        elif index % 3 == 2:
            new = f"stages.{(index + 1) // 3}.0.0.{param}"
        elif index % 3 == 0 and not (instance and param in _RUNNING_STATS):
            new = f"stages.{index // 3}.0.1.{param}"
        elif index % 3 == 0:
            continue  # stale InstanceNorm statistics
        else:
            state[key] = value
            continue
        state[f"discriminator.{new}"] = value
    return state


def _is_instance_norm(generator: Mapping[str, torch.Tensor]) -> bool:
    # The original gives convs a bias only with InstanceNorm; the outermost down conv shows it.
    return "model.model.0.bias" in generator


def infer_config(generator: Mapping[str, torch.Tensor], preset: str = "facades", **overrides: Any) -> Pix2PixConfig:
    """Build the `Pix2PixConfig` of an original generator state dict, checking it against a dataset preset."""
    first = generator.get("model.model.0.weight")
    last = generator.get("model.model.3.weight")
    if first is None or last is None or first.dim() != 4:
        raise ValueError(
            "this does not look like a pix2pix U-Net state dict (no model.model.0.weight / model.model.3.weight); "
            "pass latest_net_G.pth (or the checkpoint folder holding it) of a --netG unet_256 / unet_128 model"
        )
    if last.shape[1] != 3:
        raise ValueError(f"the generator outputs {last.shape[1]} channels; labelsynth's pix2pix generates RGB (3)")
    input_nc = first.shape[1]
    found: dict[str, Any] = {"ngf": first.shape[0], "num_downs": count_levels(generator),
                             "norm": "instance" if _is_instance_norm(generator) else "batch"}
    values = {**Pix2PixConfig.resolve_preset(preset), **found, **overrides}
    if "input_encoding" not in overrides:
        values["input_encoding"] = "color" if input_nc == 3 + int(values.get("use_instance_edges", False)) else "one_hot"
    config = Pix2PixConfig(**values)
    if config.generator_input_nc != input_nc:
        raise ValueError(
            f"the checkpoint's generator takes {input_nc} input channels but preset {preset!r} gives "
            f"{config.generator_input_nc} ({config.input_encoding} encoding: 3 colour channels or label_nc="
            f"{config.label_nc} one-hot + don't care {int(config.contain_dontcare_label)}, + instance edges "
            f"{int(config.use_instance_edges)}); pick the right --preset or set --label-nc / --input-encoding as the "
            "model was trained (its opt.txt: --input_nc)"
        )
    return config


def _load_strict(module: torch.nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    for key, value in module.state_dict().items():  # BatchNorm files of PyTorch < 0.4 have no num_batches_tracked
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = torch.zeros_like(value)
    load_checked(module, state, what, architecture="pix2pix",
                 hint="Check --preset / --label-nc / --input-encoding against the options the checkpoint was "
                      "trained with (its opt.txt).")


def convert_pix2pix_checkpoint(
    checkpoint: str | Path,
    *,
    preset: str = "facades",
    discriminator: bool = False,
    **config_overrides: Any,
) -> Pix2PixModel | tuple[Pix2PixModel, Pix2PixDiscriminator]:
    """Convert an official pix2pix checkpoint.

    Args:
        checkpoint: a checkpoint folder (with `latest_net_G.pth`) or the path of a generator `.pth` file (e.g. a
            released `facades_label2photo.pth`).
        preset: dataset preset ("facades", "cityscapes"): label space and image size.
        discriminator: also convert `latest_net_D.pth` (for fine-tuning) and return `(model, discriminator)`.
        **config_overrides: `Pix2PixConfig` fields that differ from the preset (`use_dropout=False` for models
            trained with `--no_dropout`, `label_nc`, `input_encoding`, `test_mode`, ...).

    Returns:
        The `Pix2PixModel` in eval mode (and the `Pix2PixDiscriminator`).
    """
    generator_path, folder = generator_checkpoint(checkpoint)
    generator_state = load_torch_state_dict(generator_path)
    config = infer_config(generator_state, preset, **config_overrides)
    model = Pix2PixModel(config)
    _load_strict(model, convert_generator_state_dict(generator_state), str(generator_path))
    model.eval()
    model.card_kwargs = {"training": {"converted_from": f"junyanz/pytorch-CycleGAN-and-pix2pix checkpoint "
                                                        f"{generator_path.name} (preset {preset})"}}
    if not discriminator:
        return model
    return model, convert_discriminator(folder, config, Pix2PixDiscriminator, convert_discriminator_state_dict,
                                        _load_strict, sizes=_discriminator_sizes)


def _discriminator_sizes(state: dict[str, torch.Tensor]) -> dict[str, int]:
    """`--ndf` and `--n_layers_D` of a converted PatchGAN state dict (the single-scale `discriminator.stages.<n>`)."""
    return {"ndf": state["discriminator.stages.0.0.weight"].shape[0],
            "n_layers_d": len({k.split(".")[2] for k in state}) - 2}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Command-line options shared by this module's `main` and `labelsynth convert pix2pix`."""
    add_converter_arguments(parser, Pix2PixConfig, default_preset="facades",
                            checkpoint_help="checkpoint folder (latest_net_G.pth) or a generator .pth file",
                            preset_help="dataset preset: label space and image size",
                            overrides=("label_nc", "label_space", "image_size"),
                            override_help={"image_size": "override the generated size (original --crop_size)"})
    parser.add_argument("--no-dropout", action="store_true",
                        help="the model was trained with --no_dropout (not visible in the weights)")
    parser.add_argument("--test-mode", choices=["original", "eval"],
                        help="default test mode of the converted model (default: original, as the original test.py)")
    parser.add_argument("--input-encoding", choices=["color", "one_hot"],
                        help="override the input encoding read from the weights (3 input channels = color)")


def run(args: argparse.Namespace) -> Pix2PixModel:
    """Convert and save as `args` say; returns the model."""
    overrides = config_overrides(args, "label_nc", "label_space", "input_encoding", "test_mode", "image_size")
    if args.no_dropout:
        overrides["use_dropout"] = False
    return save_conversion(args, convert_pix2pix_checkpoint(args.checkpoint, preset=args.preset,
                                                            discriminator=args.with_discriminator, **overrides))


def main(argv: list[str] | None = None) -> None:
    run_converter_script(__doc__, add_arguments, run, argv)


if __name__ == "__main__":
    main()
