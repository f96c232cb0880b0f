"""Convert official NVIDIA/pix2pixHD checkpoints (`latest_net_G.pth`, `latest_net_E.pth`, `latest_net_D.pth`,
`features_clustered_010.npy`) to labelsynth.

```bash
labelsynth convert pix2pixhd checkpoints/label2city_1024p converted/pix2pixhd-cityscapes-1024p --preset cityscapes-1024p
labelsynth convert pix2pixhd checkpoints/label2city_512p_feat converted/pix2pixhd-512p-feat --preset cityscapes-512p-feat
```

The original files are plain `state_dict`s of the bare networks (loaded with `torch.load(weights_only=True)`); the
feature bank is a NumPy pickle of `{label: centres [k, feat_num]}`, read with an unpickler that only accepts NumPy's
array reconstruction (never arbitrary code). The originals' flat `nn.Sequential` indices become named modules:

* G1 `model.<i>`: 1 -> `stem.conv`, then per stride-2 conv `downsample.<d>.conv`, per residual block
  `res_blocks.<b>.conv_0 / conv_1` (its `conv_block.1 / .5`; BatchNorm at `.2 / .6` -> `norm_0 / norm_1`),
  `upsample.<u>.conv`, and the last conv `to_output` (norms follow their conv at index + 1);
* local enhancer n `model<n>_1` (stem, downsample) and `model<n>_2` (blocks, upsample, output conv) ->
  `generator.local_enhancers.<n-1>.*`;
* E has G1's layout without residual blocks -> `encoder.*`;
* D `scale<s>_layer<l>` (or `layer<s>.<i>` without intermediate features) -> `discriminator.discriminators.<k>
  .stages.<l>` with **k = num_D - 1 - s**: the original's `scale{num_D-1}` is its full-resolution discriminator.

Architecture options visible in the weights (global vs local, widths, depths, number of blocks and enhancers, batch
vs instance norm, feature channels, D depth and scales) are read from them and checked against the preset's
semantic input; `feature_mode` "instance" vs "label" is not visible and comes from the preset (or `--label-feat`).
"""

from __future__ import annotations

import argparse
import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...conversion_utils import (
    add_converter_arguments,
    config_overrides,
    discriminator_checkpoint,
    find_checkpoint_file,
    generator_checkpoint,
    load_checked,
    run_converter_script,
    save_conversion,
)
from ...state_dict_utils import load_torch_state_dict
from .configuration_pix2pixhd import Pix2PixHDConfig
from .modeling_pix2pixhd import Pix2PixHDDiscriminator, Pix2PixHDModel

_BLOCK_KEY = re.compile(r"^model\.(\d+)\.conv_block\.")
_ENHANCER_KEY = re.compile(r"^model(\d+)_1\.")
_D_INTERMEDIATE_KEY = re.compile(r"^scale(\d+)_layer(\d+)\.(\d+)\.(.+)$")
_D_FLAT_KEY = re.compile(r"^layer(\d+)\.(\d+)\.(.+)$")
_RESBLOCK_LAYERS = {"1": "conv_0", "2": "norm_0", "5": "conv_1", "6": "norm_1"}


# ------------------------------------------------------------------------------------------------ key mapping
def _conv_norm_names(index: int, name: str) -> dict[str, str]:
    """A conv at `index` of an original `nn.Sequential` and its norm right after it."""
    return {str(index): f"{name}.conv", str(index + 1): f"{name}.norm"}


def global_generator_names(n_downsampling: int, n_blocks: int, with_output: bool) -> dict[str, str]:
    """Original G1 (or E) `nn.Sequential` index -> our module path.

    Layout: [pad, conv, norm, relu] + n_downsampling x [conv, norm, relu] + n_blocks x ResnetBlock +
    n_downsampling x [convT, norm, relu] + [pad, conv, tanh].
    """
    names = _conv_norm_names(1, "stem")
    for d in range(n_downsampling):
        names.update(_conv_norm_names(4 + 3 * d, f"downsample.{d}"))
    first_block = 4 + 3 * n_downsampling
    for b in range(n_blocks):
        names.update({f"{first_block + b}.conv_block.{i}": f"res_blocks.{b}.{n}" for i, n in _RESBLOCK_LAYERS.items()})
    first_up = first_block + n_blocks
    for u in range(n_downsampling):
        names.update(_conv_norm_names(first_up + 3 * u, f"upsample.{u}"))
    if with_output:
        names[str(first_up + 3 * n_downsampling + 1)] = "to_output"
    return names


def local_enhancer_names(n: int, n_blocks: int, outermost: bool) -> dict[str, str]:
    """Original `model<n>_1` / `model<n>_2` indices -> our `local_enhancers.<n-1>` module paths."""
    prefix = f"local_enhancers.{n - 1}"
    names = {f"model{n}_1.{k}": f"{prefix}.{v}" for k, v in {**_conv_norm_names(1, "stem"),
                                                             **_conv_norm_names(4, "downsample")}.items()}
    for b in range(n_blocks):
        names.update({f"model{n}_2.{b}.conv_block.{i}": f"{prefix}.res_blocks.{b}.{m}"
                      for i, m in _RESBLOCK_LAYERS.items()})
    names.update({f"model{n}_2.{k}": f"{prefix}.{v}" for k, v in _conv_norm_names(n_blocks, "upsample").items()})
    if outermost:
        names[f"model{n}_2.{n_blocks + 4}"] = f"{prefix}.to_output"
    return names


def _rename(state: Mapping[str, torch.Tensor], names: Mapping[str, str], what: str) -> dict[str, torch.Tensor]:
    """Rename `<module path>.<tensor>` keys by their module path; unknown paths are a clear error."""
    renamed = {}
    for key, value in state.items():
        module, _, tensor = key.rpartition(".")
        if module not in names:
            raise ValueError(
                f"unexpected {what} key {key!r}: it does not belong to the architecture read from the checkpoint "
                f"(expected modules such as {', '.join(list(names)[:4])}, ...)"
            )
        renamed[f"{names[module]}.{tensor}"] = value
    return renamed


def convert_generator_state_dict(generator: Mapping[str, torch.Tensor], config: Pix2PixHDConfig,
                                 encoder: Mapping[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """Original G (and E) state dicts -> `Pix2PixHDModel` state dict (without the feature-bank buffers)."""
    num_local = config.num_local_enhancers
    names = {f"model.{k}": f"global_generator.{v}" for k, v in global_generator_names(
        config.n_downsample_global, config.n_blocks_global, with_output=num_local == 0).items()}
    for n in range(1, num_local + 1):
        names.update(local_enhancer_names(n, config.n_blocks_local, outermost=n == num_local))
    state = {f"generator.{k}": v for k, v in _rename(generator, names, "generator").items()}
    if encoder is not None:
        names = {f"model.{k}": v for k, v in global_generator_names(config.n_downsample_e, 0, True).items()}
        state.update({f"encoder.{k}": v for k, v in _rename(encoder, names, "encoder").items()})
    return state


def convert_discriminator_state_dict(discriminator: Mapping[str, torch.Tensor], num_d: int, n_layers_d: int
                                     ) -> dict[str, torch.Tensor]:
    """Original multi-scale D (with or without `getIntermFeat`) -> `Pix2PixHDDiscriminator` state dict."""
    last_stage = n_layers_d + 1
    state = {}
    for key, value in discriminator.items():
        if match := _D_INTERMEDIATE_KEY.match(key):
            scale, stage, index, tensor = int(match[1]), int(match[2]), int(match[3]), match[4]
        elif match := _D_FLAT_KEY.match(key):
            # One flat Sequential per scale: conv, lrelu, then (conv, norm, lrelu) per inner stage, then the logits conv.
            scale, flat, tensor = int(match[1]), int(match[2]), match[3]
            stage, index = (0, 0) if flat == 0 else (1 + (flat - 2) // 3, (flat - 2) % 3)
        else:
            raise ValueError(f"unexpected discriminator key {key!r} (expected scale<s>_layer<l>.* or layer<s>.*)")
        # Inner stages are Sequential(Sequential(conv, norm), LeakyReLU) in `NLayerDiscriminator`.
        inner = f"0.{index}" if 0 < stage < last_stage else str(index)
        state[f"discriminator.discriminators.{num_d - 1 - scale}.stages.{stage}.{inner}.{tensor}"] = value
    return state


# ------------------------------------------------------------------------------------------------ config
def _indices(state: Mapping[str, torch.Tensor], prefix: str) -> list[int]:
    return sorted({int(k[len(prefix):].split(".")[0]) for k in state if k.startswith(prefix)})


def _global_layout(state: Mapping[str, torch.Tensor], what: str) -> tuple[int, int, int]:
    """(first width, stride-2 convs, residual blocks) of an original G1 / E `model.<i>` state dict."""
    if "model.1.weight" not in state:
        raise ValueError(f"this does not look like a pix2pixHD {what} state dict (no model.1.weight)")
    blocks = sorted({int(m[1]) for k in state if (m := _BLOCK_KEY.match(k))})
    convs = [i for i in _indices(state, "model.") if state.get(f"model.{i}.weight", torch.empty(0)).dim() == 4]
    if blocks:
        n_down = (blocks[0] - 4) // 3
    else:  # stem + n_down convs + n_down transposed convs (+ the output conv)
        n_down = (len(convs) - 1) // 2
    return state["model.1.weight"].shape[0], n_down, len(blocks)


def infer_config(generator: Mapping[str, torch.Tensor], encoder: Mapping[str, torch.Tensor] | None = None,
                 preset: str = "cityscapes-1024p", **overrides: Any) -> Pix2PixHDConfig:
    """Build the `Pix2PixHDConfig` of original G (and E) state dicts, checked against a preset's semantic input."""
    width, n_down, n_blocks = _global_layout(generator, "generator")
    enhancers = sorted({int(m[1]) for k in generator if (m := _ENHANCER_KEY.match(k))})
    found: dict[str, Any] = {"n_downsample_global": n_down, "n_blocks_global": n_blocks,
                             "norm": "batch" if any(k.endswith("running_mean") for k in generator) else "instance"}
    if enhancers:
        outer = len(enhancers)
        found.update(generator_type="local", n_local_enhancers=outer, ngf=generator[f"model{outer}_1.1.weight"].shape[0],
                     n_blocks_local=len({k.split(".")[1] for k in generator
                                         if k.startswith(f"model{outer}_2.") and ".conv_block." in k}))
        input_nc = generator[f"model{outer}_1.1.weight"].shape[1]
    else:
        found.update(generator_type="global", ngf=width)
        input_nc = generator["model.1.weight"].shape[1]
    if encoder is not None:
        nef, n_down_e, _ = _global_layout(encoder, "encoder")
        last = max(i for i in _indices(encoder, "model.") if encoder.get(f"model.{i}.weight", torch.empty(0)).dim() == 4)
        found.update(nef=nef, n_downsample_e=n_down_e, feat_num=encoder[f"model.{last}.weight"].shape[0])
    settings = {**Pix2PixHDConfig.resolve_preset(preset), **found, **overrides}
    if encoder is not None and settings.get("feature_mode") is None:
        settings["feature_mode"] = "instance"
    elif encoder is None and "feature_mode" not in overrides:
        settings["feature_mode"] = None
    config = Pix2PixHDConfig(**settings)
    if config.generator_input_nc != input_nc:
        features = input_nc - config.semantic_nc
        hint = (f" It looks like a model trained with encoded features ({features} channels): convert it with its "
                "latest_net_E.pth." if encoder is None and features > 0 else "")
        raise ValueError(
            f"the checkpoint's generator takes {input_nc} input channels but the options give "
            f"{config.generator_input_nc} (label_nc={config.label_nc} + don't care {int(config.contain_dontcare_label)}"
            f" + instance edges {int(config.use_instance_edges)} + features "
            f"{config.feat_num if config.use_features else 0}).{hint} Pick the right --preset or set --label-nc / "
            "--[no-]instance-edges as the checkpoint was trained (its opt.txt)"
        )
    return config


# ------------------------------------------------------------------------------------------------ feature bank
class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles NumPy arrays and plain containers only: anything else (which could run code) is refused."""

    _ALLOWED = frozenset({("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                          ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
                          ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")})

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: a feature bank holds only NumPy arrays")
        if module.startswith("numpy.core."):  # pickles written with NumPy < 2
            module = "numpy._core." + module.removeprefix("numpy.core.")
        return super().find_class(module, name)


def load_feature_bank(path: str | Path) -> dict[int, np.ndarray]:
    """Read the original `features_clustered_<n>.npy` (`np.save` of `{label: centres [k, feat_num]}`) safely."""
    with open(path, "rb") as file:
        try:
            version = np.lib.format.read_magic(file)
            header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            _, _, dtype = header(file)
        except ValueError as err:
            raise ValueError(f"{path} is not a .npy file ({err})") from None
        if dtype != np.dtype(object):
            raise ValueError(f"{path} holds a plain {dtype} array, not the {{label: centres}} dict of encode_features.py")
        array = _ArrayUnpickler(file, encoding="latin1").load()
    bank = array.item() if isinstance(array, np.ndarray) else array
    if not isinstance(bank, dict):
        raise ValueError(f"{path} does not hold a {{label: centres}} dict (found {type(bank).__name__})")
    out = {}
    for label, centres in bank.items():
        centres = np.asarray(centres, dtype=np.float64)
        if centres.ndim != 2:
            raise ValueError(f"{path}: the centres of label {label} have shape {centres.shape}, expected [k, feat_num]")
        if len(centres):
            out[int(label)] = centres
    return out


# ------------------------------------------------------------------------------------------------ conversion
def _load_strict(module: torch.nn.Module, state: dict[str, torch.Tensor], what: str,
                 optional: tuple[str, ...] = ()) -> None:
    load_checked(module, state, what, architecture="pix2pixHD",
                 hint="Check --preset (and --label-feat) against the options the checkpoint was "
                      "trained with (its opt.txt).",
                 optional=(lambda key: key in optional) if optional else None)


def convert_pix2pixhd_checkpoint(
    checkpoint: str | Path,
    *,
    preset: str = "cityscapes-1024p",
    encoder_path: str | Path | None = None,
    feature_bank_path: str | Path | None = None,
    discriminator: bool = False,
    **config_overrides: Any,
) -> Pix2PixHDModel | tuple[Pix2PixHDModel, Pix2PixHDDiscriminator]:
    """Convert an official pix2pixHD checkpoint.

    Args:
        checkpoint: a checkpoint folder (`latest_net_G.pth`, and for feature models `latest_net_E.pth` and
            `features_clustered_010.npy`) or the path of a generator `.pth` file.
        preset: the recipe the checkpoint was trained with (label space, image size; see `PIX2PIXHD_PRESETS`).
        encoder_path: the encoder file, when not next to the generator.
        feature_bank_path: the clustered features (`features_clustered_<n>.npy`), when not next to the generator.
        discriminator: also convert `latest_net_D.pth` (for fine-tuning) and return `(model, discriminator)`.
        **config_overrides: `Pix2PixHDConfig` fields that differ from the preset (e.g. `label_nc`, `feature_mode`).

    Returns:
        The `Pix2PixHDModel` in eval mode (and the `Pix2PixHDDiscriminator`).
    """
    generator_path, folder = generator_checkpoint(checkpoint)
    folder = folder or generator_path.parent  # the encoder and feature bank sit next to a lone generator file
    generator_state = load_torch_state_dict(generator_path)
    encoder_path = Path(encoder_path) if encoder_path else find_checkpoint_file(folder, "E")
    encoder_state = load_torch_state_dict(encoder_path) if encoder_path else None

    bank = None
    if feature_bank_path is None and encoder_state is not None:
        found = sorted(folder.glob("features_clustered_*.npy"))
        feature_bank_path = found[-1] if found else None
    if feature_bank_path is not None:
        bank = load_feature_bank(feature_bank_path)
        config_overrides.setdefault("n_clusters", max([len(c) for c in bank.values()] + [1]))
    config = infer_config(generator_state, encoder_state, preset, **config_overrides)
    if bank is not None and not config.use_features:
        raise ValueError(f"a feature bank ({feature_bank_path}) was given but the generator takes no feature channels")

    model = Pix2PixHDModel(config)
    optional = ("feature_clusters", "feature_cluster_counts")
    _load_strict(model, convert_generator_state_dict(generator_state, config, encoder_state), str(generator_path),
                 optional)
    if bank is not None:
        model.set_feature_clusters({label: torch.from_numpy(c) for label, c in bank.items()})
    model.eval()
    sources = ", ".join(p.name for p in (generator_path, encoder_path, feature_bank_path and Path(feature_bank_path))
                        if p)
    model.card_kwargs = {"training": {"converted_from": f"NVIDIA/pix2pixHD checkpoint {sources} (preset {preset})"}}
    if not discriminator:
        return model
    d_path = discriminator_checkpoint(folder)
    d_original = load_torch_state_dict(d_path)
    # D's width, depth and scales are independent of G's; read them (`--ndf`, `--n_layers_D`, `--num_D`).
    if any(_D_INTERMEDIATE_KEY.match(k) for k in d_original):
        config.num_d = len({int(_D_INTERMEDIATE_KEY.match(k)[1]) for k in d_original})
        config.n_layers_d = len({k.split("_")[1].split(".")[0] for k in d_original if k.startswith("scale0_")}) - 2
        config.ndf = d_original["scale0_layer0.0.weight"].shape[0]
    else:
        config.num_d = len({k.split(".")[0] for k in d_original})
        config.n_layers_d = sum(1 for k, v in d_original.items() if k.startswith("layer0.") and v.dim() == 4) - 2
        config.ndf = d_original["layer0.0.weight"].shape[0]
    netd = Pix2PixHDDiscriminator(config)
    _load_strict(netd, convert_discriminator_state_dict(d_original, config.num_d, config.n_layers_d), str(d_path))
    return model, netd.eval()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Command-line options shared by this module's `main` and `labelsynth convert pix2pixhd`."""
    add_converter_arguments(
        parser, Pix2PixHDConfig, default_preset="cityscapes-1024p",
        checkpoint_help="checkpoint folder (latest_net_G.pth [+ latest_net_E.pth, features_clustered_010.npy]) or a "
                        "G .pth file",
        preset_help="the recipe the checkpoint was trained with (cityscapes-1024p: the released label2city_1024p)",
        overrides=("label_nc", "instance_edges", "image_size"),
        override_help={"image_size": "override the native generated size (original --loadSize / --fineSize)"})
    parser.add_argument("--encoder", help="path of latest_net_E.pth when it is not in the checkpoint folder")
    parser.add_argument("--features", help="path of features_clustered_010.npy when it is not in the checkpoint folder")
    parser.add_argument("--label-feat", action="store_true",
                        help="the encoder pools over label regions, not instances (original --label_feat)")


def run(args: argparse.Namespace) -> Pix2PixHDModel:
    """Convert and save as `args` say; returns the model."""
    overrides = config_overrides(args, "label_nc", "instance_edges", "image_size")
    if args.label_feat:
        overrides["feature_mode"] = "label"
    return save_conversion(args, convert_pix2pixhd_checkpoint(
        args.checkpoint, preset=args.preset, encoder_path=args.encoder, feature_bank_path=args.features,
        discriminator=args.with_discriminator, **overrides))


def main(argv: list[str] | None = None) -> None:
    run_converter_script(__doc__, add_arguments, run, argv)


if __name__ == "__main__":
    main()
