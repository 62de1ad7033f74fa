"""`streamer serve` (a monitor worker on NATS JetStream) and `streamer publish` (records replayed as patients)."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from pathlib import Path
from typing import Any

import click

from streamer.cli.common import default_model, one_line_errors, refuse_given
from streamer.core.errors import InputError, StreamerError

DEFAULT_URL = "nats://127.0.0.1:4222"
NATS_HELP = "NATS server URL (a cluster: its servers' URLs, comma-separated)."


def _stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)


async def _serve(url: str, model_path: Path, partitions: int, checkpoint_s: float, lease_s: float, idle_s: float,
                 late_s: float, on_late: str, threads: int, provider: str, worker_id: str | None,
                 replicas: int) -> dict[str, Any]:
    from streamer.core.model import load_model
    from streamer.core.modelmeta import ECG_TASK
    from streamer.serve.nats_bus import NatsBus
    from streamer.serve.worker import Worker

    model = load_model(model_path, threads=threads, provider=provider, task=ECG_TASK)
    bus = await NatsBus(url, partitions=partitions, lease_s=lease_s, ack_wait_s=3 * checkpoint_s + 2 * lease_s,
                        name="aestream-worker", replicas=replicas).connect(create_buckets=True)
    worker = Worker(bus, model, worker_id, checkpoint_s=checkpoint_s, idle_s=idle_s, late_s=late_s, on_late=on_late)
    stop = asyncio.Event()
    _stop_on_signals(stop)
    try:
        await worker.run(stop)
    finally:
        await bus.close()
    return {"worker": worker.id, **worker.describe()}


@click.command()
@click.option("--nats", "url", default=DEFAULT_URL, show_default=True, help=NATS_HELP)
@click.option("--model", "model_path", type=click.Path(path_type=Path),
              help="ECG model (default: samples/models/ecg.onnx).")
@click.option("--partitions", type=int, default=16, show_default=True,
              help="Partitions patients are spread over (the same for every worker and publisher).")
@click.option("--checkpoint-s", type=float, default=10.0, show_default=True,
              help="Seconds of a patient's signal between checkpoints: what a takeover processes again at most.")
@click.option("--lease-s", type=float, default=5.0, show_default=True,
              help="Partition lease lifetime: a dead worker's partitions are taken over after this.")
@click.option("--idle-s", type=float, default=120.0, show_default=True,
              help="A patient without chunks for this long is closed (last beats out) and forgotten.")
@click.option("--late-s", type=float, default=30.0, show_default=True,
              help="A chunk arriving more than this after it was sent is late: counted, and handled by --on-late.")
@click.option("--on-late", type=click.Choice(["process", "drop"]), default="process", show_default=True,
              help="process: score it anyway (the service catches up); drop: skip it (sheds load; the patient's "
                   "stream restarts after the gap). Both are counted.")
@click.option("--threads", type=int, default=1, show_default=True, help="onnxruntime intra-op threads.")
@click.option("--provider", default="cpu", show_default=True, help="onnxruntime execution provider.")
@click.option("--worker-id", help="Name of this worker (default: host-pid).")
@click.option("--replicas", type=click.IntRange(1, 5), default=1, show_default=True,
              help="Copies a NATS cluster keeps of the service's streams and buckets, when they are made: 3 "
                   "survives the loss of one server; 1 for a single server.")
@one_line_errors
def serve(url: str, model_path: Path | None, partitions: int, checkpoint_s: float, lease_s: float, idle_s: float,
          late_s: float, on_late: str, threads: int, provider: str, worker_id: str | None, replicas: int) -> None:
    """A monitor worker: patients' ECG chunks from NATS JetStream through one pool, beat events back.

    Run as many as you like (on any machines): they share the partitions through leases, and when one
    dies another takes its partitions over within about --lease-s and goes on from the checkpoints.
    Stops cleanly on Ctrl-C or SIGTERM (checkpoints saved, leases given back).
    """
    if not (partitions >= 1 and checkpoint_s > 0 and lease_s > 0 and idle_s > 0 and late_s > 0):
        raise InputError("serve", "--partitions, --checkpoint-s, --lease-s, --idle-s and --late-s must be positive")
    logging.basicConfig(format="%(asctime)s %(message)s", datefmt="%H:%M:%S", level=logging.INFO)
    summary = asyncio.run(_serve(url, model_path or default_model("ecg.onnx"), partitions, checkpoint_s, lease_s,
                                 idle_s, late_s, on_late, threads, provider, worker_id, replicas))
    click.echo(json.dumps(summary))


async def _publish(url: str, records: tuple[str, ...], patients: int, seconds: float, speed: float, chunk_s: float,
                   partitions: int, churn_every_s: float | None, seed: int, replicas: int) -> dict[str, Any]:
    from streamer.ecg.readers import read_ecg
    from streamer.serve.nats_bus import NatsBus
    from streamer.serve.publisher import Publisher, Source

    sources = [Source(r.signal, r.fs) for r in (read_ecg(path) for path in records)]
    bus = await NatsBus(url, partitions=partitions, name="aestream-publisher", replicas=replicas).connect()
    stop = asyncio.Event()
    _stop_on_signals(stop)
    try:
        publisher = Publisher(bus, sources, patients, chunk_s=chunk_s, speed=speed, seed=seed,
                              churn_every_s=churn_every_s)
        await publisher.run(seconds, stop)
        return {"chunks": publisher.chunks, "patients_joined": publisher.joined, "late_s": round(publisher.late_s, 3)}
    finally:
        await bus.close()


@click.command()
@click.argument("records", nargs=-1, required=True)
@click.option("--nats", "url", default=DEFAULT_URL, show_default=True, help=NATS_HELP)
@click.option("--patients", type=int, default=100, show_default=True, help="Patients at once.")
@click.option("--seconds", type=float, default=60.0, show_default=True, help="Seconds of signal per patient.")
@click.option("--speed", type=float, default=1.0, show_default=True, help="1 = real time, N = N times faster.")
@click.option("--chunk-s", type=float, default=1.0, show_default=True, help="Seconds of signal per message.")
@click.option("--partitions", type=int, default=16, show_default=True, help="As the workers'.")
@click.option("--churn-every-s", type=float, help="Every this many seconds one patient leaves and a new one joins.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the patients' record offsets.")
@click.option("--report", is_flag=True, help="Print a JSON summary (chunks sent, worst lateness) on stdout.")
@click.option("--replicas", type=click.IntRange(1, 5), default=1, show_default=True,
              help="As the workers' (when this makes the streams).")
@one_line_errors
def publish(records: tuple[str, ...], url: str, patients: int, seconds: float, speed: float, chunk_s: float,
            partitions: int, churn_every_s: float | None, seed: int, report: bool, replicas: int) -> None:
    """Replay ECG records (WFDB, CSV, EDF) as live patients into NATS: the load generator, and an example of
    what a device gateway sends (one message per patient per --chunk-s)."""
    if not (patients >= 1 and seconds > 0 and speed > 0 and chunk_s > 0):
        raise InputError("publish", "--patients, --seconds, --speed and --chunk-s must be positive")
    summary = asyncio.run(_publish(url, records, patients, seconds, speed, chunk_s, partitions, churn_every_s, seed,
                                   replicas))
    click.echo(f"published {summary['chunks']} chunks of {summary['patients_joined']} patients; "
               f"at worst {summary['late_s']:.2f} s behind schedule", err=True)
    if report:
        click.echo(json.dumps(summary))


async def _watch(url: str, partitions: int, interval: float, once: bool, as_json: bool) -> None:
    from rich.console import Console
    from rich.live import Live
    from rich.text import Text

    from streamer.serve.nats_bus import NatsBus
    from streamer.serve.transport import BusUnavailable
    from streamer.serve.watch import Watcher
    from streamer.ui.service import render_service

    bus = await NatsBus(url, partitions=partitions, name="aestream-watch").connect(create_streams=False)
    watcher = Watcher(bus)
    console = Console()
    try:
        if once or as_json:
            try:
                snap = await watcher.settled()
            except BusUnavailable as exc:
                raise StreamerError(f"{url}: {exc}") from None
            if as_json:
                click.echo(json.dumps(snap.to_dict()))
            else:
                console.print(render_service(snap, url, console.width, min(console.height, 60),
                                             watcher.anomaly_window_s))
            return
        stop = asyncio.Event()
        _stop_on_signals(stop)
        with Live(console=console, auto_refresh=False, screen=True) as live:
            while not stop.is_set():
                try:
                    view: Any = render_service(await watcher.snapshot(), url, console.width, console.height,
                                               watcher.anomaly_window_s)
                except BusUnavailable as exc:
                    view = Text(f"aestream watch · {url}: {exc}; retrying", style="bold red")
                live.update(view, refresh=True)
                try:
                    await asyncio.wait_for(stop.wait(), interval)
                except asyncio.TimeoutError:
                    pass
    finally:
        await bus.close()


@click.command()
@click.option("--nats", "url", default=DEFAULT_URL, show_default=True, help=NATS_HELP)
@click.option("--partitions", type=int, default=16, show_default=True,
              help="Used until a worker announces the service's own count.")
@click.option("--interval", type=float, default=1.0, show_default=True, help="Seconds between refreshes.")
@click.option("--once", is_flag=True, help="Print one screen and exit.")
@click.option("--json", "as_json", is_flag=True, help="Print one snapshot as JSON and exit.")
@one_line_errors
def watch(url: str, partitions: int, interval: float, once: bool, as_json: bool) -> None:
    """The whole monitor service on one screen: workers alive, patients, lag per partition, beats/s, anomalies
    per patient, drops with their reasons. Ctrl-C to leave."""
    if not (partitions >= 1 and interval > 0):
        raise InputError("watch", "--partitions and --interval must be positive")
    if once or as_json:
        refuse_given(["interval"], "one screen or snapshot (--once, --json): nothing is refreshed")
    asyncio.run(_watch(url, partitions, interval, once, as_json))
