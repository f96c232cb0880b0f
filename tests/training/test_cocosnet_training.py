"""CoCosNet training: exemplar pairs (list file and built-in retrieval), the warped-mask loss, a tiny model that
learns on real ADE20K samples, and the training script end to end."""

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from labelsynth import CoCosNetConfig, CoCosNetDiscriminator, CoCosNetModel, LabelMapProcessor
from labelsynth.data import PairedTransform, load_training_dataset
from labelsynth.training.cocosnet import (
    CoCosNetTrainingModule,
    ExemplarPairTransform,
    read_exemplar_list,
    retrieve_exemplars,
    warp_mask_loss,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ade_rows(samples_dir):
    return load_training_dataset(samples_dir / "CoCosNet_ade20k", split="train", label_space="ade20k")


def test_exemplar_list_and_retrieval(samples_dir, ade_rows, tmp_path) -> None:
    listed = read_exemplar_list(samples_dir / "CoCosNet_ade20k" / "ade20k_ref_test.txt")
    assert listed["ADE_val_00001232"] == ["ADE_train_00004996"]
    retrieved = retrieve_exemplars(ade_rows, "ade20k", num_exemplars=3)
    names = set(ade_rows["image_id"])
    assert set(retrieved) == names
    assert all(len(v) == 3 and k not in v and set(v) <= names for k, v in retrieved.items())
    (tmp_path / "bad.txt").write_text("only_a_name\n")
    with pytest.raises(ValueError, match="expected 'name,exemplar"):
        read_exemplar_list(tmp_path / "bad.txt")


def test_pair_transform_mixes_retrieved_and_self_references(ade_rows) -> None:
    crop = PairedTransform(size=(64, 64), label_space="ade20k", passthrough_columns=())
    pairs = retrieve_exemplars(ade_rows, "ade20k", num_exemplars=2)
    always = ExemplarPairTransform(ade_rows, crop, pairs, real_reference_probability=1.0, hard_reference_probability=0)
    sample = always.apply(ade_rows[0], rng=random.Random(0))
    assert sample["exemplar"].shape == (3, 64, 64) and sample["exemplar_label_map"].shape == (64, 64)
    assert float(sample["self_reference"]) == 0.0
    never = ExemplarPairTransform(ade_rows, crop, pairs, real_reference_probability=0.0)
    assert float(never.apply(ade_rows[0], rng=random.Random(0))["self_reference"]) == 1.0
    flags = [float(ExemplarPairTransform(ade_rows, crop, pairs).apply(ade_rows[1], rng=random.Random(s))
                   ["self_reference"]) for s in range(40)]
    assert 0.1 < sum(flags) / len(flags) < 0.5  # 30 % self-reference
    with pytest.raises(ValueError, match="not training rows"):
        ExemplarPairTransform(ade_rows, crop, {"ADE_train_00004996": ["nowhere"]})


def test_warp_mask_loss_rewards_the_right_classes() -> None:
    labels = torch.zeros(1, 8, 8, dtype=torch.long)
    labels[:, :, 4:] = 3
    labels[:, :4, :4] = 5
    exemplar = labels.clone()
    exemplar[exemplar == 5] = 3  # class 5 is absent from the exemplar: no loss there
    perfect = torch.nn.functional.one_hot(labels, 7).permute(0, 3, 1, 2).float()
    uniform = torch.full((1, 7, 8, 8), 1 / 7)
    assert warp_mask_loss(perfect, labels, exemplar) < 1e-6
    assert warp_mask_loss(uniform, labels, exemplar) == pytest.approx(torch.log(torch.tensor(7.0)).item(), rel=1e-4)
    wrong_where_ignored = perfect.clone()
    wrong_where_ignored[:, :, :4, :] = uniform[:, :, :4, :]  # rows 0-3 hold class 5 (absent) and class 0 (ignored)
    wrong_where_ignored[:, :, :4, 4:] = perfect[:, :, :4, 4:]
    assert warp_mask_loss(wrong_where_ignored, labels, exemplar) < 1e-6


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(4 / ((a.clamp(-1, 1) - b) ** 2).mean()))


def test_optional_warp_losses_reach_the_correspondence(ade_rows) -> None:
    """The original's optional warp-cycle and warp-self terms: present when weighted, positive, and their gradients
    reach the correspondence network (the matching projections)."""
    torch.manual_seed(0)
    config = CoCosNetConfig(ngf=8, ndf=8, spade_hidden_nc=16, image_size=(64, 64))
    model, netd = CoCosNetModel(config), CoCosNetDiscriminator(config)
    module = CoCosNetTrainingModule(model, netd, LabelMapProcessor(label_space="ade20k"), vgg=None, weight_gan=0.0,
                                    lambda_feat=0.0, novgg_featpair=0.0, weight_mask=0.0, warp_cycle_w=1.0,
                                    warp_self_w=1.0)
    crop = PairedTransform(size=(64, 64), label_space="ade20k", passthrough_columns=(), flip=False)
    transform = ExemplarPairTransform(ade_rows, crop, {}, real_reference_probability=0.5)
    batch = module.collate_fn([transform.apply(ade_rows[i], rng=random.Random(i)) for i in range(2)])
    model.train()
    loss, logs = module.generator_loss(model, netd, batch)
    assert set(logs) == {"G_warp_cycle", "G_warp_self"}
    assert all(float(v) > 0 for v in logs.values())
    loss.backward()
    assert model.correspondence.theta.weight.grad.abs().sum() > 0
    assert model.correspondence.phi.weight.grad.abs().sum() > 0


def test_discriminator_step_judges_the_generator_steps_images(ade_rows) -> None:
    """As in the original (its D step is handed the G step's output), one generator forward serves both steps of a
    batch; a D step called without its G step generates its own images."""
    torch.manual_seed(0)
    config = CoCosNetConfig(ngf=8, ndf=8, spade_hidden_nc=16, image_size=(64, 64))
    model, netd = CoCosNetModel(config), CoCosNetDiscriminator(config)
    module = CoCosNetTrainingModule(model, netd, LabelMapProcessor(label_space="ade20k"), vgg=None)
    crop = PairedTransform(size=(64, 64), label_space="ade20k", passthrough_columns=(), flip=False)
    transform = ExemplarPairTransform(ade_rows, crop, {}, real_reference_probability=0.5)
    batch = module.collate_fn([transform.apply(ade_rows[i], rng=random.Random(i)) for i in range(2)])
    generated, judged = [], []
    model.register_forward_hook(lambda module, args, output: generated.append(output.images.detach()))
    netd.register_forward_hook(lambda module, args, output: judged.append(args[1][:2].detach()))  # [fake; real]
    model.train()
    module.generator_loss(model, netd, batch)
    module.discriminator_loss(model, netd, batch)
    assert len(generated) == 1 and len(judged) == 2
    torch.testing.assert_close(judged[1], generated[0], atol=0, rtol=0)
    module.discriminator_loss(model, netd, batch)  # no G step before it: generate again
    assert len(generated) == 2


def test_tiny_model_learns_on_real_samples(ade_rows) -> None:
    """Training-pair PSNR of a tiny CoCosNet rises well above its initialisation and a mean-colour image.

    A learning test of the generator + correspondence path, not of the GAN: the GAN and discriminator
    feature-matching weights are 0 (a 30-step adversarial game only adds noise), and without VGG weights offline the
    L1 term carries the reconstruction, next to the recipe's domain-alignment and warped-mask terms. Three fixed
    64x64 pairs in the self-reference setting (the exemplar is the photo itself) are trained and evaluated alike.
    """
    torch.manual_seed(0)
    config = CoCosNetConfig(ngf=8, ndf=8, spade_hidden_nc=16, image_size=(64, 64))
    model, netd = CoCosNetModel(config), CoCosNetDiscriminator(config)
    module = CoCosNetTrainingModule(model, netd, LabelMapProcessor(label_space="ade20k"), vgg=None, lambda_l1=20.0,
                                    weight_gan=0.0, lambda_feat=0.0)
    crop = PairedTransform(size=(64, 64), label_space="ade20k", passthrough_columns=(), flip=False)
    transform = ExemplarPairTransform(ade_rows, crop, {}, real_reference_probability=0.0)
    fixed = module.collate_fn([transform.apply(ade_rows[i], rng=random.Random(i)) for i in range(3)])
    fixed["exemplar"], fixed["exemplar_label_map"] = fixed["pixel_values"], fixed["label_map"]
    assert bool((fixed["self_reference"] == 1).all())  # the L1 term applies to every pair

    def training_psnr() -> float:
        model.eval()
        with torch.no_grad():
            fake = model(fixed["label_map"], exemplar=fixed["exemplar"],
                         exemplar_label_map=fixed["exemplar_label_map"]).images
        model.train()
        return _psnr(fake, fixed["pixel_values"])

    real = fixed["pixel_values"]
    mean_colour = _psnr(real.mean((0, 2, 3), keepdim=True).expand_as(real), real)
    before = training_psnr()
    # eps=1e-3 as the original's generator optimizer; beta1 0.5 (not the recipe's 0 of its TTUR) for a short run.
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3, betas=(0.5, 0.999), eps=1e-3)
    model.train()
    for _ in range(30):
        loss, logs = module.generator_loss(model, netd, fixed)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert {"G_domain", "G_warp_mask", "G_L1"} <= set(logs) and not {"G_GAN", "G_GAN_Feat"} & set(logs)
    after = training_psnr()
    print(f"training-pair PSNR: init {before:.2f} dB, after 30 steps {after:.2f} dB, mean colour {mean_colour:.2f} dB")
    assert after > before + 4, (before, after)
    assert after > mean_colour + 4, (mean_colour, after)


def test_training_script_runs_on_real_samples(samples_dir, tmp_path) -> None:
    out = tmp_path / "run"
    command = [sys.executable, str(REPO / "training" / "train_cocosnet.py"), "--dataset",
               str(samples_dir / "CoCosNet_ade20k"), "--retrieve", "--image_size", "64", "64", "--ngf", "8", "--ndf",
               "8", "--spade_hidden_nc", "16", "--output_dir", str(out), "--max_train_steps", "2",
               "--train_batch_size", "2", "--checkpointing_steps", "2", "--validation_steps", "2", "--report_to",
               "none", "--num_validation_images", "2"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert (out / "config.json").is_file() and (out / "README.md").is_file()
    assert (out / "discriminator" / "config.json").is_file() and (out / "checkpoint-2").is_dir()
    assert (out / "validation" / "step-0000002.png").is_file()
    trained = CoCosNetModel.from_pretrained(out)
    assert "train_cocosnet.py" in (out / "README.md").read_text()
    labels = torch.randint(0, 151, (1, 64, 64))
    with torch.no_grad():
        image = trained(labels, exemplar=torch.zeros(1, 3, 64, 64), exemplar_label_map=labels).images
    assert image.shape == (1, 3, 64, 64)
