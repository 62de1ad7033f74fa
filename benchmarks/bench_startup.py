"""Start-up: from process start to the first beat event of `streamer ecg RECORD --speed max`.

    python benchmarks/bench_startup.py [--record samples/ecg/106] [--repeats 9]

Each run starts a fresh `streamer` process and watches its event log: the first beat event is the first
line written (the event log is flushed per block). Also the whole run, and, for scale, a bare
`python -c "import numpy, onnxruntime"`. Medians over `--repeats` runs, alternated.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def first_event(record: Path, events: Path) -> tuple[float, float]:
    """(seconds to the first event line, seconds to the end) of one `streamer ecg` run."""
    streamer = shutil.which("streamer") or "streamer"
    t0 = time.perf_counter()
    proc = subprocess.Popen([streamer, "ecg", str(record), "--speed", "max", "--no-dashboard", "--events",
                             str(events)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = None
    while proc.poll() is None or first is None:
        if first is None and events.exists() and events.stat().st_size > 0:
            first = time.perf_counter() - t0
        if proc.poll() is not None and first is None:
            first = float("nan")
        time.sleep(0.0005)
    return first, time.perf_counter() - t0


def bare_imports() -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import numpy, onnxruntime"], check=True)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--record", type=Path, default=ROOT / "samples" / "ecg" / "106")
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results_startup")
    args = ap.parse_args()
    firsts, wholes, bare = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            events = Path(tmp) / f"ev{i}.jsonl"
            first, whole = first_event(args.record, events)
            firsts.append(first)
            wholes.append(whole)
            bare.append(bare_imports())
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    rows = {"process start -> first beat event": firsts, "whole run (30 min record, --speed max, summary)": wholes,
            "python -c 'import numpy, onnxruntime'": bare}
    lines = [f"machine: {machine}; `streamer ecg {args.record.name} --speed max --no-dashboard --events F`, "
             f"median of {args.repeats} runs", "", "| | median (s) | min (s) | max (s) |", "|---|---:|---:|---:|"]
    for label, values in rows.items():
        v = np.array(values)
        lines.append(f"| {label} | {np.median(v):.3f} | {v.min():.3f} | {v.max():.3f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.with_suffix(".md").write_text(text)
    args.out.with_suffix(".json").write_text(json.dumps({"machine": machine, **{k: list(v) for k, v in rows.items()}},
                                                         indent=2))


if __name__ == "__main__":
    main()
