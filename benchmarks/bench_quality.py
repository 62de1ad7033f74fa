"""Signal quality on the shared MIT-BIH records, as a user gets it: `streamer ecg RECORD --speed max` per record.

    python benchmarks/bench_quality.py [--data ../shared/data/mitdb] [--jobs 2]

Per record, from each run's `--summary` and `--events`: the beats, the percentage judged good (the first
~4 s of a stream, quality "not yet known", counted in neither figure), the percentage of time good, the poor
beats by reason, and how many annotated PVCs (matched within 150 ms) went unjudged for poor quality. Pooled:
the percentage of beats judged good over all records. Writes results_quality.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RECORDS = ("100", "102", "104", "105", "106", "116", "121", "123")
MATCH_S = 0.15


def reason_kind(quality: str) -> str:
    """`noise (bSQI 0.42)` -> `noise: bSQI`, `noise (0.31 of QRS)` -> `noise: in-band`, ..."""
    if "bSQI" in quality:
        return "noise: bSQI"
    if "of QRS" in quality:
        return "noise: in-band"
    if "of the beat" in quality:
        return "noise: beat not above it"
    if "unconfirmed" in quality:
        return "noise: beat unconfirmed"
    return quality


def run_record(data: Path, name: str, folder: Path) -> dict[str, Any]:
    from streamer.ecg.readers import read_recording

    summary, events = folder / f"{name}.json", folder / f"{name}.jsonl"
    proc = subprocess.run([sys.executable, "-m", "streamer.cli", "ecg", str(data / name), "--speed", "max",
                           "--no-dashboard", "--summary", str(summary), "--events", str(events)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"record {name}: {proc.stderr.strip()}")
    s = json.loads(summary.read_text())
    beats = [json.loads(line) for line in events.read_text().splitlines()]
    rec = read_recording(data / name)
    pvc = rec.ref_samples[rec.ref_symbols == "V"] if rec.ref_symbols is not None else []
    poor = {b["r_sample"] for b in beats if b["state"] == "noise"}
    rs = sorted(b["r_sample"] for b in beats)
    tol = round(MATCH_S * rec.fs)
    matched = [min(rs, key=lambda r: abs(r - v)) for v in pvc]
    matched = [r for r, v in zip(matched, pvc) if abs(r - v) <= tol]
    q = s["quality"]
    return {"record": name, "beats": s["beats"], "known": s["beats"] - q["beats_before_quality_known"],
            "percent_beats_good": q["percent_beats_good"], "percent_time_good": q["percent_time_good"],
            "poor_by_reason": dict(Counter(reason_kind(b["quality"]) for b in beats if b["state"] == "noise")),
            "pvc_matched": len(matched), "pvc_unjudged": sum(r in poor for r in matched)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "mitdb")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results_quality")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(lambda r: run_record(args.data, r, Path(tmp)), RECORDS))
    known = sum(r["known"] for r in rows)
    good = sum(r["known"] * r["percent_beats_good"] / 100 for r in rows)
    pooled = 100 * good / known
    lines = [f"machine: {platform.machine()}, Python {platform.python_version()}; `streamer ecg RECORD --speed max` "
             "with the shipped ecg.onnx, channel 0", "",
             "| record | beats | % beats good | % time good | poor beats by reason | PVCs unjudged (of matched) |",
             "|---|---:|---:|---:|---|---:|"]
    for r in rows:
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(r["poor_by_reason"].items())) or "-"
        lines.append(f"| {r['record']} | {r['beats']} | {r['percent_beats_good']:.2f} | {r['percent_time_good']:.2f} "
                     f"| {reasons} | {r['pvc_unjudged']} of {r['pvc_matched']} |")
    lines += ["", f"Pooled: {pooled:.2f} % of {known} beats judged good; "
              f"{sum(r['pvc_unjudged'] for r in rows)} of {sum(r['pvc_matched'] for r in rows)} PVCs unjudged."]
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    args.out.with_suffix(".json").write_text(json.dumps({"records": rows, "pooled_percent_beats_good": pooled},
                                                         indent=1) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
