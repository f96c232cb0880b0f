"""What the training scripts share: rows from the data flags, the fixed validation batch, the checks of the
evaluation flags, the run's card info."""

import argparse
import shlex

import pytest
import torch

from labelsynth.data import PairedTransform
from labelsynth.training.modules import GANTrainingModule
from labelsynth.training.scripts import (
    add_data_arguments,
    add_evaluation_arguments,
    evaluation_fn,
    run_card_info,
    training_rows,
    validation_batch,
    validation_rows,
)


def _args(dataset: str, **flags) -> argparse.Namespace:
    values = {"dataset": dataset, "dataset_kind": None, "split": "train", "max_train_samples": None,
              "max_train_steps": 3}
    values.update(flags)
    return argparse.Namespace(**values)


@pytest.fixture(scope="module")
def ade_folder(samples_dir):
    return str(samples_dir / "CoCosNet_ade20k")


def test_rows_follow_the_data_flags(ade_folder) -> None:
    everything = training_rows(_args(ade_folder), "ade20k")
    assert len(everything) > 2
    first_two = training_rows(_args(ade_folder, max_train_samples=2), "ade20k")
    assert len(first_two) == 2 and first_two["image_id"] == everything["image_id"][:2]
    # without --validation_split (or without the flag at all) validation uses the training rows
    assert validation_rows(_args(ade_folder, validation_split=None), "ade20k", first_two) is first_two
    assert validation_rows(_args(ade_folder), "ade20k", first_two) is first_two
    held_out = validation_rows(_args(ade_folder, validation_split="validation"), "ade20k", first_two)
    assert len(held_out) > 0 and not set(held_out["image_id"]) & set(everything["image_id"])


def test_validation_batch_is_fixed_and_bounded(ade_folder) -> None:
    rows = training_rows(_args(ade_folder), "ade20k")
    module = GANTrainingModule()
    view = PairedTransform(size=(32, 32), label_space="ade20k", passthrough_columns=(), flip=False, seed=0).apply
    batch = validation_batch(module, view, rows, 2)
    assert batch["pixel_values"].shape == (2, 3, 32, 32)
    again = validation_batch(module, view, rows, 2)
    assert torch.equal(batch["pixel_values"], again["pixel_values"])
    assert validation_batch(module, view, rows, 100)["pixel_values"].shape[0] == len(rows)
    assert validation_batch(module, view, rows, 0) is None


def test_run_card_info_names_hub_datasets_and_the_command(tmp_path) -> None:
    argv = ["--dataset", "org/ade20k", "--output_dir", "runs/x y"]
    hub = run_card_info(_args("org/ade20k"), "train_sean.py", argv)
    assert hub["datasets"] == ["org/ade20k"]
    assert hub["training"] == {"command": "accelerate launch training/train_sean.py " + shlex.join(argv), "steps": 3}
    assert "'runs/x y'" in hub["training"]["command"]  # quoted: the command can be pasted back
    local = run_card_info(_args(str(tmp_path)), "train_sean.py", ["--dataset", str(tmp_path)])
    assert local["datasets"] is None  # a local folder is not a Hub dataset


def test_data_flags_feed_the_row_helpers(ade_folder) -> None:
    parser = argparse.ArgumentParser()
    add_data_arguments(parser, "ADEChallengeData2016")
    args = parser.parse_args(["--dataset", ade_folder, "--max_train_samples", "1", "--validation_split", "validation",
                              "--no_flip"])
    assert args.split == "train" and args.no_flip and args.dataset_kind is None
    rows = training_rows(args, "ade20k")
    assert len(rows) == 1 and len(validation_rows(args, "ade20k", rows)) > 0
    without = argparse.ArgumentParser()
    add_data_arguments(without, "x", validation_split=False)
    with pytest.raises(SystemExit):  # the flag is not offered where validation needs the training rows
        without.parse_args(["--dataset", ade_folder, "--validation_split", "validation"])


def test_evaluation_flags_are_checked_at_the_start() -> None:
    parser = argparse.ArgumentParser()
    add_evaluation_arguments(parser)

    def check(*argv: str, validation_steps: int = 5):
        args = parser.parse_args(list(argv))
        args.seed, args.validation_steps = 0, validation_steps
        return evaluation_fn(args, rows=[])

    assert check() is None  # no --eval_metrics: nothing to run at validation time
    assert callable(check("--eval_metrics", " PSNR, ssim "))
    with pytest.raises(ValueError, match=r"unknown metrics \['foo'\]"):
        check("--eval_metrics", "psnr,foo")
    with pytest.raises(ValueError, match="unknown metrics"):
        check("--eval_metrics", ",")
    with pytest.raises(ValueError, match="miou needs --segmenter"):
        check("--eval_metrics", "psnr,miou")
    with pytest.raises(ValueError, match="--eval_samples must be at least 1"):
        check("--eval_metrics", "psnr", "--eval_samples", "0")
    with pytest.raises(ValueError, match="give --validation_steps N"):
        check("--eval_metrics", "psnr", validation_steps=0)
