"""pix2pix model: parameter counts, the colour / one-hot input, the two test modes, errors, save/load."""

from pathlib import Path

import numpy as np
import pytest
import torch

from labelsynth import LabelMapProcessor, Pix2PixConfig, Pix2PixDiscriminator, Pix2PixModel
from labelsynth.label_spaces import get_label_space
from labelsynth.metrics import psnr

TINY = dict(ngf=8, ndf=8, num_downs=6, image_size=(64, 64))  # 6 levels: the smallest U-Net with dropout


def tiny(preset: str = "cityscapes", seed: int = 0, **overrides) -> Pix2PixModel:
    torch.manual_seed(seed)
    return Pix2PixModel(Pix2PixConfig.for_dataset(preset, **{**TINY, **overrides})).eval()


def labels(batch: int = 2, size: int = 64, high: int = 35, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, high, (batch, size, size), generator=torch.Generator().manual_seed(seed))


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_parameter_counts_equal_the_originals() -> None:
    with torch.device("meta"):
        generator = Pix2PixModel(Pix2PixConfig.for_dataset("facades"))
        discriminator = Pix2PixDiscriminator(Pix2PixConfig.for_dataset("facades"))
        one_hot = Pix2PixModel(Pix2PixConfig.for_dataset("cityscapes", input_encoding="one_hot"))
        unet_128 = Pix2PixModel(Pix2PixConfig.for_dataset("facades", num_downs=7))
        instance = Pix2PixModel(Pix2PixConfig.for_dataset("facades", norm="instance"))
        instance_d = Pix2PixDiscriminator(Pix2PixConfig.for_dataset("facades", norm="instance"))
    assert count(generator) == 54_413_955  # unet_256, 3 -> 3, BatchNorm
    assert count(discriminator) == 2_768_705  # basic 70x70 PatchGAN on 6 channels
    assert count(one_hot) == 54_446_723  # 35 one-hot channels: only the first conv grows
    # Counted with the original classes too: unet_128, and InstanceNorm (biased convs, no norm parameters).
    assert (count(unet_128), count(instance), count(instance_d)) == (41_828_995, 54_409_603, 2_767_809)
    assert len(generator.state_dict()) == 82  # as the original file


def test_color_encoding_is_the_palette_rendering_in_minus_one_one() -> None:
    model = tiny()
    ids = labels()
    palette = get_label_space("cityscapes").colorize(ids.numpy())  # what a colour label PNG holds
    expected = torch.from_numpy(palette).permute(0, 3, 1, 2).float() / 127.5 - 1
    torch.testing.assert_close(model.label_input(ids), expected, rtol=0, atol=1e-6)
    one_hot = tiny(input_encoding="one_hot").label_input(ids)
    assert one_hot.shape == (2, 35, 64, 64) and torch.equal(one_hot.argmax(1), ids)


def test_ignore_pixels_get_the_ignore_colour_with_a_dontcare_label() -> None:
    model = tiny(label_space="cityscapes-trainid", label_nc=19, contain_dontcare_label=True)
    ids = labels(high=19)
    ids[:, :4] = 255
    rendered = model.label_input(ids)
    assert torch.equal(rendered[:, :, :4], torch.full_like(rendered[:, :, :4], -1.0))  # black ignore colour
    with pytest.raises(ValueError, match="outside the model's label range"):
        tiny().label_input(ids)  # no don't-care label: 255 is refused


def test_eval_mode_is_deterministic_and_uses_running_statistics() -> None:
    model = tiny(test_mode="eval")
    ids = labels()
    with torch.no_grad():
        first = model(ids, generator=torch.Generator().manual_seed(0)).images
        again = model(ids, generator=torch.Generator().manual_seed(1)).images
        alone = model(ids[:1]).images
    assert torch.equal(first, again)
    torch.testing.assert_close(alone, first[:1], rtol=0, atol=1e-5)  # no batch coupling


def test_original_test_mode_keeps_dropout_and_batch_statistics() -> None:
    model = tiny()  # test_mode="original" by default, as the original test.py
    ids = labels()
    buffers = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        seeded = [model(ids, generator=torch.Generator().manual_seed(s)).images for s in (0, 0, 1)]
        evaluated = model(ids, test_mode="eval").images
    assert torch.equal(seeded[0], seeded[1])
    assert not torch.equal(seeded[0], seeded[2])  # dropout masks come from the generator
    assert (seeded[0] - evaluated).abs().max() > 1e-3
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in buffers.items())  # running stats untouched

    no_dropout = tiny(use_dropout=False)
    with torch.no_grad():
        pair = no_dropout(ids).images
        alone = no_dropout(ids[:1]).images
    assert (pair[:1] - alone).abs().max() > 1e-4  # BatchNorm normalises with the batch's statistics


def test_training_mode_updates_batchnorm_statistics() -> None:
    model = tiny().train()
    before = model.generator.levels[1].down_norm.running_mean.clone()
    model(labels()).images.mean().backward()
    assert not torch.equal(before, model.generator.levels[1].down_norm.running_mean)
    assert model.generator.levels[0].down_conv.weight.grad is not None


def test_unet_256_maps_256x256_to_a_1x1_bottleneck() -> None:
    model = Pix2PixModel(Pix2PixConfig.for_dataset("facades", ngf=2)).eval()
    shapes = []
    hook = model.generator.levels[-1].down_conv.register_forward_hook(lambda m, i, o: shapes.append(o.shape))
    with torch.no_grad():
        images = model(labels(1, 256, 12), test_mode="eval").images
    hook.remove()
    assert shapes == [(1, 16, 1, 1)] and images.shape == (1, 3, 256, 256)
    assert images.abs().max() <= 1


def test_discriminator_gives_patch_logits() -> None:
    config = Pix2PixConfig.for_dataset("cityscapes", **TINY)
    netd = Pix2PixDiscriminator(config)
    model = Pix2PixModel(config)
    outputs = netd(model.label_input(labels()), torch.zeros(2, 3, 64, 64))
    assert len(outputs) == 1 and outputs[0][-1].shape == (2, 1, 6, 6)
    with torch.device("meta"):
        full = Pix2PixDiscriminator(Pix2PixConfig.for_dataset("facades"))
        logits = full(torch.zeros(1, 3, 256, 256), torch.zeros(1, 3, 256, 256))[0][-1]
    assert logits.shape == (1, 1, 30, 30)  # the 70x70 PatchGAN on 256x256


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (dict(num_downs=4), "num_downs must be >= 5"),
        (dict(image_size=(48, 48)), "must be divisible by 2\\*\\*num_downs = 64"),
        (dict(norm="group"), "norm must be one of"),
        (dict(test_mode="train"), "test_mode must be one of"),
        (dict(input_encoding="rgb"), "input_encoding must be one of"),
    ],
)
def test_bad_configs_are_explained(overrides: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Pix2PixConfig.for_dataset("facades", **{**TINY, **overrides})


def test_bad_inputs_are_explained() -> None:
    model = tiny()
    with pytest.raises(ValueError, match="needs sides divisible by 64"):
        model(labels(1, 96))
    with pytest.raises(ValueError, match="test_mode must be one of"):
        model(labels(), test_mode="deterministic")
    with pytest.raises(ValueError, match="label range 0..34"):
        model(labels(high=40))
    with pytest.raises(ValueError, match="has only 12 colours"):
        Pix2PixModel(Pix2PixConfig.for_dataset("facades", label_nc=20, **TINY))
    with pytest.raises(ValueError, match="unknown pix2pix preset"):
        Pix2PixConfig.for_dataset("ade20k")


def test_instance_edges_are_an_extra_input_channel() -> None:
    model = tiny(use_instance_edges=True)
    assert model.config.generator_input_nc == 4
    ids = labels()
    inputs = model.label_input(ids, instance_map=ids)
    assert inputs.shape == (2, 4, 64, 64) and set(inputs[:, 3].unique().tolist()) <= {0.0, 1.0}
    with pytest.raises(ValueError, match="needs an instance_map"):
        model(ids)


def test_bfloat16_follows_float32() -> None:
    model = tiny(test_mode="eval")
    ids = labels()
    with torch.no_grad():
        reference = model(ids).images
        half = model.to(torch.bfloat16)(ids).images
    assert half.dtype == torch.bfloat16
    assert float(psnr(half.float(), reference, data_range=2.0)) > 30


def test_save_load_and_pipeline(tmp_path: Path) -> None:
    from transformers import pipeline

    import labelsynth  # noqa: F401  (registers the pipeline task)

    model = tiny()
    model.save_pretrained(tmp_path)
    LabelMapProcessor(label_space="cityscapes", size=64).save_pretrained(tmp_path)
    loaded = Pix2PixModel.from_pretrained(tmp_path)
    assert not loaded.training and loaded.config.test_mode == "original"
    ids = labels(1)
    with torch.no_grad():
        expected = model(ids, generator=torch.Generator().manual_seed(3)).images
        assert torch.equal(loaded(ids, generator=torch.Generator().manual_seed(3)).images, expected)
    card = (tmp_path / "README.md").read_text()
    assert "pix2pix" in card and "bsd-2-clause" in card

    pipe = pipeline("label-to-image", model=str(tmp_path))
    label_png = ids[0].numpy().astype(np.uint8)
    same = [np.asarray(pipe(label_png, seed=s)) for s in (5, 5, 6)]
    assert same[0].shape == (64, 64, 3) and np.array_equal(same[0], same[1]) and not np.array_equal(same[0], same[2])
    evaluated = [np.asarray(pipe(label_png, seed=s, test_mode="eval")) for s in (5, 6)]
    assert np.array_equal(*evaluated)
    colour_png = get_label_space("cityscapes").colorize(label_png)  # a colour-coded label image works too
    assert np.array_equal(np.asarray(pipe(colour_png, seed=0, test_mode="eval")), evaluated[0])
