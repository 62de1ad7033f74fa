"""A stream's saved state as bytes: a JSON tree plus the numpy arrays it refers to, in one .npz (no pickle).

`pack(tree)` accepts nested dicts and lists of JSON values and numpy arrays; `unpack(blob)` gives the same
tree back. The blob is portable (little-endian .npy inside a zip), so a stream can move to another process
or machine and go on where it stopped.
"""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np

from streamer.core.errors import StreamerError

STATE_FORMAT = 1
_ARRAY = "__array__"


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


def _restore(value: Any, arrays: dict[str, np.ndarray]) -> Any:
    if isinstance(value, dict):
        if set(value) == {_ARRAY}:
            return arrays[f"a{value[_ARRAY]}"]
        return {k: _restore(v, arrays) for k, v in value.items()}
    if isinstance(value, list):
        return [_restore(v, arrays) for v in value]
    return value


def pack(tree: dict[str, Any]) -> bytes:
    arrays: list[np.ndarray] = []
    doc = {"format": STATE_FORMAT, "tree": _strip(tree, arrays)}
    buf = io.BytesIO()
    entries: dict[str, Any] = {"tree": np.frombuffer(json.dumps(doc).encode(), dtype=np.uint8)}
    entries.update({f"a{i}": a for i, a in enumerate(arrays)})
    np.savez_compressed(buf, **entries)
    return buf.getvalue()


def unpack(blob: bytes) -> dict[str, Any]:
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as z:
            doc = json.loads(bytes(z["tree"]).decode())
            arrays = {k: z[k] for k in z.files if k != "tree"}
    except Exception as exc:  # a zip, npy or JSON error: all mean "not a saved stream state"
        raise StreamerError(f"not a saved aestream stream state ({type(exc).__name__})") from None
    if doc.get("format") != STATE_FORMAT:
        raise StreamerError(f"saved stream state has format {doc.get('format')}, this aestream reads {STATE_FORMAT}")
    tree: dict[str, Any] = _restore(doc["tree"], arrays)
    return tree
