"""The one run path of the command line: Source -> Stream (the library) -> Sinks, with Metrics and a Report.

Every `streamer ecg|audio|images` run is a `RunPlan` executed here: blocks from the source (paced when it
is a replay), fed to one library `Stream`, its events handed to every sink and to the stream kind's
`Report` (what the dashboard shows and the summary evaluates), metrics kept on the way. The engine owns the
sinks and the source: it closes them whatever ends the run, and always returns the summary.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from streamer.core.errors import StreamerError
from streamer.core.kind import Chunk
from streamer.core.pool import Stream
from streamer.run.figures import Recorder
from streamer.run.metrics import Metrics
from streamer.run.pacing import Pacer
from streamer.run.sinks import Sink
from streamer.run.sources import Block, Source, Timing


class Report(Protocol):
    """A stream kind's record of one run, built from the blocks and events only: what the dashboard shows
    (`view`, called from the dashboard's thread) and what the summary evaluates at the end (`summary`, e.g.
    against a record's annotations)."""

    unit: str  # what its events are, counted: "beats", "frames", "images"

    def on_block(self, block: Block) -> None: ...
    def on_events(self, events: Sequence[Any]) -> None: ...
    def view(self) -> dict[str, Any]: ...
    def summary(self, metrics: dict[str, Any]) -> dict[str, Any]: ...


@dataclass
class RunPlan:
    """Everything one run needs, assembled by a stream's command from the user's options."""

    title: str
    source: Source
    stream: Stream
    sinks: list[Sink]
    report: Report
    info: dict[str, Any] = field(default_factory=dict)  # goes into the summary (model, options, outputs)
    recorder: Recorder | None = None  # with --report: what the figures need, fed like the report


class Engine:
    def __init__(self, plan: RunPlan, pacer: Pacer, clock: Callable[[], float] = time.perf_counter,
                 metrics: Metrics | None = None) -> None:
        self.plan = plan
        self.pacer = pacer
        self.clock = clock
        self.metrics = metrics or Metrics(clock)
        self.interruption: KeyboardInterrupt | None = None  # Ctrl-C, or SIGTERM turned into one
        self.error: StreamerError | None = None
        self.failed_sinks: list[Sink] = []  # sinks that raised: written to no more, closed at the end
        self.position = 0  # where the source is: the end of the last block processed (`Block.start` units)

    def run(self) -> dict[str, Any]:
        """Runs to the end of the source, an interruption or a source error; always returns the summary.

        A source error (e.g. stdin stopping mid-line) is kept in `self.error` after everything before it was
        processed and flushed, so the caller can still write the outputs and then report it.
        """
        self.process()
        return self.summary()

    def process(self) -> None:
        """The data path alone: every block through the stream to the sinks, then the flush; sinks closed."""
        plan = self.plan
        try:
            try:
                for block in plan.source.blocks():
                    if plan.source.timing is Timing.REPLAY:
                        self.pacer.wait_until((block.start + len(block.samples)) / plan.source.rate)
                    self._step(block)
                    if self.error is not None:  # a sink failed (disk full): stop reading, keep what was written
                        break
            except StreamerError as exc:
                self.error = exc
            self._deliver(plan.stream.flush(), self.clock())
        except KeyboardInterrupt as exc:
            self.interruption = exc
        finally:
            self._close()

    @property
    def interrupted(self) -> bool:
        return self.interruption is not None

    def _step(self, block: Block) -> None:
        now = self.clock()  # the block's last sample is here: latency counts from now ...
        arrival = block.arrival if block.arrival is not None else now  # ... or from when a device gave it
        events = self.plan.stream.feed(Chunk(block.samples, start=block.start, extras=block.extras))
        self.plan.report.on_block(block)
        self.position = block.start + len(block.samples)
        if self.plan.recorder is not None:
            self.plan.recorder.on_block(block)
        self._deliver(events, arrival)
        self.metrics.consumed(len(block.samples) / self.plan.source.rate, self.clock() - now)

    def _deliver(self, events: Sequence[Any], arrival: float) -> None:
        tick = self.plan.stream.pool.last
        if tick.rows:
            self.metrics.batch(tick.rows, tick.model_s)
        if not events:
            return
        for sink in list(self.plan.sinks):
            try:
                sink.write(events)
            except StreamerError as exc:  # this sink is done (disk full, folder gone): the others go on
                self.plan.sinks.remove(sink)
                self.failed_sinks.append(sink)
                self.error = self.error or exc
        self.plan.report.on_events(events)
        self.metrics.done_batch(self.clock() - arrival, len(events))
        if self.plan.recorder is not None:  # after the latency is taken: a report does not add to it
            self.plan.recorder.on_events(events)

    def _close(self) -> None:
        """Close every sink and the source, each once, even if another one fails."""
        errors: list[StreamerError] = []
        for closer in [s.close for s in self.plan.sinks + self.failed_sinks] + [self.plan.source.close]:
            try:
                closer()
            except StreamerError as exc:
                errors.append(exc)
        if errors and self.error is None:
            self.error = errors[0]

    def snapshot(self) -> dict[str, Any]:
        """Metrics with every drop merged in (what the dashboard shows)."""
        snap = self.metrics.snapshot()
        drops = {**snap["drops"], **self.plan.stream.counters(), **self.plan.source.drops()}
        for sink in self.plan.sinks + self.failed_sinks:
            drops.update(sink.drops())
        snap.update(drops=drops, dropped=sum(drops.values()))
        return snap

    def summary(self) -> dict[str, Any]:
        snap = self.snapshot()
        plan = self.plan
        out: dict[str, Any] = {
            "source": plan.source.name, "model": plan.stream.model.name, "model_path": str(plan.stream.model.path),
            "interrupted": self.interrupted, "error": str(self.error) if self.error else None,
            "duration_s": round(snap["stream_s"], 3), "realtime_factor": snap["realtime_factor"],
            "latency_ms": snap["latency_ms"], "model_ms": snap["model_ms"],
            "dropped": snap["dropped"], "drops": snap["drops"], "batches": snap["batches"], **plan.info}
        if plan.source.timing is Timing.UNTIMED:  # a folder of images has no signal time: no RTF either
            del out["duration_s"], out["realtime_factor"]
        out.update(plan.report.summary(snap))
        out.update(plan.source.summary())
        return out
