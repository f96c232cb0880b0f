"""Checkpoints are safe to share: a checkpoint folder holds only safetensors and JSON, resuming never unpickles (a
pickle payload in any file is refused with an error naming the file, and never runs), damaged or missing state files
are errors naming the file, and folders appear only complete."""

from __future__ import annotations

import json
import logging
import math
import os
import pickle
import shutil
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from test_resume import spade

from labelsynth.training import GANTrainer, TrainingArguments, checkpointing, list_checkpoints
from labelsynth.training.checkpointing import CheckpointError

FILES = ["discriminator.safetensors", "ema.safetensors", "generator.safetensors", "optimizer_state.safetensors",
         "rng_state_0.safetensors", "trainer_state.json"]


class Payload:
    """Unpickling this creates `marker`: what a malicious checkpoint would do with a harmful call instead."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def make_trainer(output_dir: Path, steps: int, **overrides) -> GANTrainer:
    torch.manual_seed(0)
    module, rows, transform = spade(use_vae=True)
    settings = {"train_batch_size": 2, "report_to": None, "validation_steps": 0, "checkpointing_steps": 0,
                "ema_decay": 0.9}
    return GANTrainer(module, TrainingArguments(output_dir=str(output_dir), max_train_steps=steps,
                                                **{**settings, **overrides}), rows, transform)


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> dict[str, Path]:
    """A checkpoint of this version after 2 steps, and the folder Accelerate's `save_state` writes for the same run
    (what older labelsynth versions resumed from)."""
    root = tmp_path_factory.mktemp("written")
    trainer = make_trainer(root / "run", 2, checkpointing_steps=2)
    trainer.train()
    trainer.accelerator.save_state(str(root / "accelerate-checkpoint"))
    return {"checkpoint": root / "run" / "checkpoint-2", "accelerate": root / "accelerate-checkpoint"}


@pytest.fixture
def checkpoint(written, tmp_path: Path) -> Path:
    """A private copy of the checkpoint, in an output folder of its own."""
    return Path(shutil.copytree(written["checkpoint"], tmp_path / "run" / "checkpoint-2"))


def resume(folder: Path, **overrides) -> GANTrainer:
    trainer = make_trainer(folder.parent, 3, resume_from_checkpoint=str(folder), **overrides)
    trainer.train()
    return trainer


def write_payload(path: Path, marker: Path) -> None:
    torch.save({"state": Payload(marker)}, path)  # the zip-of-pickle format of Accelerate's .bin / .pkl files


def test_the_payload_runs_when_unpickled(tmp_path: Path) -> None:
    """The payload of these tests is live: loading it the way Accelerate loads registered objects runs it."""
    write_payload(tmp_path / "custom_checkpoint_0.pkl", tmp_path / "marker")
    torch.load(tmp_path / "custom_checkpoint_0.pkl", weights_only=False)
    assert (tmp_path / "marker").exists()
    pickle.loads(pickle.dumps(Payload(tmp_path / "marker2")))
    assert (tmp_path / "marker2").exists()


def test_a_checkpoint_holds_only_safetensors_and_json(checkpoint: Path) -> None:
    assert sorted(p.name for p in checkpoint.iterdir()) == FILES
    for name in FILES:
        head = (checkpoint / name).read_bytes()[:2]
        assert head not in (b"PK", b"\x80\x02", b"\x80\x04", b"\x80\x05"), name  # no torch.save zip, no pickle
        if name.endswith(".safetensors"):
            with safe_open(str(checkpoint / name), framework="pt") as handle:
                assert handle.metadata() is not None
    state = json.loads((checkpoint / "trainer_state.json").read_text())
    assert state["step"] == 2 and state["num_processes"] == 1
    assert state["models"] == ["generator", "discriminator", "ema"]
    assert not any(p.name.endswith(".tmp") for p in checkpoint.parent.iterdir())


def test_a_resumed_run_continues_from_the_checkpoint(checkpoint: Path) -> None:
    trainer = resume(checkpoint)
    assert trainer.counter.step == 3
    assert [p.name for p in list_checkpoints(checkpoint.parent)] == ["checkpoint-2"]


@pytest.mark.parametrize("name", FILES)
def test_a_pickle_in_any_file_is_refused_and_never_run(checkpoint: Path, tmp_path: Path, name: str) -> None:
    marker = tmp_path / "marker"
    write_payload(checkpoint / name, marker)
    with pytest.raises(CheckpointError, match=name.replace(".", r"\.")):
        resume(checkpoint)
    assert not marker.exists()


def test_accelerate_save_state_folders_are_refused_with_the_reason(written, tmp_path: Path) -> None:
    """A folder in Accelerate's format (pickled optimizer, scheduler, RNG and custom states) is not loaded at all,
    even with a payload in its custom state, which Accelerate itself unpickles with weights_only=False."""
    folder = Path(shutil.copytree(written["accelerate"], tmp_path / "run" / "checkpoint-2"))
    assert (folder / "random_states_0.pkl").is_file() and (folder / "optimizer.bin").is_file()
    marker = tmp_path / "marker"
    write_payload(folder / "custom_checkpoint_0.pkl", marker)
    with pytest.raises(CheckpointError, match=r"pickled training state .*custom_checkpoint_0\.pkl.*Unpickling a "
                                              r"file can run arbitrary code"):
        resume(folder)
    assert not marker.exists()


def test_extra_pickles_in_a_checkpoint_are_ignored_with_a_warning(checkpoint: Path, tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    marker = tmp_path / "marker"
    for name in ("custom_checkpoint_0.pkl", "random_states_0.pkl"):
        write_payload(checkpoint / name, marker)
    with caplog.at_level(logging.WARNING):
        trainer = resume(checkpoint)
    assert trainer.counter.step == 3
    assert not marker.exists()
    assert any("custom_checkpoint_0.pkl, random_states_0.pkl" in r.getMessage() and "never loaded" in r.getMessage()
               for r in caplog.records)


def test_missing_or_damaged_rng_state_is_an_error_naming_the_file(checkpoint: Path) -> None:
    path = checkpoint / "rng_state_0.safetensors"
    path.write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match=r"rng_state_0\.safetensors is not a labelsynth checkpoint state file"):
        resume(checkpoint)
    checkpointing.save_state_tree(path, {"python": (3, (1,) * 625, None)})  # readable, but states are missing
    with pytest.raises(CheckpointError, match=r"rng_state_0\.safetensors does not hold valid RNG states .*numpy"):
        resume(checkpoint)
    path.unlink()
    with pytest.raises(CheckpointError, match=r"rng_state_0\.safetensors is missing"):
        resume(checkpoint)


@pytest.mark.parametrize("name", ["trainer_state.json", "optimizer_state.safetensors", "generator.safetensors"])
def test_missing_files_are_errors_naming_them(checkpoint: Path, name: str) -> None:
    (checkpoint / name).unlink()
    with pytest.raises(CheckpointError, match=rf"{name.replace('.', '[.]')} is missing"):
        resume(checkpoint)


def test_checkpoints_of_another_setup_are_refused(checkpoint: Path) -> None:
    with pytest.raises(CheckpointError, match=r"holds the states of .*'ema'.* --ema_decay"):
        resume(checkpoint, ema_decay=None)
    state = json.loads((checkpoint / "trainer_state.json").read_text())
    (checkpoint / "trainer_state.json").write_text(json.dumps({**state, "num_processes": 2}))
    with pytest.raises(CheckpointError, match=r"written by 2 processes but this run has 1"):
        resume(checkpoint)
    (checkpoint / "trainer_state.json").write_text(json.dumps(state))
    shutil.copy(checkpoint / "discriminator.safetensors", checkpoint / "generator.safetensors")
    with pytest.raises(CheckpointError, match=r"generator\.safetensors does not fit this model"):
        resume(checkpoint)


def test_a_save_that_fails_half_way_leaves_no_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trainer = make_trainer(tmp_path, 2)
    trainer.train()
    written = []

    def fail_after_first(path, module):
        if written:
            raise OSError("disk full")
        written.append(path)
        save_weights(path, module)

    save_weights = checkpointing.save_weights
    monkeypatch.setattr(checkpointing, "save_weights", fail_after_first)
    with pytest.raises(OSError, match="disk full"):
        trainer.save_checkpoint()
    assert list_checkpoints(tmp_path) == [] and (tmp_path / "checkpoint-2.tmp").is_dir()
    monkeypatch.setattr(checkpointing, "save_weights", save_weights)
    trainer.save_checkpoint()
    assert [p.name for p in list_checkpoints(tmp_path)] == ["checkpoint-2"]
    assert not (tmp_path / "checkpoint-2.tmp").exists()


def test_state_trees_round_trip_and_refuse_what_json_cannot_hold(tmp_path: Path) -> None:
    tree = {"state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.randn(2, 3)}},
            "param_groups": [{"betas": (0.0, 0.9), "lr": 1e-4, "amsgrad": False, "foreach": None, "params": [0]}],
            "numbers": [math.inf, -0.0, 2**40, "text"]}
    checkpointing.save_state_tree(tmp_path / "tree.safetensors", tree)
    loaded = checkpointing.load_state_tree(tmp_path / "tree.safetensors")
    assert loaded["param_groups"] == tree["param_groups"] and loaded["numbers"] == tree["numbers"]
    assert list(loaded["state"]) == [0]  # int keys stay ints, tuples stay tuples
    assert isinstance(loaded["param_groups"][0]["betas"], tuple)
    assert all(torch.equal(loaded["state"][0][k], v) for k, v in tree["state"][0].items())
    with pytest.raises(TypeError, match=r"tree\.safetensors\['bad'\]: cannot store a Payload"):
        checkpointing.save_state_tree(tmp_path / "tree.safetensors", {"bad": Payload(tmp_path / "marker")})
    assert os.listdir(tmp_path) == ["tree.safetensors"]
