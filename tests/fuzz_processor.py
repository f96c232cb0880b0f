"""Property-based fuzzing of the `LabelMapProcessor` input boundary (issue 12), shared by the CI test and this script.

Every call must either return a valid batch (``label_map`` int64 ``[B, H, W]`` with ids the label space accepts, B
== the number of maps given) or raise ValueError/TypeError with a message: never another exception, never a hang,
and never allocate more than the pixel limit allows (huge shapes are broadcast views that cost no memory, so
allocating their decoded size would be the bug).

CI runs a quick derandomized slice (tests/test_processing_fuzz.py). Run more examples by hand:

    OMP_NUM_THREADS=1 .venv/bin/python tests/fuzz_processor.py --examples 3000

It prints the counts (tried / clear error / accepted / bad outcome), the peak memory (tracemalloc) of the worst
accepted and refused inputs, and the process's peak RSS.
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import struct
import sys
import tempfile
import tracemalloc
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import PIL.Image
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from labelsynth import LabelMapProcessor

DTYPES = [np.bool_, np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64,
          np.float16, np.float32, np.float64, np.complex64]
SMALL_DIMS = [0, 1, 2, 3, 4, 5, 9]
HUGE_DIMS = [1, 2, 3, 4, 2000, 9000, 100_000, 2**31]
PIL_MODES = ["1", "L", "P", "I", "F", "I;16", "I;16B", "RGB", "RGBA", "RGBX", "LA", "PA", "La", "RGBa", "CMYK",
             "YCbCr", "LAB", "HSV"]
SPECIAL = [0, 1, -1, 150, 151, 255, 256, 2**31 - 1, -(2**31), 0.5, 1e30, float("nan"), float("inf"), float("-inf")]
_TMP = tempfile.mkdtemp(prefix="labelsynth-fuzz-")


def _small_arrays() -> st.SearchStrategy[np.ndarray]:
    shapes = st.lists(st.sampled_from(SMALL_DIMS), min_size=0, max_size=5).map(tuple)
    return st.builds(lambda dtype, shape: (dtype, shape), st.sampled_from(DTYPES), shapes).flatmap(
        lambda ds: hnp.arrays(np.dtype(ds[0]), ds[1])
    )


def _huge_arrays() -> st.SearchStrategy[np.ndarray]:
    """Huge shapes, tiny memory: a broadcast view of one (possibly NaN/negative/huge) value."""
    def build(dtype: type, shape: tuple[int, ...], value: Any) -> np.ndarray:
        with np.errstate(all="ignore"):
            scalar = np.array(value).astype(dtype) if np.dtype(dtype).kind != "b" else np.array(bool(value))
        return np.broadcast_to(scalar, shape)

    shapes = st.lists(st.sampled_from(HUGE_DIMS), min_size=1, max_size=4).map(tuple).filter(
        lambda shape: int(np.prod(shape, dtype=object)) * 16 < 2**62  # numpy's largest array
    )
    return st.builds(build, st.sampled_from(DTYPES), shapes, st.sampled_from(SPECIAL))


def _pil_images() -> st.SearchStrategy[PIL.Image.Image]:
    def build(mode: str, w: int, h: int, seed: int) -> PIL.Image.Image:
        image = PIL.Image.new(mode, (w, h))
        size = len(image.tobytes())
        image.frombytes(np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes())
        return image

    return st.builds(build, st.sampled_from(PIL_MODES), st.sampled_from(SMALL_DIMS), st.sampled_from(SMALL_DIMS),
                     st.integers(0, 2**16))


def _png_header(width: int, height: int, body: bytes) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(body)) + chunk(b"IEND", b""))


def _files() -> st.SearchStrategy[str]:
    """Random bytes, truncated real PNG/JPEG files and bomb headers, written to a .png path."""
    def real(fmt: str, cut: float, mode: str) -> bytes:
        buffer = io.BytesIO()
        PIL.Image.fromarray(np.random.default_rng(0).integers(0, 150, (24, 24), dtype=np.uint8)).convert(mode).save(
            buffer, fmt)
        data = buffer.getvalue()
        return data[: max(0, int(len(data) * cut))]

    contents = st.one_of(
        st.binary(max_size=200),
        st.builds(real, st.sampled_from(["PNG", "JPEG", "GIF", "BMP", "TIFF"]), st.sampled_from([0.0, 0.3, 0.9, 1.0]),
                  st.sampled_from(["L", "RGB"])),
        st.builds(_png_header, st.sampled_from(HUGE_DIMS[:-1]), st.sampled_from(HUGE_DIMS[:-1]), st.binary(max_size=64)),
    )

    def write(data: bytes) -> str:
        fd, path = tempfile.mkstemp(suffix=".png", dir=_TMP)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        return path

    return contents.map(write)


def _plausible_maps() -> st.SearchStrategy[np.ndarray]:
    """Mostly valid maps (ids 0..150 in one-map shapes), so that the accepted side is exercised too."""
    shapes = st.tuples(st.integers(1, 12), st.integers(1, 12)).flatmap(
        lambda hw: st.sampled_from([hw, (1, *hw), (*hw, 1), (1, 1, *hw), (2, *hw)]))
    return st.builds(lambda dtype, shape: (dtype, shape), st.sampled_from([np.uint8, np.int32, np.int64, np.float32]),
                     shapes).flatmap(lambda ds: hnp.arrays(np.dtype(ds[0]), ds[1], elements=st.integers(0, 150)))


def inputs() -> st.SearchStrategy[Any]:
    """One input of any form: array, tensor (of the array), PIL image, file path."""
    arrays = st.one_of(_small_arrays(), _huge_arrays(), _plausible_maps(), _plausible_maps().map(_to_tensor))
    tensors = _small_arrays().map(_to_tensor)
    return st.one_of(arrays, tensors, _pil_images(), _files())


def _to_tensor(arr: np.ndarray) -> Any:
    try:
        return torch.from_numpy(np.ascontiguousarray(arr))
    except TypeError:  # a dtype torch lacks: keep the array
        return arr


@st.composite
def calls(draw: st.DrawFn) -> tuple[str, Any]:
    """(argument, value): the value goes in as label maps, instance map or style image, alone or in a list."""
    target = draw(st.sampled_from(["label", "label", "instance", "style"]))
    value = draw(st.one_of(inputs(), st.lists(inputs(), min_size=0, max_size=3)))
    return target, value


@dataclass
class Tally:
    tried: int = 0
    clear_error: int = 0
    accepted: int = 0
    bad: list[str] = field(default_factory=list)


def check(processor: LabelMapProcessor, target: str, value: Any) -> str:
    """Run one call; return "error" or "accepted", raise AssertionError on a bad outcome."""
    base = np.zeros((8, 8), np.int64)
    try:
        if target == "label":
            out = processor(value)
        elif target == "instance":
            out = processor([base] * len(value) if isinstance(value, list) else base, instance_map=value)
        else:
            out = processor([base] * len(value) if isinstance(value, list) else base, style_image=value)
    except (ValueError, TypeError) as err:
        assert str(err).strip(), f"{type(err).__name__} without a message"
        return "error"
    labels = out["label_map"]
    assert labels.dtype == torch.int64 and labels.dim() == 3, (labels.dtype, labels.shape)
    processor.label_space.validate(labels.numpy())
    if isinstance(value, list) and all(getattr(v, "ndim", 2) == 2 for v in value):
        assert labels.shape[0] == len(value), (labels.shape, len(value))
    for key in ("instance_map", "style_image"):
        if key in out:
            assert out[key].shape[0] == labels.shape[0] and out[key].shape[-2:] == labels.shape[-2:]
    if "style_image" in out:
        assert torch.isfinite(out["style_image"]).all()
    return "accepted"


FUZZ_SETTINGS = {"deadline": None, "database": None,
                 "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=12)
    args = parser.parse_args(argv)
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    processor = LabelMapProcessor(label_space="ade20k", size=32)
    tally = Tally()
    worst = {"peak_mb": 0.0, "error_mb": 0.0, "input": None}

    @settings(max_examples=args.examples, **FUZZ_SETTINGS)
    @given(calls())
    def run(call: tuple[str, Any]) -> None:
        tally.tried += 1
        target, value = call
        tracemalloc.reset_peak()
        try:
            outcome = check(processor, target, value)
        except Exception as err:  # noqa: BLE001 -- counting every bad outcome is the point
            tally.bad.append(f"{target}: {_describe(value)}: {type(err).__name__}: {err}"[:300])
            return
        peak = tracemalloc.get_traced_memory()[1] / 2**20  # numpy allocations are traced; torch's are not
        if outcome == "error":
            tally.clear_error += 1
            worst["error_mb"] = max(worst["error_mb"], peak)
        else:
            tally.accepted += 1
            if peak > worst["peak_mb"]:
                worst.update(peak_mb=peak, input=f"{target}: {_describe(value)}")

    from hypothesis import seed as hypothesis_seed

    tracemalloc.start()
    hypothesis_seed(args.seed)(run)()
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"tried {tally.tried} / clear error {tally.clear_error} / accepted {tally.accepted} / "
          f"bad outcome {len(tally.bad)}")
    print(f"peak traced numpy memory of one call: worst accepted input {worst['peak_mb']:.1f} MB ({worst['input']}), "
          f"worst refused input {worst['error_mb']:.1f} MB")
    print(f"process peak RSS {rss:.0f} MB (after imports: {baseline:.0f} MB)")
    for line in tally.bad[:20]:
        print("BAD", line)
    return 1 if tally.bad else 0


def _describe(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_describe(v) for v in value) + "]"
    if isinstance(value, (np.ndarray, torch.Tensor)):
        return f"{type(value).__name__} {value.dtype} {tuple(value.shape)}"
    if isinstance(value, PIL.Image.Image):
        return f"PIL {value.mode} {value.size}"
    return f"file {os.path.getsize(value)} bytes" if isinstance(value, str) and os.path.exists(value) else repr(value)


if __name__ == "__main__":
    sys.exit(main())
