"""pix2pixHD training end to end on the real Cityscapes samples (photos, labelIds, 16-bit instance maps): the script,
the coarse-to-fine schedule, learning, and the feature bank (encode -> cluster -> generate with a chosen cluster)."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import randomize_weights
from PIL import Image

from labelsynth import LabelMapProcessor, Pix2PixHDConfig, Pix2PixHDDiscriminator, Pix2PixHDModel
from labelsynth.cli import main as cli_main
from labelsynth.training.pix2pixhd import Pix2PixHDTrainingModule, init_from_global_model

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "training" / "train_pix2pixhd.py"
SIZE = (64, 128)
TINY = ["--image_size", *map(str, SIZE), "--ngf", "8", "--n_downsample_global", "3", "--n_blocks_global", "2",
        "--ndf", "16", "--nef", "8", "--n_downsample_e", "3", "--report_to", "none", "--train_batch_size", "4"]


def load_script():
    spec = importlib.util.spec_from_file_location("train_pix2pixhd", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def cityscapes(samples_dir: Path, tmp_path_factory) -> Path:
    """The 8 real training triplets at 128x256 (decoding the 2048x1024 originals would dominate the test time),
    in the same pix2pixHD folder layout; labels and instances resized with NEAREST, photos bicubic."""
    source, root = samples_dir / "pix2pixHD_cityscapes", tmp_path_factory.mktemp("cityscapes")
    for folder, resample in (("train_img", Image.BICUBIC), ("train_label", Image.NEAREST),
                             ("train_inst", Image.NEAREST)):
        (root / folder).mkdir()
        for path in sorted((source / folder).glob("*.png")):
            image = Image.open(path)
            image = (image.convert("RGB") if folder == "train_img" else image).resize((256, 128), resample)
            if folder == "train_inst":
                image = Image.fromarray(np.asarray(image).astype(np.uint16))  # keep 16-bit instance ids
            image.save(root / folder / path.name)
    return root


def training_pairs(root: Path) -> dict[str, torch.Tensor]:
    from labelsynth.data import PairedTransform, load_training_dataset

    rows = load_training_dataset(str(root), label_space="cityscapes")
    view = PairedTransform(size=SIZE, mode="fixed", flip=False, label_space="cityscapes", passthrough_columns=())
    samples = [view.apply(rows[i]) for i in range(len(rows))]
    return {key: torch.stack([s[key] for s in samples]) for key in samples[0]}


@pytest.fixture(scope="module")
def trained(cityscapes: Path, tmp_path_factory) -> Path:
    """A tiny feature-encoder model trained by the script in-process (L1 added: no ImageNet VGG offline)."""
    output = tmp_path_factory.mktemp("pix2pixhd-feat")
    load_script().main(["--dataset", str(cityscapes), "--output_dir", str(output), "--max_train_steps", "100",
                        "--validation_steps", "0", "--checkpointing_steps", "0", "--lambda_l1", "10",
                        "--instance_feat", *TINY])
    return output


# The feature-bank test's generator: two stride-2 convs, one residual block (each output pixel sees about 20 px in
# every direction) and BatchNorm, which in eval mode applies fixed statistics. With the default InstanceNorm every
# pixel depends on every other through the per-image mean and variance, so how much a cluster choice changes the
# rest of the image is learned, not built in (a 100-step model shows it weakly and differently on each CPU).
LOCAL = ["--n_downsample_global", "2", "--n_blocks_global", "1", "--norm", "batch"]


@pytest.fixture(scope="module")
def trained_local(cityscapes: Path, tmp_path_factory) -> Path:
    """A tiny feature-encoder model with the `LOCAL` generator, trained by the script in-process (it builds the
    feature bank at the end; how well the model learned is not what its tests check)."""
    output = tmp_path_factory.mktemp("pix2pixhd-feat-local")
    load_script().main(["--dataset", str(cityscapes), "--output_dir", str(output), "--max_train_steps", "100",
                        "--validation_steps", "0", "--checkpointing_steps", "0", "--lambda_l1", "10",
                        "--instance_feat", *TINY, *LOCAL])
    return output


def receptive_radius(config: Pix2PixHDConfig) -> int:
    """The farthest (in pixels, along either axis) an output pixel of the global generator reads its input: one
    output column's dependency interval [low, high] traced back through the layers (7x7 convs: +-3; 3x3 stride-2
    transposed conv: [ceil((low - 1) / 2), floor((high + 1) / 2)]; residual block: +-2; 3x3 stride-2 conv:
    [2 low - 1, 2 high + 1]). Reflection padding only reads pixels nearer than that."""
    assert config.generator_type == "global"
    radius = 0
    for x in range(max(config.image_size)):
        low, high = x - 3, x + 3  # to_output
        for _ in range(config.n_downsample_global):
            low, high = -((1 - low) // 2), (high + 1) // 2
        low, high = low - 2 * config.n_blocks_global, high + 2 * config.n_blocks_global
        for _ in range(config.n_downsample_global):
            low, high = 2 * low - 1, 2 * high + 1
        low, high = low - 3, high + 3  # stem
        radius = max(radius, x - low, high - x)
    return radius


def test_help_documents_the_pix2pixhd_options(capsys) -> None:
    with pytest.raises(SystemExit):
        load_script().parse_args(["--help"])
    text = capsys.readouterr().out
    for flag in ("--pretrained_global", "--fix_global_steps", "--instance_feat", "--label_feat", "--num_d",
                 "--no_cluster_features", "--lambda_feat", "--resume_from_checkpoint", "--mixed_precision",
                 "--eval_metrics"):
        assert flag in text
    defaults = load_script().parse_args(["--dataset", "x", "--output_dir", "y"])
    assert (defaults.generator_lr, defaults.discriminator_lr, defaults.adam_beta1, defaults.gan_mode) == (
        2e-4, 2e-4, 0.5, "ls")


def test_fixed_global_schedule_trains_only_the_local_enhancer_first() -> None:
    config = Pix2PixHDConfig(image_size=SIZE, generator_type="local", ngf=4, n_downsample_global=2, n_blocks_global=1,
                             n_blocks_local=1, feature_mode="instance", nef=4, n_downsample_e=2, ndf=4)
    model = Pix2PixHDModel(config)
    module = Pix2PixHDTrainingModule(model, Pix2PixHDDiscriminator(config), LabelMapProcessor(label_space="cityscapes"),
                                     fix_global_steps=2)
    optimizer = torch.optim.Adam(model.parameters())
    optimizer.state[next(model.parameters())]["step"] = torch.tensor(1.0)

    class Trainer:
        opt_g = optimizer

    module.on_step_begin(0, Trainer)
    generator = model.generator
    assert not any(p.requires_grad for p in generator.global_generator.parameters())
    assert all(p.requires_grad for p in (*generator.local_enhancers.parameters(), *model.encoder.parameters()))
    module.on_step_begin(1, Trainer)
    assert optimizer.state  # untouched during the fixed phase
    module.on_step_begin(2, Trainer)
    assert all(p.requires_grad for p in model.parameters())
    assert not optimizer.state  # the original starts a fresh Adam over all parameters here
    with pytest.raises(ValueError, match="needs a 'local' generator"):
        Pix2PixHDTrainingModule(Pix2PixHDModel(Pix2PixHDConfig(image_size=SIZE, ngf=4)), None, None,
                                fix_global_steps=1)


def test_script_runs_local_from_a_global_model_with_fixed_global_steps(cityscapes: Path, tmp_path: Path) -> None:
    global_config = Pix2PixHDConfig.for_dataset("cityscapes-512p", image_size=SIZE, ngf=16, n_downsample_global=3,
                                                n_blocks_global=2)
    pretrained = Pix2PixHDModel(global_config)
    randomize_weights(pretrained)
    pretrained.save_pretrained(tmp_path / "global")
    output = tmp_path / "local"
    # A fresh process: Accelerate keeps one precision setting per process.
    command = [sys.executable, str(SCRIPT), "--dataset", str(cityscapes), "--output_dir", str(output),
               "--preset", "cityscapes-1024p", "--pretrained_global", str(tmp_path / "global"), "--fix_global_steps",
               "1", "--max_train_steps", "2", "--validation_steps", "2", "--checkpointing_steps", "2",
               "--mixed_precision", "bf16", *TINY[:3], "--ngf", "8", "--n_downsample_global", "3",
               "--n_blocks_global", "2", "--ndf", "16", "--num_d", "2", "--report_to", "none",
               "--train_batch_size", "2", "--max_train_samples", "4", "--num_validation_images", "2",
               "--eval_metrics", "psnr", "--eval_samples", "2"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    model = Pix2PixHDModel.from_pretrained(output)
    assert model.config.generator_type == "local" and model.config.global_ngf == 16
    assert Image.open(output / "validation" / "step-0000002.png").size == (3 * SIZE[1], 2 * SIZE[0])
    assert (output / "checkpoint-2").is_dir() and (output / "discriminator" / "config.json").is_file()
    assert "train_pix2pixhd.py" in (output / "README.md").read_text()
    # The global generator started from the pretrained one and moved only in the joint step.
    start = pretrained.generator.global_generator.stem.conv.weight
    assert not torch.equal(model.generator.global_generator.stem.conv.weight, start)
    assert (model.generator.global_generator.stem.conv.weight - start).abs().max() < 0.01
    with pytest.raises(ValueError, match="copies a 'global' model"):
        init_from_global_model(pretrained, model)


@pytest.mark.slow
def test_tiny_model_learns_the_training_pairs(trained: Path, cityscapes: Path) -> None:
    """Training-pair PSNR (features encoded from the real photos) must rise well above the untrained model and
    above predicting the mean colour."""
    from labelsynth.metrics import psnr

    model = Pix2PixHDModel.from_pretrained(trained).eval()
    torch.manual_seed(0)
    untrained = Pix2PixHDModel(model.config).eval()
    pairs = training_pairs(cityscapes)
    real = pairs["pixel_values"]
    with torch.no_grad():
        before = float(psnr(untrained(pairs["label_map"], pairs["instance_map"], style_image=real).images, real,
                            data_range=2.0))
        after = float(psnr(model(pairs["label_map"], pairs["instance_map"], style_image=real).images, real,
                           data_range=2.0))
    mean_colour = float(psnr(real.mean(dim=(0, 2, 3), keepdim=True).expand_as(real), real, data_range=2.0))
    assert after > before + 5, (before, after)
    assert after > mean_colour + 1.5, (mean_colour, after)


@pytest.mark.slow
def test_encode_cluster_generate_changes_only_the_chosen_instance(trained_local: Path, cityscapes: Path,
                                                                  tmp_path: Path) -> None:
    """The script built the feature bank; `labelsynth cluster-features` rebuilds it (and exports the original .npy);
    choosing another cluster for one car changes that car's features and nothing else, so the image changes at the
    car and is bit-identical beyond the generator's receptive field of it."""
    model = Pix2PixHDModel.from_pretrained(trained_local).eval()
    assert model.feature_cluster_counts[26] >= 2  # cars: several clusters from the 8 images
    out = tmp_path / "clustered"
    status = cli_main(["cluster-features", str(trained_local), "--dataset", str(cityscapes), "--output", str(out),
                       "--n-clusters", "4", "--save-npy", str(tmp_path / "features_clustered_004.npy")])
    assert status == 0
    clustered = Pix2PixHDModel.from_pretrained(out).eval()
    assert 2 <= int(clustered.feature_cluster_counts[26]) <= 4
    from labelsynth.models.pix2pixhd.convert_pix2pixhd_original_checkpoint import load_feature_bank

    exported = load_feature_bank(tmp_path / "features_clustered_004.npy")
    assert np.allclose(exported[26], clustered.feature_bank()[26].numpy())

    pairs = training_pairs(cityscapes)
    label, instance = pairs["label_map"][:1], pairs["instance_map"][:1]
    cars, sizes = torch.unique(instance[(instance // 1000) == 26], return_counts=True)
    car = int(cars[sizes.argmax()])
    chosen = {car: 0}
    base = {int(i): 0 for i in torch.unique(instance)}
    centres = clustered.feature_bank()[26]
    other = int(torch.cdist(centres[:1], centres).argmax())  # the cluster farthest from cluster 0
    with torch.no_grad():
        first = clustered(label, instance, cluster={**base, **chosen})
        second = clustered(label, instance, cluster={**base, car: other})
    inside = instance[0] == car
    feature_change = (first.features - second.features).abs().sum(dim=1)[0]
    assert feature_change[~inside].max() == 0 and feature_change[inside].min() > 0
    image_change = (first.images - second.images).abs().amax(dim=1)[0]
    radius = receptive_radius(clustered.config)
    beyond = F.max_pool2d(inside[None, None].float(), 2 * radius + 1, stride=1, padding=radius)[0, 0] == 0
    assert beyond.float().mean() > 0.5  # the check covers most of the image
    assert image_change[beyond].max() == 0
    assert (image_change[inside] > 0).all()

    # The same choices from the command line give the same images.
    Image.fromarray(label[0].numpy().astype(np.uint8)).save(tmp_path / "label.png")
    Image.fromarray(instance[0].numpy().astype(np.uint16)).save(tmp_path / "instance.png")
    for k, expected in ((0, first.images), (other, second.images)):
        spec = ",".join(f"{i}={k if i == car else 0}" for i in base)
        assert cli_main(["generate", "--model", str(out), "--label", str(tmp_path / "label.png"), "--instance",
                         str(tmp_path / "instance.png"), "--cluster", spec, "-o", str(tmp_path / f"car{k}.png")]) == 0
        written = torch.from_numpy(np.asarray(Image.open(tmp_path / f"car{k}.png"), dtype=np.float32))
        assert (written - (expected[0].permute(1, 2, 0) + 1) * 127.5).abs().max() <= 1


def test_missing_instance_maps_name_the_flags_that_do_without(cityscapes: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Without instance maps, a run with instance edges and the instance-wise encoder stops before the model is
    built, naming both flags (--no_instance, --label_feat); with them it gets past the check."""
    import shutil

    data = tmp_path / "no_instances"
    for folder in ("train_img", "train_label"):
        shutil.copytree(cityscapes / folder, data / folder)
    script = load_script()

    class Built(Exception):
        pass

    def build_model(args: object) -> None:
        raise Built

    monkeypatch.setattr(script, "build_model", build_model)
    argv = ["--dataset", str(data), "--output_dir", str(tmp_path / "run"), *TINY]
    with pytest.raises(ValueError, match=r"uses instance edges \(preset 'cityscapes-512p'\) and the instance-wise "
                                         r"feature encoder \(--instance_feat\): pass --no_instance and --label_feat"):
        script.main([*argv, "--instance_feat"])
    with pytest.raises(Built):
        script.main([*argv, "--no_instance", "--label_feat"])
