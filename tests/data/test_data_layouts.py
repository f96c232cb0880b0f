"""Original folder layouts read from the real samples (../shared/samples), plus a paired folder with colour labels."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from labelsynth.data import PairedTransform, build_dataset, detect_layout, list_layouts, load_training_dataset
from labelsynth.label_spaces import convert_celebamask_order, get_label_space


def _arr(path_or_image) -> np.ndarray:
    image = Image.open(path_or_image) if isinstance(path_or_image, (str, Path)) else path_or_image
    return np.asarray(image).astype(np.int64)


def _link_tree(pairs: dict[str, Path], root: Path) -> Path:
    """Build a folder tree of symlinks {relative path: source file} (no sample bytes are copied)."""
    for rel, src in pairs.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(src, target)
    return root


def test_layouts_are_detected_on_the_samples(samples_dir):
    assert list_layouts() == ["celebamask-hq", "cityscapes", "ade20k", "coco-stuff", "paired"]
    assert detect_layout(samples_dir / "CoCosNet_ade20k") == "ade20k"
    assert detect_layout(samples_dir / "SPADE_coco_stuff") == "coco-stuff"
    assert detect_layout(samples_dir / "pix2pixHD_cityscapes") == "cityscapes"
    assert detect_layout(samples_dir / "CoCosNet_celebahqedge") == "celebamask-hq"
    assert detect_layout(samples_dir / "CoCosNet_celebahq") == "celebamask-hq"
    assert detect_layout(samples_dir / "SEAN_celebahq") is None


# ---------------------------------------------------------------- ADE20K
def test_ade20k_cocosnet_flat_layout(samples_dir):
    root = samples_dir / "CoCosNet_ade20k"
    ds, space = load_training_dataset(root, return_label_space=True)
    assert space.name == "ade20k" and ds.column_names == ["image", "label", "image_id"] and len(ds) == 6
    for row in ds:
        expected = _arr(root / "training" / f"{row['image_id']}.png")
        np.testing.assert_array_equal(_arr(row["label"]), expected)  # raw ids 0..150, no shift
        assert expected.max() <= 150 and row["image"].size == row["label"].size
    assert len(load_training_dataset(root, split="validation")) == 6


def test_ade20k_challenge_layout(samples_dir, tmp_path):
    src = samples_dir / "CoCosNet_ade20k" / "training"
    tree = {f"ADEChallengeData2016/images/training/{p.name}": p for p in src.glob("*.jpg")}
    tree |= {f"ADEChallengeData2016/annotations/training/{p.name}": p for p in src.glob("*.png")}
    root = _link_tree(tree, tmp_path)
    assert detect_layout(root) == "ade20k"
    ds = load_training_dataset(root)
    assert len(ds) == 6
    np.testing.assert_array_equal(_arr(ds[0]["label"]), _arr(src / f"{ds[0]['image_id']}.png"))
    with pytest.raises(ValueError, match="no split 'validation'|validation"):
        load_training_dataset(root, split="validation")


# ---------------------------------------------------------------- COCO-Stuff
def test_coco_stuff_spade_layout_keeps_255_and_instances(samples_dir):
    root = samples_dir / "SPADE_coco_stuff"
    ds, space = load_training_dataset(root, return_label_space=True)
    assert space.name == "coco-stuff" and len(ds) == 13
    assert ds.column_names == ["image", "label", "instance", "image_id"]
    row = ds[0]
    label = _arr(row["label"])
    np.testing.assert_array_equal(label, _arr(root / "train_label" / f"{row['image_id']}.png"))
    np.testing.assert_array_equal(_arr(row["instance"]), _arr(root / "train_inst" / f"{row['image_id']}.png"))
    assert 255 in label
    out = PairedTransform(size=64, load_size=72, label_space=space, seed=0)(row)
    values = set(np.unique(out["label_map"].numpy()))
    assert 255 in values and values <= set(np.unique(label))  # ignore kept as is, nearest keeps valid ids only
    assert out["instance_map"].shape == (64, 64)
    assert len(load_training_dataset(root, split="val")) == 8


def test_coco_stuff_official_layout(samples_dir, tmp_path):
    src = samples_dir / "SPADE_coco_stuff"
    tree = {f"train2017/{p.name}": p for p in sorted((src / "train_img").glob("*.jpg"))[:3]}
    tree |= {
        f"stuffthingmaps_trainval2017/train2017/{p.name}": p for p in sorted((src / "train_label").glob("*.png"))[:3]
    }
    root = _link_tree(tree, tmp_path)
    assert detect_layout(root) == "coco-stuff"
    ds = load_training_dataset(root)
    assert len(ds) == 3 and "instance" not in ds.column_names


# ---------------------------------------------------------------- Cityscapes
def test_cityscapes_pix2pixhd_layout_keeps_16bit_instance_ids(samples_dir):
    root = samples_dir / "pix2pixHD_cityscapes"
    ds, space = load_training_dataset(root, return_label_space=True)
    assert space.name == "cityscapes" and len(ds) == 8
    row = ds[0]
    stem = row["image_id"]
    assert row["instance"].mode == "I;16"
    inst = _arr(row["instance"])
    np.testing.assert_array_equal(inst, _arr(root / "train_inst" / f"{stem}_gtFine_instanceIds.png"))
    assert inst.max() > 32767  # e.g. 33001 = license plate / bicycle instance: no int16 overflow
    np.testing.assert_array_equal(_arr(row["label"]), _arr(root / "train_label" / f"{stem}_gtFine_labelIds.png"))
    out = PairedTransform(size=(256, 512), mode="fixed", flip=False, label_space=space)(row)
    assert out["label_map"].shape == (256, 512) and out["pixel_values"].shape == (3, 256, 512)
    values = set(np.unique(out["instance_map"].numpy()))
    assert values <= set(np.unique(inst)) and max(values) > 32767
    with pytest.raises(ValueError, match="no images"):
        load_training_dataset(root, split="test")  # pix2pixHD ships labels only for its test split


def test_cityscapes_official_layout(samples_dir, tmp_path):
    src = samples_dir / "pix2pixHD_cityscapes"
    stems = ["aachen_000000_000019", "aachen_000001_000019"]
    tree = {}
    for s in stems:
        tree[f"leftImg8bit/train/aachen/{s}_leftImg8bit.png"] = src / "train_img" / f"{s}_leftImg8bit.png"
        tree[f"gtFine/train/aachen/{s}_gtFine_labelIds.png"] = src / "train_label" / f"{s}_gtFine_labelIds.png"
        tree[f"gtFine/train/aachen/{s}_gtFine_instanceIds.png"] = src / "train_inst" / f"{s}_gtFine_instanceIds.png"
    root = _link_tree(tree, tmp_path)
    assert detect_layout(root) == "cityscapes"
    ds = load_training_dataset(root, streaming=True)
    rows = list(ds)
    assert [r["image_id"] for r in rows] == stems
    assert _arr(rows[0]["instance"]).max() > 32767


# ---------------------------------------------------------------- CelebAMask-HQ
def test_celebamask_part_masks_merged_in_both_class_orders(samples_dir):
    root = samples_dir / "CoCosNet_celebahqedge"
    official = load_training_dataset(root, class_order="official")
    cocosnet, space = load_training_dataset(root, class_order="cocosnet", return_label_space=True)
    assert space.name == "celebamask-hq-cocosnet"
    ids = sorted(official["image_id"])
    assert ids == ["02994", "14721", "15064", "26397"]  # val.txt holds the other 4 ids
    assert sorted(load_training_dataset(root, split="val")["image_id"]) == ["22233", "29318", "29539", "29642"]
    sean = get_label_space("celebamask-hq")
    for a, b in zip(official, cocosnet):
        assert a["image"].size == (1024, 1024) and a["label"].size == (512, 512)
        la, lb = _arr(a["label"]), _arr(b["label"])
        np.testing.assert_array_equal(convert_celebamask_order(la, sean, space), lb)
        # hair pixels not painted over by a later part (hat, ear_r, neck_l, neck, cloth) are 'hair' in both orders
        idx = int(a["image_id"])
        folder = root / "CelebAMask-HQ-mask-anno" / str(idx // 2000)
        hair = _arr(folder / f"{a['image_id']}_hair.png")[..., 0] > 0
        later = np.zeros_like(hair)
        for part in ("hat", "ear_r", "neck_l", "neck", "cloth"):
            if (folder / f"{a['image_id']}_{part}.png").is_file():
                later |= _arr(folder / f"{a['image_id']}_{part}.png")[..., 0] > 0
        assert (hair & ~later).any()
        assert (la[hair & ~later] == sean.label2id["hair"]).all() and (
            lb[hair & ~later] == space.label2id["hair"]
        ).all()
        assert sean.label2id["hair"] == 13 and space.label2id["hair"] == 2


def test_celebamask_cocosnet_prepared_maps(samples_dir):
    root = samples_dir / "CoCosNet_celebahq"
    cocosnet = load_training_dataset(root, split="validation", class_order="cocosnet")
    official = load_training_dataset(root, split="validation", class_order="official")
    assert sorted(cocosnet["image_id"]) == ["25807", "26969", "29883", "29922"]
    for a, b in zip(cocosnet, official):
        prepared = _arr(root / "CelebAMask-HQ-mask-anno" / "all_parts_except_glasses" / f"{a['image_id']}.png")
        np.testing.assert_array_equal(_arr(a["label"]), prepared)
        np.testing.assert_array_equal(
            _arr(b["label"]), convert_celebamask_order(prepared, "celebamask-hq-cocosnet", "celebamask-hq")
        )
    with pytest.raises(ValueError, match="class_order"):
        load_training_dataset(root, class_order="alphabetical")


# ---------------------------------------------------------------- paired folder with colour labels
def _paired_folder(samples_dir, root: Path, *, colour=True, n=3) -> list[str]:
    src = samples_dir / "CoCosNet_ade20k" / "training"
    ade = get_label_space("ade20k")
    stems = sorted(p.stem for p in src.glob("*.jpg"))[:n]
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    for stem in stems:
        os.symlink(src / f"{stem}.jpg", root / "images" / f"{stem}.jpg")
        ids = _arr(src / f"{stem}.png")
        ids[ids == 49] = 7  # road and skyscraper share a colour: decoding gives road
        label = Image.fromarray(ade.colorize(ids)) if colour else Image.fromarray(ids.astype(np.uint8))
        label.save(root / "labels" / f"{stem}.png")
    return stems


def test_paired_folder_with_colour_labels(samples_dir, tmp_path):
    stems = _paired_folder(samples_dir, tmp_path)
    assert detect_layout(tmp_path) == "paired"
    with pytest.raises(ValueError, match="needs label_space"):
        load_training_dataset(tmp_path)
    ds = load_training_dataset(tmp_path, label_space="ade20k")
    assert ds["image_id"] == stems
    for row in ds:
        expected = _arr(samples_dir / "CoCosNet_ade20k" / "training" / f"{row['image_id']}.png")
        expected[expected == 49] = 7
        assert row["label"].mode == "L"
        np.testing.assert_array_equal(_arr(row["label"]), expected)


def test_paired_folder_with_index_labels_and_instances(samples_dir, tmp_path):
    stems = _paired_folder(samples_dir, tmp_path, colour=False, n=2)
    (tmp_path / "instances").mkdir()
    for stem in stems:
        size = Image.open(tmp_path / "labels" / f"{stem}.png").size
        Image.fromarray(np.full(size[::-1], 40000, dtype=np.uint16)).save(tmp_path / "instances" / f"{stem}.png")
    ds = build_dataset("paired", tmp_path, label_space="ade20k", validate=True)
    assert ds.column_names == ["image", "label", "instance", "image_id"]
    assert _arr(ds[1]["instance"]).max() == 40000


# ---------------------------------------------------------------- bad data
def test_missing_label_file_is_named(samples_dir, tmp_path):
    stems = _paired_folder(samples_dir, tmp_path, colour=False)
    (tmp_path / "labels" / f"{stems[1]}.png").unlink()
    with pytest.raises(ValueError, match=rf"1 image\(s\) without a label file: {stems[1]}\.jpg.*skip_missing"):
        load_training_dataset(tmp_path, label_space="ade20k")
    assert len(load_training_dataset(tmp_path, label_space="ade20k", skip_missing=True)) == 2


def test_out_of_range_ids_and_mismatched_sizes_are_clear_errors(samples_dir, tmp_path):
    stems = _paired_folder(samples_dir, tmp_path, colour=False)
    bad = tmp_path / "labels" / f"{stems[0]}.png"
    ids = _arr(bad)
    ids[:5, :5] = 200
    Image.fromarray(ids.astype(np.uint8)).save(bad)
    with pytest.raises(ValueError, match=rf"{stems[0]}\.png.*\[200\].*ade20k"):
        build_dataset("paired", tmp_path, label_space="ade20k", validate=True)
    # the lazy path reports the same at transform time, naming the row
    ds = build_dataset("paired", tmp_path, label_space="ade20k")
    with pytest.raises(ValueError, match=rf"{stems[0]}.*\[200\]"):
        PairedTransform(size=32, label_space="ade20k")(ds[0])
    Image.fromarray(ids.clip(0, 150).astype(np.uint8).T).save(bad)  # transposed: another aspect ratio
    with pytest.raises(ValueError, match=r"is \d+x\d+ but its label map .* is \d+x\d+"):
        build_dataset("paired", tmp_path, label_space="ade20k", validate=True)


def test_paired_folder_with_split_subfolders(samples_dir, tmp_path):
    _paired_folder(samples_dir, tmp_path / "train", colour=False, n=2)
    _paired_folder(samples_dir, tmp_path / "val", colour=False, n=1)
    assert detect_layout(tmp_path) == "paired"
    assert len(load_training_dataset(tmp_path, label_space="ade20k")) == 2
    assert len(load_training_dataset(tmp_path, split="validation", label_space="ade20k")) == 1
    with pytest.raises(ValueError, match=r"no split 'test'; it has split folders \['train', 'val'\]"):
        load_training_dataset(tmp_path, split="test", label_space="ade20k")
