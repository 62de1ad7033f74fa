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
import datetime
import functools
import json
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from streamer.core.errors import StreamerError, need
from streamer.serve.transport import Backlog, BusUnavailable, Delivery, Outgoing

log = logging.getLogger("aestream.serve")
T = TypeVar("T")
P = ParamSpec("P")

CHUNKS, EVENTS, DEAD = "AESTREAM_CHUNKS", "AESTREAM_EVENTS", "AESTREAM_DEAD"
LEASES, WORKERS, STATE = "aestream-leases", "aestream-workers", "aestream-state"
ATOMIC_BATCH = 1000  # the server's limit on messages in one atomic batch
STREAM_NOT_FOUND = 10059  # JetStream's error code


def _unavailable_on_errors(fn: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, Coroutine[Any, Any, T]]:
    """nats-py's connection and timeout errors become `BusUnavailable` (the worker's one outage path)."""
    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        from nats.errors import Error as NatsError
        from nats.js.errors import APIError

        try:
            return await fn(*args, **kwargs)
        except APIError as exc:  # the server answered, with a refusal (a stream removed by hand, say)
            if exc.err_code == STREAM_NOT_FOUND:
                raise BusUnavailable("no aestream streams on this server (yet): start a worker or a publisher") \
                    from exc
            raise BusUnavailable(f"NATS refused {fn.__name__}: {exc.description} (code {exc.err_code})") from exc
        except (NatsError, asyncio.TimeoutError, ConnectionError) as exc:
            raise BusUnavailable(f"NATS, {fn.__name__}: {type(exc).__name__}: {exc}".rstrip(": ")) from exc
    return wrapper


class _BatchRefused(Exception):
    def __init__(self, reason: str, duplicate: bool) -> None:
        super().__init__(reason)
        self.duplicate = duplicate


class _Delivery:
    def __init__(self, msg: Any) -> None:
        self.msg = msg
        self.headers: dict[str, str] | None = msg.headers
        self.payload: bytes = msg.data
        meta = msg.metadata
        self.redelivered = meta.num_delivered > 1
        self.sequence = int(meta.sequence.stream)

    @_unavailable_on_errors
    async def ack(self) -> None:
        await self.msg.ack()

    @_unavailable_on_errors
    async def nak(self) -> None:
        await self.msg.nak()

    @_unavailable_on_errors
    async def in_progress(self) -> None:
        await self.msg.in_progress()


class NatsBus:
    def __init__(self, url: str, partitions: int = 16, lease_s: float = 5.0, ack_wait_s: float = 30.0,
                 retention_s: float = 3600.0, duplicate_window_s: float = 600.0, name: str = "aestream",
                 publish_timeout_s: float = 10.0, replicas: int = 1) -> None:
        self.url = url
        self.replicas = replicas  # copies of every stream and bucket kept by a cluster (1: a single server)
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
        self.floors: dict[int, int] = {}  # per partition, the first unacknowledged chunk at its last takeover
        self.reconnects = 0
        self._last_error_log = 0.0
        self.publish_timeout_s = publish_timeout_s
        self.atomic = True
        self._batches: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._batch_inbox = ""
        self._nuid: Any = None
        self._closing = False

    async def connect(self, create_buckets: bool = False, create_streams: bool = True) -> NatsBus:
        """Connect, and make the streams (unless `create_streams` is off, as for a dashboard, which must not
        make them with its own settings) and with `create_buckets`, as a worker does, the key-value buckets
        that are not there yet."""
        nats = need("nats", "the monitor service", "serve")
        try:
            # "nats://a:4222,nats://b:4222": the servers of a cluster, tried in turn (and on reconnect)
            servers = [u.strip() for u in self.url.split(",") if u.strip()]
            self.nc = await nats.connect(servers, name=self.name, max_reconnect_attempts=-1, reconnect_time_wait=0.5,
                                         allow_reconnect=True, connect_timeout=5, drain_timeout=5,
                                         error_cb=self._on_error, disconnected_cb=self._on_disconnected,
                                         reconnected_cb=self._on_reconnected)
        except Exception as exc:  # noqa: BLE001  (nats-py raises several kinds for an unreachable server)
            raise StreamerError(f"{self.url}: cannot connect to NATS ({type(exc).__name__}: {exc})") from None
        self.js = self.nc.jetstream()
        from nats.nuid import NUID

        self._nuid = NUID()
        self._batch_inbox = self.nc.new_inbox()
        await self.nc.subscribe(f"{self._batch_inbox}.*", cb=self._on_batch_reply)
        from nats.js.errors import ServiceUnavailableError

        try:
            await self._setup(create_buckets, create_streams)
        except ServiceUnavailableError:
            await self.close()
            raise StreamerError(f"{self.url}: this NATS server has no JetStream (start it with -js)") from None
        except Exception as exc:  # noqa: BLE001  (whatever the server answered: one line, not a traceback)
            await self.close()
            raise StreamerError(f"{self.url}: cannot set up the service's streams ({type(exc).__name__}: "
                                f"{exc})") from None
        return self

    # One line per change of the connection's state, instead of nats-py's traceback per reconnect attempt.
    async def _on_error(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._last_error_log > 10:
            log.warning("%s: %s%s", self.url, type(exc).__name__, f": {exc}" if str(exc) else "")
            self._last_error_log = now

    async def _on_disconnected(self) -> None:
        if not self._closing:
            log.warning("%s: disconnected from NATS; reconnecting", self.url)

    async def _on_reconnected(self) -> None:
        log.warning("%s: reconnected to NATS", self.url)
        self.reconnects += 1

    @property
    def connected(self) -> bool:
        return self.nc is not None and self.nc.is_connected

    async def _setup(self, create_buckets: bool, create_streams: bool) -> None:
        from nats.js.api import KeyValueConfig, StorageType, StreamConfig

        window = min(self.duplicate_window_s, self.retention_s)
        r = self.replicas
        streams = [StreamConfig(name=CHUNKS, subjects=["aestream.chunks.>"], storage=StorageType.FILE,
                                max_age=self.retention_s, duplicate_window=window, allow_atomic=True, num_replicas=r),
                   StreamConfig(name=EVENTS, subjects=["aestream.beats.>", "aestream.anomalies.>"],
                                storage=StorageType.FILE, max_age=self.retention_s, duplicate_window=window,
                                allow_atomic=True, num_replicas=r),
                   StreamConfig(name=DEAD, subjects=["aestream.dead.>"], storage=StorageType.FILE,
                                max_age=self.retention_s, num_replicas=r)]
        for config in streams if create_streams else []:
            try:
                await self.js.add_stream(config)
            except Exception:  # noqa: BLE001  (exists with another config: keep it, as another worker made it)
                await self.js.stream_info(config.name)
        from nats.js.errors import BucketNotFoundError

        for bucket, ttl in ((LEASES, self.lease_s), (WORKERS, self.lease_s), (STATE, None)):
            try:  # the first worker makes the buckets; the others use them as they are
                self.kv[bucket] = await self.js.key_value(bucket)
            except BucketNotFoundError:
                if not create_buckets:
                    continue  # a publisher or a dashboard before any worker: opened when it is there
                self.kv[bucket] = await self.js.create_key_value(KeyValueConfig(
                    bucket=bucket, ttl=ttl, storage=StorageType.FILE, history=1, replicas=r))
        if LEASES in self.kv:
            ttl = (await self.kv[LEASES].status()).ttl
            if ttl and abs(ttl - self.lease_s) > 1e-3:
                # Leases must live exactly as long as the bucket keeps them, or two workers could both believe
                # they own a partition: the bucket (made by the first worker) decides.
                if create_buckets:
                    log.warning("%s: leases last %g s here (set by the first worker), not %g s", self.url, ttl,
                                self.lease_s)
                self.lease_s = float(ttl)

    async def _bucket(self, name: str) -> Any:
        """A key-value bucket, opened on first use (None while no worker has made it)."""
        from nats.js.errors import BucketNotFoundError

        if name not in self.kv:
            try:
                self.kv[name] = await self.js.key_value(name)
            except BucketNotFoundError:
                return None
        return self.kv[name]

    async def close(self) -> None:
        self._closing = True
        if self.nc is not None:
            try:
                await self.nc.drain()
            except Exception:  # noqa: BLE001  (already closed or the server is gone)
                pass
            self.nc = None

    # --- chunks ----------------------------------------------------------------------------------------------
    @_unavailable_on_errors
    async def publish_chunks(self, chunks: list[Outgoing]) -> None:
        await self._publish_all(chunks)

    @_unavailable_on_errors
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
        from nats.js.errors import NotFoundError

        durable = f"part-{partition}"
        # No consumer: this partition starts from its beginning, or from where this worker found it in a
        # takeover that failed after the delete (a cluster electing leaders, say); an older floor only means
        # more chunks come again, recognised by their checkpoints.
        start = self.floors.get(partition, 1)
        try:
            info = await self.js.consumer_info(CHUNKS, durable)
        except NotFoundError:
            info = None
        if info is not None:
            # Any failure here must stop the takeover (BusUnavailable, tried again later): binding to the old
            # consumer instead would deliver its unacknowledged chunks only after ack_wait, after newer ones.
            start = self.floors[partition] = int(info.ack_floor.stream_seq) + 1
            await self.js.delete_consumer(CHUNKS, durable)
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
    @_unavailable_on_errors
    async def store(self, messages: list[Outgoing]) -> None:
        await self._publish_all(messages)

    # --- publishing ------------------------------------------------------------------------------------------
    async def _publish_all(self, messages: list[Outgoing]) -> None:
        """Return once the broker holds every message (or dropped it as a duplicate); else BusUnavailable.

        In atomic batches of up to ATOMIC_BATCH messages (one acknowledgement per batch instead of one per
        message: a third of the client's CPU per message). The server refuses a whole batch when one id in it
        was stored before, which happens only when a chunk is processed again after a takeover: that batch
        then goes message by message, and the duplicates are dropped one by one."""
        for at in range(0, len(messages), ATOMIC_BATCH):
            part = messages[at:at + ATOMIC_BATCH]
            if self.atomic:
                try:
                    await self._atomic(part)
                    continue
                except _BatchRefused as exc:
                    if not exc.duplicate:  # the stream does not take atomic batches (an older server?)
                        log.warning("%s: atomic batches refused (%s); publishing one by one", self.url, exc)
                        self.atomic = False
            await self._one_by_one(part)

    async def _one_by_one(self, messages: list[Outgoing]) -> None:
        futures = [await self.js.publish_async(m.subject, m.payload, headers={**(m.headers or {}),
                                                                               "Nats-Msg-Id": m.msg_id})
                   for m in messages]
        try:
            await asyncio.wait_for(asyncio.gather(*futures), self.publish_timeout_s)
        except asyncio.TimeoutError:
            for f in futures:
                f.cancel()
            raise BusUnavailable(f"NATS: {len(messages)} messages not acknowledged within "
                                 f"{self.publish_timeout_s:g} s") from None

    async def _atomic(self, messages: list[Outgoing]) -> None:
        token = self._nuid.next().decode()
        reply = f"{self._batch_inbox}.{token}"
        done: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._batches[token] = done
        try:
            last = len(messages)
            for i, m in enumerate(messages, 1):
                headers = {**(m.headers or {}), "Nats-Msg-Id": m.msg_id, "Nats-Batch-Id": token,
                           "Nats-Batch-Sequence": str(i)}
                if i == last:
                    headers["Nats-Batch-Commit"] = "1"
                await self.nc.publish(m.subject, m.payload, reply=reply if i in (1, last) else "", headers=headers)
            try:
                answer = await asyncio.wait_for(done, self.publish_timeout_s)
            except asyncio.TimeoutError:
                raise BusUnavailable(f"NATS: a batch of {last} messages not acknowledged within "
                                     f"{self.publish_timeout_s:g} s") from None
        finally:
            self._batches.pop(token, None)
        if "error" in answer:
            error = answer["error"]
            raise _BatchRefused(error.get("description", str(error)), duplicate=error.get("err_code") == 10201)

    async def _on_batch_reply(self, msg: Any) -> None:
        if not msg.data:  # the server's go-ahead for a batch's first message
            return
        done = self._batches.get(msg.subject.rsplit(".", 1)[1])
        if done is not None and not done.done():
            done.set_result(json.loads(msg.data))

    @_unavailable_on_errors
    async def dead_letter(self, partition: int, reason: str, headers: dict[str, str] | None, payload: bytes) -> None:
        await self.js.publish(f"aestream.dead.{partition}", payload,
                              headers={**{k: v for k, v in (headers or {}).items() if not k.startswith("Nats-")},
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

    @_unavailable_on_errors
    async def owners(self) -> dict[int, str]:
        return {int(k[1:]): v.decode() for k, v in (await self._all(LEASES)).items()}

    # --- workers and states ------------------------------------------------------------------------------------
    @_unavailable_on_errors
    async def announce(self, worker: str, info: dict[str, Any]) -> None:
        await self.kv[WORKERS].put(worker, json.dumps(info).encode())

    @_unavailable_on_errors
    async def workers(self) -> dict[str, dict[str, Any]]:
        return {k: json.loads(v) for k, v in (await self._all(WORKERS)).items()}

    @_unavailable_on_errors
    async def load_state(self, patient: str) -> bytes | None:
        from nats.js.errors import KeyDeletedError, KeyNotFoundError

        try:
            entry = await self.kv[STATE].get(patient)
        except (KeyNotFoundError, KeyDeletedError):  # a patient never checkpointed
            return None
        value: bytes | None = entry.value
        return value

    @_unavailable_on_errors
    async def save_states(self, blobs: dict[str, bytes]) -> None:
        # A key-value put is a publish to the bucket's stream: pipelined, then waited for together.
        futures = [await self.js.publish_async(f"$KV.{STATE}.{patient}", blob) for patient, blob in blobs.items()]
        try:
            await asyncio.wait_for(asyncio.gather(*futures), self.publish_timeout_s)
        except asyncio.TimeoutError:
            for f in futures:
                f.cancel()
            raise BusUnavailable(f"NATS: {len(blobs)} checkpoints not stored within {self.publish_timeout_s:g} s") \
                from None

    # --- what the dashboard reads ----------------------------------------------------------------------------
    @_unavailable_on_errors
    async def backlog(self, partition: int) -> Backlog:
        from nats.js.errors import NotFoundError

        try:
            info = await self.js.consumer_info(CHUNKS, f"part-{partition}")
        except NotFoundError:  # nobody consumed this partition yet: all of it waits
            info = None
        if info is not None:
            waiting = int(info.num_pending)
        else:
            state = (await self.js.stream_info(CHUNKS, subjects_filter=f"aestream.chunks.{partition}.>")).state
            waiting = sum((state.subjects or {}).values())
        oldest = float("nan")
        if waiting:
            after = int(info.delivered.stream_seq) + 1 if info else 1
            try:
                msg = await self.js.get_msg(CHUNKS, seq=after, subject=f"aestream.chunks.{partition}.>", next=True)
                sent = float((msg.headers or {}).get("Sent", "nan"))
                oldest = max(0.0, time.time() - sent) if sent == sent else float("nan")
            except NotFoundError:  # delivered meanwhile
                pass
        return Backlog(waiting, int(info.num_ack_pending) if info else 0, oldest)

    @_unavailable_on_errors
    async def dead_letter_count(self) -> int:
        return int((await self.js.stream_info(DEAD)).state.messages)

    @_unavailable_on_errors
    async def follow_anomalies(self, since_s: float, on_event: Callable[[dict[str, Any]], None]) -> None:
        from nats.js.api import ConsumerConfig, DeliverPolicy

        async def handle(msg: Any) -> None:
            try:
                on_event(json.loads(msg.data))
            except ValueError:  # not an event of ours: ignored
                pass

        start = datetime.datetime.fromtimestamp(time.time() - since_s, tz=datetime.timezone.utc)
        await self.js.subscribe("aestream.anomalies.>", stream=EVENTS, cb=handle, ordered_consumer=True,
                                config=ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_TIME,
                                                      opt_start_time=start))

    async def _all(self, bucket: str) -> dict[str, bytes]:
        from nats.js.errors import KeyDeletedError, KeyNotFoundError, NoKeysError

        kv = await self._bucket(bucket)
        if kv is None:
            return {}
        try:
            keys = await kv.keys()
        except NoKeysError:
            return {}
        out = {}
        for key in keys:
            try:
                entry = await kv.get(key)
            except (KeyNotFoundError, KeyDeletedError):  # expired or deleted between the listing and the read
                continue
            if entry.value:
                out[key] = entry.value
        return out
