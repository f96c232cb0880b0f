"""Convert the released CRN TensorFlow checkpoints (CQFIO/PhotographicImageSynthesis) to labelsynth, without TensorFlow.

```bash
labelsynth convert crn result_256p converted/crn-cityscapes-256p --preset cityscapes
labelsynth convert crn result_512p/model.ckpt converted/crn-cityscapes-512p --preset cityscapes
labelsynth convert crn result_GTA converted/crn-gta-256p --preset gta
```

A checkpoint is a TF V2 bundle (`model.ckpt.index` + `model.ckpt.data-00000-of-00001`), read by
`labelsynth.models.crn.tf_checkpoint`. Variables and their labelsynth names (`sp` = module height, 4, 8, ...):

| TensorFlow | labelsynth |
|---|---|
| `g_{sp}_conv{j}/weights` [3, 3, in, out] (HWIO) | `generator.blocks.{i}.conv{j}.weight` [out, in, 3, 3] |
| `g_{sp}_conv{j}/LayerNorm/gamma`, `.../beta` | `generator.blocks.{i}.norm{j}.weight`, `.bias` |
| `g_{sp}_conv100/weights` [1, 1, C, 3k], `biases` | `generator.head.weight` [3k, C, 1, 1], `.bias` |

with i the module index from the coarsest (sp = 4). Adam slots (`.../Adam`, `.../Adam_1`) and `beta1_power` /
`beta2_power` are dropped. Module widths, the number of modules and of outputs k, and the semantic channels are
read from the weights; the preset gives the label space and the aspect ratio (1:2 for all released models).
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...conversion_utils import add_converter_arguments, config_overrides, run_converter_script, save_conversion
from ...state_dict_utils import state_dict_mismatch
from .configuration_crn import CRNConfig
from .modeling_crn import CRNModel
from .tf_checkpoint import list_tf_checkpoint, load_tf_checkpoint, resolve_tf_checkpoint_prefix

_VARIABLE = re.compile(r"^g_(\d+)_conv(\d+)/(weights|biases|LayerNorm/gamma|LayerNorm/beta)$")
_HEAD_CONV = 100


def _is_optimizer_state(name: str) -> bool:
    return name.endswith(("/Adam", "/Adam_1")) or name in ("beta1_power", "beta2_power")


def generator_variables(names: list[str] | Mapping[str, Any]) -> list[str]:
    """The generator's variable names in a checkpoint (optimizer state dropped); other names are an error."""
    kept = [n for n in names if not _is_optimizer_state(n)]
    unknown = [n for n in kept if not _VARIABLE.match(n)]
    if unknown:
        shown = ", ".join(unknown[:10]) + (", ..." if len(unknown) > 10 else "")
        raise ValueError(f"unexpected variables in the CRN checkpoint ({len(unknown)}): {shown}; expected only "
                         "g_<height>_conv<1|2|100>/... generator variables and Adam slots")
    return kept


def infer_config(shapes: Mapping[str, tuple[int, ...]], preset: str = "cityscapes", **overrides: Any) -> CRNConfig:
    """The `CRNConfig` of a checkpoint from its variable shapes, with the label space of a dataset preset."""
    heights = sorted({int(_VARIABLE.match(n).group(1)) for n in shapes if _VARIABLE.match(n)})
    if not heights:
        raise ValueError("no CRN generator variables (g_<height>_conv1/weights ...) in this checkpoint")
    heads = [h for h in heights if f"g_{h}_conv{_HEAD_CONV}/weights" in shapes]
    if heads != [heights[-1]]:
        raise ValueError(f"expected one output head g_{heights[-1]}_conv100 on the finest module, found {heads}")
    expected = [heights[0] * 2**i for i in range(len(heights))]
    if heights != expected:
        raise ValueError(f"refinement modules at heights {heights}; expected each to double the previous one")
    widths = [shapes[f"g_{h}_conv1/weights"][3] for h in heights]
    head = shapes[f"g_{heights[-1]}_conv{_HEAD_CONV}/weights"]
    if head[3] % 3:
        raise ValueError(f"the output head has {head[3]} channels, not a multiple of 3 (k RGB images)")
    fields = CRNConfig.resolve_preset(preset)
    aspect = fields["image_size"][1] / fields["image_size"][0]
    found = {"module_channels": widths, "num_outputs": head[3] // 3,
             "image_size": (heights[-1], round(heights[-1] * aspect))}
    config = CRNConfig(**{**fields, **found, **overrides})
    semantic_nc = shapes[f"g_{heights[0]}_conv1/weights"][2]
    if config.semantic_nc != semantic_nc:
        raise ValueError(
            f"the checkpoint's first module takes {semantic_nc} semantic channels but preset {preset!r} gives "
            f"{config.semantic_nc}; pick the preset of the dataset the checkpoint was trained on"
        )
    return config


def tf_variable_to_key(name: str, coarsest_height: int) -> str:
    """`g_{sp}_conv{j}/...` -> the `CRNModel` state-dict key (module index = log2(sp / coarsest_height))."""
    height, conv, kind = _VARIABLE.match(name).groups()
    if int(conv) == _HEAD_CONV:
        return "generator.head." + ("weight" if kind == "weights" else "bias")
    index = (int(height) // coarsest_height).bit_length() - 1
    suffix = {"weights": f"conv{conv}.weight", "LayerNorm/gamma": f"norm{conv}.weight",
              "LayerNorm/beta": f"norm{conv}.bias", "biases": f"conv{conv}.bias"}[kind]
    return f"generator.blocks.{index}.{suffix}"


def convert_state_dict(variables: Mapping[str, np.ndarray], config: CRNConfig) -> dict[str, torch.Tensor]:
    """TF generator variables (numpy, TF layouts) -> `CRNModel` state dict."""
    coarsest = config.image_size[0] // config.downsampling_factor
    state = {}
    for name, value in variables.items():
        tensor = torch.from_numpy(value).float()
        if tensor.dim() == 4:
            tensor = tensor.permute(3, 2, 0, 1).contiguous()  # conv kernels: HWIO -> OIHW
        state[tf_variable_to_key(name, coarsest)] = tensor
    return state


def convert_crn_checkpoint(checkpoint: str | Path, *, preset: str = "cityscapes", **config_overrides: Any) -> CRNModel:
    """Convert a released CRN checkpoint.

    Args:
        checkpoint: the checkpoint folder (`result_256p`, with its `checkpoint` file or one `*.index`), the bundle
            prefix (`result_256p/model.ckpt`) or its `.index` file. The `.data-00000-of-00001` shard must be next
            to the index.
        preset: dataset of the checkpoint: "cityscapes" or "gta" (any `CRN_PRESETS` name; sizes come from the
            weights).
        **config_overrides: `CRNConfig` fields to change (e.g. `image_size` for another aspect ratio).

    Returns:
        The `CRNModel` in eval mode.
    """
    prefix = resolve_tf_checkpoint_prefix(checkpoint)
    entries, _ = list_tf_checkpoint(prefix)
    names = generator_variables(entries)
    config = infer_config({n: entries[n].shape for n in names}, preset, **config_overrides)
    state = convert_state_dict(load_tf_checkpoint(prefix, names), config)
    model = CRNModel(config)
    problems = state_dict_mismatch(model.state_dict(), state)
    if problems:
        raise ValueError(f"{prefix} does not match the CRN architecture read from it: {problems}")
    model.load_state_dict(state, strict=True)
    model.eval()
    model.card_kwargs = {"training": {"converted_from": f"CQFIO/PhotographicImageSynthesis checkpoint "
                                                        f"{prefix.parent.name}/{prefix.name} (preset {preset})"}}
    return model


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Command-line options shared by this module's `main` and `labelsynth convert crn`."""
    add_converter_arguments(
        parser, CRNConfig, default_preset="cityscapes", discriminator_file=None,
        checkpoint_help="checkpoint folder (result_256p) or bundle prefix (result_256p/model.ckpt)",
        preset_help="dataset the checkpoint was trained on; sizes come from the weights", overrides=("image_size",),
        override_help={"image_size": "override the native size (default: the finest module's height, preset aspect "
                                     "ratio)"})


def run(args: argparse.Namespace) -> CRNModel:
    """Convert and save as `args` say; returns the model."""
    return save_conversion(args, convert_crn_checkpoint(args.checkpoint, preset=args.preset,
                                                        **config_overrides(args, "image_size")))


def main(argv: list[str] | None = None) -> None:
    run_converter_script(__doc__, add_arguments, run, argv)


if __name__ == "__main__":
    main()
