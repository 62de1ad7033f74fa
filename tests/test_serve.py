"""The monitor service on a real NATS JetStream server (127.0.0.1 only) with real MIT-BIH records: workers
share the partitions, a worker killed with SIGKILL mid-run is taken over, and every beat event is stored
exactly once with the scores an uninterrupted run gives; bad chunks go to the dead letters."""

from __future__ import annotations

import asyncio
import io
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import streamer
from streamer.core.errors import StreamerError
from streamer.serve.messages import chunk_subject, partition_of
from streamer.serve.nats_bus import CHUNKS, DEAD, EVENTS, NatsBus
from streamer.serve.publisher import Publisher, Source
from streamer.serve.transport import Outgoing
from tests.conftest import MODELS, mitdb_record
from tests.nats_server import NatsCluster, NatsServer, nats_server

pytest.importorskip("nats")

PARTITIONS = 8
PATIENTS = 200
SECONDS = 40  # of signal per patient, in 1 s chunks
SPEED = 4.0
LEASE_S, CHECKPOINT_S, IDLE_S = 2.0, 2.0, 4.0


def start_worker(url: str, name: str, folder: Path, idle_s: float = IDLE_S, *more: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "streamer.cli", "serve", "--nats", url, "--partitions",
                             str(PARTITIONS), "--lease-s", str(LEASE_S), "--checkpoint-s", str(CHECKPOINT_S),
                             "--idle-s", str(idle_s), "--worker-id", name, "--model", str(MODELS / "ecg.onnx"),
                             *more],
                            stdout=open(folder / f"{name}.out", "wb"), stderr=open(folder / f"{name}.err", "wb"))


def stop_workers(workers: Iterable[subprocess.Popen[bytes]]) -> None:
    """SIGTERM to the workers still running (they save checkpoints, give partitions back, print summaries)."""
    for proc in workers:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)


async def owners(url: str) -> dict[int, str]:
    bus = await NatsBus(url, partitions=PARTITIONS).connect()
    try:
        return await bus.owners()
    finally:
        await bus.close()


def wait_for(check: Any, timeout: float, what: str) -> float:
    """Seconds until `check()` holds; a check that fails to ask (a cluster electing leaders answers with
    timeouts for a while) counts as not yet."""
    start = time.monotonic()
    last: Exception | None = None
    while time.monotonic() - start < timeout:
        try:
            if check():
                return time.monotonic() - start
        except StreamerError as exc:
            last = exc
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last error: {last})")


async def backlog(url: str, undelivered_only: bool = False) -> int:
    """Chunks not yet delivered or not yet acknowledged (or only the first), over all partitions."""
    bus = await NatsBus(url, partitions=PARTITIONS).connect()
    try:
        total = 0
        for p in range(PARTITIONS):
            try:
                info = await bus.js.consumer_info(CHUNKS, f"part-{p}")
            except Exception:  # noqa: BLE001  (a partition nobody consumed yet)
                continue
            total += info.num_pending + (0 if undelivered_only else info.num_ack_pending)
        return total
    finally:
        await bus.close()


async def read_all(url: str, stream: str, subject: str) -> list[Any]:
    bus = await NatsBus(url, partitions=PARTITIONS).connect()
    try:
        sub = await bus.js.pull_subscribe(subject, stream=stream)
        total = (await sub.consumer_info()).num_pending  # all of them, read until every one is here
        out: list[Any] = []
        deadline = time.monotonic() + 60
        while len(out) < total and time.monotonic() < deadline:
            try:
                msgs = await sub.fetch(1000, timeout=1.0)
            except Exception:  # noqa: BLE001  (a timeout: in a cluster, maybe a leader moving; try again)
                continue
            for m in msgs:
                out.append(m)
                await m.ack()
        assert len(out) == total, f"read {len(out)} of {total} messages on {subject}"
        await sub.unsubscribe()  # else closing waits for the pull request to drain
        return out
    finally:
        await bus.close()


def sources() -> list[Source]:
    return [Source(streamer.read_ecg(mitdb_record(name)).signal, 360.0) for name in ("106", "100", "116", "105")]


async def publish(url: str, publisher_out: list[Publisher], publish_timeout_s: float = 10.0) -> None:
    bus = await NatsBus(url, partitions=PARTITIONS, publish_timeout_s=publish_timeout_s).connect()
    try:
        publisher = Publisher(bus, sources(), PATIENTS, chunk_s=1.0, speed=SPEED, seed=7)
        publisher_out.append(publisher)
        await publisher.run(SECONDS)
    finally:
        await bus.close()


def reference(patient: Any, model: streamer.Model) -> dict[int, float]:
    """The patient's beats (R sample -> score) from one uninterrupted run of the library on what was sent."""
    x = np.take(patient.source.signal, np.arange(patient.offset, patient.offset + patient.sent), mode="wrap")
    stream = model.stream(rate=patient.source.rate)
    return {e.r_sample: e.score for e in stream.feed(x.astype(np.float32).astype(np.float64)) + stream.flush()}


def assert_every_beat_once(events: list[dict[str, Any]], publisher: Publisher) -> int:
    """Every beat of every patient stored exactly once, with the score of one uninterrupted library run on
    what the publisher sent; returns the number of beats."""
    by_patient: dict[str, dict[int, float]] = {}
    for e in events:
        beats = by_patient.setdefault(e["stream"], {})
        assert e["r_sample"] not in beats, f"beat {e['stream']}:{e['r_sample']} stored twice"
        beats[e["r_sample"]] = e["score"]
    model = streamer.load_model(MODELS / "ecg.onnx")
    assert len(publisher.active) == PATIENTS and all(p.sent == SECONDS * 360 for p in publisher.active)
    total = 0
    for patient in publisher.active:
        expected = reference(patient, model)
        got = by_patient.get(patient.id, {})
        assert set(got) == set(expected), (patient.id, len(got), len(expected))
        np.testing.assert_allclose([got[r] for r in sorted(expected)], [expected[r] for r in sorted(expected)],
                                   rtol=0, atol=1e-6)
        total += len(expected)
    assert total > 40 * PATIENTS * SECONDS / 40  # ~1.2 beats per second per patient
    return total


def watch_json(url: str, expect: tuple[str, ...] = ()) -> dict[str, Any]:
    """`streamer watch --json`; with `expect`, taken again (for up to 15 s) until those workers are in it: a
    worker's announcement lives a lease, and on a loaded machine one can lapse for a moment."""
    deadline = time.monotonic() + 15
    while True:
        out = subprocess.run([sys.executable, "-m", "streamer.cli", "watch", "--nats", url, "--json"],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        snapshot: dict[str, Any] = json.loads(out.stdout)
        if set(expect) <= set(snapshot["workers"]) or time.monotonic() > deadline:
            return snapshot
        time.sleep(0.5)


async def render_screens(url: str) -> dict[tuple[int, int], str]:
    """`streamer watch`'s screen at 80x24 and 160x50, from a snapshot of the running service."""
    from rich.console import Console

    from streamer.serve.watch import Watcher
    from streamer.ui.service import render_service

    bus = await NatsBus(url, partitions=PARTITIONS).connect()
    try:
        snap = await Watcher(bus).settled()
    finally:
        await bus.close()
    screens = {}
    for width, height in ((80, 24), (160, 50)):
        console = Console(file=io.StringIO(), width=width, height=height, color_system=None)
        console.print(render_service(snap, url, width, height))
        screens[(width, height)] = console.file.getvalue()  # type: ignore[attr-defined]
    return screens


@pytest.mark.parametrize("when", ["mid-run", "before-close"])
def test_failover_loses_no_beat_and_duplicates_none(tmp_path: Path, when: str) -> None:
    """A worker is killed (SIGKILL) mid-run, or after the patients' last chunks were processed but before
    their streams were closed (when their last beats come): the other worker takes its partitions over,
    and every beat is stored exactly once with the score of an uninterrupted run."""
    idle_s = IDLE_S if when == "mid-run" else 8.0
    with nats_server(tmp_path) as server:
        url = server.url
        workers = {name: start_worker(url, name, tmp_path, idle_s) for name in ("worker-a", "worker-b")}
        try:
            wait_for(lambda: set(asyncio.run(owners(url)).values()) == set(workers), 30, "both workers to lease")
            published: list[Publisher] = []
            seen: list[dict[str, Any]] = []

            async def publish_and_kill() -> float:
                task = asyncio.create_task(publish(url, published))
                await asyncio.sleep(SECONDS / SPEED * 0.3)  # mid-run: what the dashboard shows
                seen.append(await asyncio.to_thread(watch_json, url))
                if when == "before-close":
                    await task
                    await asyncio.sleep(2.0)  # the last chunks processed, the streams still open (idle_s 8)
                held = await owners(url)
                victim = max(set(held.values()), key=lambda w: sum(v == w for v in held.values()))
                workers[victim].send_signal(signal.SIGKILL)
                workers[victim].wait()
                killed_at = time.monotonic()
                survivor = next(w for w in workers if w != victim)
                while set((await owners(url)).values()) != {survivor} or len(await owners(url)) != PARTITIONS:
                    await asyncio.sleep(0.1)
                takeover = time.monotonic() - killed_at
                await task
                return takeover

            takeover = asyncio.run(publish_and_kill())
            assert takeover < 3 * LEASE_S + 2  # the dead worker's partitions are taken over within seconds
            wait_for(lambda: asyncio.run(backlog(url)) == 0, 90, "every chunk to be processed and acknowledged")
            time.sleep(idle_s + 2)  # the patients close (their last beats) after idle_s without chunks
            events = [json.loads(m.data) for m in asyncio.run(read_all(url, EVENTS, "aestream.beats.>"))]
        finally:
            stop_workers(workers.values())
    total = assert_every_beat_once(events, published[0])
    view = seen[0]  # the dashboard mid-run: both workers, every partition owned, every patient, beats flowing
    assert sorted(view["workers"]) == ["worker-a", "worker-b"] and len(view["owners"]) == PARTITIONS
    assert view["patients"] == PATIENTS
    # the rate shown is measured, not assumed: how fast the workers keep up depends on the machine (CI's 2 cores
    # share them with the broker and the publisher), so only what no machine can exceed is asserted
    assert 0 < view["rates"]["chunks_per_s"] < 2 * PATIENTS * SPEED
    assert view["rates"]["beats_per_s"] > 0.5 * view["rates"]["chunks_per_s"]
    print(f"{when}: takeover {takeover:.2f} s, {total} beats, {len(events)} events stored")


def test_bad_chunks_go_to_dead_letters_and_others_go_on(tmp_path: Path) -> None:
    with nats_server(tmp_path) as server:
        url = server.url
        worker = start_worker(url, "worker-a", tmp_path)
        try:
            wait_for(lambda: len(asyncio.run(owners(url))) == PARTITIONS, 30, "the worker to lease")

            async def send() -> None:
                bus = await NatsBus(url, partitions=PARTITIONS).connect()
                x = streamer.read_ecg(mitdb_record("106")).signal[:360 * 20].astype("<f4")
                good = {"Rate": "360.0", "Sent": repr(time.time()), "Format": "f32le"}
                try:
                    for k in range(20):
                        for patient, payload, headers in (
                                ("good-1", x[k * 360:(k + 1) * 360].tobytes(), {}),
                                ("inf-1", (x[k * 360:(k + 1) * 360] + (np.inf if k == 5 else 0)).tobytes(), {}),
                                ("odd-1", x[k * 360:(k + 1) * 360].tobytes()[:-3] if k == 7 else
                                 x[k * 360:(k + 1) * 360].tobytes(), {}),
                                ("norate-1", x[k * 360:(k + 1) * 360].tobytes(), {"Rate": "abc"} if k == 3 else {})):
                            await bus.publish_chunks([Outgoing(
                                chunk_subject(partition_of(patient, PARTITIONS), patient), f"{patient}:{k}", payload,
                                {**good, "Patient": patient, "Start": str(k * 360), **headers})])
                    await bus.js.publish(f"aestream.chunks.0.{'x' * 3}", b"not a chunk")
                finally:
                    await bus.close()

            asyncio.run(send())
            wait_for(lambda: asyncio.run(backlog(url)) == 0, 60, "every chunk to be handled")
            time.sleep(IDLE_S + 2)
            view = watch_json(url, expect=("worker-a",))
            screens = asyncio.run(render_screens(url))
            dead = asyncio.run(read_all(url, DEAD, "aestream.dead.>"))
            events = [json.loads(m.data) for m in asyncio.run(read_all(url, EVENTS, "aestream.beats.>"))]
        finally:
            stop_workers([worker])
    reasons = sorted(m.headers["Reason"] for m in dead)
    assert len(reasons) == 4, reasons
    assert any("non-finite" in r for r in reasons) and any("float32" in r for r in reasons)
    assert any("unreadable header" in r or "rate" in r for r in reasons) and any("missing" in r for r in reasons)
    per_patient = {p: sum(e["stream"] == p for e in events) for p in ("good-1", "inf-1", "odd-1", "norate-1")}
    assert per_patient["good-1"] >= 15  # ~20 s of record 106: its beats all came out
    summary = json.loads((tmp_path / "worker-a.out").read_text().strip().splitlines()[-1])
    assert sum(v for k, v in summary["drops"].items() if k.startswith("dead letter")) == 4
    assert b"Traceback" not in (tmp_path / "worker-a.err").read_bytes()
    # What the dashboard shows: the dead letters, each reason among the drops, the patients closed when idle.
    assert view["dead_letters"] == 4
    assert sum(n for reason, n in view["drops"].items() if reason.startswith("dead letter")) == 4
    assert view["workers"]["worker-a"]["closed"] >= 4 and view["patients"] == 0
    for (width, height), screen in screens.items():
        lines = screen.rstrip("\n").split("\n")
        assert len(lines) == height and max(len(line) for line in lines) == width, (width, height)
        assert "worker-a" in screen and "dead letter" in screen and "8 of 8 owned" in screen, screen


@pytest.mark.parametrize("crash", [False, True], ids=["restart", "crash"])
def test_broker_restart_loses_nothing(tmp_path: Path, crash: bool) -> None:
    """The broker stops mid-run (SIGTERM, or SIGKILL: a crash of the process) and comes back on the same
    store: workers and publisher reconnect and go on, and every beat is stored exactly once. (The
    publisher stalls while the broker is away; the workers' idle time is made longer than that, so that no
    patient's stream is closed and restarted, which would change its first beats after the outage.)"""
    idle_s = 10.0
    with nats_server(tmp_path) as server:
        url = server.url
        workers = {name: start_worker(url, name, tmp_path, idle_s) for name in ("worker-a", "worker-b")}
        try:
            wait_for(lambda: set(asyncio.run(owners(url)).values()) == set(workers), 30, "both workers to lease")
            published: list[Publisher] = []

            async def publish_through_outage() -> None:
                task = asyncio.create_task(publish(url, published, publish_timeout_s=2.0))
                await asyncio.sleep(SECONDS / SPEED * 0.4)
                await asyncio.to_thread(server.restart, signal.SIGKILL if crash else signal.SIGTERM, 2.0)
                await task

            asyncio.run(publish_through_outage())
            wait_for(lambda: asyncio.run(backlog(url)) == 0, 90, "every chunk to be processed and acknowledged")
            time.sleep(idle_s + 2)
            events = [json.loads(m.data) for m in asyncio.run(read_all(url, EVENTS, "aestream.beats.>"))]
            assert all(proc.poll() is None for proc in workers.values()), "a worker died with the broker"
        finally:
            stop_workers(workers.values())
    total = assert_every_beat_once(events, published[0])
    outages = [json.loads((tmp_path / f"{w}.out").read_text().strip().splitlines()[-1])["outages"] for w in workers]
    logs = {w: (tmp_path / f"{w}.err").read_text() for w in workers}
    for log in logs.values():  # each saw the broker go and come back, in one line each
        assert "disconnected from NATS; reconnecting" in log and "reconnected to NATS" in log, log
        assert "Traceback" not in log
    print(f"broker {'crash' if crash else 'restart'}: {total} beats, outages seen {outages}, "
          f"publisher retries {published[0].retries}")


async def make_replicated(url: str, timeout: float = 60.0) -> None:
    """Make the service's streams and buckets with 3 replicas, once the cluster has elected its leaders."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            bus = await NatsBus(url, partitions=PARTITIONS, lease_s=LEASE_S, replicas=3).connect(create_buckets=True)
            info = await bus.js.stream_info(CHUNKS)
            await bus.close()
            assert info.config.num_replicas == 3
            return
        except Exception:  # noqa: BLE001  (JetStream not ready yet: no meta leader)
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


async def open_patients(url: str) -> int:
    """Patients the live workers have open (each announces its count with every heartbeat)."""
    bus = await NatsBus(url, partitions=PARTITIONS).connect()
    try:
        return sum(int(w.get("patients", 0)) for w in (await bus.workers()).values())
    finally:
        await bus.close()


async def chunk_stream_leader(url: str) -> str:
    bus = await NatsBus(url, partitions=PARTITIONS).connect()
    try:
        return str((await bus.js.stream_info(CHUNKS)).cluster.leader)
    finally:
        await bus.close()


@pytest.mark.slow
def test_cluster_loses_nothing_when_a_server_dies(tmp_path: Path) -> None:
    """Three servers on 127.0.0.1, streams and buckets kept on all three (R3); mid-run the server leading
    the chunk stream is killed (SIGKILL) and stays down: the other two elect new leaders, workers and
    publisher move to them, and every beat is stored exactly once."""
    cluster = NatsCluster(tmp_path).start()
    try:
        url = cluster.url
        asyncio.run(make_replicated(url))
        workers = {name: start_worker(url, name, tmp_path, 10.0, "--replicas", "3")
                   for name in ("worker-a", "worker-b")}
        try:
            wait_for(lambda: set(asyncio.run(owners(url)).values()) == set(workers), 30, "both workers to lease")
            published: list[Publisher] = []
            victims: list[str] = []

            async def publish_and_kill_a_server() -> None:
                task = asyncio.create_task(publish(url, published, publish_timeout_s=2.0))
                await asyncio.sleep(SECONDS / SPEED * 0.4)
                victims.append(await chunk_stream_leader(url))
                cluster.servers[victims[0]].stop(signal.SIGKILL)
                await task

            asyncio.run(publish_and_kill_a_server())
            killed_at = time.monotonic()
            url = cluster.url  # the two left
            wait_for(lambda: asyncio.run(backlog(url, undelivered_only=True)) == 0, 120, "every chunk delivered")
            recovered = time.monotonic() - killed_at
            wait_for(lambda: asyncio.run(backlog(url)) == 0, 120, "every chunk to be processed and acknowledged")
            # The patients close (their last beats) `idle_s` after their last chunk: however long the
            # elections took, every worker ends with none open.
            wait_for(lambda: asyncio.run(open_patients(url)) == 0, 120, "every patient's stream to close")
            assert asyncio.run(chunk_stream_leader(url)) != victims[0]
            events = [json.loads(m.data) for m in asyncio.run(read_all(url, EVENTS, "aestream.beats.>"))]
            assert all(proc.poll() is None for proc in workers.values()), "a worker died with a server"
        finally:
            stop_workers(workers.values())
    finally:
        cluster.stop()
    total = assert_every_beat_once(events, published[0])
    errors = "".join((tmp_path / f"{w}.err").read_text() for w in workers)
    assert "Traceback" not in errors
    outages = [json.loads((tmp_path / f"{w}.out").read_text().strip().splitlines()[-1])["outages"] for w in workers]
    print(f"cluster: {victims[0]} (leading the chunk stream) killed; {total} beats, each once; every chunk "
          f"delivered {recovered:.1f} s after the kill (publishing ended {SECONDS / SPEED * 0.6:.0f} s after it); "
          f"outages seen by the workers {outages}; publisher retries {published[0].retries}")


@pytest.mark.parametrize("policy", ["process", "drop"])
def test_late_chunks_are_counted_and_handled_by_the_policy(tmp_path: Path, policy: str) -> None:
    """Back-pressure is never silent: chunks arriving more than --late-s after they were sent are counted
    as late, on the dashboard too; `drop` skips them (counted; the stream starts again after them), `process`
    scores them. A patient whose chunks are on time is untouched either way."""
    with nats_server(tmp_path) as server:
        url = server.url
        worker = start_worker(url, "worker-a", tmp_path, IDLE_S, "--late-s", "20", "--on-late", policy)
        try:
            wait_for(lambda: len(asyncio.run(owners(url))) == PARTITIONS, 30, "the worker to lease")

            async def send() -> None:
                bus = await NatsBus(url, partitions=PARTITIONS).connect()
                x = streamer.read_ecg(mitdb_record("100")).signal[:360 * 20].astype("<f4")
                try:
                    for k in range(20):
                        late_by = 60.0 if k < 10 else 0.0  # the first 10 s of late-1 arrive a minute late
                        for patient, sent in (("late-1", time.time() - late_by), ("ontime-1", time.time())):
                            await bus.publish_chunks([Outgoing(
                                chunk_subject(partition_of(patient, PARTITIONS), patient), f"{patient}:{k}",
                                x[k * 360:(k + 1) * 360].tobytes(),
                                {"Patient": patient, "Rate": "360.0", "Start": str(k * 360), "Sent": repr(sent)})])
                finally:
                    await bus.close()

            asyncio.run(send())
            wait_for(lambda: asyncio.run(backlog(url)) == 0, 60, "every chunk to be handled")
            time.sleep(IDLE_S + 2)
            view = watch_json(url, expect=("worker-a",))
            events = [json.loads(m.data) for m in asyncio.run(read_all(url, EVENTS, "aestream.beats.>"))]
        finally:
            stop_workers([worker])
    summary = json.loads((tmp_path / "worker-a.out").read_text().strip().splitlines()[-1])
    assert summary["late"] == 10 and view["workers"]["worker-a"]["late"] == 10
    beats = {p: sorted(e["r_sample"] for e in events if e["stream"] == p) for p in ("late-1", "ontime-1")}
    assert len(beats["ontime-1"]) >= 20 and beats["ontime-1"][0] < 360 * 2  # ~20 s of record 100, from its start
    dropped = summary["drops"].get("late chunk dropped (over 20 s behind)", 0)
    if policy == "drop":
        assert dropped == 10 and view["drops"]["late chunk dropped (over 20 s behind)"] == 10
        assert beats["late-1"] and min(beats["late-1"]) >= 360 * 10  # nothing from the dropped first 10 s
    else:
        assert dropped == 0 and beats["late-1"] == beats["ontime-1"]  # the same signal, scored in full


def test_a_server_without_the_service_gives_one_line(tmp_path: Path) -> None:
    """A server without JetStream, and one with JetStream but no service on it yet (the dashboard started
    first, which must not make the streams with its own settings): one line naming the server, exit 2."""
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "streamer.cli", *args], capture_output=True, text=True,
                              timeout=60)

    plain = NatsServer(tmp_path / "plain")
    plain.folder.mkdir()
    plain.jetstream = False
    plain.start()
    try:
        for args in (["serve"], ["publish", str(mitdb_record("100")), "--seconds", "1"], ["watch", "--json"]):
            out = run(*args, "--nats", plain.url)
            assert out.returncode == 2 and out.stderr.strip().splitlines() == [
                f"streamer: error: {plain.url}: this NATS server has no JetStream (start it with -js)"], out.stderr
    finally:
        plain.stop()
    with nats_server(tmp_path) as server:
        out = run("watch", "--json", "--nats", server.url)
        assert out.returncode == 2 and out.stderr.strip().splitlines() == [
            f"streamer: error: {server.url}: no aestream streams on this server (yet): start a worker or a "
            "publisher"], out.stderr
        streams = asyncio.run(stream_names(server.url))
    assert not any(name.startswith("AESTREAM") for name in streams)  # the dashboard made none


async def stream_names(url: str) -> list[str]:
    import nats

    nc = await nats.connect(url)
    try:
        return [s.config.name for s in await nc.jetstream().streams_info()]
    finally:
        await nc.close()
