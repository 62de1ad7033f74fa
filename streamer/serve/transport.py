"""What the monitor service needs from a broker, so that another one (Redis Streams, Kafka) can follow NATS.

A partitioned chunk log with acknowledgements and redelivery, an event store that drops duplicates by
message id, a dead-letter place, leases on partitions (who works on which), a registry of live workers,
and a small store for saved stream states. `streamer.serve.nats_bus.NatsBus` implements it on NATS
JetStream (streams, durable pull consumers, key-value buckets).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


class Delivery(Protocol):
    """One chunk message as delivered: its content, whether it was delivered before, and its fate."""

    headers: dict[str, str] | None
    payload: bytes
    redelivered: bool
    sequence: int  # position in the partition's log (increasing)

    async def ack(self) -> None: ...
    async def nak(self) -> None: ...


@dataclass
class Outgoing:
    """A message to store: subject, the id duplicates are recognised by, payload."""

    subject: str
    msg_id: str
    payload: bytes


class Bus(Protocol):
    partitions: int

    async def publish_chunk(self, partition: int, patient: str, headers: dict[str, str], payload: bytes,
                            msg_id: str) -> None: ...
    async def flush_published(self) -> None:
        """Wait until every chunk published so far is stored."""
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
    async def save_state(self, patient: str, blob: bytes) -> None: ...
