"""A long live audio run: real music through a real, paced sounddevice stream (JACK's dummy driver at 48 kHz,
../shared/DESIGN.md recipe 2; tests/jack_device.py), reconstructed by the shipped codec as `streamer audio
--device` does, for an hour. What must hold: zero drops, and a p99 latency that does not creep up.

    python benchmarks/bench_live_audio.py                 # 3600 s
    python benchmarks/bench_live_audio.py --seconds 300   # quicker

Needs jackd (apt-get install jackd2) and JACK-Client (the dev extra). The run is the CLI's own plan
(`plan_audio`) and engine in this process; a sampler thread copies the latency histogram every `--window`
seconds, so each window's p50/p99 is computed from what arrived in it alone. Latency: from the arrival of a
device buffer to the reconstructed frame written (the engine's own measure). Results: results_live_audio.md /
.json.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import platform
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.jack_device import JackServer, Player  # noqa: E402

RATE = 48000  # Hz: what a USB microphone or a sound card delivers


def window_percentiles(before: np.ndarray, after: np.ndarray, whole: object) -> dict[str, float]:
    """Percentiles of what arrived between two copies of the histogram's counts (bounded by the whole run's
    min and max, as the histogram bounds its own)."""
    from streamer.run.metrics import LatencyHistogram

    h = LatencyHistogram()
    h.counts = after - before
    h.total = int(h.counts.sum())
    h.min_s, h.max_s = whole.min_s, whole.max_s  # type: ignore[attr-defined]
    return {"frames": h.total, "p50_ms": round(h.percentile(50) * 1e3, 2), "p99_ms": round(h.percentile(99) * 1e3, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=3600.0)
    parser.add_argument("--window", type=float, default=300.0)
    args = parser.parse_args()
    import soundfile as sf
    import soxr

    music, rate = sf.read(ROOT / "samples" / "audio" / "bach.wav")
    music = soxr.resample(music if music.ndim == 1 else music.mean(axis=1), rate, RATE)
    server = JackServer(rate=RATE, period=1024)
    atexit.register(server.kill, signal.SIGTERM)  # registered before sounddevice's: runs after PortAudio's exit
    os.environ.update(server.env())
    player = Player(server, 0.5 * music / np.max(np.abs(music)))
    from streamer.cli.audio import plan_audio
    from streamer.cli.options import RunOptions
    from streamer.run.engine import Engine
    from streamer.run.pacing import Pacer

    run = RunOptions(model=ROOT / "samples" / "models" / "music.onnx", speed=1.0, events=None, summary=None,
                     dashboard=False, threads=1, provider="cpu")
    plan = plan_audio(None, "system", run, seconds=args.seconds)
    engine = Engine(plan, Pacer(1.0))
    windows: list[dict[str, float]] = []
    done = threading.Event()

    def sample() -> None:
        last, start = engine.metrics.latency.counts.copy(), time.perf_counter()
        while not done.wait(args.window):
            now = engine.metrics.latency.counts.copy()
            windows.append({"end_s": round(time.perf_counter() - start),
                            **window_percentiles(last, now, engine.metrics.latency)})
            last = now

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    engine.process()
    done.set()
    summary = engine.summary()
    player.close()
    machine = f"{platform.platform()}, {os.cpu_count()} cores"
    result = {"seconds": args.seconds, "device_rate": RATE, "machine": machine, "duration_s": summary["duration_s"],
              "dropped": summary["dropped"], "drops": summary["drops"], "latency_ms": summary["latency_ms"],
              "snr_db": summary.get("snr_db"), "frames": summary.get("frames"), "error": summary["error"],
              "windows": windows}
    out = Path(__file__).with_name("results_live_audio")
    out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    command = f"python benchmarks/bench_live_audio.py --seconds {args.seconds:g}"
    lat = summary["latency_ms"]
    lines = [f"# Live audio for {args.seconds:g} s (`{command}`)",
             "", f"{machine}. JACK dummy driver at {RATE} Hz (period 1024), real music (samples/audio/bach.wav "
             "looped) played into the capture; `music.onnx`, 1 thread.", "",
             f"Stream {summary['duration_s']} s, frames {summary.get('frames')}, dropped {summary['dropped']} "
             f"{summary['drops'] or ''}, error {summary['error']}; latency over the whole run p50 "
             f"{lat['p50']} ms, p99 {lat['p99']} ms; SNR {summary.get('snr_db')} dB.",
             "", "| window ends at s | frames | drops | p50 ms | p99 ms |", "|---:|---:|---:|---:|---:|"]
    lines += [f"| {w['end_s']} | {w['frames']} | {w.get('drops', '-')} | {w['p50_ms']} | {w['p99_ms']} |"
              for w in windows]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))  # noqa: T201


if __name__ == "__main__":
    main()
