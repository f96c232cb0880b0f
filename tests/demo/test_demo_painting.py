"""Painting logic without Gradio: brushes, canvas decoding with snapping, instance maps, limits, legends, examples."""

import numpy as np
import pytest

from labelsynth import get_label_space
from labelsynth.demo.examples import default_examples, draw_example
from labelsynth.demo.painting import (
    brush_classes,
    canvas_to_label_map,
    check_image_size,
    legend_html,
    painted_instance_map,
)

CITY = get_label_space("cityscapes")
ADE = get_label_space("ade20k")


def test_brushes_one_per_colour_lowest_id() -> None:
    brushes = brush_classes(CITY)
    ids = [b.id for b in brushes]
    assert len({b.color for b in brushes}) == len(brushes)
    assert 0 in ids and not {1, 2, 3, 4} & set(ids)  # void classes share black with "unlabeled"
    assert 17 in ids and 18 not in ids  # pole / polegroup share a colour
    car = next(b for b in brushes if b.id == 26)
    assert car.title == "26 car" and car.color == "#00008e"


def test_canvas_exact_colours_decode_to_ids() -> None:
    ids = np.array([[7, 7, 26], [23, 23, 21]])
    assert np.array_equal(canvas_to_label_map(CITY.colorize(ids), CITY), ids)
    rgba = np.concatenate([CITY.colorize(ids), np.full((2, 3, 1), 255, np.uint8)], -1)
    assert np.array_equal(canvas_to_label_map(rgba, CITY), ids)


def test_antialiased_blends_snap_to_the_painted_classes_not_a_third_one() -> None:
    # A stroke of `car` over `sky` with blended edge pixels. Each blend is nearer to some other palette colour than
    # to either painted colour, so plain nearest-palette snapping would invent a third class.
    sky, car = CITY.palette[23].astype(float), CITY.palette[26].astype(float)
    canvas = np.tile(CITY.palette[23], (4, 8, 1)).astype(np.uint8)
    canvas[:, 4:] = CITY.palette[26]
    for col, alpha in ((2, 0.45), (3, 0.55)):
        canvas[:, col] = np.round(alpha * car + (1 - alpha) * sky).astype(np.uint8)
    blends = canvas[0, 2:4]
    nearest_any = CITY.encode_colors(blends, tolerance=255)
    assert not set(nearest_any.tolist()) <= {23, 26}  # the trap is real
    ids = canvas_to_label_map(canvas, CITY)
    assert set(np.unique(ids).tolist()) == {23, 26}
    assert (ids[:, :2] == 23).all() and (ids[:, 4:] == 26).all()
    assert (ids[:, 2] == 23).all() and (ids[:, 3] == 26).all()  # each blend goes to the colour it is closer to


def test_reference_keeps_ids_that_share_a_colour() -> None:
    reference = np.array([[17, 18, 26, 34]])  # pole, polegroup, car, license plate (two shared colours)
    canvas = CITY.colorize(reference)
    assert canvas_to_label_map(canvas, CITY).tolist() == [[17, 17, 26, 26]]
    assert canvas_to_label_map(canvas, CITY, reference=reference).tolist() == reference.tolist()
    canvas[0, 1] = CITY.palette[21]  # painted over: the new colour wins
    assert canvas_to_label_map(canvas, CITY, reference=reference).tolist() == [[17, 21, 26, 34]]
    assert canvas_to_label_map(canvas, CITY, reference=np.zeros((2, 2), int)).tolist() == [[17, 21, 26, 26]]


def test_canvas_errors() -> None:
    with pytest.raises(ValueError, match="uint8"):
        canvas_to_label_map(np.zeros((4, 4, 3), np.float32), CITY)
    with pytest.raises(ValueError, match="no palette"):
        brush_classes(get_label_space({"name": "plain", "names": ["a", "b"]}))


def test_painted_instance_map() -> None:
    label = np.array([[26, 26, 7], [26, 7, 7]])
    reference_label = np.array([[26, 26, 26], [7, 7, 7]])
    reference_instance = np.array([[26001, 26001, 26002], [7, 7, 7]])
    out = painted_instance_map(label, reference_label, reference_instance)
    assert out.tolist() == [[26001, 26001, 7], [26, 7, 7]]
    assert painted_instance_map(label).tolist() == label.tolist()


def test_size_limit_message() -> None:
    check_image_size(100, 100, 10_000, "label map")
    with pytest.raises(ValueError, match=r"label map is 200x100 \(0.0 megapixels\).*at most.*Downscale"):
        check_image_size(200, 100, 10_000, "label map")
    with pytest.raises(ValueError, match="empty"):
        check_image_size(0, 5, 10_000, "style image")


def test_legend_names_every_brush_and_shared_colours() -> None:
    html = legend_html(brush_classes(CITY), CITY)
    assert "26 car (also: license plate)" in html and "#00008e" in html
    assert html.count("ls-swatch") == len(brush_classes(CITY))


@pytest.mark.parametrize("space", ["ade20k", "coco-stuff", "celebamask-hq", "celebamask-hq-cocosnet", "facades"])
def test_drawn_examples_use_several_classes_of_the_space(space: str) -> None:
    ids = draw_example(get_label_space(space), (64, 96))
    assert ids.shape == (64, 96) and len(np.unique(ids)) >= 3
    get_label_space(space).validate(ids)


def test_default_examples(tmp_path) -> None:
    city = default_examples(CITY, (128, 256))
    assert len(city) == 2 and all(e.instance is not None and e.label.is_file() for e in city)
    ade = default_examples(ADE, (32, 32), folder=tmp_path)
    assert [e.label.parent for e in ade] == [tmp_path, tmp_path] and ade[0].instance is None
    assert draw_example(get_label_space({"name": "x", "names": ["a", "b"], "palette": [[0, 0, 0], [1, 1, 1]]}),
                        (8, 8)) is None
