"""`streamer serve` (a monitor worker on NATS JetStream) and `streamer publish` (records replayed as patients)."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Any

import click

from streamer.cli.common import default_model, one_line_errors
from streamer.core.errors import InputError

DEFAULT_URL = "nats://127.0.0.1:4222"


def _stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)


async def _serve(url: str, model_path: Path, partitions: int, checkpoint_s: float, lease_s: float, idle_s: float,
                 threads: int, provider: str, worker_id: str | None) -> dict[str, Any]:
    from streamer.core.model import load_model
    from streamer.core.modelmeta import ECG_TASK
    from streamer.serve.nats_bus import NatsBus
    from streamer.serve.worker import Worker

    model = load_model(model_path, threads=threads, provider=provider, task=ECG_TASK)
    bus = await NatsBus(url, partitions=partitions, lease_s=lease_s, ack_wait_s=3 * checkpoint_s + 2 * lease_s,
                        name="aestream-worker").connect()
    worker = Worker(bus, model, worker_id, checkpoint_s=checkpoint_s, lease_s=lease_s, idle_s=idle_s)
    stop = asyncio.Event()
    _stop_on_signals(stop)
    try:
        await worker.run(stop)
    finally:
        await bus.close()
    return {"worker": worker.id, **worker.describe()}


@click.command()
@click.option("--nats", "url", default=DEFAULT_URL, show_default=True, help="NATS server URL.")
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
@click.option("--threads", type=int, default=1, show_default=True, help="onnxruntime intra-op threads.")
@click.option("--provider", default="cpu", show_default=True, help="onnxruntime execution provider.")
@click.option("--worker-id", help="Name of this worker (default: host-pid).")
@one_line_errors
def serve(url: str, model_path: Path | None, partitions: int, checkpoint_s: float, lease_s: float, idle_s: float,
          threads: int, provider: str, worker_id: str | None) -> None:
    """A monitor worker: patients' ECG chunks from NATS JetStream through one pool, beat events back.

    Run as many as you like (on any machines): they share the partitions through leases, and when one
    dies another takes its partitions over within about --lease-s and goes on from the checkpoints.
    Stops cleanly on Ctrl-C or SIGTERM (checkpoints saved, leases given back).
    """
    if not (partitions >= 1 and checkpoint_s > 0 and lease_s > 0 and idle_s > 0):
        raise InputError("serve", "--partitions, --checkpoint-s, --lease-s and --idle-s must be positive")
    summary = asyncio.run(_serve(url, model_path or default_model("ecg.onnx"), partitions, checkpoint_s, lease_s,
                                 idle_s, threads, provider, worker_id))
    click.echo(json.dumps(summary))


async def _publish(url: str, records: tuple[str, ...], patients: int, seconds: float, speed: float, chunk_s: float,
                   partitions: int, churn_every_s: float | None, seed: int) -> int:
    from streamer.ecg.readers import read_ecg
    from streamer.serve.nats_bus import NatsBus
    from streamer.serve.publisher import Publisher, Source

    sources = [Source(r.signal, r.fs) for r in (read_ecg(path) for path in records)]
    bus = await NatsBus(url, partitions=partitions, name="aestream-publisher").connect()
    stop = asyncio.Event()
    _stop_on_signals(stop)
    try:
        publisher = Publisher(bus, sources, patients, chunk_s=chunk_s, speed=speed, seed=seed,
                              churn_every_s=churn_every_s)
        return await publisher.run(seconds, stop)
    finally:
        await bus.close()


@click.command()
@click.argument("records", nargs=-1, required=True)
@click.option("--nats", "url", default=DEFAULT_URL, show_default=True, help="NATS server URL.")
@click.option("--patients", type=int, default=100, show_default=True, help="Patients at once.")
@click.option("--seconds", type=float, default=60.0, show_default=True, help="Seconds of signal per patient.")
@click.option("--speed", type=float, default=1.0, show_default=True, help="1 = real time, N = N times faster.")
@click.option("--chunk-s", type=float, default=1.0, show_default=True, help="Seconds of signal per message.")
@click.option("--partitions", type=int, default=16, show_default=True, help="As the workers'.")
@click.option("--churn-every-s", type=float, help="Every this many seconds one patient leaves and a new one joins.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the patients' record offsets.")
@one_line_errors
def publish(records: tuple[str, ...], url: str, patients: int, seconds: float, speed: float, chunk_s: float,
            partitions: int, churn_every_s: float | None, seed: int) -> None:
    """Replay ECG records (WFDB, CSV, EDF) as live patients into NATS: the load generator, and an example of
    what a device gateway sends (one message per patient per --chunk-s)."""
    if not (patients >= 1 and seconds > 0 and speed > 0 and chunk_s > 0):
        raise InputError("publish", "--patients, --seconds, --speed and --chunk-s must be positive")
    chunks = asyncio.run(_publish(url, records, patients, seconds, speed, chunk_s, partitions, churn_every_s, seed))
    click.echo(f"published {chunks} chunks", err=True)
    sys.exit(0)
