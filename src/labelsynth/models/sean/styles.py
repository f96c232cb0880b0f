"""`SEANStyles`: SEAN's per-region style codes as an editable object.

SEAN encodes a style image into one code per semantic class (the average of the style encoder's features over the
class's region). Every style-using ResBlock of the generator reads those codes; keeping one copy per block allows
mixing styles per block ("crossover"), as style-mixing in StyleGAN. Edits return new objects:

```python
styles = model.encode_styles(image, label_map)           # [B, blocks, classes, 512]
styles = styles.swap("hair", source=other)               # hair style of another image, in every block
styles = styles.interpolate(other, 0.5)                  # halfway between two styles (all regions, or some)
styles = styles.crossover(other, blocks=["up_1", "up_2"])  # fine-scale blocks from another image
styles.save("styles.safetensors"); SEANStyles.load("styles.safetensors")
```
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

Selector = int | str | Iterable[int | str]


@dataclass(frozen=True)
class SEANStyles:
    """Region style codes of a batch of images.

    Args:
        codes (`FloatTensor[B, num_blocks, num_classes, style_dim]`): `codes[b, r, j]` is the code block `r` uses
            for class `j` of image `b`. Classes absent from the style image have zero codes (as in the original).
        block_names: names of the style-using ResBlocks, in forward order.
        class_names: names of the classes (the model's label space).
    """

    codes: torch.Tensor
    block_names: tuple[str, ...]
    class_names: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.codes.dim() != 4:
            raise ValueError(f"codes must be [B, num_blocks, num_classes, style_dim], got {tuple(self.codes.shape)}")
        if self.codes.shape[1] != len(self.block_names) or self.codes.shape[2] != len(self.class_names):
            raise ValueError(
                f"codes {tuple(self.codes.shape)} do not match {len(self.block_names)} blocks x "
                f"{len(self.class_names)} classes"
            )
        object.__setattr__(self, "block_names", tuple(self.block_names))
        object.__setattr__(self, "class_names", tuple(self.class_names))

    @classmethod
    def from_region_codes(cls, codes: torch.Tensor, block_names: Sequence[str], class_names: Sequence[str]
                          ) -> SEANStyles:
        """The same `[B, num_classes, style_dim]` codes for every block (what the style encoder gives)."""
        return cls(codes.unsqueeze(1).expand(-1, len(block_names), -1, -1), tuple(block_names), tuple(class_names))

    def __len__(self) -> int:
        return self.codes.shape[0]

    def __getitem__(self, index: int | slice) -> SEANStyles:
        """Select images of the batch (an int keeps the batch dimension)."""
        codes = self.codes[index : index + 1] if isinstance(index, int) else self.codes[index]
        return SEANStyles(codes, self.block_names, self.class_names)

    def to(self, *args, **kwargs) -> SEANStyles:
        """`Tensor.to` on the codes."""
        return SEANStyles(self.codes.to(*args, **kwargs), self.block_names, self.class_names)

    # ------------------------------------------------------------------------------------------------ selection
    def _indices(self, selector: Selector | None, names: tuple[str, ...], what: str) -> list[int]:
        if selector is None:
            return list(range(len(names)))
        items = [selector] if isinstance(selector, (int, str)) else list(selector)
        indices = []
        for item in items:
            if isinstance(item, str):
                if item not in names:
                    raise ValueError(f"unknown {what} {item!r}; known: {', '.join(names)}")
                indices.append(names.index(item))
            elif 0 <= int(item) < len(names):
                indices.append(int(item))
            else:
                raise ValueError(f"{what} index {item} is out of range 0..{len(names) - 1}")
        return indices

    def _mask(self, region: Selector | None, blocks: Selector | None) -> torch.Tensor:
        """Boolean `[1, num_blocks, num_classes, 1]` of the selected (block, class) codes."""
        mask = torch.zeros(1, len(self.block_names), len(self.class_names), 1, dtype=torch.bool,
                           device=self.codes.device)
        rows = self._indices(blocks, self.block_names, "block")
        cols = self._indices(region, self.class_names, "region")
        mask[:, torch.tensor(rows)[:, None], torch.tensor(cols)[None, :]] = True
        return mask

    def _other(self, other: SEANStyles, name: str) -> torch.Tensor:
        if not isinstance(other, SEANStyles):
            raise TypeError(f"{name} must be SEANStyles (from SEANModel.encode_styles), got {type(other).__name__}")
        if other.codes.shape[1:] != self.codes.shape[1:] or other.class_names != self.class_names:
            raise ValueError(
                f"{name} has codes {tuple(other.codes.shape)} but these styles are {tuple(self.codes.shape)}; "
                "both must come from the same model"
            )
        if len(other) not in (1, len(self)):
            raise ValueError(f"{name} has batch size {len(other)}; expected 1 or {len(self)}")
        return other.codes.to(self.codes.device, self.codes.dtype)

    # ------------------------------------------------------------------------------------------------ editing
    def swap(self, region: Selector | None, source: SEANStyles, blocks: Selector | None = None) -> SEANStyles:
        """These styles with the codes of `region` (class name(s) or id(s)) taken from `source`.

        Args:
            region: the class(es) whose style changes, e.g. "hair" or ["l_eye", "r_eye"]; None: every class.
            source: styles of another image (batch size 1 or the same).
            blocks: only in these ResBlocks (names or indices); all by default.
        """
        codes = torch.where(self._mask(region, blocks), self._other(source, "source"), self.codes)
        return SEANStyles(codes, self.block_names, self.class_names)

    def interpolate(self, other: SEANStyles, t: float, region: Selector | None = None,
                    blocks: Selector | None = None) -> SEANStyles:
        """`(1 - t) * self + t * other` (t = 0 gives these styles, t = 1 `other`), for all or some regions/blocks."""
        mixed = torch.lerp(self.codes, self._other(other, "other"), float(t))
        codes = torch.where(self._mask(region, blocks), mixed, self.codes)
        return SEANStyles(codes, self.block_names, self.class_names)

    def crossover(self, other: SEANStyles, blocks: Selector) -> SEANStyles:
        """These styles with every code of the ResBlocks `blocks` (names or indices) taken from `other`."""
        return self.swap(None, other, blocks=blocks)

    # ------------------------------------------------------------------------------------------------ files
    def save(self, path: str | Path) -> None:
        """Write the codes and their block/class names to a safetensors file."""
        metadata = {"format": "labelsynth.SEANStyles", "block_names": json.dumps(self.block_names),
                    "class_names": json.dumps(self.class_names)}
        save_file({"codes": self.codes.detach().contiguous().cpu()}, str(path), metadata=metadata)

    @classmethod
    def load(cls, path: str | Path) -> SEANStyles:
        """Read codes written by `save`."""
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        if metadata.get("format") != "labelsynth.SEANStyles":
            raise ValueError(f"{path} is not a SEAN style-code file (written by SEANStyles.save)")
        codes = load_file(str(path))["codes"]
        return cls(codes, tuple(json.loads(metadata["block_names"])), tuple(json.loads(metadata["class_names"])))
