"""Compatibility alias: the demo declarations moved to `labelsynth.inputs` (model classes import them from there).

Kept so that ``from labelsynth.demo.spec import DemoSpec`` (older model files, user code) keeps working.
"""

from __future__ import annotations

from ..inputs import (
    INPUT_KINDS,
    Choice,
    ClassSubset,
    DemoInput,
    DemoSpec,
    Number,
    PerClassChoice,
    ResolvedInput,
    resolve_demo_inputs,
)

__all__ = [
    "INPUT_KINDS",
    "Choice",
    "ClassSubset",
    "DemoInput",
    "DemoSpec",
    "Number",
    "PerClassChoice",
    "ResolvedInput",
    "resolve_demo_inputs",
]
