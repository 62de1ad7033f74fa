"""The sidecar: `NAME.edge.json`, the model's whole contract as a JSON file any language can read.

It holds every key of the model's metadata unchanged (`metadata`), the ordered pre- and post-processing steps
(`pipeline`, from `pipelines.py`), the files of the bundle with their SHA-256 (model, int8 variant, ORT file,
conformance vectors) and notes per runtime. `format` and `version` say how to read it: a reader refuses a
version it does not know rather than guess (`read`), and refuses a sidecar whose metadata disagrees with the
model beside it (`check_agreement`): the metadata inside the .onnx stays the engine's source of truth.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from streamer.core.errors import InputError
from streamer.core.text import printable

SIDECAR_FORMAT = "aestream-edge"
SIDECAR_VERSION = 1
KNOWN_VERSIONS = (1,)
SUFFIX = ".edge.json"
MAX_SIDECAR_BYTES = 64 << 20  # a sidecar is metadata and descriptions: a few hundred kB

RUNTIME_NOTES = {
    "onnxruntime": "reads metadata_props (custom_metadata_map); the .ort file needs an onnxruntime build with "
                   "the ORT format (minimal builds: only that) and the operators listed beside it",
    "onnxruntime-node / onnxruntime-web": "cannot read metadata_props (onnxruntime issue 16547): read this "
                                          "sidecar; -web runs in node or a browser (WebAssembly)",
    "tract": "pip install tract (Rust, with a C API); give the input's concrete shape (set_input_fact) before "
             "optimising, since several graphs compute shapes at run time; a quantised graph whose Reshape targets "
             "tract cannot analyse (denoise-dense.onnx) needs its shapes folded first (streamer/edge/runtimes.py, "
             "static_graph)",
    "openvino": "set INFERENCE_PRECISION_HINT=f32: its default CPU precision (bf16/f16 where the CPU has it) "
                "gave errors up to 1.8e-2 and different top-k positions in music.encoder",
}


def sidecar_path(model_path: Path) -> Path:
    return model_path.with_name(model_path.name[:-len(".onnx")] + SUFFIX if model_path.name.endswith(".onnx")
                                else model_path.name + SUFFIX)


def build(model_path: Path, meta: Mapping[str, Any], pipeline: list[dict[str, Any]], files: Mapping[str, Any],
          created_by: str) -> dict[str, Any]:
    from streamer.edge.pipelines import CONVENTIONS, PIPELINE_VERSION, as_json

    return as_json({"format": SIDECAR_FORMAT, "version": SIDECAR_VERSION, "pipeline_version": PIPELINE_VERSION,
                    "created_by": created_by, "model": files["model"], "metadata": dict(meta),
                    "conventions": CONVENTIONS, "pipeline": pipeline,
                    "files": {k: v for k, v in files.items() if k != "model"},
                    "runtimes": RUNTIME_NOTES})


def read(path: Path) -> dict[str, Any]:
    """The sidecar at `path`, with its format and version checked: one line naming the file otherwise."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InputError(path, f"cannot read the sidecar ({exc.strerror or exc})") from None
    if size > MAX_SIDECAR_BYTES:
        raise InputError(path, f"{size} bytes is too large for a sidecar (at most {MAX_SIDECAR_BYTES})")
    try:
        doc = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise InputError(path, f"not a sidecar: not JSON ({printable(str(exc))[:120]})") from None
    if not isinstance(doc, dict) or doc.get("format") != SIDECAR_FORMAT:
        got = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise InputError(path, f"not an aestream sidecar (format {printable(repr(got))[:60]}, "
                               f"expected {SIDECAR_FORMAT!r})")
    version = doc.get("version")
    if isinstance(version, bool) or version not in KNOWN_VERSIONS:
        raise InputError(path, f"sidecar version {printable(repr(version))[:40]} is not one this aestream knows "
                               f"({', '.join(map(str, KNOWN_VERSIONS))}): use a newer aestream, or export the "
                               "model again with this one")
    for key, kind in (("model", dict), ("metadata", dict), ("pipeline", list), ("files", dict)):
        if not isinstance(doc.get(key), kind):
            raise InputError(path, f"sidecar has no {key!r} {kind.__name__}")
    return doc


def first_difference(a: Any, b: Any, where: str = "") -> tuple[str, Any, Any] | None:
    """The first key path where two JSON values differ (floats compared exactly: both come from the same JSON)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            path = f"{where}.{key}" if where else str(key)
            if key not in a or key not in b:
                return path, a.get(key, "<missing>"), b.get(key, "<missing>")
            found = first_difference(a[key], b[key], path)
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{where} (length)", len(a), len(b)
        for i, (x, y) in enumerate(zip(a, b)):
            found = first_difference(x, y, f"{where}[{i}]")
            if found:
                return found
        return None
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (a, b))  # 1 and 1.0 agree
    return None if a == b and (type(a) is type(b) or numbers) else (where, a, b)


def check_agreement(path: Path, doc: Mapping[str, Any], model_path: Path, model_meta: Mapping[str, Any]) -> None:
    """The sidecar's metadata is the model's, key for key: one line naming the first key that is not."""
    found = first_difference(json.loads(json.dumps(dict(model_meta))), doc["metadata"])
    if found:
        key, in_model, in_sidecar = found
        raise InputError(path, f"metadata {key} disagrees with {model_path.name} "
                               f"({short(in_model)} in the model, {short(in_sidecar)} in the sidecar)")


def short(value: Any) -> str:
    text = printable(json.dumps(value) if not isinstance(value, str) else repr(value))
    return text if len(text) <= 60 else text[:57] + "..."
