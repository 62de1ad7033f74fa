"""The project's one int8 recipe (used by training and by `export-edge`), and its measurement against float.

Static quantisation (QDQ), never dynamic: a dynamic scale is taken over the whole batch, so an item's output
would depend on which other items share its batch (0.013 on the image model); with fixed scales each item's
output depends on that item alone, as a stream in a pool must. Training quantises the MatMuls only (int8
convolutions were slower than float ones there); `export-edge` also tries the convolutions, and keeps float
wherever the measurement says int8 does not help (`recommend`).
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from streamer.core.cstderr import silence_c_stderr
from streamer.core.session import create_session

QUANTISATION = ("onnxruntime quantize_static, QDQ: int8 weights and uint8 activations with fixed scales "
                "(MinMax calibration on training inputs), MatMul only")
EDGE_OPS = ("MatMul", "Gemm", "Conv", "ConvTranspose")  # what export-edge quantises (when the graph has them)
CALIBRATION_BATCH = 100
MIN_SPEEDUP = 1.10  # int8 is recommended only when it is at least this much faster at some measured batch ...


def quantise_int8(fp32_path: str | Path, int8_path: str | Path, calibration: np.ndarray,
                  op_types: Sequence[str] = ("MatMul",)) -> None:
    """onnxruntime's static quantisation of `op_types` (QDQ), activation scales fixed from `calibration`
    inputs (training data, or data the figures are not measured on)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    fp32_path, int8_path = Path(fp32_path).resolve(), Path(int8_path).resolve()  # the work below changes folder
    name = create_session(fp32_path).get_inputs()[0].name
    data = np.asarray(calibration, dtype=np.float32)

    class Batches(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self.batches = iter([{name: data[i:i + CALIBRATION_BATCH]} for i in range(0, len(data), CALIBRATION_BATCH)])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.batches, None)

    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        here = os.getcwd()
        os.chdir(tmp)  # symbolic shape inference leaves scratch files in the working folder
        try:
            # skip_optimization: the optimiser would fuse each MatMul + bias into a Gemm, which a MatMul-only
            # quantisation then leaves in float (the largest layers of the image model). Symbolic shape
            # inference prints what it cannot infer (harmless here): kept off the user's terminal.
            with contextlib.redirect_stdout(io.StringIO()), silence_c_stderr():
                try:
                    quant_pre_process(str(fp32_path), str(prepared), skip_optimization=True)
                except Exception:  # noqa: BLE001  (symbolic shape inference gives up on some graphs)
                    quant_pre_process(str(fp32_path), str(prepared), skip_optimization=True,
                                      skip_symbolic_shape=True)
                quantize_static(str(prepared), str(int8_path), Batches(), quant_format=QuantFormat.QDQ,
                                op_types_to_quantize=list(op_types), activation_type=QuantType.QUInt8,
                                weight_type=QuantType.QInt8)
        finally:
            os.chdir(here)


def quantisable_ops(path: Path) -> list[str]:
    """The EDGE_OPS the graph has."""
    import onnx

    present = {n.op_type for n in onnx.load(str(path), load_external_data=False).graph.node}
    return [op for op in EDGE_OPS if op in present]


def latency_ms(run: Callable[[np.ndarray], Any], x: np.ndarray, seconds: float = 0.5, min_calls: int = 20
               ) -> dict[str, float]:
    """Median and p99 wall time of `run(x)` in ms (after two warm-up calls), over at least `min_calls` calls
    or `seconds`."""
    run(x)
    run(x)
    times: list[float] = []
    t_end = time.perf_counter() + seconds
    while len(times) < min_calls or time.perf_counter() < t_end:
        t0 = time.perf_counter()
        run(x)
        times.append(time.perf_counter() - t0)
        if len(times) >= 5000:
            break
    ms = np.array(times) * 1e3
    return {"median_ms": round(float(np.median(ms)), 5), "p99_ms": round(float(np.percentile(ms, 99)), 5),
            "calls": len(times)}


def session_runner(path: Path, threads: int = 1) -> Callable[[np.ndarray], np.ndarray]:
    sess = create_session(path, threads=threads)
    name = sess.get_inputs()[0].name
    return lambda x: sess.run(None, {name: np.asarray(x, np.float32)})[0]


def speeds(paths: dict[str, Path], inputs: np.ndarray, batches: Sequence[int]) -> dict[str, dict[str, Any]]:
    """Latency per variant per batch size, 1 thread, variants interleaved batch by batch (side by side)."""
    runners = {k: session_runner(p) for k, p in paths.items()}
    out: dict[str, dict[str, Any]] = {k: {} for k in paths}
    for b in batches:
        x = np.resize(inputs, (b, *inputs.shape[1:])).astype(np.float32)
        for k, run in runners.items():
            out[k][f"batch_{b}"] = latency_ms(run, x)
    return out


def recommend(speed: dict[str, dict[str, Any]], loss_ok: bool, loss_text: str) -> tuple[str, str]:
    """('int8' or 'float32', why): int8 when it is at least MIN_SPEEDUP faster at some measured batch and its
    quality loss is acceptable (`loss_ok`, decided by the task: no changed decision, < 0.1 dB, ...)."""
    ratios = {b: speed["float32"][b]["median_ms"] / max(speed["int8"][b]["median_ms"], 1e-9)
              for b in speed["float32"]}
    best = max(ratios, key=lambda b: ratios[b])
    faster = ratios[best] >= MIN_SPEEDUP
    text = ", ".join(f"{b.replace('batch_', 'batch ')}: {r:.2f}x" for b, r in ratios.items())
    if faster and loss_ok:
        return "int8", f"int8 is faster ({text}) and {loss_text}"
    if not faster:
        return "float32", f"int8 is not faster ({text}); {loss_text}"
    return "float32", f"int8 is faster ({text}) but {loss_text}"
