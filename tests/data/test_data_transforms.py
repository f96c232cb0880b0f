"""PairedTransform / collate_fn: alignment, nearest resizing, determinism, modes, errors, DataLoader use."""

from __future__ import annotations

import pickle
import random

import numpy as np
import pytest
import torch
from PIL import Image

from labelsynth.data import PairedTransform, TransformParams, collate_fn
from labelsynth.label_spaces import get_label_space

INSTANCE_BASE = 40000  # as in conftest.make_row: instance ids = 40000 + label * 100 + block index


def _check_alignment(out: dict, space) -> None:
    """Every label pixel inside a uniform 3x3 neighbourhood has the image colour of its class; instances agree."""
    label = out["label_map"].numpy()
    pixels = ((out["pixel_values"].numpy().transpose(1, 2, 0) + 1) * 127.5).round()
    inst = out["instance_map"].numpy()
    np.testing.assert_array_equal((inst - INSTANCE_BASE) // 100, label)
    h, w = label.shape
    pad = np.pad(label, 1, mode="edge")
    uniform = np.ones_like(label, dtype=bool)
    for dy in range(3):
        for dx in range(3):
            uniform &= pad[dy : dy + h, dx : dx + w] == label
    assert uniform.mean() > 0.15
    expected = space.palette[label].astype(np.float64)
    err = np.abs(pixels - expected).max(-1)
    assert err[uniform].max() <= 24 and err[uniform].mean() < 1.5, (
        f"image and label are misaligned (max colour error {err[uniform].max()})"
    )


@pytest.mark.parametrize("mode", ["resize_and_crop", "keep_aspect", "fixed", "none"])
def test_image_label_instance_stay_aligned(make_row, space10, mode):
    row = make_row(48, 64, block=12)
    transform = PairedTransform(size=(32, 40), load_size=(44, 56), mode=mode, flip=True, label_space=space10, seed=3)
    flips = set()
    for _ in range(12):
        params = transform.sample_params((48, 64))
        flips.add(params.flip)
        out = transform.apply(row, params)
        _check_alignment(out, space10)
    assert flips == {True, False}


def test_label_resize_equals_pil_nearest_and_keeps_valid_ids(make_row, space10):
    row = make_row(37, 53, block=3, seed=1)
    label = np.asarray(row["label"])
    transform = PairedTransform(size=(40, 50), load_size=(61, 83), label_space=space10, seed=0)
    for params in [transform.sample_params((37, 53)) for _ in range(6)]:
        out = transform.apply(row, params)["label_map"].numpy()
        (rh, rw), (top, left, ch, cw) = params.resize, params.crop
        ref = row["label"].resize((rw, rh), Image.NEAREST).crop((left, top, left + cw, top + ch))
        if params.flip:
            ref = ref.transpose(Image.FLIP_LEFT_RIGHT)
        np.testing.assert_array_equal(out, np.asarray(ref))
        assert set(np.unique(out)) <= set(np.unique(label))
        # the image went through the same geometry (PIL bicubic resize, same crop box, same flip)
        ref_image = row["image"].resize((rw, rh), Image.BICUBIC).crop((left, top, left + cw, top + ch))
        if params.flip:
            ref_image = ref_image.transpose(Image.FLIP_LEFT_RIGHT)
        pixels = transform.apply(row, params)["pixel_values"]
        np.testing.assert_array_equal(((pixels.numpy().transpose(1, 2, 0) + 1) * 127.5).round(), np.asarray(ref_image))


def test_ignore_value_kept_and_wide_instance_ids_exact(space10):
    label = np.full((20, 30), 255, dtype=np.uint8)
    label[:, :10] = 3
    inst = np.zeros((20, 30), dtype=np.int32)
    inst[:, 10:] = 70000  # does not fit 16 bits: a 32-bit instance map
    inst[:, :10] = 26001
    row = {"image": Image.new("RGB", (30, 20)), "label": Image.fromarray(label), "instance": Image.fromarray(inst)}
    out = PairedTransform(size=(10, 16), mode="fixed", flip=False, label_space=space10)(row)
    assert set(np.unique(out["label_map"].numpy())) == {3, 255}
    assert set(np.unique(out["instance_map"].numpy())) == {26001, 70000}
    assert out["label_map"].dtype == torch.int64 and out["instance_map"].dtype == torch.int64


def test_output_format(make_row, space10):
    out = PairedTransform(size=16, label_space=space10, seed=0)(make_row(20, 20))
    assert out["pixel_values"].shape == (3, 16, 16) and out["pixel_values"].dtype == torch.float32
    assert -1.0 <= float(out["pixel_values"].min()) and float(out["pixel_values"].max()) <= 1.0
    assert out["label_map"].shape == (16, 16) and out["instance_map"].shape == (16, 16)
    no_inst = PairedTransform(size=16, use_instance=False, seed=0)(make_row(20, 20))
    assert "instance_map" not in no_inst


def test_same_seed_same_output_and_different_seeds_differ(make_row):
    rows = [make_row(40, 50, seed=s) for s in range(6)]

    def run(**kwargs):
        t = PairedTransform(size=24, load_size=36, **kwargs)
        return [t(r) for r in rows]

    a, b = run(seed=7), run(seed=7)
    for x, y in zip(a, b):
        assert torch.equal(x["label_map"], y["label_map"]) and torch.equal(x["pixel_values"], y["pixel_values"])
    c = run(seed=8)
    assert any(not torch.equal(x["label_map"], y["label_map"]) for x, y in zip(a, c))
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    d, e = run(generator=g1), run(generator=g2)
    assert all(torch.equal(x["label_map"], y["label_map"]) for x, y in zip(d, e))
    f, g = run(generator=random.Random(1)), run(generator=random.Random(1))
    assert all(torch.equal(x["label_map"], y["label_map"]) for x, y in zip(f, g))
    with pytest.raises(ValueError, match="either seed or generator"):
        PairedTransform(seed=1, generator=random.Random(1))


def test_reseed_replays_the_stream():
    t = PairedTransform(size=8, load_size=20, seed=0)
    first = [t.sample_params((30, 30)) for _ in range(5)]
    t.reseed(0)
    assert [t.sample_params((30, 30)) for _ in range(5)] == first


def test_mode_sizes():
    fixed = PairedTransform(size=(256, 512), mode="fixed", flip=False)
    p = fixed.sample_params((1024, 2048))
    assert p == TransformParams(resize=(256, 512), crop=(0, 0, 256, 512), flip=False)
    keep = PairedTransform(size=256, mode="keep_aspect", seed=0)
    p = keep.sample_params((480, 640))  # short side -> 256, long side 341, random crop 256
    assert p.resize == (256, 341) and p.crop[2:] == (256, 256) and 0 <= p.crop[1] <= 85 and p.crop[0] == 0
    p = keep.sample_params((800, 400))
    assert p.resize == (512, 256) and p.crop[1] == 0
    rc = PairedTransform(size=256, load_size=286, seed=0)  # SPADE ADE20K / COCO-Stuff
    p = rc.sample_params((480, 640))
    assert p.resize == (286, 286) and p.crop[2:] == (256, 256)
    assert PairedTransform(size=(256, 512), load_size=286).load_size == (286, 572)
    none = PairedTransform(mode="none", flip=False)
    assert none.sample_params((37, 41)) == TransformParams((37, 41), (0, 0, 37, 41), False)
    with pytest.raises(ValueError, match="load_size"):
        PairedTransform(size=256, load_size=200)
    with pytest.raises(ValueError, match="mode must be one of"):
        PairedTransform(mode="scale_width")


def test_image_with_same_aspect_but_other_size(make_row, space10):
    row = make_row(32, 32, block=8)
    row["image"] = row["image"].resize((64, 64), Image.NEAREST)  # CelebA-HQ: 1024 photos, 512 masks
    out = PairedTransform(size=24, load_size=28, label_space=space10, seed=0)(row)
    _check_alignment(out, space10)


def test_colour_labels_are_decoded_with_the_palette(make_row, space10):
    row = make_row(24, 24)
    row["label"] = row["image"].copy()  # colour-coded label drawn with the same palette
    out = PairedTransform(size=24, mode="none", flip=False, label_space=space10)(row)
    np.testing.assert_array_equal(out["label_map"].numpy(), (out["instance_map"].numpy() - INSTANCE_BASE) // 100)


# ---------------------------------------------------------------- errors
def test_out_of_range_ids_name_the_row_values_and_fix(make_row):
    row = make_row(16, 16)
    row["label"] = Image.fromarray(np.full((16, 16), 200, dtype=np.uint8))
    row["image_id"] = "ADE_train_007"
    with pytest.raises(ValueError) as err:
        PairedTransform(size=8, label_space="ade20k", seed=0)(row)
    msg = str(err.value)
    assert "ADE_train_007" in msg and "[200]" in msg and "ade20k" in msg and "Hint" in msg


def test_size_mismatches_are_clear_errors(make_row, space10):
    row = make_row(16, 32)
    row["image"] = row["image"].resize((16, 32))  # transposed: other aspect ratio
    with pytest.raises(ValueError, match=r"image is 16x32 but its label map is 32x16"):
        PairedTransform(size=8, label_space=space10)(row)
    row = make_row(16, 32)
    row["instance"] = Image.fromarray(np.zeros((16, 16), np.uint16))
    with pytest.raises(ValueError, match="instance map is 16x16 but the label map is 32x16"):
        PairedTransform(size=8, label_space=space10)(row)
    with pytest.raises(ValueError, match="no label map"):
        PairedTransform(size=8)({"image": row["image"]})


# ---------------------------------------------------------------- batches, collate, pickling, DataLoader
def test_batched_call_and_collate(make_row, space10):
    rows = [make_row(20, 30, seed=s) for s in range(3)]
    batch = {k: [r[k] for r in rows] for k in rows[0]}
    batch["image_id"] = ["a", "b", "c"]
    out = PairedTransform(size=(16, 16), label_space=space10, seed=0)(batch)
    assert len(out["pixel_values"]) == 3 and out["image_id"] == ["a", "b", "c"]
    examples = [{k: v[i] for k, v in out.items()} for i in range(3)]
    stacked = collate_fn(examples)
    assert stacked["pixel_values"].shape == (3, 3, 16, 16) and stacked["label_map"].shape == (3, 16, 16)
    assert stacked["instance_map"].shape == (3, 16, 16) and stacked["image_id"] == ["a", "b", "c"]
    with pytest.raises(ValueError, match="different label_map shapes"):
        collate_fn([examples[0], {**examples[1], "label_map": torch.zeros(8, 8, dtype=torch.long)}])
    with pytest.raises(ValueError, match="instance"):
        collate_fn([{k: v for k, v in examples[0].items() if k != "instance_map"}, examples[1]])


def test_picklable(space10):
    t = PairedTransform(size=16, load_size=20, label_space=space10, seed=4)
    t2 = pickle.loads(pickle.dumps(t))
    assert [t.sample_params((30, 30)) for _ in range(4)] == [t2.sample_params((30, 30)) for _ in range(4)]


class _Rows(torch.utils.data.Dataset):
    def __init__(self, row, n, transform):
        self.row, self.n, self.transform = row, n, transform

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return self.transform(self.row)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_dataloader_reproducible_and_workers_get_own_streams(make_row, space10, num_workers):
    row = make_row(32, 32)

    def run():
        t = PairedTransform(size=16, load_size=28, label_space=space10, seed=0)
        loader = torch.utils.data.DataLoader(
            _Rows(row, 8, t), batch_size=1, num_workers=num_workers, collate_fn=collate_fn,
            generator=torch.Generator().manual_seed(0),
        )  # fmt: skip
        return torch.cat([b["label_map"] for b in loader])

    a, b = run(), run()
    assert torch.equal(a, b)
    if num_workers:
        # worker 0 produced rows 0, 2, 4, 6 and worker 1 rows 1, 3, 5, 7: their random streams must differ
        assert not all(torch.equal(a[i], a[i + 1]) for i in range(0, 8, 2))
    assert len({tuple(x.flatten().tolist()) for x in a}) > 1


def test_label_space_by_name():
    assert PairedTransform(label_space="cityscapes").label_space == get_label_space("cityscapes")
