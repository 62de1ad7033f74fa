"""The engine: Source -> Framer -> Model -> Task logic -> Sinks, with Metrics and a Dashboard.

Each stream supplies a `Task` (framing + task logic); sources, the model wrapper, metrics, sinks and the
dashboard are shared. All model inputs that become ready in one block run as one batch.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

import numpy as np

from streamer.core.errors import StreamerError
from streamer.run.metrics import Metrics
from streamer.core.model import Model
from streamer.run.pacing import Pacer
from streamer.run.sinks import JsonlSink
from streamer.run.sources import Block


class Source(Protocol):
    fs: float
    name: str
    live: bool

    def blocks(self) -> Iterator[Block]: ...


class Task(Protocol):
    """What differs between streams: framing (`feed`/`flush`) and what to do with model outputs.

    `count(items)` is how many user-visible items (beats, frames, images) a list of work items holds:
    an image task may pack many images into one work item.
    """

    def feed(self, block: Block) -> Sequence[Any]: ...
    def flush(self) -> Sequence[Any]: ...
    def inputs(self, items: Sequence[Any]) -> np.ndarray: ...
    def handle(self, items: Sequence[Any], inputs: np.ndarray, outputs: np.ndarray) -> list[dict[str, Any]]: ...
    def drops(self) -> dict[str, int]: ...
    def count(self, items: Sequence[Any]) -> int: ...
    def summary(self, metrics: dict[str, Any]) -> dict[str, Any]: ...
    def view(self) -> dict[str, Any]: ...


class Engine:
    def __init__(self, source: Source, task: Task, model: Model, pacer: Pacer,
                 events: JsonlSink | None = None, metrics: Metrics | None = None,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.source = source
        self.task = task
        self.model = model
        self.pacer = pacer
        self.events = events
        self.clock = clock
        self.metrics = metrics or Metrics(clock)
        self.interrupted = False
        self.error: StreamerError | None = None

    def run(self) -> dict[str, Any]:
        """Runs to the end of the source, Ctrl-C or a source error; always returns the summary.

        A source error (e.g. stdin stopping mid-line) is kept in `self.error` after everything before it
        was processed, so the caller can still write outputs and then report it.
        """
        try:
            for block in self.source.blocks():
                if not self.source.live and getattr(self.source, "paced", True):  # live: paced by its writer
                    self.pacer.wait_until((block.start + len(block.samples)) / self.source.fs)
                self._step(block)
            self._process(self.task.flush(), self.clock())
        except KeyboardInterrupt:
            self.interrupted = True
        except StreamerError as exc:
            self.error = exc
            self._process(self.task.flush(), self.clock())
        finally:
            if self.events is not None:
                self.events.close()
        return self.summary()

    def _step(self, block: Block) -> None:
        now = self.clock()  # the block's last sample is here: latency counts from now
        arrival = block.arrival if block.arrival is not None else now  # or from when the device gave it
        self._process(self.task.feed(block), arrival)
        self.metrics.consumed(len(block.samples) / self.source.fs, self.clock() - now)

    def _process(self, items: Sequence[Any], arrival: float) -> None:
        if not items:
            return
        n = self.task.count(items)
        batch = self.task.inputs(items)
        t0 = self.clock()
        outputs = self.model.run(batch)
        self.metrics.batch(n, self.clock() - t0)
        events = self.task.handle(items, batch, outputs)
        if self.events is not None:
            self.events.write(events)
        self.metrics.done_batch(self.clock() - arrival, n)

    def snapshot(self) -> dict[str, Any]:
        """Metrics snapshot with the framer's drops merged in (what the dashboard shows)."""
        snap = self.metrics.snapshot()
        source_drops = getattr(self.source, "drops", None)  # live devices count overflows
        drops = {**snap["drops"], **self.task.drops(), **(source_drops() if source_drops else {})}
        snap.update(drops=drops, dropped=sum(drops.values()))
        return snap

    def summary(self) -> dict[str, Any]:
        snap = self.snapshot()
        out = {"source": self.source.name, "model": self.model.name, "model_path": str(self.model.path),
               "interrupted": self.interrupted, "error": str(self.error) if self.error else None,
               "duration_s": round(snap["stream_s"], 3), "realtime_factor": snap["realtime_factor"],
               "latency_ms": snap["latency_ms"], "model_ms": snap["model_ms"],
               "dropped": snap["dropped"], "drops": snap["drops"], "batches": snap["batches"]}
        if not getattr(self.source, "timed", True):  # a folder of images has no signal time: no RTF either
            del out["duration_s"], out["realtime_factor"]
        out.update(self.task.summary(snap))
        source_summary = getattr(self.source, "summary", None)  # e.g. images skipped as unreadable
        if source_summary is not None:
            out.update(source_summary())
        return out
