"""Streams and pools: the library's run path.

A `Pool` holds any number of streams (by id) on one model. `feed({id: chunk, ...})` frames every stream's
chunk, runs everything that became ready across all of them in **one** onnxruntime call, and returns each
stream's events. A bad chunk (NaN, wrong shape, wrong rate, a gap) is refused for its stream only: the
others go on, and the refusal is counted. A `Stream` is a pool of one, so a stream in a pool gives exactly
the events it gives alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from streamer.core import state as state_io
from streamer.core.errors import StreamerError, StreamError
from streamer.core.kind import Chunk, GroupedWork, Key, Kind, Work, kind_for

if TYPE_CHECKING:
    from streamer.core.model import Model


@dataclass
class TickTimes:
    """Where the last tick's time went (seconds, from the pool's clock)."""

    frame_s: float = 0.0
    model_s: float = 0.0
    judge_s: float = 0.0
    rows: int = 0  # model inputs in the one batched call


class FeedResult(Mapping[Key, list[Any]]):
    """Events per fed stream id (an id without events maps to []), and the refused chunks in `errors`.

    Only streams with events hold a list, so a tick of 10 000 streams does not build 10 000 empty lists."""

    def __init__(self, events: dict[Key, list[Any]], errors: dict[Key, StreamError], fed: Collection[Key]) -> None:
        self.events = events
        self.errors = errors
        self.fed = fed

    def __getitem__(self, key: Key) -> list[Any]:
        if key in self.events:
            return self.events[key]
        if key in self.fed:
            return []
        raise KeyError(key)

    def __iter__(self) -> Iterator[Key]:
        return iter(self.fed)

    def __len__(self) -> int:
        return len(self.fed)

    def all(self) -> list[Any]:
        """Every event of the tick, stream after stream."""
        return [e for events in self.events.values() for e in events]


def _as_chunk(value: Any) -> Chunk:
    return value if isinstance(value, Chunk) else Chunk(value)


@dataclass
class _Member:
    options: dict[str, Any]
    rejected: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


class Pool:
    """Many streams on one model; see the module docstring.

    `defaults` are options every added stream gets unless it gives its own (ECG: `rate`, `threshold`,
    `calibrate_s`, `calibrate_method`; audio: `rate`, `channels`, `hop`, `peak`; images: `add_noise`, `seed`).
    """

    def __init__(self, model: Model, clock: Callable[[], float] = time.perf_counter, **defaults: Any) -> None:
        self.model = model
        self.kind: Kind = kind_for(model)
        self.clock = clock
        self.defaults = dict(defaults)
        self.members: dict[Key, _Member] = {}
        self.last = TickTimes()

    # --- streams -------------------------------------------------------------------------------------------
    def add(self, stream_id: Key, **options: Any) -> None:
        """Open a stream; its options override the pool's defaults."""
        if stream_id in self.members:
            raise StreamError(stream_id, "already in this pool")
        merged = {**self.defaults, **options}
        self.kind.open(stream_id, merged)
        self.members[stream_id] = _Member(merged)

    def remove(self, stream_id: Key) -> list[Any]:
        """End a stream: its last events (see `flush`), then it is forgotten."""
        events = self.flush([stream_id])[stream_id]
        self.kind.close(stream_id)
        del self.members[stream_id]
        return events

    def reset(self, stream_id: Key) -> None:
        """Back to the state of a newly added stream (same options)."""
        self._member(stream_id)
        self.kind.reset(stream_id)

    def save(self, stream_id: Key) -> bytes:
        """The stream's whole state as bytes; `restore` it here or in another process to go on seamlessly."""
        self._member(stream_id)
        return state_io.pack({"model": self._identity(), "task": self.kind.task,
                              "options": self.members[stream_id].options, "kind": self.kind.save(stream_id)})

    def restore(self, stream_id: Key, blob: bytes) -> None:
        """Add a stream from saved state (replacing a stream of the same id)."""
        tree = state_io.unpack(blob)
        if tree.get("task") != self.kind.task or tree.get("model") != self._identity():
            raise StreamError(stream_id, "saved state belongs to another model",
                              expected=self._identity(), got=tree.get("model"))
        if stream_id in self.members:
            self.kind.close(stream_id)
            del self.members[stream_id]
        self.add(stream_id, **tree["options"])
        self.kind.restore(stream_id, tree["kind"])

    def __contains__(self, stream_id: object) -> bool:
        return stream_id in self.members

    def __len__(self) -> int:
        return len(self.members)

    @property
    def ids(self) -> list[Key]:
        return list(self.members)

    def counters(self, stream_id: Key) -> dict[str, int]:
        """Drops and refusals of one stream, by reason."""
        member = self._member(stream_id)
        return {**self.kind.counters(stream_id), **member.reasons}

    def describe(self, stream_id: Key) -> dict[str, Any]:
        self._member(stream_id)
        return self.kind.describe(stream_id)

    # --- data ----------------------------------------------------------------------------------------------
    def feed(self, chunks: Mapping[Key, Any]) -> FeedResult:
        """One tick: each stream's chunk (array or `Chunk`) in, each stream's ready events out."""
        prepared: dict[Key, Any] = {}
        errors: dict[Key, StreamError] = {}
        t0 = self.clock()
        for key, value in chunks.items():
            try:
                self._member(key)
                prepared[key] = self.kind.check(key, _as_chunk(value))
            except StreamError as exc:
                errors[key] = exc
                if key in self.members:
                    member = self.members[key]
                    member.rejected += 1
                    reason = f"refused: {exc.reason}"
                    member.reasons[reason] = member.reasons.get(reason, 0) + 1
        work = self.kind.frame(prepared)
        events = self._run(work, t0)
        return FeedResult(events, errors, chunks.keys())

    def flush(self, ids: Iterable[Key] | None = None) -> FeedResult:
        """End of these streams (all by default): what was still held back comes out."""
        keys = list(self.members if ids is None else ids)
        for key in keys:
            self._member(key)
        t0 = self.clock()
        events = self._run(self.kind.frame_end(keys), t0)
        return FeedResult(events, {}, keys)

    def _run(self, work: Work, t0: float) -> dict[Key, list[Any]]:
        t1 = self.clock()
        if isinstance(work, GroupedWork):  # one call per input shape, outputs flattened in group order
            rows = sum(len(g) for g in work.groups)
            outputs = np.concatenate([self.model.run(g).reshape(-1) for g in work.groups] or [np.zeros(0, np.float32)])
        else:
            rows = len(work.inputs)
            outputs = self.model.run(work.inputs) if rows else np.zeros((0,), np.float32)
        t2 = self.clock()
        events = self.kind.judge(work, outputs)
        self.last = TickTimes(t1 - t0, t2 - t1, self.clock() - t2, rows)
        return events

    # --- internals -----------------------------------------------------------------------------------------
    def _member(self, key: Key) -> _Member:
        try:
            return self.members[key]
        except KeyError:
            raise StreamError(key, "not in this pool (add it first)") from None

    def _identity(self) -> str:
        meta = self.model.meta
        return f"{meta.get('name')} {meta.get('version', '')} {meta.get('created', '')}".strip()


DEFAULT_ID = "stream"


class Stream:
    """One stream on a model: `feed(samples)` -> events, `flush()`, `reset()`, `save()` / `Stream.restore`.

    Bad input raises `StreamError` (the stream is left as it was, so the next good chunk goes on)."""

    def __init__(self, model: Model, stream_id: Key = DEFAULT_ID, clock: Callable[[], float] = time.perf_counter,
                 **options: Any) -> None:
        self.id = stream_id
        self.pool = Pool(model, clock=clock)
        self.pool.add(stream_id, **options)

    @classmethod
    def restore(cls, model: Model, blob: bytes, stream_id: Key = DEFAULT_ID) -> Stream:
        """A stream that goes on from a state saved by `save()` (here or in another process)."""
        stream = cls.__new__(cls)
        stream.id = stream_id
        stream.pool = Pool(model)
        stream.pool.restore(stream_id, blob)
        return stream

    @property
    def model(self) -> Model:
        return self.pool.model

    def feed(self, samples: Any, **extras: Any) -> list[Any]:
        """The chunk's events (those that became ready). `extras`: `start`, `rate`, and per-kind fields."""
        chunk = samples if isinstance(samples, Chunk) else Chunk(
            samples, extras.pop("start", None), extras.pop("rate", None), extras)
        result = self.pool.feed({self.id: chunk})
        if self.id in result.errors:
            raise result.errors[self.id]
        return result[self.id]

    def flush(self) -> list[Any]:
        """End of the stream: the events still held back (the stream can then be reset or dropped)."""
        return self.pool.flush([self.id])[self.id]

    def reset(self) -> None:
        self.pool.reset(self.id)

    def save(self) -> bytes:
        return self.pool.save(self.id)

    def counters(self) -> dict[str, int]:
        return self.pool.counters(self.id)

    def describe(self) -> dict[str, Any]:
        return self.pool.describe(self.id)


__all__ = ["Chunk", "FeedResult", "Pool", "Stream", "StreamError", "StreamerError", "TickTimes"]
