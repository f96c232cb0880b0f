"""How far an OASIS region re-roll spills: the share of pixels outside the re-rolled region that stay unchanged.

For a released-size generator (``--size converted``, ngf 64, z_dim 64) and a tiny one (``--size tiny``), at 256x256
(ADE20K) and 256x512 (Cityscapes), and a small and a large square region (centred; the small one also in a corner),
it generates the seeded image and the same image with the region's noise re-drawn (`OASISModel.resample_noise`), on
the plain path (bit-identical wanted) and the fast path (within 1e-5 wanted), and prints, as fractions of the pixels
outside the region:

- ``outside spill``: pixels outside `influence_region(region)`, which cannot change by construction;
- ``plain ==``: pixels whose three channels are bit-identical (plain path);
- ``fast <=1e-5``: pixels within 1e-5 (fast path, compared with the fast path's own un-rolled image);
- ``< 1 level``: pixels that change by less than one 8-bit level (2/255 in [-1, 1]; plain path), i.e. look the same
  in a saved PNG up to rounding.

The spill is structural, so random weights (variance-preserving, so that changes are not hidden by a flat grey
output) are enough. ``python benchmarks/measure_oasis_spill.py [--size converted|tiny|both]``.
"""

from __future__ import annotations

import argparse
import math

import torch
from torch.nn.utils import parametrize

from labelsynth import OASISConfig, OASISModel

SIZES = {"converted": {}, "tiny": {"ngf": 8, "z_dim": 16, "spade_hidden_nc": 16, "ndf": 4}}
CASES = [("ade20k", (256, 256)), ("cityscapes", (256, 512))]
# (side, centred): a centred square is the worst case (the spill reaches out on all sides), a corner the best.
REGIONS = {"small 32x32, centre": (32, True), "small 32x32, corner": (32, False), "large 128x128, centre": (128, True)}


def random_model(preset: str, size: tuple[int, int], overrides: dict) -> OASISModel:
    torch.manual_seed(0)
    model = OASISModel(OASISConfig.for_dataset(preset, image_size=size, **overrides)).eval()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(p[0].numel()))
        for m in model.modules():  # spectral norm's eval-mode u, v: converge them on the new weights
            if parametrize.is_parametrized(m, "weight"):
                for norm in m.parametrizations.weight:
                    if hasattr(norm, "_u"):
                        w = m.parametrizations.weight.original.flatten(1)
                        u = norm._u
                        for _ in range(10):
                            v = torch.nn.functional.normalize(w.t() @ u, dim=0)
                            u = torch.nn.functional.normalize(w @ v, dim=0)
                        norm._u.copy_(u)
                        norm._v.copy_(v)
    return model


def labels_for(model: OASISModel, size: tuple[int, int]) -> torch.Tensor:
    g = torch.Generator().manual_seed(2)
    coarse = torch.randint(0, model.config.max_label_id + 1, (1, 1, size[0] // 32, size[1] // 32), generator=g)
    return torch.nn.functional.interpolate(coarse.float(), size=size, mode="nearest")[:, 0].long()


def measure(model: OASISModel, labels: torch.Tensor, side: int, centred: bool) -> dict[str, float]:
    h, w = labels.shape[-2:]
    mask = torch.zeros(1, h, w, dtype=torch.bool)
    top, left = ((h - side) // 2, (w - side) // 2) if centred else (0, 0)
    mask[:, top:top + side, left:left + side] = True
    noise = model.resample_noise(labels, mask, generator=torch.Generator().manual_seed(0),
                                 new_generator=torch.Generator().manual_seed(7))
    outside = ~mask[0]
    out = {"outside spill": float((~model.influence_region(mask)[0] & outside).sum() / outside.sum())}
    for fast in (False, True):
        model.fast_inference = fast
        with torch.no_grad():
            before = model(labels, generator=torch.Generator().manual_seed(0)).images[0]
            after = model(labels, noise=noise).images[0]
        diff = (before - after).abs().amax(0)
        if fast:
            out["fast <=1e-5"] = float(((diff <= 1e-5) & outside).sum() / outside.sum())
        else:
            out["plain =="] = float(((diff == 0) & outside).sum() / outside.sum())
            out["< 1 level"] = float(((diff < 2 / 255) & outside).sum() / outside.sum())
            out["inside mean |d|"] = float(diff[mask[0]].mean())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=("converted", "tiny", "both"), default="both")
    args = parser.parse_args()
    sizes = list(SIZES) if args.size == "both" else [args.size]
    print("| model | dataset, size | region | outside spill | plain == | fast <= 1e-5 | < 1 level | inside mean abs "
          "change |")
    print("|---|---|---|---|---|---|---|---|")
    for name in sizes:
        for preset, size in CASES:
            model = random_model(preset, size, SIZES[name])
            labels = labels_for(model, size)
            for region, (side, centred) in REGIONS.items():
                r = measure(model, labels, side, centred)
                print(f"| {name} | {preset} {size[0]}x{size[1]} | {region} | {r['outside spill']:.1%} | "
                      f"{r['plain ==']:.1%} | {r['fast <=1e-5']:.1%} | {r['< 1 level']:.1%} | {r['inside mean |d|']:.3f} |", flush=True)


if __name__ == "__main__":
    main()
