"""The monitor service's `Bus` on NATS JetStream (client: nats-py, the `serve` extra).

- Chunks: stream `AESTREAM_CHUNKS`, subject `aestream.chunks.<partition>.<patient>`, file storage, kept
  `retention_s`; the publisher's message id `<patient>:<start>` makes a re-sent chunk a no-op.
- Per partition one durable pull consumer `part-<p>` (explicit acks, redelivery after `ack_wait`): a
  worker that owns the partition fetches from it; when a worker dies, what it had not acknowledged is
  delivered again to the next owner.
- Events: stream `AESTREAM_EVENTS`, subjects `aestream.beats.<patient>` and `aestream.anomalies.<patient>`,
  duplicates (same message id within `duplicate_window_s`) dropped by the server.
- Dead letters: stream `AESTREAM_DEAD`, subject `aestream.dead.<partition>`, header `Reason`.
- Key-value buckets: `aestream-leases` (key `p<partition>` -> owner; entries expire after `lease_s` unless
  renewed, and renewal is a compare-and-set on the entry's revision, so only the owner can renew),
  `aestream-workers` (live workers, same expiry), `aestream-state` (saved stream states).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from streamer.core.errors import StreamerError, need
from streamer.serve.transport import Delivery, Outgoing

CHUNKS, EVENTS, DEAD = "AESTREAM_CHUNKS", "AESTREAM_EVENTS", "AESTREAM_DEAD"
LEASES, WORKERS, STATE = "aestream-leases", "aestream-workers", "aestream-state"


def chunk_subject(partition: int, patient: str) -> str:
    return f"aestream.chunks.{partition}.{patient}"


class _Delivery:
    def __init__(self, msg: Any) -> None:
        self.msg = msg
        self.headers: dict[str, str] | None = msg.headers
        self.payload: bytes = msg.data
        meta = msg.metadata
        self.redelivered = meta.num_delivered > 1
        self.sequence = int(meta.sequence.stream)

    async def ack(self) -> None:
        await self.msg.ack()

    async def nak(self) -> None:
        await self.msg.nak()


class NatsBus:
    def __init__(self, url: str, partitions: int = 16, lease_s: float = 5.0, ack_wait_s: float = 30.0,
                 retention_s: float = 3600.0, duplicate_window_s: float = 600.0, name: str = "aestream") -> None:
        self.url = url
        self.partitions = partitions
        self.lease_s = lease_s
        self.ack_wait_s = ack_wait_s
        self.retention_s = retention_s
        self.duplicate_window_s = duplicate_window_s
        self.name = name
        self.nc: Any = None
        self.js: Any = None
        self.kv: dict[str, Any] = {}
        self.subs: dict[int, Any] = {}
        self.revisions: dict[int, int] = {}

    async def connect(self) -> NatsBus:
        nats = need("nats", "the monitor service", "serve")
        try:
            self.nc = await nats.connect(self.url, name=self.name, max_reconnect_attempts=-1, reconnect_time_wait=0.5,
                                         allow_reconnect=True, connect_timeout=5,
                                         drain_timeout=5)
        except Exception as exc:  # noqa: BLE001  (nats-py raises several kinds for an unreachable server)
            raise StreamerError(f"{self.url}: cannot connect to NATS ({type(exc).__name__}: {exc})") from None
        self.js = self.nc.jetstream()
        await self._setup()
        return self

    async def _setup(self) -> None:
        from nats.js.api import KeyValueConfig, StorageType, StreamConfig

        window = min(self.duplicate_window_s, self.retention_s)
        streams = [StreamConfig(name=CHUNKS, subjects=["aestream.chunks.>"], storage=StorageType.FILE,
                                max_age=self.retention_s, duplicate_window=window),
                   StreamConfig(name=EVENTS, subjects=["aestream.beats.>", "aestream.anomalies.>"],
                                storage=StorageType.FILE, max_age=self.retention_s, duplicate_window=window),
                   StreamConfig(name=DEAD, subjects=["aestream.dead.>"], storage=StorageType.FILE,
                                max_age=self.retention_s)]
        for config in streams:
            try:
                await self.js.add_stream(config)
            except Exception:  # noqa: BLE001  (exists with another config: keep it, as another worker made it)
                await self.js.stream_info(config.name)
        for bucket, ttl in ((LEASES, self.lease_s), (WORKERS, self.lease_s), (STATE, None)):
            try:  # the first worker makes the buckets; the others (and publishers) use them as they are
                self.kv[bucket] = await self.js.key_value(bucket)
            except Exception:  # noqa: BLE001  (BucketNotFoundError)
                self.kv[bucket] = await self.js.create_key_value(KeyValueConfig(
                    bucket=bucket, ttl=ttl, storage=StorageType.FILE, history=1))

    async def close(self) -> None:
        if self.nc is not None:
            try:
                await self.nc.drain()
            except Exception:  # noqa: BLE001  (already closed or the server is gone)
                pass
            self.nc = None

    # --- chunks ----------------------------------------------------------------------------------------------
    async def publish_chunk(self, partition: int, patient: str, headers: dict[str, str], payload: bytes,
                            msg_id: str) -> None:
        await self.js.publish_async(chunk_subject(partition, patient), payload,
                                    headers={**headers, "Nats-Msg-Id": msg_id})

    async def flush_published(self) -> None:
        await self.js.publish_async_completed()

    async def fetch(self, partition: int, batch: int, timeout: float) -> list[Delivery]:
        from nats.errors import TimeoutError as NatsTimeout

        sub = self.subs.get(partition)
        if sub is None:
            sub = self.subs[partition] = await self._take_over(partition)
        try:
            msgs = await sub.fetch(batch, timeout=timeout)
        except (NatsTimeout, asyncio.TimeoutError):
            return []
        return [_Delivery(m) for m in msgs]

    async def _take_over(self, partition: int) -> Any:
        """Start consuming a partition from its first unacknowledged chunk, in order, at once.

        JetStream would deliver a dead owner's unacknowledged chunks again only after `ack_wait`, and after
        newer ones: a patient's stream would see its chunks out of order. So the new owner recreates the
        partition's consumer from the old one's acknowledgement floor; chunks after the floor that were
        acknowledged already come again and are recognised (their checkpoint covers them)."""
        from nats.js.api import ConsumerConfig, DeliverPolicy

        durable = f"part-{partition}"
        start = 1
        try:
            info = await self.js.consumer_info(CHUNKS, durable)
            start = int(info.ack_floor.stream_seq) + 1
            await self.js.delete_consumer(CHUNKS, durable)
        except Exception:  # noqa: BLE001  (no consumer yet: this partition starts from its beginning)
            pass
        config = ConsumerConfig(durable_name=durable, deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                                opt_start_seq=start, ack_wait=self.ack_wait_s, max_ack_pending=1_000_000,
                                max_deliver=-1, max_waiting=64, filter_subject=f"aestream.chunks.{partition}.>")
        return await self.js.pull_subscribe(f"aestream.chunks.{partition}.>", durable=durable, stream=CHUNKS,
                                            config=config)

    async def stop_fetching(self, partition: int) -> None:
        sub = self.subs.pop(partition, None)
        if sub is not None:
            try:
                await sub.unsubscribe()
            except Exception:  # noqa: BLE001  (the connection may be going away)
                pass

    # --- events ----------------------------------------------------------------------------------------------
    async def store(self, messages: list[Outgoing]) -> None:
        for m in messages:
            await self.js.publish_async(m.subject, m.payload, headers={"Nats-Msg-Id": m.msg_id})
        await self.js.publish_async_completed()

    async def dead_letter(self, partition: int, reason: str, headers: dict[str, str] | None, payload: bytes) -> None:
        await self.js.publish(f"aestream.dead.{partition}", payload,
                              headers={**{k: v for k, v in (headers or {}).items() if k != "Nats-Msg-Id"},
                                       "Reason": reason[:500]})

    # --- leases ----------------------------------------------------------------------------------------------
    async def acquire(self, partition: int, owner: str) -> bool:
        try:
            self.revisions[partition] = await self.kv[LEASES].create(f"p{partition}", owner.encode())
            return True
        except Exception:  # noqa: BLE001  (held by someone: KeyWrongLastSequenceError and friends)
            return False

    async def renew(self, partition: int, owner: str) -> bool:
        last = self.revisions.get(partition)
        if last is None:
            return False
        try:
            self.revisions[partition] = await self.kv[LEASES].update(f"p{partition}", owner.encode(), last=last)
            return True
        except Exception:  # noqa: BLE001  (expired and taken, or the server is unreachable: the lease is lost)
            self.revisions.pop(partition, None)
            return False

    async def release(self, partition: int, owner: str) -> None:
        if self.revisions.pop(partition, None) is None:
            return
        try:
            entry = await self.kv[LEASES].get(f"p{partition}")
            if entry.value == owner.encode():
                await self.kv[LEASES].delete(f"p{partition}", last=entry.revision)
        except Exception:  # noqa: BLE001  (already expired or taken: nothing to release)
            pass

    async def owners(self) -> dict[int, str]:
        return {int(k[1:]): v.decode() for k, v in (await self._all(LEASES)).items()}

    # --- workers and states ------------------------------------------------------------------------------------
    async def announce(self, worker: str, info: dict[str, Any]) -> None:
        await self.kv[WORKERS].put(worker, json.dumps(info).encode())

    async def workers(self) -> dict[str, dict[str, Any]]:
        return {k: json.loads(v) for k, v in (await self._all(WORKERS)).items()}

    async def load_state(self, patient: str) -> bytes | None:
        try:
            entry = await self.kv[STATE].get(patient)
        except Exception:  # noqa: BLE001  (no such key)
            return None
        value: bytes | None = entry.value
        return value

    async def save_state(self, patient: str, blob: bytes) -> None:
        await self.kv[STATE].put(patient, blob)

    async def _all(self, bucket: str) -> dict[str, bytes]:
        kv = self.kv[bucket]
        try:
            keys = await kv.keys()
        except Exception:  # noqa: BLE001  (an empty bucket raises NoKeysError)
            return {}
        out = {}
        for key in keys:
            try:
                entry = await kv.get(key)
            except Exception:  # noqa: BLE001  (expired between the listing and the read)
                continue
            if entry.value:
                out[key] = entry.value
        return out
