"""pix2pixHD model: configuration, shapes, parameter counts, instance pooling, feature bank, errors, pipeline."""

from pathlib import Path

import pytest
import torch
from helpers import randomize_weights
from transformers import pipeline

from labelsynth import LabelMapProcessor, Pix2PixHDConfig, Pix2PixHDDiscriminator, Pix2PixHDModel
from labelsynth.models.pix2pixhd.modeling_pix2pixhd import instance_average_pool

TINY = {"image_size": (32, 64), "ngf": 4, "n_downsample_global": 2, "n_blocks_global": 1, "n_blocks_local": 1,
        "nef": 4, "n_downsample_e": 2, "ndf": 4, "n_clusters": 3}


def tiny(**overrides) -> Pix2PixHDModel:
    model = Pix2PixHDModel(Pix2PixHDConfig(**{**TINY, **overrides})).eval()
    randomize_weights(model)
    return model


def street(batch: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """A Cityscapes-like label map (road, sky, two cars) and its instance map (cars 26000 / 26001)."""
    label = torch.full((batch, 32, 64), 7)  # road
    label[:, :12] = 23  # sky
    label[:, 14:26, 6:20] = 26
    label[:, 14:26, 36:56] = 26
    instance = label.clone()
    instance[:, 14:26, 6:20] = 26000
    instance[:, 14:26, 36:56] = 26001
    return label, instance


def with_bank(model: Pix2PixHDModel) -> Pix2PixHDModel:
    generator = torch.Generator().manual_seed(0)
    model.set_feature_clusters({label: torch.randn(3, model.config.feat_num, generator=generator) * 2
                                for label in (7, 23, 26)})
    return model


@pytest.mark.parametrize("preset, component, expected", [
    ("cityscapes-512p", "generator", 182_546_755),
    ("cityscapes-1024p", "generator", 182_857_059),
    ("cityscapes-512p-feat", "generator", 182_556_163),
    ("cityscapes-512p-feat", "encoder", 788_803),
])
def test_parameter_counts_equal_the_originals(preset: str, component: str, expected: int) -> None:
    with torch.device("meta"):
        model = Pix2PixHDModel(Pix2PixHDConfig.for_dataset(preset))
    assert sum(p.numel() for p in getattr(model, component).parameters()) == expected


@pytest.mark.parametrize("num_d, expected", [(2, 5_603_202), (3, 8_404_803)])
def test_discriminator_parameter_counts_equal_the_originals(num_d: int, expected: int) -> None:
    with torch.device("meta"):
        netd = Pix2PixHDDiscriminator(Pix2PixHDConfig.for_dataset("cityscapes-512p", num_d=num_d))
    assert sum(p.numel() for p in netd.parameters()) == expected


def test_config_validation_and_presets() -> None:
    config = Pix2PixHDConfig.for_dataset("cityscapes")
    assert config.generator_type == "local" and config.global_ngf == 64 and config.size_divisor == 32
    assert config.semantic_nc == 36 and config.generator_input_nc == 36
    assert Pix2PixHDConfig(feature_mode="instance").generator_input_nc == 39
    with pytest.raises(ValueError, match="divisible by 32"):
        Pix2PixHDConfig.for_dataset("cityscapes-1024p", image_size=(1000, 2000))
    with pytest.raises(ValueError, match="generator_type"):
        Pix2PixHDConfig(generator_type="unet")
    with pytest.raises(ValueError, match="unknown pix2pixHD preset"):
        Pix2PixHDConfig.for_dataset("ade20k")


@pytest.mark.parametrize("generator_type", ["global", "local"])
def test_forward_shapes_and_input_dependence(generator_type: str) -> None:
    model = tiny(generator_type=generator_type)
    label, instance = street(2)
    with torch.no_grad():
        images = model(label, instance).images
        moved = instance.clone()
        moved[:, 14:26, 6:20] = 26005  # same classes, different instance id: edges unchanged, output unchanged
        same = model(label, moved).images
        split = instance.clone()
        split[:, 14:26, 13:20] = 26009  # a new boundary inside the first car
        changed = model(label, split).images
    assert images.shape == (2, 3, 32, 64) and images.abs().max() <= 1
    assert torch.equal(images, same)
    assert (changed - images).abs().max() > 1e-3


def test_clear_errors() -> None:
    model = tiny()
    label, instance = street()
    with pytest.raises(ValueError, match="divisible by 4"):
        model(label[:, :30], instance[:, :30])
    with pytest.raises(ValueError, match="needs an instance_map"):
        model(label)
    with pytest.raises(ValueError, match="outside the model's label range"):
        model(label + 40, instance)
    with pytest.raises(ValueError, match="no feature encoder"):
        model(label, instance, cluster=0)
    featured = tiny(feature_mode="instance")
    with pytest.raises(ValueError, match="feature bank is empty"):
        featured(label, instance)
    with pytest.raises(ValueError, match="features must have shape"):
        featured(label, instance, features=torch.zeros(1, 2, 32, 64))


def test_instance_average_pool_matches_a_per_instance_mean() -> None:
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(2, 3, 8, 8, generator=generator, requires_grad=True)
    segments = torch.randint(0, 4, (2, 8, 8), generator=generator) * 1000
    pooled = instance_average_pool(features, segments)
    for b in range(2):
        for value in segments[b].unique():
            mask = segments[b] == value
            expected = features[b][:, mask].mean(dim=1)
            assert torch.allclose(pooled[b][:, mask], expected[:, None].expand(-1, int(mask.sum())), atol=1e-6)
    pooled.sum().backward()  # the encoder trains through the pooling
    assert torch.allclose(features.grad, torch.ones_like(features))


def test_feature_bank_sampling_is_seeded_and_cluster_picks_one_centre() -> None:
    model = with_bank(tiny(feature_mode="instance"))
    label, instance = street()
    cars = model.feature_clusters[26]

    def features(**kwargs) -> torch.Tensor:
        with torch.no_grad():
            return model(label, instance, **kwargs).features

    assert torch.equal(features(generator=torch.Generator().manual_seed(1)),
                       features(generator=torch.Generator().manual_seed(1)))
    chosen = features(cluster={26001: 2, 26: 1, 7: 0, 23: 0})
    assert torch.equal(chosen[0, :, 20, 40], cars[2])  # the instance id wins over its class id
    assert torch.equal(chosen[0, :, 20, 10], cars[1])
    assert torch.equal(chosen[0, :, 30, 0], model.feature_clusters[7, 0])
    everyone = features(cluster=1)
    assert torch.equal(everyone[0, :, 0, 0], model.feature_clusters[23, 1])
    with pytest.raises(ValueError, match="holds 3 cluster"):
        features(cluster={26000: 3})
    label[:, 28:] = 8  # sidewalk: no clusters in the bank -> zero features
    instance[:, 28:] = 8
    assert torch.equal(features(cluster=0)[0, :, 30, 0], torch.zeros(3))


def test_style_image_and_explicit_features() -> None:
    model = with_bank(tiny(feature_mode="instance"))
    label, instance = street()
    image = torch.rand(1, 3, 32, 64) * 2 - 1
    with torch.no_grad():
        encoded = model(label, instance, style_image=image)
        again = model(label, instance, features=encoded.features[0])  # [C, H, W] gets a batch dimension
    assert torch.equal(encoded.features, model.encode_features(image, instance))
    assert torch.equal(encoded.images, again.images)
    assert encoded.features[0, :, 15, 7].tolist() == encoded.features[0, :, 25, 19].tolist()  # constant per car


def test_label_feature_mode_pools_over_label_regions() -> None:
    model = tiny(feature_mode="label")
    label, instance = street()
    image = torch.rand(1, 3, 32, 64) * 2 - 1
    with torch.no_grad():
        features = model(label, instance, style_image=image).features
    assert torch.equal(features[0, :, 20, 10], features[0, :, 20, 40])  # both cars share the "car" region


def test_save_and_load_keeps_the_feature_bank(tmp_path: Path) -> None:
    model = with_bank(tiny(feature_mode="instance", generator_type="local"))
    model.save_pretrained(tmp_path)
    loaded = Pix2PixHDModel.from_pretrained(tmp_path)
    assert {k: v.tolist() for k, v in loaded.feature_bank().items()} == \
           {k: v.tolist() for k, v in model.feature_bank().items()}
    label, instance = street()
    with torch.no_grad():
        assert torch.equal(loaded(label, instance, cluster=2).images, model(label, instance, cluster=2).images)


def test_bfloat16_generation_stays_close() -> None:
    model = tiny(generator_type="local")
    label, instance = street()
    with torch.no_grad():
        reference = model(label, instance).images
        low = model.to(torch.bfloat16)(label, instance).images
    assert low.dtype == torch.bfloat16 and (low.float() - reference).abs().mean() < 0.05


def test_discriminator_returns_every_stage_per_scale() -> None:
    config = Pix2PixHDConfig(**TINY, num_d=3, n_layers_d=2)
    netd = Pix2PixHDDiscriminator(config)
    outputs = netd(torch.zeros(2, config.semantic_nc, 32, 64), torch.zeros(2, 3, 32, 64))
    assert len(outputs) == 3 and all(len(scale) == config.n_layers_d + 2 for scale in outputs)
    assert outputs[0][-1].shape[-1] > outputs[1][-1].shape[-1] > outputs[2][-1].shape[-1]  # full resolution first


def test_pipeline_with_instances_clusters_and_features(tmp_path: Path) -> None:
    model = with_bank(tiny(feature_mode="instance"))
    model.save_pretrained(tmp_path)
    LabelMapProcessor(label_space="cityscapes", size={"height": 32, "width": 64}).save_pretrained(tmp_path)
    pipe = pipeline("label-to-image", model=str(tmp_path))
    label, instance = street()
    label_np, instance_np = label[0].numpy().astype("uint8"), instance[0].numpy().astype("int32")
    first = pipe(label_np, instance_map=instance_np, seed=3, output_type="pt")
    assert torch.equal(first, pipe(label_np, instance_map=instance_np, seed=3, output_type="pt"))
    picked = [pipe(label_np, instance_map=instance_np, cluster={26000: k}, seed=0, output_type="pt") for k in (0, 1)]
    assert (picked[0] - picked[1]).abs().max() > 1e-3
    with torch.no_grad():
        direct = model(label, instance, cluster=0).images
    via_pipe = pipe(label_np, instance_map=instance_np, cluster=0, output_type="pt")
    assert torch.allclose(via_pipe, (direct[0] + 1) / 2, atol=1e-6)
    features = torch.zeros(3, 32, 64)
    assert pipe(label_np, instance_map=instance_np, features=features, output_type="pt").shape == (3, 32, 64)
