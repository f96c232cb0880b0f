"""What every `convert_<model>_original_checkpoint.py` shares: safe loading of original files, checked loading into
our modules, and writing the converted model folder (weights, processor, card, optional discriminator, Hub push)."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from pathlib import Path

import torch

from .state_dict_utils import state_dict_mismatch

__all__ = ["discriminator_checkpoint", "find_checkpoint_file", "generator_checkpoint", "load_checked",
           "multiscale_discriminator_options", "run_converter_script", "save_converted"]


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
