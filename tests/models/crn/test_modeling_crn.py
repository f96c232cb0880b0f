import pytest
import torch
import torch.nn.functional as F
from helpers import randomize_weights

from labelsynth import CRNConfig, CRNModel
from labelsynth.label_spaces import cityscapes_label_to_trainid
from labelsynth.models.crn import CRN_PRESETS
from labelsynth.models.crn.modeling_crn import label_pyramid


def tiny_config(**overrides) -> CRNConfig:
    return CRNConfig(**{"module_channels": [16, 16, 8], "num_outputs": 3, "image_size": (16, 32), **overrides})


def tiny_model(seed: int = 0, **overrides) -> CRNModel:
    model = CRNModel(tiny_config(**overrides)).eval()
    randomize_weights(model, seed)
    return model


def random_labels(batch: int = 2, size: tuple[int, int] = (16, 32), seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 35, (batch, *size), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("preset, expected", [("cityscapes-256p", 97_875_483), ("gta-256p", 97_875_483),
                                              ("cityscapes-512p", 98_622_851), ("cityscapes-1024p", 98_674_531)])
def test_parameter_counts_equal_the_released_checkpoints(preset, expected):
    with torch.device("meta"):
        model = CRNModel(CRNConfig.for_dataset(preset))
    assert sum(p.numel() for p in model.parameters()) == expected


def test_presets_follow_the_original_widths():
    assert CRN_PRESETS["cityscapes-256p"]["module_channels"] == (1024,) * 5 + (512,) * 2
    config = CRNConfig.for_dataset("cityscapes-1024p")
    assert config.module_channels[-2:] == [128, 32] and config.image_size == [1024, 2048]
    assert config.image_size[0] // config.downsampling_factor == 4  # the coarsest module works at 4x8
    assert config.semantic_nc == 20
    assert CRNConfig.for_dataset("gta").to_dict() == CRNConfig.for_dataset("gta-256p").to_dict()
    with pytest.raises(ValueError, match="unknown CRN preset"):
        CRNConfig.for_dataset("ade20k")


def test_semantic_input_maps_label_ids_to_trainid_channels_and_void():
    model = tiny_model()
    ids = torch.arange(35).repeat(16 * 32 // 35 + 1)[: 16 * 32].view(1, 16, 32)
    semantics = model.build_semantic_input(ids)
    assert semantics.shape == (1, 20, 16, 32)
    assert torch.equal(semantics.sum(1), torch.ones(1, 16, 32))
    trainids = cityscapes_label_to_trainid(ids)
    expected = torch.where(trainids == 255, torch.full_like(trainids, 19), trainids)
    assert torch.equal(semantics.argmax(1), expected)
    assert semantics[0, :, ids[0] == 7].argmax(0).eq(0).all()  # road -> trainId 0
    assert semantics[0, 19, ids[0] == 0].eq(1).all()  # unlabeled -> void


def test_trainid_label_space_uses_the_dont_care_channel_as_void():
    model = tiny_model(label_space="cityscapes-trainid", label_nc=19, contain_dontcare_label=True,
                       label_to_channel=None)
    ids = torch.tensor([[[0, 18, 255, 5] * 8] * 16])
    semantics = model.build_semantic_input(ids)
    assert semantics.shape[1] == 20
    assert torch.equal(semantics.argmax(1)[0, 0, :4], torch.tensor([0, 18, 19, 5]))


def test_label_pyramid_is_the_area_average():
    semantics = F.one_hot(random_labels(1, (8, 16)), 35).permute(0, 3, 1, 2).float()
    pyramid = label_pyramid(semantics, 3)
    assert [tuple(p.shape[-2:]) for p in pyramid] == [(8, 16), (4, 8), (2, 4)]
    # cell (0, 1) of the 2x4 level covers rows 0-3, columns 4-7 of the full map
    assert torch.allclose(pyramid[2][0, :, 0, 1], semantics[0, :, 0:4, 4:8].mean(dim=(1, 2)))
    assert torch.allclose(pyramid[2].sum(1), torch.ones(1, 2, 4))


def test_forward_returns_k_candidates_and_the_selected_image():
    model = tiny_model()
    labels = random_labels()
    with torch.no_grad():
        out = model(labels, output_index=torch.tensor([2, 1]))
    assert out.candidates.shape == (2, 3, 3, 16, 32)
    assert out.images.shape == (2, 3, 16, 32)
    assert out.output_index.tolist() == [2, 1]
    assert torch.equal(out.images[0], out.candidates[0, 2].clamp(-1, 1))
    assert torch.equal(out.images[1], out.candidates[1, 1].clamp(-1, 1))
    assert not torch.allclose(out.candidates[:, 0], out.candidates[:, 1])  # k different images


def test_head_channels_are_colour_major_like_the_original():
    # The original splits its 27 head channels as colour c of image j = channel c * k + j.
    model = tiny_model()
    labels = random_labels(1)
    with torch.no_grad():
        out = model(labels)
        features = {}
        model.generator.head.register_forward_hook(lambda m, i, o: features.setdefault("head", o))
        model(labels)
    head = features["head"][0]
    for j in range(3):
        for c in range(3):
            assert torch.equal(out.candidates[0, j, c], head[c * 3 + j])


def test_output_index_default_and_generator_choice():
    model = tiny_model()
    labels = random_labels(4)
    with torch.no_grad():
        assert model(labels).output_index.tolist() == [0, 0, 0, 0]
        a = model(labels, generator=torch.Generator().manual_seed(3)).output_index
        b = model(labels, generator=torch.Generator().manual_seed(3)).output_index
        picks = {tuple(model(labels, generator=torch.Generator().manual_seed(s)).output_index.tolist())
                 for s in range(6)}
    assert torch.equal(a, b)
    assert len(picks) > 1


def test_return_tuple_and_save_load_roundtrip(tmp_path):
    model = tiny_model()
    labels = random_labels()
    model.save_pretrained(tmp_path)
    loaded = CRNModel.from_pretrained(tmp_path)
    assert loaded.config.label_to_channel == model.config.label_to_channel
    with torch.no_grad():
        images, candidates, index = model(labels, return_dict=False)
        assert torch.equal(loaded(labels).candidates, candidates)
    assert torch.equal(images, candidates[:, 0].clamp(-1, 1)) and index.tolist() == [0, 0]
    assert (tmp_path / "README.md").read_text().count("CRN") > 0


def test_other_sizes_divisible_by_the_pyramid_work():
    model = tiny_model()
    with torch.no_grad():
        assert model(random_labels(1, (8, 8))).images.shape == (1, 3, 8, 8)


@pytest.mark.parametrize("call, message", [
    (lambda m: m(random_labels(1, (18, 32))), "divisible by 4"),
    (lambda m: m(random_labels(1), output_index=3), r"0\.\.2"),
    (lambda m: m(random_labels(2), output_index=[0, 1, 2]), "one per label map"),
    (lambda m: m(torch.full((1, 16, 32), 40)), "outside the model's label range"),
    (lambda m: m.build_semantic_input(random_labels(1), instance_map=random_labels(1)), "no instance map"),
])
def test_bad_inputs_raise_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call(tiny_model())


@pytest.mark.parametrize("overrides, message", [
    ({"image_size": (18, 32)}, "divisible by 2\\*\\*2"),
    ({"label_to_channel": [0, 1, 2]}, "one channel per id"),
    ({"use_instance_edges": True}, "no instance map"),
    ({"num_outputs": 0}, "num_outputs"),
])
def test_config_validation(overrides, message):
    with pytest.raises(ValueError, match=message):
        tiny_config(**overrides)


def test_bfloat16_model_runs_close_to_float32():
    model = tiny_model()
    labels = random_labels(1)
    with torch.no_grad():
        reference = model(labels).candidates
        low = model.to(torch.bfloat16)(labels).candidates
    assert low.dtype == torch.bfloat16
    assert (low.float() - reference).abs().max() < 0.1 * reference.abs().max()
