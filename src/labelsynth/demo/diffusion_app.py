"""The Gradio demo of a segmentation ControlNet (`build_demo` hands ControlNets here).

A label-map upload (index or colour PNG) in a chosen label space, the control image the ControlNet sees, a prompt
box prefilled with the class-name prompt of the map (editable; refilled when the map or its label space changes),
negative prompt, steps, guidance, ControlNet scale, seed and variations, with a progress bar over the denoising steps.

With a segmenter (``build_demo(..., segmenter=...)``), "Start from a photo": an uploaded photo is segmented into the
selected label space and its map replaces the label map (an index PNG: download it, edit it, upload it back);
"Generate from the photo" runs img2img with the photo as init image (resized to the output size with LANCZOS) and
the label map as control, with a strength slider.

API (``gradio_client``): ``/generate`` (label file, label space, prompt, negative prompt, steps, guidance,
ControlNet scale, seed, variations) -> (gallery, control image, status); ``/prompt`` (label file, label space) ->
(class-name prompt, control image). With a segmenter: ``/segment_photo`` (photo file, label space) -> (label map
file, class-name prompt, control image, init image) and ``/generate_from_photo`` (photo file, label file or None =
the photo's segmentation, label space, prompt, negative prompt, steps, guidance, ControlNet scale, strength, seed,
variations) -> (gallery, control image, status). Errors raise their message and change no input.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import PIL.Image

from ..diffusion.pipeline_controlnet_seg import DEFAULT_STRENGTH
from ..label_space_mappings import list_label_space_mappings
from .app import DEFAULT_MAX_INPUT_PIXELS, _open_checked
from .examples import default_examples

__all__ = ["build_diffusion_demo"]

_SEED_MAX = 2**63 - 1


def _spaces_for(pipe: Any) -> list[str]:
    """Label spaces the ControlNet's palette can be reached from (its own first)."""
    target = pipe.palette.space.name
    return [target] + sorted(source for source, to in list_label_space_mappings() if to == target)


def build_diffusion_demo(pipe: Any, *, title: str | None = None, description: str | None = None,
                         max_variations: int = 4, segmenter: Any = None) -> gr.Blocks:
    """Build the demo of a `labelsynth.diffusion.ControlNetSegPipeline`.

    Args:
        pipe: The loaded pipeline.
        title, description: Page title and markdown (defaults: the model's name; palette, size, licence note).
        max_variations: Upper bound of the "variations" slider.
        segmenter: Adds "Start from a photo" (img2img from an uploaded photo): a transformers segmenter (Hub id,
            folder, model) or callable (`labelsynth.segmentation.load_segmenter`).

    Raises:
        ValueError: the segmenter cannot be loaded or its classes cannot be mapped to the pipeline's label space.

    Returns:
        The queued `gr.Blocks`; call ``.launch()`` on it.
    """
    height, width = pipe.image_processor.size["height"], pipe.image_processor.size["width"]
    examples = default_examples(pipe.label_space, (height, width), count=1)
    first = str(examples[0].label) if examples else None
    name = pipe.name or "ControlNet"
    if description is None:
        description = (
            f"**Segmentation ControlNet** on Stable Diffusion · palette `{pipe.palette.name}` · {width}x{height} "
            "pixels · label maps of any listed label space are mapped to the palette by class name. Stable "
            "Diffusion weights: CreativeML OpenRAIL-M."
        )

    def refresh(label_path: str | None, space: str) -> tuple[str, Any]:
        if not label_path:
            return "", None
        try:
            return (pipe.default_prompt(label_path, label_space=space),
                    pipe.control_image(label_path, label_space=space))
        except ValueError as err:
            raise gr.Error(str(err)) from None

    def run(label: Any, space: str, prompt: str, negative: str, steps: float, guidance: float, scale: float,
            seed: float, variations: float, progress: gr.Progress, **img2img: Any) -> tuple:
        """Generate `variations` images (seed, seed + 1, ...) of one label map; `img2img`: image and strength."""
        steps, count = int(steps), max(1, min(int(variations), max_variations))
        seed = int(seed or 0)
        if not 0 <= seed <= _SEED_MAX - count:
            raise gr.Error(f"seed must be between 0 and {_SEED_MAX - count}")
        images = []
        start = time.perf_counter()
        try:
            for i in range(count):
                images += [pipe(label, label_space=space, prompt=prompt or None,
                                negative_prompt=negative or None, num_inference_steps=steps,
                                guidance_scale=float(guidance), controlnet_conditioning_scale=float(scale),
                                seed=seed + i, **img2img,
                                callback=lambda step, total, i=i: progress((i * total + step) / (count * total),
                                                                           desc="denoising"))]
            control = pipe.control_image(label, label_space=space)
        except ValueError as err:
            raise gr.Error(str(err)) from None
        ran = int(steps * img2img["strength"]) if img2img else steps
        status = (f"Generated {count} image{'s' if count > 1 else ''} of {width}x{height} with {ran} steps "
                  f"(seeds {seed}..{seed + count - 1}) in {time.perf_counter() - start:.1f} s")
        return images, control, status

    def generate(label_path: str | None, space: str, prompt: str, negative: str, steps: float, guidance: float,
                 scale: float, seed: float, variations: float, progress: gr.Progress = gr.Progress()) -> tuple:
        if not label_path:
            raise gr.Error("upload a label map first (an index PNG of class ids, or a colour PNG in the label "
                           "space's palette)")
        return run(label_path, space, prompt, negative, steps, guidance, scale, seed, variations, progress)

    photo_flow = _PhotoFlow(pipe, segmenter) if segmenter is not None else None

    def generate_from_photo(photo_path: str | None, label_path: str | None, space: str, prompt: str, negative: str,
                            steps: float, guidance: float, scale: float, strength: float, seed: float,
                            variations: float, progress: gr.Progress = gr.Progress()) -> tuple:
        if not photo_path:
            raise gr.Error("no photo uploaded: upload a photo under 'Start from a photo' first")
        photo = photo_flow.open(photo_path)
        label = label_path or photo_flow.segment(photo, space)
        note = "" if label_path else "; label map: the photo's segmentation"
        images, control, status = run(label, space, prompt, negative, steps, guidance, scale, seed, variations,
                                      progress, image=photo, strength=float(strength))
        return images, control, f"{status} · img2img from the photo, strength {float(strength):g}{note}"

    with gr.Blocks(title=title or name) as demo:
        gr.Markdown(f"# {title or name}\n\n{description}")
        with gr.Row():
            with gr.Column():
                label = gr.File(label="Label map (index or colour PNG)", file_types=["image"], type="filepath",
                                value=first, elem_id="label_file")
                space = gr.Dropdown(_spaces_for(pipe), value=pipe.label_space.name, label="Label space of the map")
                prompt = gr.Textbox(label="Prompt (from the classes in the map; edit freely)", lines=2,
                                    value=refresh(first, pipe.label_space.name)[0] if first else "", elem_id="prompt")
                negative = gr.Textbox(label="Negative prompt", value="")
                with gr.Row():
                    steps = gr.Slider(1, 100, value=20, step=1, label="Steps")
                    guidance = gr.Slider(0, 20, value=7.5, step=0.5, label="Guidance")
                    scale = gr.Slider(0, 2, value=1.0, step=0.05, label="ControlNet scale")
                with gr.Row():
                    seed = gr.Number(value=0, precision=0, minimum=0, label="Seed")
                    variations = gr.Slider(1, max_variations, value=1, step=1, label="Variations")
                button = gr.Button("Generate", variant="primary")
                if photo_flow is not None:
                    with gr.Accordion("Start from a photo (its map replaces the label map; generate img2img from "
                                      "the photo)", open=True):
                        photo = gr.File(label="Photo", file_types=["image"], type="filepath", elem_id="photo_file")
                        strength = gr.Slider(0.05, 1, value=DEFAULT_STRENGTH, step=0.05,
                                             label="Strength (how much of the photo is re-noised; 1 = all)")
                        from_photo = gr.Button("Generate from the photo", variant="primary", elem_id="generate_photo")
            with gr.Column():
                gallery = gr.Gallery(label="Images", format="png", elem_id="gallery")
                control = gr.Image(label="Control image (what the ControlNet sees)", type="pil", format="png",
                                   elem_id="control_image")
                status = gr.Textbox(label="Status", interactive=False)
                if photo_flow is not None:
                    init_view = gr.Image(label="Init image (the photo at the output size)", type="pil",
                                         format="png", interactive=False, elem_id="init_view")
        label.change(refresh, [label, space], [prompt, control], api_name="prompt")
        space.change(refresh, [label, space], [prompt, control], api_name=False)
        button.click(generate, [label, space, prompt, negative, steps, guidance, scale, seed, variations],
                     [gallery, control, status], api_name="generate")
        if photo_flow is not None:
            photo.change(photo_flow.load, [photo, space], [label, prompt, control, init_view],
                         api_name="segment_photo")
            from_photo.click(generate_from_photo, [photo, label, space, prompt, negative, steps, guidance, scale,
                                                   strength, seed, variations], [gallery, control, status],
                             api_name="generate_from_photo")
    demo.queue(max_size=16, default_concurrency_limit=1)
    return demo


class _PhotoFlow:
    """"Start from a photo" on the diffusion page: segment an uploaded photo into a label map file."""

    def __init__(self, pipe: Any, segmenter: Any):
        from ..segmentation import load_segmenter

        self.pipe = pipe
        self.segmenter = load_segmenter(segmenter, device=pipe.device)
        self.segmenter.mapping(pipe.label_space)  # a segmenter whose classes cannot be mapped fails at start-up
        self._maps = tempfile.TemporaryDirectory(prefix="labelsynth_photo_maps_")  # removed with the demo

    @staticmethod
    def open(photo_path: str) -> PIL.Image.Image:
        """The uploaded photo, upright RGB (oversized, damaged and non-image files refused with a message)."""
        import PIL.ImageOps

        return PIL.ImageOps.exif_transpose(_open_checked(photo_path, "photo", DEFAULT_MAX_INPUT_PIXELS)).convert("RGB")

    def segment(self, photo: PIL.Image.Image, space: str) -> np.ndarray:
        """int64 ``(H, W)`` ids of `space` at the photo's size."""
        from ..segmentation import segment

        try:
            return segment(photo, self.segmenter, space).label_map
        except ValueError as err:
            raise gr.Error(str(err)) from None

    def load(self, photo_path: str | None, space: str) -> tuple:
        """Photo file -> (its map as an index PNG file, class-name prompt, control image, init image)."""
        if not photo_path:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        photo = self.open(photo_path)
        ids = self.segment(photo, space)
        # Named by content: the same photo and space give the same file, different uploads never clash.
        digest = hashlib.sha256(ids.tobytes() + str(ids.shape).encode()).hexdigest()[:16]
        path = Path(self._maps.name) / f"{Path(photo_path).stem}_{space}_map_{digest}.png"
        # 8-bit when the ids fit (every label space but 16-bit ones); PIL writes mode L or I;16 accordingly.
        PIL.Image.fromarray(ids.astype(np.uint8 if int(ids.max(initial=0)) <= 255 else np.uint16)).save(path)
        height, width = self.pipe.image_processor.size["height"], self.pipe.image_processor.size["width"]
        try:  # as `refresh` computes them from the file, which the label map's change event runs again
            prompt = self.pipe.default_prompt(str(path), label_space=space)
            control = self.pipe.control_image(str(path), label_space=space)
        except ValueError as err:
            raise gr.Error(str(err)) from None
        return str(path), prompt, control, self.pipe.init_image(photo, height, width)
