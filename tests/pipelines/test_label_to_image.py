"""`transformers.pipeline("label-to-image", ...)` end to end with tiny saved SPADE models.

Input forms, output types, seeds and batching, instance maps, style images, building the pipeline from objects, and
resolving a Hub id offline from the Hugging Face cache (in a subprocess with its own ``HF_HOME``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch
from helpers import save_tiny_model  # tests/helpers.py
from transformers import pipeline

from labelsynth import LabelMapProcessor, LabelToImagePipeline, SPADEConfig, SPADEModel, get_label_space

SRC = Path(__file__).resolve().parents[2] / "src"
ADE_PALETTE = get_label_space("ade20k").palette
# Instance norm keeps a random generator off the tanh saturation, so every input visibly changes the image; no
# spectral norm keeps loading fast (no power iterations at construction).
TINY = {"ngf": 8, "param_free_norm": "instance", "spectral_norm": False}


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread() -> Iterator[None]:
    """On a few shared CPU cores, intra-op threads fight other processes (forwards get 10-40x slower): use one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Saved tiny models: "plain" (ADE20K), "vae" (ADE20K + style encoder), "edges" (Cityscapes, instance edges)."""
    root = tmp_path_factory.mktemp("pipeline_models")
    configs = {
        "plain": SPADEConfig.for_dataset("ade20k", image_size=(64, 64), **TINY),
        "vae": SPADEConfig.for_dataset("ade20k", image_size=(64, 64), use_vae=True, z_dim=16, **TINY),
        "edges": SPADEConfig.for_dataset("cityscapes", image_size=(64, 128), **TINY),
    }
    for name, config in configs.items():
        save_tiny_model(root / name, config)
    return {name: root / name for name in configs}


@pytest.fixture(scope="module")
def pipes(folders: dict[str, Path]) -> dict[str, LabelToImagePipeline]:
    return {name: pipeline("label-to-image", model=str(folder)) for name, folder in folders.items()}


def _ade_ids(seed: int, shape: tuple[int, int] = (6, 10)) -> np.ndarray:
    """A 48x80 ADE20K id map of 8x8 blocks (ids 0..150 except 49, whose colour is shared with road = 7)."""
    values = np.array([i for i in range(151) if i != 49])
    blocks = np.random.RandomState(seed).choice(values, size=shape)
    return np.kron(blocks, np.ones((8, 8), dtype=np.int64))


@pytest.fixture(scope="module")
def ids() -> np.ndarray:
    return _ade_ids(0)


def _np(image: PIL.Image.Image) -> np.ndarray:
    return np.asarray(image)


# ------------------------------------------------------------------------------------------------ outputs
def test_single_input_gives_pil_and_list_gives_list(pipes: dict[str, LabelToImagePipeline], ids: np.ndarray) -> None:
    pipe = pipes["plain"]
    assert isinstance(pipe, LabelToImagePipeline)
    image = pipe(ids)
    assert isinstance(image, PIL.Image.Image)
    assert image.mode == "RGB" and image.size == (64, 64)
    images = pipe([ids, _ade_ids(1)])
    assert isinstance(images, list) and len(images) == 2
    assert all(isinstance(im, PIL.Image.Image) and im.size == (64, 64) for im in images)
    np.testing.assert_array_equal(_np(images[0]), _np(image))
    assert not np.array_equal(_np(images[0]), _np(images[1]))  # a different layout, a different image
    assert pipe((ids,))[0].size == (64, 64)  # tuples are lists too


def test_output_types(pipes: dict[str, LabelToImagePipeline], ids: np.ndarray) -> None:
    pipe = pipes["edges"]  # 64x128: a non-square model shows (H, W) order mistakes
    city = ids % 35  # Cityscapes labelIds 0..34
    pil = pipe(city, instance_map=city)
    array = pipe(city, instance_map=city, output_type="np")
    tensor = pipe(city, instance_map=city, output_type="pt")
    assert pil.size == (128, 64)
    assert isinstance(array, np.ndarray) and array.dtype == np.uint8 and array.shape == (64, 128, 3)
    assert isinstance(tensor, torch.Tensor) and tensor.dtype == torch.float32 and tensor.shape == (3, 64, 128)
    assert 0 <= float(tensor.min()) and float(tensor.max()) <= 1
    np.testing.assert_array_equal(_np(pil), array)
    assert array.std() > 10  # not a flat image
    from_tensor = (tensor.permute(1, 2, 0).numpy() * 255).round()
    assert np.abs(from_tensor - array).max() <= 1  # the same image, unquantised
    with pytest.raises(ValueError, match="output_type"):
        pipe(city, instance_map=city, output_type="jpg")


# ------------------------------------------------------------------------------------------------ input forms
def test_input_forms_give_the_same_image(
    pipes: dict[str, LabelToImagePipeline], ids: np.ndarray, tmp_path: Path
) -> None:
    index_png, colour_png = tmp_path / "label.png", tmp_path / "label_colour.png"
    PIL.Image.fromarray(ids.astype(np.uint8), mode="L").save(index_png)
    PIL.Image.fromarray(ADE_PALETTE[ids], mode="RGB").save(colour_png)
    palette_image = PIL.Image.fromarray(ids.astype(np.uint8), mode="P")
    palette_image.putpalette(ADE_PALETTE.tobytes())
    palette_png = tmp_path / "label_p.png"
    palette_image.save(palette_png)

    forms = {
        "path": str(index_png),
        "pathlib": index_png,
        "pil L": PIL.Image.fromarray(ids.astype(np.uint8), mode="L"),
        "pil P": palette_image,
        "P png": str(palette_png),
        "numpy int64": ids,
        "numpy uint8": ids.astype(np.uint8),
        "torch": torch.from_numpy(ids),
        "torch [1, H, W]": torch.from_numpy(ids)[None],
        "colour png": str(colour_png),
        "colour pil": PIL.Image.open(colour_png),
        "colour numpy": ADE_PALETTE[ids],
    }
    pipe = pipes["plain"]
    expected = pipe(ids, output_type="np")
    for name, label in forms.items():
        np.testing.assert_array_equal(pipe(label, output_type="np"), expected, err_msg=name)
    batched = pipe(list(forms.values()), output_type="np")
    assert all(np.array_equal(image, expected) for image in batched)


def test_bad_label_maps_raise_clear_errors(pipes: dict[str, LabelToImagePipeline], ids: np.ndarray) -> None:
    pipe = pipes["plain"]
    bad = ids.copy()
    bad[0, 0] = 200
    with pytest.raises(ValueError, match=r"ids \[200\].*outside the range 0\.\.150 of label space 'ade20k'"):
        pipe(bad)
    rgb = ADE_PALETTE[ids].copy()
    rgb[0, 0] = (1, 2, 250)
    with pytest.raises(ValueError, match=r"not in the palette of label space 'ade20k'"):
        pipe(rgb)
    with pytest.raises(ValueError, match="does not exist"):
        pipe("no/such/label.png")


# ------------------------------------------------------------------------------------------------ randomness
def test_seed_determinism_and_batch_equals_single(pipes: dict[str, LabelToImagePipeline], ids: np.ndarray) -> None:
    pipe = pipes["vae"]
    other = _ade_ids(1)
    first = pipe(ids, seed=5, output_type="np")
    np.testing.assert_array_equal(pipe(ids, seed=5, output_type="np"), first)
    assert not np.array_equal(pipe(ids, seed=6, output_type="np"), first)

    batch = pipe([ids, other, ids], seed=5, output_type="np")
    np.testing.assert_array_equal(batch[0], first)  # item i uses seed + i
    np.testing.assert_array_equal(batch[1], pipe(other, seed=6, output_type="np"))
    np.testing.assert_array_equal(batch[2], pipe(ids, seed=7, output_type="np"))

    generator_image = pipe(ids, generator=torch.Generator().manual_seed(5), output_type="np")
    np.testing.assert_array_equal(generator_image, first)
    z = torch.randn(16, generator=torch.Generator().manual_seed(0))
    np.testing.assert_array_equal(pipe(ids, noise=z, output_type="np"), pipe(ids, noise=z, seed=9, output_type="np"))
    with pytest.raises(ValueError, match="either seed or generator"):
        pipe(ids, seed=1, generator=torch.Generator())
    with pytest.raises(TypeError, match="unexpected arguments"):
        pipe(ids, sed=1)


# ------------------------------------------------------------------------------------------------ instance maps
def test_instance_map_for_edges_model(pipes: dict[str, LabelToImagePipeline]) -> None:
    pipe = pipes["edges"]
    labels = np.full((32, 64), 26, dtype=np.int64)  # a row of "car" (Cityscapes labelId 26) ...
    labels[:8] = 23  # ... under the sky
    instances = np.where(labels == 26, 26000 + (np.arange(64) // 16)[None, :], labels)  # four cars side by side
    with_cars = pipe(labels, instance_map=instances, output_type="np")
    one_blob = pipe(labels, instance_map=labels, output_type="np")
    assert with_cars.shape == (64, 128, 3)
    assert not np.array_equal(with_cars, one_blob)  # the car boundaries reached the generator
    np.testing.assert_array_equal(pipe(labels, instance_map=instances.astype(np.int32), output_type="np"), with_cars)
    as_list = pipe([labels, labels], instance_map=[instances, labels], output_type="np")
    np.testing.assert_array_equal(as_list[0], with_cars)
    np.testing.assert_array_equal(as_list[1], one_blob)

    with pytest.raises(ValueError, match="must be a list of the same length"):
        pipe([labels, labels], instance_map=instances)
    with pytest.raises(ValueError, match="same size"):
        pipe(labels, instance_map=instances[:16])


def test_edges_model_without_instance_map_takes_the_class_regions(
    pipes: dict[str, LabelToImagePipeline], caplog: pytest.LogCaptureFixture
) -> None:
    """The documented default (as in the CLI and the demo): every class region is one instance, for id maps and for
    colour maps alike (a colour map cannot carry instance ids); the pipeline says so once."""
    import logging

    pipe = pipes["edges"]
    labels = np.full((32, 64), 26, dtype=np.int64)
    labels[:8], labels[8:, :10] = 23, 7
    colours = get_label_space("cityscapes").colorize(labels)
    logging.Logger.warning_once.cache_clear()  # transformers' warn-once cache is per process
    with caplog.at_level(logging.WARNING, logger="labelsynth"):
        derived = pipe(labels, output_type="np")
        from_colours = pipe(PIL.Image.fromarray(colours), output_type="np")
    np.testing.assert_array_equal(derived, pipe(labels, instance_map=labels, output_type="np"))
    np.testing.assert_array_equal(from_colours, derived)
    notes = [record.getMessage() for record in caplog.records if "no instance_map was given" in record.getMessage()]
    assert len(notes) == 1 and "each class region of the label map counts as one instance" in notes[0]


# ------------------------------------------------------------------------------------------------ style images
def test_style_image_for_vae_model(pipes: dict[str, LabelToImagePipeline], ids: np.ndarray, tmp_path: Path) -> None:
    pipe = pipes["vae"]
    rng = np.random.RandomState(3)
    style = PIL.Image.fromarray(rng.randint(0, 256, (40, 56, 3), dtype=np.uint8))
    other_style = PIL.Image.fromarray(np.full((40, 56, 3), (20, 200, 60), dtype=np.uint8))
    style_path = tmp_path / "style.png"
    style.save(style_path)

    styled = pipe(ids, style_image=style, seed=0, output_type="np")
    assert styled.shape == (64, 64, 3)
    np.testing.assert_array_equal(pipe(ids, style_image=str(style_path), seed=0, output_type="np"), styled)
    np.testing.assert_array_equal(pipe(ids, style_image=np.asarray(style), seed=0, output_type="np"), styled)
    assert not np.array_equal(styled, pipe(ids, seed=0, output_type="np"))  # z came from the style, not N(0, 1)
    assert not np.array_equal(styled, pipe(ids, style_image=other_style, seed=0, output_type="np"))
    batch = pipe([ids, ids], style_image=[style, other_style], seed=0, output_type="np")
    np.testing.assert_array_equal(batch[0], styled)


def test_style_image_on_non_vae_model_is_refused(pipes: dict[str, LabelToImagePipeline], ids: np.ndarray) -> None:
    style = PIL.Image.new("RGB", (32, 32), (10, 20, 30))
    with pytest.raises(ValueError, match="no style encoder"):
        pipes["plain"](ids, style_image=style)


# ------------------------------------------------------------------------------------------------ construction
def test_pipeline_from_model_and_processor_objects(
    folders: dict[str, Path], pipes: dict[str, LabelToImagePipeline], ids: np.ndarray
) -> None:
    model = SPADEModel.from_pretrained(folders["vae"])
    processor = LabelMapProcessor.from_pretrained(folders["vae"])
    pipe = pipeline("label-to-image", model=model, image_processor=processor)
    assert isinstance(pipe, LabelToImagePipeline) and pipe.model is model and pipe.image_processor is processor
    np.testing.assert_array_equal(
        pipe(ids, seed=2, output_type="np"), pipes["vae"](ids, seed=2, output_type="np")
    )


def _write_hf_cache(hf_home: Path, repo_id: str, folder: Path) -> str:
    """Lay a model folder out as a download leaves it in the HF cache (blobs + snapshot symlinks + refs/main)."""
    sha = "89abcdef0123456789abcdef0123456789abcdef"
    repo = hf_home / "hub" / f"models--{repo_id.replace('/', '--')}"
    (repo / "blobs").mkdir(parents=True)
    (repo / "snapshots" / sha).mkdir(parents=True)
    for index, file in enumerate(sorted(folder.iterdir())):
        blob = repo / "blobs" / f"{index:040d}"
        blob.write_bytes(file.read_bytes())
        (repo / "snapshots" / sha / file.name).symlink_to(os.path.relpath(blob, repo / "snapshots" / sha))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(sha)
    return sha


OFFLINE_CLIENT = """
import json, sys
import numpy as np, torch
torch.set_num_threads(1)
import labelsynth
from huggingface_hub import is_offline_mode
from transformers import pipeline

ids = np.load(IDS)
result = {"offline": is_offline_mode()}
pipe = pipeline("label-to-image", model="tester/spade-tiny-vae")
result["model_path"] = pipe.model.name_or_path
np.save(OUT, pipe([ids, ids], seed=4, output_type="np"))
try:
    pipeline("label-to-image", model="tester/not-in-the-cache")
except OSError as err:
    result["missing_error"] = str(err)
print(json.dumps(result))
"""


def test_hub_id_resolved_offline_from_hf_cache(
    folders: dict[str, Path], pipes: dict[str, LabelToImagePipeline], ids: np.ndarray, tmp_path: Path
) -> None:
    hf_home = tmp_path / "hf_home"
    _write_hf_cache(hf_home, "tester/spade-tiny-vae", folders["vae"])
    np.save(tmp_path / "ids.npy", ids)
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_CACHE", "HF_ENDPOINT", "TRANSFORMERS_CACHE")}
    env.update(HF_HOME=str(hf_home), HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join(p for p in (str(SRC), env.get("PYTHONPATH")) if p))
    code = f"IDS = {str(tmp_path / 'ids.npy')!r}\nOUT = {str(tmp_path / 'out.npy')!r}\n" + textwrap.dedent(
        OFFLINE_CLIENT
    )
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL, check=False)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["offline"] is True
    assert "cached files" in result["missing_error"]  # an unknown id fails offline instead of going online

    images = np.load(tmp_path / "out.npy")
    assert images.shape == (2, 64, 64, 3) and images.dtype == np.uint8
    expected = pipes["vae"]([ids, ids], seed=4, output_type="np")
    # The cached copy of the same weights: the same images (across processes CPU kernels may differ by one ulp).
    difference = np.abs(images.astype(int) - np.stack(expected))
    assert difference.max() <= 1 and difference.mean() < 0.01
    assert not np.array_equal(images[0], images[1])  # seeds 4 and 5


# ------------------------------------------------------------------------------------- model-declared inputs
class _RecordingModel(SPADEModel):
    """A SPADE that declares one input of every kind and records what the pipeline hands to `forward`."""

    pipeline_inputs = {"instance_map": "instance", "exemplar": "image", "exemplar_label_map": "label",
                       "latent": "tensor", "cluster": "value"}

    def forward(self, label_map, instance_map=None, exemplar=None, exemplar_label_map=None, latent=None,
                cluster=None, generator=None, return_dict=True):
        self.received = {"label_map": label_map, "instance_map": instance_map, "exemplar": exemplar,
                         "exemplar_label_map": exemplar_label_map, "latent": latent, "cluster": cluster}
        return super().forward(label_map, generator=generator, return_dict=return_dict)


def test_inputs_declared_by_the_model_are_prepared_by_kind() -> None:
    config = SPADEConfig.for_dataset("ade20k", image_size=(32, 64), **TINY)
    model = _RecordingModel(config).eval()
    processor = LabelMapProcessor(label_space="ade20k", size={"height": 32, "width": 64})
    pipe = LabelToImagePipeline(model=model, image_processor=processor)
    labels = np.full((64, 128), 3, dtype=np.int64)
    exemplar_labels = np.full((20, 30), 5, dtype=np.int64)  # another size: resized to the output size
    exemplar = np.zeros((100, 150, 3), dtype=np.uint8)
    exemplar[..., 0] = 255
    instances = np.arange(64 * 128).reshape(64, 128) // 1000

    pipe(labels, instance_map=instances, exemplar=exemplar, exemplar_label_map=exemplar_labels,
         latent=[1.0, 2.0], cluster={3: 1}, output_type="np")
    got = model.received
    assert got["label_map"].shape == (1, 32, 64) and got["instance_map"].shape == (1, 32, 64)
    assert got["exemplar"].shape == (1, 3, 32, 64) and got["exemplar"].dtype == model.dtype
    torch.testing.assert_close(got["exemplar"][0, 0], torch.ones(32, 64))  # red channel 255 -> +1
    torch.testing.assert_close(got["exemplar"][0, 1], -torch.ones(32, 64))
    assert torch.equal(got["exemplar_label_map"], torch.full((1, 32, 64), 5))
    assert torch.equal(got["latent"], torch.tensor([[1.0, 2.0]]))
    assert got["cluster"] == {3: 1}

    pipe(labels, exemplar=None, output_type="np")  # None means "not given"
    assert model.received["exemplar"] is None and model.received["instance_map"] is None
    with pytest.raises(TypeError, match=r"_RecordingModel accepts .*exemplar_label_map"):
        pipe(labels, style_image=exemplar)  # SPADE's input, not declared by this model
    with pytest.raises(ValueError, match="exemplar_label_map: .*151"):
        pipe(labels, exemplar_label_map=np.full((8, 8), 151))
