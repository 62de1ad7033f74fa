"""Running a bundle's model in runtimes other than onnxruntime-Python: tract (from Python), and
onnxruntime-node / onnxruntime-web through the scripts in `js/` (node). Used by the parity tests and the
edge benchmark; each is also how an embedder would call that runtime.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from streamer.core.errors import need

JS = Path(__file__).with_name("js")
NODE_RUNTIMES = ("node", "web")  # onnxruntime-node (native) and onnxruntime-web (WebAssembly), both in node


def tract_runner(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    """A function running the .onnx in tract (one output), with a plan per input shape (tract optimises for
    concrete shapes; several graphs here compute shapes at run time, which tract only analyses once the input
    shape is known). `run.prepared` lists the shapes that needed `static_graph` first."""
    tract = need("tract", "running a model in tract", "dev")
    plans: dict[tuple[int, ...], Any] = {}
    prepared: list[tuple[int, ...]] = []

    def plan(shape: tuple[int, ...]) -> Any:
        fact = ",".join(map(str, shape)) + ",f32"
        try:
            model = tract.onnx().load(str(path))
            model.set_input_fact(0, fact)
            return model.into_model().into_runnable()
        except tract.TractError:
            prepared.append(shape)
            with tempfile.TemporaryDirectory() as tmp:
                model = tract.onnx().load(str(static_graph(path, shape[0], Path(tmp))))
                model.set_input_fact(0, fact)
                return model.into_model().into_runnable()

    def run(x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, np.float32)
        if x.shape not in plans:
            plans[x.shape] = plan(x.shape)
        return np.asarray(plans[x.shape].run([x])[0].to_numpy())

    run.prepared = prepared  # type: ignore[attr-defined]
    return run


def static_graph(path: Path, batch: int, folder: Path) -> Path:
    """The graph with its batch fixed and its shape computations folded to constants (onnxruntime's basic
    optimisations, which are standard ONNX operators): what tract 0.23 needs for a quantised graph whose
    Reshape targets it cannot analyse symbolically (denoise-dense.onnx). Made once, at build time, on a
    machine with Python; the device then runs the folded file."""
    import onnx
    import onnxruntime as ort
    from onnxruntime.tools.onnx_model_utils import fix_output_shapes, make_dim_param_fixed

    proto = onnx.load(str(path))
    dim = proto.graph.input[0].type.tensor_type.shape.dim[0]
    if dim.dim_param:
        make_dim_param_fixed(proto.graph, dim.dim_param, batch)
    else:
        dim.dim_value = batch
    fix_output_shapes(proto)
    fixed, folded = folder / "fixed.onnx", folder / "folded.onnx"
    onnx.save(proto, str(fixed))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(folded)
    ort.InferenceSession(str(fixed), options, providers=["CPUExecutionProvider"])
    return folded


def openvino_runner(path: Path, precision: str | None = "f32") -> Callable[[np.ndarray], np.ndarray]:
    """A function running the .onnx in OpenVINO on the CPU, 1 thread. `precision` "f32" sets
    INFERENCE_PRECISION_HINT, which these models need: OpenVINO's default on CPUs with bf16 or f16 units
    computes in those. None keeps OpenVINO's default."""
    ov = need("openvino", "running a model in OpenVINO", "dev")
    config: dict[str, Any] = {"INFERENCE_NUM_THREADS": 1}
    if precision:
        config["INFERENCE_PRECISION_HINT"] = precision
    compiled = ov.Core().compile_model(str(path), "CPU", config)
    request = compiled.create_infer_request()

    def run(x: np.ndarray) -> np.ndarray:
        return np.asarray(request.infer({0: np.ascontiguousarray(x, np.float32)})[0])

    return run


def node_available() -> str | None:
    """Why the node runtimes cannot run here (None when they can)."""
    if shutil.which("node") is None:
        return "node is not installed (Debian: nodejs)"
    if not all((JS / "node_modules" / package).is_dir() for package in ("onnxruntime-node", "onnxruntime-web")):
        return f"the JavaScript packages are not installed: ONNXRUNTIME_NODE_INSTALL=skip npm ci --prefix {JS}"
    return None


def node_script(script: str, args: Sequence[str], timeout: float = 600.0) -> tuple[int, list[dict[str, Any]], str]:
    """Run `js/<script>` with node: (exit code, the JSON lines it printed, stderr)."""
    proc = subprocess.run(["node", str(JS / script), *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "NODE_NO_WARNINGS": "1"})
    lines = []
    for line in proc.stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            lines.append(json.loads(line))
    return proc.returncode, lines, proc.stderr
