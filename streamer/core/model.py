"""An aestream model: one .onnx file whose metadata configures everything; one session, one `run` call."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from streamer.core import metaschema, modelmeta
from streamer.core.errors import ModelError
from streamer.core.limits import MAX_CALL_VALUES
from streamer.core.session import create_session
from streamer.core.text import printable

if TYPE_CHECKING:
    from streamer.core.pool import Pool, Stream


class Model:
    """An aestream .onnx model: metadata read once, one `run(batch)` call per batch.

    `stream(**options)` opens one stream on it, `pool(**defaults)` a pool of many; the options depend on the
    model's task (see the README's API section).
    """

    def __init__(self, path: str | Path, threads: int = 1, provider: str = "cpu", task: str | None = None) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelError(self.path, "no such model file")
        self.session = create_session(self.path, threads=threads, provider=provider)
        props = self.session.get_modelmeta().custom_metadata_map
        metaschema.check_size(self.path, props)
        self.meta: dict[str, Any] = modelmeta.decode(props)
        if "task" not in self.meta:
            raise ModelError(self.path, "ONNX model without aestream metadata (not made by `streamer train`)")
        if task is not None and self.meta["task"] != task:
            raise ModelError(self.path, f"model is for task {printable(repr(self.meta['task']))}, "
                                        f"this stream needs {task!r}")
        metaschema.check(self.path, self.meta)  # types and ranges, before anything is read
        inp = self.session.get_inputs()[0]
        self.input_name: str = inp.name
        self.input_shape: list[Any] = list(inp.shape)
        if not self.input_shape or isinstance(self.input_shape[0], int) and self.input_shape[0] != -1:
            # the engine batches items across streams and ticks: a graph fixed to one batch size cannot take that
            raise ModelError(self.path, f"model input {printable(self.input_name)!r} has a fixed batch size "
                                        f"{self.input_shape[0] if self.input_shape else 'of none'}: "
                                        "aestream models need a free batch axis (export with batch None)")
        self.output_names: list[str] = [o.name for o in self.session.get_outputs()]
        self.provider = self.session.get_providers()[0]
        self._warm_up()

    def _warm_up(self) -> None:
        """One call at start-up, so the first real item does not pay for onnxruntime's lazy set-up."""
        item = self.input_shape[1:]
        if item and all(isinstance(d, int) for d in item):
            self.run(np.zeros((1, *item), dtype=np.float32))

    @property
    def task(self) -> str:
        return str(self.meta["task"])

    @property
    def name(self) -> str:
        return printable(str(self.meta.get("name", self.path.stem)))  # shown on terminals: no control characters

    def check_input_size(self, n: int) -> None:
        """Refuse a model whose input width is not what the stream's framer produces."""
        width = self.input_shape[-1]
        if isinstance(width, int) and width != n:
            raise ModelError(self.path, f"model input has {width} values per item, its metadata describes {n}")

    def run(self, batch: np.ndarray) -> np.ndarray:
        """First output for a batch (rows are items). A batch of more than MAX_CALL_VALUES input values is run
        in parts: the graph's intermediate tensors grow with the batch (a 4000x4000 image's tiles took 3 GB)."""
        x = batch.astype(np.float32, copy=False)
        step = max(1, MAX_CALL_VALUES // max(1, int(np.prod(x.shape[1:]))))
        if len(x) <= step:
            return self._run(x)
        return np.concatenate([self._run(x[i:i + step]) for i in range(0, len(x), step)])

    def _run(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(self.output_names[:1], {self.input_name: x})[0]

    def stream(self, **options: Any) -> Stream:
        """One stream on this model (`feed` / `flush` / `reset` / `save`)."""
        from streamer.core.pool import Stream

        return Stream(self, **options)

    def pool(self, **defaults: Any) -> Pool:
        """A pool of streams sharing this model: one batched model call per tick for all of them."""
        from streamer.core.pool import Pool

        return Pool(self, **defaults)

    def restore_stream(self, blob: bytes) -> Stream:
        """A stream that goes on from `Stream.save()` bytes (here or in another process)."""
        from streamer.core.pool import Stream

        return Stream.restore(self, blob)


def load_model(path: str | Path, threads: int = 1, provider: str = "cpu", task: str | None = None) -> Model:
    """Load an aestream .onnx model. `provider`: `cpu` (default), `cuda`, `openvino`, ... (onnxruntime's)."""
    return Model(path, threads=threads, provider=provider, task=task)

