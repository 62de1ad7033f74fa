"""The load generator, and the example of what a device gateway sends: recorded ECGs replayed as N patients.

Each patient replays one of the given records (cycled) from its own offset, one chunk of `chunk_s` seconds
per tick, at `speed` times real time. Patients can come and go while it runs (`churn_every_s`: every that
many seconds of signal the longest-running patient leaves and a new one joins). A chunk's message id is
`<patient>:<start>`, so a gateway that sends a chunk again (after a timeout, say) stores it once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from streamer.serve.messages import ChunkMessage, partition_of
from streamer.serve.transport import Bus


@dataclass
class Source:
    """A recorded signal to replay (mV) and its rate."""

    signal: np.ndarray
    rate: float


@dataclass
class _Patient:
    id: str
    source: Source
    offset: int  # where in the record this patient starts
    sent: int = 0  # samples sent


class Publisher:
    def __init__(self, bus: Bus, sources: Sequence[Source], patients: int, chunk_s: float = 1.0, speed: float = 1.0,
                 seed: int = 0, prefix: str = "patient-", churn_every_s: float | None = None,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time,
                 sleep: Callable[[float], object] = asyncio.sleep) -> None:
        self.bus = bus
        self.sources = list(sources)
        self.chunk_s = chunk_s
        self.speed = speed
        self.rng = np.random.default_rng(seed)
        self.prefix = prefix
        self.churn_every_s = churn_every_s
        self.clock, self.wall, self.sleep = clock, wall, sleep
        self.joined = 0
        self.active: list[_Patient] = []
        self.left: list[_Patient] = []
        for _ in range(patients):
            self._join()
        self.chunks = 0

    def _join(self) -> None:
        source = self.sources[self.joined % len(self.sources)]
        offset = int(self.rng.integers(0, max(1, len(source.signal) // 2)))
        self.active.append(_Patient(f"{self.prefix}{self.joined:05d}", source, offset))
        self.joined += 1

    def _chunk(self, p: _Patient) -> ChunkMessage:
        n = int(round(self.chunk_s * p.source.rate))
        x = p.source.signal
        at = (p.offset + p.sent) % len(x)
        samples = np.take(x, np.arange(at, at + n), mode="wrap").astype(np.float32)  # a record loops at its end
        return ChunkMessage(p.id, p.source.rate, p.sent, samples, self.wall())

    async def run(self, seconds: float, stop: asyncio.Event | None = None) -> int:
        """Publish `seconds` of signal per patient (paced by `speed`); returns the chunks sent."""
        start = self.clock()
        ticks = int(round(seconds / self.chunk_s))
        for tick in range(ticks):
            if stop is not None and stop.is_set():
                break
            due = start + tick * self.chunk_s / self.speed
            delay = due - self.clock()
            if delay > 0:
                await self.sleep(delay)  # type: ignore[misc]
            if self.churn_every_s and tick and (tick * self.chunk_s) % self.churn_every_s < self.chunk_s / 2:
                self.left.append(self.active.pop(0))
                self._join()
            for p in self.active:
                chunk = self._chunk(p)
                await self.bus.publish_chunk(partition_of(p.id, self.bus.partitions), p.id, chunk.headers(),
                                             chunk.payload(), f"{p.id}:{p.sent}")
                p.sent += len(chunk.samples)
                self.chunks += 1
            await self.bus.flush_published()
        return self.chunks
