"""Read TensorFlow V2 checkpoint bundles (`model.ckpt.index` + `model.ckpt.data-00000-of-00001`) without TensorFlow.

A bundle is what `tf.train.Saver` (TF >= 1.x, the default "V2" format) and `tf.train.Checkpoint` write:

* `<prefix>.index` -- a LevelDB-style sorted table (SSTable). The file ends with a 48-byte footer: two block
  handles (varint64 offset + varint64 size each: the meta-index block, then the index block), zero padding, and the
  8-byte magic number 0xdb4775248b80fb57. The index block maps keys to block handles of data blocks; every block is
  followed by a 5-byte trailer (1 byte compression type, 4 bytes CRC32C). Inside a block, entries are
  prefix-compressed: varint32 shared key bytes, varint32 unshared key bytes, varint32 value size, the unshared key
  bytes, the value; an array of uint32 restart offsets and their count close the block.
* In the data blocks, the empty key holds a `BundleHeaderProto` (field 1 num_shards, field 2 endianness) and every
  other key is a tensor name whose value is a `BundleEntryProto`: 1 dtype (enum), 2 shape (`TensorShapeProto`:
  repeated field 2 `Dim` with field 1 size), 3 shard_id, 4 offset, 5 size, 6 crc32c, 7 slices.
* `<prefix>.data-<shard:05d>-of-<num_shards:05d>` -- the raw tensor bytes at (offset, size), little-endian,
  row-major.

The protobuf messages are decoded by hand (varints and length-delimited fields), so no tensorflow/protobuf import
is needed. Partitioned (sliced) variables, strings and compressed index tables are refused with a clear error.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["TFTensorEntry", "list_tf_checkpoint", "load_tf_checkpoint", "resolve_tf_checkpoint_prefix"]

_TABLE_MAGIC = 0xDB4775248B80FB57
_FOOTER_SIZE = 48
_BLOCK_TRAILER_SIZE = 5
# tensorflow/core/framework/types.proto DataType values -> numpy dtypes (little-endian).
_DTYPES = {
    1: np.dtype("<f4"), 2: np.dtype("<f8"), 3: np.dtype("<i4"), 4: np.dtype("u1"), 5: np.dtype("<i2"),
    6: np.dtype("i1"), 9: np.dtype("<i8"), 10: np.dtype("?"), 17: np.dtype("<u2"), 19: np.dtype("<f2"),
    22: np.dtype("<u4"), 23: np.dtype("<u8"),
}
_DTYPE_NAMES = {7: "string", 8: "complex64", 14: "bfloat16", 18: "complex128", 20: "resource", 21: "variant"}


@dataclass(frozen=True)
class TFTensorEntry:
    """Where a tensor of a bundle lives: dtype code, shape, data shard and byte range."""

    name: str
    dtype: int
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int
    sliced: bool = False


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated varint in TF checkpoint index")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(message: bytes) -> list[tuple[int, int | bytes]]:
    """Decode a protobuf message into (field number, value) pairs: ints for varint/fixed, bytes for length-delimited."""
    fields, pos = [], 0
    while pos < len(message):
        tag, pos = _varint(message, pos)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = _varint(message, pos)
        elif wire == 1:
            value, pos = struct.unpack_from("<Q", message, pos)[0], pos + 8
        elif wire == 2:
            length, pos = _varint(message, pos)
            value, pos = message[pos:pos + length], pos + length
        elif wire == 5:
            value, pos = struct.unpack_from("<I", message, pos)[0], pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire} in TF checkpoint index")
        fields.append((number, value))
    return fields


def _block(data: bytes, offset: int, size: int, path: Path) -> bytes:
    if offset + size + _BLOCK_TRAILER_SIZE > len(data):
        raise ValueError(f"{path}: block at {offset} (+{size} bytes) runs past the end of the file; is it truncated?")
    compression = data[offset + size]
    if compression != 0:
        raise ValueError(f"{path}: compressed table blocks (type {compression}) are not supported; TF writes "
                         "checkpoint indexes uncompressed")
    return data[offset:offset + size]


def _block_entries(block: bytes) -> list[tuple[bytes, bytes]]:
    (num_restarts,) = struct.unpack_from("<I", block, len(block) - 4)
    end = len(block) - 4 - 4 * num_restarts
    entries, pos, key = [], 0, b""
    while pos < end:
        shared, pos = _varint(block, pos)
        unshared, pos = _varint(block, pos)
        value_size, pos = _varint(block, pos)
        key = key[:shared] + block[pos:pos + unshared]
        pos += unshared
        entries.append((key, block[pos:pos + value_size]))
        pos += value_size
    return entries


def _handle(value: bytes) -> tuple[int, int]:
    offset, pos = _varint(value, 0)
    size, _ = _varint(value, pos)
    return offset, size


def resolve_tf_checkpoint_prefix(path: str | Path) -> Path:
    """The bundle prefix (`.../model.ckpt`) of a checkpoint folder, its `.index` / `.data-*` file, or the prefix.

    In a folder, the `checkpoint` state file's `model_checkpoint_path` wins, else the single `*.index` file.
    """
    path = Path(path)
    if path.is_dir():
        state = path / "checkpoint"
        if state.is_file():
            for line in state.read_text().splitlines():
                if line.startswith("model_checkpoint_path:"):
                    name = Path(line.split(":", 1)[1].strip().strip('"'))
                    prefix = name if name.is_absolute() else path / name.name
                    if prefix.with_name(prefix.name + ".index").is_file():
                        return prefix
        indexes = sorted(path.glob("*.index"))
        if len(indexes) != 1:
            found = ", ".join(p.name for p in indexes) or "none"
            raise FileNotFoundError(f"{path}: expected one TF checkpoint (*.index + *.data-*), found {found}; pass "
                                    "the checkpoint prefix, e.g. result_256p/model.ckpt")
        return indexes[0].with_suffix("")
    name = path.name
    if name.endswith(".index"):
        return path.with_name(name[: -len(".index")])
    if ".data-" in name:
        return path.with_name(name.split(".data-")[0])
    if path.with_name(name + ".index").is_file():
        return path
    raise FileNotFoundError(f"no TF checkpoint at {path} (looked for {path}.index)")


def list_tf_checkpoint(path: str | Path) -> tuple[dict[str, TFTensorEntry], int]:
    """Parse a bundle's `.index`: `({tensor name: TFTensorEntry}, num_shards)`."""
    prefix = resolve_tf_checkpoint_prefix(path)
    index_path = prefix.with_name(prefix.name + ".index")
    data = index_path.read_bytes()
    if len(data) < _FOOTER_SIZE or struct.unpack_from("<Q", data, len(data) - 8)[0] != _TABLE_MAGIC:
        raise ValueError(f"{index_path} is not a TensorFlow V2 checkpoint index (table magic number missing); V1 "
                         "checkpoints (a single model.ckpt file) must be re-saved with TF in the V2 format")
    footer = data[len(data) - _FOOTER_SIZE:]
    _, pos = _varint(footer, 0)  # meta-index handle: unused by bundles
    _, pos = _varint(footer, pos)
    index_offset, pos = _varint(footer, pos)
    index_size, _ = _varint(footer, pos)

    entries: dict[str, TFTensorEntry] = {}
    num_shards = 1
    for _, handle in _block_entries(_block(data, index_offset, index_size, index_path)):
        for key, value in _block_entries(_block(data, *_handle(handle), index_path)):
            fields = _fields(value)
            if key == b"":  # BundleHeaderProto
                header = dict(fields)
                num_shards = int(header.get(1, 1))
                if header.get(2, 0) != 0:
                    raise ValueError(f"{index_path}: big-endian checkpoints are not supported")
                continue
            info: dict[int, object] = {1: 0, 3: 0, 4: 0, 5: 0}
            shape: list[int] = []
            sliced = False
            for number, field in fields:
                if number == 2:
                    shape = [int(dict(_fields(dim)).get(1, 0)) for n, dim in _fields(field) if n == 2]
                elif number == 7:
                    sliced = True
                else:
                    info[number] = field
            name = key.decode("utf-8")
            entries[name] = TFTensorEntry(name, int(info[1]), tuple(shape), int(info[3]), int(info[4]),
                                          int(info[5]), sliced)
    return entries, num_shards


def load_tf_checkpoint(path: str | Path, names: list[str] | None = None) -> dict[str, np.ndarray]:
    """Read tensors of a bundle as numpy arrays (all, or those in `names`), memory-mapping the data shards.

    Args:
        path: a checkpoint folder, `.index`/`.data-*` file, or the bundle prefix (`result_256p/model.ckpt`).
        names: tensor names to read (e.g. without optimizer slots, which triple the size); None reads all.

    Raises:
        FileNotFoundError: a data shard is missing (the `.data-*` files are downloaded separately from the index).
        ValueError: unsupported dtype, partitioned variable, or a size that does not match the shape.
    """
    prefix = resolve_tf_checkpoint_prefix(path)
    entries, num_shards = list_tf_checkpoint(prefix)
    if names is not None:
        unknown = [n for n in names if n not in entries]
        if unknown:
            raise KeyError(f"tensors {unknown} are not in {prefix}")
        entries = {n: entries[n] for n in names}
    shards: dict[int, np.memmap] = {}
    arrays = {}
    for name, entry in entries.items():
        if entry.sliced:
            raise ValueError(f"{name} is a partitioned (sliced) variable, which this reader does not support")
        if entry.dtype not in _DTYPES:
            kind = _DTYPE_NAMES.get(entry.dtype, f"code {entry.dtype}")
            raise ValueError(f"{name} has TF dtype {kind}, which this reader does not support")
        dtype = _DTYPES[entry.dtype]
        count = int(np.prod(entry.shape, dtype=np.int64))
        if count * dtype.itemsize != entry.size:
            raise ValueError(f"{name}: {entry.size} bytes stored for shape {entry.shape} of {dtype} "
                             f"({count * dtype.itemsize} expected)")
        if entry.shard_id not in shards:
            shard = prefix.with_name(f"{prefix.name}.data-{entry.shard_id:05d}-of-{num_shards:05d}")
            if not shard.is_file():
                raise FileNotFoundError(f"data shard {shard} is missing (it holds the weights; the .index alone only "
                                        "lists names and shapes)")
            shards[entry.shard_id] = np.memmap(shard, dtype=np.uint8, mode="r")
        raw = shards[entry.shard_id][entry.offset:entry.offset + entry.size]
        if raw.size != entry.size:
            raise ValueError(f"{name}: data shard is shorter than the index says; the download is incomplete")
        arrays[name] = np.array(raw).view(dtype).reshape(entry.shape)  # a writable copy, off the memory map
    return arrays
