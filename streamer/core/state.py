"""A stream's saved state as bytes: a JSON tree plus the numpy arrays it refers to (no pickle).

Layout: the magic `AESTATE1`, the JSON header's length (4 bytes, little-endian), the JSON header, then the
arrays' raw bytes one after another. The header holds the tree, with each array replaced by
`{"__array__": i}`, and for each array its dtype (little-endian), shape and byte offset. Packing and
unpacking cost ~0.1 ms for an ECG stream (a zip-based .npz took 1.5-2.5 ms), which matters when a worker
checkpoints thousands of streams. The bytes are portable: a stream can move to another process or machine
and go on where it stopped.
"""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np

from streamer.core.errors import StreamerError

MAGIC = b"AESTATE1"
_ARRAY = "__array__"
_LENGTH = struct.Struct("<I")


def _strip(value: Any, arrays: list[np.ndarray]) -> Any:
    if isinstance(value, np.ndarray):
        arrays.append(value)
        return {_ARRAY: len(arrays) - 1}
    if isinstance(value, dict):
        return {str(k): _strip(v, arrays) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strip(v, arrays) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _restore(value: Any, arrays: list[np.ndarray]) -> Any:
    if isinstance(value, dict):
        if set(value) == {_ARRAY}:
            return arrays[value[_ARRAY]]
        return {k: _restore(v, arrays) for k, v in value.items()}
    if isinstance(value, list):
        return [_restore(v, arrays) for v in value]
    return value


def pack(tree: dict[str, Any]) -> bytes:
    arrays: list[np.ndarray] = []
    doc = _strip(tree, arrays)
    table, chunks, offset = [], [], 0
    for a in arrays:
        dtype = a.dtype.newbyteorder("<") if a.dtype.byteorder == ">" else a.dtype
        data = a.astype(dtype, order="C", copy=False)  # (np.ascontiguousarray would make 0-d arrays 1-d)
        raw = data.tobytes()
        table.append({"dtype": data.dtype.str, "shape": list(data.shape), "offset": offset})
        chunks.append(raw)
        offset += len(raw)
    header = json.dumps({"tree": doc, "arrays": table}).encode()
    return b"".join([MAGIC, _LENGTH.pack(len(header)), header, *chunks])


def unpack(blob: bytes) -> dict[str, Any]:
    try:
        if blob[:len(MAGIC)] != MAGIC:
            raise ValueError("no magic")
        (n,) = _LENGTH.unpack_from(blob, len(MAGIC))
        start = len(MAGIC) + _LENGTH.size
        doc = json.loads(blob[start:start + n].decode())
        data = memoryview(blob)[start + n:]
        arrays = []
        for entry in doc["arrays"]:
            dtype = np.dtype(entry["dtype"])
            count = int(np.prod(entry["shape"], dtype=np.int64))
            arr = np.frombuffer(data, dtype=dtype, count=count, offset=int(entry["offset"]))
            arrays.append(arr.reshape(entry["shape"]).copy())
        tree: dict[str, Any] = _restore(doc["tree"], arrays)
    except Exception as exc:  # a truncated or foreign blob: all mean "not a saved stream state"
        raise StreamerError(f"not a saved aestream stream state ({type(exc).__name__})") from None
    return tree
