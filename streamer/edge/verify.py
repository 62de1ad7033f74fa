"""`verify-edge`: check a bundle the way a port relies on it, each problem one line naming the file.

In order: the sidecar's format and version; the model file it names (a file in the bundle's folder) and
its checksum; the model's metadata (the engine's schema, then key for key against the sidecar's copy); the
conformance file's format, version and model checksum; and the model stage of the vectors in onnxruntime.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from streamer.core.errors import InputError
from streamer.core.model import Model
from streamer.core.text import printable
from streamer.edge import conformance, sidecar
from streamer.edge.conformance import sha256

MAX_CONFORMANCE_BYTES = 512 << 20


def bundle_file(sidecar_file: Path, name: Any, what: str) -> Path:
    """A file the sidecar names: only a plain name in the sidecar's own folder (never a path elsewhere)."""
    if not isinstance(name, str) or Path(name).name != name or name in ("", ".", "..") or "\\" in name:
        raise InputError(sidecar_file, f"the {what} must be a file name in the bundle's folder, "
                                       f"not {printable(repr(name))[:80]}")
    path = sidecar_file.parent / name
    if not path.is_file():
        raise InputError(sidecar_file, f"the {what} {name} is missing from {sidecar_file.parent}")
    return path


def read_conformance(path: Path, model_path: Path, model_sha: str) -> dict[str, Any]:
    """The conformance file, checked to belong to the model (by checksum)."""
    size = path.stat().st_size
    if size > MAX_CONFORMANCE_BYTES:
        raise InputError(path, f"{size} bytes is too large for a conformance file")
    try:
        doc = json.loads(path.read_bytes())
    except ValueError as exc:
        raise InputError(path, f"not a conformance file: not JSON ({printable(str(exc))[:100]})") from None
    if not isinstance(doc, dict) or doc.get("format") != conformance.FORMAT:
        raise InputError(path, f"not an aestream conformance file (expected format {conformance.FORMAT!r})")
    if doc.get("version") != conformance.VERSION or isinstance(doc.get("version"), bool):
        raise InputError(path, f"conformance version {printable(repr(doc.get('version')))[:40]} is not one this "
                               f"aestream knows ({conformance.VERSION})")
    written_for: dict[str, Any] = doc["model"] if isinstance(doc.get("model"), dict) else {}
    if written_for.get("sha256") != model_sha:
        name = printable(repr(written_for.get("name")))
        raise InputError(path, f"does not match {model_path.name}: written for sha256 "
                               f"{str(written_for.get('sha256'))[:12]}... (model {name}), the model is "
                               f"{model_sha[:12]}...")
    if not isinstance(doc.get("stages"), list):
        raise InputError(path, "conformance file has no stages")
    return doc


def model_stage(path: Path, model: Model, doc: Mapping[str, Any]) -> dict[str, Any]:
    """The model's outputs on the vectors' inputs, against the reference outputs and their tolerance."""
    try:
        stages = conformance.stages_by_name(doc)
        inputs, _ = stages["model_inputs"]
        want, tol = stages["model_outputs"]
    except (KeyError, ValueError, TypeError) as exc:
        raise InputError(path, f"stage model_inputs or model_outputs missing or damaged ({exc})") from None
    if inputs.ndim != len(model.input_shape) or any(isinstance(d, int) and d != g
                                                    for d, g in zip(model.input_shape[1:], inputs.shape[1:])):
        raise InputError(path, f"model_inputs of shape {list(inputs.shape)} do not fit {model.path.name}'s input "
                               f"{['batch' if not isinstance(d, int) else d for d in model.input_shape]}")
    got = model.run(inputs)
    ok, diff = conformance.within(got, want, tol)
    return {"rows": int(inputs.shape[0]), "max_abs_diff": diff, "tolerance": tol, "ok": ok}


def verify(sidecar_file: Path) -> dict[str, Any]:
    """Every check above on one bundle; returns what was measured. Raises InputError (one line) on a problem."""
    doc = sidecar.read(sidecar_file)
    model_path = bundle_file(sidecar_file, doc["model"].get("file"), "model")
    model = Model(model_path)
    sidecar.check_agreement(sidecar_file, doc, model_path, model.meta)
    digest = sha256(model_path)
    if doc["model"].get("sha256") != digest:
        raise InputError(sidecar_file, f"written for another {model_path.name} (sha256 "
                                       f"{str(doc['model'].get('sha256'))[:12]}..., the file is {digest[:12]}...)")
    conf = doc["files"].get("conformance") or {}
    conf_path = bundle_file(sidecar_file, conf.get("file"), "conformance file")
    report: dict[str, Any] = {"model": model_path.name, "sidecar_version": doc["version"],
                              "model_stage": model_stage(conf_path, model, read_conformance(conf_path, model_path,
                                                                                             digest))}
    for key in ("int8", "ort"):
        entry = doc["files"].get(key) or {}
        if entry.get("file"):
            variant = bundle_file(sidecar_file, entry["file"], f"{key} file")
            if sha256(variant) != entry.get("sha256"):
                raise InputError(sidecar_file, f"the {key} file {variant.name} is not the one it was written with "
                                               "(sha256 differs)")
            report[key] = {"file": variant.name, "bytes": variant.stat().st_size}
    return report


def sidecars(paths: list[Path]) -> list[Path]:
    """The sidecars given, or found in the folders given."""
    found: list[Path] = []
    for p in paths:
        if p.is_dir():
            inside = sorted(p.glob(f"*{sidecar.SUFFIX}"))
            if not inside:
                raise InputError(p, f"no sidecar (*{sidecar.SUFFIX}) in this folder")
            found += inside
        elif p.is_file():
            found.append(p)
        else:
            raise InputError(p, "no such file or folder")
    return found
