"""Long runs: 24 hours of real ECG replayed at --speed max from a WFDB record, a CSV file and stdin, with the
process's memory (RSS) sampled all along: memory must stay flat once the run is going.

The 24 hours are the shared MIT-BIH records (30 min each) one after another, six rounds of the eight, as
one lead in mV at 360 Hz. Each run is the CLI a user would type, in its own process:

    python benchmarks/bench_long_runs.py            # 24 h (about a minute of input building, then 3 runs)
    python benchmarks/bench_long_runs.py --hours 2  # quicker

RSS is read from /proc every 0.2 s. "start" is the RSS once the first beat events are written (the input is
read, the model loaded, the stream going), "end" the last sample before the process exits, "peak" the highest.
Results: results_long_runs.md / .json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MITDB = ROOT.parent / "shared" / "data" / "mitdb"
FS = 360


def day_of_ecg(hours: float) -> np.ndarray:
    """`hours` of lead 0 (mV) from the shared MIT-BIH records, one after another (float32)."""
    import wfdb

    records = sorted(p.stem for p in MITDB.glob("*.hea"))
    parts, total, want = [], 0, int(hours * 3600 * FS)
    while total < want:
        for name in records:
            x = wfdb.rdrecord(str(MITDB / name), channels=[0]).p_signal[:, 0].astype(np.float32)
            parts.append(x[: want - total])
            total += len(parts[-1])
            if total >= want:
                break
    return np.concatenate(parts)


def write_inputs(x: np.ndarray, folder: Path) -> dict[str, Path]:
    import wfdb

    digital = np.clip(np.round(x * 200.0), -2048, 2047).astype(np.int16)[:, None]
    wfdb.wrsamp("day", fs=FS, units=["mV"], sig_name=["MLII"], d_signal=digital, fmt=["212"], adc_gain=[200.0],
                baseline=[0], write_dir=str(folder))
    csv = folder / "day.csv"
    with open(csv, "w") as f:
        for block in np.array_split(x, max(1, len(x) // 1_000_000)):
            f.write("\n".join(f"{v:.3f}" for v in block))
            f.write("\n")
    return {"wfdb": folder / "day", "csv": csv}


def rss_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def run(label: str, args: list[str], events: Path, stdin: Path | None = None) -> dict[str, object]:
    """Run the CLI, sampling its RSS; 'start' is the first sample after the events file has content."""
    pace = [] if stdin else ["--speed", "max"]  # stdin is read as fast as it arrives
    cmd = [sys.executable, "-m", "streamer.cli", "ecg", *args, *pace, "--no-dashboard", "--events", str(events)]
    source = open(stdin, "rb") if stdin else subprocess.DEVNULL
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=source, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    samples: list[tuple[float, int]] = []
    start: int | None = None
    while proc.poll() is None:
        kb = rss_kb(proc.pid)
        if kb is not None:
            samples.append((time.perf_counter() - t0, kb))
            if start is None and events.exists() and events.stat().st_size > 0:
                start = kb
        time.sleep(0.2)
    wall = time.perf_counter() - t0
    if stdin:
        source.close()  # type: ignore[union-attr]
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"{label}: exit {proc.returncode}: {err.strip()[-300:]}")
    n_beats = sum(1 for _ in open(events))
    end = samples[-1][1] if samples else 0
    peak = max(kb for _, kb in samples) if samples else 0
    return {"input": label, "wall_s": round(wall, 1), "beats": n_beats, "rss_start_mb": round((start or 0) / 1024),
            "rss_end_mb": round(end / 1024), "rss_peak_mb": round(peak / 1024),
            "growth_mb": round((end - (start or end)) / 1024)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hours", type=float, default=24.0)
    args = parser.parse_args()
    x = day_of_ecg(args.hours)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        inputs = write_inputs(x, folder)
        sizes = {"wfdb": sum(inputs["wfdb"].with_suffix(s).stat().st_size for s in (".hea", ".dat")),
                 "csv": inputs["csv"].stat().st_size}
        rows.append({**run("WFDB (format 212)", [str(inputs["wfdb"])], folder / "w.jsonl"),
                     "file_mb": round(sizes["wfdb"] / 1e6)})
        rows.append({**run("CSV", [str(inputs["csv"]), "--fs", str(FS)], folder / "c.jsonl"),
                     "file_mb": round(sizes["csv"] / 1e6)})
        rows.append({**run("stdin (the CSV piped)", ["-", "--fs", str(FS)], folder / "s.jsonl", stdin=inputs["csv"]),
                     "file_mb": round(sizes["csv"] / 1e6)})
    machine = f"{platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    out = Path(__file__).with_name("results_long_runs")
    out.with_suffix(".json").write_text(json.dumps({"hours": args.hours, "machine": machine, "runs": rows}, indent=1))
    command = f"python benchmarks/bench_long_runs.py --hours {args.hours:g}"
    lines = [f"# {args.hours:g} h of ECG at --speed max (`{command}`)",
             "", machine, "",
             "| input | file MB | wall s | beats | RSS start MB | RSS end MB | RSS peak MB | growth MB |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['input']} | {r['file_mb']} | {r['wall_s']} | {r['beats']} | {r['rss_start_mb']} | "
              f"{r['rss_end_mb']} | {r['rss_peak_mb']} | {r['growth_mb']} |" for r in rows]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
