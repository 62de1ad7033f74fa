"""The load generator, and the example of what a device gateway sends: recorded ECGs replayed as N patients.

Each patient replays one of the given records (cycled) from its own offset, one chunk of `chunk_s` seconds
per tick, at `speed` times real time. Patients can come and go while it runs (`churn_every_s`: every that
many seconds of signal the longest-running patient leaves and a new one joins). A chunk's message id is
`<patient>:<start>`, so a gateway that sends a chunk again (after a timeout, say) stores it once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from streamer.serve.messages import ChunkMessage, chunk_subject, partition_of
from streamer.serve.transport import Bus, BusUnavailable, Outgoing

SLOTS = 10  # phases of a chunk period the patients' sends are spread over
RETRY_S = 0.5  # wait before sending again what the broker did not take
log = logging.getLogger("aestream.serve")


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
    slot: int  # which phase of the chunk period it sends in
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
        self.late_s = 0.0
        self.retries = 0  # times the broker could not take a batch of chunks (sent again)

    def _join(self) -> None:
        source = self.sources[self.joined % len(self.sources)]
        offset = int(self.rng.integers(0, max(1, len(source.signal) // 2)))
        self.active.append(_Patient(f"{self.prefix}{self.joined:05d}", source, offset, self.joined % SLOTS))
        self.joined += 1

    def _chunk(self, p: _Patient) -> ChunkMessage:
        n = int(round(self.chunk_s * p.source.rate))
        x = p.source.signal
        at = (p.offset + p.sent) % len(x)
        samples = np.take(x, np.arange(at, at + n), mode="wrap").astype(np.float32)  # a record loops at its end
        return ChunkMessage(p.id, p.source.rate, p.sent, samples, self.wall())

    async def run(self, seconds: float, stop: asyncio.Event | None = None) -> int:
        """Publish `seconds` of signal per patient (paced by `speed`); returns the chunks sent.

        Patients are spread over `SLOTS` phases of a chunk's period, as independent devices are (each
        sends when its own chunk is full), so the broker and workers see a steady flow, not one burst per
        period. `self.late_s` is how far behind its schedule the publisher fell at worst."""
        start = self.clock()
        steps = int(round(seconds / self.chunk_s)) * SLOTS
        for step in range(steps):
            if stop is not None and stop.is_set():
                break
            due = start + step * self.chunk_s / SLOTS / self.speed
            delay = due - self.clock()
            if delay > 0:
                await self.sleep(delay)  # type: ignore[misc]
            self.late_s = max(self.late_s, -delay)
            tick, slot = divmod(step, SLOTS)
            churn = self.churn_every_s and tick and (tick * self.chunk_s) % self.churn_every_s < self.chunk_s / 2
            if slot == 0 and churn:
                self.left.append(self.active.pop(0))
                self._join()
            sending = [p for p in self.active if p.slot == slot]
            chunks = [self._chunk(p) for p in sending]
            outgoing = [Outgoing(chunk_subject(partition_of(p.id, self.bus.partitions), p.id), f"{p.id}:{p.sent}",
                                 c.payload(), c.headers()) for p, c in zip(sending, chunks)]
            while True:  # as a gateway does: keep the chunks until the broker has them (ids make resending safe)
                try:
                    await self.bus.publish_chunks(outgoing)
                    break
                except BusUnavailable as exc:
                    self.retries += 1
                    if self.retries == 1 or self.retries % 20 == 0:
                        log.warning("publisher: %s; retrying", exc)
                    if stop is not None and stop.is_set():
                        return self.chunks
                    await self.sleep(RETRY_S)  # type: ignore[misc]
            for p, c in zip(sending, chunks):
                p.sent += len(c.samples)
            self.chunks += len(chunks)
        return self.chunks
