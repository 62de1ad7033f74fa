"""Small exact ONNX models with aestream metadata, built with `onnx.helper`, for testing the engine's
framing and arithmetic: an identity, a gain, and a linear DCT codec split into encoder and decoder.
Their outputs are known in closed form, so tests can compare the engine's results exactly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from streamer.core import modelmeta

FRAME, RATE, LATENT = 4096, 8000, 1024


def _meta(name: str, part: str, inputs: int, outputs: int, latent: dict[str, Any] | None = None,
          companions: dict[str, str] | None = None) -> dict[str, Any]:
    return {"aestream_format": modelmeta.FORMAT_VERSION, "task": modelmeta.AUDIO_TASK, "name": name,
            "version": "test", "created": "2026-01-01T00:00:00+00:00",
            "inputs": [{"name": "input", "shape": [None, inputs]}],
            "outputs": [{"name": "output", "shape": [None, outputs]}],
            "training_data": {"name": "none: a closed-form test model"}, "metrics": {},
            "sample_rate_hz": RATE, "frame": {"length": FRAME},
            "normalisation": {"kind": "peak", "scope": "piece", "target": 1.0},
            "part": part, "latent": latent or {"kind": "dense", "size": LATENT}, "companions": companions or {}}


def _save(path: Path, nodes: list[Any], inits: list[Any], in_shape: list[Any], out_shape: list[Any],
          meta: dict[str, Any]) -> Path:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(nodes, meta["name"],
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, in_shape)],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, out_shape)],
                              initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for key, value in modelmeta.encode(meta).items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))
    return path


def gain_model(path: Path, gain: float = 1.0, task: str = modelmeta.AUDIO_TASK) -> Path:
    """output = gain * input (gain 1: the identity)."""
    from onnx import helper, numpy_helper

    meta = _meta(path.stem, "autoencoder", FRAME, FRAME)
    meta["task"] = task
    init = numpy_helper.from_array(np.array(gain, dtype=np.float32), "gain")
    node = helper.make_node("Mul", ["input", "gain"], ["output"])
    return _save(path, [node], [init], [None, FRAME], [None, FRAME], meta)


def dct_matrix(n: int = FRAME) -> np.ndarray:
    """Orthonormal DCT-II as a matrix (rows are basis vectors)."""
    from scipy.fft import dct

    return dct(np.eye(n), norm="ortho", axis=0)  # D @ x == dct(x)


def dct_codec(folder: Path, name: str = "dct") -> Path:
    """A linear codec: keep the first LATENT DCT coefficients. Writes NAME.onnx (+ .encoder/.decoder)."""
    from onnx import helper, numpy_helper

    basis = dct_matrix()[:LATENT].astype(np.float32)  # (LATENT, FRAME)
    companions = {"encoder": f"{name}.encoder.onnx", "decoder": f"{name}.decoder.onnx"}
    enc_w = numpy_helper.from_array(basis.T.copy(), "w")  # x (n, FRAME) @ w -> (n, LATENT)
    dec_w = numpy_helper.from_array(basis.copy(), "w")
    _save(folder / companions["encoder"], [helper.make_node("MatMul", ["input", "w"], ["output"])], [enc_w],
          [None, FRAME], [None, LATENT], _meta(f"{name}-encoder", "encoder", FRAME, LATENT))
    _save(folder / companions["decoder"], [helper.make_node("MatMul", ["input", "w"], ["output"])], [dec_w],
          [None, LATENT], [None, FRAME], _meta(f"{name}-decoder", "decoder", LATENT, FRAME))
    full_w = numpy_helper.from_array((basis.T @ basis).astype(np.float32), "w")
    return _save(folder / f"{name}.onnx", [helper.make_node("MatMul", ["input", "w"], ["output"])], [full_w],
                 [None, FRAME], [None, FRAME], _meta(name, "autoencoder", FRAME, FRAME, companions=companions))


def image_model(path: Path, kind: str = "identity", side: int = 32, task: str = modelmeta.IMAGE_TASK) -> Path:
    """A closed-form image 'denoiser' on (n, side, side): `identity`, or `invert` (1 - x)."""
    from onnx import helper, numpy_helper

    meta = {"aestream_format": modelmeta.FORMAT_VERSION, "task": task, "name": path.stem, "version": "test",
            "created": "2026-01-01T00:00:00+00:00",
            "inputs": [{"name": "input", "shape": [None, side, side]}],
            "outputs": [{"name": "output", "shape": [None, side, side]}],
            "training_data": {"name": "none: a closed-form test model"}, "metrics": {},
            "image": {"height": side, "width": side, "channels": 1},
            "noise": {"kind": "gaussian", "sigma": 0.5, "clip": [0, 1]},
            "normalisation": {"kind": "scale", "divide_by": 255, "range": [0, 1]}}
    if kind == "identity":
        nodes, inits = [helper.make_node("Identity", ["input"], ["output"])], []
    else:
        nodes = [helper.make_node("Sub", ["one", "input"], ["output"])]
        inits = [numpy_helper.from_array(np.array(1.0, dtype=np.float32), "one")]
    return _save(path, nodes, inits, [None, side, side], [None, side, side], meta)
