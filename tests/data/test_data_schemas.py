"""Hub-schema adapters on small in-memory datasets written in each schema (plus streaming and a parquet round trip)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from datasets import ClassLabel, Dataset, DatasetDict, Features, Image, IterableDataset, Value, load_dataset
from PIL import Image as PILImage

from labelsynth.data import adapt_dataset, detect_schema, get_schema, list_schemas, load_training_dataset
from labelsynth.label_spaces import cityscapes_label_to_trainid, get_label_space

ADE = get_label_space("ade20k")
CITY = get_label_space("cityscapes")


def _ids(h=12, w=16, lo=0, hi=151, seed=0, dtype=np.uint8):
    return np.random.default_rng(seed).integers(lo, hi, (h, w)).astype(dtype)


def _photo(h=12, w=16, seed=0):
    return PILImage.fromarray(np.random.default_rng(seed + 100).integers(0, 256, (h, w, 3), dtype=np.uint8))


def _label(row) -> np.ndarray:
    return np.asarray(row["label"]).astype(np.int64)


def test_registry_lists_the_known_schemas():
    assert {"ade20k", "cityscapes", "celebamask-hq", "coco-stuff", "huggan-paired", "labelsynth"} <= set(list_schemas())
    assert get_schema("ade20k").label_space == "ade20k"
    with pytest.raises(ValueError, match="unknown schema"):
        get_schema("nope")


def test_detection_rules():
    assert detect_schema(["image", "annotation", "scene_category"]).name == "ade20k"
    assert detect_schema(["image", "semantic_segmentation"]).name == "cityscapes"
    assert detect_schema(["imageA", "imageB"]).name == "huggan-paired"
    assert detect_schema(["image", "label", "instance"]).name == "labelsynth"
    assert detect_schema(["image", "mask"], repo_id="GATE-engine/COCOStuff164K").name == "coco-stuff"
    assert detect_schema(["image_id", "image", "annotation"], repo_id="FrsECM/CelebAHQ_mask").name == "celebamask-hq"
    assert detect_schema(["image", "mask"], label_space="coco-stuff").name == "coco-stuff"
    assert detect_schema(["image", "annotation"], label_space="celebamask-hq-cocosnet").name == "celebamask-hq"
    with pytest.raises(ValueError, match="cannot tell the schema.*label_space"):
        detect_schema(["image", "annotation"])
    with pytest.raises(ValueError, match="no known schema.*column_mapping"):
        detect_schema(["photo", "seg"])


# ---------------------------------------------------------------- ADE20K (scene_parse_150)
def _ade_dataset(ids_list, category=True):
    data = {
        "image": [_photo(seed=i) for i in range(len(ids_list))],
        "annotation": [PILImage.fromarray(a) for a in ids_list],
    }
    feats = {"image": Image(), "annotation": Image()}
    if category:
        data["scene_category"] = [0] * len(ids_list)
        feats["scene_category"] = ClassLabel(names=["bathroom", "bedroom"])
    return Dataset.from_dict(data, features=Features(feats))


def test_ade20k_raw_ids_pass_through():
    ids = _ids()
    ds, space = adapt_dataset(_ade_dataset([ids]), return_label_space=True)
    assert space.name == "ade20k" and ds.column_names == ["image", "label"]
    np.testing.assert_array_equal(_label(ds[0]), ids)


def test_ade20k_reduce_labels_export_is_shifted_back():
    raw = _ids(lo=0, hi=151)
    raw[0, :2] = (0, 150)
    reduced = np.where(raw == 0, 255, raw - 1).astype(np.uint8)  # transformers' do_reduce_labels
    ds = _ade_dataset([reduced])
    np.testing.assert_array_equal(_label(adapt_dataset(ds, reduce_labels=True)[0]), raw)
    np.testing.assert_array_equal(_label(adapt_dataset(ds)[0]), raw)  # auto: 255 never occurs in raw ADE20K ids
    np.testing.assert_array_equal(_label(adapt_dataset(ds, reduce_labels=False)[0]), reduced)
    np.testing.assert_array_equal(_label(adapt_dataset(_ade_dataset([raw]))[0]), raw)  # has 0 and 150: raw
    # values that fit both conventions: raw assumed; a 150-name id2label only triggers a warning
    ambiguous = _ids(lo=1, hi=150)
    id2label = {str(i): n for i, n in enumerate(ADE.names[1:])}  # the 150 reduced names, starting with "wall"
    with pytest.warns(UserWarning, match="reduce_labels=True"):
        out = adapt_dataset(_ade_dataset([ambiguous]), id2label=id2label)
    np.testing.assert_array_equal(_label(out[0]), ambiguous)
    with pytest.raises(ValueError, match="only applies to ADE20K"):
        adapt_dataset(_ade_dataset([raw]), label_space="coco-stuff", schema="coco-stuff",
                      column_mapping={"annotation": "label"}, reduce_labels=True)  # fmt: skip


# ---------------------------------------------------------------- Cityscapes mirrors
def test_cityscapes_index_labels_and_16bit_instances():
    ids = _ids(hi=34)
    inst = np.where(ids == 26, 26000 + _ids(hi=5, seed=3).astype(np.int64), ids).astype(np.uint16)
    inst[0, 0] = 33001
    ds = Dataset.from_dict(
        {
            "image": [_photo()],
            "semantic_segmentation": [PILImage.fromarray(ids)],
            "instance": [PILImage.fromarray(inst)],
        },
        features=Features({"image": Image(), "semantic_segmentation": Image(), "instance": Image()}),
    )
    out, space = adapt_dataset(ds, return_label_space=True)
    assert space.name == "cityscapes" and out.column_names == ["image", "label", "instance"]
    np.testing.assert_array_equal(_label(out[0]), ids)
    np.testing.assert_array_equal(np.asarray(out[0]["instance"]).astype(np.int64), inst)


def test_cityscapes_colour_labels_are_decoded_with_the_palette():
    ids = _ids(hi=34)
    ids[ids <= 4] = 0  # ids 0..4 share black: decoding gives the lowest id
    ids[ids == 18] = 17  # polegroup -> pole
    colour = CITY.colorize(ids).astype(np.uint8)
    ds = Dataset.from_dict(
        {"image": [_photo()], "semantic_segmentation": [PILImage.fromarray(colour)]},
        features=Features({"image": Image(), "semantic_segmentation": Image()}),
    )
    out = adapt_dataset(ds, repo_id="Chris1/cityscapes")
    assert out[0]["label"].mode == "L"
    np.testing.assert_array_equal(_label(out[0]), ids)


def test_cityscapes_trainids_are_detected():
    train_ids = _ids(hi=19)
    train_ids[0, 0] = 255
    ds = Dataset.from_dict({"image": [_photo()], "semantic_segmentation": [PILImage.fromarray(train_ids)]},
                           features=Features({"image": Image(), "semantic_segmentation": Image()}))  # fmt: skip
    with pytest.warns(UserWarning, match="trainIds"):
        out, space = adapt_dataset(ds, return_label_space=True)
    assert space.name == "cityscapes-trainid"
    np.testing.assert_array_equal(_label(out[0]), train_ids)


# ---------------------------------------------------------------- CelebAMask-HQ and COCO-Stuff mirrors
def test_celebamask_annotation_and_mask_columns():
    ids = _ids(hi=19)
    for column in ("annotation", "mask"):
        ds = Dataset.from_dict(
            {"image_id": ["00001"], "image": [_photo()], column: [PILImage.fromarray(ids)]},
            features=Features({"image_id": Value("string"), "image": Image(), column: Image()}),
        )
        out, space = adapt_dataset(ds, repo_id="FrsECM/CelebAHQ_mask", return_label_space=True)
        assert space.name == "celebamask-hq" and out.column_names == ["image", "label", "image_id"]
        np.testing.assert_array_equal(_label(out[0]), ids)
        out, space = adapt_dataset(ds, label_space="celebamask-hq-cocosnet", return_label_space=True)
        assert space.name == "celebamask-hq-cocosnet"


def test_coco_stuff_mask_keeps_255():
    ids = _ids(hi=182)
    ids[:3] = 255
    ds = Dataset.from_dict({"image": [_photo()], "mask": [PILImage.fromarray(ids)]},
                           features=Features({"image": Image(), "mask": Image()}))  # fmt: skip
    out, space = adapt_dataset(ds, repo_id="GATE-engine/COCOStuff164K", return_label_space=True)
    assert space.name == "coco-stuff"
    np.testing.assert_array_equal(_label(out[0]), ids)


# ---------------------------------------------------------------- huggan-style paired colour labels
def _jpeg(arr: np.ndarray) -> PILImage.Image:
    buf = io.BytesIO()
    PILImage.fromarray(arr).save(buf, format="JPEG", quality=95)
    return PILImage.open(io.BytesIO(buf.getvalue()))


def test_huggan_paired_detects_the_label_column_and_snaps_jpeg_colours():
    ids = np.kron(np.array([[7, 21], [26, 11]]), np.ones((16, 16), dtype=np.int64))  # road, vegetation, car, building
    colour = CITY.colorize(ids).astype(np.uint8)
    photo = np.asarray(_photo(32, 32))
    ds = Dataset.from_dict({"imageA": [_jpeg(photo)], "imageB": [_jpeg(colour)]},
                           features=Features({"imageA": Image(), "imageB": Image()}))  # fmt: skip
    out, space = adapt_dataset(ds, repo_id="huggan/cityscapes", return_label_space=True)
    assert space.name == "cityscapes" and out.column_names == ["image", "label"]
    # JPEG blurs the colour edges: blended edge pixels snap to the nearest palette colour, block interiors are exact
    interior = np.ones((32, 32), dtype=bool)
    interior[13:19] = interior[:, 13:19] = False
    np.testing.assert_array_equal(_label(out[0])[interior], ids[interior])
    np.testing.assert_array_equal(np.asarray(out[0]["image"]), np.asarray(ds[0]["imageA"]))
    # explicit mapping, other direction
    swapped = ds.rename_columns({"imageA": "imageB", "imageB": "imageA"})
    out = adapt_dataset(swapped, column_mapping={"imageA": "label", "imageB": "image"}, label_space="cityscapes")
    np.testing.assert_array_equal(_label(out[0])[interior], ids[interior])
    with pytest.raises(ValueError, match="neither 'imageA' nor 'imageB' looks like a label map"):
        adapt_dataset(Dataset.from_dict({"imageA": [_photo(seed=1)], "imageB": [_photo(seed=2)]},
                                        features=Features({"imageA": Image(), "imageB": Image()})),
                      label_space="cityscapes")  # fmt: skip


# ---------------------------------------------------------------- our schema, column_mapping, errors
def test_labelsynth_schema_needs_a_label_space():
    ds = Dataset.from_dict({"image": [_photo()], "label": [PILImage.fromarray(_ids(hi=10))]},
                           features=Features({"image": Image(), "label": Image()}))  # fmt: skip
    with pytest.raises(ValueError, match="label space is unknown; pass label_space"):
        adapt_dataset(ds)
    assert adapt_dataset(ds, label_space="ade20k").column_names == ["image", "label"]


def test_column_mapping_override_and_errors():
    ids = _ids()
    ds = Dataset.from_dict({"photo": [_photo()], "seg": [PILImage.fromarray(ids)], "extra": [1]},
                           features=Features({"photo": Image(), "seg": Image(), "extra": Value("int32")}))  # fmt: skip
    out = adapt_dataset(ds, column_mapping={"photo": "image", "seg": "label"}, label_space="ade20k")
    assert out.column_names == ["image", "label"]
    np.testing.assert_array_equal(_label(out[0]), ids)
    with pytest.raises(ValueError, match="does not have"):
        adapt_dataset(ds, column_mapping={"nope": "label"}, label_space="ade20k")
    with pytest.raises(ValueError, match="roles must be among"):
        adapt_dataset(ds, column_mapping={"seg": "mask"}, label_space="ade20k")


def test_dataset_dict_every_split():
    dd = DatasetDict({"train": _ade_dataset([_ids()]), "validation": _ade_dataset([_ids(seed=1)])})
    out = adapt_dataset(dd)
    assert set(out) == {"train", "validation"} and out["validation"].column_names == ["image", "label"]


# ---------------------------------------------------------------- streaming and parquet round trip
def test_iterable_dataset_streaming_case():
    raw = [_ids(seed=s) for s in range(3)]
    reduced = [np.where(a == 0, 255, a - 1).astype(np.uint8) for a in raw]
    stream = _ade_dataset(reduced).to_iterable_dataset(num_shards=3)
    assert isinstance(stream, IterableDataset)
    out = load_training_dataset(stream, reduce_labels=True)
    assert isinstance(out, IterableDataset)
    rows = list(out)
    assert [sorted(r) for r in rows] == [["image", "label"]] * 3
    for row, expected in zip(rows, raw):
        np.testing.assert_array_equal(_label(row), expected)


def test_parquet_round_trip_offline(tmp_path):
    ids = _ids(hi=34)
    inst = (ids.astype(np.uint16) * 1000 + 1).astype(np.uint16)
    ds = Dataset.from_dict(
        {"image": [_photo()], "semantic_segmentation": [PILImage.fromarray(ids)], "instance": [PILImage.fromarray(inst)],
         "city": ["aachen"]},
        features=Features({"image": Image(), "semantic_segmentation": Image(), "instance": Image(), "city": Value("string")}),
    )  # fmt: skip
    (tmp_path / "data").mkdir()
    ds.to_parquet(str(tmp_path / "data" / "train-00000-of-00001.parquet"))
    reloaded = load_dataset("parquet", data_dir=str(tmp_path), split="train")
    out = adapt_dataset(reloaded)
    assert out.column_names == ["image", "label", "instance"]
    np.testing.assert_array_equal(_label(out[0]), ids)
    np.testing.assert_array_equal(np.asarray(out[0]["instance"]), inst)
    streamed = load_training_dataset(tmp_path, streaming=True)
    row = next(iter(streamed))
    np.testing.assert_array_equal(_label(row), ids)
    assert int(np.asarray(row["instance"]).max()) == int(inst.max()) > 32767
    assert cityscapes_label_to_trainid(_label(row)).shape == ids.shape
