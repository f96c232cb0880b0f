"""Exporting labelsynth generators to run outside Python (`labelsynth.export.onnx`)."""

from .onnx import METADATA_PREFIX, OnnxInput, export_onnx, onnx_inputs, read_metadata

__all__ = ["METADATA_PREFIX", "OnnxInput", "export_onnx", "onnx_inputs", "read_metadata"]
