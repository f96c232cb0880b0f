"""Each model family's demo controls through the HTTP API (gradio_client), with tiny local models (offline).

pix2pix: the test mode (the seed matters only in the original mode); pix2pixHD: the feature cluster per class (from
the model's feature bank) and the style photo; SEAN: the required style image, per-region styles from a second
image, and the noise switch; CRN: which of the k images of one pass is shown.
"""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from gradio_client import Client, handle_file
from helpers import launch_demo
from PIL import Image
from transformers import pipeline

from labelsynth import CRNModel, Pix2PixHDConfig, Pix2PixHDModel, get_label_space
from labelsynth.demo import PerClassChoice, build_demo
from labelsynth.demo.examples import draw_example
from labelsynth.demo.spec import resolve_demo_inputs
from labelsynth.examples import example_paths

GENERATE = "/generate_from_file"


def _serve(model: Path, **kwargs: Any) -> Iterator[Client]:
    demo = build_demo(model, examples=[], **kwargs)
    url = launch_demo(demo)
    try:
        yield Client(url, verbose=False)
    finally:
        demo.close()


def _predict(client: Client, **inputs: Any) -> tuple:
    """`/generate_from_file` with the named inputs; file inputs not named are sent empty (None)."""
    parameters = client.view_api(print_info=False, return_format="dict")["named_endpoints"][GENERATE]["parameters"]
    missing = {p["parameter_name"]: None for p in parameters if not p["parameter_has_default"]}
    return client.predict(**{**missing, **inputs}, api_name=GENERATE)


def _images(gallery: list[dict]) -> list[np.ndarray]:
    return [np.asarray(Image.open(item["image"]).convert("RGB")).astype(int) for item in gallery]


def _drawn_label(space: str, size: tuple[int, int], path: Path) -> str:
    Image.fromarray(draw_example(get_label_space(space), size).astype(np.uint8)).save(path)
    return handle_file(str(path))


# ---------------------------------------------------------------------------------------------------- pix2pix
@pytest.fixture(scope="module")
def pix2pix_client(pix2pix_model: Path) -> Iterator[Client]:
    yield from _serve(pix2pix_model, max_variations=2)


def test_pix2pix_test_mode(pix2pix_client: Client, tmp_path: Path) -> None:
    label = _drawn_label("facades", (64, 64), tmp_path / "facade.png")

    def run(mode: str, seed: int, variations: int = 1) -> tuple[list[np.ndarray], str]:
        gallery, _, status = _predict(pix2pix_client, label_map=label, test_mode=mode, seed=seed,
                                          variations=variations)
        return _images(gallery), status

    (a,), _ = run("original", 0)
    (a_again,), _ = run("original", 0)
    (b,), _ = run("original", 1)
    assert np.array_equal(a, a_again) and np.abs(a - b).mean() > 1  # dropout masks come from the seed
    (e0,), status = run("eval", 0, variations=2)  # deterministic: one image, whatever "variations" says
    (e1,), _ = run("eval", 1)
    assert np.array_equal(e0, e1) and np.abs(e0 - a).mean() > 1
    assert "the seed has no effect" in status
    assert len(run("original", 3, variations=2)[0]) == 2


# ---------------------------------------------------------------------------------------------------- pix2pixHD
def test_pix2pixhd_spec_follows_the_feature_bank(pix2pixhd_feat_model: Path) -> None:
    model = Pix2PixHDModel.from_pretrained(pix2pixhd_feat_model)
    spec, inputs = resolve_demo_inputs(Pix2PixHDModel, model.config, model=model)
    widgets = {item.name: item.widget for item in inputs}
    assert sorted(widgets) == ["cluster", "instance_map", "style_image"] and spec.stochastic
    control = widgets["cluster"].control
    assert isinstance(control, PerClassChoice)
    assert {c: len(options) for c, options in control.options.items()} == {7: 2, 26: 3}  # the fixture's bank
    assert not widgets["style_image"].required
    # Without a bank the style photo is the only appearance source; without an encoder nothing but instances.
    empty = Pix2PixHDModel(model.config)
    spec, inputs = resolve_demo_inputs(Pix2PixHDModel, empty.config, model=empty)
    assert [(i.name, i.widget.required) for i in inputs] == [("instance_map", False), ("style_image", True)]
    assert not spec.stochastic
    spec, inputs = resolve_demo_inputs(Pix2PixHDModel, Pix2PixHDConfig.for_dataset("cityscapes-1024p"))
    assert [i.name for i in inputs] == ["instance_map"] and not spec.stochastic


@pytest.fixture(scope="module")
def pix2pixhd_client(pix2pixhd_feat_model: Path) -> Iterator[Client]:
    yield from _serve(pix2pixhd_feat_model)


def test_pix2pixhd_cluster_choice(pix2pixhd_client: Client, pix2pixhd_feat_model: Path) -> None:
    paths = [str(p) for p in example_paths(0)]
    label, instance = (handle_file(p) for p in paths)
    ids = np.asarray(Image.open(paths[0]).resize((128, 64), Image.Resampling.NEAREST))
    car, road = ids == 26, ids == 7
    assert car.sum() > 20 and road.sum() > 20  # the example shows both classes
    pipe = pipeline("label-to-image", model=str(pix2pixhd_feat_model))

    def run(cluster: list[str], seed: int = 0) -> np.ndarray:
        gallery = _predict(pix2pixhd_client, label_map=label, instance_map=instance, cluster=cluster, seed=seed)[0]
        return _images(gallery)[0]

    def direct(cluster: dict[int, int]) -> np.ndarray:
        return np.asarray(pipe(paths[0], instance_map=paths[1], cluster=cluster, seed=0)).astype(int)

    fixed = run(["26:0", "7:1"], seed=0)
    assert np.array_equal(fixed, run(["26:0", "7:1"], seed=5))  # every class with clusters is fixed: seed-free
    # Each choice reaches the model as {class id: cluster index}: the demo shows what the pipeline makes of it.
    assert np.array_equal(fixed, direct({26: 0, 7: 1}))
    other_car, other_road = run(["26:2", "7:1"]), run(["26:0", "7:0"])
    assert np.array_equal(other_car, direct({26: 2, 7: 1})) and np.array_equal(other_road, direct({26: 0, 7: 0}))
    assert np.abs(other_car - fixed).mean(-1)[car].mean() > 1 and np.abs(other_road - fixed).mean(-1)[road].mean() > 1
    unset = [run([], seed=s) for s in range(4)]  # unset classes draw their cluster from the seed
    assert any(np.abs(unset[0] - image).mean() > 1 for image in unset[1:])
    with pytest.raises(Exception, match="two choices for class 26"):
        run(["26:0", "26:1"])


def test_pix2pixhd_style_photo(pix2pixhd_client: Client, tmp_path: Path) -> None:
    label, instance = (handle_file(str(p)) for p in example_paths(0))
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 128, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(np.full((64, 128, 3), 30, np.uint8)).save(tmp_path / "b.png")
    styled = [_images(_predict(pix2pixhd_client, label_map=label, instance_map=instance,
                               style_image=handle_file(str(tmp_path / name)), seed=seed)[0])[0]
              for name, seed in (("a.png", 0), ("a.png", 1), ("b.png", 0))]
    assert np.array_equal(styled[0], styled[1]) and np.abs(styled[0] - styled[2]).mean() > 1


# ---------------------------------------------------------------------------------------------------- SEAN
@pytest.fixture(scope="module")
def sean_client(sean_model: Path) -> Iterator[Client]:
    yield from _serve(sean_model)


@pytest.fixture(scope="module")
def faces(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A drawn face label map (two variants) and two 'photos' of very different colours (distinct style codes)."""
    folder = tmp_path_factory.mktemp("faces")
    space = get_label_space("celebamask-hq")
    files = {}
    for variant in (0, 1):
        Image.fromarray(draw_example(space, (64, 64), variant).astype(np.uint8)).save(folder / f"label{variant}.png")
        photo = np.zeros((64, 64, 3), np.uint8)
        photo[..., variant * 2] = np.linspace(120, 255, 64, dtype=np.uint8)[:, None]  # a blue or a red gradient
        Image.fromarray(photo).save(folder / f"photo{variant}.png")
        files[f"label{variant}"] = handle_file(str(folder / f"label{variant}.png"))
        files[f"photo{variant}"] = handle_file(str(folder / f"photo{variant}.png"))
    return files


def test_sean_needs_a_style_image(sean_client: Client, faces: dict[str, str]) -> None:
    with pytest.raises(Exception, match="needs the input 'Style image'"):
        _predict(sean_client, label_map=faces["label0"])


def test_sean_region_styles_and_noise(sean_client: Client, sean_model: Path, faces: dict[str, str]) -> None:
    hair = get_label_space("celebamask-hq").names.index("hair")
    ids = np.asarray(Image.open(faces["label0"]["path"]))
    in_hair = ids == hair

    def run(seed: int = 0, noise: bool = False, **region: Any) -> np.ndarray:
        gallery = _predict(sean_client, label_map=faces["label0"], style_image=faces["photo0"], add_noise=noise,
                           seed=seed, **region)[0]
        return _images(gallery)[0]

    plain = run()
    assert np.array_equal(plain, run(seed=3))  # noise off: the seed has no effect
    assert np.abs(run(noise=True) - run(seed=1, noise=True)).mean() > 0.5
    swapped = run(region_style_image=faces["photo1"], region_style_label_map=faces["label1"],
                  region_style_classes=[hair])
    # The region inputs reach the model as the pipeline takes them (the model tests check what they do there).
    pipe = pipeline("label-to-image", model=str(sean_model))
    photos = [Image.open(faces[f"photo{i}"]["path"]).convert("RGB") for i in (0, 1)]
    expected = pipe(faces["label0"]["path"], style_image=photos[0], add_noise=False, seed=0,
                    region_style_image=photos[1], region_style_label_map=faces["label1"]["path"],
                    region_style_classes=[hair])
    assert np.array_equal(swapped, np.asarray(expected).astype(int))
    assert np.abs(swapped - plain).mean(-1)[in_hair].mean() > 3
    with pytest.raises(Exception, match="region_style_image and region_style_classes go together"):
        run(region_style_classes=[hair])


# ---------------------------------------------------------------------------------------------------- CRN
def test_crn_output_choice(crn_model: Path, crn_single_model: Path) -> None:
    label = handle_file(str(example_paths(1)[0]))
    client_iter = _serve(crn_model, max_variations=3)
    client = next(client_iter)
    try:
        def run(pick: Any, seed: int = 0, variations: int = 1) -> tuple[list[np.ndarray], str]:
            gallery, _, status = _predict(client, label_map=label, output_index=pick, seed=seed,
                                          variations=variations)
            return _images(gallery), status

        picked = [run(i)[0][0] for i in (0, 4)]
        assert np.abs(picked[0] - picked[1]).mean() > 1  # the 9 images of one pass differ
        again, status = run(4, seed=7, variations=3)
        assert len(again) == 1 and np.array_equal(again[0], picked[1]) and "the seed has no effect" in status
        drawn, _ = run("", seed=0, variations=3)  # drawn from the seeds 0, 1, 2: each one of the 9 images
        assert len(drawn) == 3
        assert all(any(np.array_equal(image, run(i)[0][0]) for i in range(9)) for image in drawn[:1])
    finally:
        next(client_iter, None)
    spec, inputs = resolve_demo_inputs(CRNModel, CRNModel.config_class.from_pretrained(crn_single_model))
    assert inputs == [] and not spec.stochastic  # one image per pass: nothing to choose, no seed


# ---------------------------------------------------------------------------------------------------- CoCosNet
def test_cocosnet_exemplar(cocosnet_model: Path, tmp_path: Path) -> None:
    label = _drawn_label("ade20k", (64, 64), tmp_path / "scene.png")
    for name, color in (("warm", (220, 120, 40)), ("cold", (30, 90, 200))):
        Image.new("RGB", (64, 64), color).save(tmp_path / f"{name}.png")
    client_iter = _serve(cocosnet_model)
    client = next(client_iter)
    try:
        with pytest.raises(Exception, match="needs the input 'Exemplar photo'"):
            _predict(client, label_map=label)
        warm, cold = (_images(_predict(client, label_map=label, exemplar=handle_file(str(tmp_path / f"{n}.png")),
                                       exemplar_label_map=label, seed=0)[0])[0] for n in ("warm", "cold"))
        assert np.abs(warm - cold).mean() > 1  # the appearance comes from the exemplar
    finally:
        next(client_iter, None)
