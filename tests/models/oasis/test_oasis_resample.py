"""OASIS region re-sampling end to end: the "label-to-image" pipeline (`resample=`, `resample_seed=`, `noise=`,
batches of appearances) and ``labelsynth generate --resample-class/--resample-mask/--resample-seed``.

A narrow model on a 64x1024 strip (as the modeling tests): a region at the left end spills over a few hundred
pixels (latent cells are 32 px wide), so most of the strip lies outside its `influence_region`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch
from helpers import randomize_weights, save_model_folder, save_tiny_model

from labelsynth import OASISConfig, OASISModel, SPADEConfig, pipeline
from labelsynth.cli import main

REGION = 7  # the class re-rolled: confined to the left end of the strip


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def labels() -> np.ndarray:
    """A 64x1024 ADE20K map of 32x32 blocks (no id 7 but a 40x40 patch of it at the top left)."""
    blocks = np.random.RandomState(0).randint(0, 151, size=(2, 32))
    ids = np.kron(blocks, np.ones((32, 32), dtype=np.int64)).astype(np.uint8)
    ids[ids == REGION] = REGION + 1
    ids[:40, :40] = REGION
    return ids


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = OASISConfig.for_dataset("ade20k", ngf=2, z_dim=8, spade_hidden_nc=8, ndf=4, image_size=(64, 1024))
    model = OASISModel(config).eval()
    randomize_weights(model, seed=1)
    return save_model_folder(tmp_path_factory.mktemp("oasis_strip"), model)


@pytest.fixture(scope="module")
def pipe(folder: Path):
    pipe = pipeline("label-to-image", model=str(folder))
    pipe.model.fast_inference = False  # the plain path: outside the spill the output is bit-identical
    return pipe


def _outside_spill(pipe, region: np.ndarray) -> torch.Tensor:
    return ~pipe.model.influence_region(torch.from_numpy(region)[None])[0]


# ---------------------------------------------------------------------------------------------------- pipeline
def test_resample_rerolls_the_region_only(pipe, labels: np.ndarray) -> None:
    before = pipe(labels, seed=0, output_type="pt")
    after = pipe(labels, seed=0, resample=REGION, resample_seed=7, output_type="pt")
    outside = _outside_spill(pipe, labels == REGION)
    assert outside.float().mean() > 0.4, "the check needs pixels outside the spill"
    assert torch.equal(before[:, outside], after[:, outside])  # bit-identical outside the spill
    assert (before - after)[:, :40, :40].abs().mean() > 1e-2  # the region got a new look
    # The same region as a mask (any non-zero value) and as a list of ids; another re-roll seed, another look.
    assert torch.equal(after, pipe(labels, seed=0, resample=(labels == REGION).astype(np.uint8) * 255,
                                   resample_seed=7, output_type="pt"))
    assert torch.equal(after, pipe(labels, seed=0, resample=[REGION], resample_seed=7, output_type="pt"))
    other = pipe(labels, seed=0, resample=REGION, resample_seed=8, output_type="pt")
    assert (other - after)[:, :40, :40].abs().mean() > 1e-2
    assert torch.equal(other[:, outside], before[:, outside])


def test_resample_mask_is_resized_with_the_label_map(pipe, labels: np.ndarray) -> None:
    small = labels[::2, ::2]  # the processor resizes it (nearest) to 64x1024, the mask alike
    by_class = pipe(small, seed=3, resample=REGION, resample_seed=1, output_type="np")
    by_mask = pipe(small, seed=3, resample=torch.from_numpy(small == REGION), resample_seed=1, output_type="np")
    assert np.array_equal(by_class, by_mask)


def test_noise_given_vs_seeded(pipe, labels: np.ndarray) -> None:
    model = pipe.model
    seeded = pipe(labels, seed=0, output_type="np")
    noise = model.sample_noise(1, torch.Generator().manual_seed(0))
    assert np.array_equal(pipe(labels, noise=noise, output_type="np"), seeded)
    assert np.array_equal(pipe(labels, noise=noise[0], output_type="np"), seeded)  # [z_dim]: one image
    spatial = model.resample_noise(torch.from_numpy(labels.astype(np.int64))[None], REGION,
                                   generator=torch.Generator().manual_seed(0),
                                   new_generator=torch.Generator().manual_seed(7))
    assert np.array_equal(pipe(labels, noise=spatial, output_type="np"),
                          pipe(labels, seed=0, resample=REGION, resample_seed=7, output_type="np"))


def test_a_batch_gives_one_appearance_per_seed(pipe, labels: np.ndarray) -> None:
    images = pipe([labels] * 4, seed=0, output_type="np")
    assert len(images) == 4
    for i in range(4):
        assert np.array_equal(images[i], pipe(labels, seed=i, output_type="np"))  # item i uses seed + i
        for j in range(i):
            assert np.abs(images[i].astype(int) - images[j]).mean() > 1
    # A re-roll seed given once: item i uses resample_seed + i, like the seed.
    rolled = pipe([labels] * 2, seed=0, resample=[[REGION]] * 2, resample_seed=7, output_type="np")
    assert np.array_equal(rolled[1], pipe(labels, seed=1, resample=REGION, resample_seed=8, output_type="np"))


def test_pipeline_errors(pipe, labels: np.ndarray) -> None:
    with pytest.raises(ValueError, match="resample_seed is the seed of a re-rolled region"):
        pipe(labels, seed=0, resample_seed=7)
    with pytest.raises(ValueError, match=r"resample: class ids \[300\] are outside the label space 'ade20k'"):
        pipe(labels, seed=0, resample=[REGION, 300])
    with pytest.raises(ValueError, match=r"classes \[9\] do not occur in the label map"):
        pipe(np.where(labels == 9, 10, labels).astype(np.uint8), seed=0, resample=9)
    with pytest.raises(ValueError, match="the mask is 512x32 but the label map is 1024x64"):
        pipe(labels, seed=0, resample=np.ones((32, 512), bool))
    with pytest.raises(ValueError, match="the mask is empty"):
        pipe(labels, seed=0, resample=np.zeros(labels.shape, bool))
    with pytest.raises(ValueError, match="resample_seed must be a whole number"):
        pipe(labels, seed=0, resample=REGION, resample_seed=-1)


# ---------------------------------------------------------------------------------------------------- CLI
def _generate(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str]:
    status = main(["generate", *map(str, args)])
    return status, capsys.readouterr().err


def _pixels(path: Path) -> np.ndarray:
    with PIL.Image.open(path) as image:
        return np.asarray(image).astype(int)


def test_cli_resample_class_and_mask(folder: Path, labels: np.ndarray, tmp_path: Path, capsys) -> None:
    label = tmp_path / "label.png"
    PIL.Image.fromarray(labels).save(label)
    mask = tmp_path / "mask.png"
    PIL.Image.fromarray((labels == REGION).astype(np.uint8) * 255).save(mask)
    common = ("--model", folder, "--label", label, "--seed", 0)
    assert _generate(capsys, *common, "-o", tmp_path / "plain.png")[0] == 0
    absent = next(c for c in range(151) if c not in labels)  # a class of the label space the map lacks
    assert _generate(capsys, *common, "--resample-class", REGION, "--resample-class", absent, "--resample-seed", 7,
                     "-o", tmp_path / "class.png")[0] == 0
    assert _generate(capsys, *common, "--resample-mask", mask, "--resample-seed", 7, "-o", tmp_path / "mask.png")[0] == 0
    plain, by_class, by_mask = (_pixels(tmp_path / f"{n}.png") for n in ("plain", "class", "mask"))
    assert np.array_equal(by_class, by_mask)  # the absent class adds no pixel
    assert np.abs(plain - by_class)[:40, :40].mean() > 2
    # The CLI runs the fast path (within 1e-5 of the plain one): outside the spill at most a rounding step apart.
    outside = _outside_spill(pipeline("label-to-image", model=str(folder)), labels == REGION).numpy()
    assert np.abs(plain - by_class)[outside].max() <= 1


def test_cli_resample_errors(folder: Path, labels: np.ndarray, tmp_path: Path, capsys) -> None:
    label = tmp_path / "label.png"
    PIL.Image.fromarray(labels).save(label)
    wrong = tmp_path / "wrong.png"
    PIL.Image.fromarray(np.ones((32, 512), np.uint8)).save(wrong)
    spade = tmp_path / "spade"
    save_tiny_model(spade, SPADEConfig.for_dataset("ade20k", image_size=(64, 64), ngf=4, spectral_norm=False))
    out = ("-o", tmp_path / "out.png")
    cases = [
        (("--model", spade, "--resample-class", 2), "--resample-class: SPADEModel .* has no noise to re-sample"),
        (("--model", folder, "--resample-class", 300),
         r"--resample-class 300: class ids \[300\] are outside the label space 'ade20k'"),
        (("--model", folder, "--resample-mask", wrong),
         re.escape(f"--resample-mask {wrong}: the mask is 512x32 but the label map is 1024x64")),
        (("--model", folder, "--resample-seed", 7), "--resample-seed is the seed of a re-rolled region"),
        (("--model", folder, "--resample-class", 2, "--resample-mask", wrong), "give one of them"),
    ]
    for args, message in cases:
        status, err = _generate(capsys, "--label", label, *args, *out)
        assert status == 2
        lines = [line for line in err.splitlines() if line.startswith("labelsynth: error:")]
        assert len(lines) == 1 and re.search(message, lines[0]), err
    assert not (tmp_path / "out.png").exists()
