"""Keras -> ONNX with a parity check, aestream metadata and a model card."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from streamer.core import metaschema, modelmeta
from streamer.core.session import create_session
from streamer.edge.quantise import QUANTISATION, quantise_int8  # noqa: F401  (the one int8 recipe)

OPSET = 17  # tf2onnx 1.17 refuses opset >= 19 for these models; 17 is verified here
PARITY_ATOL = 1e-5


def sha256_of_arrays(*arrays: np.ndarray) -> str:
    """Hash of training data, so a model card names exactly what it was fitted on."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str(a.dtype).encode() + str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()


def convert(model: Any, input_name: str = "input", opset: int = OPSET) -> Any:
    """Keras model -> ONNX ModelProto with a named input and a free batch dimension."""
    import tensorflow as tf
    import tf2onnx

    shape = (None, *model.input_shape[1:])
    signature = (tf.TensorSpec(shape, tf.float32, name=input_name),)
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=signature, opset=opset)
    return proto


def io_shapes(proto: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    def describe(values: Any) -> list[dict[str, Any]]:
        out = []
        for v in values:
            dims = [d.dim_value if d.HasField("dim_value") else None for d in v.type.tensor_type.shape.dim]
            out.append({"name": v.name, "shape": dims})
        return out

    init = {i.name for i in proto.graph.initializer}
    return describe([i for i in proto.graph.input if i.name not in init]), describe(proto.graph.output)


def parity(proto: Any, model: Any, inputs: np.ndarray) -> float:
    """Max abs difference between onnxruntime and Keras on the same held-out inputs."""
    sess = create_session(proto.SerializeToString())
    ref = np.asarray(model(inputs.astype(np.float32), training=False))
    got = sess.run(None, {sess.get_inputs()[0].name: inputs.astype(np.float32)})[0]
    return float(np.max(np.abs(ref - got)))


def export_keras(model: Any, path: str | Path, meta: dict[str, Any],
                 parity_inputs: np.ndarray | Mapping[int, np.ndarray], atol: float = PARITY_ATOL) -> dict[str, Any]:
    """Convert, parity-check (raises if worse than `atol`), embed metadata, save. Returns the full metadata.

    `parity_inputs` is one array, or for an any-size model {side: array} (every size checked, the worst kept)."""
    import onnx

    proto = convert(model)
    groups = list(parity_inputs.values()) if isinstance(parity_inputs, Mapping) else [parity_inputs]
    diff = max(parity(proto, model, g) for g in groups)
    if not diff <= atol:
        raise RuntimeError(f"ONNX parity check failed: max abs difference {diff:.3g} > {atol:g}")
    inputs, outputs = io_shapes(proto)
    full = {
        "aestream_format": modelmeta.FORMAT_VERSION,
        "created": utc_now(),
        "inputs": inputs,
        "outputs": outputs,
        **meta,
    }
    full["parity"] = {"max_abs_diff": diff, "atol": atol, "n_inputs": int(sum(len(g) for g in groups)),
                      "opset": OPSET}
    if isinstance(parity_inputs, Mapping):
        full["parity"]["sizes"] = [list(g.shape[1:]) for g in groups]
    problems = metaschema.problems(full)  # the engine refuses what breaks its schema: never write such a model
    if problems:
        raise ValueError(f"model metadata breaks the schema: {'; '.join(problems)}")
    del proto.metadata_props[:]
    for key, value in modelmeta.encode(full).items():
        proto.metadata_props.add(key=key, value=value)
    proto.producer_name = "aestream"
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, str(path))
    return full


def read_metadata(path: str | Path) -> dict[str, Any]:
    import onnx

    return modelmeta.decode({p.key: p.value for p in onnx.load(str(path)).metadata_props})


def set_metadata(path: str | Path, meta: dict[str, Any]) -> None:
    """Replace the aestream metadata of an ONNX file (graph and weights untouched)."""
    import onnx

    proto = onnx.load(str(path))
    del proto.metadata_props[:]
    for key, value in modelmeta.encode(meta).items():
        proto.metadata_props.add(key=key, value=value)
    onnx.save(proto, str(path))


def onnx_runner(path: str | Path, batch: int = 1024) -> Any:
    """A function running an ONNX model over an array in batches (for evaluating an exported file)."""
    sess = create_session(path)
    name = sess.get_inputs()[0].name

    def run(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float32)
        return np.concatenate([sess.run(None, {name: x[i:i + batch]})[0] for i in range(0, len(x), batch)])

    return run


EPOCHS_NOTE = ("epochs_budget: the most epochs the run could take (the preset's `epochs`, or --epochs; a "
               "learning-rate schedule spans it); epochs_run: how many ran; stopped_by: why it ended; "
               "recipe: the preset as run (its `epochs` is the budget)")


def epochs_meta(preset_epochs: int, budget: int, run: int, stopped_by: str,
                weights_from_epoch: int | None = None) -> dict[str, Any]:
    """The training record's epoch fields, named so a reader of the card knows what ran and why.

    `preset_epochs` is written only when --epochs overrode the preset. `weights_from_epoch` (from 1) when
    early stopping restored the weights of its best epoch.
    """
    out: dict[str, Any] = {"epochs_budget": int(budget), "epochs_run": int(run), "stopped_by": stopped_by}
    if weights_from_epoch is not None:
        out["weights_from_epoch"] = int(weights_from_epoch)
    if preset_epochs != budget:
        out["preset_epochs"] = int(preset_epochs)
    out["epochs_note"] = EPOCHS_NOTE
    return out


def write_card(meta: dict[str, Any], path: str | Path) -> Path:
    """Model card next to the model: the metadata as readable Markdown plus the raw JSON."""
    path = Path(path)
    lines = [f"# Model card: {meta.get('name')}", "",
             f"- task: `{meta.get('task')}`", f"- version: {meta.get('version')}",
             f"- created: {meta.get('created')}"]
    image = meta.get("image") or {}
    if "evaluated_sizes" in image:  # what a user may expect the figures to hold for; the engine names the rest
        lines.append(f"- evaluated at image sizes {', '.join(f'{h}x{w}' for h, w in image['evaluated_sizes'])} and "
                     f"noise sigma {', '.join(f'{g:g}' for g in image['evaluated_sigmas'])} (other sizes or "
                     "noise levels are named as outside the evaluated range on the dashboard and in the summary)")
    if (meta.get("metrics") or {}).get("warning"):  # a figure the card's reader must not miss
        lines.append(f"- **warning**: {meta['metrics']['warning']}")
    lines.append("")
    for key in ("training_data", "metrics", "threshold", "parity"):
        if key in meta:
            lines += [f"## {key.replace('_', ' ')}", "", "```json", json.dumps(meta[key], indent=2), "```", ""]
    lines += ["## all metadata", "", "```json", json.dumps(meta, indent=2, sort_keys=True), "```", ""]
    path.write_text("\n".join(lines))
    return path
