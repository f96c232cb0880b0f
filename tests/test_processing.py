"""Tests for labelsynth.processing.LabelMapProcessor: input forms, errors, resizing, instance/style inputs, I/O."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from labelsynth.label_spaces import LabelSpace, get_label_space
from labelsynth.processing import LabelMapProcessor, _nearest_index

ADE = get_label_space("ade20k")


def ade_ids(h=6, w=8, seed=0):
    return np.random.default_rng(seed).integers(0, 151, (h, w))


def proc(**kwargs):
    kwargs.setdefault("resize_mode", "none")
    return LabelMapProcessor(**kwargs)


# ---------------------------------------------------------------- accepted label-map forms
def test_path_and_pil_index_modes(tmp_path):
    ids = ade_ids()
    Image.fromarray(ids.astype(np.uint8), mode="L").save(tmp_path / "l.png")
    p = proc()
    for item in (str(tmp_path / "l.png"), tmp_path / "l.png", Image.open(tmp_path / "l.png")):
        out = p(item)["label_map"]
        assert out.dtype == torch.int64 and out.shape == (1, 6, 8)
        np.testing.assert_array_equal(out[0].numpy(), ids)
    i32 = Image.fromarray(ids.astype(np.int32))
    assert i32.mode == "I"
    np.testing.assert_array_equal(p(i32)["label_map"][0].numpy(), ids)
    i16 = Image.fromarray(ids.astype(np.uint16))
    assert i16.mode == "I;16"
    np.testing.assert_array_equal(p(i16)["label_map"][0].numpy(), ids)
    np.testing.assert_array_equal(p(Image.fromarray(ids.astype(np.float32)))["label_map"][0].numpy(), ids)


def test_palette_png_uses_indices_not_colours(tmp_path):
    ids = ade_ids()
    image = Image.fromarray(ids.astype(np.uint8), mode="L").convert("P")
    # A palette whose colours have nothing to do with the ADE20K palette: the indices still are the ids.
    image.putpalette(np.random.default_rng(1).integers(0, 256, 768).astype(np.uint8).tolist())
    image.save(tmp_path / "p.png")
    reopened = Image.open(tmp_path / "p.png")
    assert reopened.mode == "P"
    np.testing.assert_array_equal(proc()(reopened)["label_map"][0].numpy(), ids)


def test_colour_coded_rgb_and_rgba(tmp_path):
    ids = ade_ids()
    rgb = ADE.colorize(ids)
    expected = np.where(ids == 49, 7, ids)  # skyscraper shares road's colour
    p = proc()
    Image.fromarray(rgb).save(tmp_path / "c.png")
    for item in (tmp_path / "c.png", Image.fromarray(rgb), rgb, Image.fromarray(rgb).convert("RGBA")):
        np.testing.assert_array_equal(p(item)["label_map"][0].numpy(), expected)
    rgba = np.concatenate([rgb, np.zeros(rgb.shape[:2] + (1,), np.uint8)], axis=-1)  # alpha is ignored
    np.testing.assert_array_equal(p(rgba)["label_map"][0].numpy(), expected)
    batch = np.stack([rgb, rgb[::-1]])  # (B, H, W, 3) uint8
    np.testing.assert_array_equal(p(batch)["label_map"].numpy(), np.stack([expected, expected[::-1]]))


def test_grey_rgb_is_an_index_map_unless_all_greys_are_palette_colours():
    ids = ade_ids()
    grey_rgb = np.repeat(ids.astype(np.uint8)[..., None], 3, axis=-1)  # label PNG saved as RGB
    np.testing.assert_array_equal(proc()(Image.fromarray(grey_rgb))["label_map"][0].numpy(), ids)
    # A colour-coded map that happens to use only ADE20K's grey classes (wall, road, floor-ish greys) stays colours.
    grey_classes = np.array([[1, 7], [1, 7]])  # wall (120,120,120), road (140,140,140)
    decoded = proc()(ADE.colorize(grey_classes))["label_map"][0].numpy()
    np.testing.assert_array_equal(decoded, grey_classes)


def test_numpy_and_torch_ids():
    ids = ade_ids()
    batch = np.stack([ids, ids[::-1]])
    p = proc()
    for item, expected in [
        (ids.astype(np.uint8), ids[None]),
        (ids.astype(np.int32), ids[None]),
        (ids.astype(np.float64), ids[None]),  # integral floats are fine
        (batch, batch),
        (batch[:, None], batch),  # (B, 1, H, W)
        (torch.from_numpy(ids), ids[None]),
        (torch.from_numpy(batch), batch),
        (torch.from_numpy(batch[:, None]).int(), batch),
        (torch.from_numpy(ids).float(), ids[None]),
        ([ids, torch.from_numpy(ids), Image.fromarray(ids.astype(np.uint8))], np.stack([ids] * 3)),
    ]:
        out = p(item)["label_map"]
        assert out.dtype == torch.int64
        np.testing.assert_array_equal(out.numpy(), expected)


def test_return_numpy_and_call_forwarding():
    ids = ade_ids()
    p = proc()
    out = p.preprocess(ids, return_tensors="np")["label_map"]
    assert isinstance(out, np.ndarray) and out.dtype == np.int64
    np.testing.assert_array_equal(p(ids, return_tensors=None)["label_map"], out)
    with pytest.raises(ValueError, match="return_tensors must be"):
        p(ids, return_tensors="tf")


# ---------------------------------------------------------------- errors: problem and fix
def test_out_of_range_ids_name_values_space_and_range():
    ids = ade_ids()
    bad = ids.copy()
    bad[:2, :] = 151
    with pytest.raises(ValueError) as err:
        proc()([ids, bad])
    msg = str(err.value)
    assert msg.startswith("label map #1:") and "ids [151] (16 pixels)" in msg
    assert "'ade20k'" in msg and "0..150" in msg and "label space" in msg


def test_unknown_colours_mention_tolerance_and_tolerance_fixes_them():
    ids = ade_ids()
    ids[0, 0] = 1  # wall, (120, 120, 120)
    rgb = ADE.colorize(ids)
    rgb[0, 0] = (122, 121, 120)  # one anti-aliased pixel
    with pytest.raises(ValueError) as err:
        proc()(rgb)
    msg = str(err.value)
    assert "on 1 pixel" in msg and "not in the palette" in msg and "color_tolerance" in msg
    expected = np.where(ids == 49, 7, ids)
    np.testing.assert_array_equal(proc(color_tolerance=4)(rgb)["label_map"][0].numpy(), expected)
    np.testing.assert_array_equal(proc()(rgb, color_tolerance=4)["label_map"][0].numpy(), expected)


def test_colour_error_suggests_a_working_color_tolerance_once():
    cs = get_label_space("cityscapes")
    ids = np.full((24, 32), 7)  # road
    ids[:, 16:] = 8  # sidewalk
    rgb = cs.colorize(ids)
    rgb[:, 16] = (rgb[0, 15].astype(int) + rgb[0, 16]) // 2  # an anti-aliased edge column
    with pytest.raises(ValueError) as err:
        proc(label_space="cityscapes")(rgb)
    msg, suggested = str(err.value), getattr(err.value, "suggested_tolerance", None)
    assert suggested is not None and msg.startswith("label map #0: 3.1% of the image (24 of 768 pixels")
    assert f"tolerance={suggested:g} decodes it" in msg and f"set color_tolerance={suggested:g}" in msg
    assert "label map #0: label map" not in msg and "anti-aliasing" in msg
    decoded = proc(label_space="cityscapes", color_tolerance=suggested)(rgb)["label_map"][0].numpy()
    assert set(np.unique(decoded[:, 16]).tolist()) <= {7, 8} and (decoded[:, 17:] == 8).all()


def test_rgb_with_a_palette_less_space():
    space = LabelSpace(name="plain", names=("a", "b", "c"))
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[0, 0] = (10, 20, 30)
    with pytest.raises(ValueError, match="has no palette"):
        proc(label_space=space)(rgb)
    grey = np.repeat(np.array([[0, 1], [2, 1]], np.uint8)[..., None], 3, axis=-1)
    np.testing.assert_array_equal(proc(label_space=space)(grey)["label_map"][0].numpy(), [[0, 1], [2, 1]])


def test_instance_map_size_mismatch():
    labels = np.zeros((128, 256), np.int64)
    inst = np.zeros((256, 512), np.int64)
    with pytest.raises(ValueError, match=r"instance map is 512x256 but label map is 256x128"):
        proc(label_space="cityscapes")(labels, instance_maps=inst)


def test_batch_of_different_sizes_without_resizing():
    with pytest.raises(ValueError) as err:
        proc()([np.zeros((4, 4), np.int64), np.zeros((4, 6), np.int64)])
    msg = str(err.value)
    assert "4x4, 6x4" in msg and "resize_mode='fixed'" in msg
    out = proc(resize_mode="fixed", size=4)([np.zeros((4, 4), np.int64), np.zeros((4, 6), np.int64)])
    assert out["label_map"].shape == (2, 4, 4)


@pytest.mark.parametrize(
    ("item", "match"),
    [
        ([], "empty list of label maps"),
        (np.zeros((0, 5), np.int64), "is empty"),
        (np.zeros((3, 3), bool), r"boolean mask.*astype\(np.int64\)"),
        (torch.zeros(3, 3, dtype=torch.bool), r"boolean tensor.*mask.long\(\)"),
        (Image.new("1", (3, 3)), "binary mask"),
        (Image.new("CMYK", (3, 3)), "convert it first"),
        (np.full((2, 2), 0.5), r"non-integer values \(e.g. 0.5\).*multiply by 255"),
        (np.zeros((2, 2), np.complex64), "must hold integer ids"),
        (torch.zeros(2, 3, 4, 5, dtype=torch.long), r"\[B, 1, H, W\]"),
        (np.zeros((2, 3, 4, 5), np.int64), r"\(H, W\) or \(B, H, W\)"),
        ({"label": 1}, "unsupported input of type dict"),
        ("/nonexistent/label.png", "does not exist"),
    ],
)
def test_bad_label_inputs(item, match):
    with pytest.raises(ValueError, match=match):
        proc()(item)


def test_count_mismatch_and_bad_side_inputs():
    ids = ade_ids()
    with pytest.raises(ValueError, match="1 label map\\(s\\) but 2 instance map\\(s\\)"):
        proc()(ids, instance_maps=[ids, ids])
    with pytest.raises(ValueError, match="1 label map\\(s\\) but 2 style image\\(s\\)"):
        proc()(ids, style_images=[np.zeros((4, 4, 3), np.uint8)] * 2)
    with pytest.raises(ValueError, match="single-channel"):
        proc()(ids, instance_maps=Image.fromarray(np.random.default_rng(0).integers(0, 255, (6, 8, 3), np.uint8)))
    with pytest.raises(ValueError, match=r"outside \[0, 1\].*\(x \+ 1\) / 2"):
        proc()(ids, style_images=np.full((4, 4, 3), -0.5, np.float32))
    with pytest.raises(ValueError, match=r"\[3, H, W\]"):
        proc()(ids, style_images=torch.zeros(4, 4))


def test_constructor_validation():
    with pytest.raises(ValueError, match="resize_mode must be one of"):
        LabelMapProcessor(resize_mode="stretch")
    with pytest.raises(ValueError, match="color_tolerance must be a number >= 0"):
        LabelMapProcessor(color_tolerance=-1)
    with pytest.raises(ValueError, match="size must be"):
        LabelMapProcessor(size="big")
    with pytest.raises(ValueError, match="unknown image_resample 'sharp'"):
        LabelMapProcessor(image_resample="sharp")
    with pytest.raises(ValueError, match="unknown label space"):
        LabelMapProcessor(label_space="nope")
    assert LabelMapProcessor(size=(128, 64), image_resample="bilinear").size == {"height": 128, "width": 64}


# ---------------------------------------------------------------- resizing
SIZES = [1, 2, 3, 5, 7, 16, 31, 64, 100, 127, 250, 256, 257, 286]


def test_nearest_index_matches_pil_nearest():
    mismatches = []
    for n_in in SIZES:
        for n_out in SIZES:
            row = Image.fromarray(np.arange(n_in, dtype=np.int32)[None, :])
            pil = np.asarray(row.resize((n_out, 1), Image.NEAREST))[0]
            if not np.array_equal(pil, _nearest_index(n_in, n_out)):
                mismatches.append((n_in, n_out))
    assert not mismatches


@pytest.mark.parametrize(("h", "w", "th", "tw"), [(429, 640, 256, 256), (77, 50, 286, 286), (250, 257, 64, 100)])
def test_fixed_resize_equals_pil_nearest(h, w, th, tw):
    ids = np.random.default_rng(h).integers(0, 151, (h, w)).astype(np.uint8)
    image = Image.fromarray(ids, mode="L")
    out = LabelMapProcessor(size={"height": th, "width": tw})(image)["label_map"][0].numpy()
    np.testing.assert_array_equal(out, np.asarray(image.resize((tw, th), Image.NEAREST)))


def test_keep_aspect_equals_pil_resize_then_centre_crop():
    ids = np.random.default_rng(0).integers(0, 151, (120, 300)).astype(np.uint8)
    image = Image.fromarray(ids, mode="L")
    out = LabelMapProcessor(size=64, resize_mode="keep_aspect")(image)["label_map"][0].numpy()
    resized = image.resize((160, 64), Image.NEAREST)  # shorter side 120 -> 64, width 300 -> 160
    np.testing.assert_array_equal(out, np.asarray(resized.crop((48, 0, 112, 64))))
    tall = LabelMapProcessor(size={"height": 32, "width": 64}, resize_mode="keep_aspect")(ids.T.copy())
    assert tall["label_map"].shape == (1, 32, 64)


def test_resize_keeps_ids_exact():
    ids = ade_ids(37, 53)
    out = LabelMapProcessor(size=(101, 89))(ids)["label_map"][0].numpy()
    assert set(np.unique(out)) <= set(np.unique(ids))  # no interpolated values


# ---------------------------------------------------------------- instance maps and style images
def test_16_and_32_bit_instance_maps(tmp_path):
    labels = np.full((5, 6), 26, np.int64)
    inst16 = np.full((5, 6), 26000, np.uint16)
    inst16[1:3, 1:4] = 33001
    inst16[4, :] = 65535
    Image.fromarray(inst16).save(tmp_path / "inst.png")
    assert Image.open(tmp_path / "inst.png").mode == "I;16"
    p = proc(label_space="cityscapes")
    out = p(labels, instance_maps=tmp_path / "inst.png")["instance_map"]
    assert out.dtype == torch.int64
    np.testing.assert_array_equal(out[0].numpy(), inst16.astype(np.int64))
    big = inst16.astype(np.int64) * 1000 + 2**24 + 1  # beyond float32's exact integers and beyond int32
    big[0, 0] = 2**40 + 3
    out = LabelMapProcessor(label_space="cityscapes", size=(10, 12))(labels, instance_maps=big)["instance_map"][0]
    assert set(out.unique().tolist()) <= set(np.unique(big).tolist())
    assert out[0, 0].item() == 2**40 + 3
    i32 = Image.fromarray(inst16.astype(np.int32) + 2**20)
    assert i32.mode == "I"
    np.testing.assert_array_equal(
        p(labels, instance_maps=i32)["instance_map"][0].numpy(), inst16.astype(np.int64) + 2**20
    )
    np.testing.assert_array_equal(
        p(labels, instance_maps=torch.from_numpy(inst16.astype(np.int64)))["instance_map"][0].numpy(), inst16
    )


def test_instance_map_is_resized_like_the_label_map():
    labels = ade_ids(40, 60)
    p = LabelMapProcessor(size=(17, 23))
    out = p(labels, instance_maps=labels * 1000 + 7)
    np.testing.assert_array_equal(out["instance_map"].numpy(), out["label_map"].numpy() * 1000 + 7)


def test_style_images_resized_and_scaled(tmp_path):
    labels = ade_ids(16, 16)
    style = np.random.default_rng(0).integers(0, 256, (40, 30, 3)).astype(np.uint8)
    Image.fromarray(style).save(tmp_path / "s.png")
    p = LabelMapProcessor(size=16)
    expected = np.asarray(Image.fromarray(style).resize((16, 16), Image.BICUBIC), np.float32) / 127.5 - 1
    for item in (
        tmp_path / "s.png",
        Image.fromarray(style),
        style,
        style / 255.0,
        torch.from_numpy(style).permute(2, 0, 1),
    ):
        out = p(labels, style_images=item)["style_image"]
        assert out.dtype == torch.float32 and out.shape == (1, 3, 16, 16)
        np.testing.assert_allclose(out[0].permute(1, 2, 0).numpy(), expected, atol=1e-6)
        assert out.min() >= -1 and out.max() <= 1
    # with resize_mode="none" the style image is brought to the label map's own size
    out = proc()(labels, style_images=style)["style_image"]
    assert out.shape == (1, 3, 16, 16)
    grey = proc()(labels, style_images=Image.fromarray(style).convert("L"))["style_image"]
    assert torch.equal(grey[0, 0], grey[0, 1])


def test_keep_aspect_style_image_matches_label_geometry():
    labels = ade_ids(30, 60)
    style = np.random.default_rng(0).integers(0, 256, (30, 60, 3)).astype(np.uint8)
    out = LabelMapProcessor(size=20, resize_mode="keep_aspect")(labels, style_images=style)["style_image"][0]
    expected = Image.fromarray(style).resize((40, 20), Image.BICUBIC).crop((10, 0, 30, 20))
    np.testing.assert_allclose(out.permute(1, 2, 0).numpy(), np.asarray(expected, np.float32) / 127.5 - 1, atol=1e-6)


# ---------------------------------------------------------------- save / load
def test_save_and_load_round_trip(tmp_path):
    p = LabelMapProcessor(label_space="coco-stuff", size=(64, 96), resize_mode="keep_aspect", color_tolerance=12.5)
    p.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "preprocessor_config.json").read_text())
    assert config["image_processor_type"] == "LabelMapProcessor"
    assert config["label_space"]["name"] == "coco-stuff" and len(config["label_space"]["names"]) == 182
    assert config["size"] == {"height": 64, "width": 96} and config["color_tolerance"] == 12.5
    assert not any(k.startswith("_") for k in config)
    loaded = LabelMapProcessor.from_pretrained(tmp_path)
    assert loaded.label_space == p.label_space and loaded.to_dict() == p.to_dict()
    ids = np.random.default_rng(0).integers(0, 182, (50, 70))
    assert torch.equal(loaded(ids)["label_map"], p(ids)["label_map"])
    assert LabelMapProcessor.from_pretrained(tmp_path, size={"height": 8, "width": 8}).size == {"height": 8, "width": 8}


def test_custom_label_space_round_trip(tmp_path):
    space = LabelSpace.custom(["sky", "sea", "sand"], ignore_index=255, name="beach", description="toy")
    p = LabelMapProcessor(label_space=space, size=8)
    p.save_pretrained(tmp_path)
    loaded = LabelMapProcessor.from_pretrained(tmp_path)
    assert loaded.label_space == space and loaded.label_space.description == "toy"
    rgb = space.colorize(np.array([[0, 1], [2, 255]]))
    np.testing.assert_array_equal(loaded(rgb, resize_mode="none")["label_map"][0].numpy(), [[0, 1], [2, 255]])
    loaded.label_space = "ade20k"  # assignable by name
    assert loaded.label_space.name == "ade20k"


# ---------------------------------------------------------------- postprocess / colorize
def test_postprocess_output_types():
    x = torch.tensor([-1.0, -0.5, 0.0, 0.001, 0.5, 1.0, 1.5]).view(1, 1, 1, 7).repeat(2, 3, 2, 1)
    expected = ((x + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
    p = LabelMapProcessor()
    arr = p.postprocess(x, output_type="np")
    assert arr.shape == (2, 2, 7, 3) and arr.dtype == np.uint8
    np.testing.assert_array_equal(arr, expected.permute(0, 2, 3, 1).numpy())
    assert arr[0, 0, :, 0].tolist() == [0, 64, 128, 128, 191, 255, 255]
    images = p.postprocess(x)
    assert len(images) == 2 and images[0].mode == "RGB" and images[0].size == (7, 2)
    np.testing.assert_array_equal(np.asarray(images[1]), arr[1])
    pt = p.postprocess(x, output_type="pt")
    assert pt.dtype == torch.float32 and pt.shape == x.shape and pt.min() == 0 and pt.max() == 1
    assert torch.allclose(pt[0, 0, 0, :3], torch.tensor([0.0, 0.25, 0.5]))
    np.testing.assert_array_equal(
        p.postprocess(x.to(torch.bfloat16)[0], output_type="np")[0, 0, :, 0][[0, 5]], [0, 255]
    )
    with pytest.raises(ValueError, match=r"\[B, 3, H, W\]"):
        p.postprocess(torch.zeros(1, 4, 2, 2))
    with pytest.raises(ValueError, match="output_type must be one of"):
        p.postprocess(x, output_type="jpg")


def test_colorize():
    ids = np.array([[0, 1], [7, 150]])
    image = LabelMapProcessor().colorize(torch.from_numpy(ids)[None])
    assert image.mode == "RGB" and image.size == (2, 2)
    np.testing.assert_array_equal(np.asarray(image), ADE.colorize(ids))
    with pytest.raises(ValueError, match="one label map"):
        LabelMapProcessor().colorize(np.stack([ids, ids]))


# ---------------------------------------------------------------- real samples
def test_ade20k_samples(samples_dir):
    paths = sorted((samples_dir / "CoCosNet_ade20k").glob("*/*.png"))
    out = LabelMapProcessor(label_space="ade20k")(paths)["label_map"]
    assert out.shape == (12, 256, 256) and out.dtype == torch.int64
    for path, resized in zip(paths, out):
        image = Image.open(path)
        np.testing.assert_array_equal(resized.numpy(), np.asarray(image.resize((256, 256), Image.NEAREST)))


def test_coco_stuff_samples_keep_unlabeled(samples_dir):
    root = samples_dir / "SPADE_coco_stuff"
    names = sorted(p.name for p in (root / "train_label").glob("*.png"))[:4]
    out = LabelMapProcessor(label_space="coco-stuff")(
        [root / "train_label" / n for n in names],
        instance_maps=[root / "train_inst" / n for n in names],
        style_images=[root / "train_img" / n.replace(".png", ".jpg") for n in names],
    )
    assert out["label_map"].shape == out["instance_map"].shape == (4, 256, 256)
    assert out["style_image"].shape == (4, 3, 256, 256)
    assert (out["label_map"] == 255).any()
    assert set(out["label_map"].unique().tolist()) <= set(range(182)) | {255}


def test_cityscapes_label_and_16bit_instance_samples(samples_dir):
    root = samples_dir / "pix2pixHD_cityscapes"
    label = min((root / "train_label").glob("*.png"))
    inst = root / "train_inst" / label.name.replace("labelIds", "instanceIds")
    assert Image.open(inst).mode == "I;16"
    out = LabelMapProcessor(label_space="cityscapes", size={"height": 256, "width": 512})(label, instance_maps=inst)
    labels, instances = out["label_map"][0], out["instance_map"][0]
    assert labels.shape == instances.shape == (256, 512)
    assert instances.max() > 26000  # class * 1000 + id survived
    things = instances >= 1000
    assert torch.equal(instances[things] // 1000, labels[things])  # instance class agrees with the label pixel
    np.testing.assert_array_equal(labels.numpy(), np.asarray(Image.open(label).resize((512, 256), Image.NEAREST)))


def test_crn_colour_labels_and_gta_palette_png(samples_dir):
    root = samples_dir / "CRN_cityscapes_labels" / "data"
    colour = min((root / "cityscapes" / "Label256Full").glob("*.png"))
    ids = proc(label_space="cityscapes")(colour)["label_map"][0]
    assert ids.shape == (256, 512) and {7, 11, 21, 23} <= set(ids.unique().tolist())
    gta = Image.open(root / "GTA" / "Label256Full" / "00100370.png")
    assert gta.mode == "P"
    out = proc(label_space="cityscapes")(gta)["label_map"][0].numpy()
    np.testing.assert_array_equal(out, np.asarray(gta))  # the P indices are labelIds


def test_celebamask_samples(samples_dir):
    path = min(
        (samples_dir / "CoCosNet_celebahq" / "CelebAMask-HQ-mask-anno" / "all_parts_except_glasses").glob("*.png")
    )
    style = samples_dir / "CoCosNet_celebahq" / "CelebA-HQ-img" / f"{int(path.stem)}.jpg"
    out = LabelMapProcessor(label_space="celebamask-hq-cocosnet")(path, style_images=style)
    assert out["label_map"].shape == (1, 256, 256) and out["style_image"].shape == (1, 3, 256, 256)
    assert out["label_map"][0, 30, 128] == get_label_space("celebamask-hq-cocosnet").label2id["hair"]
    colormap = samples_dir / "SEAN_celebahq" / "colormaps" / "29258.png"
    sean = LabelMapProcessor(label_space="celebamask-hq", resize_mode="none")(colormap)["label_map"][0]
    assert sean.shape == (512, 512) and (sean == 7).sum() == 1159  # SEAN's r_brow colour


def test_repr_is_compact_and_config_stays_complete(tmp_path):
    p = LabelMapProcessor(label_space="cityscapes", size=(256, 512), resize_mode="keep_aspect", color_tolerance=2.5,
                          image_resample="bilinear")
    text = repr(p)
    assert str(p) == text and len(text.splitlines()) <= 8  # was one line per palette value (~230 lines)
    for part in ("cityscapes (35 classes)", "height=256, width=512", "resize_mode: keep_aspect",
                 "color_tolerance: 2.5", "image_resample: bilinear"):
        assert part in text
    assert "palette" not in text and "road" not in text
    # What save_pretrained writes still holds the whole label space and round-trips.
    assert json.loads(p.to_json_string())["label_space"] == get_label_space("cityscapes").to_dict()
    p.save_pretrained(tmp_path)
    loaded = LabelMapProcessor.from_pretrained(tmp_path)
    assert loaded.to_dict() == p.to_dict() and repr(loaded) == text
