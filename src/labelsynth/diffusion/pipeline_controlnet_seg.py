"""`ControlNetSegPipeline`: label maps -> images with a segmentation ControlNet on Stable Diffusion (diffusers).

The label map stays the currency: it is read by the same `LabelMapProcessor` as for the GANs (paths, PIL, numpy,
torch; index or colour maps of `label_space`), resized with nearest to the output size, mapped by class name to the
ControlNet's palette protocol (`labelsynth.diffusion.palettes`), painted with exact colours, and handed to diffusers'
`StableDiffusionControlNetPipeline` as a ``[1, 3, H, W]`` tensor at the output size, so diffusers does not resample
it (its PIL path would use LANCZOS and blend the colours).

With ``image=`` (img2img) the same loaded components run diffusers' `StableDiffusionControlNetImg2ImgPipeline`: the
photo is resized to the output size with LANCZOS (diffusers' own resampling; the aspect ratio is not kept, exactly
like the label map) and re-noised by ``strength`` before the denoising starts.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import PIL.Image
import torch

from ..label_space_mappings import get_label_space_mapping
from ..label_spaces import LabelSpace, get_label_space
from ..processing import LabelMapProcessor
from .detect import KNOWN_CONTROLNETS, ControlNetSource, find_controlnet
from .palettes import PaletteProtocol, get_palette_protocol

__all__ = ["DEFAULT_STRENGTH", "SCHEDULERS", "ControlNetSegPipeline"]

OUTPUT_TYPES = ("pil", "np", "pt")
#: Scheduler names `scheduler=` takes (or pass a diffusers scheduler instance).
SCHEDULERS = {
    "ddim": "DDIMScheduler",
    "pndm": "PNDMScheduler",
    "unipc": "UniPCMultistepScheduler",
    "euler": "EulerDiscreteScheduler",
    "euler-ancestral": "EulerAncestralDiscreteScheduler",
    "dpm++": "DPMSolverMultistepScheduler",
}
#: img2img's default `strength`: the share of the denoising run over the re-noised init image.
DEFAULT_STRENGTH = 0.75
_MAX_PROMPT_CLASSES = 8  # the default prompt names at most this many classes (CLIP reads 77 tokens)


def _torch_device(device: Any) -> torch.device:
    """``None``/``"cpu"``/``"cuda"``/``"cuda:1"``/transformers-style ints (-1 = cpu) -> a `torch.device`."""
    if device is None:
        return torch.device("cpu")
    if isinstance(device, int):
        return torch.device("cpu") if device < 0 else torch.device("cuda", device)
    return torch.device(device)


def _as_dtype(dtype: Any) -> torch.dtype | None:
    if dtype is None or dtype == "auto":
        return None
    if isinstance(dtype, str):
        value = getattr(torch, dtype, None)
        if not isinstance(value, torch.dtype):
            raise ValueError(f"unknown dtype {dtype!r}; use float32, float16 or bfloat16")
        return value
    return dtype


def _dtype_keyword() -> str:
    """diffusers renamed ``torch_dtype`` to ``dtype`` (0.42 warns about the old name; older ones know only it)."""
    import diffusers
    from packaging.version import Version

    return "dtype" if Version(diffusers.__version__).release >= (0, 42) else "torch_dtype"


def _readable(name: str) -> str:
    """A class name as prompt text: "sky-other-merged" -> "sky"."""
    for suffix in ("-merged", "-other", "-stuff"):
        name = name.removesuffix(suffix)
    return name.replace("-", " ").replace("_", " ")


class ControlNetSegPipeline:
    """Generate images from label maps with a segmentation ControlNet (diffusers), the "label-to-image" way.

    ```python
    from labelsynth import pipeline

    pipe = pipeline("label-to-image", model="lllyasviel/control_v11p_sd15_seg")
    image = pipe("ade_label.png", seed=0)                                   # prompt from the classes present
    image = pipe(ids, label_space="cityscapes", prompt="a rainy street", seed=0, num_inference_steps=20)
    images = pipe([a, b], seed=0)                                           # item i uses seed + i
    image = pipe(edited_label, image="photo.jpg", strength=0.75, seed=0)    # img2img: the photo's look back
    ```

    Build it with `from_pretrained` (or ``labelsynth.pipeline``). Attributes: ``sd_pipeline`` (the diffusers
    `StableDiffusionControlNetPipeline`), ``palette`` (`PaletteProtocol`), ``label_space`` (default space of input
    maps), ``image_processor`` (`LabelMapProcessor` at the default output size).

    Args:
        sd_pipeline: A diffusers `StableDiffusionControlNetPipeline`.
        palette: The ControlNet's palette protocol (``"ade20k"`` or ``"coco-panoptic"``).
        label_space: Default label space of the input maps (default: the palette's own space).
        size: Default output ``(height, width)`` (default: the UNet's sample size times the VAE factor, 512 for SD1.5);
            multiples of the VAE factor (8 for SD).
        progress_bar: Show diffusers' progress bar over the denoising steps.
        name: The model id/folder (for messages and reports).
    """

    task = "label-to-image"

    def __init__(
        self,
        sd_pipeline: Any,
        palette: str | PaletteProtocol = "ade20k",
        label_space: str | LabelSpace | None = None,
        size: int | tuple[int, int] | None = None,
        progress_bar: bool = True,
        name: str = "",
    ) -> None:
        self.sd_pipeline = sd_pipeline
        self.palette = get_palette_protocol(palette)
        self.label_space = get_label_space(label_space or self.palette.label_space)
        get_label_space_mapping(self.label_space, self.palette.label_space)  # refuse an unmappable space now
        self.vae_scale_factor = int(sd_pipeline.vae_scale_factor)
        if size is None:
            sample = sd_pipeline.unet.config.sample_size
            size = int(sample if isinstance(sample, int) else sample[0]) * self.vae_scale_factor
        self.image_processor = LabelMapProcessor(label_space=self.label_space, size=size)
        self._check_size(self.image_processor.size["height"], self.image_processor.size["width"])
        self.name = name
        self._progress_bar = progress_bar
        self._img2img: Any = None
        sd_pipeline.set_progress_bar_config(disable=not progress_bar)

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(
        cls,
        controlnet: str | os.PathLike | ControlNetSource,
        *,
        base_model: str | os.PathLike | None = None,
        palette: str | None = None,
        label_space: str | LabelSpace | None = None,
        size: int | tuple[int, int] | None = None,
        scheduler: str | Any | None = None,
        dtype: torch.dtype | str | None = None,
        device: Any = None,
        attention_slicing: bool | str = False,
        vae_tiling: bool = False,
        cpu_offload: bool = False,
        progress_bar: bool = True,
        **load_kwargs: Any,
    ) -> ControlNetSegPipeline:
        """Load a segmentation ControlNet and its Stable Diffusion base.

        Args:
            controlnet: A ControlNet Hub id or folder (``config.json`` of a ``ControlNetModel``), a full ControlNet
                pipeline folder (``model_index.json`` with a controlnet), or a `ControlNetSource`.
            base_model: Stable Diffusion folder or Hub id (default: the one known for the ControlNet, e.g.
                ``stable-diffusion-v1-5/stable-diffusion-v1-5`` for lllyasviel's seg ControlNets).
            palette: Palette protocol (default: the ControlNet's first; v1.1 also reads ``"coco-panoptic"``).
            label_space, size, progress_bar: See the class.
            scheduler: A name in `SCHEDULERS` or a diffusers scheduler (default: the base model's).
            dtype: ``torch.float16`` / ``"float16"`` etc. (default: float32).
            device: ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or a transformers-style int (-1 = cpu).
            attention_slicing: ``True``/``"auto"``/``"max"``: `enable_attention_slicing` (less memory, slower).
            vae_tiling: Decode the latents tile by tile (large images in less memory).
            cpu_offload: Keep each model on the CPU until it runs (needs CUDA and accelerate); ignores `device`.
            **load_kwargs: Passed to diffusers' ``from_pretrained`` (``revision``, ``token``, ``safety_checker``...).

        Raises:
            ValueError: `controlnet` is not a ControlNet, no base model is known, or an option does not apply.
        """
        from diffusers import ControlNetModel, StableDiffusionControlNetPipeline

        source = controlnet if isinstance(controlnet, ControlNetSource) else find_controlnet(controlnet)
        if source is None:
            raise ValueError(
                f"{os.fspath(controlnet)} is not a diffusers ControlNet: expected a config.json with "
                '"_class_name": "ControlNetModel" or a model_index.json that lists a controlnet'
            )
        torch_dtype = _as_dtype(dtype)
        kwargs = dict(load_kwargs)
        if torch_dtype is not None:
            kwargs[_dtype_keyword()] = torch_dtype
        if source.kind == "pipeline":
            if base_model is not None:
                raise ValueError(f"{source.name} is a whole ControlNet pipeline (its own base model); drop base_model=")
            sd = StableDiffusionControlNetPipeline.from_pretrained(source.location, **kwargs)
        else:
            base = os.fspath(base_model) if base_model is not None else source.base_model
            if base is None:
                raise ValueError(
                    f"{source.name}: which Stable Diffusion does this ControlNet belong to? Pass "
                    "base_model='stable-diffusion-v1-5/stable-diffusion-v1-5' (or a folder) for an SD1.5 ControlNet"
                )
            net_kwargs = {k: kwargs[k] for k in (_dtype_keyword(), "revision", "token") if k in kwargs}
            net = ControlNetModel.from_pretrained(source.location, **net_kwargs)
            kwargs.pop("revision", None)  # the revision names the ControlNet's, not the base's
            sd = StableDiffusionControlNetPipeline.from_pretrained(base, controlnet=net, **kwargs)
        palette = palette or source.palettes[0]
        if get_palette_protocol(palette).name not in source.palettes and source.name in KNOWN_CONTROLNETS:
            raise ValueError(f"{source.name} reads the palettes {list(source.palettes)}, not {palette!r}")
        if scheduler is not None:
            sd.scheduler = cls._make_scheduler(scheduler, sd.scheduler.config)
        if attention_slicing:
            sd.enable_attention_slicing("auto" if attention_slicing is True else attention_slicing)
        if vae_tiling:
            sd.vae.enable_tiling()
        if cpu_offload:
            if not torch.cuda.is_available():
                raise ValueError("cpu_offload=True moves models to the GPU one at a time and needs CUDA; drop it on "
                                 "a CPU-only machine")
            sd.enable_model_cpu_offload()
        else:
            sd.to(_torch_device(device))
        return cls(sd, palette=palette, label_space=label_space, size=size, progress_bar=progress_bar,
                   name=source.name)

    @staticmethod
    def _make_scheduler(scheduler: str | Any, config: Any) -> Any:
        if not isinstance(scheduler, str):
            return scheduler
        key = scheduler.strip().lower()
        if key not in SCHEDULERS:
            raise ValueError(f"unknown scheduler {scheduler!r}; use one of {sorted(SCHEDULERS)} or a diffusers "
                             "scheduler instance")
        import diffusers

        return getattr(diffusers, SCHEDULERS[key]).from_config(config)

    # ------------------------------------------------------------------ properties
    @property
    def device(self) -> torch.device:
        """Where the UNet runs."""
        return self.sd_pipeline._execution_device

    @property
    def dtype(self) -> torch.dtype:
        """The UNet's dtype."""
        return self.sd_pipeline.unet.dtype

    def _check_size(self, height: int, width: int) -> None:
        factor = self.vae_scale_factor
        if height % factor or width % factor:
            raise ValueError(f"output size {width}x{height} (width x height) must be a multiple of {factor} (the "
                             f"VAE's downsampling); e.g. {width // factor * factor}x{height // factor * factor}")

    # ------------------------------------------------------------------ label maps -> control images and prompts
    def _ids(self, label_map: Any, space: LabelSpace, height: int, width: int, tolerance: float | None) -> np.ndarray:
        processor = self.image_processor
        if processor.label_space != space:
            processor = LabelMapProcessor(label_space=space, size=processor.size)
        batch = processor(label_map, size={"height": height, "width": width}, resize_mode="fixed",
                          color_tolerance=tolerance, return_tensors="np")["label_map"]
        if batch.shape[0] != 1:
            raise ValueError(f"label map: one input holds {batch.shape[0]} maps; pass a batch as a list")
        return batch[0]

    def control_image(self, label_map: Any, label_space: str | LabelSpace | None = None,
                      size: tuple[int, int] | None = None, color_tolerance: float | None = None) -> PIL.Image.Image:
        """The palette image the ControlNet sees for `label_map` (nearest-resized to `size`, exact colours).

        Args:
            label_map: Any form the `LabelMapProcessor` takes (one map).
            label_space: Space of `label_map` (default: the pipeline's).
            size: ``(height, width)`` (default: the pipeline's output size).
            color_tolerance: For colour-coded maps: snap colours within this RGB distance.

        Returns:
            RGB ``PIL.Image`` of the output size.
        """
        space = get_label_space(label_space) if label_space is not None else self.label_space
        height, width = size or (self.image_processor.size["height"], self.image_processor.size["width"])
        ids = self._ids(label_map, space, height, width, color_tolerance)
        return PIL.Image.fromarray(self.palette.render(ids, space))

    def default_prompt(self, label_map: Any, label_space: str | LabelSpace | None = None) -> str:
        """A prompt naming the classes present, largest area first (at most 8); classes the ControlNet's palette has
        no counterpart for (and unlabeled pixels) are left out. Takes ids already processed or any processor form."""
        space = get_label_space(label_space) if label_space is not None else self.label_space
        if isinstance(label_map, np.ndarray) and label_map.ndim == 2 and label_map.dtype.kind in "iu":
            ids = label_map
        else:
            ids = self._ids(label_map, space, *self._default_hw(), None)
        mapping = get_label_space_mapping(space, self.palette.label_space)
        lut = mapping.lut()
        values, counts = np.unique(ids, return_counts=True)
        names = []
        for value in values[np.argsort(-counts, kind="stable")]:
            if value >= space.num_classes or lut[value] == mapping.unmapped_id:
                continue
            text = _readable(space.names[value])
            if text not in names:
                names.append(text)
        if not names:
            return "a photograph"
        names = names[:_MAX_PROMPT_CLASSES]
        listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        return f"a photograph of {listed}"

    def _default_hw(self) -> tuple[int, int]:
        return self.image_processor.size["height"], self.image_processor.size["width"]

    @property
    def img2img_pipeline(self) -> Any:
        """diffusers' `StableDiffusionControlNetImg2ImgPipeline` over the components of `sd_pipeline` (the same
        modules: nothing is loaded or copied); rebuilt when a component of `sd_pipeline` was replaced."""
        components = self.sd_pipeline.components
        cached = self._img2img
        if cached is None or any(getattr(cached, key) is not value for key, value in components.items()):
            from diffusers import StableDiffusionControlNetImg2ImgPipeline

            cached = StableDiffusionControlNetImg2ImgPipeline(
                **components, requires_safety_checker=self.sd_pipeline.config.get("requires_safety_checker", False))
            cached.set_progress_bar_config(disable=not self._progress_bar)
            self._img2img = cached
        return cached

    @staticmethod
    def init_image(image: Any, height: int, width: int, what: str = "image") -> PIL.Image.Image:
        """An img2img init image at the output size: RGB, resized with LANCZOS when its size differs.

        Args:
            image: A path, PIL image, uint8 ``(H, W, 3)`` RGB array or float ``(3, H, W)`` tensor in [0, 1].
            height, width: The output size.
            what: How messages name it.

        Returns:
            RGB ``PIL.Image`` of ``width x height``. LANCZOS is what diffusers' image processor would use, so
            handing diffusers the original photo gives the same pixels.
        """
        import PIL.ImageOps

        if isinstance(image, (str, os.PathLike)):
            if not os.path.isfile(image):
                raise ValueError(f"{what}: {os.fspath(image)} is not a file")
            with PIL.Image.open(image) as opened:
                picture = PIL.ImageOps.exif_transpose(opened).convert("RGB")
        elif isinstance(image, PIL.Image.Image):
            picture = image.convert("RGB")
        elif isinstance(image, torch.Tensor):
            if image.dim() != 3 or image.shape[0] != 3:
                raise ValueError(f"{what}: a tensor image must be (3, H, W) in [0, 1], got {tuple(image.shape)}")
            array = (image.detach().float().cpu().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0)
            picture = PIL.Image.fromarray(array.numpy())
        else:
            array = np.asarray(image)
            if array.ndim != 3 or array.shape[-1] != 3 or array.dtype != np.uint8:
                raise ValueError(f"{what}: an array image must be uint8 (H, W, 3) RGB, got {array.dtype} "
                                 f"{array.shape}; or pass a path or PIL image")
            picture = PIL.Image.fromarray(array)
        if picture.size != (width, height):
            picture = picture.resize((width, height), PIL.Image.LANCZOS)
        return picture

    # ------------------------------------------------------------------ generation
    def __call__(
        self,
        label_maps: Any,
        *,
        prompt: str | Sequence[str] | None = None,
        negative_prompt: str | Sequence[str] | None = None,
        label_space: str | LabelSpace | None = None,
        num_inference_steps: int = 20,
        guidance_scale: float = 7.5,
        controlnet_conditioning_scale: float = 1.0,
        seed: int | None = None,
        generator: torch.Generator | None = None,
        output_type: str = "pil",
        height: int | None = None,
        width: int | None = None,
        color_tolerance: float | None = None,
        callback: Callable[[int, int], None] | None = None,
        image: Any = None,
        strength: float | None = None,
        **diffusers_kwargs: Any,
    ) -> Any:
        """Generate one image per label map; a list in gives a list out. With `image`, img2img from it.

        Args:
            label_maps: One label map or a list (every form `LabelMapProcessor` takes: index/colour PNG paths, PIL
                images, ``(H, W)`` integer arrays or tensors) in `label_space`.
            prompt, negative_prompt: Text, or one per label map (default prompt: `default_prompt` of each map).
            label_space: Space of the input maps (default: the pipeline's, normally the palette's own).
            num_inference_steps, guidance_scale, controlnet_conditioning_scale: diffusers' settings.
            seed: Item i uses ``torch.Generator("cpu").manual_seed(seed + i)``, so a map gives the same image alone or
                inside a batch. Exclusive with `generator` (one generator drawn from item after item).
            output_type: ``"pil"``, ``"np"`` (uint8 ``(H, W, 3)``) or ``"pt"`` (float ``(3, H, W)`` in [0, 1]).
            height, width: Output size (default: the pipeline's), multiples of the VAE factor.
            color_tolerance: For colour-coded input maps: snap colours within this RGB distance.
            callback: Called as ``callback(step, total)`` after each denoising step (e.g. a UI progress bar);
                `total` is the number of steps that run (fewer than `num_inference_steps` with img2img).
            image: img2img init image(s), e.g. the photo a label map was segmented from: one (used for every label
                map) or a list with one per label map; paths, PIL images, uint8 ``(H, W, 3)`` arrays or ``(3, H, W)``
                tensors in [0, 1], resized to the output size with LANCZOS (see `init_image`). Runs diffusers'
                `StableDiffusionControlNetImg2ImgPipeline` over the same components.
            strength: img2img only: how much noise is added to the init image, in (0, 1] (default
                `DEFAULT_STRENGTH` = 0.75; 1 keeps nothing of it); ``int(num_inference_steps * strength)`` denoising
                steps run, and that must be at least 1.
            **diffusers_kwargs: Further arguments of `StableDiffusionControlNetPipeline.__call__` (or of the img2img
                pipeline with `image`: ``eta``, ``guess_mode``, ``control_guidance_start``/``end``, ``clip_skip``...).

        Returns:
            An image (``output_type``) per label map, a list for a list.
        """
        if output_type not in OUTPUT_TYPES:
            raise ValueError(f"output_type must be one of {OUTPUT_TYPES}, got {output_type!r}")
        if seed is not None and generator is not None:
            raise ValueError("pass either seed or generator, not both")
        reserved = {"control_image", "generator", "output_type", "num_images_per_prompt", "callback_on_step_end",
                    "prompt_embeds", "latents"} & set(diffusers_kwargs)
        if reserved:
            raise TypeError(f"{sorted(reserved)} are set by the label-to-image pipeline; use label maps, image, "
                            "seed, generator and output_type instead")
        if not isinstance(num_inference_steps, int) or num_inference_steps < 1:
            raise ValueError(f"num_inference_steps must be an integer >= 1, got {num_inference_steps!r}")
        single = not isinstance(label_maps, (list, tuple))
        items = [label_maps] if single else list(label_maps)
        if not items:
            raise ValueError("no label maps given; pass a path, image, array or tensor (or a non-empty list)")
        prompts = self._per_item(prompt, len(items), "prompt")
        negatives = self._per_item(negative_prompt, len(items), "negative_prompt")
        space = get_label_space(label_space) if label_space is not None else self.label_space
        get_label_space_mapping(space, self.palette.label_space)  # a clear error before any work
        default_h, default_w = self._default_hw()
        height, width = int(height or default_h), int(width or default_w)
        self._check_size(height, width)
        img2img = self._init_images(image, strength, num_inference_steps, single, len(items), height, width)

        outputs = []
        for index, (label_map, text, negative) in enumerate(zip(items, prompts, negatives)):
            try:
                ids = self._ids(label_map, space, height, width, color_tolerance)
            except ValueError as err:
                raise ValueError(f"label map{'' if single else f' #{index}'}: {err}") from None
            control = torch.from_numpy(self.palette.render(ids, space)).permute(2, 0, 1)[None].float() / 255.0
            item_generator = torch.Generator("cpu").manual_seed(seed + index) if seed is not None else generator
            on_step = None
            if callback is not None:
                def on_step(pipe: Any, step: int, timestep: Any, tensors: dict, _cb: Callable = callback) -> dict:
                    _cb(step + 1, pipe.num_timesteps)  # the steps that run (img2img skips the first ones)
                    return tensors
            if img2img is None:
                run, images = self.sd_pipeline, {"image": control}
            else:
                run = self.img2img_pipeline
                images = {"image": img2img[0][index], "control_image": control, "strength": img2img[1]}
            result = run(
                prompt=text if text is not None else self.default_prompt(ids, space),
                negative_prompt=negative,
                **images,
                height=height,
                width=width,
                num_inference_steps=num_inference_steps,
                guidance_scale=guidance_scale,
                controlnet_conditioning_scale=controlnet_conditioning_scale,
                generator=item_generator,
                output_type="pt",
                callback_on_step_end=on_step,
                **diffusers_kwargs,
            )
            outputs.append(self._postprocess(result.images[0], output_type))
        return outputs[0] if single else outputs

    def _init_images(self, image: Any, strength: float | None, steps: int, single: bool, count: int,
                     height: int, width: int) -> tuple[list[PIL.Image.Image], float] | None:
        """Check the img2img arguments: one init image per label map (at the output size) and the strength;
        ``None`` without `image`."""
        if image is None:
            if strength is not None:
                raise ValueError("strength is for img2img: pass the init image too (image=photo), or drop strength")
            return None
        strength = DEFAULT_STRENGTH if strength is None else strength
        if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not 0 < strength <= 1:
            raise ValueError(f"strength must be a number in (0, 1] (how much of the init image is re-noised; 1 = all "
                             f"of it), got {strength!r}")
        if int(steps * strength) < 1:
            raise ValueError(f"strength {strength} with {steps} step{'s' if steps > 1 else ''} runs no denoising step "
                             f"(img2img runs int(steps * strength) = 0 of them); raise num_inference_steps to at least "
                             f"{int(np.ceil(1 / strength))} or strength")
        if not isinstance(image, (list, tuple)):
            return [self.init_image(image, height, width)] * count, float(strength)  # one photo, read once
        if single or len(image) != count:
            raise ValueError(f"image: {len(image)} init images for {1 if single else count} label map"
                             f"{'' if count == 1 else 's'}; pass one image (used for every map) or a list with one per "
                             "label map")
        return [self.init_image(item, height, width, what=f"image #{i}") for i, item in enumerate(image)], \
            float(strength)

    @staticmethod
    def _per_item(value: str | Sequence[str] | None, count: int, name: str) -> list[str | None]:
        if value is None or isinstance(value, str):
            return [value] * count
        value = list(value)
        if len(value) != count or not all(isinstance(v, str) for v in value):
            raise ValueError(f"{name} must be a string or a list of {count} strings (one per label map)")
        return value

    @staticmethod
    def _postprocess(image: torch.Tensor, output_type: str) -> Any:
        """float ``(3, H, W)`` in [0, 1] -> the output type; uint8 exactly as diffusers' own "pil"/"np" conversion."""
        image = image.float().cpu()
        if output_type == "pt":
            return image
        array = (image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        return array if output_type == "np" else PIL.Image.fromarray(array)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(model={self.name!r}, palette={self.palette.name!r}, "
                f"label_space={self.label_space.name!r}, size={self._default_hw()}, dtype={self.dtype})")

