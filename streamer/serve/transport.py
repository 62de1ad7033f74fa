"""What the monitor service needs from a broker, so that another one (Redis Streams, Kafka) can follow NATS.

A partitioned chunk log with acknowledgements and redelivery, an event store that drops duplicates by
message id, a dead-letter place, leases on partitions (who works on which), a registry of live workers,
and a small store for saved stream states. `streamer.serve.nats_bus.NatsBus` implements it on NATS
JetStream (streams, durable pull consumers, key-value buckets).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from streamer.core.errors import StreamerError


class BusUnavailable(StreamerError):
    """The broker cannot be reached (or did not answer in time): the caller lets go of what it holds and
    tries again; nothing acknowledged is lost, nothing unacknowledged is kept."""


class Delivery(Protocol):
    """One chunk message as delivered: its content, whether it was delivered before, and its fate."""

    headers: dict[str, str] | None
    payload: bytes
    redelivered: bool
    sequence: int  # position in the partition's log (increasing)

    async def ack(self) -> None: ...
    async def nak(self) -> None: ...
    async def in_progress(self) -> None: ...  # still being worked on: not to be delivered again yet


@dataclass
class Outgoing:
    """A message to store: subject (`streamer.serve.messages` names them), the id duplicates are recognised
    by, payload, and headers (chunks carry theirs there)."""

    subject: str
    msg_id: str
    payload: bytes
    headers: dict[str, str] | None = None


@dataclass
class Backlog:
    """A partition's queue as the broker sees it (the dashboard's lag per partition)."""

    waiting: int  # chunks not yet delivered to a worker
    unacked: int  # delivered and not yet acknowledged (being processed, or waiting for a checkpoint)
    oldest_waiting_s: float  # how long the oldest waiting chunk has been waiting (NaN: none waiting)


class Bus(Protocol):
    partitions: int
    lease_s: float  # a lease not renewed for this long is gone

    async def publish_chunks(self, chunks: list[Outgoing]) -> None:
        """Store chunk messages and return once the broker holds them (duplicate ids are dropped)."""
        ...
    async def fetch(self, partition: int, batch: int, timeout: float) -> list[Delivery]: ...
    async def stop_fetching(self, partition: int) -> None: ...
    async def store(self, messages: list[Outgoing]) -> None:
        """Store messages and return once the broker holds them (duplicate ids are dropped by the broker)."""
        ...
    async def dead_letter(self, partition: int, reason: str, headers: dict[str, str] | None,
                          payload: bytes) -> None: ...

    async def acquire(self, partition: int, owner: str) -> bool: ...
    async def renew(self, partition: int, owner: str) -> bool: ...
    async def release(self, partition: int, owner: str) -> None: ...
    async def owners(self) -> dict[int, str]: ...

    async def announce(self, worker: str, info: dict[str, Any]) -> None: ...
    async def workers(self) -> dict[str, dict[str, Any]]: ...

    async def load_state(self, patient: str) -> bytes | None: ...

    # What the dashboard reads.
    async def backlog(self, partition: int) -> Backlog: ...
    async def dead_letter_count(self) -> int: ...
    async def follow_anomalies(self, since_s: float, on_event: Callable[[dict[str, Any]], None]) -> None:
        """Call `on_event` with each anomaly event stored from `since_s` seconds ago on, as they come."""
        ...
    async def save_states(self, blobs: dict[str, bytes]) -> None:
        """Save patients' stream states; returns once the broker holds them all."""
        ...
