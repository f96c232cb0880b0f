"""How labelsynth plugs into transformers without importing it (or torch) on ``import labelsynth``.

transformers finds our models through registries: `AutoConfig` / `AutoModel` / `AutoImageProcessor` map our
``model_type``\\ s to our classes, and the pipeline registry maps the "label-to-image" task to `LabelToImagePipeline`
(with the built-in model as the task's default). Filling them needs torch and transformers, which take seconds to
import, so `register` runs at the first moment they are loaded anyway:

* on ``import labelsynth`` when transformers is already imported;
* otherwise when transformers finishes importing later (a post-import hook on ``sys.meta_path``; if the import came
  from inside one of our own modules, registration waits until that module is complete, since registering imports
  every model module: the hook also runs after each of our modules until registration is done);
* at the latest on first use of a labelsynth entry point (`ensure_registered`).

Registration also makes transformers' ``pipeline`` resolve labelsynth's registered model ids (``"spade-ade20k"``,
``"spade-cityscapes-tiny"``) like folders: `pipeline` below is what ``transformers.pipeline`` becomes. Code that
bound ``from transformers import pipeline`` before importing labelsynth keeps the original function (folders and Hub
ids work there, registered ids do not); ``labelsynth.pipeline`` always resolves them.
"""

from __future__ import annotations

import importlib
import importlib.abc
import os
import sys
import threading
from typing import Any

__all__ = ["TASK", "activate", "ensure_registered", "pipeline", "register", "register_if_pending"]

TASK = "label-to-image"
# (config class, model class) per family, in the modules that define them.
_FAMILIES = (
    ("labelsynth.models.pix2pix", "Pix2PixConfig", "Pix2PixModel"),
    ("labelsynth.models.pix2pixhd", "Pix2PixHDConfig", "Pix2PixHDModel"),
    ("labelsynth.models.crn", "CRNConfig", "CRNModel"),
    ("labelsynth.models.spade", "SPADEConfig", "SPADEModel"),
    ("labelsynth.models.spade.modeling_mobile_spade", "MobileSPADEConfig", "MobileSPADEModel"),
    ("labelsynth.models.sean", "SEANConfig", "SEANModel"),
    ("labelsynth.models.cocosnet", "CoCosNetConfig", "CoCosNetModel"),
    ("labelsynth.models.oasis", "OASISConfig", "OASISModel"),
)
# Modules after whose import registration is attempted (besides our own submodules).
_WATCHED = ("transformers", "transformers.pipelines")

_lock = threading.RLock()
_registered = False
_registering = False
_original_pipeline: Any = None


def _module_initializing(name: str) -> bool:
    module = sys.modules.get(name)
    spec = getattr(module, "__spec__", None)
    return module is not None and bool(getattr(spec, "_initializing", False))


def _safe_to_register(completed: str | None = None) -> bool:
    """transformers is fully imported and none of our submodules is half-executed (registering imports them all).

    `completed` names a module whose code has just finished running (the import system still marks it as
    initializing until the loader returns).
    """

    def busy(name: str) -> bool:
        return name != completed and _module_initializing(name)

    if "transformers" not in sys.modules or busy("transformers"):
        return False
    return not any(name.startswith("labelsynth.") and busy(name) for name in list(sys.modules))


def register() -> None:
    """Register every labelsynth model with transformers' Auto* classes and the "label-to-image" pipeline task, and
    make ``transformers.pipeline`` resolve registered model ids. Idempotent; imports torch and transformers."""
    global _registered, _registering, _original_pipeline
    with _lock:
        if _registered or _registering:
            return
        _registering = True
        try:
            import transformers
            import transformers.pipelines
            from transformers import AutoConfig, AutoImageProcessor, AutoModel
            from transformers.pipelines import PIPELINE_REGISTRY

            from .examples import BUILTIN_MODEL
            from .pipelines.label_to_image import LabelToImagePipeline
            from .processing import LabelMapProcessor

            for module_name, config_name, model_name in _FAMILIES:
                module = importlib.import_module(module_name)
                config_class, model_class = getattr(module, config_name), getattr(module, model_name)
                AutoConfig.register(config_class.model_type, config_class, exist_ok=True)
                AutoModel.register(config_class, model_class, exist_ok=True)
                AutoImageProcessor.register(config_class, image_processor_classes={"pil": LabelMapProcessor},
                                            exist_ok=True)
            PIPELINE_REGISTRY.register_pipeline(
                TASK, pipeline_class=LabelToImagePipeline, pt_model=AutoModel, type="image",
                default={"model": (str(BUILTIN_MODEL), None)},  # a local folder: works offline
            )
            if transformers.pipelines.pipeline is not pipeline:
                _original_pipeline = transformers.pipelines.pipeline
                transformers.pipelines.pipeline = pipeline
                transformers.pipeline = pipeline  # the lazy module caches attributes it has resolved
            _registered = True
        finally:
            _registering = False
        _remove_hook()


def ensure_registered() -> None:
    """`register` unless done; labelsynth's own entry points call this before they rely on transformers' registries."""
    if not _registered:
        register()


def register_if_pending() -> None:
    """Register now if transformers has been imported meanwhile and it is safe to import our model modules."""
    if not _registered and "transformers" in sys.modules and _safe_to_register():
        register()


def pipeline(task: str | None = None, model: Any = None, *args: Any, **kwargs: Any) -> Any:
    """``transformers.pipeline`` that also resolves labelsynth model ids (`labelsynth.hub.resolve.resolve_model`).

    ``pipeline("label-to-image")`` loads the built-in model; ``model=`` takes a folder, a registered id such as
    ``"spade-cityscapes-tiny"`` or ``"spade-ade20k"``, or a Hub id. A diffusers segmentation ControlNet (id or
    folder) gives a `labelsynth.diffusion.ControlNetSegPipeline` (keyword arguments go to its ``from_pretrained``:
    ``base_model``, ``palette``, ``dtype``, ``device``, ...). Every other task and argument goes to transformers
    unchanged.
    """
    ensure_registered()
    if isinstance(model, (str, os.PathLike)) and task in (None, TASK):
        from .hub.resolve import is_registered_id

        if is_registered_id(model):
            task = TASK
        elif not args:
            # The one place where the backend is chosen: a diffusers ControlNet gets the diffusion pipeline, with
            # the same call as the GAN pipeline (`labelsynth.diffusion.ControlNetSegPipeline`).
            from .diffusion.detect import find_controlnet

            source = find_controlnet(model)
            if source is not None:
                from .diffusion.pipeline_controlnet_seg import ControlNetSegPipeline

                return ControlNetSegPipeline.from_pretrained(source, **kwargs)
    if task == TASK and (model is None or isinstance(model, (str, os.PathLike))) and not args:
        model, kwargs = _load_model(model, kwargs)
    return _original_pipeline(task, model, *args, **kwargs)


def _load_model(name: str | os.PathLike | None, kwargs: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """Load a label-to-image model ourselves, so that its loading errors (a folder with missing or unreadable
    weights, an unconverted registered id) reach the caller as they are, not folded into the traceback text of
    transformers' "could not load the model with any class" message. Returns the model and the remaining pipeline
    arguments (the image processor is loaded from the same place)."""
    import torch
    from transformers import AutoModel

    from .examples import BUILTIN_MODEL
    from .hub.resolve import resolve_model

    location = resolve_model(BUILTIN_MODEL if name is None else name)
    kwargs = dict(kwargs)
    load_kwargs = dict(kwargs.pop("model_kwargs", None) or {})
    for key in ("revision", "token"):
        if key in kwargs:
            load_kwargs[key] = kwargs[key]
    if kwargs.get("dtype", "auto") != "auto":
        load_kwargs["dtype"] = kwargs["dtype"]
    kwargs.pop("dtype", None)
    kwargs.setdefault("image_processor", location)
    model = AutoModel.from_pretrained(location, **load_kwargs)
    device = kwargs.get("device")
    if "dtype" not in load_kwargs and model.dtype == torch.bfloat16 and (device is None or str(device) == "cpu"):
        from .utils.precision import has_native_bf16

        # Stored in bf16 to be small (the built-in model), not asked for: run in float32 where bf16 is emulated,
        # without the warning an explicit dtype=torch.bfloat16 gets.
        if not has_native_bf16():
            model = model.to(torch.float32)
    return model, kwargs



# ---------------------------------------------------------------------------------------------------- import hook
class _ThenRegister(importlib.abc.Loader):
    """Runs the real loader, then tries to register (the module is complete at that point)."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def create_module(self, spec: Any) -> Any:
        return self._loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self._loader.exec_module(module)
        if not _registered and _safe_to_register(completed=module.__name__):
            register()

    def __getattr__(self, name: str) -> Any:  # get_source, get_resource_reader, ... of the real loader
        return getattr(self._loader, name)


class _TransformersImportHook(importlib.abc.MetaPathFinder):
    """Wraps the loaders of the `_WATCHED` modules and of our submodules in `_ThenRegister`; finds nothing itself."""

    def __init__(self) -> None:
        self._finding: set[str] = set()

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if not (fullname in _WATCHED or fullname.startswith("labelsynth.")) or fullname in self._finding:
            return None
        self._finding.add(fullname)
        try:
            for finder in sys.meta_path:
                if finder is self or not hasattr(finder, "find_spec"):
                    continue
                spec = finder.find_spec(fullname, path, target)
                if spec is not None:
                    if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                        spec.loader = _ThenRegister(spec.loader)
                    return spec
            return None
        finally:
            self._finding.discard(fullname)


_hook = _TransformersImportHook()


def _remove_hook() -> None:
    if _hook in sys.meta_path:
        sys.meta_path.remove(_hook)


def activate() -> None:
    """Called by ``import labelsynth``: register now if transformers is already loaded, else when it is."""
    if _registered:
        return
    if "transformers" in sys.modules and _safe_to_register():
        register()
    elif _hook not in sys.meta_path:
        sys.meta_path.insert(0, _hook)
