"""ingest -> parquet -> load round trips on the real samples, the on-disk convention, the CLI hook and errors."""

from __future__ import annotations

import argparse
import json
import os
import re

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

    with pytest.raises(CLIError, match="ingest paired: .*needs --label-space"):
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


def test_cli_errors_name_cli_options(samples_dir, tmp_path):
    """Errors raised under `ingest` name its Python keywords; through ``labelsynth ingest`` they name the options."""
    from labelsynth.cli import CLIError

    ade = get_label_space("ade20k")
    src = samples_dir / "CoCosNet_ade20k" / "validation"
    stems = sorted(p.stem for p in src.glob("*.png"))[:2]
    paired = tmp_path / "paired"
    for sub in ("images", "labels"):
        (paired / sub).mkdir(parents=True)
    for stem in stems:
        os.symlink(src / f"{stem}.jpg", paired / "images" / f"{stem}.jpg")
    colours = ade.colorize(_arr(src / f"{stems[0]}.png"))
    colours[:4, :4] = (1, 2, 250)  # not an ADE20K colour
    Image.fromarray(colours).save(paired / "labels" / f"{stems[0]}.png")  # stems[1] has no label
    celeba = str(samples_dir / "CoCosNet_celebahq")
    ingest("ade20k", samples_dir / "CoCosNet_ade20k", tmp_path / "done")

    def error(*argv: str) -> str:
        args = _parser().parse_args(["ingest", *argv])
        with pytest.raises(CLIError) as info:
            args.handler(args)
        return str(info.value)

    expected = {
        ("paired", str(paired), "-o", str(tmp_path / "a")): "needs --label-space NAME",
        ("paired", str(paired), "-o", str(tmp_path / "b"), "--label-space", "ade20k"): "pass --skip-missing",
        ("paired", str(paired), "-o", str(tmp_path / "c"), "--label-space", "ade20k", "--skip-missing"):
            "--color-tolerance T",
        ("paired", str(paired), "-o", str(tmp_path / "d"), "--label-space", "ade20k", "--skip-missing",
         "--color-tolerance", "-1"): "--color-tolerance must be >= 0",
        ("celebamask-hq", celeba, "-o", str(tmp_path / "e"), "--class-order", "sean", "--label-space", "ade20k"):
            "--class-order 'sean' means label space 'celebamask-hq', but --label-space 'ade20k' was given",
        ("ade20k", str(samples_dir / "CoCosNet_ade20k"), "-o", str(tmp_path / "f"), "--class-order", "sean"):
            "--class-order only applies to CelebAMask-HQ",
        ("ade20k", str(samples_dir / "CoCosNet_ade20k"), "-o", str(tmp_path / "done")): "pass --overwrite",
        ("ade20k", str(samples_dir / "CoCosNet_ade20k"), "-o", str(tmp_path / "g"), "--max-shard-size", "big"):
            "--max-shard-size must be",
    }  # fmt: skip
    python_names = re.compile(r"\b(label_space|class_order|max_shard_size|color_tolerance|skip_missing)\b(?!\.json)"
                              r"|\b(overwrite|tolerance)=")
    for argv, option in expected.items():
        message = error(*argv)
        assert option in message and not python_names.search(message), message
    # The Python API keeps naming its keywords.
    with pytest.raises(ValueError, match=r"needs label_space=\.\.\..*built-in label spaces: .*ade20k"):
        ingest("paired", paired, tmp_path / "h")


# ---------------------------------------------------------------------------------------------------- robustness
def _synthetic_paired(root, n: int, *, seed: int = 0, size: int = 16):
    """A paired folder of ``n`` JPEG photos + 8-bit index labels (ADE20K ids); returns the root."""
    rng = np.random.default_rng(seed)
    for sub in ("images", "labels"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(root / "images" / f"s{i:03d}.jpg")
        Image.fromarray(rng.integers(0, 151, (size, size), dtype=np.uint8), mode="L").save(
            root / "labels" / f"s{i:03d}.png"
        )
    return root


def _split_state(out, split: str = "train") -> int:
    """The row count of ``split`` in ``out``, after checking that the card, the metadata and the shards on disk agree
    (shards 0..N-1 all "of N", rows = the card's num_examples, no temporary folders inside)."""
    import pyarrow.parquet as pq
    import yaml

    card = (out / "README.md").read_text()
    meta = yaml.safe_load(card.split("---\n")[1])
    card_splits = {s["name"]: s["num_examples"] for s in meta["dataset_info"]["splits"]}
    assert {c["split"] for c in meta["configs"][0]["data_files"]} == set(card_splits)
    shards = sorted((out / "data").glob(f"{split}-*.parquet"))
    count = int(shards[0].name.split("-of-")[1][:5])
    assert [p.name for p in shards] == [f"{split}-{i:05d}-of-{count:05d}.parquet" for i in range(count)]
    rows = sum(pq.ParquetFile(p).metadata.num_rows for p in shards)
    assert rows == card_splits[split]
    assert read_label_space(out) == get_label_space("ade20k")
    assert not [p for p in out.rglob(".*")], "temporary folders inside the output"
    return rows


_KILL_SCRIPT = r"""
import os, sys, time
from pathlib import Path
import labelsynth.data.ingestion as ingestion

root, out, point, marker = sys.argv[1:5]

def pause(name):  # fault injection: a window in which the test kills this process
    Path(marker).write_text(name)
    time.sleep(60)

if point == "before-swap":
    real = ingestion._swap_in
    ingestion._swap_in = lambda staging, target: (pause(point), real(staging, target))[1]
elif point == "after-swap":
    real = ingestion._swap_in
    ingestion._swap_in = lambda staging, target: (real(staging, target), pause(point))[0]
elif point == "between-renames":  # the fallback swap of platforms without an atomic exchange
    ingestion._exchange = lambda a, b: False
    real_rename = os.rename
    def rename(src, dst):
        real_rename(src, dst)
        if ".replaced-" in str(dst):
            pause(point)
    ingestion.os.rename = rename
ingestion.ingest("paired", root, out, label_space="ade20k", max_shard_size=1, overwrite=True)
"""


@pytest.mark.parametrize("point", ["staging", "shards", "before-swap", "after-swap", "between-renames"])
def test_overwrite_survives_sigkill(tmp_path, point):
    """SIGKILL at any point of ``ingest(overwrite=True)`` leaves the complete old or the complete new split, card and
    shards agreeing; the next run cleans up (restoring the old folder after a kill between the fallback renames)."""
    import signal
    import subprocess
    import sys
    import time

    old_src, new_src = _synthetic_paired(tmp_path / "old", 3), _synthetic_paired(tmp_path / "new", 40, seed=1)
    out = tmp_path / "out"
    ingest("paired", old_src, out, label_space="ade20k", max_shard_size=1)
    ingest("paired", old_src, out, split="validation", label_space="ade20k")
    before = set(tmp_path.rglob("*.parquet"))
    script, marker = tmp_path / "kill.py", tmp_path / "marker"
    script.write_text(_KILL_SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script), str(new_src), str(out), point, str(marker)])
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            staging = list(tmp_path.glob(".out.ingest-*"))
            if point == "staging" and staging:
                break
            # new parquet files wherever this or an earlier implementation writes them (hard links of the kept shards
            # count too: 4 of them)
            if point == "shards" and len(set(tmp_path.rglob("*.parquet")) - before) >= 15:
                break
            if marker.exists():
                break
            time.sleep(0.002)
        assert proc.poll() is None, "ingest ended before the kill point was reached"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    if point == "between-renames":
        assert not out.exists()  # the one window of the fallback swap; the next run restores the old folder
        with pytest.raises(ValueError, match="already has split 'train'"):
            ingest("paired", new_src, out, label_space="ade20k")
        assert _split_state(out) == 3 and _split_state(out, "validation") == 3
    else:
        assert _split_state(out) == (40 if point == "after-swap" else 3)
        assert _split_state(out, "validation") == 3
        assert list(tmp_path.glob(".out.*")), "the killed run's temporary folder is left for the next run to clean"
    result = ingest("paired", new_src, out, label_space="ade20k", max_shard_size=1, overwrite=True)
    assert _split_state(out) == 40 and len(result.files) == 40 and _split_state(out, "validation") == 3
    assert not list(tmp_path.glob(".out.*"))
    if point != "between-renames":  # there, the restoring run already cleaned up
        assert any("killed" in note for note in result.cleaned), result.cleaned


def test_failed_run_leaves_the_output_as_it_was(tmp_path):
    src = _synthetic_paired(tmp_path / "src", 3)
    ingest("paired", src, tmp_path / "out", label_space="ade20k")
    before = {p.relative_to(tmp_path / "out"): p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()}
    Image.fromarray(np.full((16, 16), 200, np.uint8), mode="L").save(src / "labels" / "s001.png")  # id 200 > 150
    with pytest.raises(ValueError, match=r"s001\.png"):
        ingest("paired", src, tmp_path / "out", label_space="ade20k", overwrite=True)
    after = {p.relative_to(tmp_path / "out"): p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file()}
    assert after == before and not list(tmp_path.glob(".out.*"))
    with pytest.raises(ValueError):
        ingest("paired", src, tmp_path / "fresh", label_space="ade20k")
    assert not (tmp_path / "fresh").exists()  # not even an empty data/


def test_legacy_temp_folders_are_removed_and_reported(tmp_path):
    src = _synthetic_paired(tmp_path / "src", 2)
    ingest("paired", src, tmp_path / "out", label_space="ade20k")
    legacy = tmp_path / "out" / "data" / ".train-abc123"
    legacy.mkdir()
    (legacy / "00000.parquet").write_bytes(b"left by a killed run")
    result = ingest("paired", src, tmp_path / "out", label_space="ade20k", overwrite=True)
    assert not legacy.exists() and any(".train-abc123" in note for note in result.cleaned)
    assert _split_state(tmp_path / "out") == 2


def _truncate(path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_unreadable_photos_are_refused_or_skipped_and_listed(tmp_path, capsys):
    from labelsynth.cli import CLIError

    src = _synthetic_paired(tmp_path / "src", 4)
    _truncate(src / "images" / "s001.jpg")
    (src / "images" / "s002.jpg").write_bytes(b"not a jpeg at all")
    with pytest.raises(ValueError, match=r"s001\.jpg.*cannot be decoded.*skip_invalid=True"):
        ingest("paired", src, tmp_path / "out", label_space="ade20k")
    assert not (tmp_path / "out").exists()
    result = ingest("paired", src, tmp_path / "out", label_space="ade20k", skip_invalid=True)
    assert result.num_rows == 2 and load_training_dataset(tmp_path / "out")["image_id"] == ["s000", "s003"]
    assert len(result.skipped) == 2
    for i, note in zip((1, 2), result.skipped):
        assert str(src / "images" / f"s00{i}.jpg") in note and "cannot be decoded" in note
    args = _parser().parse_args(["ingest", "paired", str(src), "-o", str(tmp_path / "cli"), "--label-space", "ade20k"])
    with pytest.raises(CLIError) as info:
        args.handler(args)
    assert "\n" not in str(info.value) and "s001.jpg" in str(info.value) and "--skip-invalid" in str(info.value)
    args = _parser().parse_args(["ingest", "paired", str(src), "-o", str(tmp_path / "cli"), "--label-space", "ade20k",
                                 "--skip-invalid"])  # fmt: skip
    args.handler(args)
    printed = capsys.readouterr().out
    assert "skipped 2 file(s)" in printed and "s001.jpg" in printed and "s002.jpg" in printed


# 16x16 = 256 pixels: over the limit (our check), and over twice it (Pillow's own DecompressionBombError)
@pytest.mark.parametrize("limit", [200, 100])
def test_decompression_bombs_give_one_error_line(tmp_path, monkeypatch, limit):
    import PIL.Image

    from labelsynth.cli import CLIError

    src = _synthetic_paired(tmp_path / "src", 2)
    monkeypatch.setattr(PIL.Image, "MAX_IMAGE_PIXELS", limit)
    args = _parser().parse_args(["ingest", "paired", str(src), "-o", str(tmp_path / "out"), "--label-space", "ade20k"])
    with pytest.raises(CLIError) as info:
        args.handler(args)
    message = str(info.value)
    assert "\n" not in message and "s000" in message and f"MAX_IMAGE_PIXELS = {limit}" in message, message


def test_files_sharing_a_stem_are_an_error(tmp_path):
    src = _synthetic_paired(tmp_path / "src", 2)
    Image.open(src / "images" / "s000.jpg").save(src / "images" / "s000.png")
    Image.open(src / "images" / "s000.jpg").save(src / "images" / "s000.bmp")
    with pytest.raises(ValueError, match=r"share one name.*s000\.bmp \+ .*s000\.jpg \+ .*s000\.png.*one file per name"):
        ingest("paired", src, tmp_path / "out", label_space="ade20k")


def test_skip_missing_lists_what_it_skipped(tmp_path, capsys):
    src = _synthetic_paired(tmp_path / "src", 9)
    for i in range(7):
        (src / "labels" / f"s00{i}.png").unlink()
    args = _parser().parse_args(["ingest", "paired", str(src), "-o", str(tmp_path / "out"), "--label-space", "ade20k",
                                 "--skip-missing"])  # fmt: skip
    result = args.handler(args)
    assert result.num_rows == 2 and len(result.skipped) == 7
    printed = capsys.readouterr().out
    assert "skipped 7 file(s): " in printed and "s000.jpg (no label file)" in printed and "(7 in all)" in printed
