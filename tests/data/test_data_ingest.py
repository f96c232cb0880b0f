"""ingest -> parquet -> load round trips on the real samples, the on-disk convention, the CLI hook and errors."""

from __future__ import annotations

import argparse
import json
import os

import numpy as np
import pytest
from datasets import Image as ImageFeature
from datasets import load_dataset
from PIL import Image

from labelsynth.data import PairedTransform, add_cli_parser, ingest, load_training_dataset, read_label_space
from labelsynth.label_spaces import get_label_space


def _arr(x) -> np.ndarray:
    return np.asarray(Image.open(x) if isinstance(x, (str, os.PathLike)) else x).astype(np.int64)


@pytest.fixture(scope="module")
def ade_out(samples_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("ade_parquet")
    root = samples_dir / "CoCosNet_ade20k"
    train = ingest("ade20k", root, out, split="train")
    val = ingest("ade20k", root, out, split="val")
    return out, train, val


def test_on_disk_convention(ade_out):
    out, train, val = ade_out
    assert train.num_rows == 6 and val.num_rows == 6 and val.split == "validation"
    names = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert names == [
        "README.md",
        "data/train-00000-of-00001.parquet",
        "data/validation-00000-of-00001.parquet",
        "id2label.json",
        "label_space.json",
    ]
    assert read_label_space(out) == get_label_space("ade20k")
    id2label = json.loads((out / "id2label.json").read_text())
    assert id2label["0"] == "other" and id2label["150"] == get_label_space("ade20k").names[150]
    card = (out / "README.md").read_text()
    assert "path: data/train-*" in card and "path: data/validation-*" in card and "num_examples: 6" in card


def test_loadable_with_plain_datasets(ade_out, samples_dir):
    out, _, _ = ade_out
    for dd in (load_dataset(str(out)), load_dataset("parquet", data_dir=str(out))):
        assert set(dd) == {"train", "validation"}
        train = dd["train"]
        assert train.column_names == ["image", "label", "image_id"]
        assert isinstance(train.features["label"], ImageFeature)
        row = train[0]
        src = samples_dir / "CoCosNet_ade20k" / "training" / row["image_id"]
        np.testing.assert_array_equal(_arr(row["label"]), _arr(f"{src}.png"))
    raw = load_dataset(str(out), split="train").cast_column("image", ImageFeature(decode=False))[0]
    src = samples_dir / "CoCosNet_ade20k" / "training" / f"{raw['image_id']}.jpg"
    assert raw["image"]["bytes"] == src.read_bytes()  # photos are embedded byte for byte


def test_load_training_dataset_reads_the_label_space(ade_out):
    out, _, _ = ade_out
    ds, space = load_training_dataset(out, split="validation", return_label_space=True)
    assert space == get_label_space("ade20k") and len(ds) == 6 and ds.column_names == ["image", "label", "image_id"]
    stream = load_training_dataset(out, streaming=True)
    batch = PairedTransform(size=32, label_space=space, seed=0)(next(iter(stream)))
    assert batch["label_map"].shape == (32, 32)


def test_cityscapes_16bit_instances_survive_parquet_and_shards(samples_dir, tmp_path):
    src = samples_dir / "pix2pixHD_cityscapes"
    stems = ["aachen_000000_000019", "aachen_000001_000019", "aachen_000002_000019"]
    for folder, suffix in (("train_img", "leftImg8bit"), ("train_label", "gtFine_labelIds"),
                           ("train_inst", "gtFine_instanceIds")):  # fmt: skip
        (tmp_path / "src" / folder).mkdir(parents=True)
        for s in stems:
            os.symlink(src / folder / f"{s}_{suffix}.png", tmp_path / "src" / folder / f"{s}_{suffix}.png")
    result = ingest("cityscapes", tmp_path / "src", tmp_path / "out", max_shard_size=1)  # one row per shard
    assert [p.name for p in result.files] == [f"train-0000{i}-of-00003.parquet" for i in range(3)]
    ds = load_training_dataset(tmp_path / "out")
    assert ds.column_names == ["image", "label", "instance", "image_id"] and ds["image_id"] == stems
    maxima = []
    for row in ds:
        inst = _arr(row["instance"])
        np.testing.assert_array_equal(inst, _arr(src / "train_inst" / f"{row['image_id']}_gtFine_instanceIds.png"))
        maxima.append(int(inst.max()))
    assert maxima == [33001, 26014, 33000]  # > 32767: no int16 overflow anywhere on the way


def test_celebamask_class_order_round_trip(samples_dir, tmp_path):
    root = samples_dir / "CoCosNet_celebahqedge"
    result = ingest("celebamask-hq", root, tmp_path, class_order="cocosnet")
    assert result.label_space.name == "celebamask-hq-cocosnet"
    ds, space = load_training_dataset(tmp_path, return_label_space=True)
    direct = load_training_dataset(root, class_order="cocosnet")
    assert space.name == "celebamask-hq-cocosnet" and ds["image_id"] == direct["image_id"]
    for a, b in zip(ds, direct):
        np.testing.assert_array_equal(_arr(a["label"]), _arr(b["label"]))


def test_paired_colour_folder_ingest(samples_dir, tmp_path):
    ade = get_label_space("ade20k")
    src = samples_dir / "CoCosNet_ade20k" / "validation"
    for sub in ("images", "labels"):
        (tmp_path / "src" / sub).mkdir(parents=True)
    stem = "ADE_val_00001232"
    os.symlink(src / f"{stem}.jpg", tmp_path / "src" / "images" / f"{stem}.jpg")
    ids = _arr(src / f"{stem}.png")
    ids[ids == 49] = 7
    Image.fromarray(ade.colorize(ids)).save(tmp_path / "src" / "labels" / f"{stem}.png")
    ingest("paired", tmp_path / "src", tmp_path / "out", label_space="ade20k")
    np.testing.assert_array_equal(_arr(load_training_dataset(tmp_path / "out")[0]["label"]), ids)


def test_ingest_errors(samples_dir, tmp_path, ade_out):
    out, _, _ = ade_out
    root = samples_dir / "CoCosNet_ade20k"
    with pytest.raises(ValueError, match="already has split 'train'.*overwrite=True"):
        ingest("ade20k", root, out)
    with pytest.raises(ValueError, match="already holds a dataset in label space 'ade20k'"):
        ingest("coco-stuff", samples_dir / "SPADE_coco_stuff", out)
    with pytest.raises(ValueError, match="unknown dataset layout"):
        ingest("kitti", root, tmp_path)
    with pytest.raises(ValueError, match="needs label_space"):
        ingest("paired", root, tmp_path)
    with pytest.raises(ValueError, match="does not exist"):
        ingest("ade20k", tmp_path / "missing", tmp_path / "o")
    # a bad label file is named, and nothing is left behind for that split
    (tmp_path / "bad" / "training").mkdir(parents=True)
    os.symlink(root / "training" / "ADE_train_00004996.jpg", tmp_path / "bad" / "training" / "ADE_train_00004996.jpg")
    ids = _arr(root / "training" / "ADE_train_00004996.png")
    ids[0, 0] = 151
    Image.fromarray(ids.astype(np.uint8)).save(tmp_path / "bad" / "training" / "ADE_train_00004996.png")
    with pytest.raises(ValueError, match=r"ADE_train_00004996\.png.*\[151\].*ade20k"):
        ingest("ade20k", tmp_path / "bad", tmp_path / "bad_out")
    assert not list((tmp_path / "bad_out" / "data").glob("*.parquet"))


def test_overwrite_replaces_the_split(samples_dir, tmp_path):
    root = samples_dir / "CoCosNet_ade20k"
    ingest("ade20k", root, tmp_path, max_shard_size=1)
    assert len(list((tmp_path / "data").glob("train-*"))) == 6
    ingest("ade20k", root, tmp_path, overwrite=True)
    assert [p.name for p in (tmp_path / "data").glob("train-*")] == ["train-00000-of-00001.parquet"]


def _parser():
    parser = argparse.ArgumentParser(prog="labelsynth")
    add_cli_parser(parser.add_subparsers(dest="command"))
    return parser


def test_cli_hook(samples_dir, tmp_path, capsys):
    args = _parser().parse_args(
        ["ingest", "celebamask-hq", str(samples_dir / "CoCosNet_celebahq"), "--output", str(tmp_path),
         "--split", "val", "--class-order", "sean"]
    )  # fmt: skip
    result = args.handler(args)
    assert result.num_rows == 4 and result.label_space.name == "celebamask-hq"
    assert "wrote 4 rows of split 'validation'" in capsys.readouterr().out
    args = _parser().parse_args(["ingest", "paired", str(samples_dir / "CoCosNet_ade20k"), "-o", str(tmp_path / "x")])
    from labelsynth.cli import CLIError

    with pytest.raises(CLIError, match="ingest paired: .*needs label_space"):
        args.handler(args)


def test_push_to_hub_uploads_the_folder(samples_dir, tmp_path, monkeypatch):
    import huggingface_hub

    calls = []
    monkeypatch.setattr(
        huggingface_hub.HfApi, "create_repo", lambda self, repo_id, **kw: calls.append(("create", repo_id, kw))
    )
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", lambda self, **kw: calls.append(("upload", kw)))
    args = _parser().parse_args(["ingest", "ade20k", str(samples_dir / "CoCosNet_ade20k"), "-o", str(tmp_path),
                                 "--push_to_hub", "me/ade-mini", "--private"])  # fmt: skip
    result = args.handler(args)
    assert result.repo_id == "me/ade-mini"
    assert calls[0] == ("create", "me/ade-mini", {"repo_type": "dataset", "private": True, "exist_ok": True})
    assert calls[1][1]["repo_id"] == "me/ade-mini" and calls[1][1]["repo_type"] == "dataset"
    assert calls[1][1]["folder_path"] == str(tmp_path)
