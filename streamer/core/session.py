"""The one place onnxruntime sessions are made: by the engine, the trainers' parity checks and the benchmarks.

Threads are set explicitly (intra-op `threads`, inter-op 1: these graphs are chains) and the execution
provider is chosen by a short name (`cpu`, `cuda`, `openvino`, ...) or onnxruntime's own name; CPU is the
default and the fallback onnxruntime always appends.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from streamer.core.errors import ModelError, StreamerError

PROVIDERS = {  # short names accepted by --provider
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "directml": "DmlExecutionProvider",
    "rocm": "ROCMExecutionProvider",
}


def provider_name(name: str) -> str:
    """'cpu' -> 'CPUExecutionProvider'; an onnxruntime provider name is kept as it is."""
    import onnxruntime as ort

    full = PROVIDERS.get(name.lower(), name)
    available = ort.get_available_providers()
    if full not in available:
        short = [k for k, v in PROVIDERS.items() if v in available] + [p for p in available
                                                                        if p not in PROVIDERS.values()]
        raise StreamerError(f"--provider: {name!r} is not available in this onnxruntime "
                            f"(available: {', '.join(short)})")
    return full


def create_session(model: str | Path | bytes, threads: int = 1, provider: str = "cpu") -> Any:
    """An `onnxruntime.InferenceSession` for a model file or serialized model, errors as one line."""
    import onnxruntime as ort

    if threads < 1:
        raise StreamerError(f"--threads: must be at least 1, not {threads}")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3  # errors only: warnings would break the dashboard
    full = provider_name(provider)
    providers = [full] if full == "CPUExecutionProvider" else [full, "CPUExecutionProvider"]
    source = model if isinstance(model, bytes) else str(model)
    try:
        return ort.InferenceSession(source, sess_options=opts, providers=providers)
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidProtobuf types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        where = "<in-memory model>" if isinstance(model, bytes) else model
        raise ModelError(where, f"not a readable ONNX model ({first[:120]})") from None
