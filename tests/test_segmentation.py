"""`labelsynth.segmentation`: segmenter adapter (SegFormer, Mask2Former, callables), class mapping into label spaces,
the segment -> edit -> generate workflow on a real Cityscapes photo, and style inputs taken from the photo."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from labelsynth import get_label_space, pipeline, segment
from labelsynth.examples import BUILTIN_MODEL
from labelsynth.label_space_mappings import get_label_space_mapping
from labelsynth.metrics import SegmenterAdapter as MetricsAdapter
from labelsynth.metrics import make_label_mapping
from labelsynth.segmentation import SegmenterAdapter, photo_style_inputs, segmenter_mapping

ADE = get_label_space("ade20k")
CITY = get_label_space("cityscapes")
CITY_TRAIN = get_label_space("cityscapes-trainid")
PHOTO = "pix2pixHD_cityscapes/train_img/aachen_000000_000019_leftImg8bit.png"
LABEL = "pix2pixHD_cityscapes/train_label/aachen_000000_000019_gtFine_labelIds.png"


def _tiny_segformer(id2label: list[str]):
    from transformers import SegformerConfig, SegformerForSemanticSegmentation, SegformerImageProcessor

    config = SegformerConfig(
        num_channels=3, num_encoder_blocks=2, depths=[1, 1], sr_ratios=[2, 1], hidden_sizes=[8, 16],
        patch_sizes=[7, 3], strides=[4, 2], num_attention_heads=[1, 2], mlp_ratios=[2, 2], decoder_hidden_size=16,
        num_labels=len(id2label), id2label=dict(enumerate(id2label)), label2id={n: i for i, n in enumerate(id2label)},
    )
    torch.manual_seed(0)
    model = SegformerForSemanticSegmentation(config).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        processor = SegformerImageProcessor(size={"height": 32, "width": 32})
    return model, processor


def _tiny_mask2former(id2label: list[str], favoured: int):
    """A random Mask2Former with one query that votes for class `favoured` (a large class bias): the semantic map is
    that class, and the panoptic post-processing gives one segment over the whole image, by construction."""
    from transformers import (
        Mask2FormerConfig,
        Mask2FormerForUniversalSegmentation,
        Mask2FormerImageProcessor,
        SwinConfig,
    )

    backbone = SwinConfig(image_size=64, patch_size=4, embed_dim=8, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1],
                          window_size=4, out_features=["stage1", "stage2", "stage3", "stage4"])
    config = Mask2FormerConfig(
        backbone_config=backbone, num_labels=len(id2label), hidden_dim=32, num_queries=1, encoder_layers=1,
        decoder_layers=2, feature_size=32, mask_feature_size=32, encoder_feedforward_dim=32, dim_feedforward=32,
        num_attention_heads=2, common_stride=4, id2label=dict(enumerate(id2label)),
        label2id={n: i for i, n in enumerate(id2label)},
    )
    torch.manual_seed(0)
    model = Mask2FormerForUniversalSegmentation(config).eval()
    with torch.no_grad():
        model.class_predictor.bias.zero_()
        model.class_predictor.bias[favoured] = 50.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        processor = Mask2FormerImageProcessor(size={"height": 64, "width": 64}, do_reduce_labels=False)
    return model, processor


def _photo(seed: int, height: int, width: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


# ---------------------------------------------------------------------------------------------------- adapter
def test_segformer_goes_through_the_adapter_and_maps_ade20k_ids_plus_one():
    reduced = get_label_space("ade20k-reduced").names
    model, processor = _tiny_segformer(list(reduced[:149]) + ["flag"])  # the 150 ADE20K classes
    photos = [_photo(0, 40, 56), _photo(1, 24, 36)]
    results = segment(photos, model, "ade20k", processor=processor, batch_size=2)
    assert results[0].mapping.source_space == "ade20k-reduced"
    with torch.no_grad():
        logits = model(**processor(images=photos, return_tensors="pt")).logits
    for photo, result, logit in zip(photos, results, logits):
        size = photo.shape[:2]
        expected = F.interpolate(logit[None], size=size, mode="bilinear", align_corners=False).argmax(1)[0]
        assert result.label_map.shape == size and result.instance_map is None
        assert np.array_equal(result.segmenter_ids, expected.numpy())
        assert np.array_equal(result.label_map, expected.numpy() + 1)  # ADE20K raw id = transformers id + 1
    # batch size does not change the result
    one_by_one = segment(photos, model, "ade20k", processor=processor, batch_size=1)
    assert all(np.array_equal(a.label_map, b.label_map) for a, b in zip(results, one_by_one))


def test_mask2former_semantic_and_panoptic_post_processing():
    names = ["sky", "road", "car", "blob"]  # a Cityscapes-like segmenter with one class Cityscapes lacks
    model, processor = _tiny_mask2former(names, favoured=2)
    photos = [_photo(2, 40, 56), _photo(3, 30, 44)]
    results = segment(photos, model, "cityscapes", processor=processor)
    with torch.no_grad():
        outputs = model(**processor(images=photos, return_tensors="pt"))
    sizes = [p.shape[:2] for p in photos]
    semantic = processor.post_process_semantic_segmentation(outputs, target_sizes=sizes)
    panoptic = processor.post_process_panoptic_segmentation(outputs, target_sizes=sizes)
    for result, sem, pan, size in zip(results, semantic, panoptic, sizes):
        assert np.array_equal(result.segmenter_ids, sem.numpy())
        assert (result.label_map == CITY.label2id["car"]).all()  # the query votes car (by construction)
        segments = pan["segmentation"].numpy()
        assert result.instance_map.shape == size and (result.instance_map == 1).all()
        assert np.array_equal(result.instance_map, np.where(segments < 0, 0, segments))
    assert results[0].mapping.unmapped == ("blob",)  # -> Cityscapes "unlabeled"
    assert results[0].mapping.lut.tolist() == [23, 7, 26, 0]


def test_callable_segmenter_needs_class_names_and_maps_them():
    def segmenter(images):
        out = torch.zeros(images.shape[0], images.shape[2], images.shape[3], dtype=torch.long)
        out[:, :, images.shape[3] // 2:] = 1
        return out

    with pytest.raises(ValueError, match="id2label"):
        segment(_photo(0, 8, 8), segmenter, "cityscapes")
    result = segment(_photo(0, 8, 8), segmenter, "cityscapes", id2label=["road", "sky"])
    assert result.label_map[:, :4].tolist() == [[7] * 4] * 8 and (result.label_map[:, 4:] == 23).all()
    result = segment(_photo(0, 8, 8), segmenter, "cityscapes", source_space="cityscapes-trainid")
    assert set(np.unique(result.label_map)) == {7, 8}  # trainIds 0 road, 1 sidewalk -> labelIds 7, 8


def test_metrics_use_the_same_adapter_and_tables():
    assert MetricsAdapter is SegmenterAdapter
    # mIoU's ground-truth -> segmenter-id mappings are the label-space tables read the other way.
    ade_to_segmenter = make_label_mapping("ade20k")(torch.arange(151)).numpy()
    segmenter_to_ade = segmenter_mapping(get_label_space("ade20k-reduced").names, "ade20k").lut
    assert ade_to_segmenter[0] == 255 and np.array_equal(segmenter_to_ade[ade_to_segmenter[1:]], np.arange(1, 151))
    city = make_label_mapping("cityscapes")(torch.arange(35)).numpy()
    back = segmenter_mapping(CITY_TRAIN.names, "cityscapes").lut
    kept = city != 255
    assert kept.sum() == 19 and np.array_equal(back[city[kept]], np.arange(35)[kept])
    coco = make_label_mapping("coco-stuff -> coco-stuff-171")(torch.tensor([0, 11, 91, 181, 255])).tolist()
    assert coco == [0, 255, 80, 170, 255]  # person; removed "street sign"; banner; wood; unlabeled


# ---------------------------------------------------------------------------------------------------- tables
@pytest.mark.parametrize(("source", "target", "rows"), [
    # (segmenter id, segmenter class, target id, target class), checked by hand against the label-space docs
    ("ade20k-reduced", "ade20k", [(0, "wall", 1, "wall"), (6, "road", 7, "road"), (149, "flag", 150, "flag")]),
    ("cityscapes-trainid", "cityscapes", [(0, "road", 7, "road"), (13, "car", 26, "car"),
                                          (18, "bicycle", 33, "bicycle"), (10, "sky", 23, "sky")]),
    ("cityscapes-trainid", "ade20k", [(8, "vegetation", 5, "tree"), (12, "rider", 13, "person"),
                                      (16, "train", 0, "other")]),
    ("coco-stuff-171", "coco-stuff", [(0, "person", 0, "person"), (11, "stop sign", 12, "stop sign"),
                                      (80, "banner", 91, "banner"), (170, "wood", 181, "wood")]),
    ("coco-stuff-171", "ade20k", [(2, "car", 21, "car"), (15, "cat", 127, "animal")]),
    ("coco-panoptic", "coco-panoptic", [(0, "person", 0, "person"), (132, "rug-merged", 132, "rug-merged")]),
])
def test_segmenter_mapping_rows(source, target, rows):
    space = get_label_space(source)
    mapping = segmenter_mapping(space.names, target)
    assert mapping.source_space == source
    target_space = get_label_space(target)
    for seg_id, seg_name, target_id, target_name in rows:
        assert space.names[seg_id] == seg_name
        assert mapping.lut[seg_id] == target_id and target_space.names[target_id] == target_name


def test_recognition_by_names_synonyms_and_generic_labels():
    # CSAIL-style names with synonyms and stray spaces are still ADE20K-150
    names = [f"{n} ;synonym" if i % 3 == 0 else n.upper() for i, n in enumerate(get_label_space("ade20k-reduced").names)]
    assert segmenter_mapping(names, "ade20k").source_space == "ade20k-reduced"
    assert segmenter_mapping([f"LABEL_{i}" for i in range(19)], "cityscapes").lut[13] == 26
    assert segmenter_mapping({0: "Sky", 1: "windowpane;window"}, "ade20k").lut.tolist() == [3, 9]


def test_unmapped_classes_go_to_dont_care_or_raise_listing_them():
    coco = segmenter_mapping(get_label_space("coco-stuff-171").names, "ade20k")
    assert "train" in coco.unmapped and coco.lut[6] == 0  # COCO train: no ADE20K-150 class -> "other"
    to_panoptic = segmenter_mapping(["person", "snowflake"], "coco-panoptic")
    assert to_panoptic.lut.tolist() == [0, 255] and to_panoptic.unmapped == ("snowflake",)
    with pytest.raises(ValueError, match=r"\['snowflake'\] have no counterpart .* no don't-care"):
        segmenter_mapping(["hair", "snowflake"], "celebamask-hq")
    with pytest.raises(ValueError, match="none of the segmenter's 2 classes"):
        segmenter_mapping(["snowflake", "comet"], "cityscapes")
    assert get_label_space_mapping("ade20k", "ade20k-reduced").lut()[0] == 255


# ---------------------------------------------------------------------------------------------------- workflow
def test_segment_edit_generate_keeps_unedited_regions(samples_dir):
    """Segment a real Cityscapes photo (a callable that returns its true labelIds map), turn all vegetation into
    terrain, and resynthesise with the photo as SPADE-VAE style source: away from the edit, the image stays the
    unedited reconstruction."""
    truth = np.asarray(Image.open(samples_dir / LABEL)).astype(np.int64)
    photo = samples_dir / PHOTO

    def oracle(images):
        assert images.shape[-2:] == truth.shape  # the adapter hands the photo at its own size
        return torch.from_numpy(truth)[None].expand(images.shape[0], -1, -1)

    result = segment(str(photo), oracle, "cityscapes", source_space="cityscapes")
    assert np.array_equal(result.label_map, truth)
    pipe = pipeline("label-to-image", model=str(BUILTIN_MODEL), device="cpu")
    inputs = photo_style_inputs(pipe, str(photo), result.label_map)
    assert list(inputs) == ["style_image"]  # SPADE-VAE: the encoder reads the photo
    edited = result.label_map.copy()
    edited[edited == CITY.label2id["vegetation"]] = CITY.label2id["terrain"]
    recon = pipe(result.label_map, seed=0, output_type="pt", **inputs)
    changed_image = pipe(edited, seed=0, output_type="pt", **inputs)

    small = pipe.image_processor(result.label_map, return_tensors="pt")["label_map"][0]
    small_edited = pipe.image_processor(edited, return_tensors="pt")["label_map"][0]
    changed = small != small_edited
    assert 0.05 < changed.float().mean() < 0.5
    near = F.max_pool2d(changed[None, None].float(), 17, 1, 8)[0, 0] > 0  # within 8 px of the edit
    error = ((changed_image - recon) ** 2).mean(0)
    psnr_kept = float(10 * torch.log10(1 / error[~near].mean()))
    psnr_edited = float(10 * torch.log10(1 / error[changed].mean()))
    # measured: 41.7 dB away from the edit, 19.3 dB inside it (spade-cityscapes-tiny, seed 0)
    assert psnr_kept > 32, psnr_kept
    assert psnr_edited < 26, psnr_edited


def test_sean_new_regions_take_the_mean_or_a_chosen_style():
    from labelsynth import SEANConfig, SEANModel

    config = SEANConfig.for_dataset("celebamask-hq", image_size=(64, 64), ngf=4, spade_hidden_nc=8, style_dim=16,
                                    style_encoder_ngf=4, ndf=4)
    torch.manual_seed(0)
    model = SEANModel(config).eval()
    space = get_label_space(config.label_space)
    photo = _photo(4, 64, 64)
    photo_map = np.zeros((64, 64), dtype=np.int64)
    photo_map[20:50, 16:48] = space.label2id["skin"]
    edited = photo_map.copy()
    edited[:12] = space.label2id["hair"]  # hair is not in the photo's map
    base = photo_style_inputs(model, photo, photo_map)
    assert set(base) == {"style_image", "style_label_map"}
    styles = photo_style_inputs(model, photo, photo_map, edited)["styles"].codes
    own = model.encode_styles(torch.from_numpy(photo).permute(2, 0, 1)[None].float() / 127.5 - 1,
                              torch.from_numpy(photo_map)[None]).codes
    background, skin, hair = 0, space.label2id["skin"], space.label2id["hair"]
    assert torch.allclose(styles[:, :, skin], own[:, :, skin]) and torch.allclose(styles[:, :, background],
                                                                                   own[:, :, background])
    assert own[:, :, hair].abs().max() == 0  # the encoder gives an absent class no style ...
    assert torch.allclose(styles[:, :, hair], (own[:, :, background] + own[:, :, skin]) / 2)  # ... the mean here
    chosen = photo_style_inputs(model, photo, photo_map, edited, new_region_style="skin")["styles"].codes
    assert torch.allclose(chosen[:, :, hair], own[:, :, skin])
    with pytest.raises(ValueError, match="not a class of the photo"):
        photo_style_inputs(model, photo, photo_map, edited, new_region_style="hat")


def test_exemplar_models_and_models_without_a_style_source():
    from labelsynth import CoCosNetConfig, CoCosNetModel, SPADEConfig, SPADEModel

    cocosnet = CoCosNetModel(CoCosNetConfig.for_dataset("ade20k", image_size=(64, 64), ngf=4, ndf=4))
    photo, photo_map = _photo(5, 64, 64), np.ones((64, 64), dtype=np.int64)
    assert photo_style_inputs(cocosnet, photo, photo_map) == {"exemplar": photo, "exemplar_label_map": photo_map}
    plain = SPADEModel(SPADEConfig.for_dataset("ade20k", image_size=(64, 64), ngf=4, spade_hidden_nc=8,
                                               num_upsampling_layers="normal"))
    with pytest.raises(ValueError, match="takes no style source"):
        photo_style_inputs(plain, photo, photo_map)


def test_evaluate_finds_the_table_to_a_recognised_segmenter_space():
    """A COCO-Stuff (182) model scored by a 171-class segmenter: "auto" maps the ground truth with the
    coco-stuff -> coco-stuff-171 table (banner 91 -> 80), so a segmenter that predicts the truth scores mIoU 1."""
    from labelsynth import SPADEConfig, SPADEModel
    from labelsynth.metrics import evaluate_model

    model = SPADEModel(SPADEConfig.for_dataset("coco-stuff", image_size=(32, 32), ngf=4, spade_hidden_nc=8,
                                               num_upsampling_layers="normal"))
    label = np.zeros((32, 32), dtype=np.uint8)
    label[:, 16:] = 91  # banner

    def segmenter(images):
        out = torch.zeros(images.shape[0], 32, 32, dtype=torch.long)
        out[:, :, 16:] = 80  # banner in the 171-class space
        return out

    adapter = SegmenterAdapter(segmenter, source_space="coco-stuff-171")
    results = evaluate_model(model, [{"image": _photo(6, 32, 32), "label": label}], metrics=["miou"],
                             segmenter=adapter)
    assert results["label_mapping"] == "coco-stuff -> coco-stuff-171"
    assert results["miou"] == 1.0 and results["segmenter_num_classes"] == 171
