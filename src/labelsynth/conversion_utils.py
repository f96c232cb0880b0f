"""What every `convert_<model>_original_checkpoint.py` shares: safe loading of original files, checked loading into
our modules, writing the converted model folder (weights, processor, card, optional discriminator, Hub push), and
the command-line options and steps of `labelsynth convert <model>` (`add_converter_arguments`, `config_overrides`,
`save_conversion`)."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from .state_dict_utils import load_torch_state_dict, state_dict_mismatch

__all__ = ["add_converter_arguments", "config_overrides", "convert_discriminator", "discriminator_checkpoint",
           "find_checkpoint_file", "generator_checkpoint", "load_checked", "multiscale_discriminator_options",
           "run_converter_script", "save_conversion", "save_converted"]


def find_checkpoint_file(folder: Path, net: str) -> Path | None:
    """`latest_net_<net>.pth` in an original checkpoint folder, else the first `*_net_<net>.pth`, else None."""
    for candidate in (folder / f"latest_net_{net}.pth", *sorted(folder.glob(f"*_net_{net}.pth"))):
        if candidate.is_file():
            return candidate
    return None


def generator_checkpoint(checkpoint: str | Path) -> tuple[Path, Path | None]:
    """`(generator .pth, checkpoint folder or None)` of a converter's `checkpoint` argument: a folder holding
    `latest_net_G.pth` (or `*_net_G.pth`), or the generator file itself."""
    checkpoint = Path(checkpoint)
    folder = checkpoint if checkpoint.is_dir() else None
    path = find_checkpoint_file(checkpoint, "G") if folder else checkpoint
    if path is None or not path.is_file():
        raise FileNotFoundError(f"no generator checkpoint (latest_net_G.pth or *_net_G.pth) in {checkpoint}")
    return path, folder


def discriminator_checkpoint(folder: Path | None) -> Path:
    """`latest_net_D.pth` (or `*_net_D.pth`) of a checkpoint folder; a lone generator file has none."""
    path = find_checkpoint_file(folder, "D") if folder else None
    if path is None:
        raise FileNotFoundError(f"no discriminator checkpoint (latest_net_D.pth) in {folder}: converting the "
                                "discriminator needs the checkpoint folder, not a generator file")
    return path


def load_checked(module: torch.nn.Module, state: dict[str, torch.Tensor], what: str, *, architecture: str,
                 hint: str, optional: Callable[[str], bool] | None = None) -> None:
    """Load `state` into `module` with every key accounted for, else one error listing missing, unexpected and
    mis-shaped keys. Keys for which `optional(key)` is true may be absent (the module keeps its values)."""
    problems = state_dict_mismatch(module.state_dict(), state, **({"optional": optional} if optional else {}))
    if problems:
        raise ValueError(f"{what} does not match the {architecture} architecture from the chosen options: "
                         f"{problems}. {hint}")
    module.load_state_dict(state, strict=optional is None)


def multiscale_discriminator_options(state: Mapping[str, torch.Tensor]) -> dict[str, int]:
    """`ndf`, `n_layers_d` and `num_d` of a converted `MultiscaleDiscriminator` state dict (keys
    ``discriminator.discriminators.<scale>.stages.<stage>...``): D's sizes are independent of G's, so a converter
    reads them from the weights (the original `--ndf`, `--n_layers_D`, `--num_D`)."""
    prefix = "discriminator.discriminators.0.stages."
    return {
        "ndf": state[f"{prefix}0.0.weight"].shape[0],
        "n_layers_d": len({k[len(prefix):].split(".")[0] for k in state if k.startswith(prefix)}) - 1,
        "num_d": len({k.split(".")[2] for k in state}),
    }


StateDict = dict[str, torch.Tensor]


def convert_discriminator(folder: Path | None, config: Any, discriminator_class: Any,
                          convert_state_dict: Callable[[StateDict], StateDict],
                          load: Callable[[torch.nn.Module, StateDict, str], None],
                          sizes: Callable[[StateDict], Mapping[str, int]] = multiscale_discriminator_options,
                          ) -> torch.nn.Module:
    """The discriminator of an original checkpoint folder (`discriminator_checkpoint`) as `discriminator_class`, in
    eval mode.

    Args:
        config: the converted generator's config; D's sizes, independent of G's, are read from the weights
            (`sizes` of the converted state dict, e.g. `ndf`, `n_layers_d`, `num_d`) and set on it.
        convert_state_dict: original keys -> ours.
        load: checked loading (`load(module, state, what)`, the converter's `load_checked` with its hint).
    """
    path = discriminator_checkpoint(folder)
    state = convert_state_dict(load_torch_state_dict(path))
    for name, value in sizes(state).items():
        setattr(config, name, value)
    netd = discriminator_class(config)
    load(netd, state, str(path))
    return netd.eval()


def save_converted(model, output_dir: str | Path, *, discriminator=None, push_to_hub: str | None = None) -> None:
    """Write a converted model folder: config, safetensors weights, model card and a `LabelMapProcessor` for the
    model's label space and size; the discriminator (for fine-tuning) in `discriminator/`; optionally push."""
    from .modeling_utils import save_discriminator
    from .processing import LabelMapProcessor

    height, width = model.config.image_size
    processor = LabelMapProcessor(label_space=model.config.label_space, size={"height": height, "width": width})
    model.save_pretrained(output_dir)
    processor.save_pretrained(output_dir)
    if discriminator is not None:
        save_discriminator(discriminator, output_dir)
    if push_to_hub:
        model.push_to_hub(push_to_hub)
        processor.push_to_hub(push_to_hub)


def run_converter_script(doc: str | None, add_arguments: Callable[[argparse.ArgumentParser], None],
                         run: Callable[[argparse.Namespace], object], argv: list[str] | None = None) -> None:
    """`python -m labelsynth.models.<m>.convert_<m>_original_checkpoint ...`: the same options as
    `labelsynth convert <m>`."""
    parser = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    add_arguments(parser)
    run(parser.parse_args(argv))


# Options that override a config field, shared by the converters that offer them: option -> (config field, the
# `add_argument` keywords).
OVERRIDE_OPTIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "label_nc": ("label_nc", {"type": int, "help": "override label_nc (custom datasets)"}),
    "contain_dontcare_label": ("contain_dontcare_label", {
        "action": argparse.BooleanOptionalAction, "default": None,
        "help": "override whether the model has a don't-care channel (original --contain_dontcare_label)"}),
    "instance_edges": ("use_instance_edges", {
        "action": argparse.BooleanOptionalAction, "default": None,
        "help": "override whether the model takes instance edges (original: not --no_instance)"}),
    "label_space": ("label_space", {"help": "override the label space (a registered name) for custom datasets"}),
    "image_size": ("image_size", {"type": int, "nargs": 2, "metavar": ("HEIGHT", "WIDTH"),
                                  "help": "override the generated size (original --crop_size / --aspect_ratio)"}),
}


def add_converter_arguments(parser: argparse.ArgumentParser, config_class: Any, *, checkpoint_help: str,
                            default_preset: str, preset_help: str = "dataset preset the checkpoint was trained with",
                            discriminator_file: str | None = "latest_net_D.pth", overrides: tuple[str, ...] = (),
                            override_help: Mapping[str, str] | None = None) -> None:
    """Add the options every ``labelsynth convert <model>`` shares; the converter adds its own after them.

    Args:
        config_class: the model's `LabelSynthConfig` subclass: `--preset` takes its `presets` and `preset_aliases`.
        checkpoint_help: what the ``checkpoint`` argument is (folder layout, file names).
        default_preset: `--preset`'s default.
        preset_help: `--preset`'s help, before ``(default: ...)``.
        discriminator_file: the original discriminator file `--with-discriminator` converts; None: the family has
            no discriminator to convert (no option).
        overrides: names of `OVERRIDE_OPTIONS` to offer (``"label_nc"`` -> ``--label-nc``), in this order; read
            them back with `config_overrides`.
        override_help: help texts replacing those of `OVERRIDE_OPTIONS` (e.g. the original option a size came from).
    """
    parser.add_argument("checkpoint", help=checkpoint_help)
    parser.add_argument("output_dir", help="where to write config.json, model.safetensors, preprocessor_config.json")
    parser.add_argument("--preset", default=default_preset,
                        choices=sorted({*config_class.presets, *config_class.preset_aliases}),
                        help=f"{preset_help} (default: {default_preset})")
    if discriminator_file is not None:
        parser.add_argument("--with-discriminator", action="store_true",
                            help=f"also convert {discriminator_file} into <output_dir>/discriminator (for fine-tuning)")
    for name in overrides:
        options = {**OVERRIDE_OPTIONS[name][1]}
        if override_help and name in override_help:
            options["help"] = override_help[name]
        parser.add_argument("--" + name.replace("_", "-"), **options)
    parser.add_argument("--push-to-hub", metavar="REPO_ID", help="also push the converted model to this Hub repo")


def config_overrides(args: argparse.Namespace, *names: str) -> dict[str, Any]:
    """``{config field: value}`` of the override options `names` given on the command line (options left out, i.e.
    None, are not overrides). Names of `OVERRIDE_OPTIONS` map to their field, any other to the field of its name."""
    fields = {name: OVERRIDE_OPTIONS[name][0] if name in OVERRIDE_OPTIONS else name for name in names}
    return {field: getattr(args, name) for name, field in fields.items() if getattr(args, name) is not None}


def save_conversion(args: argparse.Namespace, result: Any) -> Any:
    """Write what a ``convert_<model>_checkpoint`` returned (the model, or ``(model, discriminator)``) to
    ``args.output_dir`` with `save_converted`, pushing to ``args.push_to_hub`` when given; returns the model."""
    model, discriminator = result if isinstance(result, tuple) else (result, None)
    save_converted(model, args.output_dir, discriminator=discriminator, push_to_hub=args.push_to_hub)
    return model
