"""onnxruntime (CPU) vs our PyTorch paths on one exported generator, side by side in one process.

Exports the model (default: the built-in spade-cityscapes-tiny, in float32) with `model.export_onnx`, then times
our plain fp32 path, our fast path and onnxruntime on the same inputs, interleaved, with the same thread count, and
prints ms/image, the ratio to the plain path and each output's max abs difference from the plain path.

Usage: ``python benchmarks/bench_onnx.py [--model ID_OR_FOLDER] [--threads N] [--rounds 5]`` (needs the export
extra: ``pip install 'labelsynth[export]'``).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from _timing import interleaved_times
from transformers import AutoModel

from labelsynth.examples import draw_street_scene
from labelsynth.export.onnx import example_inputs, onnx_inputs
from labelsynth.hub.resolve import resolve_model
from labelsynth.registration import ensure_registered
from labelsynth.utils.precision import machine_summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="spade-cityscapes-tiny", help="registered id or model folder")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(machine_summary())  # what the numbers below ran on

    ensure_registered()
    model = AutoModel.from_pretrained(resolve_model(args.model), dtype=torch.float32).eval()
    config = model.config
    size = tuple(config.image_size)
    _, fixed, _ = onnx_inputs(model)
    inputs = example_inputs(model, args.batch_size)
    if config.label_space == "cityscapes" and size == (128, 256):  # a real street layout for the built-in model
        label, instance = (torch.from_numpy(np.asarray(a)).long() for a in draw_street_scene(0, size))
        inputs["label_map"] = label.expand(args.batch_size, -1, -1).clone()
        if "instance_map" in inputs:
            inputs["instance_map"] = instance.expand(args.batch_size, -1, -1).clone()

    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        path = model.export_onnx(Path(folder) / "g.onnx")
        export_s = time.perf_counter() - start
        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    feeds = {name: value.numpy() for name, value in inputs.items()}

    def torch_path(fast: bool) -> np.ndarray:
        model.fast_inference = fast
        with torch.inference_mode():
            return model(**inputs, **fixed).images.numpy()

    paths = {"ours, plain fp32": lambda: torch_path(False), "ours, fast path": lambda: torch_path(True),
             "onnxruntime fp32": lambda: session.run(["images"], feeds)[0]}
    if not hasattr(model, "fast_inference"):
        del paths["ours, fast path"]
    outputs = {name: run() for name, run in paths.items()}  # warm-up
    times = interleaved_times(paths, args.rounds, torch.device("cpu"))  # onnxruntime's CPU provider
    reference = outputs["ours, plain fp32"]
    base = min(times["ours, plain fp32"])
    print(f"{args.model} ({type(model).__name__}) {size[0]}x{size[1]}, batch {args.batch_size}, {args.threads} "
          f"threads, best of {args.rounds} interleaved rounds; export took {export_s:.1f} s")
    print(f"{'path':20s} {'ms/image':>10s} {'vs plain':>9s}  max abs diff vs plain fp32")
    for name in paths:
        best = min(times[name])
        print(f"{name:20s} {best / args.batch_size * 1e3:10.1f} {base / best:8.2f}x  "
              f"{float(np.abs(outputs[name] - reference).max()):.1e}")


if __name__ == "__main__":
    main()
