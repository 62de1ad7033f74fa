"""Many microphones in one process on one core: N concurrent 8 kHz audio streams through the shipped codec.

    python benchmarks/bench_audio_streams.py [--n 50 100 200 400] [--seconds 20]

Each stream plays the shipped held-out music clip (a real recording) from its own offset, looped, fed in
512-sample blocks (64 ms, what a sound card's callback delivers). Streams join over the first second, as
microphones switched on one after another do, so their frames do not all complete in the same tick. A tick
hands every stream its next block; every frame that becomes ready goes through one batched model call. Ticks
run back to back: the pool holds real time while the ticks take less than the audio they carry. Reported per
N: CPU per second of audio per stream, real-time factor (processing time / audio time), tick time p50 / p99 (a
frame's latency from its last block's arrival to its reconstruction is its tick's time), the largest batch.
"""

from __future__ import annotations

import argparse
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
RATE = 8000
BLOCK = 512  # samples per device callback: 64 ms at 8 kHz


def clip() -> np.ndarray:
    import wave

    with wave.open(str(ROOT / "samples" / "audio" / "bach.wav")) as w:
        return np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768


def run_one(n: int, seconds: int, core: int, seed: int = 0) -> dict[str, Any]:
    import streamer

    os.sched_setaffinity(0, {core})
    x = clip()
    model = streamer.load_model(ROOT / "samples" / "models" / "music.onnx", threads=1)
    pool = model.pool(rate=RATE)
    rng = np.random.default_rng(seed)
    offsets = rng.integers(0, len(x), n)
    join_tick = rng.integers(0, RATE // BLOCK, n)  # switched on within the first second
    ticks_total = seconds * RATE // BLOCK
    times, biggest, frames = [], 0, 0
    cpu0 = time.process_time()
    for t in range(ticks_total):
        chunks = {}
        for i in range(n):
            if t == join_tick[i]:
                pool.add(i)
            if t >= join_tick[i]:
                start = (offsets[i] + (t - join_tick[i]) * BLOCK) % (len(x) - BLOCK)
                chunks[i] = x[start:start + BLOCK]
        t0 = time.perf_counter()
        result = pool.feed(chunks)
        times.append(time.perf_counter() - t0)
        biggest = max(biggest, pool.last.rows)
        frames += pool.last.rows
        del result
    cpu = time.process_time() - cpu0
    audio_s = seconds  # per stream
    tick = np.array(times[RATE // BLOCK:]) * 1e3  # after every stream has joined
    return {"n": n, "seconds": seconds, "cpu_ms_per_stream_second": 1e3 * cpu / (n * audio_s),
            "realtime_factor": cpu / audio_s, "tick_ms": {"p50": float(np.percentile(tick, 50)),
                                                          "p99": float(np.percentile(tick, 99)),
                                                          "max": float(tick.max())},
            "block_ms": 1e3 * BLOCK / RATE, "real_time": bool(cpu < audio_s), "largest_batch": biggest,
            "frames": frames, "core": core}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[50, 100, 200, 400])
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--core", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results_audio_streams")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        n, seconds, core = map(int, args.child)
        print(json.dumps(run_one(n, seconds, core)))
        return
    rows = []
    for n in args.n:
        out = subprocess.run([sys.executable, __file__, "--child", str(n), str(args.seconds), str(args.core)],
                             capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    lines = [f"machine: {machine}; one process per row pinned to one core, onnxruntime 1 thread; shipped "
             f"music.onnx, hop 4096; 512-sample blocks at 8 kHz; {args.seconds} s of audio per stream", "",
             "| streams | CPU per stream-second (ms) | real-time factor (one core) | tick p50 / p99 / max (ms) | "
             "largest batch |", "|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['n']} | {r['cpu_ms_per_stream_second']:.2f} | {r['realtime_factor']:.2f} | "
                     f"{r['tick_ms']['p50']:.1f} / {r['tick_ms']['p99']:.1f} / {r['tick_ms']['max']:.1f} | "
                     f"{r['largest_batch']} |")
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.with_suffix(".md").write_text(text)
    args.out.with_suffix(".json").write_text(json.dumps({"machine": machine, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
