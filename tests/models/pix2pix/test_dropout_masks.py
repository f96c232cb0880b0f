"""pix2pix's test-time dropout as an explicit input: `dropout_masks=`, `sample_dropout_masks`, order and errors."""

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from labelsynth import LabelMapProcessor, Pix2PixConfig, Pix2PixModel
from labelsynth.models.pix2pix.modeling_pix2pix import _normalize

TINY = {"ngf": 8, "ndf": 8, "num_downs": 7, "image_size": (128, 128)}  # 7 levels: dropout on levels 5 and 4


def tiny(seed: int = 0, **overrides) -> Pix2PixModel:
    torch.manual_seed(seed)
    return Pix2PixModel(Pix2PixConfig.for_dataset("cityscapes", **{**TINY, **overrides})).eval()


def labels(batch: int = 2, size: tuple[int, int] = (128, 128), seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 35, (batch, *size), generator=torch.Generator().manual_seed(seed))


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def torch_dropout_forward(model: Pix2PixModel, label_map: torch.Tensor) -> torch.Tensor:
    """The U-Net in the original test mode with torch's own dropout (`F.dropout(training=True)`, global RNG), as the
    original's `nn.Dropout` layers run it."""
    levels = model.generator.levels
    x, skips = model.label_input(label_map), []
    for k, level in enumerate(levels):
        x = level.down(F.leaky_relu(x, 0.2) if k else x, True)
        skips.append(x)
    x = skips.pop()
    for k in reversed(range(len(levels))):
        if k < len(levels) - 1:
            x = torch.cat([skips.pop(), x], dim=1)
        x = _normalize(levels[k].up_norm, levels[k].up_conv(F.relu(x)), True)
        if levels[k].dropout:
            x = F.dropout(x, 0.5, training=True)
    return torch.tanh(x)


def test_generator_path_equals_the_masks_sample_dropout_masks_draws() -> None:
    model, ids = tiny(), labels()
    with torch.no_grad():
        drawn = model(ids, generator=seeded(3)).images
        masks = model.sample_dropout_masks(2, generator=seeded(3))
        explicit = model(ids, dropout_masks=masks).images
        with_other_generator = model(ids, dropout_masks=masks, generator=seeded(4)).images  # the masks win
    assert torch.equal(explicit, drawn) and torch.equal(with_other_generator, drawn)
    assert all(mask.dtype == torch.bool for mask in masks.values())
    assert {name: tuple(mask.shape) for name, mask in masks.items()} == {"levels.5": (2, 64, 4, 4),
                                                                        "levels.4": (2, 64, 8, 8)}


def test_masks_are_torch_dropouts_in_the_original_order() -> None:
    """Same seed, same images as running torch's dropout at every dropout level, innermost first (the original's
    draws), with the global RNG or a generator seeded alike."""
    model, ids = tiny(), labels(size=(128, 256))
    with torch.no_grad():
        torch.manual_seed(11)
        reference = torch_dropout_forward(model, ids)
        torch.manual_seed(11)
        global_rng = model(ids).images
        generator = model(ids, generator=seeded(11)).images
    assert torch.equal(global_rng, reference) and torch.equal(generator, reference)


def test_masks_drive_the_output() -> None:
    model, ids = tiny(), labels()
    masks_a = model.sample_dropout_masks(2, generator=seeded(1))
    masks_b = model.sample_dropout_masks(2, generator=seeded(2))
    one_level = {**masks_a, "levels.4": masks_b["levels.4"]}
    as_floats = {name: mask.float() for name, mask in masks_a.items()}
    keep_all = {name: torch.ones_like(mask) for name, mask in masks_a.items()}
    with torch.no_grad():
        a, b, edited, floats, kept = (model(ids, dropout_masks=m).images
                                      for m in (masks_a, masks_b, one_level, as_floats, keep_all))
        with_dropout_off = tiny(use_dropout=False)(ids).images  # same weights, no dropout layers
    assert (a - b).abs().max() > 1e-2
    assert (a - edited).abs().max() > 1e-3  # one level's mask alone changes the image
    assert torch.equal(floats, a)  # 0/1 float masks mean the same as bool masks
    # Keeping everything doubles the dropout levels' outputs (the 1 / (1 - p) scale): not the same as no dropout.
    assert (kept - with_dropout_off).abs().max() > 1e-3


def test_training_mode_takes_masks_too() -> None:
    model, ids = tiny().train(), labels()
    masks = model.sample_dropout_masks(2, generator=seeded(5))
    drawn = model(ids, generator=seeded(5)).images
    explicit = model(ids, dropout_masks=masks).images
    assert torch.equal(explicit, drawn)
    explicit.mean().backward()
    assert model.generator.levels[0].down_conv.weight.grad is not None


def test_batch_semantics() -> None:
    """Row b of every mask is image b's; a batch-1 set is shared by every image. InstanceNorm: no batch coupling."""
    model, ids = tiny(norm="instance"), labels()
    first = model.sample_dropout_masks(1, generator=seeded(5))
    second = model.sample_dropout_masks(1, generator=seeded(6))
    with torch.no_grad():
        batched = model(ids, dropout_masks={name: torch.cat([first[name], second[name]]) for name in first}).images
        alone = [model(ids[i:i + 1], dropout_masks=masks).images for i, masks in enumerate((first, second))]
        shared = model(ids, dropout_masks=first).images
        expanded = model(ids, dropout_masks={name: m.expand(2, -1, -1, -1) for name, m in first.items()}).images
    torch.testing.assert_close(batched, torch.cat(alone), atol=1e-5, rtol=0)
    assert torch.equal(shared, expanded)
    assert (shared[1] - batched[1]).abs().max() > 1e-3


def test_masks_are_refused_where_no_dropout_runs() -> None:
    model, ids = tiny(), labels()
    masks = model.sample_dropout_masks(2)
    with pytest.raises(ValueError, match="test_mode='eval', which has no dropout"):
        model(ids, test_mode="eval", dropout_masks=masks)
    with pytest.raises(ValueError, match="test_mode='eval', which has no dropout"):
        tiny(test_mode="eval")(ids, dropout_masks=masks)
    no_dropout = tiny(use_dropout=False)
    assert no_dropout.sample_dropout_masks(2) == {} and no_dropout.dropout_mask_shapes() == {}
    with pytest.raises(ValueError, match="no dropout \\(use_dropout=False\\)"):
        no_dropout(ids, dropout_masks=masks)


def test_bad_masks_raise_clear_errors() -> None:
    model, ids = tiny(), labels()
    masks = model.sample_dropout_masks(2)

    def run(value):
        with torch.no_grad():
            return model(ids, dropout_masks=value)

    with pytest.raises(ValueError, match=r"one mask for each of \['levels.5', 'levels.4'\]; missing "
                                         r"\['levels.4'\], unexpected \[\]"):
        run({"levels.5": masks["levels.5"]})
    with pytest.raises(ValueError, match=r"unexpected \['levels.3'\]"):
        run({**masks, "levels.3": masks["levels.4"]})
    with pytest.raises(ValueError, match=r"dropout_masks\['levels.4'\] has shape \(2, 64, 4, 4\); .* needs "
                                         r"\[2, 64, 8, 8\] \(or \[1, 64, 8, 8\], shared by every image\)"):
        run({**masks, "levels.4": masks["levels.5"]})
    with pytest.raises(ValueError, match=r"\[2, 64, 4, 4\]"):
        run({**masks, "levels.5": torch.cat([masks["levels.5"]] * 2)})  # batch 4 for 2 label maps
    with pytest.raises(ValueError, match="only 0 and 1"):
        run({**masks, "levels.5": masks["levels.5"].float() * 0.5})
    with pytest.raises(TypeError, match="dropout_masks must be a dict"):
        run(list(masks.values()))
    with pytest.raises(ValueError, match="divisible by 128"):
        model.sample_dropout_masks(1, (96, 128))
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        model.sample_dropout_masks(-1)


def test_pipeline_takes_dropout_masks(tmp_path: Path) -> None:
    from transformers import pipeline

    import labelsynth  # noqa: F401  (registers the pipeline task)

    model = tiny()
    model.save_pretrained(tmp_path)
    LabelMapProcessor(label_space="cityscapes", size=128).save_pretrained(tmp_path)
    pipe = pipeline("label-to-image", model=str(tmp_path))
    label_png = labels(1)[0].numpy().astype(np.uint8)
    masks = [model.sample_dropout_masks(1, generator=seeded(s)) for s in (5, 6)]
    seeded_image = np.asarray(pipe(label_png, seed=5))
    np.testing.assert_array_equal(np.asarray(pipe(label_png, dropout_masks=masks[0])), seeded_image)
    np.testing.assert_array_equal(np.asarray(pipe(label_png, dropout_masks=masks[0], seed=9)), seeded_image)
    # A list of label maps takes one mask set per map (item i of `seed=5` uses seed 5 + i).
    batch = pipe([label_png, label_png], dropout_masks=masks)
    np.testing.assert_array_equal(np.asarray(batch[0]), seeded_image)
    np.testing.assert_array_equal(np.asarray(batch[1]), np.asarray(pipe(label_png, seed=6)))
    with pytest.raises(ValueError, match="test_mode='eval'"):
        pipe(label_png, dropout_masks=masks[0], test_mode="eval")
