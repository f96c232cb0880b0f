"""Class-name mappings between label spaces: hand-checked rows, completeness, unmapped classes, errors."""

import numpy as np
import pytest
import torch

from labelsynth.label_space_mappings import (
    COCO_PANOPTIC_133,
    LabelSpaceMapping,
    get_label_space_mapping,
    list_label_space_mappings,
    map_label_space,
)
from labelsynth.label_spaces import get_label_space


def _id(space: str, name: str) -> int:
    return get_label_space(space).label2id[name]


@pytest.mark.parametrize(
    ("source", "target", "name", "expected"),
    [
        ("cityscapes", "ade20k", "road", "road"),
        ("cityscapes", "ade20k", "vegetation", "tree"),
        ("cityscapes", "ade20k", "terrain", "grass"),
        ("cityscapes", "ade20k", "rider", "person"),
        ("cityscapes", "ade20k", "traffic sign", "signboard"),
        ("cityscapes", "ade20k", "motorcycle", "minibike"),
        ("cityscapes", "ade20k", "train", "other"),  # ADE20K-150 has no train
        ("cityscapes", "ade20k", "unlabeled", "other"),
        ("cityscapes-trainid", "ade20k", "sky", "sky"),
        ("coco-stuff", "ade20k", "couch", "sofa"),
        ("coco-stuff", "ade20k", "giraffe", "animal"),
        ("coco-stuff", "ade20k", "wall-brick", "wall"),
        ("coco-stuff", "ade20k", "sky-other", "sky"),
        ("coco-stuff", "ade20k", "snow", "other"),
        ("coco-stuff", "coco-panoptic", "person", "person"),
        ("coco-stuff", "coco-panoptic", "bush", "tree-merged"),
        ("coco-stuff", "coco-panoptic", "skyscraper", "building-other-merged"),
        ("coco-stuff", "coco-panoptic", "carpet", "rug-merged"),
        ("coco-stuff", "coco-panoptic", "road", "road"),
    ],
)
def test_hand_checked_rows(source: str, target: str, name: str, expected: str) -> None:
    out = map_label_space(np.array([[_id(source, name)]]), source, target)
    assert out.dtype == np.int64
    assert get_label_space(target).names[out[0, 0]] == expected


def test_unmapped_and_ignore_go_to_the_stated_choice() -> None:
    mapping = get_label_space_mapping("coco-stuff", "coco-panoptic")
    assert mapping.unmapped_to is None and mapping.unmapped_id == 255  # panoptic has no background class
    assert "cloth" in mapping.unmapped and "person" not in mapping.unmapped
    ids = np.array([_id("coco-stuff", "cloth"), 255, _id("coco-stuff", "wood")])
    assert map_label_space(ids, "coco-stuff", "coco-panoptic").tolist() == [255, 255, 255]
    # into ADE20K the stated choice is class 0, "other"; the trainId ignore value 255 goes there too
    assert map_label_space(np.array([255, 0]), "cityscapes-trainid", "ade20k").tolist() == [0, _id("ade20k", "road")]


def test_tables_are_complete_and_cover_panoptic() -> None:
    for source, target in list_label_space_mappings():
        mapping = get_label_space_mapping(source, target)
        assert set(mapping.table) == set(mapping.source.names)
        rows = mapping.rows()
        assert len(rows) == mapping.source.num_classes
    # every COCO-panoptic class is reachable from COCO-Stuff (the 53 stuff classes are merges of 91 stuff classes)
    reached = {t for t in get_label_space_mapping("coco-stuff", "coco-panoptic").table.values() if t}
    assert reached == set(COCO_PANOPTIC_133.names)


def test_coco_panoptic_palette_has_no_duplicates() -> None:
    assert COCO_PANOPTIC_133.num_classes == 133
    assert COCO_PANOPTIC_133.duplicate_colors == {}
    assert tuple(COCO_PANOPTIC_133.palette[0]) == (220, 20, 60)  # person
    assert tuple(COCO_PANOPTIC_133.palette[-1]) == (250, 141, 255)  # rug-merged


def test_torch_in_torch_out_and_identity() -> None:
    ids = torch.tensor([[7, 26], [24, 0]])
    out = map_label_space(ids, "cityscapes", "ade20k")
    assert isinstance(out, torch.Tensor) and out.tolist() == [[7, 21], [13, 0]]
    same = np.array([[0, 5, 150]])
    assert map_label_space(same, "ade20k", "ade").tolist() == same.tolist()


def test_spaces_without_mapping_are_an_error() -> None:
    with pytest.raises(ValueError, match="no class mapping from label space 'celebamask-hq' to 'ade20k'"):
        map_label_space(np.zeros((2, 2), np.int64), "celebamask-hq", "ade20k")
    with pytest.raises(ValueError, match="facades.*register_label_space_mapping"):
        get_label_space_mapping("facades", "coco-panoptic")
    with pytest.raises(ValueError, match="it maps to: ade20k"):
        get_label_space_mapping("cityscapes", "coco-panoptic")


def test_out_of_range_ids_and_incomplete_tables_are_refused() -> None:
    with pytest.raises(ValueError):
        map_label_space(np.array([40]), "cityscapes", "ade20k")
    with pytest.raises(ValueError, match="missing"):
        LabelSpaceMapping("cityscapes", "ade20k", {"road": "road"}, unmapped_to="other")
    table = {n: None for n in get_label_space("facades").names}
    with pytest.raises(ValueError, match="no ignore value"):
        LabelSpaceMapping("facades", "ade20k", table, unmapped_to=None)
    with pytest.raises(ValueError, match="does not have"):
        LabelSpaceMapping("facades", "ade20k", {**table, "window": "window"}, unmapped_to="other")
