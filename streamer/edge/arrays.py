"""Arrays in JSON: little-endian bytes in base64, with dtype and shape, so any language reads them exactly.

A conformance file must hold float64 signals bit for bit (a port compares its own arithmetic against them)
and stay readable without numpy: `{"dtype": "float64", "shape": [n], "base64": "..."}` decodes in JavaScript
as `new Float64Array(Buffer.from(b64, "base64").buffer)`.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import numpy as np

DTYPES = ("float64", "float32", "int64", "int32", "uint8", "bool")


def encode(array: Any) -> dict[str, Any]:
    """An array as a JSON-ready dict (booleans stored as uint8 0/1)."""
    a = np.asarray(array)
    name = str(a.dtype)
    if name not in DTYPES:
        raise ValueError(f"arrays of dtype {name} are not stored (one of {', '.join(DTYPES)})")
    raw = a.astype(np.uint8) if name == "bool" else a
    data = np.ascontiguousarray(raw).astype(raw.dtype.newbyteorder("<"), copy=False).tobytes()
    return {"dtype": name, "shape": list(a.shape), "base64": base64.b64encode(data).decode("ascii")}


def decode(value: Mapping[str, Any]) -> np.ndarray:
    """The array a dict from `encode` holds; ValueError when it is not one."""
    try:
        name, shape, text = str(value["dtype"]), [int(v) for v in value["shape"]], str(value["base64"])
    except (KeyError, TypeError, ValueError):
        raise ValueError("not an encoded array (dtype, shape, base64)") from None
    if name not in DTYPES:
        raise ValueError(f"unknown array dtype {name!r}")
    stored = np.dtype("uint8" if name == "bool" else name).newbyteorder("<")
    try:
        data = base64.b64decode(text, validate=True)
    except ValueError:
        raise ValueError("array data is not base64") from None
    n = int(np.prod(shape)) if shape else 1
    if len(data) != n * stored.itemsize:
        raise ValueError(f"array data holds {len(data)} bytes, shape {shape} of {name} needs {n * stored.itemsize}")
    a = np.frombuffer(data, dtype=stored).reshape(shape).astype(stored.newbyteorder("="))
    return a.astype(bool) if name == "bool" else a
