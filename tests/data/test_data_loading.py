"""load_training_dataset dispatch (datasets objects, save_to_disk, imagefolder, Hub ids offline) and training loaders."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from datasets import Dataset, DatasetDict, Features, Image, IterableDataset, Value
from datasets.distributed import split_dataset_by_node
from PIL import Image as PILImage

from labelsynth.data import PairedTransform, apply_transform, collate_fn, load_training_dataset
from labelsynth.label_spaces import get_label_space


def _ids(h=12, w=16, hi=151, seed=0):
    return np.random.default_rng(seed).integers(0, hi, (h, w)).astype(np.uint8)


def _ade(n=4, h=20, w=24) -> Dataset:
    rng = np.random.default_rng(0)
    return Dataset.from_dict(
        {
            "image": [PILImage.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for _ in range(n)],
            "annotation": [PILImage.fromarray(_ids(h, w, seed=i)) for i in range(n)],
            "scene_category": ["bedroom"] * n,
            "image_id": [f"img{i}" for i in range(n)],
        },
        features=Features(
            {"image": Image(), "annotation": Image(), "scene_category": Value("string"), "image_id": Value("string")}
        ),
    )


def test_save_to_disk_folder(tmp_path):
    _ade().save_to_disk(str(tmp_path / "saved"))
    ds, space = load_training_dataset(tmp_path / "saved", return_label_space=True)
    assert space.name == "ade20k" and ds.column_names == ["image", "label", "image_id"] and len(ds) == 4
    stream = load_training_dataset(tmp_path / "saved", streaming=True)
    assert isinstance(stream, IterableDataset)
    np.testing.assert_array_equal(np.asarray(next(iter(stream))["label"]), _ids(20, 24, seed=0))


def test_imagefolder_with_metadata(tmp_path):
    root = tmp_path / "imgf" / "train"
    root.mkdir(parents=True)
    rows = []
    for i in range(2):
        PILImage.fromarray(np.full((8, 10, 3), 40 * i, np.uint8)).save(root / f"p{i}.png")
        PILImage.fromarray(_ids(8, 10, hi=34, seed=i)).save(root / f"p{i}_label.png")
        PILImage.fromarray(_ids(8, 10, hi=34, seed=i).astype(np.uint16) * 1000 + 1).save(root / f"p{i}_inst.png")
        rows.append({"file_name": f"p{i}.png", "label_file_name": f"p{i}_label.png",
                     "instance_file_name": f"p{i}_inst.png"})  # fmt: skip
    (root / "metadata.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    ds = load_training_dataset(tmp_path / "imgf", label_space="cityscapes")
    assert ds.column_names == ["image", "label", "instance"] and len(ds) == 2
    assert int(np.asarray(ds[1]["instance"]).max()) > 32767


def test_hub_id_offline_and_bad_paths(tmp_path):
    with pytest.raises(ValueError, match="could not load the Hub dataset 'nobody/no-such-dataset'.*offline"):
        load_training_dataset("nobody/no-such-dataset")
    with pytest.raises(ValueError, match="does not exist"):
        load_training_dataset("./no/such/folder")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="not a dataset folder"):
        load_training_dataset(tmp_path / "empty")
    with pytest.raises(ValueError, match=r"split 'test' not found; available splits: \['train'\]"):
        load_training_dataset(DatasetDict({"train": _ade()}), split="test")
    with pytest.raises(TypeError):
        load_training_dataset(42)


def test_dataset_dict_split_aliases():
    dd = DatasetDict({"train": _ade(2), "validation": _ade(3)})
    assert len(load_training_dataset(dd, split="val")) == 3


# ---------------------------------------------------------------- DataLoader / accelerate
@pytest.mark.parametrize("num_workers", [0, 2])
def test_dataloader_map_style(num_workers):
    ds = apply_transform(load_training_dataset(_ade(4)), PairedTransform(size=16, label_space="ade20k", seed=0))
    loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=num_workers, collate_fn=collate_fn)
    batches = list(loader)
    assert len(batches) == 2
    assert batches[0]["pixel_values"].shape == (2, 3, 16, 16) and batches[0]["label_map"].dtype == torch.int64
    assert [i for b in batches for i in b["image_id"]] == ["img0", "img1", "img2", "img3"]


@pytest.mark.parametrize("num_workers", [0, 2])
def test_dataloader_streaming(num_workers):
    stream = load_training_dataset(_ade(4).to_iterable_dataset(num_shards=2))
    ds = apply_transform(stream, PairedTransform(size=16, label_space="ade20k", seed=0))
    loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=num_workers, collate_fn=collate_fn)
    ids = sorted(i for b in loader for i in b["image_id"])
    assert ids == ["img0", "img1", "img2", "img3"]


def test_original_layout_streaming_shards_over_files(samples_dir):
    stream = load_training_dataset(samples_dir / "CoCosNet_ade20k", streaming=True)
    assert stream.num_shards == 6
    halves = [sorted(r["image_id"] for r in split_dataset_by_node(stream, rank=r, world_size=2)) for r in (0, 1)]
    assert not set(halves[0]) & set(halves[1]) and len(halves[0]) + len(halves[1]) == 6


def test_accelerate_prepare_shards_rows():
    from accelerate import Accelerator
    from accelerate.data_loader import prepare_data_loader

    ds = apply_transform(load_training_dataset(_ade(4)), PairedTransform(size=8, label_space="ade20k", seed=0))
    loader = torch.utils.data.DataLoader(ds, batch_size=1, collate_fn=collate_fn)
    seen = []
    for rank in (0, 1):
        shard = prepare_data_loader(loader, num_processes=2, process_index=rank, put_on_device=False)
        seen.append([i for b in shard for i in b["image_id"]])
    assert sorted(seen[0] + seen[1]) == ["img0", "img1", "img2", "img3"] and not set(seen[0]) & set(seen[1])
    prepared = Accelerator(cpu=True).prepare(loader)
    batch = next(iter(prepared))
    assert batch["label_map"].shape == (1, 8, 8) and get_label_space("ade20k").num_classes == 151
