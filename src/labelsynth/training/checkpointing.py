"""Resumable training checkpoints that are safe to share: safetensors and JSON only, nothing is unpickled.

Accelerate's `save_state` pickles optimizer, scheduler, RNG and registered-object states, and its `load_state`
unpickles registered objects with `weights_only=False`, so resuming from someone else's checkpoint could run their
code. A labelsynth `checkpoint-N` folder instead holds:

===============================  ====================================================================================
file                             content
===============================  ====================================================================================
``trainer_state.json``           format version, step / epoch / batch counters, Accelerate's micro-batch counter, the
                                 number of processes and the list of the files below
``generator.safetensors``        generator weights and buffers
``discriminator.safetensors``    discriminator weights and buffers (absent for modules without one, e.g. CRN)
``ema.safetensors``              the EMA generator (only with ``--ema_decay``)
``optimizer_state.safetensors``  optimizer, learning-rate scheduler and gradient-scaler states
``rng_state_<rank>.safetensors`` per process: the Python, NumPy and torch global RNGs and the training module's own
                                 generator (the source of every random draw of the losses)
===============================  ====================================================================================

States that are not plain tensors (an optimizer's nested dicts of numbers and tensors, a Python RNG state) are "state
trees": their structure goes to JSON in the safetensors header, their tensors to the safetensors body. Reading parses
JSON and the safetensors header, nothing else, and every problem is a `CheckpointError` naming the file.

A folder is written as `checkpoint-N.tmp` and renamed when complete, so a run killed while saving leaves no
`checkpoint-N` behind; `checkpoint-N.tmp`, `.old` and `.deleting` leftovers are removed at the next save.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

CHECKPOINT_PREFIX = "checkpoint-"
FORMAT_NAME = "labelsynth-training-checkpoint"
FORMAT_VERSION = 1
TRAINER_STATE = "trainer_state.json"
OPTIMIZER_STATE = "optimizer_state.safetensors"
MODEL_FILES = {"generator": "generator.safetensors", "discriminator": "discriminator.safetensors",
               "ema": "ema.safetensors"}
# What Accelerate's `save_state` writes; all but the weights are pickles, which labelsynth never loads.
ACCELERATE_PICKLES = ("custom_checkpoint_*.pkl", "random_states_*.pkl", "optimizer*.bin", "scheduler*.bin",
                      "sampler*.bin", "dl_state_dict*.bin", "scaler.pt", "pytorch_model*.bin")
_TREE_KEY = "labelsynth_state_tree"
_LEFTOVER_SUFFIXES = (".tmp", ".old", ".deleting")
_DAMAGED = "the file is damaged or was not written by labelsynth; resume from another checkpoint-N folder"


class CheckpointError(ValueError):
    """A checkpoint folder that cannot be resumed from: missing, unreadable or mismatching files (named)."""


def rng_state_file(rank: int) -> str:
    """The file holding process `rank`'s RNG states."""
    return f"rng_state_{rank}.safetensors"


# ------------------------------------------------------------------------------------------------- state trees
def _encode(value: Any, tensors: dict[str, torch.Tensor], where: str) -> Any:
    """JSON-able form of a state tree; tensors are moved to `tensors` and referenced by name."""
    if isinstance(value, torch.Tensor):
        name = str(len(tensors))
        tensors[name] = value.detach().cpu().contiguous()
        return {"__tensor__": name}
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, list):
        return [_encode(v, tensors, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, tensors, f"{where}[{i}]") for i, v in enumerate(value)]}
    if isinstance(value, Mapping):
        items = []
        for key, item in value.items():
            if isinstance(key, bool) or not isinstance(key, (str, int)):
                raise TypeError(f"{where}: dict key {key!r} is neither a string nor an int; a checkpoint stores only "
                                "tensors, numbers, strings, None and lists / tuples / dicts of them")
            items.append([key, _encode(item, tensors, f"{where}[{key!r}]")])
        return {"__dict__": items}  # keeps int keys (optimizer states are keyed by parameter index) as ints
    raise TypeError(f"{where}: cannot store a {type(value).__name__} in a checkpoint; it stores only tensors, "
                    "numbers, strings, None and lists / tuples / dicts of them")


def _decode(node: Any, tensors: Mapping[str, torch.Tensor]) -> Any:
    """Inverse of `_encode`; raises ValueError on anything `_encode` does not write."""
    if node is None or isinstance(node, (bool, int, float, str)):
        return node
    if isinstance(node, list):
        return [_decode(v, tensors) for v in node]
    if isinstance(node, dict) and len(node) == 1:
        (tag, content), = node.items()
        if tag == "__tensor__" and isinstance(content, str):
            if content not in tensors:
                raise ValueError(f"refers to a tensor {content!r} that the file does not hold")
            return tensors[content]
        if tag == "__tuple__" and isinstance(content, list):
            return tuple(_decode(v, tensors) for v in content)
        if tag == "__dict__" and isinstance(content, list):
            result = {}
            for item in content:
                if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], (str, int))
                        and not isinstance(item[0], bool)):
                    raise ValueError(f"has a malformed dict entry {str(item)[:80]}")
                result[item[0]] = _decode(item[1], tensors)
            return result
    raise ValueError(f"has an unexpected entry {str(node)[:80]}")


def save_state_tree(path: str | Path, tree: Any) -> None:
    """Write a state tree (nested dicts / lists / tuples of tensors, numbers, strings, None) as one safetensors file:
    tensors in the body, the structure as JSON in the header metadata."""
    tensors: dict[str, torch.Tensor] = {}
    structure = json.dumps(_encode(tree, tensors, Path(path).name))
    save_file(tensors, str(path), metadata={_TREE_KEY: structure})


def load_state_tree(path: str | Path) -> Any:
    """Read a file of `save_state_tree` (CPU tensors). Raises `CheckpointError` naming the file when it is missing or
    is not such a file (e.g. a pickle)."""
    path = Path(path)
    _require(path)
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            metadata = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118 (no __iter__)
        if _TREE_KEY not in metadata:
            raise ValueError("has no labelsynth state in its header")
        return _decode(json.loads(metadata[_TREE_KEY]), tensors)
    except (SafetensorError, ValueError, RecursionError, OSError) as error:
        raise CheckpointError(f"{path} is not a labelsynth checkpoint state file ({error}): {_DAMAGED}") from None


def save_weights(path: str | Path, module: torch.nn.Module) -> None:
    """Write a module's state dict (parameters and buffers) as safetensors."""
    state = {name: value.detach().cpu().contiguous() for name, value in module.state_dict().items()}
    save_file(state, str(path), metadata={"format": "pt"})


def load_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a safetensors state dict (CPU tensors); `CheckpointError` naming the file when missing or unreadable."""
    path = Path(path)
    _require(path)
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError) as error:
        raise CheckpointError(f"{path} is not a safetensors file of model weights ({error}): {_DAMAGED}") from None


def apply_weights(module: torch.nn.Module, state: Mapping[str, torch.Tensor], path: str | Path) -> None:
    """`module.load_state_dict(state)` (strict), with a `CheckpointError` naming `path` when they do not fit."""
    try:
        module.load_state_dict(state)
    except RuntimeError as error:
        raise CheckpointError(f"{path} does not fit this model ({str(error)[:500]}); resume with the model options of "
                              "the run that wrote the checkpoint") from None


def _require(path: Path) -> None:
    if not path.is_file():
        raise CheckpointError(f"{path} is missing: the checkpoint folder is incomplete or was not written by this "
                              "version of labelsynth; resume from another checkpoint-N folder")


# ------------------------------------------------------------------------------------------------- RNG states
def capture_rng_states(generators: Mapping[str, torch.Generator]) -> dict[str, Any]:
    """The states of this process's global RNGs (Python, NumPy, torch CPU and CUDA) and of `generators`."""
    kind, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    states: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {"kind": kind, "keys": keys.tolist(), "position": position, "has_gauss": has_gauss,
                  "cached_gaussian": cached_gaussian},
        "torch": torch.get_rng_state(),
        "generators": {name: generator.get_state() for name, generator in generators.items()},
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: Any, generators: Mapping[str, torch.Generator], path: str | Path) -> list[str]:
    """Set the global RNGs and `generators` from `capture_rng_states`'s output read from `path`.

    Returns:
        Warnings for CUDA states that do not match this machine's devices (those are left as they are; training
        draws from `generators` and does not depend on them).

    Raises:
        CheckpointError: naming `path` when a required state is missing or malformed.
    """
    try:
        if not isinstance(states, dict):
            raise TypeError("holds no dict of RNG states")
        saved_generators = states.get("generators")
        missing = [key for key in ("python", "numpy", "torch") if key not in states]
        missing += [f"generators.{name}" for name in generators
                    if not isinstance(saved_generators, dict) or name not in saved_generators]
        if missing:
            raise ValueError(f"lacks the RNG states {missing}")
        checked = {"torch": states["torch"], **{f"generators.{n}": saved_generators[n] for n in generators}}
        for name, value in checked.items():
            if not (isinstance(value, torch.Tensor) and value.dtype == torch.uint8):
                raise ValueError(f"has a '{name}' state that is not a uint8 tensor")
        numpy_state = states["numpy"]
        random.setstate(states["python"])
        np.random.set_state((numpy_state["kind"], np.asarray(numpy_state["keys"], dtype=np.uint32),
                             numpy_state["position"], numpy_state["has_gauss"], numpy_state["cached_gaussian"]))
        torch.set_rng_state(states["torch"])
        for name, generator in generators.items():
            generator.set_state(saved_generators[name])
    except (ValueError, TypeError, KeyError, RuntimeError) as error:
        raise CheckpointError(f"{path} does not hold valid RNG states ({error}): {_DAMAGED}") from None
    warnings = []
    cuda = states.get("cuda")
    if cuda is not None:
        if torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
        else:
            warnings.append(f"{path}: CUDA RNG states of {len(cuda)} devices not restored on this machine")
    return warnings


# ------------------------------------------------------------------------------------------------- the folders
@dataclass
class CheckpointContents:
    """Everything one process reads from a checkpoint folder, validated before any of it is applied."""

    folder: Path
    trainer_state: dict[str, Any]
    weights: dict[str, dict[str, torch.Tensor]]  # "generator", "discriminator", "ema" -> state dict
    optimizer_state: dict[str, Any]
    rng_states: Any
    ignored_files: list[str]  # files in the folder that labelsynth does not write (never read)


def _int_field(state: Mapping[str, Any], name: str, path: Path) -> int:
    value = state.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise CheckpointError(f"{path}: '{name}' must be a non-negative int, got {value!r}")
    return value


def read_checkpoint(folder: str | Path, models: list[str], rank: int, num_processes: int) -> CheckpointContents:
    """Read and check a `checkpoint-N` folder for process `rank` of `num_processes`.

    Args:
        folder: the checkpoint folder.
        models: the weight files this run needs ("generator", "discriminator", "ema").
        rank, num_processes: this process and the run's size (a checkpoint resumes with the number of processes
            that wrote it: the data position is counted in per-process batches).

    Raises:
        CheckpointError: naming the file, for a folder written by Accelerate's `save_state` (pickles: refused, never
            loaded), a missing or unreadable file, or a checkpoint of a different setup.
    """
    folder = Path(folder)
    state_path = folder / TRAINER_STATE
    if not state_path.is_file():
        pickles = sorted(p.name for pattern in ACCELERATE_PICKLES for p in folder.glob(pattern))
        if pickles:
            raise CheckpointError(
                f"{folder} holds pickled training state ({', '.join(pickles)}) from Accelerate's save_state (older "
                "labelsynth versions wrote it). Unpickling a file can run arbitrary code, so labelsynth does not load "
                "it: resume from a checkpoint written by this version, or start a new run (e.g. from the final "
                "model with --pretrained_model)"
            )
        _require(state_path)
    try:
        trainer_state = json.loads(state_path.read_text())
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise CheckpointError(f"{state_path} is not valid JSON ({error}): {_DAMAGED}") from None
    if not isinstance(trainer_state, dict) or trainer_state.get("format") != FORMAT_NAME:
        raise CheckpointError(f"{state_path} is not a labelsynth trainer state (no \"format\": \"{FORMAT_NAME}\")")
    if trainer_state.get("version") != FORMAT_VERSION:
        raise CheckpointError(f"{state_path} has format version {trainer_state.get('version')!r}; this labelsynth "
                              f"reads version {FORMAT_VERSION}")
    for name in ("step", "epoch", "batch_in_epoch", "accelerator_step", "num_processes"):
        _int_field(trainer_state, name, state_path)
    if trainer_state["num_processes"] != num_processes:
        raise CheckpointError(
            f"{folder} was written by {trainer_state['num_processes']} processes but this run has {num_processes}; "
            f"resume with the same number (accelerate launch --num_processes {trainer_state['num_processes']})")
    written = set(trainer_state.get("models", []))
    if written != set(models):
        raise CheckpointError(
            f"{folder} holds the states of {sorted(written)} but this run trains {sorted(models)}; resume with the "
            "settings of the run that wrote it (e.g. the same --ema_decay, with or without a discriminator)")
    expected = {TRAINER_STATE, OPTIMIZER_STATE, *(MODEL_FILES[m] for m in models),
                *(rng_state_file(r) for r in range(num_processes))}
    contents = CheckpointContents(
        folder=folder, trainer_state=trainer_state,
        weights={name: load_weights(folder / MODEL_FILES[name]) for name in models},
        optimizer_state=load_state_tree(folder / OPTIMIZER_STATE),
        rng_states=load_state_tree(folder / rng_state_file(rank)),
        ignored_files=sorted(p.name for p in folder.iterdir() if p.name not in expected),
    )
    if not isinstance(contents.optimizer_state, dict):
        raise CheckpointError(f"{folder / OPTIMIZER_STATE} holds no dict of optimizer states")
    return contents


def list_checkpoints(output_dir: str | Path) -> list[Path]:
    """Complete `checkpoint-N` folders, oldest first (half-written `.tmp` folders are ignored)."""
    folders = [p for p in Path(output_dir).glob(f"{CHECKPOINT_PREFIX}*")
               if p.is_dir() and p.name[len(CHECKPOINT_PREFIX):].isdigit()]
    return sorted(folders, key=lambda p: int(p.name[len(CHECKPOINT_PREFIX):]))


def remove_leftovers(output_dir: str | Path) -> None:
    """Delete the `.tmp` / `.old` / `.deleting` folders that a run killed while saving or pruning leaves behind."""
    for path in Path(output_dir).glob(f"{CHECKPOINT_PREFIX}*"):
        if path.is_dir() and path.name.endswith(_LEFTOVER_SUFFIXES):
            shutil.rmtree(path, ignore_errors=True)


def remove_checkpoint(folder: Path) -> None:
    """Delete a checkpoint folder; renamed first, so that a kill half-way never leaves a partial `checkpoint-N`."""
    doomed = folder.with_name(folder.name + ".deleting")
    os.replace(folder, doomed)
    shutil.rmtree(doomed)


def commit_folder(tmp: Path, final: Path) -> None:
    """Make the fully written `tmp` folder `final` in one rename (after flushing it to disk)."""
    for path in tmp.iterdir():
        _fsync(path)
    _fsync(tmp)
    if final.exists():  # a run resumed from an earlier checkpoint reaches this step again: replace it
        old = final.with_name(final.name + ".old")
        if old.exists():
            shutil.rmtree(old)
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old)
    else:
        os.replace(tmp, final)
    _fsync(final.parent)


def _fsync(path: Path) -> None:
    """Flush a file, or a folder's entries, to disk (folders cannot be opened on Windows: skipped there)."""
    if path.is_dir() and os.name == "nt":
        return
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
