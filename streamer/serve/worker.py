"""A monitor worker: patients' ECG chunks from the broker, through one pool, beat events back to the broker.

Partitions. Patients are spread over a fixed number of partitions (`partition_of`). A worker owns
partitions through leases that expire unless renewed; renewal runs in the heartbeat task, outside the
processing (which runs in a thread, so a long tick never starves it), and before a partition's chunks are
processed or acknowledged the worker checks (fencing) that its lease is still valid. Workers share the
partitions evenly: each takes free ones up to its share and gives back what is over it when others join.

Exactly once, after deduplication. A chunk is acknowledged only once (1) the events it produced are stored
by the broker, and (2) a checkpoint of its patient's stream state that includes it is saved. When a
worker dies, the next owner of the partition restores each patient from its checkpoint and gets every
chunk after it again (unacknowledged), so the patient's stream goes on exactly as it would have; the
events it makes again carry the same message ids (`<patient>:<r_sample>`) and the broker drops them.
Checkpoints every `checkpoint_s` seconds of a patient's signal bound what is processed twice. Each open
patient keeps its newest chunk unacknowledged until its stream is closed (its last beats come then), so
that a patient whose worker dies between its last chunk and its close is closed by the next owner.

Bad input. A chunk that cannot be decoded, or that its patient's stream refuses (NaN, wrong rate, a gap),
goes to the dead-letter subject with its reason and is acknowledged; the rest go on. It is counted.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import heapq
import logging
import math
import os
import socket
import time
import zlib
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from streamer.core.kind import Chunk
from streamer.core.model import Model
from streamer.run.metrics import LatencyHistogram
from streamer.serve.messages import BadChunk, ChunkMessage, beat_subject, decode_chunk, encode_event, event_id
from streamer.serve.transport import Bus, BusUnavailable, Delivery, Outgoing

log = logging.getLogger("aestream.serve")

# Chunk messages fetched per round at most, over all partitions: about 2 s of work for a worker at its limit.
# A backlog must wait in the broker (undelivered, no clock running), not in a worker: a fetched chunk must be
# processed and checkpointed well within the broker's ack wait, or it is delivered again and adds to the load.
ROUND_CHUNKS = 4096
FETCH_TIMEOUT_S = 0.05  # how long a fetch waits for messages when there are none
IDLE_PATIENT_S = 120.0  # a patient without a chunk for this long (wall clock) is closed and forgotten
LATE_POLICIES = ("process", "drop")  # what to do with a chunk more than `late_s` behind: both are counted
CLOSED = b"closed:"  # a checkpoint of a stream closed when its patient went idle: b"closed:<end sample>\n"
LAGGING_SHOWN = 10  # patients furthest behind, in the worker's description
RECENT_S = 60.0  # the window of the recent latency figures
RESTORE_BATCH = 256  # checkpoints read at once when many patients arrive together


def _phase(patient: str) -> float:
    """A patient's fixed place in [0, 1) in the checkpoint cycle, so that patients who joined together do not
    all save their states in the same second (stable across workers: not Python's salted hash)."""
    return zlib.crc32(patient.encode()) % 1000 / 1000


@dataclass
class _Patient:
    partition: int
    rate: float
    origin: int  # the patient's sample index of this stream's sample 0 (a gap starts a new stream)
    next_start: int  # the sample index the next chunk must start at
    pending: list[Delivery] = field(default_factory=list)  # processed, not yet covered by a checkpoint
    pending_s: float = 0.0
    # The patient's newest chunk that a checkpoint covers, left unacknowledged until its stream is closed:
    # if this worker dies first, it comes again to the next owner, which then knows the patient is open and
    # closes it in turn (its last beats come only when the stream is closed).
    token: Delivery | None = None
    unacked_since: float = 0.0  # when the oldest of token and pending was delivered or last kept alive
    last_delivered: float = 0.0
    last_seen: float = 0.0
    lag_s: float = float("nan")  # publish -> events stored, for this patient's latest chunk
    closed: bool = False  # its stream was closed when it went idle (no stream in the pool)

    def unacked(self) -> list[Delivery]:
        """Every delivery of this patient not yet acknowledged, oldest first: its token, then `pending`."""
        return ([self.token] if self.token is not None else []) + self.pending


@dataclass
class _Lease:
    valid_until: float  # monotonic time after which this worker must not act on the partition


@dataclass
class WorkerStats:
    chunks: int = 0
    beats: int = 0
    anomalies: int = 0
    checkpoints: int = 0
    late: int = 0  # chunks that arrived more than `late_s` after they were sent
    closed: int = 0  # patients' streams closed after `idle_s` without a chunk
    resumed: int = 0  # patients back after that (a new stream each)
    outages: int = 0  # times the broker could not be reached
    drops: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    lag: LatencyHistogram = field(default_factory=LatencyHistogram)  # chunk publish -> its events stored
    # The same over the last minute (the previous full minute, or this one until there is one): the
    # dashboard's figure, which start-up (every patient joining at once) does not dominate for ever.
    recent: LatencyHistogram = field(default_factory=LatencyHistogram)
    last_minute: LatencyHistogram | None = None
    minute_started: float = field(default_factory=time.monotonic)

    def add_lag(self, seconds: float) -> None:
        self.lag.add(seconds)
        if time.monotonic() - self.minute_started >= RECENT_S:
            self.last_minute, self.recent, self.minute_started = self.recent, LatencyHistogram(), time.monotonic()
        self.recent.add(seconds)

    def summary(self) -> dict[str, Any]:
        return {"chunks": self.chunks, "beats": self.beats, "anomalies": self.anomalies,
                "checkpoints": self.checkpoints, "late": self.late,
                "closed": self.closed, "resumed": self.resumed, "outages": self.outages, "drops": dict(self.drops),
                "lag_ms": self.lag.summary_ms(), "recent_lag_ms": (self.last_minute or self.recent).summary_ms()}


class Worker:
    def __init__(self, bus: Bus, model: Model, worker_id: str | None = None, checkpoint_s: float = 10.0,
                 idle_s: float = IDLE_PATIENT_S, late_s: float = 30.0, on_late: str = "process",
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time) -> None:
        if on_late not in LATE_POLICIES:
            raise ValueError(f"on_late must be one of {LATE_POLICIES}, not {on_late!r}")
        self.bus = bus
        self.model = model
        self.late_s = late_s
        self.on_late = on_late
        self.id = worker_id or f"{socket.gethostname()}-{os.getpid()}"
        self.checkpoint_s = checkpoint_s
        self.lease_s = bus.lease_s  # as the broker keeps them
        self.idle_s = idle_s
        self.clock = clock
        self.wall = wall
        self.pool = model.pool()
        self.cpu = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="aestream-pool")
        self.leases: dict[int, _Lease] = {}
        self.lost: list[int] = []
        self.patients: dict[str, _Patient] = {}
        self.due: set[str] = set()  # patients whose next checkpoint is due
        self.stats = WorkerStats()
        self.started = clock()

    # --- running ---------------------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop` is set: the heartbeat task and the processing loop; then leases are given back."""
        heartbeat = asyncio.create_task(self._heartbeat(stop))
        next_balance = next_idle_check = self.clock()
        try:
            while not stop.is_set():
                try:
                    # Leases the heartbeat could not renew, or that ran out before it did (a busy loop): given
                    # back if still ours (the broker's compare-and-set decides), so they can be taken at once.
                    for partition in self.lost:
                        await self._drop_partition(partition, release=True)
                    self.lost.clear()
                    if self.clock() >= next_balance:
                        await self._balance()
                        next_balance = self.clock() + self.lease_s / 3
                    busy = await self._process()
                    if not busy and not self.leases:
                        await asyncio.sleep(self.lease_s / 5)
                    if self.clock() >= next_idle_check:
                        await self._keep_unacked()
                        await self._close_idle()
                        next_idle_check = self.clock() + min(1.0, self.idle_s / 4)
                except BusUnavailable as exc:
                    await self._outage(exc)
        finally:
            heartbeat.cancel()
            try:
                for partition in list(self.leases):
                    await self._checkpoint_partition(partition)
                    await self._drop_partition(partition, release=True)
            except BusUnavailable as exc:  # stopping while the broker is away: the leases will just expire
                log.warning("worker %s: could not give the partitions back (%s)", self.id, exc)
            self.cpu.shutdown(wait=True)

    async def _outage(self, exc: BusUnavailable) -> None:
        """The broker went away: let go of everything (unacknowledged chunks come again from the
        checkpoints, to this worker or another, once it is back) and try again shortly."""
        self.stats.outages += 1
        if self.leases:
            log.warning("worker %s: cannot use the broker (%s); letting %d partitions go until it works again",
                        self.id, exc, len(self.leases))
        for partition in list(self.leases):
            await self._drop_partition(partition, release=False)
        self.due.clear()
        await asyncio.sleep(self.lease_s / 5)

    async def _cpu(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.cpu, fn, *args)

    # --- leases ----------------------------------------------------------------------------------------------
    async def _heartbeat(self, stop: asyncio.Event) -> None:
        """Renews the leases every third of their life, whatever the processing is doing (it runs in a
        thread); a lease that cannot be renewed is let go at once (the loop then drops its partition)."""
        period = self.lease_s / 3
        while not stop.is_set():
            held = list(self.leases)
            renewed_at = self.clock()
            renewed = await asyncio.gather(*(self.bus.renew(p, self.id) for p in held), return_exceptions=True)
            for partition, ok in zip(held, renewed):
                if ok is True:
                    if partition in self.leases:
                        self.leases[partition].valid_until = renewed_at + self.lease_s - period
                elif partition in self.leases:
                    self.leases.pop(partition)  # expired and maybe taken (or the broker is away): hands off
                    self.lost.append(partition)
            try:
                await self.bus.announce(self.id, self.describe())
            except BusUnavailable:
                pass  # the loop sees the outage too and lets go of the partitions
            try:
                await asyncio.wait_for(stop.wait(), period)
            except asyncio.TimeoutError:
                pass

    async def _balance(self) -> None:
        """Take free partitions up to this worker's share; give back what is over it."""
        alive = max(1, len(await self.bus.workers()))
        share = math.ceil(self.bus.partitions / alive)
        owners = await self.bus.owners()
        taken = []
        for partition in range(self.bus.partitions):
            if len(self.leases) >= share:
                break
            if partition not in owners and partition not in self.leases and await self.bus.acquire(partition, self.id):
                self.leases[partition] = _Lease(self.clock() + self.lease_s - self.lease_s / 3)
                taken.append(partition)
        given = []
        while len(self.leases) > share + (1 if self.bus.partitions % alive else 0):
            extra = max(self.leases)
            await self._checkpoint_partition(extra)
            await self._drop_partition(extra, release=True)
            given.append(extra)
        if taken or given:
            log.info("worker %s: %s%s%s; holds %d of %d partitions (%d workers alive)", self.id,
                     f"took {taken}" if taken else "", ", " if taken and given else "",
                     f"gave back {given}" if given else "", len(self.leases), self.bus.partitions, alive)

    def holds(self, partition: int) -> bool:
        """Fencing: act on a partition only while its lease is surely still ours."""
        lease = self.leases.get(partition)
        return lease is not None and self.clock() < lease.valid_until

    def _still_holds(self, partition: int) -> bool:
        """`holds`, and when not, the partition is let go (dropped at the top of the loop): the chunks skipped
        now must come again in order, from the broker, never after a later chunk of the same patient."""
        if self.holds(partition):
            return True
        if self.leases.pop(partition, None) is not None:
            self.lost.append(partition)
        return False

    async def _drop_partition(self, partition: int, release: bool) -> None:
        """Stop working on a partition; its unacknowledged chunks go to the next owner."""
        self.leases.pop(partition, None)
        await self.bus.stop_fetching(partition)
        gone = [p for p, s in self.patients.items() if s.partition == partition]
        for patient in gone:
            del self.patients[patient]
            await self._cpu(self._forget, patient)
        if release:
            await self.bus.release(partition, self.id)

    def _forget(self, patient: str) -> None:
        if patient in self.pool:
            self.pool.kind.close(patient)
            del self.pool.members[patient]

    # --- processing ------------------------------------------------------------------------------------------
    async def _process(self) -> bool:
        """One round: fetch from every owned partition at once, feed all their chunks together (one model
        call for all this worker's patients per tick), checkpoint what is due. False when nothing came."""
        partitions = sorted(self.leases)
        fetched = await self._fetch_all(partitions)
        chunks: list[tuple[int, ChunkMessage, Delivery]] = []
        for partition, deliveries in zip(partitions, fetched):
            if not deliveries or not self._still_holds(partition):
                continue  # a lost lease: not acknowledged, the next owner gets them
            for d in deliveries:
                try:
                    message = decode_chunk(d.headers, d.payload)
                except BadChunk as exc:
                    await self._dead(partition, exc.kind, str(exc), d)
                    continue
                chunks.append((partition, message, d))
        if chunks:
            await self._feed(chunks)
        await self._checkpoint_due()
        return any(fetched)

    async def _fetch_all(self, partitions: list[int]) -> list[list[Delivery]]:
        """Each partition's next chunks. A partition the broker cannot serve now (in a cluster, its consumer
        electing a leader after a server died) is let go and taken again later; the others go on. When none
        can be served, it is an outage."""
        batch = max(16, ROUND_CHUNKS // max(1, len(partitions)))
        results = await asyncio.gather(*(self.bus.fetch(p, batch, FETCH_TIMEOUT_S) for p in partitions),
                                       return_exceptions=True)
        failed = [(p, r) for p, r in zip(partitions, results) if isinstance(r, BaseException)]
        for _, r in failed:
            if not isinstance(r, BusUnavailable):
                raise r
        if failed and len(failed) == len(partitions):
            raise failed[0][1]
        for partition, exc in failed:
            log.warning("worker %s: partition %d not served (%s); letting it go", self.id, partition, exc)
            await self._drop_partition(partition, release=True)
        return [[] if isinstance(r, BaseException) else r for r in results]

    async def _feed(self, chunks: list[tuple[int, ChunkMessage, Delivery]]) -> None:
        """Feed the chunks in rounds: each patient's next chunk in each round, all of a round in one tick."""
        queues: dict[str, deque[tuple[int, ChunkMessage, Delivery]]] = {}
        for item in sorted(chunks, key=lambda c: (c[1].patient, c[1].start)):
            queues.setdefault(item[1].patient, deque()).append(item)
        now = self.wall()
        unseen = {p: (q[0][0], q[0][1]) for p, q in queues.items() if p not in self.patients}
        if unseen:
            await self._restore_all(unseen)
        while queues:
            tick: dict[str, tuple[int, ChunkMessage, Delivery]] = {}
            for patient in list(queues):
                partition, message, delivery = queues[patient].popleft()
                if not queues[patient]:
                    del queues[patient]
                if not self._still_holds(partition):
                    continue  # fencing: the lease ran out meanwhile; the next owner gets this chunk
                if await self._open(partition, message, delivery) is None:  # checked against the stream now
                    continue  # a copy of a chunk processed before
                if now - message.sent > self.late_s:  # back-pressure: counted, and dropped if so chosen
                    self.stats.late += 1
                    if self.on_late == "drop":  # the patient's stream restarts at its next chunk (a gap)
                        self.stats.drops[f"late chunk dropped (over {self.late_s:g} s behind)"] += 1
                        await delivery.ack()
                        continue
                tick[patient] = (partition, message, delivery)
            if tick:
                await self._tick(tick)

    async def _tick(self, tick: dict[str, tuple[int, ChunkMessage, Delivery]]) -> None:
        chunks_in = {p: Chunk(m.samples, start=m.start - self.patients[p].origin, rate=m.rate)
                     for p, (_, m, _) in tick.items()}
        result = await self._cpu(self.pool.feed, chunks_in)
        for p, error in result.errors.items():  # refused: the stream is as before, the chunk a dead letter
            await self._dead(tick[p][0], error.reason, str(error), tick[p][2])
        out = []
        for p, events in result.items():
            if p in result.errors:
                continue
            _, message, delivery = tick[p]
            s = self.patients[p]
            s.next_start = message.start + len(message.samples)
            s.last_delivered = self.clock()
            if not s.pending and s.token is None:
                s.unacked_since = s.last_delivered
            s.pending.append(delivery)
            s.pending_s += len(message.samples) / message.rate
            if s.pending_s >= self.checkpoint_s:
                self.due.add(p)
            s.last_seen = self.clock()
            out += self._outgoing(p, s, events, message.sent)
        await self.bus.store(out)  # stored before anything is acknowledged
        now = self.wall()
        for p, (_, message, _) in tick.items():
            if p not in result.errors:
                self.stats.chunks += 1
                if math.isfinite(message.sent):
                    lag = max(0.0, now - message.sent)
                    self.stats.add_lag(lag)
                    self.patients[p].lag_s = lag

    def _outgoing(self, patient: str, s: _Patient, events: list[Any], sent: float) -> list[Outgoing]:
        out = []
        for e in events:
            r = s.origin + e.r_sample
            body = {**e.to_dict(), "stream": patient, "r_sample": r, "t": round(r / s.rate, 4), "sent": sent}
            payload = encode_event(body)
            out.append(Outgoing(beat_subject(patient), event_id(patient, r), payload))
            self.stats.beats += 1
            if e.anomaly:
                out.append(Outgoing(beat_subject(patient, anomaly=True), event_id(patient, r, "anomaly"), payload))
                self.stats.anomalies += 1
        return out

    async def _open(self, partition: int, message: ChunkMessage, delivery: Delivery) -> _Patient | None:
        """The patient's stream, checked against this chunk; None when the chunk is one its checkpoint
        already covers (acknowledged with the next checkpoint, or at once)."""
        s = self.patients[message.patient]
        if message.start < s.next_start:  # processed before (a copy delivered again)
            if s.pending:
                s.pending.append(delivery)  # acknowledged with the next checkpoint
            elif s.token is None and not s.closed:
                s.token, s.unacked_since = delivery, self.clock()  # the checkpoint covers it: kept till close
            else:
                await delivery.ack()
            return None
        if s.closed:  # back after being idle: a new stream from here (its detector warms up again)
            self.stats.resumed += 1
            s.closed = False
            s.origin = s.next_start = message.start
            await self._cpu(self._add, message.patient, message.rate)
        elif message.start > s.next_start:  # samples missing: a new stream from here, the gap counted
            self.stats.drops["gap (samples missing)"] += 1
            log.info("worker %s: %s: samples %d to %d missing; a new stream from %d", self.id, message.patient,
                     s.next_start, message.start, message.start)
            await self._cpu(self._forget, message.patient)
            s.origin = s.next_start = message.start
            await self._cpu(self._add, message.patient, message.rate)
        return s

    async def _restore_all(self, first: dict[str, tuple[int, ChunkMessage]]) -> None:
        """Open the patients this worker has not seen (`first`: each one's partition and first chunk here):
        their checkpoints are read together, then restored (or their streams started) in one thread call."""
        names = list(first)
        blobs: list[bytes | None] = []
        for at in range(0, len(names), RESTORE_BATCH):
            blobs += await asyncio.gather(*(self.bus.load_state(p) for p in names[at:at + RESTORE_BATCH]))
        opened = await self._cpu(self._open_streams, {p: (first[p][1].rate, first[p][1].start, blob)
                                                      for p, blob in zip(names, blobs)})
        for patient, (origin, next_start, closed, problem) in opened.items():
            if problem:  # another model's or a damaged state: started afresh, counted
                self.stats.drops[f"checkpoint not usable ({problem})"] += 1
            partition, message = first[patient]
            self.patients[patient] = _Patient(partition, message.rate, origin, next_start, last_seen=self.clock(),
                                              closed=closed, pending_s=-self.checkpoint_s * _phase(patient))

    def _open_streams(self, todo: dict[str, tuple[float, int, bytes | None]]) -> dict[str, tuple[int, int, bool, str]]:
        """(origin, next start, closed, problem) per patient: restored from its checkpoint, or a new stream."""
        out = {}
        for patient, (rate, start, blob) in todo.items():
            problem = ""
            if blob is not None and blob.startswith(CLOSED):  # closed when idle: nothing to restore
                end = int(blob[len(CLOSED):].split(b"\n", 1)[0])
                out[patient] = (end, end, True, "")
                continue
            if blob is not None:
                try:
                    origin, next_start = self._restore_stream(patient, blob)
                    out[patient] = (origin, next_start, False, "")
                    continue
                except Exception as exc:  # noqa: BLE001  (whatever is wrong with it, the patient goes on)
                    problem = type(exc).__name__
                    self._forget(patient)
            self._add(patient, rate)
            out[patient] = (start, start, False, problem)
        return out

    def _restore_stream(self, patient: str, blob: bytes) -> tuple[int, int]:
        header, state = blob.split(b"\n", 1)
        origin = int(header)
        self.pool.restore(patient, state)
        return origin, origin + int(self.pool.describe(patient)["samples"])

    def _add(self, patient: str, rate: float) -> None:
        if patient not in self.pool:
            self.pool.add(patient, rate=rate)

    # --- checkpoints and acknowledgements --------------------------------------------------------------------
    async def _checkpoint_due(self) -> None:
        """Checkpoint the patients with `checkpoint_s` seconds of signal not yet covered by one."""
        by_partition: dict[int, list[str]] = defaultdict(list)
        for patient in self.due:
            if patient in self.patients:
                by_partition[self.patients[patient].partition].append(patient)
        self.due.clear()
        for partition, patients in by_partition.items():
            await self._checkpoint(partition, patients)

    async def _keep_unacked(self) -> None:
        """Tell the broker the chunks a patient holds unacknowledged for longer than twice `checkpoint_s`
        (its token, or the chunks of a patient sending slower than real time) are still being worked on, so
        it does not deliver them again (after `ack_wait`, longer than that). Patients sending in real time
        checkpoint sooner than that and never need it."""
        now, limit = self.clock(), 2 * self.checkpoint_s
        for s in self.patients.values():
            if (s.pending or s.token is not None) and now - s.unacked_since > limit and self.holds(s.partition):
                for delivery in s.unacked():
                    await delivery.in_progress()
                s.unacked_since = now

    async def _checkpoint_partition(self, partition: int) -> None:
        """Checkpoint every patient of the partition with chunks not yet covered (before letting it go)."""
        due = [p for p, s in self.patients.items() if s.partition == partition and s.pending]
        await self._checkpoint(partition, due)

    async def _checkpoint(self, partition: int, due: list[str]) -> None:
        if not due or not self.holds(partition):
            return
        await self.bus.save_states(await self._cpu(self._save, due))
        if not self.holds(partition):
            return  # lost the lease meanwhile: the next owner redoes these chunks from an older checkpoint
        for patient in due:
            s = self.patients[patient]
            # All but the newest are acknowledged; the newest becomes the patient's token (see `_Patient`).
            held = s.unacked()
            if not held:
                continue
            for delivery in held[:-1]:
                await delivery.ack()
            s.token, s.pending, s.pending_s, s.unacked_since = held[-1], [], 0.0, s.last_delivered
            self.stats.checkpoints += 1

    def _save(self, patients: list[str]) -> dict[str, bytes]:
        return {p: str(self.patients[p].origin).encode() + b"\n" + self.pool.save(p) for p in patients}

    async def _close_idle(self) -> None:
        """Patients that stopped sending: their last events, then a checkpoint saying where their stream
        ended (so that chunks up to there are never scored again, and a later one starts a new stream), then
        forgotten.

        Silent means silent at the source, not a partition the broker is slow to deliver (a cluster electing
        leaders, a backlog): every chunk sent before the partition's oldest undelivered one has reached this
        worker, so a patient is closed only once it sent nothing for `idle_s` before that."""
        now = self.clock()
        candidates: dict[int, list[str]] = defaultdict(list)
        for p, s in self.patients.items():
            if now - s.last_seen > self.idle_s and self.holds(s.partition):
                candidates[s.partition].append(p)
        for partition, patients in candidates.items():
            try:
                backlog = await self.bus.backlog(partition)
            except BusUnavailable:
                continue  # cannot tell: not now
            behind = backlog.oldest_waiting_s if backlog.waiting and math.isfinite(backlog.oldest_waiting_s) else 0.0
            for patient in patients:
                s = self.patients[patient]
                if now - s.last_seen - behind <= self.idle_s or not self.holds(partition):
                    continue
                if not s.closed:
                    events = await self._cpu(self.pool.remove, patient)
                    await self.bus.store(self._outgoing(patient, s, events, float("nan")))
                    await self.bus.save_states({patient: CLOSED + str(s.next_start).encode() + b"\n"})
                    self.stats.closed += 1
                for delivery in s.unacked():
                    await delivery.ack()
                del self.patients[patient]  # (a patient found closed in its checkpoint: just forgotten)
                self.due.discard(patient)

    async def _dead(self, partition: int, kind: str, reason: str, delivery: Delivery) -> None:
        """To the dead letters with the full reason; counted by its kind."""
        await self.bus.dead_letter(partition, reason, delivery.headers, delivery.payload)
        await delivery.ack()
        self.stats.drops[f"dead letter: {kind}"] += 1

    def describe(self) -> dict[str, Any]:
        """What the dashboard shows of this worker (announced with every heartbeat)."""
        lagging = heapq.nlargest(LAGGING_SHOWN, ((s.lag_s, p) for p, s in self.patients.items()
                                                 if math.isfinite(s.lag_s)))
        return {"partitions": sorted(self.leases), "of": self.bus.partitions, "patients": len(self.patients),
                "model": self.model.name,
                "uptime_s": round(self.clock() - self.started, 1), "time": round(self.wall(), 3),
                "lagging": [[p, round(lag, 3)] for lag, p in lagging], **self.stats.summary()}

