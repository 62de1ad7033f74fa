"""One onnxruntime session per model, configured entirely by the model's own metadata."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from streamer import modelmeta
from streamer.errors import ModelError


def _session(path: Path, threads: int) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3  # errors only: warnings would break the dashboard
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidProtobuf types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(path, f"not a readable ONNX model ({first[:120]})") from None


class OnnxModel:
    """An aestream .onnx model: metadata read once, one `run(batch)` call per batch."""

    def __init__(self, path: str | Path, threads: int = 1, task: str | None = None) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelError(self.path, "no such model file")
        self.session = _session(self.path, threads)
        self.meta = modelmeta.decode(self.session.get_modelmeta().custom_metadata_map)
        if "task" not in self.meta:
            raise ModelError(self.path, "ONNX model without aestream metadata (not made by `streamer train`)")
        if task is not None and self.meta["task"] != task:
            raise ModelError(self.path, f"model is for task {self.meta['task']!r}, this stream needs {task!r}")
        missing = modelmeta.missing_keys(self.meta)
        if missing:
            raise ModelError(self.path, f"model metadata lacks {', '.join(missing)}")
        inp = self.session.get_inputs()[0]
        self.input_name: str = inp.name
        self.input_shape: list[Any] = list(inp.shape)
        self.output_names: list[str] = [o.name for o in self.session.get_outputs()]
        self._warm_up()

    def _warm_up(self) -> None:
        """One call at start-up, so the first real item does not pay for onnxruntime's lazy set-up."""
        item = self.input_shape[1:]
        if item and all(isinstance(d, int) for d in item):
            self.run(np.zeros((1, *item), dtype=np.float32))

    @property
    def name(self) -> str:
        return str(self.meta.get("name", self.path.stem))

    def check_input_size(self, n: int) -> None:
        """Refuse a model whose input width is not what the stream's framer produces."""
        width = self.input_shape[-1]
        if isinstance(width, int) and width != n:
            raise ModelError(self.path, f"model input has {width} values per item, its metadata describes {n}")

    def run(self, batch: np.ndarray) -> np.ndarray:
        """First output for a batch (rows are items)."""
        return self.session.run(self.output_names[:1], {self.input_name: batch.astype(np.float32, copy=False)})[0]
