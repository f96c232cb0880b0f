"""Gradio demos of labelsynth models: `build_demo(model)` (the app every Space runs) and `labelsynth demo`.

`labelsynth.inputs` (how model classes declare their demo inputs) and `labelsynth.demo.painting` (palette
brushes, canvas decoding) do not import Gradio, so model classes can import the declarations cheaply; `build_demo`
and `load_pipeline` import Gradio on first use.
"""

from __future__ import annotations

from typing import Any

from ..inputs import Choice, ClassSubset, DemoInput, DemoSpec, Number, PerClassChoice, RegionPicker

__all__ = ["Choice", "ClassSubset", "DemoInput", "DemoSpec", "Number", "PerClassChoice", "RegionPicker", "build_demo",
           "build_space_demo", "load_pipeline"]

_LAZY = {"build_demo": "app", "load_pipeline": "app", "build_space_demo": "spaces"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
