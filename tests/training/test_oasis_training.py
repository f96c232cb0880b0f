"""OASIS training: the class-balanced N+1 cross-entropy and LabelMix on hand-computed cases, the training module,
`training/train_oasis.py` on the real Cityscapes samples, bit-identical resume, the EMA of weights and buffers and
the re-estimation of its BatchNorm statistics before saving."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from labelsynth import LabelMapProcessor, OASISConfig, OASISDiscriminator, OASISModel
from labelsynth.data import PairedTransform, load_training_dataset
from labelsynth.losses import (
    class_balancing_map,
    class_balancing_weights,
    labelmix_images,
    labelmix_loss,
    labelmix_mask,
    oasis_n1_loss,
)
from labelsynth.training import GANTrainer, OASISTrainingModule, TrainingArguments
from labelsynth.training import trainer as trainer_module
from labelsynth.training.oasis import oasis_training_preset

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "training" / "train_oasis.py"
TINY_MODEL = {"image_size": (64, 128), "ngf": 4, "ndf": 8, "spade_hidden_nc": 16, "z_dim": 8}
TINY = ["--preset", "cityscapes", "--image_size", "64", "128", "--ngf", "4", "--ndf", "8", "--spade_hidden_nc", "16",
        "--z_dim", "8", "--report_to", "none", "--train_batch_size", "4", "--ema_bn_batches", "2"]


def load_script():
    spec = importlib.util.spec_from_file_location("train_oasis", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def cityscapes(samples_dir: Path) -> str:
    return str(samples_dir / "pix2pixHD_cityscapes")


# ------------------------------------------------------------------------------------------- losses, by hand
def test_class_balancing_weights_of_a_known_label_map() -> None:
    # 8 pixels: one don't-care (channel 0), three of class 1, two of 2, two of 3; class 4 absent.
    channels = torch.tensor([[[0, 1, 1, 1], [2, 2, 3, 3]]])
    weights = class_balancing_weights(channels, num_classes=5)
    # B*H*W / (count * present classes) = 8 / (3 * 3), 8 / (2 * 3), 8 / (2 * 3); 0 for don't care and absent ones.
    assert torch.allclose(weights, torch.tensor([0.0, 8 / 9, 4 / 3, 4 / 3, 0.0]))
    pixel = class_balancing_map(channels, 5)
    assert torch.allclose(pixel, torch.tensor([[[0.0, 8 / 9, 8 / 9, 8 / 9], [4 / 3, 4 / 3, 4 / 3, 4 / 3]]]))
    # Every present class carries the same total weight, B*H*W / P.
    assert torch.allclose(torch.stack([pixel[channels == c].sum() for c in (1, 2, 3)]), torch.full((3,), 8 / 3))
    # Without a don't-care channel, channel 0 counts like any class (4 present classes).
    assert torch.allclose(class_balancing_weights(channels, 5, dontcare=False), torch.tensor([2.0, 2 / 3, 1, 1, 0]))
    # Counts are over the whole batch: a second image of class 4 only changes every weight.
    batch = torch.cat([channels, torch.full_like(channels, 4)])
    assert torch.allclose(class_balancing_weights(batch, 5), torch.tensor([0.0, 16 / 12, 2, 2, 16 / 32]))
    assert torch.equal(class_balancing_weights(torch.zeros(1, 2, 2, dtype=torch.long), 3), torch.zeros(3))


def test_n1_cross_entropy_by_hand() -> None:
    channels = torch.tensor([[[0, 1], [2, 2]]])  # N = 3 label channels -> 4 logits, target = channel + 1
    logits = torch.zeros(1, 4, 2, 2)
    logits[0, 2, 0, 1] = 2.0  # pixel of class 1: its target logit (index 2) is 2
    logits[0, 0, 1, 0] = 1.0  # a class-2 pixel leaning to "fake"
    ce_hit = math.log(3 + math.e ** 2) - 2  # CE of a pixel whose target logit is 2, the others 0
    ce_plain = math.log(4)
    ce_fakeish = math.log(3 + math.e)  # target logit 0, the fake logit 1
    # weights: class 1 -> 4 / (1 * 2) = 2, class 2 -> 4 / (2 * 2) = 1, don't care 0
    expected_real = (0 + 2 * ce_hit + ce_fakeish + ce_plain) / 4
    assert math.isclose(float(oasis_n1_loss(logits, channels, True)), expected_real, rel_tol=1e-6)
    unweighted = (ce_plain + ce_hit + ce_fakeish + ce_plain) / 4
    assert math.isclose(float(oasis_n1_loss(logits, channels, True, balance=False)), unweighted, rel_tol=1e-6)
    # Fake target: class 0 everywhere, a plain mean (don't-care pixels included).
    fake_ce = [math.log(4), math.log(3 + math.e ** 2), math.log(3 + math.e) - 1, math.log(4)]
    assert math.isclose(float(oasis_n1_loss(logits, channels, False)), sum(fake_ce) / 4, rel_tol=1e-6)
    with pytest.raises(ValueError, match="prepare_label_channels"):
        oasis_n1_loss(logits, channels + 5, True)
    with pytest.raises(ValueError, match=r"\[B, N \+ 1, H, W\]"):
        oasis_n1_loss(logits[:, :, :1], channels, True)


def test_labelmix_mask_is_one_bit_per_class() -> None:
    channels = torch.tensor([[[2, 2, 5, 5], [7, 7, 9, 9]], [[9, 9, 5, 5], [3, 3, 3, 3]]])
    classes = [2, 3, 5, 7, 9]
    seen = set()
    for seed in range(8):
        mask = labelmix_mask(channels, torch.Generator().manual_seed(seed))
        assert mask.shape == (2, 1, 2, 4) and mask.dtype == torch.float32
        assert set(mask.unique().tolist()) <= {0.0, 1.0}
        # One bit per class, shared by all its pixels in every image; the bits are the generator's draws in
        # ascending class order.
        bits = torch.randint(0, 2, (len(classes),), generator=torch.Generator().manual_seed(seed))
        for c, bit in zip(classes, bits.tolist()):
            assert torch.all(mask[:, 0][channels == c] == bit)
        seen.add(tuple(bits.tolist()))
    assert len(seen) > 1  # the draws vary with the seed


def test_labelmix_mask_couples_dont_care_with_class_one_as_the_original() -> None:
    channels = torch.tensor([[[0, 0, 1, 1, 4, 4]]])
    for seed in range(16):
        bit0, bit1, bit4 = torch.randint(0, 2, (3,), generator=torch.Generator().manual_seed(seed)).tolist()
        mask = labelmix_mask(channels, torch.Generator().manual_seed(seed))[0, 0, 0]
        assert mask.tolist() == [bit1 if bit0 else 0] * 2 + [bit1] * 2 + [bit4] * 2


def test_labelmix_images_and_consistency_loss() -> None:
    mask = torch.tensor([[[[1.0, 0.0]]]])
    real, fake = torch.full((1, 3, 1, 2), 0.5), torch.full((1, 3, 1, 2), -1.0)
    assert torch.equal(labelmix_images(mask, real, fake), torch.tensor([[[[0.5, -1.0]]] * 3]).reshape(1, 3, 1, 2))
    d_real, d_fake = torch.full((1, 4, 1, 2), 2.0), torch.full((1, 4, 1, 2), -1.0)
    consistent = torch.tensor([2.0, -1.0]).expand(1, 4, 1, 2)
    assert float(labelmix_loss(mask, consistent, d_fake, d_real)) == 0.0
    # D(mixed) off by 1 at every logit of the first pixel: mean over 8 logits of 1^2 * 4 / 8.
    assert float(labelmix_loss(mask, consistent + torch.tensor([1.0, 0.0]), d_fake, d_real)) == 0.5


# ------------------------------------------------------------------------------------------- training module
def tiny_module(lambda_labelmix: float = 5.0, **options) -> OASISTrainingModule:
    config = OASISConfig.for_dataset("cityscapes", **TINY_MODEL)
    return OASISTrainingModule(OASISModel(config), OASISDiscriminator(config),
                               LabelMapProcessor(label_space="cityscapes"), lambda_labelmix=lambda_labelmix, **options)


def test_module_losses_and_random_stream() -> None:
    module = tiny_module()
    g, d = module.generator, module.discriminator
    batch = {"label_map": torch.randint(0, 34, (2, 64, 128)), "pixel_values": torch.rand(2, 3, 64, 128) * 2 - 1}
    batch["label_map"][:, :4] = 255  # unlabeled -> don't care
    module.seed_training_rng(3)
    g_loss, g_logs = module.generator_loss(g, d, batch)
    assert set(g_logs) == {"G_adv"} and torch.equal(g_loss.detach(), g_logs["G_adv"])
    g_loss.backward()
    assert g.generator.fc.weight.grad is not None
    d_loss, d_logs = module.discriminator_loss(g, d, batch)
    assert set(d_logs) == {"D_fake", "D_real", "D_LM"}
    assert torch.allclose(d_loss.detach(), sum(d_logs.values()))
    # All draws (2 noise vectors per step, then the LabelMix bits) come from the module's stream, in that order.
    rng = torch.Generator().manual_seed(3)
    torch.randn(2, 8, generator=rng), torch.randn(2, 8, generator=rng)
    num_classes = int(g.prepare_label_channels(batch["label_map"]).unique().numel())
    torch.randint(0, 2, (num_classes,), generator=rng)
    assert torch.equal(module.training_rng.get_state(), rng.get_state())
    assert set(tiny_module(lambda_labelmix=0.0).discriminator_loss(g, d, batch)[1]) == {"D_fake", "D_real"}
    with pytest.raises(ValueError, match="lambda_labelmix"):
        tiny_module(lambda_labelmix=-1.0)

    # The optional L1 term (not in OASIS): lambda_l1 times the mean absolute error of the same fake to the photo.
    with_l1 = tiny_module(lambda_l1=2.5)
    with_l1.generator.eval()  # no power-iteration step at each call: both calls below see the same weights
    with_l1.seed_training_rng(3)
    _, logs = with_l1.generator_loss(with_l1.generator, d, batch)
    with_l1.seed_training_rng(3)
    fake = with_l1._generate(with_l1.generator, batch)
    assert set(logs) == {"G_adv", "G_L1"}
    assert torch.allclose(logs["G_L1"], 2.5 * (fake - batch["pixel_values"]).abs().mean())
    with pytest.raises(ValueError, match="lambda_l1"):
        tiny_module(lambda_l1=-1.0)


def test_presets_follow_the_original() -> None:
    ade, city, coco = (oasis_training_preset(n) for n in ("ade20k", "cityscapes", "coco"))
    assert (ade["generator_lr"], ade["discriminator_lr"], ade["lambda_labelmix"], ade["ema_decay"]) == (
        1e-4, 4e-4, 10.0, 0.9999)
    assert (city["generator_lr"], city["lambda_labelmix"], city["ema_decay"], city["train_batch_size"]) == (
        4e-4, 5.0, 0.999, 20)
    assert coco["max_train_steps"] == 100 * (118_287 // 32) and ade["max_train_steps"] == 200 * (20_210 // 32)
    args = load_script().parse_args(["--dataset", "x", "--output_dir", "y", "--preset", "cityscapes",
                                     "--generator_lr", "1e-3"])
    assert (args.generator_lr, args.discriminator_lr, args.adam_beta2, args.lambda_labelmix) == (1e-3, 4e-4, 0.999, 5)
    assert (args.ema_decay, args.ema_bn_batches, args.lambda_vgg) == (0.999, 51, 0.0)
    with pytest.raises(ValueError, match="unknown OASIS preset"):
        oasis_training_preset("facades")


# ------------------------------------------------------------------------------------------- the script
def test_a_few_steps_of_the_script(tmp_path: Path, cityscapes: str) -> None:
    load_script().main(["--dataset", cityscapes, "--output_dir", str(tmp_path), "--max_train_steps", "2",
                        "--validation_steps", "2", "--checkpointing_steps", "2", *TINY])
    model = OASISModel.from_pretrained(tmp_path)
    assert model.config.num_label_channels == 35 and tuple(model.config.image_size) == (64, 128)
    assert OASISDiscriminator.from_pretrained(tmp_path / "discriminator").config.ndf == 8
    grid = np.asarray(Image.open(tmp_path / "validation" / "step-0000002.png"))
    assert grid.shape == (4 * 64, 3 * 128, 3)
    assert (tmp_path / "checkpoint-2" / "ema.safetensors").is_file()  # the preset's EMA is on
    saved = json.loads((tmp_path / "training_args.json").read_text())
    assert (saved["generator_lr"], saved["adam_beta2"], saved["ema_decay"]) == (4e-4, 0.999, 0.999)
    card = (tmp_path / "README.md").read_text()
    assert "train_oasis.py" in card and "--max_train_steps 2" in card


def test_eval_metrics_score_the_ema_generator_at_validation(tmp_path: Path, cityscapes: str) -> None:
    """--eval_metrics psnr on the real samples: logged to TensorBoard as eval/psnr at the validation step, and equal to
    evaluate_model on the saved model (the EMA copy with re-estimated BatchNorm statistics), not the trained one."""
    from safetensors.torch import load_file
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from labelsynth.metrics import evaluate_model

    load_script().main(["--dataset", cityscapes, "--output_dir", str(tmp_path), "--max_train_steps", "2",
                        "--validation_steps", "2", "--checkpointing_steps", "2", *TINY, "--report_to", "tensorboard",
                        "--eval_metrics", "psnr", "--eval_samples", "3"])
    events = EventAccumulator(str(tmp_path / "logs" / "labelsynth"))
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars("eval/num_samples")] == [(2, 3.0)]
    [logged] = events.Scalars("eval/psnr")
    assert logged.step == 2

    rows = load_training_dataset(cityscapes, label_space="cityscapes")  # no --validation_split: the training rows
    ema = OASISModel.from_pretrained(tmp_path)
    expected = evaluate_model(ema, rows, ["psnr"], num_samples=3, seed=0)["psnr"]
    assert math.isclose(logged.value, expected, abs_tol=1e-3), (logged.value, expected)  # TensorBoard keeps float32
    trained = OASISModel(ema.config)
    trained.load_state_dict(load_file(tmp_path / "checkpoint-2" / "generator.safetensors"))
    # The trained generator's images differ (0.16 dB when written): the metric is the EMA copy's.
    assert abs(evaluate_model(trained, rows, ["psnr"], num_samples=3, seed=0)["psnr"] - logged.value) > 0.02


def relative_class_colours(images: torch.Tensor, channels: torch.Tensor, classes: list[int]) -> torch.Tensor:
    """Each class's mean colour over `images` `[B, 3, H, W]` minus the pixel-weighted mean of these: `[K, 3]`. It says
    how a class differs from the rest (sky brighter, vegetation greener), which no single colour can predict."""
    means = torch.stack([images.permute(1, 0, 2, 3)[:, channels == c].mean(1) for c in classes])
    weights = torch.tensor([float((channels == c).sum()) for c in classes])
    return means - (weights / weights.sum()) @ means


@pytest.mark.slow
def test_tiny_oasis_learns_the_colours_of_the_classes(tmp_path: Path, cityscapes: str) -> None:
    """150 steps on the 8 real Cityscapes samples. OASIS's adversarial signal alone needs thousands of steps to show
    (a 64x128 run's discriminator is still near chance after 300), so this run adds the optional L1 term, as the
    other families' learning tests do; the noise still varies the image. Measured with this setting (seeds 0-4; seed 0
    also with AVX2 kernels and with 2 threads): PSNR 10.8-17.5 dB above the untrained model, relative class colours
    0.010-0.047 from the photos' against 0.088 for a flat image, outputs of two noises 0.05-0.32 apart. Again after
    the discriminator's resampling was folded into its convolutions (seeds 0-3, 1 thread; seed 0 with 2 threads):
    PSNR +14.7 to +17.9 dB, colours 0.013-0.061 (seed 0: 0.023, and 0.018 with 2 threads), noises 0.037-0.195 apart."""
    from labelsynth.metrics import psnr

    load_script().main(["--dataset", cityscapes, "--output_dir", str(tmp_path), "--max_train_steps", "150",
                        "--validation_steps", "0", "--checkpointing_steps", "0", "--preset", "cityscapes",
                        "--image_size", "64", "128", "--ngf", "8", "--ndf", "16", "--spade_hidden_nc", "16",
                        "--z_dim", "8", "--report_to", "none", "--train_batch_size", "4", "--ema_bn_batches", "2",
                        "--ema_decay", "0.9", "--generator_lr", "2e-3", "--discriminator_lr", "4e-3",
                        "--adam_beta1", "0.9", "--lambda_l1", "10", "--no_flip"])
    trained = OASISModel.from_pretrained(tmp_path).eval()
    torch.manual_seed(0)
    untrained = OASISModel(trained.config).eval()
    rows = load_training_dataset(cityscapes, label_space="cityscapes")
    view = PairedTransform(size=(64, 128), mode="fixed", flip=False, label_space="cityscapes", use_instance=False,
                           passthrough_columns=())
    samples = [view.apply(rows[i]) for i in range(len(rows))]
    labels, real = (torch.stack([s[k] for s in samples]) for k in ("label_map", "pixel_values"))
    with torch.no_grad():
        after = trained(labels, generator=torch.Generator().manual_seed(5)).images
        other_noise = trained(labels, generator=torch.Generator().manual_seed(6)).images
        before = untrained(labels, generator=torch.Generator().manual_seed(5)).images
    assert float(psnr(after, real, data_range=2.0)) > float(psnr(before, real, data_range=2.0)) + 5

    channels = trained.prepare_label_channels(labels)
    classes = [int(c) for c in channels.unique() if c > 0]
    weights = torch.tensor([float((channels == c).sum()) for c in classes])
    weights /= weights.sum()

    def colour_error(images: torch.Tensor) -> float:
        """Pixel-weighted mean absolute error of the relative class colours to the photos' (a flat image: theirs)."""
        difference = relative_class_colours(images, channels, classes) - relative_class_colours(real, channels, classes)
        return float((weights[:, None] * difference.abs()).sum() / 3)

    flat = colour_error(torch.zeros_like(real))
    assert colour_error(after) < 0.75 * flat, (colour_error(after), flat)
    assert colour_error(after) < 0.5 * colour_error(before), (colour_error(after), colour_error(before))
    assert float((after - other_noise).abs().mean()) > 0.01  # the L1 term did not silence the noise (0.05-0.3)


def test_image_size_must_suit_the_discriminator(tmp_path: Path, cityscapes: str) -> None:
    with pytest.raises(ValueError, match="divisible by 64"):
        load_script().main(["--dataset", cityscapes, "--output_dir", str(tmp_path), "--image_size", "96", "192"])


# ------------------------------------------------------------------------------------------- resume, EMA
def run(output_dir: Path, cityscapes: str, steps: int, records: dict | None = None, **overrides):
    """Train the tiny OASIS on the real Cityscapes samples (64x64 crops, batch 2, EMA 0.5) for `steps` steps."""
    torch.manual_seed(0)
    module = tiny_module()
    config = module.generator.config
    rows = load_training_dataset(cityscapes, label_space="cityscapes")
    transform = PairedTransform(size=(64, 64), load_size=72, mode="keep_aspect", label_space="cityscapes",
                                use_instance=False, passthrough_columns=())
    assert tuple(config.image_size) == (64, 128)  # the crop is square: sizes are free at training time
    settings = {"train_batch_size": 2, "report_to": None, "validation_steps": 0, "checkpointing_steps": 0,
                "logging_steps": 1, "ema_decay": 0.5, "ema_bn_batches": 2, "adam_beta2": 0.999}
    args = TrainingArguments(output_dir=str(output_dir), max_train_steps=steps, **{**settings, **overrides})
    trainer = GANTrainer(module, args, rows.select(range(5)), transform.apply)
    losses: dict[int, dict] = {}
    after_step = trainer._after_step

    def record(logs: dict[str, torch.Tensor], progress) -> None:
        losses[trainer.counter.step] = {k: v.detach().clone() for k, v in logs.items()}
        if records is not None:
            records[trainer.counter.step] = {k: v.clone() for k, v in trainer.generator.state_dict().items()}
        after_step(logs, progress)

    trainer._after_step = record
    trainer.train()
    return trainer, losses


def test_resume_is_bit_identical_and_the_ema_covers_buffers(tmp_path: Path, cityscapes: str,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    recomputed = []
    original_recompute = trainer_module.with_recomputed_batchnorm

    def spy(model, batches, forward):
        result = original_recompute(model, batches, forward)
        recomputed.append((model, {k: v.clone() for k, v in result.state_dict().items()}))
        return result

    monkeypatch.setattr(trainer_module, "with_recomputed_batchnorm", spy)
    generator_states: dict[int, dict] = {}
    straight, straight_losses = run(tmp_path / "straight", cityscapes, 5, records=generator_states)
    run(tmp_path / "resumed", cityscapes, 3, checkpointing_steps=3)
    torch.manual_seed(1234)
    resumed, resumed_losses = run(tmp_path / "resumed", cityscapes, 5, resume_from_checkpoint="latest")

    assert sorted(resumed_losses) == [4, 5] and set(resumed_losses[4]) == {"G_adv", "D_fake", "D_real", "D_LM"}
    for step in resumed_losses:
        for name, value in resumed_losses[step].items():
            assert torch.equal(value, straight_losses[step][name]), (step, name)
    for a, b in ((straight.generator, resumed.generator), (straight.discriminator, resumed.discriminator),
                 (straight.ema, resumed.ema)):
        expected, got = a.state_dict(), b.state_dict()
        assert got.keys() == expected.keys() and all(torch.equal(got[k], expected[k]) for k in got)

    # EMA of weights and buffers (BatchNorm statistics, spectral-norm vectors): the first step copies, then
    # ema <- 0.5 ema + 0.5 G after every step.
    expected = dict(generator_states[1])
    for step in range(2, 6):
        expected = {k: v.lerp(generator_states[step][k], 0.5) if v.is_floating_point() else v
                    for k, v in expected.items()}
    ema = straight.ema.module.state_dict()
    buffers = [k for k in ema if k.endswith(("running_mean", "running_var", "._u", "._v"))]
    assert any(k.endswith("running_var") for k in buffers) and any(k.endswith("._u") for k in buffers)
    for key in [*buffers, "generator.fc.weight"]:
        assert torch.allclose(ema[key], expected[key], rtol=1e-5, atol=1e-6), key
        assert not torch.equal(ema[key], generator_states[5][key]), key

    # Before saving, the EMA copy's BatchNorm statistics were re-estimated: the saved model holds those.
    model, state = recomputed[0]  # the straight run's final save
    assert model is straight.ema.module
    saved = OASISModel.from_pretrained(tmp_path / "straight").state_dict()
    assert all(torch.equal(saved[k], state[k]) for k in saved)
    norms = [k for k in saved if k.endswith("running_mean")]
    assert norms and not any(torch.equal(saved[k], ema[k]) for k in norms)
