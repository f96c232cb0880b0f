"""`torch.compile` on the inference path vs our plain and fast paths, side by side in one process.

Times, on the same inputs and interleaved: the plain fp32 path, the fast path, and the plain path compiled by
inductor (`model.compile_for_inference()`; the compile time is reported apart); prints ms/image, ratios to the plain
path and the max abs difference of each output from the fast path. Default model: the built-in spade-cityscapes-tiny
(128x256) on a street map; ``--model`` takes another id or folder. Runs on CUDA unchanged (``--device cuda``).

Usage: ``python benchmarks/bench_compile.py [--model ID_OR_FOLDER] [--threads N] [--rounds 5] [--device cpu]``.
"""

from __future__ import annotations

import argparse
import copy
import time

import numpy as np
import torch
from _timing import add_device_argument, interleaved_times, set_cpu_threads
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
    add_device_argument(parser)
    args = parser.parse_args()
    set_cpu_threads(args.device, args.threads)
    print(machine_summary())  # what the numbers below ran on

    ensure_registered()
    model = AutoModel.from_pretrained(resolve_model(args.model), dtype=torch.float32).eval().to(args.device)
    size = tuple(model.config.image_size)
    _, fixed, _ = onnx_inputs(model)  # the explicit inputs (noise, ...) make every path compute the same image
    inputs = example_inputs(model)
    if model.config.label_space == "cityscapes" and size == (128, 256):  # a real street layout for the built-in
        label, instance = (torch.from_numpy(np.asarray(a)).long()[None] for a in draw_street_scene(0, size))
        inputs["label_map"] = label
        if "instance_map" in inputs:
            inputs["instance_map"] = instance
    inputs = {name: value.to(args.device) for name, value in inputs.items()}
    compiled = copy.deepcopy(model)
    start = time.perf_counter()
    compiled.compile_for_inference()
    with torch.inference_mode():
        compiled(**inputs, **fixed)
    compile_s = time.perf_counter() - start

    def run(which: torch.nn.Module, fast: bool | None = None) -> torch.Tensor:
        if fast is not None:
            which.fast_inference = fast
        with torch.inference_mode():
            return which(**inputs, **fixed).images

    paths = {"plain fp32": lambda: run(model, False), "compiled (plain) fp32": lambda: run(compiled)}
    if hasattr(model, "fast_inference"):
        paths = {"plain fp32": paths["plain fp32"], "fast path fp32": lambda: run(model, True),
                 "compiled (plain) fp32": paths["compiled (plain) fp32"]}
    outputs = {name: path().float().cpu() for name, path in paths.items()}  # warm-up
    times = interleaved_times(paths, args.rounds, args.device)
    reference = outputs.get("fast path fp32", outputs["plain fp32"])
    base = min(times["plain fp32"])
    print(f"{args.model} ({type(model).__name__}) {size[0]}x{size[1]}, batch 1, {args.threads} threads, device "
          f"{args.device}, best of {args.rounds} interleaved rounds; compiling took {compile_s:.0f} s")
    print(f"{'path':24s} {'ms/image':>10s} {'vs plain':>9s}  max abs diff vs the fast path")
    for name in paths:
        best = min(times[name])
        print(f"{name:24s} {best * 1e3:10.1f} {base / best:8.2f}x  "
              f"{float((outputs[name] - reference).abs().max()):.1e}")


if __name__ == "__main__":
    main()
