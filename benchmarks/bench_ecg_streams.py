"""Many ECG streams in one process on one core: N concurrent 360 Hz patients through one pool.

    python benchmarks/bench_ecg_streams.py [--n 1 10 100 1000 10000] [--seconds 30] [--processes 2 --per 5000]

Each stream replays one of the shared MIT-BIH records (cycled) from its own random offset, in 1 s chunks
(what a bedside gateway sends). A tick gives every stream its next second; all chunks of a tick arrive at
the tick's start, so a beat's latency from its chunk's arrival to its event is the tick's processing time.
Ticks run back to back (not slept to the second): the pool holds real time while a tick takes less than
the 1 s it stands for. Reported per N, after a warm-up of `--warmup` seconds of signal:
- CPU per stream-second: process CPU time / (N x seconds of signal);
- latency p50 / p99 / max over the ticks (chunk arrival -> its beat events);
- memory per stream: resident memory added by the N streams (after warm-up) / N;
- beats per second of signal.
One core: the process is pinned to one CPU and onnxruntime runs 1 thread. `--processes P --per M` runs P
such processes at once, each pinned to its own core with M streams (the 2-core machine's figure).
Writes results_ecg_streams.{md,json} and a PNG of cost against N.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RECORDS = ("100", "102", "104", "105", "106", "116", "121", "123")
FS = 360


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def load_signals(data: Path) -> list[np.ndarray]:
    from streamer.ecg.readers import read_recording

    out = []
    for name in RECORDS:
        path = data / name
        if not path.with_suffix(".hea").is_file():
            path = ROOT / "samples" / "ecg" / "106"  # a clone without ../shared: the shipped record
        out.append(read_recording(path).signal)
    return out


def run_one(n: int, seconds: int, warmup: int, data: Path, core: int | None, seed: int = 0) -> dict[str, Any]:
    """N streams for warmup + seconds ticks in this process; returns the figures."""
    import streamer

    if core is not None:
        os.sched_setaffinity(0, {core})
    signals = load_signals(data)
    model = streamer.load_model(ROOT / "samples" / "models" / "ecg.onnx", threads=1)
    rng = np.random.default_rng(seed)
    total = (warmup + seconds + 1) * FS
    sources = [signals[i % len(signals)] for i in range(n)]
    offsets = [int(rng.integers(0, len(s) - total)) for s in sources]
    gc.collect()
    before = rss_mb()
    pool = model.pool(rate=FS)
    for i in range(n):
        pool.add(i)
    ticks, beats, anomalies = [], 0, 0
    cpu0 = 0.0
    for t in range(warmup + seconds):
        chunks = {i: sources[i][offsets[i] + t * FS: offsets[i] + (t + 1) * FS] for i in range(n)}
        if t == warmup:
            after = rss_mb()
            cpu0 = time.process_time()
        start = time.perf_counter()
        result = pool.feed(chunks)
        elapsed = time.perf_counter() - start
        if t >= warmup:
            ticks.append(elapsed)
            events = result.all()
            beats += len(events)
            anomalies += sum(e.anomaly for e in events)
    cpu = time.process_time() - cpu0
    lat = np.array(ticks) * 1e3
    return {"n": n, "seconds": seconds, "cpu_us_per_stream_second": 1e6 * cpu / (n * seconds),
            "tick_ms": {"p50": float(np.percentile(lat, 50)), "p99": float(np.percentile(lat, 99)),
                        "max": float(lat.max())},
            "real_time": bool(lat.max() < 1000.0), "memory_kb_per_stream": 1024 * (after - before) / n,
            "beats_per_s": beats / seconds, "anomalies": anomalies, "core": core}


def run_processes(processes: int, per: int, seconds: int, warmup: int, data: Path) -> list[dict[str, Any]]:
    """`processes` copies of this script at once, each pinned to its own core."""
    procs = [subprocess.Popen([sys.executable, __file__, "--child", str(per), str(seconds), str(warmup), str(data),
                               str(core), str(core)], stdout=subprocess.PIPE, text=True)
             for core in range(processes)]
    return [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = [r["n"] for r in rows]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.plot(n, [r["cpu_us_per_stream_second"] for r in rows], "o-")
    a.set(xscale="log", yscale="log", xlabel="concurrent 360 Hz streams (one core)",
          ylabel="CPU per stream-second (us)", title="cost per stream")
    a.axhline(1e6 / 5000, color="grey", ls="--", lw=1)
    a.text(n[0], 1e6 / 5000 * 1.1, "5 000 streams per core", color="grey", fontsize=8)
    b.plot(n, [r["tick_ms"]["p50"] for r in rows], "o-", label="p50")
    b.plot(n, [r["tick_ms"]["p99"] for r in rows], "s-", label="p99")
    b.axhline(1000, color="grey", ls="--", lw=1)
    b.text(n[0], 1100, "1 s chunk: real-time limit", color="grey", fontsize=8)
    b.set(xscale="log", yscale="log", xlabel="concurrent 360 Hz streams (one core)",
          ylabel="chunk arrival -> beat events (ms)", title="latency")
    b.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[1, 10, 100, 1000, 10000])
    ap.add_argument("--seconds", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=10, help="seconds of signal before measuring (detector warm-up)")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "mitdb")
    ap.add_argument("--core", type=int, default=0)
    ap.add_argument("--processes", type=int, default=0, help="also run this many processes at once ...")
    ap.add_argument("--per", type=int, default=5000, help="... with this many streams each")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results_ecg_streams")
    ap.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        n, seconds, warmup, data, core, seed = args.child
        print(json.dumps(run_one(int(n), int(seconds), int(warmup), Path(data), int(core), int(seed))))
        return
    rows = []
    for n in args.n:  # each N in a fresh process: memory and caches start alike
        out = subprocess.run([sys.executable, __file__, "--child", str(n), str(args.seconds), str(args.warmup),
                              str(args.data), str(args.core), "0"], capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    multi = run_processes(args.processes, args.per, args.seconds, args.warmup, args.data) if args.processes else []
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    lines = [f"machine: {machine}; one process per row, pinned to one core, onnxruntime 1 thread; "
             f"1 s chunks of 360 Hz MIT-BIH records; {args.seconds} s measured after {args.warmup} s warm-up", "",
             "| streams | CPU per stream-second (us) | latency p50 / p99 / max (ms) | real time | "
             "memory per stream (kB) | beats/s |", "|---:|---:|---:|---|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['n']} | {r['cpu_us_per_stream_second']:.1f} | {r['tick_ms']['p50']:.1f} / "
                     f"{r['tick_ms']['p99']:.1f} / {r['tick_ms']['max']:.1f} | {'yes' if r['real_time'] else 'no'} | "
                     f"{r['memory_kb_per_stream']:.1f} | {r['beats_per_s']:.0f} |")
    if multi:
        lines += ["", f"{len(multi)} processes at once, one per core, {args.per} streams each "
                      f"({len(multi) * args.per} streams):", "",
                  "| core | CPU per stream-second (us) | latency p50 / p99 / max (ms) | real time |",
                  "|---|---:|---:|---|"]
        for r in multi:
            held = "yes" if r["real_time"] else "no"
            lines.append(f"| {r['core']} | {r['cpu_us_per_stream_second']:.1f} | {r['tick_ms']['p50']:.1f} / "
                         f"{r['tick_ms']['p99']:.1f} / {r['tick_ms']['max']:.1f} | {held} |")
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.with_suffix(".md").write_text(text)
    args.out.with_suffix(".json").write_text(json.dumps({"machine": machine, "rows": rows, "processes": multi},
                                                         indent=2))
    plot(rows, args.out.with_suffix(".png"))


if __name__ == "__main__":
    main()
