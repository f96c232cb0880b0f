"""`ControlNetSegPipeline` on tiny random SD + ControlNet: equal to diffusers called directly, batch and seed
semantics, palette images, routing through `labelsynth.pipeline`, errors."""

import numpy as np
import PIL.Image
import pytest
import torch

from labelsynth import pipeline
from labelsynth.diffusion import ControlNetSegPipeline, find_controlnet
from labelsynth.examples import BUILTIN_MODEL
from labelsynth.label_spaces import get_label_space

STEPS = 2


def _street(height: int = 32, width: int = 32) -> np.ndarray:
    """A Cityscapes labelIds map: sky, building, vegetation, road, a car, unlabeled and train pixels."""
    cs = get_label_space("cityscapes").label2id
    ids = np.full((height, width), cs["sky"], np.int64)
    ids[height // 4:, : width // 2] = cs["building"]
    ids[height // 4:, width // 2:] = cs["vegetation"]
    ids[height // 2:] = cs["road"]
    ids[-height // 4:, 4:12] = cs["car"]
    ids[-2:, -4:] = cs["unlabeled"]
    ids[-6:-3, -4:] = cs["train"]  # no ADE20K counterpart
    return ids


def _expected_control(ids_cityscapes: np.ndarray, scale: int) -> PIL.Image.Image:
    """The ADE20K control image written out by hand: class colours from the Color150 table, black for unmapped."""
    cs = get_label_space("cityscapes").label2id
    colours = {
        cs["sky"]: (6, 230, 230), cs["building"]: (180, 120, 120), cs["vegetation"]: (4, 200, 3),
        cs["road"]: (140, 140, 140), cs["car"]: (0, 102, 200), cs["unlabeled"]: (0, 0, 0), cs["train"]: (0, 0, 0),
    }
    rgb = np.zeros(ids_cityscapes.shape + (3,), np.uint8)
    for value, colour in colours.items():
        rgb[ids_cityscapes == value] = colour
    return PIL.Image.fromarray(rgb.repeat(scale, 0).repeat(scale, 1))


@pytest.fixture(scope="module")
def pipe(tiny_sd) -> ControlNetSegPipeline:
    return pipeline("label-to-image", model=str(tiny_sd["pipeline"]), progress_bar=False)


def test_routing_returns_the_diffusion_pipeline(pipe, tiny_sd) -> None:
    assert isinstance(pipe, ControlNetSegPipeline)
    assert pipe.palette.name == "ade20k" and pipe.image_processor.size == {"height": 64, "width": 64}
    assert find_controlnet(tiny_sd["controlnet"]).kind == "controlnet"
    assert find_controlnet(tiny_sd["base"]) is None  # SD without a ControlNet
    assert find_controlnet(BUILTIN_MODEL) is None  # a labelsynth GAN folder


def test_equals_diffusers_called_directly(pipe, tiny_sd) -> None:
    from diffusers import StableDiffusionControlNetPipeline

    ids = _street()
    settings = {"num_inference_steps": STEPS, "guidance_scale": 6.0, "controlnet_conditioning_scale": 0.7,
                "negative_prompt": "blurry"}
    ours = pipe(ids, label_space="cityscapes", prompt="a street", seed=3, **settings)
    ours_pt = pipe(ids, label_space="cityscapes", prompt="a street", seed=3, output_type="pt", **settings)

    reference = StableDiffusionControlNetPipeline.from_pretrained(tiny_sd["pipeline"])
    reference.set_progress_bar_config(disable=True)
    control = _expected_control(ids, 2)  # the 32x32 map, nearest-resized to the 64x64 output
    direct = reference(prompt="a street", image=control, generator=torch.Generator().manual_seed(3), **settings)
    direct_pt = reference(prompt="a street", image=control, generator=torch.Generator().manual_seed(3),
                          output_type="pt", **settings)
    assert isinstance(ours, PIL.Image.Image) and ours.size == (64, 64)
    assert np.array_equal(np.asarray(ours), np.asarray(direct.images[0]))
    assert torch.equal(ours_pt, direct_pt.images[0])


def test_bare_controlnet_with_base_model_equals_the_pipeline_folder(pipe, tiny_sd) -> None:
    bare = pipeline("label-to-image", model=str(tiny_sd["controlnet"]), base_model=str(tiny_sd["base"]),
                    progress_bar=False)
    ids = _street()
    kwargs = {"label_space": "cityscapes", "seed": 0, "num_inference_steps": STEPS, "output_type": "np"}
    assert np.array_equal(bare(ids, **kwargs), pipe(ids, **kwargs))
    with pytest.raises(ValueError, match="base_model="):
        pipeline("label-to-image", model=str(tiny_sd["controlnet"]))


def test_batch_item_i_uses_seed_plus_i(pipe) -> None:
    a, b = _street(), np.flipud(_street()).copy()
    kwargs = {"label_space": "cityscapes", "num_inference_steps": STEPS, "output_type": "np"}
    batch = pipe([a, b], seed=10, **kwargs)
    assert isinstance(batch, list) and len(batch) == 2
    assert np.array_equal(batch[0], pipe(a, seed=10, **kwargs))
    assert np.array_equal(batch[1], pipe(b, seed=11, **kwargs))
    assert not np.array_equal(pipe(a, seed=11, **kwargs), batch[0])  # the seed matters
    prompts = pipe([a, a], seed=10, prompt=["a street", "a forest"], **kwargs)
    assert not np.array_equal(prompts[0], prompts[1])  # one prompt per item


def test_control_images_are_exact(pipe) -> None:
    ids = _street()
    control = np.asarray(pipe.control_image(ids, label_space="cityscapes"))
    assert np.array_equal(control, np.asarray(_expected_control(ids, 2)))
    # road and skyscraper share ADE20K's duplicated colour (140, 140, 140): both are painted with it
    ade = get_label_space("ade20k").label2id
    two = np.array([[ade["road"], ade["skyscraper"], 0]] * 4)
    colours = np.asarray(pipe.control_image(two, size=(8, 24)))
    assert colours[0, 0].tolist() == colours[0, 8].tolist() == [140, 140, 140]
    assert colours[0, 16].tolist() == [0, 0, 0]  # "other"
    # a colour-coded Cityscapes map (its own palette) gives the same control image as its ids
    rgb = PIL.Image.fromarray(get_label_space("cityscapes").colorize(np.where(ids == 0, 7, ids)))
    via_rgb = np.asarray(pipe.control_image(rgb, label_space="cityscapes"))
    assert np.array_equal(via_rgb, np.asarray(_expected_control(np.where(ids == 0, 7, ids), 2)))


def test_coco_panoptic_protocol(tiny_sd) -> None:
    coco = pipeline("label-to-image", model=str(tiny_sd["pipeline"]), palette="coco-panoptic",
                    label_space="coco-stuff", progress_bar=False)
    cs = get_label_space("coco-stuff").label2id
    ids = np.array([[cs["bush"], cs["person"], cs["cloth"], 255]]).repeat(2, 0)
    control = np.asarray(coco.control_image(ids, size=(2, 4)))
    assert control[0].tolist() == [[107, 142, 35], [220, 20, 60], [0, 0, 0], [0, 0, 0]]


def test_default_prompt_names_the_mapped_classes_by_area(pipe) -> None:
    text = pipe.default_prompt(_street(), label_space="cityscapes")
    assert text.startswith("a photograph of road, ")
    assert "train" not in text and "unlabeled" not in text  # no counterpart in the ControlNet's palette
    assert pipe.default_prompt(np.zeros((8, 8), np.int64)) == "a photograph"  # only ADE20K "other"


def test_progress_callback_and_output_types(pipe) -> None:
    steps = []
    out = pipe(_street(), label_space="cityscapes", seed=0, num_inference_steps=STEPS, output_type="pt",
               callback=lambda step, total: steps.append((step, total)))
    assert steps == [(1, STEPS), (2, STEPS)]
    assert out.shape == (3, 64, 64) and out.dtype == torch.float32 and 0 <= out.min() and out.max() <= 1


def test_errors_are_clear(pipe) -> None:
    with pytest.raises(ValueError, match="no class mapping from label space 'celebamask-hq'"):
        pipe(np.zeros((8, 8), np.int64), label_space="celebamask-hq")
    with pytest.raises(ValueError, match="multiple of 2"):
        pipe(_street(), label_space="cityscapes", height=63)
    with pytest.raises(ValueError, match="output_type"):
        pipe(_street(), label_space="cityscapes", output_type="jpeg")
    with pytest.raises(ValueError, match="label map: .*0..34"):
        pipe(np.full((8, 8), 99, np.int64), label_space="cityscapes")
    with pytest.raises(TypeError, match="set by the label-to-image pipeline"):
        pipe(_street(), label_space="cityscapes", latents=torch.zeros(1))
    with pytest.raises(ValueError, match="unknown scheduler"):
        ControlNetSegPipeline._make_scheduler("fast", {})
